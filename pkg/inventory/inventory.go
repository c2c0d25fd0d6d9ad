// Package inventory is the cluster file `kubectl hacluster bootstrap`, `join`
// and `remove` read (cluster.yaml): a versioned document
// (apiVersion hacluster.io/v1alpha1, kind Cluster) that lists the hosts and
// how to reach them over SSH, the control-plane endpoint (a VIP served by
// keepalived + HAProxy on the control planes, or an external load balancer),
// the Kubernetes version and networks, the CNI and add-ons, where artifacts
// and images come from, and kubeadm / kubelet / kube-proxy settings passed
// through as they are.
//
// Decoding is strict (unknown fields are errors), and every problem is one
// line with the file, line and field: "cluster.yaml:14: spec.hosts[1].roles:
// unknown role \"master\" (want control-plane or worker)". Load decodes,
// defaults and validates; Example is a commented file that loads.
package inventory

import (
	_ "embed"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/hacluster/hacluster/pkg/yamlfile"
)

// APIVersion and Kind identify the file.
const (
	APIVersion = "hacluster.io/v1alpha1"
	Kind       = "Cluster"
)

// Defaults.
const (
	DefaultKubernetesVersion = "v1.37.2"
	DefaultPodSubnet         = "10.244.0.0/16"
	DefaultServiceSubnet     = "10.96.0.0/12"
	DefaultDNSDomain         = "cluster.local"
	DefaultKubeProxyMode     = "iptables"
	DefaultCNI               = "flannel"
	DefaultLBPort            = 16443
	DefaultImageRepository   = "registry.k8s.io"
	DefaultSSHPort           = 22
	DefaultSSHUser           = "root"
)

// Roles of a host.
const (
	RoleControlPlane = "control-plane"
	RoleWorker       = "worker"
)

// Cluster is the whole file.
type Cluster struct {
	APIVersion string   `yaml:"apiVersion" json:"apiVersion"`
	Kind       string   `yaml:"kind" json:"kind"`
	Metadata   Metadata `yaml:"metadata" json:"metadata"`
	Spec       Spec     `yaml:"spec" json:"spec"`
}

// Metadata names the cluster (the kubeconfig context is hacluster-<name>).
type Metadata struct {
	Name string `yaml:"name" json:"name"`
}

// Spec is what the cluster is made of.
type Spec struct {
	// SSH holds the defaults for every host; a host's own ssh overrides them.
	SSH   SSH    `yaml:"ssh,omitempty" json:"ssh"`
	Hosts []Host `yaml:"hosts" json:"hosts"`
	// ControlPlaneEndpoint is how nodes and users reach the API servers.
	ControlPlaneEndpoint Endpoint   `yaml:"controlPlaneEndpoint" json:"controlPlaneEndpoint"`
	Kubernetes           Kubernetes `yaml:"kubernetes,omitempty" json:"kubernetes"`
	Network              Network    `yaml:"network,omitempty" json:"network"`
	// Addons to install after the CNI (names of `kubectl hacluster addons list`).
	Addons     []string   `yaml:"addons,omitempty" json:"addons,omitempty"`
	Artifacts  Artifacts  `yaml:"artifacts,omitempty" json:"artifacts"`
	Registries Registries `yaml:"registries,omitempty" json:"registries"`
}

// Host is one machine.
type Host struct {
	// Name is the Kubernetes Node name (and what the host's hostname must be).
	Name string `yaml:"name" json:"name"`
	// Address is where SSH reaches the host; InternalAddress (default
	// Address) is what the cluster uses between nodes.
	Address         string   `yaml:"address" json:"address"`
	InternalAddress string   `yaml:"internalAddress,omitempty" json:"internalAddress,omitempty"`
	Roles           []string `yaml:"roles" json:"roles"`
	// SSH overrides spec.ssh for this host.
	SSH *SSH `yaml:"ssh,omitempty" json:"ssh,omitempty"`
}

// SSH says how to log in to a host. Secrets are never in this file: a key
// file, the SSH agent, and a file holding the sudo password.
type SSH struct {
	User string `yaml:"user,omitempty" json:"user,omitempty"`
	Port int    `yaml:"port,omitempty" json:"port,omitempty"`
	// KeyFile is a private key (~ is expanded); Agent uses $SSH_AUTH_SOCK.
	KeyFile string `yaml:"keyFile,omitempty" json:"keyFile,omitempty"`
	Agent   *bool  `yaml:"agent,omitempty" json:"agent,omitempty"`
	// KnownHostsFile lists the trusted host keys (default ~/.ssh/known_hosts).
	KnownHostsFile string `yaml:"knownHostsFile,omitempty" json:"knownHostsFile,omitempty"`
	// Sudo runs privileged commands through sudo (default: when the user is
	// not root). SudoPasswordFile holds the password when sudo asks for one.
	Sudo             *bool    `yaml:"sudo,omitempty" json:"sudo,omitempty"`
	SudoPasswordFile string   `yaml:"sudoPasswordFile,omitempty" json:"sudoPasswordFile,omitempty"`
	Bastion          *Bastion `yaml:"bastion,omitempty" json:"bastion,omitempty"`
}

// Bastion is a jump host SSH goes through.
type Bastion struct {
	Address string `yaml:"address" json:"address"`
	Port    int    `yaml:"port,omitempty" json:"port,omitempty"`
	User    string `yaml:"user,omitempty" json:"user,omitempty"`
	KeyFile string `yaml:"keyFile,omitempty" json:"keyFile,omitempty"`
}

// Endpoint is the control-plane endpoint: either a VIP that keepalived moves
// between the control planes, in front of HAProxy on each of them (the
// article's setup, and kubeadm's HA guide), or an external load balancer.
type Endpoint struct {
	// VIP is a free address in the control planes' subnet.
	VIP string `yaml:"vip,omitempty" json:"vip,omitempty"`
	// Port is HAProxy's port on every control plane (default 16443; the API
	// servers keep 6443).
	Port int `yaml:"port,omitempty" json:"port,omitempty"`
	// Interface carries the VIP (default: the one holding the host's
	// internal address). VirtualRouterID is keepalived's (default 51).
	Interface       string `yaml:"interface,omitempty" json:"interface,omitempty"`
	VirtualRouterID int    `yaml:"virtualRouterID,omitempty" json:"virtualRouterID,omitempty"`
	// LoadBalancer is host:port of an external load balancer; no keepalived
	// or HAProxy is installed then.
	LoadBalancer string `yaml:"loadBalancer,omitempty" json:"loadBalancer,omitempty"`
}

// Kubernetes is what kubeadm installs.
type Kubernetes struct {
	Version         string `yaml:"version,omitempty" json:"version"`
	ImageRepository string `yaml:"imageRepository,omitempty" json:"imageRepository"`
	// CertSANs are extra names in the API server certificate (the endpoint
	// and every control plane are always in it).
	CertSANs []string `yaml:"certSANs,omitempty" json:"certSANs,omitempty"`
	// Kubeadm, Kubelet and KubeProxy are passed through to kubeadm's
	// ClusterConfiguration, KubeletConfiguration and KubeProxyConfiguration
	// for what this file does not model (fields as kubeadm spells them).
	Kubeadm   map[string]any `yaml:"kubeadm,omitempty" json:"kubeadm,omitempty"`
	Kubelet   map[string]any `yaml:"kubelet,omitempty" json:"kubelet,omitempty"`
	KubeProxy map[string]any `yaml:"kubeProxy,omitempty" json:"kubeProxy,omitempty"`
}

// Network is the cluster's networking.
type Network struct {
	PodSubnet     string `yaml:"podSubnet,omitempty" json:"podSubnet"`
	ServiceSubnet string `yaml:"serviceSubnet,omitempty" json:"serviceSubnet"`
	DNSDomain     string `yaml:"dnsDomain,omitempty" json:"dnsDomain"`
	// KubeProxyMode: iptables, nftables or ipvs.
	KubeProxyMode string `yaml:"kubeProxyMode,omitempty" json:"kubeProxyMode"`
	// CNI: flannel, calico or none (install your own).
	CNI string `yaml:"cni,omitempty" json:"cni"`
}

// Artifacts says where binaries come from.
type Artifacts struct {
	// Mirrors maps an upstream site to a base URL that serves the same paths:
	// {"https://dl.k8s.io": "http://mirror.local/dl.k8s.io"}.
	Mirrors map[string]string `yaml:"mirrors,omitempty" json:"mirrors,omitempty"`
	// Versions of what bootstrap installs besides Kubernetes.
	Containerd string `yaml:"containerd,omitempty" json:"containerd"`
	Runc       string `yaml:"runc,omitempty" json:"runc"`
	CNIPlugins string `yaml:"cniPlugins,omitempty" json:"cniPlugins"`
	Crictl     string `yaml:"crictl,omitempty" json:"crictl"`
	// Flannel is the flannel release of spec.network.cni: flannel.
	Flannel string `yaml:"flannel,omitempty" json:"flannel"`
	// Bundle is an offline bundle (`kubectl hacluster bundle build`): the
	// release files and images come from it, and no host reaches a release
	// site or a registry (~ expanded, relative to the current folder).
	Bundle string `yaml:"bundle,omitempty" json:"bundle,omitempty"`
	// AddonsCatalog is a catalog file of add-ons (the format of `kubectl
	// hacluster addons list -o yaml`) that spec.addons are taken from in
	// place of the built-in one: their versions, URLs (through Mirrors) and
	// the sha256 that must pin each manifest (~ expanded, relative to the
	// current folder).
	AddonsCatalog string `yaml:"addonsCatalog,omitempty" json:"addonsCatalog,omitempty"`
}

// Registries configures containerd's registry hosts.
type Registries struct {
	// Mirrors maps a registry to the endpoints containerd tries first:
	// {"registry.k8s.io": ["http://10.0.0.1:5000/v2/registry.k8s.io"]}.
	Mirrors map[string][]string `yaml:"mirrors,omitempty" json:"mirrors,omitempty"`
}

// Default versions of the runtime pieces (what hack/upstream builds).
const (
	DefaultContainerd = "v2.4.2"
	DefaultRunc       = "v1.5.3"
	DefaultCNIPlugins = "v1.10.0"
	DefaultCrictl     = "v1.37.0"
	DefaultFlannel    = "v0.28.10"
)

// Load reads, defaults and validates the file at path.
func Load(path string) (*Cluster, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse is Load of data already read; path names it in errors.
func Parse(path string, data []byte) (*Cluster, error) {
	c := &Cluster{}
	doc, err := yamlfile.Decode(path, data, c)
	if err != nil {
		return nil, err
	}
	if err := c.checkVersion(); err != nil {
		return nil, yamlfile.WithLine(path, doc, err)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, yamlfile.WithLine(path, doc, err)
	}
	return c, nil
}

func (c *Cluster) checkVersion() error {
	switch {
	case c.APIVersion == "":
		return yamlfile.FieldError{Field: "apiVersion", Message: "missing: this file needs apiVersion: " + APIVersion}
	case c.APIVersion != APIVersion:
		return yamlfile.FieldError{Field: "apiVersion", Message: fmt.Sprintf("%q is not a version this hacluster reads (it reads %s)", c.APIVersion, APIVersion)}
	case c.Kind != Kind:
		return yamlfile.FieldError{Field: "kind", Message: fmt.Sprintf("%q: want kind: %s", c.Kind, Kind)}
	}
	return nil
}

// SetDefaults fills what the file leaves out.
func (c *Cluster) SetDefaults() {
	s := &c.Spec
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&s.Kubernetes.Version, DefaultKubernetesVersion)
	def(&s.Kubernetes.ImageRepository, DefaultImageRepository)
	def(&s.Network.PodSubnet, DefaultPodSubnet)
	def(&s.Network.ServiceSubnet, DefaultServiceSubnet)
	def(&s.Network.DNSDomain, DefaultDNSDomain)
	def(&s.Network.KubeProxyMode, DefaultKubeProxyMode)
	def(&s.Network.CNI, DefaultCNI)
	def(&s.Artifacts.Containerd, DefaultContainerd)
	def(&s.Artifacts.Runc, DefaultRunc)
	def(&s.Artifacts.CNIPlugins, DefaultCNIPlugins)
	def(&s.Artifacts.Crictl, DefaultCrictl)
	def(&s.Artifacts.Flannel, DefaultFlannel)
	def(&s.SSH.User, DefaultSSHUser)
	if s.SSH.Port == 0 {
		s.SSH.Port = DefaultSSHPort
	}
	if s.ControlPlaneEndpoint.VIP != "" {
		if s.ControlPlaneEndpoint.Port == 0 {
			s.ControlPlaneEndpoint.Port = DefaultLBPort
		}
		if s.ControlPlaneEndpoint.VirtualRouterID == 0 {
			s.ControlPlaneEndpoint.VirtualRouterID = 51
		}
	}
	for i := range s.Hosts {
		h := &s.Hosts[i]
		def(&h.InternalAddress, h.Address)
	}
}

// HostSSH is the SSH configuration of host h: spec.ssh with h's own
// settings on top.
func (c *Cluster) HostSSH(h Host) SSH {
	out := c.Spec.SSH
	if o := h.SSH; o != nil {
		if o.User != "" {
			out.User = o.User
		}
		if o.Port != 0 {
			out.Port = o.Port
		}
		if o.KeyFile != "" {
			out.KeyFile = o.KeyFile
		}
		if o.Agent != nil {
			out.Agent = o.Agent
		}
		if o.KnownHostsFile != "" {
			out.KnownHostsFile = o.KnownHostsFile
		}
		if o.Sudo != nil {
			out.Sudo = o.Sudo
		}
		if o.SudoPasswordFile != "" {
			out.SudoPasswordFile = o.SudoPasswordFile
		}
		if o.Bastion != nil {
			out.Bastion = o.Bastion
		}
	}
	return out
}

// UsesSudo reports whether privileged commands go through sudo.
func (s SSH) UsesSudo() bool {
	if s.Sudo != nil {
		return *s.Sudo
	}
	return s.User != "root"
}

// ControlPlanes and Workers return the hosts with that role, in file order.
func (c *Cluster) ControlPlanes() []Host { return c.withRole(RoleControlPlane) }

// Workers returns the hosts with the worker role.
func (c *Cluster) Workers() []Host { return c.withRole(RoleWorker) }

func (c *Cluster) withRole(role string) []Host {
	var out []Host
	for _, h := range c.Spec.Hosts {
		if h.HasRole(role) {
			out = append(out, h)
		}
	}
	return out
}

// HasRole reports whether the host has the role (RoleControlPlane, RoleWorker).
func (h Host) HasRole(role string) bool { return slices.Contains(h.Roles, role) }

// Endpoint is the control-plane endpoint as host:port.
func (c *Cluster) Endpoint() string {
	e := c.Spec.ControlPlaneEndpoint
	if e.LoadBalancer != "" {
		return e.LoadBalancer
	}
	return joinHostPort(e.VIP, e.Port)
}

// ContextName is the cluster's kubeconfig context: hacluster-<name>.
func (c *Cluster) ContextName() string { return "hacluster-" + c.Metadata.Name }

// ExpandHome replaces a leading ~/ with the user's home directory.
func ExpandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return home + p[1:]
		}
	}
	return p
}

//go:embed example.yaml
var example string

// Example is a commented cluster.yaml (what `bootstrap --example` prints).
func Example() string { return example }
