#!/usr/bin/env bash
# Build time, size and start-up time of both plugins.
#
#   - warm build of each binary (everything cached, so: the link), and with
#     BENCH_COLD=1 also a cold build (empty GOCACHE; the module cache stays,
#     nothing is downloaded). Cold builds take minutes: opt-in.
#   - size of each binary (-s -w -trimpath, as `make build`)
#   - docker-k8sprep next to a bare plugin.Run binary built in the same run
#     (cmd/docker-k8sprep/testdata/bareplugin: the same docker/cli, one cobra
#     command, built the same way): CPU (user+sys), wall and peak RSS medians
#     of N alternating runs (default 20, hack/bench/startcmp) and the ratios, of
#       docker-cli-plugin-metadata    (what `docker --help` runs per plugin)
#       k8sprep version               (as `docker k8sprep version` runs it)
#     plus the same metadata call with the start-up fast path off
#     (DOCKER_K8SPREP_NO_FASTPATH=1: every package initialised), and the
#     init allocations of each (GODEBUG=inittrace=1)
#   - wall time, median and min/max of N runs, of
#       kubectl hacluster version                  (through the real kubectl from `make k8s-tools`)
#
# Usage: [N=20] [BENCH_COLD=1] hack/bench/startup.sh
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
N=${N:-20}
K8S_VERSION=${K8S_VERSION:-v1.37.2}
KUBECTL=$ROOT/.cache/k8s/$K8S_VERSION/bin/kubectl
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

us() { date +%s%6N; }
fmt_ms() { awk -v u="$1" 'BEGIN { printf "%.1f ms", u / 1000 }'; }

# build LABEL GOCACHE: build both binaries one after the other, timing each.
build() {
  local label=$1 cache=$2 b t0 t1
  for b in kubectl-hacluster docker-k8sprep; do
    t0=$(us)
    GOCACHE=$cache CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags '-s -w' -o "$WORK/bin/$b" "./cmd/$b"
    t1=$(us)
    printf '%-5s build %-18s %8.1f s\n' "$label" "$b" "$(awk -v u=$((t1 - t0)) 'BEGIN { print u / 1e6 }')"
  done
}

# stats CMD...: run CMD N times (output discarded), print median, min, max.
stats() {
  local i t0 t1
  : >"$WORK/times"
  for ((i = 0; i < N; i++)); do
    t0=$(us)
    "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; "$@" >&2; exit 1; }
    t1=$(us)
    echo $((t1 - t0)) >>"$WORK/times"
  done
  sort -n "$WORK/times" | awk -v n="$N" '
    { a[NR] = $1 }
    END {
      med = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
      printf "median %.1f ms  (min %.1f, max %.1f, n=%d)\n", med / 1000, a[1] / 1000, a[n] / 1000, n
    }'
}

mkdir -p "$WORK/bin"
if [ -n "${BENCH_COLD:-}" ]; then
  build cold "$WORK/gocache"
fi
build warm "$(go env GOCACHE)"   # fills the cache if needed ...
build warm "$(go env GOCACHE)"   # ... so this one is really warm

for b in kubectl-hacluster docker-k8sprep; do
  printf 'size  %-24s %6.1f MB\n' "$b" "$(awk -v s="$(stat -c %s "$WORK/bin/$b")" 'BEGIN { print s / 1048576 }')"
done

# The reference: a bare plugin.Run binary, built like the plugin.
CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags '-s -w' -o "$WORK/bin/docker-bareplugin" ./cmd/docker-k8sprep/testdata/bareplugin
go build -o "$WORK/startcmp" ./hack/bench/startcmp
export DOCKER_CONFIG=$WORK/docker-config   # no user config, same for both sides

# initallocs CMD...: the allocations of package initialisation, summed.
initallocs() {
  GODEBUG=inittrace=1 "$@" 2>&1 >/dev/null |
    awk '$1 == "init" && $NF == "allocs" { n++; a += $(NF-1); b += $(NF-3) } END { printf "%6d allocs %9d bytes (%d package inits)\n", a, b, n }'
}
B=$WORK/bin/docker-bareplugin
P=$WORK/bin/docker-k8sprep
echo "init allocations (GODEBUG=inittrace=1):"
printf '  %-58s %s\n' "bare plugin.Run  docker-cli-plugin-metadata" "$(initallocs "$B" docker-cli-plugin-metadata)"
printf '  %-58s %s\n' "docker-k8sprep   docker-cli-plugin-metadata" "$(initallocs "$P" docker-cli-plugin-metadata)"
printf '  %-58s %s\n' "docker-k8sprep   docker-cli-plugin-metadata, no fast path" "$(DOCKER_K8SPREP_NO_FASTPATH=1 initallocs "$P" docker-cli-plugin-metadata)"
printf '  %-58s %s\n' "bare plugin.Run  its one command" "$(initallocs "$B" bareplugin)"
printf '  %-58s %s\n' "docker-k8sprep   k8sprep version" "$(initallocs "$P" k8sprep version)"
echo "docker-cli-plugin-metadata:"
"$WORK/startcmp" -n "$N" \
  "bare plugin.Run" "$B docker-cli-plugin-metadata" \
  "docker-k8sprep" "$P docker-cli-plugin-metadata" \
  "docker-k8sprep, no fast path" "DOCKER_K8SPREP_NO_FASTPATH=1 $P docker-cli-plugin-metadata"
echo "a command (docker k8sprep version, the bare plugin's one command):"
"$WORK/startcmp" -n "$N" \
  "bare plugin.Run" "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND=docker $B bareplugin" \
  "docker-k8sprep" "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND=docker $P k8sprep version" \
  "docker-k8sprep, no fast path" "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND=docker DOCKER_K8SPREP_NO_FASTPATH=1 $P k8sprep version"
unset DOCKER_CONFIG

if [ ! -x "$KUBECTL" ]; then
  echo "kubectl hacluster version: no $KUBECTL (run \`make k8s-tools\`)" >&2
  exit 1
fi
printf 'kubectl hacluster version (kubectl %s):  ' "$K8S_VERSION"
PATH="$WORK/bin:$PATH" stats "$KUBECTL" hacluster version
printf 'kubectl-hacluster version (direct):         '
stats "$WORK/bin/kubectl-hacluster" version
