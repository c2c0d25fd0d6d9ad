#!/usr/bin/env bash
# make bench: `kubectl hacluster join` next to the hand-typed kubeadm steps, in
# the same run on the same node bed. A cluster of 3 control planes + 1 worker
# is bootstrapped first; then, each from the command to its Node Ready:
#   - a worker: `kubectl hacluster join NAME=IP` on one bare host, and by hand
#     on another: `kubeadm token create --print-join-command` on cp-1, the host
#     prepared over ssh (hand-prep.bash, the article's steps), kubeadm join;
#   - a control plane: `join NAME=IP --control-plane` on a third bare host,
#     and by hand on a fourth: token create, `kubeadm init phase upload-certs
#     --upload-certs`, the host prepared, `kubeadm join --control-plane`
#     (kubeadm returns once the etcd member is promoted to a voting member).
#     The hand-typed way leaves HAProxy and keepalived as they were, the step
#     people forget; join rewrites them on every control plane, one by one.
#
# Env: HACLUSTER_BIN (default bin/).
set -Eeuo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BIN=${HACLUSTER_BIN:-$ROOT/bin}/kubectl-hacluster
D=$ROOT/.cache/bench-join
W=$(mktemp -d)
NB=(go run ./hack/nodebed --dir "$D" --id benchjoin)
# shellcheck source=hack/bench/hand-prep.bash
. "$ROOT/hack/bench/hand-prep.bash"
log() { printf '[bench %(%T)T] %s\n' -1 "$*" >&2; }
down() { "${NB[@]}" down >/dev/null 2>&1 || true; }
# Eight kubelets and containerds on one kernel need more inotify instances
# than its default 128 (the seventh kubelet fails with "inotify_init: too
# many open files"): raised for the run, put back at the end.
INOTIFY=$(cat /proc/sys/fs/inotify/max_user_instances)
[ "$INOTIFY" -ge 1024 ] || sysctl -qw fs.inotify.max_user_instances=1024
trap 'down; rm -rf "$W"; sysctl -qw fs.inotify.max_user_instances="$INOTIFY"' EXIT
[ -x "$BIN" ] || { echo "no $BIN: run make build" >&2; exit 1; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

down
log "8 bare hosts, 4 of them spare"
"${NB[@]}" up -n 8 -spare 4 >/dev/null
# shellcheck disable=SC1091
. "$D/nodebed.env"
read -r -a IPS <<<"$NODEBED_IPS"
read -r -a HOSTS <<<"$NODEBED_HOSTS"
[ -n "${NODEBED_UPSTREAM:-}" ] || { echo "the bed has no upstream in a box: run make upstream" >&2; exit 1; }
SSH=(ssh -i "$NODEBED_KEY" -o UserKnownHostsFile="$NODEBED_KNOWN_HOSTS" -o BatchMode=yes -o LogLevel=ERROR)
CP1=root@${IPS[0]}
kc() { "${SSH[@]}" "$CP1" kubectl --kubeconfig /etc/kubernetes/admin.conf "$@"; }
F=$W/cluster.yaml
cp "$D/cluster.yaml" "$F"
OPTS=(-f "$F" --cache-dir "$W/cache" --state-dir "$W/state")

log "bootstrap of ${HOSTS[*]:0:4}"
"$BIN" bootstrap "${OPTS[@]}" --merge-kubeconfig=false >"$W/bootstrap.txt" 2>&1 || { cat "$W/bootstrap.txt"; exit 1; }

# by_hand NAME IP [--control-plane]: the hand-typed join, until Ready.
by_hand() {
	local name=$1 ip=$2 cp=${3:-} join key extra=""
	join=$("${SSH[@]}" "$CP1" kubeadm token create --print-join-command)
	if [ -n "$cp" ]; then
		key=$("${SSH[@]}" "$CP1" kubeadm init phase upload-certs --upload-certs 2>/dev/null | tail -1)
		extra="--control-plane --certificate-key $key --apiserver-advertise-address $ip"
		hand_prep "$ip" "$W/prep-$name.log" haproxy keepalived
	else
		hand_prep "$ip" "$W/prep-$name.log"
	fi
	"${SSH[@]}" "root@$ip" "$join $extra --ignore-preflight-errors=SystemVerification" >"$W/join-$name.log" 2>&1 || { tail -30 "$W/join-$name.log" >&2; exit 1; }
	kc wait --for=condition=Ready "node/$name" --timeout=5m >/dev/null
}

log "worker: kubectl hacluster join ${HOSTS[4]}"
t=$(now)
"$BIN" join "${HOSTS[4]}=${IPS[4]}" "${OPTS[@]}" >"$W/join-w.txt" 2>&1 || { cat "$W/join-w.txt"; exit 1; }
worker_join=$(since "$t")
log "worker: by hand on ${HOSTS[5]}"
t=$(now)
by_hand "${HOSTS[5]}" "${IPS[5]}"
worker_hand=$(since "$t")
log "control plane: kubectl hacluster join ${HOSTS[6]} --control-plane"
t=$(now)
"$BIN" join "${HOSTS[6]}=${IPS[6]}" --control-plane "${OPTS[@]}" >"$W/join-cp.txt" 2>&1 || { cat "$W/join-cp.txt"; exit 1; }
cp_join=$(since "$t")
log "control plane: by hand on ${HOSTS[7]}"
t=$(now)
by_hand "${HOSTS[7]}" "${IPS[7]}" --control-plane
cp_hand=$(since "$t")
kc get nodes -o wide >&2

echo
printf '%-58s %8s\n' "join, from the command to the Node Ready" "seconds"
printf '%-58s %8.1f   (target < 15 s)\n' "worker: kubectl hacluster join" "$worker_join"
printf '%-58s %8.1f\n' "worker: by hand (token create, ssh prep, kubeadm join)" "$worker_hand"
printf '%-58s %8.1f   (target < 30 s)\n' "control plane: kubectl hacluster join (LB on every CP)" "$cp_join"
printf '%-58s %8.1f\n' "control plane: by hand (+ upload-certs; no LB update)" "$cp_hand"
echo "the control-plane join, phase by phase:" >&2
grep -v '^[0-9][0-9]:[0-9][0-9]:[0-9][0-9] ' "$W/join-cp.txt" >&2 || true
