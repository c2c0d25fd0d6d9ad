package bootstrap

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/hacluster/hacluster/pkg/facts"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/remote"
)

// The kernel settings every node needs, persisted.
const (
	modulesFile = "/etc/modules-load.d/hacluster-kubernetes.conf"
	modules     = "# written by kubectl hacluster bootstrap: containerd's snapshotter and bridged Pod traffic through iptables\noverlay\nbr_netfilter\n"
	sysctlFile  = "/etc/sysctl.d/99-hacluster-kubernetes.conf"
	sysctls     = "# written by kubectl hacluster bootstrap (kubeadm's requirements)\nnet.bridge.bridge-nf-call-iptables = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\nnet.ipv4.ip_forward = 1\n"
)

// prepare: swap off (now and in /etc/fstab), overlay + br_netfilter loaded
// and persisted, the sysctls set and persisted, SELinux permissive, and the
// packages kubeadm and the load balancer need from the host's package manager.
func (r *run) prepare(ctx context.Context, h inventory.Host, c *remote.Conn, f *facts.Facts) (bool, string, error) {
	var did []string
	// First, the mark that this host is being built for this cluster:
	// preflight then takes the ports and the VIP that bootstrap's own
	// services hold for what they are when a run resumes.
	if _, err := r.ensureContent(ctx, c, facts.ClusterMarker, []byte(r.c.Metadata.Name+"\n"), 0o644); err != nil {
		return false, "", err
	}
	if f.SwapKiB > 0 {
		// Comment out swap lines (a backup stays as fstab.hacluster-bak).
		if _, err := c.Output(ctx, `swapoff -a && if grep -qE '^[^#].*\sswap\s' /etc/fstab; then sed -i.hacluster-bak -E 's/^([^#].*\sswap\s.*)$/# \1  # swap off for the kubelet (hacluster)/' /etc/fstab; fi`, true); err != nil {
			return false, "", err
		}
		did = append(did, "swap off")
	}
	changed, err := r.ensureContent(ctx, c, modulesFile, []byte(modules), 0o644)
	if err != nil {
		return false, "", err
	}
	if changed || !f.BrNetfilter {
		// modprobe fails on kernels with the modules built in (no
		// /lib/modules): what counts is that the features are there.
		if _, err := c.Output(ctx, "modprobe overlay 2>/dev/null; modprobe br_netfilter 2>/dev/null; test -d /proc/sys/net/bridge && grep -qw overlay /proc/filesystems", true); err != nil {
			return false, "", fmt.Errorf("br_netfilter or overlay is missing and cannot be loaded: %w", err)
		}
		did = append(did, "modules")
	}
	changed, err = r.ensureContent(ctx, c, sysctlFile, []byte(sysctls), 0o644)
	if err != nil {
		return false, "", err
	}
	wrong := f.Sysctls["net.ipv4.ip_forward"] != "1" || f.Sysctls["net.bridge.bridge-nf-call-iptables"] != "1"
	if changed || wrong {
		// Only this file: `sysctl --system` would also apply the
		// distribution's kernel.* files, which on a shared kernel (containers)
		// reach the machine underneath.
		if _, err := c.Output(ctx, "sysctl -q -p "+sysctlFile, true); err != nil {
			return false, "", err
		}
		did = append(did, "sysctls")
	}
	if f.SELinux == "enforcing" {
		if _, err := c.Output(ctx, "setenforce 0 && sed -i 's/^SELINUX=enforcing/SELINUX=permissive/' /etc/selinux/config", true); err != nil {
			return false, "", err
		}
		did = append(did, "SELinux permissive")
	}
	pkgs := missingPackages(r.c, h, f)
	if len(pkgs) > 0 {
		if err := install(ctx, c, f.PackageManager, pkgs); err != nil {
			return false, "", err
		}
		did = append(did, "installed "+strings.Join(pkgs, " "))
	}
	if len(did) == 0 {
		return false, "swap, modules, sysctls and packages already right", nil
	}
	return true, strings.Join(did, ", "), nil
}

// missingPackages are the packages whose commands the host lacks: what the
// kubelet and kube-proxy call (conntrack, socat, ethtool, ebtables) and, on
// control planes behind a VIP, HAProxy and keepalived.
func missingPackages(c *inventory.Cluster, h inventory.Host, f *facts.Facts) []string {
	want := map[string]string{"conntrack": "conntrack", "socat": "socat", "ethtool": "ethtool", "ebtables": "ebtables"}
	if c.Spec.ControlPlaneEndpoint.VIP != "" && h.HasRole(inventory.RoleControlPlane) {
		want["haproxy"], want["keepalived"] = "haproxy", "keepalived"
	}
	var out []string
	for cmd, pkg := range want {
		if f.Installed[cmd] == "" {
			out = append(out, pkg)
		}
	}
	slices.Sort(out)
	return out
}

func install(ctx context.Context, c *remote.Conn, pm string, pkgs []string) error {
	list := strings.Join(pkgs, " ")
	var script string
	switch pm {
	case "apt-get":
		script = "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends " + list + " >/dev/null"
	case "dnf", "yum":
		script = pm + " install -y -q " + list
	case "zypper":
		script = "zypper --non-interactive install " + list
	default:
		return fmt.Errorf("no package manager to install %s", list)
	}
	_, err := c.Output(ctx, script, true)
	return err
}
