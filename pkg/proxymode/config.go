package proxymode

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Where kubeadm keeps kube-proxy's configuration.
const (
	Namespace     = "kube-system"
	ConfigMapName = "kube-proxy"
	ConfigKey     = "config.conf"
	DaemonSetName = "kube-proxy"
	PodSelector   = "k8s-app=kube-proxy"
	// PreviousModeAnnotation on the ConfigMap records the mode before the
	// last `proxymode set` (an empty value: mode was unset).
	PreviousModeAnnotation = "hacluster.io/previous-proxy-mode"
	// RestartedAtAnnotation is what `kubectl rollout restart` sets on a Pod template.
	RestartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"
	// DefaultMetricsPort is kube-proxy's default metrics (and /proxyMode) port.
	DefaultMetricsPort = 10249
)

// Config is the part of a KubeProxyConfiguration this package reads.
type Config struct {
	Mode               string `json:"mode"`
	MetricsBindAddress string `json:"metricsBindAddress"`
	IPVS               struct {
		StrictARP bool   `json:"strictARP"`
		Scheduler string `json:"scheduler"`
	} `json:"ipvs"`
}

// ParseConfig reads config.conf of the kube-proxy ConfigMap.
func ParseConfig(raw string) (*Config, error) {
	var c Config
	if err := yaml.Unmarshal([]byte(raw), &c); err != nil {
		return nil, fmt.Errorf("kube-proxy %s is not valid YAML: %w", ConfigKey, err)
	}
	return &c, nil
}

// MetricsAccess says whether /proxyMode can be reached from outside the
// node (through the API server's node proxy) and on which port.
type MetricsAccess struct {
	Address string `json:"address"`
	Port    int    `json:"port"`
	// Reachable: all nodes (0.0.0.0 or ::). OnlyIP: only the node with this IP.
	Reachable bool   `json:"reachable"`
	OnlyIP    string `json:"onlyIP,omitempty"`
	Reason    string `json:"reason"`
}

// ParseMetricsBindAddress interprets metricsBindAddress ("" means 127.0.0.1:10249).
func ParseMetricsBindAddress(s string) MetricsAccess {
	s = strings.TrimSpace(s)
	a := MetricsAccess{Address: s, Port: DefaultMetricsPort}
	if s == "" {
		a.Address = "127.0.0.1:10249"
		a.Reason = "metricsBindAddress is unset (127.0.0.1:10249): /proxyMode answers only on the node itself"
		return a
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host = strings.Trim(s, "[]")
	} else if p, err := strconv.Atoi(port); err == nil {
		a.Port = p
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		a.Reason = fmt.Sprintf("metricsBindAddress %q is not an IP address", s)
	case ip.IsUnspecified():
		a.Reachable = true
		a.Reason = fmt.Sprintf("metricsBindAddress %s listens on every address", s)
	case ip.IsLoopback():
		a.Reason = fmt.Sprintf("metricsBindAddress %s is loopback: /proxyMode answers only on the node itself", s)
	default:
		a.OnlyIP = ip.String()
		a.Reason = fmt.Sprintf("metricsBindAddress %s: reachable only on the node with that IP", s)
	}
	return a
}

var modeLineRE = regexp.MustCompile(`(?m)^mode:[^\n]*$`)

// SetMode rewrites the top-level mode: line of config.conf, or adds one when
// there is none, leaving every other line untouched.
func SetMode(raw string, m Mode) (string, error) {
	line := fmt.Sprintf("mode: %s", m)
	if m == "" {
		line = `mode: ""`
	}
	var out string
	switch n := len(modeLineRE.FindAllStringIndex(raw, -1)); n {
	case 0:
		out = raw
		if out != "" && !strings.HasSuffix(out, "\n") {
			out += "\n"
		}
		out += line + "\n"
	case 1:
		out = modeLineRE.ReplaceAllLiteralString(raw, line)
	default:
		return "", fmt.Errorf("kube-proxy %s has %d top-level mode: lines; fix it by hand", ConfigKey, n)
	}
	c, err := ParseConfig(out)
	if err != nil {
		return "", err
	}
	if Effective(c.Mode) != Effective(string(m)) {
		return "", fmt.Errorf("could not set mode in kube-proxy %s (it reads back as %q)", ConfigKey, c.Mode)
	}
	return out, nil
}

// Diff is a small unified diff of two texts (a few hundred lines at most),
// with two lines of context around each change.
func Diff(name, a, b string) string {
	if a == b {
		return ""
	}
	x, y := splitLines(a), splitLines(b)
	// Longest common subsequence table.
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		kind byte
		text string
	}
	var ops []op
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			ops = append(ops, op{' ', x[i]})
			i++
			j++
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{'-', x[i]})
			i++
		default:
			ops = append(ops, op{'+', y[j]})
			j++
		}
	}
	const ctx = 2
	keep := make([]bool, len(ops))
	for k, o := range ops {
		if o.kind != ' ' {
			for d := max(0, k-ctx); d <= min(len(ops)-1, k+ctx); d++ {
				keep[d] = true
			}
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- a/%s\n+++ b/%s\n", name, name)
	gap := false
	for k, o := range ops {
		if !keep[k] {
			gap = true
			continue
		}
		if gap || k == 0 {
			sb.WriteString("@@\n")
			gap = false
		}
		sb.WriteByte(o.kind)
		sb.WriteString(o.text)
		sb.WriteByte('\n')
	}
	return sb.String()
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
