#!/usr/bin/env bash
# Measures the Kubernetes test bed: a warm `make k8s-tools` (stamp hit), the
# time `testbed up` takes until the HA shape is ready, the resident memory and
# CPU of its processes after IDLE seconds, and `testbed down`.
#
# Usage: hack/bench/testbed.sh [IDLE_SECONDS]   (default 30)
# Needs: `make k8s-tools` (the Go benchmarks BenchmarkStartToReadyz and
# BenchmarkHAShapeReady in pkg/testbed time the same from Go).
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IDLE=${1:-30}
cd "$ROOT"
ms() { date +%s%3N; }

t0=$(ms)
hack/k8s-tools/build.sh >/dev/null
t1=$(ms)
echo "warm make k8s-tools (stamp hit):        $((t1 - t0)) ms"

WORK=$(mktemp -d)
trap '"$WORK/testbed" --dir "$WORK/bed" down >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
go build -o "$WORK/testbed" ./hack/testbed

t0=$(ms)
"$WORK/testbed" --dir "$WORK/bed" up >/dev/null 2>"$WORK/up.err" || { cat "$WORK/up.err" >&2; exit 1; }
t1=$(ms)
echo "testbed up until the HA shape is ready: $((t1 - t0)) ms"
grep -h 'ready at\|up after\|shape ready' "$WORK/bed/runner.log" | sed 's/^/    /'

cpu_ticks() { # utime+stime of the pids, in clock ticks
	local sum=0 p
	for p in "$@"; do sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
	echo "$sum"
}
mapfile -t PIDS < <(cat "$WORK"/bed/state/*.pid)
c0=$(cpu_ticks "${PIDS[@]}")
sleep "$IDLE"
c1=$(cpu_ticks "${PIDS[@]}")
total=0
for f in "$WORK"/bed/state/*.pid; do
	p=$(cat "$f")
	kb=$(awk '/VmRSS/{print $2}' "/proc/$p/status")
	total=$((total + kb))
	printf '    %-24s %5d MiB\n' "$(basename "$f" .pid)" $((kb / 1024))
done
echo "idle RSS after ${IDLE}s (5 processes):    $((total / 1024)) MiB"
hz=$(getconf CLK_TCK)
echo "idle CPU over ${IDLE}s:                   $(((c1 - c0) * 1000 / hz)) ms ($(((c1 - c0) * 1000 / hz / IDLE / 10)) % of one core)"

t0=$(ms)
"$WORK/testbed" --dir "$WORK/bed" down 2>/dev/null
t1=$(ms)
echo "testbed down:                           $((t1 - t0)) ms"
