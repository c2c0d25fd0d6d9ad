package inspect

import (
	"encoding/json"
	"net"
	"net/url"
	"strings"

	"go.yaml.in/yaml/v3"
)

// clusterConfiguration is the part of kubeadm's ClusterConfiguration we read.
type clusterConfiguration struct {
	ControlPlaneEndpoint string `yaml:"controlPlaneEndpoint"`
	KubernetesVersion    string `yaml:"kubernetesVersion"`
	Etcd                 struct {
		External *struct {
			Endpoints []string `yaml:"endpoints"`
		} `yaml:"external"`
	} `yaml:"etcd"`
}

func parseClusterConfiguration(s string) clusterConfiguration {
	var c clusterConfiguration
	_ = yaml.Unmarshal([]byte(s), &c)
	return c
}

// kubeProxyMode reads mode from the kube-proxy ConfigMap's config.conf.
func kubeProxyMode(data map[string]string) string {
	var c struct {
		Mode string `yaml:"mode"`
	}
	for _, k := range []string{"config.conf", "config.yaml", "config"} {
		if v, ok := data[k]; ok {
			_ = yaml.Unmarshal([]byte(v), &c)
			break
		}
	}
	if c.Mode == "" {
		return "iptables (default)"
	}
	return c.Mode
}

// clusterInfoServer reads the server of the first cluster in the kubeconfig
// that kube-public/cluster-info publishes.
func clusterInfoServer(data map[string]string) string {
	var kc struct {
		Clusters []struct {
			Cluster struct {
				Server string `yaml:"server"`
			} `yaml:"cluster"`
		} `yaml:"clusters"`
	}
	_ = yaml.Unmarshal([]byte(data["kubeconfig"]), &kc)
	if len(kc.Clusters) == 0 {
		return ""
	}
	return kc.Clusters[0].Cluster.Server
}

// splitHostPortDefault splits "host[:port]" (IPv6 in brackets) and fills in def.
func splitHostPortDefault(s, def string) (string, string) {
	if h, p, err := net.SplitHostPort(s); err == nil {
		return h, p
	}
	return strings.Trim(s, "[]"), def
}

// splitURLHostPort returns host and port of an https URL (port 443 by default).
func splitURLHostPort(s string) (string, string) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "", ""
	}
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	return u.Hostname(), port
}

// apiServiceAvailable reads the Available condition of an APIService (JSON).
func apiServiceAvailable(raw []byte) (bool, string) {
	var a struct {
		Status struct {
			Conditions []struct {
				Type    string `json:"type"`
				Status  string `json:"status"`
				Reason  string `json:"reason"`
				Message string `json:"message"`
			} `json:"conditions"`
		} `json:"status"`
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return false, "cannot parse the APIService: " + err.Error()
	}
	for _, c := range a.Status.Conditions {
		if c.Type == "Available" {
			msg := c.Reason
			if c.Message != "" {
				msg += ": " + c.Message
			}
			return c.Status == "True", msg
		}
	}
	return false, "no Available condition"
}

// parseHealth reads the lines of /readyz?verbose: "[+]etcd ok", "[-]etcd failed: reason withheld".
func parseHealth(body string) []HealthCheck {
	var out []HealthCheck
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(line)
		if len(line) < 4 || line[0] != '[' || line[2] != ']' || (line[1] != '+' && line[1] != '-') {
			continue
		}
		rest := line[3:]
		name, msg, _ := strings.Cut(rest, " ")
		c := HealthCheck{Name: name, OK: line[1] == '+'}
		if !c.OK || msg != "ok" {
			c.Message = msg
		}
		out = append(out, c)
	}
	return out
}

// imageVersion is the tag of an image reference ("registry.k8s.io/etcd:3.5.24-0" -> "3.5.24-0").
func imageVersion(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	slash := strings.LastIndex(image, "/")
	if i := strings.LastIndex(image, ":"); i > slash {
		return image[i+1:]
	}
	return ""
}

// cniFromDaemonSet names the CNI a DaemonSet belongs to, or "".
func cniFromDaemonSet(name, image string) string {
	s := strings.ToLower(name + " " + image)
	for _, c := range []struct{ key, name string }{
		{"canal", "Canal"}, {"calico", "Calico"}, {"cilium", "Cilium"}, {"flannel", "Flannel"},
		{"weave", "Weave Net"}, {"antrea", "Antrea"}, {"kube-router", "kube-router"},
		{"kindnet", "kindnet"}, {"kube-ovn", "Kube-OVN"}, {"multus", "Multus"},
		{"aws-node", "Amazon VPC CNI"}, {"azure-cni", "Azure CNI"},
	} {
		if strings.Contains(s, c.key) {
			return c.name
		}
	}
	return ""
}
