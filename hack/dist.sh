#!/usr/bin/env bash
# Reproducible release archives for both plugins (`make dist`).
#
#   dist/kubectl-hacluster_<VERSION>_<os>_<arch>.tar.gz   (.zip for windows)
#       kubectl-hacluster[.exe], kubectl_complete-hacluster[.cmd], LICENSE
#   dist/docker-k8sprep_<VERSION>_<os>_<arch>.tar.gz      (.zip for windows)
#       docker-k8sprep[.exe], LICENSE
#   dist/SHA256SUMS
#
# Building the same commit twice gives byte-identical archives: -trimpath, no
# VCS stamping, file mtimes set to the commit time (SOURCE_DATE_EPOCH), sorted
# entries, numeric owner 0:0, fixed modes, `gzip -n`, `zip -X`.
#
# Environment:
#   VERSION            v-prefixed version (default: from git describe)
#   LDFLAGS            go -ldflags (the Makefile passes its version stamp)
#   SOURCE_DATE_EPOCH  mtime of every entry (default: the commit time)
#   PLATFORMS          subset of the matrix, e.g. "linux/amd64 windows/amd64"
#   DIST_DIR           output directory (default: dist)
#
# `hack/dist.sh --platforms` prints the full matrix, one os/arch per line (the
# krew tests check that .krew.yaml offers exactly these).
set -euo pipefail

MATRIX="linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64"
if [ "${1:-}" = "--platforms" ]; then
  tr ' ' '\n' <<<"$MATRIX"
  exit 0
fi
if [ $# -gt 0 ]; then
  echo "usage: $0 [--platforms]   (configure with VERSION, PLATFORMS, DIST_DIR, ...)" >&2
  exit 2
fi

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
MODULE=github.com/hacluster/hacluster

VERSION=${VERSION:-$(git describe --tags --always --dirty --match 'v*' 2>/dev/null | sed 's/^\([^v]\)/v0.0.0-\1/' || true)}
VERSION=${VERSION:-v0.0.0-dev}
case "$VERSION" in
  v[0-9]*) ;;
  *) echo "dist: VERSION must look like v1.2.3, got '$VERSION'" >&2; exit 2 ;;
esac
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
if [ -z "${LDFLAGS:-}" ]; then
  commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  date=$(TZ=UTC date -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
  LDFLAGS="-s -w -X $MODULE/pkg/version.Version=$VERSION -X $MODULE/pkg/version.Commit=$commit -X $MODULE/pkg/version.Date=$date"
fi
PLATFORMS=${PLATFORMS:-$MATRIX}
DIST_DIR=${DIST_DIR:-dist}

for p in $PLATFORMS; do
  case " $MATRIX " in *" $p "*) ;; *) echo "dist: platform $p is not in the matrix ($MATRIX)" >&2; exit 2 ;; esac
done
for tool in tar gzip zip sha256sum; do
  command -v "$tool" >/dev/null || { echo "dist: '$tool' not found (Debian: apt-get install $tool)" >&2; exit 1; }
done

export TZ=UTC LC_ALL=C CGO_ENABLED=0
umask 022
mkdir -p "$DIST_DIR"
DIST_DIR=$(cd "$DIST_DIR" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# archive NAME OS FILE... : pack FILEs (relative to the current directory,
# already carrying fixed modes and mtimes) into $DIST_DIR/NAME.{tar.gz,zip}.
archive() {
  local name=$1 os=$2; shift 2
  local files
  files=$(printf '%s\n' "$@" | sort)
  touch -h -d "@$SOURCE_DATE_EPOCH" "$@"
  if [ "$os" = windows ]; then
    rm -f "$DIST_DIR/$name.zip"
    # -X: no uid/gid or extended-timestamp fields; -D: no directory entries.
    # shellcheck disable=SC2086
    zip -q -X -D -9 "$DIST_DIR/$name.zip" $files
  else
    # shellcheck disable=SC2086
    tar --format=ustar --owner=0 --group=0 --numeric-owner --sort=name \
      --mtime="@$SOURCE_DATE_EPOCH" -cf - $files | gzip -n -9 >"$DIST_DIR/$name.tar.gz"
  fi
}

for p in $PLATFORMS; do
  os=${p%/*} arch=${p#*/} ext=""
  [ "$os" = windows ] && ext=.exe
  printf 'dist: %-14s' "$p" >&2
  s=$SECONDS
  for bin in kubectl-hacluster docker-k8sprep; do
    stage=$work/$bin-$os-$arch
    mkdir -p "$stage"
    GOOS=$os GOARCH=$arch go build -trimpath -buildvcs=false -ldflags "$LDFLAGS" \
      -o "$stage/$bin$ext" "./cmd/$bin"
    install -m 0644 LICENSE "$stage/LICENSE"
    chmod 0755 "$stage/$bin$ext"
    files=("$bin$ext" LICENSE)
    if [ "$bin" = kubectl-hacluster ]; then
      # kubectl >= 1.26 runs kubectl_complete-hacluster for `kubectl hacluster <TAB>`.
      if [ "$os" = windows ]; then
        printf '@echo off\r\nrem kubectl >= 1.26 calls this for `kubectl hacluster <TAB>`\r\nkubectl hacluster __complete %%*\r\n' \
          >"$stage/kubectl_complete-hacluster.cmd"
        chmod 0755 "$stage/kubectl_complete-hacluster.cmd"
        files+=(kubectl_complete-hacluster.cmd)
      else
        printf '#!/usr/bin/env sh\n# kubectl >= 1.26 calls this for `kubectl hacluster <TAB>`\nexec kubectl hacluster __complete "$@"\n' \
          >"$stage/kubectl_complete-hacluster"
        chmod 0755 "$stage/kubectl_complete-hacluster"
        files+=(kubectl_complete-hacluster)
      fi
    fi
    (cd "$stage" && archive "${bin}_${VERSION}_${os}_${arch}" "$os" "${files[@]}")
  done
  printf ' %3ds\n' $((SECONDS - s)) >&2
done

# Checksums of every archive in DIST_DIR (also those of earlier runs with other
# PLATFORMS), sorted by name.
(cd "$DIST_DIR" && find . -maxdepth 1 -type f \( -name '*.tar.gz' -o -name '*.zip' \) -printf '%f\n' |
  sort | xargs -r sha256sum >SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS)
echo "dist: wrote $(grep -c . "$DIST_DIR/SHA256SUMS") archives and SHA256SUMS to $DIST_DIR" >&2
