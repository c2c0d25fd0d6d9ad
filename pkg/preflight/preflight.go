// Package preflight judges the hosts of an inventory before anything is
// installed: per host what kubeadm's preflight checks (under kubeadm's check
// names), and across hosts what no installer checks (the article's first
// rule: unique hostname, MAC, product_uuid and machine-id; clock skew; the
// VIP free and in the control planes' subnet; the cluster's networks not
// overlapping the hosts'; the ports kubeadm's HA topology needs reachable
// between the hosts, ports.go). Every finding names the host, the check and the
// fix. Things bootstrap changes itself (swap, ip_forward, br_netfilter,
// SELinux) are findings of severity Change: what will be done, not a problem.
package preflight

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hacluster/hacluster/pkg/facts"
	"github.com/hacluster/hacluster/pkg/inventory"
)

// Severity of a finding.
type Severity string

const (
	Error   Severity = "error"   // bootstrap refuses to go on (unless ignored)
	Warning Severity = "warning" // works, but a person should know
	Change  Severity = "change"  // bootstrap will change this itself
)

// Finding is one result.
type Finding struct {
	Host     string   `json:"host"` // "" for a cluster-wide finding
	Check    string   `json:"check"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	Fix      string   `json:"fix,omitempty"`
}

func (f Finding) String() string {
	s := fmt.Sprintf("[%s] %s", f.Check, f.Message)
	if f.Host != "" {
		s = f.Host + ": " + s
	}
	if f.Fix != "" {
		s += " (fix: " + f.Fix + ")"
	}
	return s
}

// Host is one inventory host with its facts.
type Host struct {
	inventory.Host
	Facts *facts.Facts
}

// Prober runs a read-only script on a host (the VIP check pings from a
// control plane); nil skips the checks that need it.
type Prober func(ctx context.Context, host, script string) (string, error)

// Limits kubeadm checks on control planes.
const (
	MinControlPlaneCPUs   = 2
	MinControlPlaneMemMiB = 1700
	WarnClockSkew         = 2 * time.Second
	MaxClockSkew          = 30 * time.Second
)

// Run checks every host and the cluster. The result is sorted: errors first.
func Run(ctx context.Context, c *inventory.Cluster, hosts []Host, probe Prober) []Finding {
	var out []Finding
	for _, h := range hosts {
		out = append(out, checkHost(c, h)...)
	}
	out = append(out, checkAcross(c, hosts)...)
	if probe != nil {
		out = append(out, checkVIPFree(ctx, c, hosts, probe)...)
		out = append(out, checkPorts(ctx, c, hosts, probe)...)
		out = append(out, checkMirrors(ctx, c, hosts, probe)...)
	}
	rank := map[Severity]int{Error: 0, Warning: 1, Change: 2}
	sort.SliceStable(out, func(i, j int) bool { return rank[out[i].Severity] < rank[out[j].Severity] })
	return out
}

// Failed returns the errors that are not ignored. ignore holds check names
// (case-insensitive) or "all", like kubeadm's --ignore-preflight-errors;
// ignored errors are kept in the report as warnings.
func Failed(findings []Finding, ignore []string) []Finding {
	var out []Finding
	for i, f := range findings {
		if f.Severity != Error {
			continue
		}
		if slices.ContainsFunc(ignore, func(s string) bool { return strings.EqualFold(s, f.Check) || strings.EqualFold(s, "all") }) {
			findings[i].Severity = Warning
			findings[i].Message += " (ignored)"
			continue
		}
		out = append(out, f)
	}
	return out
}

func checkHost(c *inventory.Cluster, h Host) []Finding {
	f := h.Facts
	var out []Finding
	add := func(check string, sev Severity, msg, fix string) {
		out = append(out, Finding{Host: h.Name, Check: check, Severity: sev, Message: msg, Fix: fix})
	}
	if f.Init != "systemd" {
		add("InitSystem", Error, fmt.Sprintf("PID 1 is %q, not systemd: bootstrap installs systemd units", f.Init), "use a distribution booted with systemd")
	}
	if f.PackageManager == "" {
		add("PackageManager", Error, "no apt-get, dnf, yum or zypper: bootstrap installs conntrack, socat and the load balancer with the host's package manager", "")
	}
	switch f.Arch {
	case "x86_64", "aarch64":
	default:
		add("Arch", Error, fmt.Sprintf("architecture %q: Kubernetes binaries exist for x86_64 and aarch64", f.Arch), "")
	}
	if h.HasRole(inventory.RoleControlPlane) {
		if f.CPUs < MinControlPlaneCPUs {
			add("NumCPU", Error, fmt.Sprintf("%d CPU(s); a control plane needs at least %d", f.CPUs, MinControlPlaneCPUs), "give the machine more CPUs")
		}
		if f.MemoryMiB < MinControlPlaneMemMiB {
			add("Mem", Error, fmt.Sprintf("%d MiB of memory; a control plane needs at least %d MiB", f.MemoryMiB, MinControlPlaneMemMiB), "give the machine more memory")
		}
	}
	if f.Hostname != h.Name {
		add("Hostname", Warning, fmt.Sprintf("the hostname is %q, the inventory calls it %q: the Node will be %q", f.Hostname, h.Name, h.Name),
			fmt.Sprintf("hostnamectl set-hostname %s", h.Name))
	}
	if !f.CgroupV2 {
		add("SystemVerification", Warning, "cgroup v1 (in maintenance mode since Kubernetes 1.31; kubelet 1.35 and later refuse it unless failCgroupV1: false, which bootstrap sets)", "boot with systemd.unified_cgroup_hierarchy=1")
	}
	if f.SwapKiB > 0 {
		add("Swap", Change, fmt.Sprintf("%d MiB of swap in use: it will be turned off now and in /etc/fstab", f.SwapKiB/1024), "")
	}
	if f.Sysctls["net.ipv4.ip_forward"] != "1" {
		add("FileContent--proc-sys-net-ipv4-ip_forward", Change, "net.ipv4.ip_forward is not 1: it will be set and persisted", "")
	}
	if !f.BrNetfilter {
		add("FileExisting--proc-sys-net-bridge-bridge-nf-call-iptables", Change, "br_netfilter is not loaded: it will be loaded and persisted", "")
	}
	if f.SELinux == "enforcing" {
		add("SELinux", Change, "SELinux is enforcing: it will be set to permissive (as the kubeadm install guide does)", "")
	}
	if !f.Overlay {
		add("Overlay", Error, "the overlay file system is not available: containerd's snapshotter needs it", "load the overlay module")
	}
	if _, set := c.Spec.Kubernetes.Kubelet["resolvConf"]; loopbackOnly(f.Nameservers) && !set {
		add("Resolver", Warning, fmt.Sprintf("/etc/resolv.conf names only loopback resolvers (%s): Pods must not inherit them, so the kubelet gets a resolvConf with an upstream", strings.Join(f.Nameservers, ", ")),
			"bootstrap uses /run/systemd/resolve/resolv.conf when systemd-resolved runs; otherwise set spec.kubernetes.kubelet.resolvConf")
	}
	for _, u := range []string{"firewalld", "ufw"} {
		if f.Active[u] == "active" {
			add("Firewall", Warning, u+" is active: bootstrap does not change your firewall", "open 6443, 2379-2380, 10250, 10257, 10259 and the endpoint port between the hosts")
		}
	}
	switch {
	case f.Cluster != "" && f.Cluster != c.Metadata.Name:
		add("OtherCluster", Error, fmt.Sprintf("bootstrap was building cluster %q on this host (%s), not %q", f.Cluster, facts.ClusterMarker, c.Metadata.Name),
			"take the host out of this cluster file, or `kubeadm reset` it and remove "+facts.ClusterMarker)
		return out
	case f.Cluster != "" && !f.KubeletConf:
		// An interrupted bootstrap of this cluster: its HAProxy, keepalived
		// (the VIP) and kubeadm's components hold the ports now.
		add("Resume", Change, "bootstrap of this cluster began here: it goes on from what is done (the ports in use are its own)", "")
		return out
	}
	if f.KubeletConf {
		add("AlreadyNode", Warning, "/etc/kubernetes/kubelet.conf exists: the host is already a node (of this cluster, if bootstrap built it)", "`kubeadm reset` it if it belongs to another cluster")
		return out
	}
	ports := []int{10250}
	if h.HasRole(inventory.RoleControlPlane) {
		ports = append(ports, 6443, 2379, 2380, 10257, 10259)
		if e := c.Spec.ControlPlaneEndpoint; e.VIP != "" {
			ports = append(ports, e.Port)
		}
	}
	for _, p := range ports {
		if f.Listens(p) {
			add(fmt.Sprintf("Port-%d", p), Error, fmt.Sprintf("something already listens on port %d", p), fmt.Sprintf("find it with `ss -ltnp 'sport = :%d'`", p))
		}
	}
	return out
}

func loopbackOnly(ns []string) bool {
	if len(ns) == 0 {
		return false
	}
	for _, n := range ns {
		a, err := netip.ParseAddr(n)
		if err != nil || !a.IsLoopback() {
			return false
		}
	}
	return true
}

func checkAcross(c *inventory.Cluster, hosts []Host) []Finding {
	var out []Finding
	dup := func(check, what string, key func(Host) string, fix string) {
		seen := map[string]string{}
		for _, h := range hosts {
			k := key(h)
			if k == "" {
				continue
			}
			if other, ok := seen[k]; ok {
				out = append(out, Finding{Host: h.Name, Check: check, Severity: Error,
					Message: fmt.Sprintf("same %s as %s (%s)", what, other, k), Fix: fix})
				continue
			}
			seen[k] = h.Name
		}
	}
	dup("DuplicateHostname", "hostname", func(h Host) string { return h.Facts.Hostname }, "give every host its own hostname (hostnamectl set-hostname)")
	dup("DuplicateProductUUID", "product_uuid", func(h Host) string { return h.Facts.ProductUUID }, "a cloned VM: give it a new UUID in the hypervisor")
	dup("DuplicateMachineID", "machine-id", func(h Host) string { return h.Facts.MachineID }, "a cloned image: rm /etc/machine-id && systemd-machine-id-setup, then reboot")
	dup("DuplicateMAC", "MAC address", func(h Host) string {
		ip, err := netip.ParseAddr(h.InternalAddress)
		if err != nil {
			return ""
		}
		if i, _ := h.Facts.InterfaceFor(ip); i != nil {
			return i.MAC
		}
		return ""
	}, "a cloned VM: give it a new MAC address in the hypervisor")
	for _, h := range hosts {
		ip, err := netip.ParseAddr(h.InternalAddress)
		if err == nil {
			if i, _ := h.Facts.InterfaceFor(ip); i == nil {
				out = append(out, Finding{Host: h.Name, Check: "InternalAddress", Severity: Error,
					Message: fmt.Sprintf("no interface holds %s", ip), Fix: "set internalAddress to one of the host's addresses"})
			}
		}
	}
	// Clock skew: against this machine's clock, and between the hosts.
	if len(hosts) > 0 {
		lo, hi := hosts[0], hosts[0]
		for _, h := range hosts[1:] {
			if h.Facts.Offset < lo.Facts.Offset {
				lo = h
			}
			if h.Facts.Offset > hi.Facts.Offset {
				hi = h
			}
		}
		skew := hi.Facts.Offset - lo.Facts.Offset
		if skew > WarnClockSkew {
			sev := Warning
			if skew > MaxClockSkew {
				sev = Error
			}
			out = append(out, Finding{Check: "ClockSkew", Severity: sev,
				Message: fmt.Sprintf("the clocks of %s and %s are %s apart (certificates and etcd leases need them in step)", lo.Name, hi.Name, skew.Round(time.Millisecond)),
				Fix:     "run an NTP client (systemd-timesyncd, chrony) on every host"})
		}
	}
	// The cluster's networks must not overlap the hosts'. A node's own
	// CNI interfaces (cni0, flannel.1) carry pod-subnet addresses: skip nodes.
	pod, _ := netip.ParsePrefix(c.Spec.Network.PodSubnet)
	svc, _ := netip.ParsePrefix(c.Spec.Network.ServiceSubnet)
	for _, h := range hosts {
		if h.Facts.KubeletConf {
			continue
		}
		for _, n := range h.Facts.Networks() {
			for _, cn := range []struct {
				name string
				p    netip.Prefix
			}{{"pod subnet", pod}, {"service subnet", svc}} {
				if cn.p.IsValid() && cn.p.Overlaps(n) {
					out = append(out, Finding{Host: h.Name, Check: "SubnetOverlap", Severity: Error,
						Message: fmt.Sprintf("the %s %s overlaps the host's network %s", cn.name, cn.p, n),
						Fix:     "choose spec.network subnets no host uses"})
				}
			}
		}
	}
	// The VIP belongs in every control plane's subnet (keepalived moves it
	// with ARP, which does not cross routers).
	if vip, err := netip.ParseAddr(c.Spec.ControlPlaneEndpoint.VIP); err == nil {
		for _, h := range hosts {
			if !h.HasRole(inventory.RoleControlPlane) {
				continue
			}
			ip, err := netip.ParseAddr(h.InternalAddress)
			if err != nil {
				continue
			}
			if _, p := h.Facts.InterfaceFor(ip); p.IsValid() && !p.Contains(vip) {
				out = append(out, Finding{Host: h.Name, Check: "VIPSubnet", Severity: Error,
					Message: fmt.Sprintf("the VIP %s is not in this control plane's subnet %s", vip, p),
					Fix:     "pick a free address of " + p.String()})
			}
		}
	}
	return out
}

// checkVIPFree asks the first control plane whether anything answers on the
// VIP (ping, then the neighbour table).
func checkVIPFree(ctx context.Context, c *inventory.Cluster, hosts []Host, probe Prober) []Finding {
	vip := c.Spec.ControlPlaneEndpoint.VIP
	if vip == "" {
		return nil
	}
	for _, h := range hosts {
		if h.Facts.Cluster == c.Metadata.Name && h.HasRole(inventory.RoleControlPlane) {
			return nil // this cluster's keepalived may hold it already
		}
	}
	for _, h := range hosts {
		if !h.HasRole(inventory.RoleControlPlane) {
			continue
		}
		if h.Facts.KubeletConf {
			return nil // a cluster runs: the VIP is expected to answer
		}
		for _, i := range h.Facts.Interfaces {
			for _, a := range i.Addresses {
				if strings.HasPrefix(a, vip+"/") {
					return []Finding{{Host: h.Name, Check: "VIPInUse", Severity: Error, Message: fmt.Sprintf("the VIP %s is already an address of %s", vip, i.Name), Fix: "ip addr del " + a + " dev " + i.Name}}
				}
			}
		}
		out, err := probe(ctx, h.Name, fmt.Sprintf("if ping -c 2 -i 0.2 -W 1 %[1]s >/dev/null 2>&1; then echo answers; elif ip neigh show %[1]s 2>/dev/null | grep -q lladdr; then echo neighbour; else echo free; fi", vip))
		if err != nil {
			return []Finding{{Host: h.Name, Check: "VIPInUse", Severity: Warning, Message: "could not check the VIP: " + err.Error()}}
		}
		switch strings.TrimSpace(out) {
		case "free":
			return nil
		default:
			return []Finding{{Host: h.Name, Check: "VIPInUse", Severity: Error,
				Message: fmt.Sprintf("something already answers on the VIP %s (seen from %s)", vip, h.Name),
				Fix:     "pick a free address for spec.controlPlaneEndpoint.vip"}}
		}
	}
	return nil
}
