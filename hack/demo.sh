#!/usr/bin/env bash
# `make demo`: build and install both plugins, start the local HA-shaped test
# bed (a real etcd + kube-apiserver + controller-manager + scheduler; the five
# nodes are simulated by kwok), then inspect it through the real kubectl.
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

say "Starting the local cluster"
go run ./hack/testbed up
export KUBECONFIG=$PWD/.testbed/kubeconfig
export PATH=$BINDIR:$KBIN:$PATH

say "kubectl hacluster version / docker k8sprep version"
kubectl hacluster version
docker k8sprep version

say "kubectl get nodes (kwok-simulated nodes shaped like a kubeadm HA cluster)"
kubectl get nodes -o wide

say "kubectl hacluster inspect components"
kubectl hacluster inspect components

say "Bare hosts for bootstrap: 3 Debian servers over SSH (they are Docker containers on this machine)"
make --no-print-directory images >/dev/null
go run ./hack/nodebed up -n 3
subnet=$(sed -n 's/.*"subnet": "\([0-9.]*\)\.0\/24".*/\1/p' .nodebed/info.json)
cat >.nodebed/cluster.yaml <<EOF
apiVersion: hacluster.io/v1alpha1
kind: Cluster
metadata: {name: demo}
spec:
  ssh: {user: admin, keyFile: .nodebed/ssh/id_ed25519, knownHostsFile: .nodebed/ssh/known_hosts}
  hosts:
    - {name: node-1, address: $subnet.11, roles: [control-plane]}
    - {name: node-2, address: $subnet.12, roles: [control-plane]}
    - {name: node-3, address: $subnet.13, roles: [worker]}
  controlPlaneEndpoint: {vip: $subnet.100}
EOF

say "kubectl hacluster preflight -f .nodebed/cluster.yaml (read-only, host keys checked)"
kubectl hacluster preflight -f .nodebed/cluster.yaml

cat <<EOT

The cluster and the hosts keep running. Try:
  export KUBECONFIG=$KUBECONFIG PATH=$BINDIR:$KBIN:\$PATH
  kubectl hacluster inspect components -o wide
  kubectl hacluster explain service-types
  kubectl hacluster proxymode
  kubectl hacluster preflight -f .nodebed/cluster.yaml -o json
Stop them with: make testbed-down nodebed-down
EOT
