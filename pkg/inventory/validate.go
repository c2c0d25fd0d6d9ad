package inventory

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hacluster/hacluster/pkg/addons"
	"github.com/hacluster/hacluster/pkg/yamlfile"
)

var (
	// A Node name: a DNS-1123 subdomain, which kubeadm also requires of the hostname.
	nodeName = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	})
	dnsLabel = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`) })
	semver   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+$`) })
)

// Supported Kubernetes minor versions (kubeadm v1beta4 configuration, the
// kubelet's cgroup and sandbox settings bootstrap writes).
const (
	minMinor = 33
	maxMinor = 37
)

func fe(field, format string, args ...any) error {
	return yamlfile.FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Validate checks a defaulted Cluster and returns the first problem as a
// yamlfile.FieldError.
func (c *Cluster) Validate() error {
	if err := c.checkVersion(); err != nil {
		return err
	}
	if !dnsLabel().MatchString(c.Metadata.Name) {
		return fe("metadata.name", "%q: want a DNS label (lower-case letters, digits and '-'), it names the kubeconfig context", c.Metadata.Name)
	}
	s := &c.Spec
	if err := validateSSH("spec.ssh", s.SSH); err != nil {
		return err
	}
	if err := c.validateHosts(); err != nil {
		return err
	}
	if err := c.validateEndpoint(); err != nil {
		return err
	}
	if err := validateKubernetes(s.Kubernetes); err != nil {
		return err
	}
	if err := c.validateNetwork(); err != nil {
		return err
	}
	known := addons.Builtin().Names()
	seen := map[string]bool{}
	for i, a := range s.Addons {
		f := fmt.Sprintf("spec.addons[%d]", i)
		if !slices.Contains(known, a) {
			return fe(f, "unknown add-on %q (known: %s)", a, strings.Join(known, ", "))
		}
		if a == "calico" && s.Network.CNI != "none" {
			return fe(f, "calico is a CNI: set spec.network.cni: calico instead")
		}
		if seen[a] {
			return fe(f, "%q is listed twice", a)
		}
		seen[a] = true
	}
	return c.validateSources()
}

func validateSSH(field string, s SSH) error {
	if s.Port < 0 || s.Port > 65535 {
		return fe(field+".port", "%d is not a TCP port", s.Port)
	}
	if strings.ContainsAny(s.User, " \t\n:@") {
		return fe(field+".user", "%q is not a user name", s.User)
	}
	if s.Bastion != nil {
		b := s.Bastion
		if err := validHost(b.Address); err != nil {
			return fe(field+".bastion.address", "%v", err)
		}
		if b.Port < 0 || b.Port > 65535 {
			return fe(field+".bastion.port", "%d is not a TCP port", b.Port)
		}
	}
	if s.SudoPasswordFile != "" && s.Sudo != nil && !*s.Sudo {
		return fe(field+".sudoPasswordFile", "set, but sudo is false")
	}
	return nil
}

// validHost accepts an IP address or a DNS name.
func validHost(h string) error {
	if h == "" {
		return fmt.Errorf("missing: an IP address or a DNS name")
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	if strings.Count(h, ".") == 3 && strings.Trim(h, "0123456789.") == "" {
		return fmt.Errorf("%q is not a valid IPv4 address", h)
	}
	if !nodeName().MatchString(strings.ToLower(h)) || len(h) > 253 {
		return fmt.Errorf("%q is neither an IP address nor a DNS name", h)
	}
	return nil
}

func (c *Cluster) validateHosts() error {
	hosts := c.Spec.Hosts
	if len(hosts) == 0 {
		return fe("spec.hosts", "no hosts: list at least one control plane")
	}
	names := map[string]int{}
	addrs := map[string]int{}
	internal := map[string]int{}
	for i, h := range hosts {
		f := fmt.Sprintf("spec.hosts[%d]", i)
		if h.Name == "" {
			return fe(f+".name", "missing (the Node name, which the host's hostname must be)")
		}
		if !nodeName().MatchString(h.Name) || len(h.Name) > 63 {
			return fe(f+".name", "%q is not a valid Node name (lower-case letters, digits, '-' and '.')", h.Name)
		}
		if j, ok := names[h.Name]; ok {
			return fe(f+".name", "%q is also spec.hosts[%d]: names must be unique", h.Name, j)
		}
		names[h.Name] = i
		if err := validHost(h.Address); err != nil {
			return fe(f+".address", "%v", err)
		}
		ssh := c.HostSSH(h)
		key := net.JoinHostPort(h.Address, strconv.Itoa(ssh.Port))
		if j, ok := addrs[key]; ok {
			return fe(f+".address", "%s is also the address of spec.hosts[%d] (%s)", key, j, hosts[j].Name)
		}
		addrs[key] = i
		ia, err := netip.ParseAddr(h.InternalAddress)
		if err != nil {
			return fe(f+".internalAddress", "%q: want the IP address the other nodes reach this host at", h.InternalAddress)
		}
		if j, ok := internal[ia.String()]; ok {
			return fe(f+".internalAddress", "%s is also the internal address of spec.hosts[%d] (%s)", ia, j, hosts[j].Name)
		}
		internal[ia.String()] = i
		if len(h.Roles) == 0 {
			return fe(f+".roles", "missing: control-plane, worker or both")
		}
		for k, r := range h.Roles {
			if r != RoleControlPlane && r != RoleWorker {
				hint := ""
				if r == "master" {
					hint = " (kubeadm calls masters control-plane)"
				}
				return fe(fmt.Sprintf("%s.roles[%d]", f, k), "unknown role %q%s: want control-plane or worker", r, hint)
			}
			if slices.Index(h.Roles, r) != k {
				return fe(fmt.Sprintf("%s.roles[%d]", f, k), "%q is listed twice", r)
			}
		}
		if h.SSH != nil {
			if err := validateSSH(f+".ssh", ssh); err != nil {
				return err
			}
		}
	}
	if len(c.ControlPlanes()) == 0 {
		return fe("spec.hosts", "no host has the control-plane role")
	}
	return nil
}

func (c *Cluster) validateEndpoint() error {
	e := c.Spec.ControlPlaneEndpoint
	const f = "spec.controlPlaneEndpoint"
	switch {
	case e.VIP == "" && e.LoadBalancer == "":
		return fe(f, "set vip (keepalived + HAProxy on the control planes) or loadBalancer (host:port of your own)")
	case e.VIP != "" && e.LoadBalancer != "":
		return fe(f+".loadBalancer", "set vip or loadBalancer, not both")
	case e.LoadBalancer != "":
		host, port, err := net.SplitHostPort(e.LoadBalancer)
		if err != nil {
			return fe(f+".loadBalancer", "%q: want host:port", e.LoadBalancer)
		}
		if err := validHost(host); err != nil {
			return fe(f+".loadBalancer", "%v", err)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return fe(f+".loadBalancer", "%q is not a TCP port", port)
		}
		return nil
	}
	vip, err := netip.ParseAddr(e.VIP)
	if err != nil || !vip.Is4() {
		return fe(f+".vip", "%q: want a free IPv4 address in the control planes' subnet", e.VIP)
	}
	if e.Port < 1 || e.Port > 65535 {
		return fe(f+".port", "%d is not a TCP port", e.Port)
	}
	if e.Port == 6443 {
		return fe(f+".port", "6443 is the API servers' own port on the control planes, where HAProxy also runs: use another (16443 is usual)")
	}
	if e.VirtualRouterID < 1 || e.VirtualRouterID > 255 {
		return fe(f+".virtualRouterID", "%d: want 1-255", e.VirtualRouterID)
	}
	for i, h := range c.Spec.Hosts {
		if h.Address == e.VIP || h.InternalAddress == e.VIP {
			return fe(f+".vip", "%s is the address of spec.hosts[%d] (%s): the VIP must be a free address", e.VIP, i, h.Name)
		}
	}
	return nil
}

func validateKubernetes(k Kubernetes) error {
	const f = "spec.kubernetes"
	if !semver().MatchString(k.Version) {
		return fe(f+".version", "%q: want a release like %s", k.Version, DefaultKubernetesVersion)
	}
	parts := strings.Split(k.Version[1:], ".")
	major, _ := strconv.Atoi(parts[0])
	minor, _ := strconv.Atoi(parts[1])
	if major != 1 || minor < minMinor || minor > maxMinor {
		return fe(f+".version", "%s is not supported (v1.%d to v1.%d)", k.Version, minMinor, maxMinor)
	}
	if strings.Contains(k.ImageRepository, "://") || strings.ContainsAny(k.ImageRepository, " \t") {
		return fe(f+".imageRepository", "%q: want a registry path like registry.k8s.io (no scheme)", k.ImageRepository)
	}
	for i, san := range k.CertSANs {
		if err := validHost(san); err != nil {
			return fe(fmt.Sprintf("%s.certSANs[%d]", f, i), "%v", err)
		}
	}
	owned := map[string]string{
		"controlPlaneEndpoint": "spec.controlPlaneEndpoint", "kubernetesVersion": "spec.kubernetes.version",
		"networking": "spec.network", "imageRepository": "spec.kubernetes.imageRepository",
	}
	for key, by := range owned {
		if _, ok := k.Kubeadm[key]; ok {
			return fe(f+".kubeadm."+key, "set by %s: remove it here", by)
		}
	}
	if _, ok := k.KubeProxy["mode"]; ok {
		return fe(f+".kubeProxy.mode", "set by spec.network.kubeProxyMode: remove it here")
	}
	return nil
}

func (c *Cluster) validateNetwork() error {
	n := c.Spec.Network
	const f = "spec.network"
	pod, err := netip.ParsePrefix(n.PodSubnet)
	if err != nil || pod != pod.Masked() {
		return fe(f+".podSubnet", "%q: want a network like %s", n.PodSubnet, DefaultPodSubnet)
	}
	svc, err := netip.ParsePrefix(n.ServiceSubnet)
	if err != nil || svc != svc.Masked() {
		return fe(f+".serviceSubnet", "%q: want a network like %s", n.ServiceSubnet, DefaultServiceSubnet)
	}
	if pod.Overlaps(svc) {
		return fe(f+".podSubnet", "%s overlaps the service subnet %s", pod, svc)
	}
	if pod.Addr().Is4() && pod.Bits() > 24 {
		return fe(f+".podSubnet", "%s is too small: each node gets a /24 of it", pod)
	}
	if svc.Addr().Is4() && svc.Bits() < 12 {
		return fe(f+".serviceSubnet", "%s is too large: the API server takes at most a /12", svc)
	}
	for i, h := range c.Spec.Hosts {
		for _, a := range []string{h.InternalAddress, h.Address} {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				continue
			}
			for _, p := range []struct {
				field string
				net   netip.Prefix
			}{{"podSubnet", pod}, {"serviceSubnet", svc}} {
				if p.net.Contains(ip) {
					return fe(f+"."+p.field, "%s contains %s, the address of spec.hosts[%d] (%s): the cluster's networks must not overlap the hosts'", p.net, ip, i, h.Name)
				}
			}
		}
	}
	if vip, err := netip.ParseAddr(c.Spec.ControlPlaneEndpoint.VIP); err == nil && (pod.Contains(vip) || svc.Contains(vip)) {
		return fe("spec.controlPlaneEndpoint.vip", "%s is inside the pod or service subnet", vip)
	}
	if !dnsSubdomain(n.DNSDomain) {
		return fe(f+".dnsDomain", "%q is not a DNS domain", n.DNSDomain)
	}
	switch n.KubeProxyMode {
	case "iptables", "nftables", "ipvs":
	default:
		return fe(f+".kubeProxyMode", "%q: want iptables, nftables or ipvs", n.KubeProxyMode)
	}
	switch n.CNI {
	case "flannel", "calico", "none":
	default:
		return fe(f+".cni", "%q: want flannel, calico or none", n.CNI)
	}
	return nil
}

func dnsSubdomain(s string) bool { return len(s) <= 253 && nodeName().MatchString(s) }

func (c *Cluster) validateSources() error {
	a := c.Spec.Artifacts
	for site, base := range a.Mirrors {
		f := fmt.Sprintf("spec.artifacts.mirrors[%q]", site)
		u, err := url.Parse(site)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fe(f, "%q: the key is a site like https://dl.k8s.io or https://github.com", site)
		}
		if err := checkURL(base); err != nil {
			return fe(f, "%v", err)
		}
	}
	for name, v := range map[string]string{"containerd": a.Containerd, "runc": a.Runc, "cniPlugins": a.CNIPlugins, "crictl": a.Crictl, "flannel": a.Flannel} {
		if !semver().MatchString(v) {
			return fe("spec.artifacts."+name, "%q: want a release like v1.2.3", v)
		}
	}
	for reg, eps := range c.Spec.Registries.Mirrors {
		f := fmt.Sprintf("spec.registries.mirrors[%q]", reg)
		if strings.Contains(reg, "/") || validHost(strings.Split(reg, ":")[0]) != nil {
			return fe(f, "%q: the key is a registry host like registry.k8s.io or docker.io", reg)
		}
		if len(eps) == 0 {
			return fe(f, "no endpoints")
		}
		for i, ep := range eps {
			if err := checkURL(ep); err != nil {
				return fe(fmt.Sprintf("%s[%d]", f, i), "%v", err)
			}
		}
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q: want an http or https URL", s)
	}
	if u.User != nil {
		return fmt.Errorf("%q: no credentials in URLs (they would end up in files and logs)", s)
	}
	return nil
}

func joinHostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
