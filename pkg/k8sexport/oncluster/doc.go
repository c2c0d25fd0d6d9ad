// Package oncluster holds no code: its test runs what `docker k8sprep
// export k8s` writes for the sample Go app and MySQL on a real kubeadm
// cluster, bootstrapped by `kubectl hacluster bootstrap`'s code on the node
// bed (pkg/nodebed), and gets queries through the app. It is a package of
// its own so that only this test waits for a bed.
package oncluster
