#!/usr/bin/env bash
# Builds (once, cached with stamps) what the node bed's "upstream in a box"
# serves to the hosts in place of the internet (pkg/upstream):
#
#   .cache/upstream/files/     release downloads, laid out like the real sites
#     dl.k8s.io/release/<k8s>/bin/linux/amd64/{kubelet,kubeadm,kubectl}{,.sha256}
#     github.com/containerd/containerd/releases/download/v<c>/containerd-<c>-linux-amd64.tar.gz{,.sha256sum}
#     github.com/opencontainers/runc/releases/download/<r>/{runc.amd64,runc.sha256sum}
#     github.com/containernetworking/plugins/releases/download/<p>/cni-plugins-linux-amd64-<p>.tgz{,.sha256}
#     github.com/kubernetes-sigs/cri-tools/releases/download/<t>/crictl-<t>-linux-amd64.tar.gz{,.sha256}
#     github.com/flannel-io/flannel/releases/download/<f>/kube-flannel.yml
#     github.com/kubernetes-sigs/metrics-server/releases/download/<m>/components.yaml
#   .cache/upstream/versions.json  the versions above, for the tests
#   .cache/upstream/images/oci an OCI image layout of the images kubeadm asks
#                              for (`kubeadm config images list`), each named
#                              by its org.opencontainers.image.ref.name
#
# Everything is built here from the Go module proxy, static, linux/amd64:
#   - kubelet, kubeadm, kubectl, kube-proxy and the control plane come from
#     `make k8s-tools` (CGO_ENABLED=0), hard-linked, not copied;
#   - containerd (+ shim, ctr), the CNI plugins, crictl, CoreDNS and pause:
#     CGO_ENABLED=0 go build / go install;
#   - runc needs cgo (libcontainer's nsexec is C): built with CGO_ENABLED=1,
#     `-tags seccomp netgo osusergo` and `-extldflags -static` against
#     Debian's static libseccomp (libseccomp-dev), the way runc's own
#     `make static` does.
# Images: control-plane images FROM scratch with the static binary (as the
# upstream distroless ones are), kube-proxy on the Debian base with iptables,
# ipset, conntrack and nftables (kube-proxy calls them). Built with the
# local engine, saved, and then removed from the engine (it never carries
# registry.k8s.io names).
#
# A stamp per artifact makes a warm run instant. Usage: hack/upstream/build.sh
# Env: K8S_VERSION (default v1.37.2), UPSTREAM_CACHE (default .cache/upstream).
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
K8S_VERSION=${K8S_VERSION:-v1.37.2}
CONTAINERD_VERSION=v2.4.2
RUNC_VERSION=v1.5.3
CNI_PLUGINS_VERSION=v1.10.0
CRICTL_VERSION=v1.37.0
FLANNEL_VERSION=v0.28.10
# flannel's CNI plugin moved to github.com/flannel-io/cni-plugin, which the
# module proxy does not serve; the same plugin before the move is
# containernetworking/plugins' meta/flannel (same protocol: it reads
# /run/flannel/subnet.env and delegates to bridge + host-local).
FLANNEL_CNI_MODULE_VERSION=v0.9.1
FLANNEL_CNI_TAG=v1.9.1-flannel3
# metrics-server: the one release the module proxy serves here (the add-ons
# catalog's v0.8.1 is not); its image and its release manifest.
METRICS_SERVER_VERSION=v0.8.0
OUT=${UPSTREAM_CACHE:-$ROOT/.cache/upstream}
FILES=$OUT/files
IMAGES=$OUT/images
DEBIAN_REF=hacluster.local/debian:bookworm
# RECIPE: bump when a change here changes an artifact.
RECIPE=2

T0=$SECONDS
log() { printf '[upstream %(%T)T +%4ds] %s\n' -1 $((SECONDS - T0)) "$*" >&2; }
die() { log "error: $*"; exit 1; }

K8S_BIN=$("$ROOT/hack/k8s-tools/build.sh" bindir)
need_k8s() { [ -x "$K8S_BIN/kubelet" ] && [ -x "$K8S_BIN/kube-proxy" ] || die "no kubelet/kube-proxy in $K8S_BIN: run \`make k8s-tools\` first"; }

mkdir -p "$OUT" "$FILES" "$IMAGES"
exec 9>"$OUT/.lock"
flock -n 9 || { log "another build is running; waiting for it"; flock 9; }

WORK=$(mktemp -d "$OUT/.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# fresh NAME KEY: true when NAME's stamp holds KEY (the artifact is current).
fresh() { [ -f "$OUT/.stamp-$1" ] && [ "$(cat "$OUT/.stamp-$1")" = "$2" ]; }
stamp() { echo "$2" >"$OUT/.stamp-$1.tmp" && mv -f "$OUT/.stamp-$1.tmp" "$OUT/.stamp-$1"; }
GOV=$(go env GOVERSION)

# step NAME KEY FUNCTION: run FUNCTION unless NAME is current; time it.
step() {
	local name=$1 key="$2 go=$GOV recipe=$RECIPE" fn=$3 s=$SECONDS
	if fresh "$name" "$key"; then
		log "$name: cached"
		return
	fi
	log "$name: building"
	"$fn"
	stamp "$name" "$key"
	log "$name: done in $((SECONDS - s))s"
}

gobuild() { # out-dir pkg@version [extra go flags...]
	local out=$1 pkg=$2
	shift 2
	(cd "$WORK" && GOBIN="$out" GOFLAGS=-buildvcs=false CGO_ENABLED=${CGO:-0} go install -trimpath "$@" "$pkg")
}

# --- kubelet, kubeadm, kubectl: dl.k8s.io layout --------------------------
k8s_files() {
	need_k8s
	local d=$FILES/dl.k8s.io/release/$K8S_VERSION/bin/linux/amd64 b
	mkdir -p "$d"
	for b in kubelet kubeadm kubectl kube-proxy; do
		ln -f "$K8S_BIN/$b" "$d/$b" 2>/dev/null || cp -f "$K8S_BIN/$b" "$d/$b"
		# dl.k8s.io's .sha256 files hold the bare hex digest.
		sha256sum "$d/$b" | cut -d' ' -f1 >"$d/$b.sha256"
	done
	echo "$K8S_VERSION" >"$FILES/dl.k8s.io/release/stable.txt"
}

# --- containerd: GitHub release layout ------------------------------------
containerd_files() {
	local v=${CONTAINERD_VERSION#v} d=$FILES/github.com/containerd/containerd/releases/download/$CONTAINERD_VERSION
	local stage=$WORK/containerd
	mkdir -p "$stage/bin" "$d"
	local m=github.com/containerd/containerd/v2
	local ld="-s -w -X $m/version.Version=$CONTAINERD_VERSION -X $m/version.Package=github.com/containerd/containerd/v2"
	gobuild "$stage/bin" "$m/cmd/containerd@$CONTAINERD_VERSION" -tags no_btrfs -ldflags "$ld"
	gobuild "$stage/bin" "$m/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" -ldflags "$ld"
	gobuild "$stage/bin" "$m/cmd/ctr@$CONTAINERD_VERSION" -ldflags "$ld"
	local f=containerd-$v-linux-amd64.tar.gz
	tar -C "$stage" --owner=0 --group=0 --numeric-owner -czf "$d/$f" bin
	(cd "$d" && sha256sum "$f" >"$f.sha256sum")
}

# --- runc -------------------------------------------------------------------
runc_files() {
	local d=$FILES/github.com/opencontainers/runc/releases/download/$RUNC_VERSION
	[ -e /usr/lib/x86_64-linux-gnu/libseccomp.a ] || die "runc needs Debian's static libseccomp: apt-get install -y libseccomp-dev"
	mkdir -p "$d" "$WORK/runc"
	CGO=1 gobuild "$WORK/runc" "github.com/opencontainers/runc@$RUNC_VERSION" \
		-tags "seccomp netgo osusergo urfave_cli_no_docs" \
		-ldflags "-s -w -X main.version=${RUNC_VERSION#v} -extldflags -static"
	mv "$WORK/runc/runc" "$d/runc.amd64"
	(cd "$d" && sha256sum runc.amd64 >runc.sha256sum)
}

# --- CNI plugins --------------------------------------------------------------
cni_files() {
	local d=$FILES/github.com/containernetworking/plugins/releases/download/$CNI_PLUGINS_VERSION
	local stage=$WORK/cni p
	mkdir -p "$stage" "$d"
	local m=github.com/containernetworking/plugins
	local ld="-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION"
	for p in main/bridge main/host-device main/ipvlan main/loopback main/macvlan main/ptp main/vlan main/dummy main/tap \
		ipam/host-local ipam/static ipam/dhcp meta/portmap meta/tuning meta/bandwidth meta/firewall meta/sbr meta/vrf; do
		gobuild "$stage" "$m/plugins/$p@$CNI_PLUGINS_VERSION" -ldflags "$ld"
	done
	local f=cni-plugins-linux-amd64-$CNI_PLUGINS_VERSION.tgz
	tar -C "$stage" --owner=0 --group=0 --numeric-owner -czf "$d/$f" .
	(cd "$d" && sha256sum "$f" >"$f.sha256")
}

# --- crictl -----------------------------------------------------------------
crictl_files() {
	local d=$FILES/github.com/kubernetes-sigs/cri-tools/releases/download/$CRICTL_VERSION
	mkdir -p "$d" "$WORK/crictl"
	gobuild "$WORK/crictl" "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" \
		-ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION"
	local f=crictl-$CRICTL_VERSION-linux-amd64.tar.gz
	tar -C "$WORK/crictl" --owner=0 --group=0 --numeric-owner -czf "$d/$f" crictl
	(cd "$d" && sha256sum "$f" >"$f.sha256")
}

# k8s_module is the module hack/k8s-tools built K8S_VERSION from.
k8s_module() {
	if grep -q "k8s.io/kubernetes $K8S_VERSION\$" "$ROOT/hack/k8s-tools/go.mod"; then
		echo "$ROOT/hack/k8s-tools"
	else
		echo "$(dirname "$K8S_BIN")/module"
	fi
}

# --- flannel: flanneld, its CNI plugin, and the release manifest --------------
# flanneld is built from the module with two backends left out: tencentvpc
# (its SDK is not on the module proxy) and udp (cgo; deprecated upstream).
flannel_files() {
	local src=$WORK/flannel-src d=$FILES/github.com/flannel-io/flannel/releases/download/$FLANNEL_VERSION
	local mod
	mod=$(go mod download -json "github.com/flannel-io/flannel@$FLANNEL_VERSION" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
	[ -d "$mod" ] || die "cannot download github.com/flannel-io/flannel@$FLANNEL_VERSION"
	cp -r "$mod" "$src" && chmod -R u+w "$src"
	sed -i '/pkg\/backend\/tencentvpc"/d; /pkg\/backend\/udp"/d' "$src/main.go"
	mkdir -p "$OUT/flannel" "$d"
	(cd "$src" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath \
		-ldflags "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=$FLANNEL_VERSION" -o "$OUT/flannel/flanneld" .)
	# install-conf: the init container that copies the CNI configuration.
	(cd "$src" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags "-s -w" -o "$OUT/flannel/install-conf" ./cmd/install_conf)
	gobuild "$OUT/flannel" "github.com/containernetworking/plugins/plugins/meta/flannel@$FLANNEL_CNI_MODULE_VERSION" -ldflags "-s -w"
	# The manifest as the release publishes it (kube-flannel.yml of the tag).
	cp "$mod/Documentation/kube-flannel.yml" "$d/kube-flannel.yml"
	chmod 0644 "$d/kube-flannel.yml"
}

# --- metrics-server: the binary of its image, and components.yaml -------------
# components.yaml is rendered as the release does (`kubectl kustomize
# manifests/overlays/release`, its Makefile's release-manifests), with the
# kubectl of k8s-tools; the binary is built as its Makefile builds it.
metrics_server_files() {
	need_k8s
	local mod d=$FILES/github.com/kubernetes-sigs/metrics-server/releases/download/$METRICS_SERVER_VERSION
	mod=$(go mod download -json "sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
	[ -d "$mod" ] || die "cannot download sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION"
	mkdir -p "$OUT/metrics-server" "$d"
	(cd "$mod" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -mod=readonly -trimpath \
		-ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION" \
		-o "$OUT/metrics-server/metrics-server" ./cmd/metrics-server)
	"$K8S_BIN/kubectl" kustomize "$mod/manifests/overlays/release" >"$d/.components.yaml"
	grep -q "image: registry.k8s.io/metrics-server/metrics-server:$METRICS_SERVER_VERSION\$" "$d/.components.yaml" \
		|| die "metrics-server's release manifest does not name registry.k8s.io/metrics-server/metrics-server:$METRICS_SERVER_VERSION"
	mv -f "$d/.components.yaml" "$d/components.yaml"
}

# --- images -------------------------------------------------------------------
# image NAME REF CONTEXT: docker build CONTEXT, save it as images/NAME.tar
# under the engine tag hacluster.local/upstream/NAME, remember REF.
save_image() {
	local name=$1 ref=$2 ctx=$3 tag=hacluster.local/upstream/$1:build
	docker build -q -t "$tag" --build-arg "BASE=$DEBIAN_REF" "$ctx" >"$WORK/build-$name.log" 2>&1 \
		|| { tail -n 20 "$WORK/build-$name.log" >&2; die "docker build $ref failed (log above)"; }
	docker save -o "$IMAGES/.$name.tar" "$tag"
	mv -f "$IMAGES/.$name.tar" "$IMAGES/$name.tar"
	docker image rm "$tag" >/dev/null
	printf '%s %s\n' "$name" "$ref" >>"$WORK/images.txt"
}

scratch_image() { # name ref binary-path [cmd]
	local name=$1 ref=$2 bin=$3 ctx=$WORK/img-$1
	mkdir -p "$ctx"
	cp "$bin" "$ctx/"
	{
		echo "FROM scratch"
		echo "COPY $(basename "$bin") /usr/local/bin/$(basename "$bin")"
		echo "ENV PATH=/usr/local/bin:/usr/bin:/bin"
		if [ -n "${4:-}" ]; then echo "ENTRYPOINT [\"/usr/local/bin/$4\"]"; fi
	} >"$ctx/Dockerfile"
	save_image "$name" "$ref" "$ctx"
}

images() {
	local list coredns ref
	need_k8s
	docker version >/dev/null 2>&1 || die "the Docker engine does not answer"
	docker image inspect "$DEBIAN_REF" >/dev/null 2>&1 || die "no $DEBIAN_REF: run \`make images\` first"
	list=$("$K8S_BIN/kubeadm" config images list --kubernetes-version "$K8S_VERSION" 2>/dev/null)
	log "kubeadm $K8S_VERSION asks for: $(echo $list)"
	: >"$WORK/images.txt"
	for ref in $list; do
		case "$ref" in
		*/kube-apiserver:* | */kube-controller-manager:* | */kube-scheduler:*)
			local b=${ref##*/}
			b=${b%%:*}
			scratch_image "$b" "$ref" "$K8S_BIN/$b"
			;;
		*/kube-proxy:*)
			mkdir -p "$WORK/img-kube-proxy"
			cp "$K8S_BIN/kube-proxy" "$WORK/img-kube-proxy/"
			cat >"$WORK/img-kube-proxy/Dockerfile" <<-'EOF'
				ARG BASE
				FROM ${BASE}
				RUN apt-get update && apt-get install -y --no-install-recommends iptables ipset conntrack nftables kmod \
				 && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*
				COPY kube-proxy /usr/local/bin/kube-proxy
			EOF
			save_image kube-proxy "$ref" "$WORK/img-kube-proxy"
			;;
		*/etcd:*)
			local ctx=$WORK/img-etcd
			mkdir -p "$ctx"
			cp "$K8S_BIN/etcd" "$ctx/"
			# etcdctl for the checks people run in the etcd Pod, from the
			# k8s-tools module (its own go.mod has replace directives, so
			# `go install etcdctl@version` is refused).
			(cd "$(k8s_module)" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ctx/etcdctl" go.etcd.io/etcd/etcdctl/v3)
			printf 'FROM scratch\nCOPY etcd etcdctl /usr/local/bin/\nENV PATH=/usr/local/bin:/usr/bin:/bin\n' >"$ctx/Dockerfile"
			save_image etcd "$ref" "$ctx"
			;;
		*/pause:*)
			mkdir -p "$WORK/pause"
			(cd "$HERE/pause" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$WORK/pause/pause" .)
			scratch_image pause "$ref" "$WORK/pause/pause" pause
			;;
		*/coredns:*)
			coredns=${ref##*:}
			gobuild "$WORK/coredns" "github.com/coredns/coredns@$coredns" -ldflags "-s -w"
			scratch_image coredns "$ref" "$WORK/coredns/coredns" coredns
			;;
		*) die "kubeadm asks for an image this script cannot build: $ref" ;;
		esac
		log "  $ref"
	done
	# flannel's two images, named as kube-flannel.yml names them.
	local ctx=$WORK/img-flannel
	mkdir -p "$ctx"
	cp "$OUT/flannel/flanneld" "$OUT/flannel/install-conf" "$ctx/"
	cat >"$ctx/Dockerfile" <<-'EOF'
		ARG BASE
		FROM ${BASE}
		RUN apt-get update && apt-get install -y --no-install-recommends iptables ipset nftables iproute2 kmod ca-certificates \
		 && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*
		COPY flanneld install-conf /opt/bin/
	EOF
	save_image flannel "ghcr.io/flannel-io/flannel:$FLANNEL_VERSION" "$ctx"
	log "  ghcr.io/flannel-io/flannel:$FLANNEL_VERSION"
	ctx=$WORK/img-flannel-cni
	mkdir -p "$ctx"
	cp "$OUT/flannel/flannel" "$ctx/"
	printf 'ARG BASE\nFROM ${BASE}\nCOPY flannel /flannel\n' >"$ctx/Dockerfile"
	save_image flannel-cni-plugin "ghcr.io/flannel-io/flannel-cni-plugin:$FLANNEL_CNI_TAG" "$ctx"
	log "  ghcr.io/flannel-io/flannel-cni-plugin:$FLANNEL_CNI_TAG"
	# metrics-server's image, FROM scratch with its entrypoint, as upstream's
	# distroless one (its Pod runs as user 1000 on a read-only root).
	ctx=$WORK/img-metrics-server
	mkdir -p "$ctx"
	cp "$OUT/metrics-server/metrics-server" "$ctx/"
	printf 'FROM scratch\nCOPY metrics-server /metrics-server\nENTRYPOINT ["/metrics-server"]\n' >"$ctx/Dockerfile"
	save_image metrics-server "registry.k8s.io/metrics-server/metrics-server:$METRICS_SERVER_VERSION" "$ctx"
	log "  registry.k8s.io/metrics-server/metrics-server:$METRICS_SERVER_VERSION"
	mv -f "$WORK/images.txt" "$IMAGES/images.txt"
	# One OCI layout, layers compressed and hashed once (the registry of
	# pkg/upstream then starts in a fraction of a second).
	(cd "$ROOT" && go run ./hack/upstream/ocilayout -images "$IMAGES") >/dev/null
	rm -f "$IMAGES"/*.tar
}

log "artifacts for Kubernetes $K8S_VERSION into $OUT"
step containerd "containerd=$CONTAINERD_VERSION" containerd_files
step runc "runc=$RUNC_VERSION" runc_files
step cni "cni=$CNI_PLUGINS_VERSION" cni_files
step crictl "crictl=$CRICTL_VERSION" crictl_files
step k8s "k8s=$K8S_VERSION $(cat "$K8S_BIN/.stamp" 2>/dev/null)" k8s_files
step flannel "flannel=$FLANNEL_VERSION cni=$FLANNEL_CNI_MODULE_VERSION install-conf=1" flannel_files
step metrics-server "metrics-server=$METRICS_SERVER_VERSION $(cat "$K8S_BIN/.stamp" 2>/dev/null)" metrics_server_files
step images "k8s=$K8S_VERSION flannel=$FLANNEL_VERSION/$FLANNEL_CNI_TAG/install-conf metrics-server=$METRICS_SERVER_VERSION $(cat "$K8S_BIN/.stamp" 2>/dev/null) base=$(docker image inspect -f '{{.Id}}' "$DEBIAN_REF" 2>/dev/null) pause=$(cat "$HERE"/pause/* | sha256sum | cut -c1-16)" images
printf '{"kubernetes": "%s", "containerd": "%s", "runc": "%s", "cniPlugins": "%s", "crictl": "%s", "flannel": "%s", "metricsServer": "%s"}\n' \
	"$K8S_VERSION" "$CONTAINERD_VERSION" "$RUNC_VERSION" "$CNI_PLUGINS_VERSION" "$CRICTL_VERSION" "$FLANNEL_VERSION" "$METRICS_SERVER_VERSION" >"$OUT/versions.json.tmp"
mv -f "$OUT/versions.json.tmp" "$OUT/versions.json"
log "done in $((SECONDS - T0))s: $(du -sh "$FILES" | cut -f1) of files, $(du -sh "$IMAGES" | cut -f1) of images"
