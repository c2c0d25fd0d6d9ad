#!/usr/bin/env bash
# `make demo`: build and install both plugins, start four bare Debian hosts
# (containers of the node bed, reachable over SSH) with the upstream in a box,
# bootstrap an HA cluster on them (3 control planes behind a keepalived VIP +
# HAProxy, 1 worker), inspect it, run a workload across nodes, and print the
# whole time.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "Building and installing the plugins"
make --no-print-directory install
BINDIR=${BINDIR:-$HOME/.local/bin}

say "Building the pinned Kubernetes binaries (cached after the first run)"
make --no-print-directory k8s-tools
K8S_VERSION=${K8S_VERSION:-v1.37.2}
KBIN=$PWD/.cache/k8s/$K8S_VERSION/bin

say "Four bare Debian hosts over SSH: Docker containers on this machine, not VMs (and an upstream in a box: release files + registry)"
make --no-print-directory images upstream >/dev/null
go run ./hack/nodebed up -n 4
export PATH=$BINDIR:$KBIN:$PATH
export KUBECONFIG=$PWD/.nodebed/kubeconfig
CF=.nodebed/cluster.yaml

# The article's Metrics Server too: two lines in the cluster file (the catalog
# pins the manifest's sha256, as `kubectl hacluster addons fetch` prints it).
if [ -f .nodebed/addons.yaml ]; then
	sed "s|^  artifacts:\$|  artifacts:\n    addonsCatalog: $PWD/.nodebed/addons.yaml|" .nodebed/cluster.yaml >.nodebed/cluster-demo.yaml
	echo "  addons: [metrics-server]" >>.nodebed/cluster-demo.yaml
	CF=.nodebed/cluster-demo.yaml
fi

say "kubectl hacluster preflight -f $CF (read-only: host keys checked, nothing installed)"
kubectl hacluster preflight -f $CF

say "kubectl hacluster bootstrap -f $CF (3 control planes + 1 worker, keepalived + HAProxy VIP, flannel, metrics-server)"
t0=$SECONDS
kubectl hacluster bootstrap -f $CF --kubeconfig "$KUBECONFIG"
echo "bootstrap took $((SECONDS - t0))s"

say "kubectl get nodes -o wide (through the VIP)"
kubectl get nodes -o wide

say "kubectl hacluster inspect components"
kubectl hacluster inspect components

if grep -q '^  addons: \[metrics-server\]' $CF; then
	say "kubectl top nodes (metrics-server, verifying the kubelets' certificates)"
	for _ in 1 2 3 4 5 6 7 8 9 10; do kubectl top nodes 2>/dev/null && break; sleep 3; done
fi

say "A workload across nodes: two Pods on two nodes reach each other and a Service by its DNS name"
kubectl apply -f hack/netcheck/netcheck.yaml >/dev/null
kubectl rollout status deployment/netcheck --timeout=3m >/dev/null
mapfile -t pods < <(kubectl get pods -l app=netcheck -o jsonpath='{range .items[*]}{.metadata.name} {.status.podIP}{"\n"}{end}')
read -r a aip <<<"${pods[0]}"
read -r b bip <<<"${pods[1]}"
printf '%s -> %s: ' "$a" "$bip"; kubectl exec "$a" -- /netcheck get "http://$bip:8080/"
printf '%s -> %s: ' "$b" "$aip"; kubectl exec "$b" -- /netcheck get "http://$aip:8080/"
printf '%s -> netcheck.default.svc.cluster.local: ' "$a"; kubectl exec "$a" -- /netcheck get http://netcheck.default.svc.cluster.local/

say "Running bootstrap again changes nothing"
kubectl hacluster bootstrap -f $CF --kubeconfig "$KUBECONFIG" | tail -3

cat <<EOT

The demo took $SECONDS s. The cluster keeps running on the four containers. Try:
  export KUBECONFIG=$KUBECONFIG PATH=$BINDIR:$KBIN:\$PATH
  kubectl hacluster inspect components -o wide
  kubectl hacluster explain service-types
  kubectl hacluster proxymode
  kubectl hacluster preflight -f $CF -o json
Remove it with: make nodebed-down
(make testbed-up starts the kwok-simulated HA shape the other examples in the README use.)
EOT
