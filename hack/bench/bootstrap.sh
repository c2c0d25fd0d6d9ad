#!/usr/bin/env bash
# make bench: `kubectl hacluster bootstrap` of 3 control planes + 1 worker on
# the node bed, phase by phase, next to the hand-written sequential SSH
# script of ../shared/notes/node-bed.md (ha-up.sh), adapted to bare hosts and
# to the same artifacts: it downloads the same release files from the same
# upstream in a box on each host with curl, as the article does with wget,
# writes the same configuration by hand (containerd's default config edited
# with sed, the kubeadm HA guide's HAProxy and keepalived files), runs kubeadm
# init and the joins one after the other, applies flannel and spreads
# CoreDNS. Each run gets fresh bare hosts of the same bed; then a converged
# re-run of bootstrap. The hand script verifies no checksum (bootstrap does).
#
# Then the same with an offline bundle: bundle build (warm cache) and
# bootstrap --bundle on fresh hosts.
#
# Env: HACLUSTER_BIN (default bin/), BENCH_SKIP_HAND=1 to leave out the hand
# script, BENCH_SKIP_BUNDLE=1 the bundle.
set -Eeuo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BIN=${HACLUSTER_BIN:-$ROOT/bin}/kubectl-hacluster
D=$ROOT/.cache/bench-nodebed
W=$(mktemp -d)
NB=(go run ./hack/nodebed --dir "$D" --id bench)
# shellcheck source=hack/bench/hand-prep.bash
. "$ROOT/hack/bench/hand-prep.bash"
log() { printf '[bench %(%T)T] %s\n' -1 "$*" >&2; }
down() { "${NB[@]}" down >/dev/null 2>&1 || true; }
trap 'down; rm -rf "$W"' EXIT
[ -x "$BIN" ] || { echo "no $BIN: run make build" >&2; exit 1; }

up() {
	down
	"${NB[@]}" up -n 4 >/dev/null
	# shellcheck disable=SC1091
	. "$D/nodebed.env"
	read -r -a IPS <<<"$NODEBED_IPS"
	read -r -a HOSTS <<<"$NODEBED_HOSTS"
	[ -n "${NODEBED_UPSTREAM:-}" ] || { echo "the bed has no upstream in a box: run make upstream" >&2; exit 1; }
}

# by_hand is the person at a terminal, one host and one step after another.
by_hand() {
	local SSH=(ssh -i "$NODEBED_KEY" -o UserKnownHostsFile="$NODEBED_KNOWN_HOSTS" -o BatchMode=yes -o LogLevel=ERROR)
	local U=$NODEBED_UPSTREAM K=$K8S_VERSION VIP=$NODEBED_VIP
	local flannel_yml
	flannel_yml=$(ls "$ROOT"/.cache/upstream/files/github.com/flannel-io/flannel/releases/download/*/kube-flannel.yml | head -1)
	local flannel=${flannel_yml#"$ROOT"/.cache/upstream/files/}
	local i
	for i in 0 1 2 3; do
		local lb=""
		[ "$i" -lt 3 ] && lb="haproxy keepalived"
		hand_prep "${IPS[$i]}" "$W/prep-${HOSTS[$i]}.log" $lb || exit 1
		log "  by hand: ${HOSTS[$i]} prepared"
	done
	# The load balancer, as in the kubeadm HA guide.
	local prio=101
	for i in 0 1 2; do
		local state=BACKUP peers=""
		[ "$i" = 0 ] && state=MASTER
		local j
		for j in 0 1 2; do [ "$j" != "$i" ] && peers+="        ${IPS[$j]}"$'\n'; done
		"${SSH[@]}" "root@${IPS[$i]}" bash -s >"$W/lb-${HOSTS[$i]}.log" 2>&1 <<EOF || { tail -20 "$W/lb-${HOSTS[$i]}.log" >&2; exit 1; }
set -e
cat >/etc/haproxy/haproxy.cfg <<'X'
global
    daemon
defaults
    mode tcp
    option redispatch
    retries 1
    timeout connect 5s
    timeout client 35s
    timeout server 35s
    timeout check 10s
frontend apiserver
    bind *:16443
    default_backend apiserverbackend
backend apiserverbackend
    option httpchk
    http-check connect ssl
    http-check send meth GET uri /healthz
    http-check expect status 200
    balance roundrobin
    default-server inter 2s fall 2 rise 2
    server ${HOSTS[0]} ${IPS[0]}:6443 check verify none
    server ${HOSTS[1]} ${IPS[1]}:6443 check verify none
    server ${HOSTS[2]} ${IPS[2]}:6443 check verify none
X
cat >/etc/keepalived/check_apiserver.sh <<'X'
#!/bin/sh
curl -sfk --max-time 2 https://localhost:16443/healthz -o /dev/null
X
chmod 755 /etc/keepalived/check_apiserver.sh
cat >/etc/keepalived/keepalived.conf <<'X'
global_defs {
    router_id LVS_DEVEL
    enable_script_security
    script_user root
}
vrrp_script check_apiserver {
    script "/etc/keepalived/check_apiserver.sh"
    interval 3
    weight -2
    fall 10
    rise 2
}
vrrp_instance VI_1 {
    state $state
    interface eth0
    virtual_router_id 51
    priority $prio
    advert_int 1
    unicast_src_ip ${IPS[$i]}
    unicast_peer {
$peers    }
    authentication {
        auth_type PASS
        auth_pass benchpw1
    }
    virtual_ipaddress {
        $VIP/$NODEBED_PREFIX_LEN
    }
    track_script {
        check_apiserver
    }
}
X
systemctl enable -q haproxy keepalived && systemctl restart haproxy keepalived
EOF
		prio=$((prio - 1))
	done
	until "${SSH[@]}" "root@${IPS[0]}" ip -4 addr show eth0 | grep -q "$VIP/"; do sleep 0.5; done
	log "  by hand: HAProxy + keepalived on 3 control planes, VIP on ${HOSTS[0]}"
	local v1=""
	"${SSH[@]}" "root@${IPS[0]}" test -f /sys/fs/cgroup/cgroup.controllers || v1="failCgroupV1: false"
	"${SSH[@]}" "root@${IPS[0]}" "cat >/root/kubeadm.yaml" <<EOF
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint: {advertiseAddress: ${IPS[0]}, bindPort: 6443}
nodeRegistration:
  criSocket: unix:///run/containerd/containerd.sock
  ignorePreflightErrors: [SystemVerification]
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: $K
controlPlaneEndpoint: $VIP:16443
apiServer: {certSANs: [$VIP]}
networking: {podSubnet: 10.244.0.0/16, serviceSubnet: 10.96.0.0/12}
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
resolvConf: $NODEBED_RESOLV_CONF
$v1
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
EOF
	"${SSH[@]}" "root@${IPS[0]}" kubeadm init --config /root/kubeadm.yaml --upload-certs >"$W/init.log" 2>&1 || { tail -30 "$W/init.log"; exit 1; }
	log "  by hand: kubeadm init on ${HOSTS[0]}"
	local certkey join
	certkey=$(grep -o -- '--certificate-key [0-9a-f]*' "$W/init.log" | head -1 | awk '{print $2}')
	join=$("${SSH[@]}" "root@${IPS[0]}" kubeadm token create --print-join-command)
	for i in 1 2; do
		"${SSH[@]}" "root@${IPS[$i]}" "$join --control-plane --certificate-key $certkey --apiserver-advertise-address ${IPS[$i]} --ignore-preflight-errors=SystemVerification" >"$W/join-${HOSTS[$i]}.log" 2>&1 || { tail -30 "$W/join-${HOSTS[$i]}.log"; exit 1; }
		log "  by hand: ${HOSTS[$i]} joined as a control plane"
	done
	"${SSH[@]}" "root@${IPS[3]}" "$join --ignore-preflight-errors=SystemVerification" >"$W/join-${HOSTS[3]}.log" 2>&1 || { tail -30 "$W/join-${HOSTS[3]}.log"; exit 1; }
	log "  by hand: ${HOSTS[3]} joined as a worker"
	"${SSH[@]}" "root@${IPS[0]}" "curl -fsSL $U/$flannel | sed 's/\"cniVersion\": \"1.0.0\"/\"cniVersion\": \"0.4.0\"/' | kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f - >/dev/null &&
		kubectl --kubeconfig /etc/kubernetes/admin.conf wait --for=condition=Ready node --all --timeout=5m >/dev/null &&
		kubectl --kubeconfig /etc/kubernetes/admin.conf -n kube-system rollout restart deployment/coredns >/dev/null &&
		kubectl --kubeconfig /etc/kubernetes/admin.conf -n kube-system rollout status deployment/coredns --timeout=3m >/dev/null"
	log "  by hand: flannel applied, 4 nodes Ready, CoreDNS spread"
}

hand=""
if [ -z "${BENCH_SKIP_HAND:-}" ]; then
	log "hand-written sequential ssh script: starting 4 bare hosts"
	up
	t0=$SECONDS
	by_hand
	hand=$((SECONDS - t0))
	log "by hand: ${hand}s"
fi

log "kubectl hacluster bootstrap: starting 4 fresh bare hosts"
up
t0=$SECONDS
/usr/bin/time -f '%M' -o "$W/rss" "$BIN" bootstrap -f "$D/cluster.yaml" --cache-dir "$W/cache" --state-dir "$W/state" --merge-kubeconfig=false >"$W/bootstrap.txt" 2>"$W/bootstrap.err" || { cat "$W/bootstrap.err"; exit 1; }
boot=$((SECONDS - t0))
cat "$W/bootstrap.txt"
t1=$(date +%s.%N)
"$BIN" bootstrap -f "$D/cluster.yaml" --cache-dir "$W/cache" --state-dir "$W/state" --merge-kubeconfig=false >"$W/rerun.txt" 2>&1 || { cat "$W/rerun.txt"; exit 1; }
rerun=$(echo "$(date +%s.%N) - $t1" | bc)
grep -q 'changed nothing' "$W/rerun.txt" || { echo "the re-run changed something:" >&2; cat "$W/rerun.txt" >&2; exit 1; }

bundled=""
if [ -z "${BENCH_SKIP_BUNDLE:-}" ]; then
	# The same cluster from an offline bundle (issue 16): built on this
	# machine from the box (its cache is the one bootstrap just filled),
	# then fresh hosts bootstrapped with --bundle.
	t0=$SECONDS
	"$BIN" bundle build -f "$D/cluster.yaml" --cache-dir "$W/cache" -o "$W/cluster.tar" >"$W/bundle.txt" 2>&1 || { cat "$W/bundle.txt"; exit 1; }
	bundle_build=$((SECONDS - t0))
	bundle_mb=$(($(stat -c %s "$W/cluster.tar") / 1048576))
	log "kubectl hacluster bootstrap --bundle: starting 4 fresh bare hosts"
	up
	t0=$SECONDS
	"$BIN" bootstrap -f "$D/cluster.yaml" --bundle "$W/cluster.tar" --cache-dir "$W/cache2" --state-dir "$W/state2" --merge-kubeconfig=false >"$W/bundled.txt" 2>&1 || { cat "$W/bundled.txt"; exit 1; }
	bundled=$((SECONDS - t0))
fi
echo
printf '%-46s %8s\n' "3 control planes + 1 worker, bare to Ready" "seconds"
[ -n "$hand" ] && printf '%-46s %8d\n' "hand-written sequential ssh script" "$hand"
printf '%-46s %8d   (peak RSS %d MiB)\n' "kubectl hacluster bootstrap" "$boot" $(($(cat "$W/rss") / 1024))
[ -n "$hand" ] && printf '%-46s %8.2fx  (target <= 0.85x)\n' "bootstrap / by hand" "$(echo "$boot / $hand" | bc -l)"
printf '%-46s %8.1f   (target < 5 s)\n' "converged re-run" "$rerun"
if [ -n "$bundled" ]; then
	printf '%-46s %8d   (%d MiB, warm cache)\n' "bundle build" "$bundle_build" "$bundle_mb"
	printf '%-46s %8d\n' "kubectl hacluster bootstrap --bundle" "$bundled"
fi
