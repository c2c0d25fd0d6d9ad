//go:build tools

// Package k8stools pins the main packages that build.sh compiles. The build tag
// keeps it out of every normal build.
package k8stools

import (
	_ "go.etcd.io/etcd/etcdctl/v3" // etcdctl for the etcd image of hack/upstream
	_ "go.etcd.io/etcd/server/v3"  // the etcd server, at the version Kubernetes pins
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
