package cmdline

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestFlagValue(t *testing.T) {
	args := []string{"kube-proxy", "--config=/var/lib/kube-proxy/config.conf", "--proxy-mode", "ipvs", "--v"}
	for flag, want := range map[string]string{"--config": "/var/lib/kube-proxy/config.conf", "--proxy-mode": "ipvs", "--v": "", "--absent": ""} {
		if got := FlagValue(args, flag); got != want {
			t.Errorf("FlagValue(%s) = %q, want %q", flag, got, want)
		}
	}
}

func TestPodFlag(t *testing.T) {
	spec := &corev1.PodSpec{Containers: []corev1.Container{
		{Name: "sidecar", Args: []string{"--port=1"}},
		{Name: "kube-apiserver", Command: []string{"kube-apiserver"}, Args: []string{"--service-node-port-range=30000-32767"}},
	}}
	if got := PodFlag(spec, "--service-node-port-range"); got != "30000-32767" {
		t.Errorf("PodFlag = %q", got)
	}
	if got := PodFlag(spec, "--missing"); got != "" {
		t.Errorf("PodFlag(missing) = %q", got)
	}
}
