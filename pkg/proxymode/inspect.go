package proxymode

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/client-go/kubernetes"

	"github.com/hacluster/hacluster/pkg/cmdline"
)

// EndpointFunc reads http://<node>:<port>/proxyMode from outside the node.
// Inspect calls it for several nodes at once.
type EndpointFunc func(ctx context.Context, node string, port int) (string, error)

// NodeProxyEndpoint reads /proxyMode through the API server's node proxy,
// /api/v1/nodes/<node>:<port>/proxy/proxyMode, giving up after timeout.
func NodeProxyEndpoint(c kubernetes.Interface, timeout time.Duration) EndpointFunc {
	return func(ctx context.Context, node string, port int) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		b, err := c.CoreV1().RESTClient().Get().
			AbsPath("/api/v1/nodes", node+":"+strconv.Itoa(port), "proxy", "proxyMode").
			DoRaw(ctx)
		if err != nil {
			return "", fmt.Errorf("%s", apiReason(b, err))
		}
		return strings.TrimSpace(string(b)), nil
	}
}

// InspectOptions tunes Inspect.
type InspectOptions struct {
	// Endpoint reads /proxyMode; nil skips that source.
	Endpoint EndpointFunc
	// LogLimitBytes caps how much of each Pod's log is read (from the start,
	// where kube-proxy names its proxier). Default 256 KiB.
	LogLimitBytes int64
	// Parallel is how many nodes are read at a time; default 8.
	Parallel int
}

// NodeStatus is the proxy mode of one node.
type NodeStatus struct {
	Node          string `json:"node"`
	Pod           string `json:"pod,omitempty"`
	PodPhase      string `json:"podPhase,omitempty"`
	Configured    Mode   `json:"configured"`
	FromLogs      Mode   `json:"fromLogs,omitempty"`
	LogLine       string `json:"logLine,omitempty"`
	FromEndpoint  Mode   `json:"fromEndpoint,omitempty"`
	EndpointError string `json:"endpointError,omitempty"`
	FromProbe     Mode   `json:"fromProbe,omitempty"`
	ProbeError    string `json:"probeError,omitempty"`
	// Effective is the best evidence: probe, then endpoint, then logs.
	Effective Mode     `json:"effective,omitempty"`
	Mismatch  bool     `json:"mismatch"`
	Notes     []string `json:"notes,omitempty"`

	readNotes []string // what reading the evidence noted; decide adds its conclusions
}

// Report is the proxy mode of the whole cluster.
type Report struct {
	ServerVersion     string        `json:"serverVersion,omitempty"`
	ConfigMap         string        `json:"configMap"`
	ConfigMapFound    bool          `json:"configMapFound"`
	ConfiguredValue   string        `json:"configuredValue"`
	Configured        Mode          `json:"configured"`
	Defaulted         bool          `json:"defaulted"`
	Metrics           MetricsAccess `json:"metrics"`
	StrictARP         bool          `json:"strictARP"`
	NFTablesSupported bool          `json:"nftablesSupported"`
	DaemonSetFound    bool          `json:"daemonSetFound"`
	// Replacement names what implements Services instead of kube-proxy.
	Replacement string       `json:"replacement,omitempty"`
	Nodes       []NodeStatus `json:"nodes"`
	Mismatches  int          `json:"mismatches"`
	Warnings    []string     `json:"warnings,omitempty"`
}

// Inspect reads the configured and effective kube-proxy mode of every node.
func Inspect(ctx context.Context, c kubernetes.Interface, o InspectOptions) (*Report, error) {
	if o.LogLimitBytes == 0 {
		o.LogLimitBytes = 256 << 10
	}
	r := &Report{ConfigMap: Namespace + "/" + ConfigMapName, Nodes: []NodeStatus{}}
	if v, err := c.Discovery().ServerVersion(); err == nil && v != nil {
		r.ServerVersion = v.GitVersion
		r.NFTablesSupported = AtLeast(v.GitVersion, 1, 31)
	}
	cm, err := c.CoreV1().ConfigMaps(Namespace).Get(ctx, ConfigMapName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		r.Warnings = append(r.Warnings, "ConfigMap "+r.ConfigMap+" not found: kube-proxy is not installed the kubeadm way (or is replaced)")
	case err != nil:
		return nil, fmt.Errorf("read ConfigMap %s: %w", r.ConfigMap, err)
	default:
		r.ConfigMapFound = true
		cfg, err := ParseConfig(cm.Data[ConfigKey])
		if err != nil {
			return nil, err
		}
		r.ConfiguredValue = cfg.Mode
		r.Configured = Effective(cfg.Mode)
		r.Defaulted = strings.TrimSpace(cfg.Mode) == ""
		r.Metrics = ParseMetricsBindAddress(cfg.MetricsBindAddress)
		r.StrictARP = cfg.IPVS.StrictARP
	}
	ds, err := c.AppsV1().DaemonSets(Namespace).Get(ctx, DaemonSetName, metav1.GetOptions{})
	if err == nil {
		r.DaemonSetFound = true
		if addr := cmdline.PodFlag(&ds.Spec.Template.Spec, "--metrics-bind-address"); addr != "" {
			r.Metrics = ParseMetricsBindAddress(addr)
		}
		if m := cmdline.PodFlag(&ds.Spec.Template.Spec, "--proxy-mode"); m != "" {
			r.Configured = Effective(m)
			r.ConfiguredValue = m
			r.Warnings = append(r.Warnings, "the DaemonSet passes --proxy-mode="+m+": it overrides the ConfigMap")
		}
	} else if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("read DaemonSet %s/%s: %w", Namespace, DaemonSetName, err)
	}
	r.Replacement = findReplacement(ctx, c)

	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	pods, err := c.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{LabelSelector: PodSelector})
	if err != nil {
		return nil, fmt.Errorf("list kube-proxy pods: %w", err)
	}
	podOf := map[string]*corev1.Pod{}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		if old, ok := podOf[p.Spec.NodeName]; !ok || p.CreationTimestamp.After(old.CreationTimestamp.Time) {
			podOf[p.Spec.NodeName] = p
		}
	}
	sort.Slice(nodes.Items, func(i, j int) bool { return nodes.Items[i].Name < nodes.Items[j].Name })
	// Each node costs a log read and maybe a /proxyMode request (up to its
	// timeout): do several nodes at a time.
	if o.Parallel <= 0 {
		o.Parallel = 8
	}
	r.Nodes = make([]NodeStatus, len(nodes.Items))
	sem := make(chan struct{}, o.Parallel)
	var wg sync.WaitGroup
	for i := range nodes.Items {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			r.Nodes[i] = inspectNode(ctx, c, o, r, &nodes.Items[i], podOf[nodes.Items[i].Name])
		}(i)
	}
	wg.Wait()
	for i := range r.Nodes {
		r.Nodes[i].decide(r.Replacement)
		if r.Nodes[i].Mismatch {
			r.Mismatches++
		}
	}
	return r, nil
}

func inspectNode(ctx context.Context, c kubernetes.Interface, o InspectOptions, r *Report, n *corev1.Node, p *corev1.Pod) NodeStatus {
	ns := NodeStatus{Node: n.Name, Configured: r.Configured}
	if n.Status.NodeInfo.OperatingSystem == "windows" {
		ns.Configured = KernelSpace
	}
	if p != nil {
		ns.Pod, ns.PodPhase = p.Name, string(p.Status.Phase)
		readPodMode(ctx, c, p, o.LogLimitBytes, &ns)
	} else if r.Replacement == "" {
		ns.readNotes = append(ns.readNotes, "no kube-proxy Pod on this node")
	}
	if o.Endpoint != nil && ns.Pod != "" {
		switch {
		case r.Metrics.Reachable || (r.Metrics.OnlyIP != "" && hasAddress(n, r.Metrics.OnlyIP)):
			s, err := o.Endpoint(ctx, n.Name, r.Metrics.Port)
			if err != nil {
				ns.EndpointError = err.Error()
			} else {
				ns.FromEndpoint = Mode(strings.ToLower(strings.TrimSpace(s)))
			}
		case r.Metrics.Reason != "":
			ns.EndpointError = "not tried: " + r.Metrics.Reason
		}
	}
	return ns
}

// decide picks the effective mode from the evidence and flags a mismatch.
func (ns *NodeStatus) decide(replacement string) {
	switch {
	case ns.FromProbe != "":
		ns.Effective = ns.FromProbe
	case ns.FromEndpoint != "":
		ns.Effective = ns.FromEndpoint
	case ns.FromLogs != "":
		ns.Effective = ns.FromLogs
	default:
		ns.Effective = ""
	}
	ns.Mismatch = false
	ns.Notes = append([]string(nil), ns.readNotes...)
	if ns.Effective != "" && ns.Configured != "" && ns.Effective != ns.Configured {
		ns.Mismatch = true
		ns.Notes = appendOnce(ns.Notes, fmt.Sprintf("configured %s but the Pod runs %s: restart needed (kubectl hacluster proxymode set %s)", ns.Configured, ns.Effective, ns.Configured))
	}
	if ns.FromLogs != "" && ns.FromEndpoint != "" && ns.FromLogs != ns.FromEndpoint {
		ns.Notes = appendOnce(ns.Notes, fmt.Sprintf("logs say %s but /proxyMode says %s", ns.FromLogs, ns.FromEndpoint))
	}
	if replacement != "" && ns.Pod != "" {
		ns.Notes = appendOnce(ns.Notes, "kube-proxy runs although "+replacement+" replaces it: both program Service rules")
	}
}

func appendOnce(l []string, s string) []string {
	for _, x := range l {
		if x == s {
			return l
		}
	}
	return append(l, s)
}

func readPodMode(ctx context.Context, c kubernetes.Interface, p *corev1.Pod, limit int64, ns *NodeStatus) {
	container := ""
	for _, ctr := range p.Spec.Containers {
		if ctr.Name == "kube-proxy" {
			container = ctr.Name
		}
	}
	if container == "" && len(p.Spec.Containers) > 0 {
		container = p.Spec.Containers[0].Name
	}
	b, err := c.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: container, LimitBytes: &limit}).DoRaw(ctx)
	if err != nil {
		ns.readNotes = append(ns.readNotes, "logs unavailable: "+apiReason(b, err))
		return
	}
	ev := ModeFromLogs(string(b))
	ns.FromLogs, ns.LogLine = ev.Mode, ev.Line
	if ev.Mode == "" {
		ns.readNotes = append(ns.readNotes, "no \"Using ... Proxier\" line in the first "+strconv.FormatInt(limit>>10, 10)+" KiB of the log")
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}

func hasAddress(n *corev1.Node, ip string) bool {
	for _, a := range n.Status.Addresses {
		if a.Address == ip {
			return true
		}
	}
	return false
}

// findReplacement detects a CNI that implements Services itself.
func findReplacement(ctx context.Context, c kubernetes.Interface) string {
	if cm, err := c.CoreV1().ConfigMaps(Namespace).Get(ctx, "cilium-config", metav1.GetOptions{}); err == nil {
		v := strings.ToLower(strings.TrimSpace(cm.Data["kube-proxy-replacement"]))
		if v == "true" || v == "strict" {
			return "cilium (cilium-config kube-proxy-replacement=" + v + ")"
		}
	}
	if ds, err := c.AppsV1().DaemonSets(Namespace).Get(ctx, "kube-router", metav1.GetOptions{}); err == nil {
		if cmdline.PodFlag(&ds.Spec.Template.Spec, "--run-service-proxy") == "true" {
			return "kube-router (--run-service-proxy=true)"
		}
	}
	return ""
}

// AtLeast reports whether a version like v1.31.2 is at least major.minor.
func AtLeast(v string, major, minor uint) bool {
	pv, err := version.ParseGeneric(v)
	if err != nil {
		return false
	}
	return pv.AtLeast(version.MajorMinor(major, minor))
}

// apiReason is the one-line reason of a failed raw request. client-go does
// not decode the Status body of raw (proxy, log) requests and says "the
// server rejected our request for an unknown reason"; the body has the
// apiserver's message (e.g. "address not allowed").
func apiReason(body []byte, err error) string {
	msg := err.Error()
	var st metav1.Status
	if b := strings.TrimSpace(string(body)); json.Unmarshal(body, &st) == nil && st.Message != "" {
		msg = st.Message
	} else if b != "" && !strings.HasPrefix(b, "{") {
		msg = b
	}
	return firstLine(msg)
}
