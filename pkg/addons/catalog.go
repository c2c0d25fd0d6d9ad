// Package addons installs, checks and removes the add-ons a new kubeadm
// cluster needs (a CNI, metrics-server, a web UI) from pinned, checksummed
// manifests, with server-side apply. It knows nothing of cobra.
package addons

import (
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Source is one upstream manifest file of an add-on.
type Source struct {
	// URL is where the manifest is downloaded from.
	URL string `json:"url"`
	// SHA256 is the pinned hex checksum of the file. Empty means "not pinned":
	// the content cannot be downloaded from a URL without a checksum given
	// some other way (--sha256, a SHA256SUMS file written by `addons fetch`,
	// or a catalog file with pins).
	SHA256 string `json:"sha256,omitempty"`
}

// FileName is the base name the source is stored under in a bundle.
func (s Source) FileName() string {
	u := s.URL
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	return path.Base(u)
}

// UI describes how to log in to and reach a web UI add-on.
type UI struct {
	// Namespace holds the UI and the login ServiceAccounts hacluster adds.
	Namespace string `json:"namespace"`
	// Service and Port are the UI's Service and its port, LocalPort the
	// suggested local port for kubectl port-forward, Scheme http or https.
	Service   string `json:"service"`
	Port      int    `json:"port"`
	LocalPort int    `json:"localPort"`
	Scheme    string `json:"scheme"`
}

// Addon is one catalog entry.
type Addon struct {
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	Description string   `json:"description"`
	Homepage    string   `json:"homepage,omitempty"`
	Sources     []Source `json:"sources"`
	// Status is "recommended", "supported" or "archived".
	Status string `json:"status"`
	// Note explains the status (for example why an add-on is archived).
	Note string `json:"note,omitempty"`
	UI   *UI    `json:"ui,omitempty"`
}

// Pinned reports whether every source has a checksum.
func (a Addon) Pinned() bool {
	for _, s := range a.Sources {
		if s.SHA256 == "" {
			return false
		}
	}
	return len(a.Sources) > 0
}

// AccessCommand is the command that makes a UI add-on reachable from the
// user's machine, or "" for add-ons without a UI.
func (a Addon) AccessCommand() string {
	if a.UI == nil {
		return ""
	}
	return fmt.Sprintf("kubectl -n %s port-forward svc/%s %d:%d   # then open %s://localhost:%d/",
		a.UI.Namespace, a.UI.Service, a.UI.LocalPort, a.UI.Port, a.UI.Scheme, a.UI.LocalPort)
}

// Catalog is the set of add-ons hacluster knows.
type Catalog struct {
	Addons []Addon `json:"addons"`
}

// Get returns the add-on called name.
func (c *Catalog) Get(name string) (Addon, error) {
	for _, a := range c.Addons {
		if a.Name == name {
			return a, nil
		}
	}
	return Addon{}, fmt.Errorf("unknown add-on %q: known add-ons are %s", name, strings.Join(c.Names(), ", "))
}

// Names lists the add-on names in catalog order.
func (c *Catalog) Names() []string {
	n := make([]string, 0, len(c.Addons))
	for _, a := range c.Addons {
		n = append(n, a.Name)
	}
	return n
}

// Validate checks that a catalog is usable: unique names, a version, at
// least one http(s) source per add-on, well-formed checksums.
func (c *Catalog) Validate() error {
	seen := map[string]bool{}
	for i, a := range c.Addons {
		if a.Name == "" || a.Version == "" {
			return fmt.Errorf("catalog entry %d: name and version are required", i+1)
		}
		if seen[a.Name] {
			return fmt.Errorf("catalog: add-on %q listed twice", a.Name)
		}
		seen[a.Name] = true
		if len(a.Sources) == 0 {
			return fmt.Errorf("catalog: add-on %q has no sources", a.Name)
		}
		files := map[string]bool{}
		for _, s := range a.Sources {
			if !strings.HasPrefix(s.URL, "https://") && !strings.HasPrefix(s.URL, "http://") {
				return fmt.Errorf("catalog: add-on %q: source %q is not an http(s) URL", a.Name, s.URL)
			}
			if s.SHA256 != "" && !isSHA256(s.SHA256) {
				return fmt.Errorf("catalog: add-on %q: %q is not a sha256 (64 hex digits)", a.Name, s.SHA256)
			}
			if files[s.FileName()] {
				return fmt.Errorf("catalog: add-on %q: two sources named %q", a.Name, s.FileName())
			}
			files[s.FileName()] = true
		}
		if _, ok := fitters[a.Name]; !ok {
			return fmt.Errorf("catalog: add-on %q is not one hacluster knows how to fit to a cluster (known: %s)", a.Name, strings.Join(knownFitters(), ", "))
		}
	}
	return nil
}

// LoadCatalog reads a catalog file (YAML or JSON, the shape `addons list -o
// yaml` prints). Use it to pin your own checksums or point at a mirror.
func LoadCatalog(file string) (*Catalog, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read catalog: %w", err)
	}
	var c Catalog
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("catalog %s: %w", file, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &c, nil
}

func knownFitters() []string {
	n := make([]string, 0, len(fitters))
	for k := range fitters {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Builtin is the catalog compiled into the plugin.
//
// The checksums are deliberately empty: this release was built on a machine
// that could not reach GitHub, and a checksum nobody computed from the real
// file would be worse than none. Until a release pins them, install from a
// URL needs --sha256, or run `addons fetch` (it prints the sha256 of what it
// downloaded, for you to compare with upstream) and install with --from.
func Builtin() *Catalog {
	return &Catalog{Addons: []Addon{
		{
			Name:        "calico",
			Version:     "v3.33.1",
			Description: "Pod network (CNI) and network policy; IP pool taken from the cluster's podSubnet",
			Homepage:    "https://github.com/projectcalico/calico",
			Status:      "supported",
			Sources:     []Source{{URL: "https://raw.githubusercontent.com/projectcalico/calico/v3.33.1/manifests/calico.yaml"}},
		},
		{
			Name:        "metrics-server",
			Version:     "v0.8.1",
			Description: "Resource metrics API (kubectl top, HPA); verifies kubelet certificates by default",
			Homepage:    "https://github.com/kubernetes-sigs/metrics-server",
			Status:      "supported",
			Sources:     []Source{{URL: "https://github.com/kubernetes-sigs/metrics-server/releases/download/v0.8.1/components.yaml"}},
		},
		{
			Name:        "headlamp",
			Version:     "v0.45.0",
			Description: "Web UI maintained by SIG UI, the successor of Kubernetes Dashboard",
			Homepage:    "https://headlamp.dev/",
			Status:      "recommended",
			Sources:     []Source{{URL: "https://raw.githubusercontent.com/kubernetes-sigs/headlamp/v0.45.0/kubernetes-headlamp.yaml"}},
			UI:          &UI{Namespace: "kube-system", Service: "headlamp", Port: 80, LocalPort: 8080, Scheme: "http"},
		},
		{
			Name:        "dashboard",
			Version:     "v2.7.0",
			Description: "Kubernetes Dashboard, as in the article (archived upstream: prefer headlamp)",
			Homepage:    "https://github.com/kubernetes/dashboard",
			Status:      "archived",
			Note:        "kubernetes/dashboard was archived in January 2026 and gets no more fixes; SIG UI recommends headlamp. v2.7.0 is the last release shipped as a plain manifest.",
			Sources:     []Source{{URL: "https://raw.githubusercontent.com/kubernetes/dashboard/v2.7.0/aio/deploy/recommended.yaml"}},
			UI:          &UI{Namespace: "kubernetes-dashboard", Service: "kubernetes-dashboard", Port: 443, LocalPort: 8443, Scheme: "https"},
		},
	}}
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}
