package bootstrap

import (
	"context"
	"strings"

	"github.com/hacluster/hacluster/pkg/facts"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/remote"
)

// The kubelet's units, as the official kubeadm packages install them.
const (
	kubeletUnit    = "/usr/lib/systemd/system/kubelet.service"
	kubeletDropIn  = "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"
	kubeletService = `# Written by kubectl hacluster bootstrap (as the kubelet package ships it).
[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target containerd.service

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
`
	kubeadmDropIn = `# Written by kubectl hacluster bootstrap (as the kubeadm package ships it).
# kubeadm init / join write the kubeconfigs, config.yaml and kubeadm-flags.env this reads.
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
`
)

// kubeBinaries: kubelet, kubeadm and kubectl of the cluster's version in
// /usr/bin, the kubelet's unit and kubeadm's drop-in, the kubelet enabled
// (kubeadm starts it: until init or join it has no configuration).
func (r *run) kubeBinaries(ctx context.Context, h inventory.Host, c *remote.Conn, f *facts.Facts) (bool, string, error) {
	var did []string
	for _, b := range []string{"kubelet", "kubeadm", "kubectl"} {
		a := r.file(b, f)
		changed, err := r.ensureUpload(ctx, c, "/usr/bin/"+b, a.Path, a.SHA256, 0o755)
		if err != nil {
			return false, "", err
		}
		if changed {
			did = append(did, b)
		}
	}
	units := false
	for _, u := range []struct{ path, data string }{{kubeletUnit, kubeletService}, {kubeletDropIn, kubeadmDropIn}} {
		changed, err := r.ensureContent(ctx, c, u.path, []byte(u.data), 0o644)
		if err != nil {
			return false, "", err
		}
		units = units || changed
	}
	enabled, _ := c.Output(ctx, "systemctl is-enabled kubelet 2>/dev/null || true", false)
	if units || strings.TrimSpace(enabled) != "enabled" {
		if _, err := c.Output(ctx, "systemctl daemon-reload && systemctl enable -q kubelet", true); err != nil {
			return false, "", err
		}
		did = append(did, "kubelet unit enabled")
	}
	if len(did) == 0 {
		return false, "kubelet, kubeadm, kubectl " + r.c.Spec.Kubernetes.Version + " already installed", nil
	}
	return true, strings.Join(did, ", "), nil
}
