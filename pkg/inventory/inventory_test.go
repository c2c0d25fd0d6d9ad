package inventory_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/hacluster/hacluster/pkg/inventory"
)

func TestExampleLoads(t *testing.T) {
	c, err := inventory.Parse("example.yaml", []byte(inventory.Example()))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ControlPlanes()) != 3 || len(c.Workers()) != 1 {
		t.Errorf("example: %d control planes, %d workers", len(c.ControlPlanes()), len(c.Workers()))
	}
	if got := c.Endpoint(); got != "192.168.1.100:16443" {
		t.Errorf("endpoint %q", got)
	}
	if c.Spec.Hosts[0].InternalAddress != "192.168.1.11" {
		t.Errorf("internalAddress default: %q", c.Spec.Hosts[0].InternalAddress)
	}
}

const minimal = `apiVersion: hacluster.io/v1alpha1
kind: Cluster
metadata:
  name: lab
spec:
  hosts:
    - name: cp-1
      address: 10.0.0.11
      roles: [control-plane]
    - name: w-1
      address: 10.0.0.21
      roles: [worker]
      ssh:
        user: admin
  controlPlaneEndpoint:
    vip: 10.0.0.100
`

func TestDefaults(t *testing.T) {
	c, err := inventory.Parse("cluster.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Spec
	for name, got := range map[string]string{
		"version": s.Kubernetes.Version, "pod": s.Network.PodSubnet, "svc": s.Network.ServiceSubnet,
		"proxy": s.Network.KubeProxyMode, "cni": s.Network.CNI, "containerd": s.Artifacts.Containerd,
		"endpoint": c.Endpoint(), "repo": s.Kubernetes.ImageRepository,
	} {
		want := map[string]string{"version": "v1.37.2", "pod": "10.244.0.0/16", "svc": "10.96.0.0/12", "proxy": "iptables",
			"cni": "flannel", "containerd": "v2.4.2", "endpoint": "10.0.0.100:16443", "repo": "registry.k8s.io"}[name]
		if got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	root, admin := c.HostSSH(s.Hosts[0]), c.HostSSH(s.Hosts[1])
	if root.User != "root" || root.Port != 22 || root.UsesSudo() {
		t.Errorf("cp-1 ssh: %+v", root)
	}
	if admin.User != "admin" || admin.Port != 22 || !admin.UsesSudo() {
		t.Errorf("w-1 ssh: %+v", admin)
	}
}

// Each bad file is refused with one line that names the file, the line and
// the field.
func TestBadInventories(t *testing.T) {
	replace := func(old, new string) string {
		if !strings.Contains(minimal, old) {
			t.Fatalf("fixture has no %q", old)
		}
		return strings.Replace(minimal, old, new, 1)
	}
	for _, c := range []struct {
		name, file, want string
	}{
		{"empty", "", "cluster.yaml: the file is empty"},
		{"not yaml", "spec: [", "cluster.yaml:1: did not find expected node content"},
		{"no apiVersion", strings.Replace(minimal, "apiVersion: hacluster.io/v1alpha1\n", "", 1), "cluster.yaml:1: apiVersion: missing"},
		{"future apiVersion", replace("hacluster.io/v1alpha1", "hacluster.io/v1beta9"), `cluster.yaml:1: apiVersion: "hacluster.io/v1beta9" is not a version this hacluster reads`},
		{"wrong kind", replace("kind: Cluster", "kind: Node"), `cluster.yaml:2: kind: "Node": want kind: Cluster`},
		{"unknown field", replace("      address: 10.0.0.11", "      adress: 10.0.0.11"), "cluster.yaml:8: unknown field adress (in Host)"},
		{"bad name", replace("name: lab", "name: Lab_1"), `cluster.yaml:4: metadata.name: "Lab_1"`},
		{"no hosts", strings.Split(minimal, "  hosts:")[0] + "  controlPlaneEndpoint:\n    vip: 10.0.0.100\n", "cluster.yaml:5: spec.hosts: no hosts"},
		{"duplicate host name", replace("name: w-1", "name: cp-1"), `cluster.yaml:10: spec.hosts[1].name: "cp-1" is also spec.hosts[0]`},
		{"duplicate address", replace("10.0.0.21", "10.0.0.11"), "cluster.yaml:11: spec.hosts[1].address: 10.0.0.11:22 is also the address of spec.hosts[0] (cp-1)"},
		{"bad address", replace("10.0.0.21", "10.0.0.256"), `cluster.yaml:11: spec.hosts[1].address: "10.0.0.256" is not a valid IPv4 address`},
		{"master role", replace("roles: [worker]", "roles: [master]"), `cluster.yaml:12: spec.hosts[1].roles[0]: unknown role "master" (kubeadm calls masters control-plane)`},
		{"no roles", replace("      roles: [worker]\n", ""), "cluster.yaml:10: spec.hosts[1].roles: missing"},
		{"no control plane", replace("roles: [control-plane]", "roles: [worker]"), "cluster.yaml:6: spec.hosts: no host has the control-plane role"},
		{"no endpoint", strings.Split(minimal, "  controlPlaneEndpoint:")[0], "spec.controlPlaneEndpoint: set vip"},
		{"vip and lb", replace("vip: 10.0.0.100", "vip: 10.0.0.100\n    loadBalancer: lb:6443"), "cluster.yaml:17: spec.controlPlaneEndpoint.loadBalancer: set vip or loadBalancer, not both"},
		{"vip is a host", replace("vip: 10.0.0.100", "vip: 10.0.0.11"), "cluster.yaml:16: spec.controlPlaneEndpoint.vip: 10.0.0.11 is the address of spec.hosts[0] (cp-1)"},
		{"vip not an address", replace("vip: 10.0.0.100", "vip: my-vip"), `cluster.yaml:16: spec.controlPlaneEndpoint.vip: "my-vip"`},
		{"lb port 6443", replace("vip: 10.0.0.100", "vip: 10.0.0.100\n    port: 6443"), "cluster.yaml:17: spec.controlPlaneEndpoint.port: 6443 is the API servers' own port"},
		{"bad port type", replace("vip: 10.0.0.100", "vip: 10.0.0.100\n    port: high"), "cluster.yaml:17: cannot unmarshal !!str `high` into int"},
		{"ssh port", replace("        user: admin", "        port: 70000"), "cluster.yaml:14: spec.hosts[1].ssh.port: 70000 is not a TCP port"},
		{"old kubernetes", minimal + "  kubernetes:\n    version: v1.28.0\n", "cluster.yaml:18: spec.kubernetes.version: v1.28.0 is not supported"},
		{"version without v", minimal + "  kubernetes:\n    version: 1.37.2\n", `cluster.yaml:18: spec.kubernetes.version: "1.37.2": want a release like v1.37.2`},
		{"overlapping subnets", minimal + "  network:\n    podSubnet: 10.96.0.0/16\n", "cluster.yaml:18: spec.network.podSubnet: 10.96.0.0/16 overlaps the service subnet 10.96.0.0/12"},
		{"pod subnet holds a host", minimal + "  network:\n    podSubnet: 10.0.0.0/16\n", "cluster.yaml:18: spec.network.podSubnet: 10.0.0.0/16 contains 10.0.0.11, the address of spec.hosts[0] (cp-1)"},
		{"not a network", minimal + "  network:\n    podSubnet: 10.244.0.1/16\n", `cluster.yaml:18: spec.network.podSubnet: "10.244.0.1/16": want a network`},
		{"ipvs typo", minimal + "  network:\n    kubeProxyMode: ipvsadm\n", `cluster.yaml:18: spec.network.kubeProxyMode: "ipvsadm": want iptables, nftables or ipvs`},
		{"unknown cni", minimal + "  network:\n    cni: weave\n", `cluster.yaml:18: spec.network.cni: "weave": want flannel, calico or none`},
		{"unknown addon", minimal + "  addons: [metrics-server, grafana]\n", `cluster.yaml:17: spec.addons[1]: unknown add-on "grafana"`},
		{"calico as addon", minimal + "  addons: [calico]\n", "cluster.yaml:17: spec.addons[0]: calico is a CNI: set spec.network.cni: calico instead"},
		{"kubeadm owned field", minimal + "  kubernetes:\n    kubeadm:\n      controlPlaneEndpoint: 1.2.3.4:6443\n", "cluster.yaml:19: spec.kubernetes.kubeadm.controlPlaneEndpoint: set by spec.controlPlaneEndpoint"},
		{"credentials in mirror", minimal + "  artifacts:\n    mirrors:\n      https://dl.k8s.io: http://user:pw@mirror/dl\n", `cluster.yaml:19: spec.artifacts.mirrors["https://dl.k8s.io"]: "http://user:pw@mirror/dl": no credentials in URLs`},
		{"registry mirror key", minimal + "  registries:\n    mirrors:\n      https://registry.k8s.io: [http://m:5000]\n", `cluster.yaml:19: spec.registries.mirrors["https://registry.k8s.io"]: "https://registry.k8s.io": the key is a registry host`},
		{"tab indentation", "apiVersion: hacluster.io/v1alpha1\nkind: Cluster\nspec:\n\thosts: []\n", "cluster.yaml:4: found character that cannot start any token"},
		{"two documents", minimal + "---\nkind: Cluster\n", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := inventory.Parse("cluster.yaml", []byte(c.file))
			if c.want == "" {
				if err != nil {
					t.Logf("%v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted:\n%s", c.file)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("more than one line: %q", msg)
			}
			if !strings.Contains(msg, c.want) {
				t.Errorf("got  %q\nwant %q", msg, c.want)
			}
		})
	}
}

func TestLoadFromDisk(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(p, []byte(minimal), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := inventory.Load(p); err != nil {
		t.Fatal(err)
	}
	if _, err := inventory.Load(p + ".missing"); err == nil {
		t.Fatal("a missing file loaded")
	}
}

// The decoder never panics, and what it accepts survives a round trip.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte(inventory.Example()))
	f.Add([]byte("apiVersion: hacluster.io/v1alpha1\nkind: Cluster\nspec: {hosts: [{name: a, address: '::1', roles: [control-plane, worker]}], controlPlaneEndpoint: {loadBalancer: 'lb:1'}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := inventory.Parse("fuzz.yaml", data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := inventory.Parse("again.yaml", out); err != nil {
			t.Fatalf("accepted once, refused after a round trip: %v\n%s", err, out)
		}
	})
}
