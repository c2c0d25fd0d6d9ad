#!/usr/bin/env bash
# Builds the local images the tests use, from Debian packages only (no image
# registry is needed or reachable):
#   hacluster.local/debian:bookworm  debootstrap --variant=minbase + docker import
#   hacluster.local/mariadb:10.11    Debian's MariaDB on that base (mariadb/)
#   hacluster.local/golang:1.26      the host's Go + the host's CA bundle (golang/)
#   hacluster.local/node:bookworm    a bare server for the node test bed: systemd,
#                                    sshd, sudo, nothing of Kubernetes (node/)
# Each image carries the label io.hacluster.images.inputs=<hash of its
# inputs>. An image whose label matches is left alone (a run with nothing to do
# takes well under a second); otherwise the image is loaded from
# .cache/images/<name>-<hash>.tar (docker save) when that exists, or built and
# then saved there.
#
# Usage: hack/images/build.sh [debian|mariadb|golang|node ...]   (default: all)
# Env:   DEBIAN_MIRROR (default http://deb.debian.org/debian), IMAGES_CACHE
#        (default <repo>/.cache/images), GO (default go).
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${IMAGES_CACHE:-$ROOT/.cache/images}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
GO=${GO:-go}
LABEL=io.hacluster.images.inputs

DEBIAN_REF=hacluster.local/debian:$SUITE
MARIADB_REF=hacluster.local/mariadb:10.11
GOLANG_REF=hacluster.local/golang:1.26
NODE_REF=hacluster.local/node:$SUITE

T0=$SECONDS
log() { printf '[images %(%T)T +%3ds] %s\n' -1 $((SECONDS - T0)) "$*" >&2; }
die() { log "error: $*"; exit 1; }

WORK=
cleanup() { if [ -n "$WORK" ]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT
workdir() {
	if [ -z "$WORK" ]; then
		# debootstrap needs a real file system (not overlayfs): stay beside the cache.
		mkdir -p "$CACHE"
		WORK=$(mktemp -d "$CACHE/.work.XXXXXX")
	fi
}

sha() { sha256sum | cut -c1-16; }

# ensure REF NAME KEY BUILD_FUNCTION: the cache logic shared by every image.
ensure() {
	local ref=$1 name=$2 key=$3 build=$4 have tarball tmp s
	have=$(docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$ref" 2>/dev/null || true)
	if [ "$have" = "$key" ]; then
		log "$ref is up to date ($key)"
		return
	fi
	tarball=$CACHE/$name-$key.tar
	if [ -f "$tarball" ]; then
		s=$SECONDS
		log "$ref: loading $(basename "$tarball") ($(du -m "$tarball" | cut -f1) MB)"
		docker load -q -i "$tarball" >/dev/null || die "docker load $tarball failed"
		have=$(docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$ref" 2>/dev/null || true)
		if [ "$have" = "$key" ]; then
			log "$ref: loaded in $((SECONDS - s))s"
			return
		fi
		log "$ref: $tarball holds another version ($have); rebuilding"
	fi
	s=$SECONDS
	log "$ref: building (inputs $key)"
	local old_id
	old_id=$(docker image inspect -f '{{.Id}}' "$ref" 2>/dev/null || true)
	"$build" "$key"
	# Drop the replaced image when nothing else uses it (no tag, no container).
	if [ -n "$old_id" ] && [ "$old_id" != "$(docker image inspect -f '{{.Id}}' "$ref")" ]; then
		docker image rm "$old_id" >/dev/null 2>&1 || true
	fi
	log "$ref: built in $((SECONDS - s))s, $(docker image inspect -f '{{.Size}}' "$ref" | awk '{printf "%d MB", $1/1e6}')"
	s=$SECONDS
	mkdir -p "$CACHE"
	tmp=$(mktemp "$CACHE/.$name.XXXXXX")
	docker save -o "$tmp" "$ref" || { rm -f "$tmp"; die "docker save $ref failed"; }
	mv -f "$tmp" "$tarball"
	find "$CACHE" -maxdepth 1 -name "$name-*.tar" ! -name "$(basename "$tarball")" -delete
	log "$ref: saved $(basename "$tarball") in $((SECONDS - s))s"
}

# --- hacluster.local/debian:bookworm -------------------------------------
debian_key() {
	{ echo "$SUITE $MIRROR"; declare -f build_debian; } | sha
}
build_debian() {
	local key=$1 r
	command -v debootstrap >/dev/null || die "debootstrap is not installed: apt-get install -y debootstrap"
	workdir
	r=$WORK/rootfs
	log "debootstrap --variant=minbase $SUITE from $MIRROR (about a minute)"
	debootstrap --variant=minbase "$SUITE" "$r" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
		|| { tail -n 20 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
	cat >"$r/etc/apt/sources.list" <<-SOURCES
		deb $MIRROR $SUITE main
		deb $MIRROR $SUITE-updates main
		deb ${MIRROR%/debian}/debian-security $SUITE-security main
	SOURCES
	# No service starts inside image builds; apt keeps no package cache.
	printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
	chmod 0755 "$r/usr/sbin/policy-rc.d"
	printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$r/etc/apt/apt.conf.d/90container"
	printf 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb || true"; };\n' >"$r/etc/apt/apt.conf.d/91clean"
	rm -rf "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/* \
		"$r"/var/log/* "$r"/tmp/* "$r"/root/.bash_history
	: >"$r/etc/resolv.conf"
	: >"$r/etc/hostname"
	log "docker import"
	tar --numeric-owner -C "$r" -c . | docker import \
		-c "LABEL $LABEL=$key" -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' \
		-m "debootstrap --variant=minbase $SUITE $MIRROR" - "$DEBIAN_REF" >/dev/null
	rm -rf "$r"
}

# --- hacluster.local/mariadb:10.11 -----------------------------------------
mariadb_key() {
	{ echo "base $(debian_key)"; cd "$HERE/mariadb" && for f in $(ls | sort); do echo "$f"; cat "$f"; done; } | sha
}
build_mariadb() {
	local key=$1
	workdir
	docker build --label "$LABEL=$key" --build-arg "BASE=$DEBIAN_REF" -t "$MARIADB_REF" "$HERE/mariadb" \
		>"$WORK/mariadb-build.log" 2>&1 || { tail -n 30 "$WORK/mariadb-build.log" >&2; die "docker build $MARIADB_REF failed (log above)"; }
}

# --- hacluster.local/node:bookworm ------------------------------------------
node_key() {
	{ echo "base $(debian_key)"; cd "$HERE/node" && for f in $(ls | sort); do echo "$f"; cat "$f"; done; } | sha
}
build_node() {
	local key=$1
	workdir
	docker build --label "$LABEL=$key" --build-arg "BASE=$DEBIAN_REF" -t "$NODE_REF" "$HERE/node" \
		>"$WORK/node-build.log" 2>&1 || { tail -n 30 "$WORK/node-build.log" >&2; die "docker build $NODE_REF failed (log above)"; }
}

# --- hacluster.local/golang:1.26 -------------------------------------------
GOROOT_DIR=
go_inputs() {
	GOROOT_DIR=$("$GO" env GOROOT) || die "no Go toolchain ($GO)"
	[ -r /etc/ssl/certs/ca-certificates.crt ] || die "/etc/ssl/certs/ca-certificates.crt is missing (apt-get install ca-certificates)"
}
golang_key() {
	go_inputs
	{
		echo "base $(debian_key)"
		"$GO" version
		echo "$GOROOT_DIR"
		sha256sum </etc/ssl/certs/ca-certificates.crt
		cat "$HERE/golang/Dockerfile"
		declare -f build_golang
	} | sha
}
build_golang() {
	local key=$1 version base parent
	go_inputs
	workdir
	version=$("$GO" env GOVERSION)
	case "$version" in go1.26*) ;; *) die "$GOLANG_REF needs Go 1.26 on the host; $GO is $version" ;; esac
	parent=$(dirname "$GOROOT_DIR")
	base=$(basename "$GOROOT_DIR")
	# The context is streamed: Dockerfile, the CA bundle and GOROOT as ./go
	# (without its own test suite and API lists), all owned by root.
	{
		tar -c --owner=0 --group=0 --numeric-owner -C "$HERE/golang" Dockerfile -C /etc/ssl/certs ca-certificates.crt \
			-C "$parent" --exclude="$base/test" --exclude="$base/api" --exclude="$base/pkg/obj" \
			--transform="s,^$base\(/\|\$\),go\1," "$base"
	} | docker build --label "$LABEL=$key" --build-arg "BASE=$DEBIAN_REF" \
		--build-arg "GO_VERSION=${version#go}" -t "$GOLANG_REF" - >"$WORK/golang-build.log" 2>&1 \
		|| { tail -n 30 "$WORK/golang-build.log" >&2; die "docker build $GOLANG_REF failed (log above)"; }
}

main() {
	local want=("$@") w
	[ ${#want[@]} -gt 0 ] || want=(debian mariadb golang node)
	docker version --format '{{.Server.Version}}' >/dev/null 2>&1 \
		|| die "the Docker engine does not answer (DOCKER_HOST=${DOCKER_HOST:-unix:///var/run/docker.sock})"
	for w in "${want[@]}"; do
		case "$w" in
		debian | mariadb | golang | node) ;;
		*) die "unknown image $w (want debian, mariadb, golang or node)" ;;
		esac
	done
	# Every image builds on the Debian base.
	ensure "$DEBIAN_REF" debian "$(debian_key)" build_debian
	for w in "${want[@]}"; do
		case "$w" in
		mariadb) ensure "$MARIADB_REF" mariadb "$(mariadb_key)" build_mariadb ;;
		golang) ensure "$GOLANG_REF" golang "$(golang_key)" build_golang ;;
		node) ensure "$NODE_REF" node "$(node_key)" build_node ;;
		esac
	done
	log "done in $((SECONDS - T0))s"
}

main "$@"
