// Package oncluster holds no code: its test bootstraps a kubeadm cluster
// with spec.addons on the node bed (pkg/nodebed) through `kubectl hacluster
// bootstrap`'s code and checks that metrics-server really serves the
// metrics API, verifying the kubelets' certificates. It is a package of its
// own so that only this test waits for a bed.
package oncluster
