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

cat <<EOT

The cluster keeps running. Try:
  export KUBECONFIG=$KUBECONFIG PATH=$BINDIR:$KBIN:\$PATH
  kubectl hacluster inspect components -o wide
  kubectl hacluster explain service-types
  kubectl hacluster proxymode
Stop it with: make testbed-down
EOT
