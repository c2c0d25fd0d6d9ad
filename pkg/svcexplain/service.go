package svcexplain

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/hacluster/hacluster/pkg/cmdline"
)

// Severity of a Finding.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
	SeverityInfo    = "info"
)

// Finding codes: stable, for scripts.
const (
	CodeSelectorMatchesNoPod   = "selector-matches-no-pod"
	CodeNoReadyEndpoints       = "no-ready-endpoints"
	CodeTargetPortNotExposed   = "target-port-not-exposed"
	CodeLocalPolicyNoEndpoints = "local-traffic-policy-no-local-endpoints"
	CodeLocalPolicyPartial     = "local-traffic-policy-partial"
	CodeNodePortOutOfRange     = "nodeport-out-of-range"
	CodeLoadBalancerPending    = "loadbalancer-pending"
	CodeExternalNameIsIP       = "externalname-is-ip"
	CodeNoSelector             = "no-selector"
	// default/kubernetes: the API servers register their own endpoints.
	CodeAPIServerEndpoints        = "apiserver-endpoints"
	CodeAPIServerEndpointsMissing = "apiserver-endpoints-missing"
)

// DefaultNodePortRange is kube-apiserver's --service-node-port-range default.
var DefaultNodePortRange = PortRange{Base: 30000, Size: 2768}

// PortRange is an inclusive range of ports, like the apiserver's flag.
type PortRange struct {
	Base int `json:"base"`
	Size int `json:"size"`
}

// Max is the highest port in the range.
func (r PortRange) Max() int { return r.Base + r.Size - 1 }

// Contains reports whether p is in the range.
func (r PortRange) Contains(p int) bool { return p >= r.Base && p <= r.Max() }

func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.Base, r.Max()) }

// ParsePortRange parses "30000-32767" (or a single port).
func ParsePortRange(s string) (PortRange, error) {
	s = strings.TrimSpace(s)
	lo, hi, found := strings.Cut(s, "-")
	if !found {
		hi = lo
	}
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || a < 1 || b > 65535 || b < a {
		return PortRange{}, fmt.Errorf("invalid port range %q: want FROM-TO, e.g. 30000-32767", s)
	}
	return PortRange{Base: a, Size: b - a + 1}, nil
}

// Options selects the Services to explain.
type Options struct {
	Namespace     string   // namespace of Names, or of --all
	AllNamespaces bool     // every Service in the cluster
	Names         []string // Service names; empty with All means every Service in Namespace
	All           bool
	// NodePortRange overrides the range read from the kube-apiserver Pods.
	NodePortRange *PortRange
}

// Port is one Service port.
type Port struct {
	Name       string `json:"name,omitempty"`
	Protocol   string `json:"protocol"`
	Port       int32  `json:"port"`
	TargetPort string `json:"targetPort,omitempty"`
	NodePort   int32  `json:"nodePort,omitempty"`
}

// NodeAccess is one way in through a node: address:nodePort.
type NodeAccess struct {
	Node     string `json:"node"`
	Address  string `json:"address"`
	Type     string `json:"addressType"`
	NodePort int32  `json:"nodePort"`
	// LocalEndpoint is set with externalTrafficPolicy Local: does this node
	// have a ready endpoint (if not, traffic sent here is dropped)?
	LocalEndpoint *bool `json:"localEndpoint,omitempty"`
}

// LoadBalancer is the state of a LoadBalancer Service's external address.
type LoadBalancer struct {
	Ingress []string `json:"ingress,omitempty"`
	Pending bool     `json:"pending"`
	Class   string   `json:"class,omitempty"`
	Reason  string   `json:"reason,omitempty"`
	Fixes   []string `json:"fixes,omitempty"`
}

// Endpoint is one address behind the Service, from its EndpointSlices.
type Endpoint struct {
	Address string  `json:"address"`
	Node    string  `json:"node,omitempty"`
	Pod     string  `json:"pod,omitempty"`
	Ports   []int32 `json:"ports,omitempty"`
}

// Endpoints splits the Service's endpoints by readiness.
type Endpoints struct {
	Ready    []Endpoint `json:"ready"`
	NotReady []Endpoint `json:"notReady"`
}

// Finding is a mistake or a notable fact about a Service.
type Finding struct {
	Severity string `json:"severity"`
	Code     string `json:"code"`
	Message  string `json:"message"`
}

// Report explains one live Service.
type Report struct {
	Namespace             string            `json:"namespace"`
	Name                  string            `json:"name"`
	Type                  string            `json:"type"`
	Headless              bool              `json:"headless"`
	DNSName               string            `json:"dnsName"`
	ClusterIPs            []string          `json:"clusterIPs,omitempty"`
	Selector              map[string]string `json:"selector,omitempty"`
	Ports                 []Port            `json:"ports"`
	ExternalTrafficPolicy string            `json:"externalTrafficPolicy,omitempty"`
	NodePortRange         string            `json:"nodePortRange,omitempty"`
	NodeAccess            []NodeAccess      `json:"nodeAccess,omitempty"`
	LoadBalancer          *LoadBalancer     `json:"loadBalancer,omitempty"`
	ExternalName          string            `json:"externalName,omitempty"`
	MatchingPods          int               `json:"matchingPods"`
	Endpoints             Endpoints         `json:"endpoints"`
	// Paths says in words how traffic reaches the Service, one line per way in.
	Paths    []string  `json:"paths"`
	Findings []Finding `json:"findings"`
	// APIServers is set for default/kubernetes, whose endpoints the API
	// servers register themselves.
	APIServers *APIServerEndpoints `json:"apiServers,omitempty"`
}

// APIServerEndpoints compares the API servers registered as endpoints of
// default/kubernetes with the kube-apiserver Pods (Pods -1: not visible).
type APIServerEndpoints struct {
	Registered int `json:"registered"`
	Pods       int `json:"pods"`
}

// Worst returns the most severe finding level ("" when there is none).
func (r Report) Worst() string {
	worst := ""
	for _, f := range r.Findings {
		switch {
		case f.Severity == SeverityError:
			return SeverityError
		case f.Severity == SeverityWarning:
			worst = SeverityWarning
		case worst == "" && f.Severity == SeverityInfo:
			worst = SeverityInfo
		}
	}
	return worst
}

// cluster holds what is read once for all Services.
type cluster struct {
	domain       string
	nodes        []corev1.Node
	portRange    PortRange
	rangeSource  string
	apiServers   int    // kube-apiserver Pods in kube-system, -1 when they cannot be listed
	lbController string // a load-balancer controller found, "" if none
	bareMetal    bool
	cache        map[string]*nsCache
}

// Explain reads the selected Services and everything around them.
func Explain(ctx context.Context, c kubernetes.Interface, o Options) ([]Report, error) {
	svcs, err := selectServices(ctx, c, o)
	if err != nil {
		return nil, err
	}
	cl, err := readCluster(ctx, c, o)
	if err != nil {
		return nil, err
	}
	out := make([]Report, 0, len(svcs))
	for i := range svcs {
		r, err := explainOne(ctx, c, cl, &svcs[i])
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, nil
}

// NormalizeName accepts NAME, svc/NAME, service/NAME and services/NAME.
func NormalizeName(arg string) (string, error) {
	kind, name, found := strings.Cut(arg, "/")
	if !found {
		return arg, nil
	}
	switch strings.ToLower(kind) {
	case "svc", "service", "services", "service.v1", "services.v1":
	default:
		return "", fmt.Errorf("%q is not a Service: use NAME or svc/NAME", arg)
	}
	if name == "" {
		return "", fmt.Errorf("missing Service name in %q", arg)
	}
	return name, nil
}

func selectServices(ctx context.Context, c kubernetes.Interface, o Options) ([]corev1.Service, error) {
	if o.AllNamespaces || o.All {
		ns := o.Namespace
		if o.AllNamespaces {
			ns = metav1.NamespaceAll
		}
		list, err := c.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list services: %w", err)
		}
		items := list.Items
		sort.Slice(items, func(i, j int) bool {
			if items[i].Namespace != items[j].Namespace {
				return items[i].Namespace < items[j].Namespace
			}
			return items[i].Name < items[j].Name
		})
		return items, nil
	}
	var out []corev1.Service
	for _, n := range o.Names {
		name, err := NormalizeName(n)
		if err != nil {
			return nil, err
		}
		s, err := c.CoreV1().Services(o.Namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("service %q not found in namespace %q", name, o.Namespace)
		}
		if err != nil {
			return nil, fmt.Errorf("get service %s: %w", name, err)
		}
		out = append(out, *s)
	}
	return out, nil
}

func readCluster(ctx context.Context, c kubernetes.Interface, o Options) (*cluster, error) {
	cl := &cluster{domain: "cluster.local", portRange: DefaultNodePortRange, rangeSource: "kube-apiserver default"}
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil && !apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	if nodes != nil {
		cl.nodes = nodes.Items
		sort.Slice(cl.nodes, func(i, j int) bool { return cl.nodes[i].Name < cl.nodes[j].Name })
	}
	cl.bareMetal = len(cl.nodes) > 0
	for _, n := range cl.nodes {
		if n.Spec.ProviderID != "" && !strings.HasPrefix(n.Spec.ProviderID, "kind://") && !strings.HasPrefix(n.Spec.ProviderID, "kwok://") {
			cl.bareMetal = false
		}
	}
	if cm, err := c.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{}); err == nil {
		var cc struct {
			Networking struct {
				DNSDomain string `json:"dnsDomain"`
			} `json:"networking"`
			APIServer struct {
				ExtraArgs any `json:"extraArgs"`
			} `json:"apiServer"`
		}
		if yaml.Unmarshal([]byte(cm.Data["ClusterConfiguration"]), &cc) == nil {
			if cc.Networking.DNSDomain != "" {
				cl.domain = cc.Networking.DNSDomain
			}
			if v := extraArg(cc.APIServer.ExtraArgs, "service-node-port-range"); v != "" {
				if r, err := ParsePortRange(v); err == nil {
					cl.portRange, cl.rangeSource = r, "kubeadm-config apiServer.extraArgs"
				}
			}
		}
	}
	cl.apiServers = -1
	if pods, err := c.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "component=kube-apiserver"}); err == nil {
		cl.apiServers = 0
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil {
				cl.apiServers++
			}
			if v := cmdline.PodFlag(&p.Spec, "--service-node-port-range"); v != "" {
				if r, err := ParsePortRange(v); err == nil {
					cl.portRange, cl.rangeSource = r, "kube-apiserver flag on "+p.Name
				}
			}
		}
	}
	if o.NodePortRange != nil {
		cl.portRange, cl.rangeSource = *o.NodePortRange, "--node-port-range"
	}
	cl.lbController = findLBController(ctx, c)
	return cl, nil
}

// extraArg reads a kubeadm extraArgs value: a map (v1beta3) or a list of
// {name, value} (v1beta4).
func extraArg(v any, name string) string {
	switch t := v.(type) {
	case map[string]any:
		if s, ok := t[name].(string); ok {
			return s
		}
	case []any:
		for _, e := range t {
			if m, ok := e.(map[string]any); ok && m["name"] == name {
				if s, ok := m["value"].(string); ok {
					return s
				}
			}
		}
	}
	return ""
}

// lbControllerHints are name fragments of workloads that fulfil LoadBalancer Services.
var lbControllerHints = []string{"metallb", "cloud-controller-manager", "kube-vip", "openelb", "purelb", "loxilb", "klipper-lb", "svclb"}

func findLBController(ctx context.Context, c kubernetes.Interface) string {
	match := func(name string) bool {
		for _, h := range lbControllerHints {
			if strings.Contains(name, h) {
				return true
			}
		}
		return false
	}
	if ds, err := c.AppsV1().Deployments("").List(ctx, metav1.ListOptions{}); err == nil {
		for _, d := range ds.Items {
			if match(d.Name) {
				return "Deployment " + d.Namespace + "/" + d.Name
			}
		}
	}
	if ds, err := c.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{}); err == nil {
		for _, d := range ds.Items {
			if match(d.Name) {
				return "DaemonSet " + d.Namespace + "/" + d.Name
			}
		}
	}
	if ps, err := c.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range ps.Items {
			if match(p.Name) {
				return "Pod " + p.Namespace + "/" + p.Name
			}
		}
	}
	return ""
}

func explainOne(ctx context.Context, c kubernetes.Interface, cl *cluster, s *corev1.Service) (*Report, error) {
	typ := string(s.Spec.Type)
	if typ == "" {
		typ = string(corev1.ServiceTypeClusterIP)
	}
	r := &Report{
		Namespace: s.Namespace, Name: s.Name, Type: typ,
		Headless: s.Spec.ClusterIP == corev1.ClusterIPNone,
		DNSName:  fmt.Sprintf("%s.%s.svc.%s", s.Name, s.Namespace, cl.domain),
		Selector: s.Spec.Selector,
		Findings: []Finding{},
		Paths:    []string{},
		Ports:    []Port{},
	}
	if !r.Headless {
		r.ClusterIPs = s.Spec.ClusterIPs
		if len(r.ClusterIPs) == 0 && s.Spec.ClusterIP != "" {
			r.ClusterIPs = []string{s.Spec.ClusterIP}
		}
	}
	for _, p := range s.Spec.Ports {
		tp := ""
		if p.TargetPort.Type == intstr.String || p.TargetPort.IntVal != 0 {
			tp = p.TargetPort.String()
		}
		r.Ports = append(r.Ports, Port{Name: p.Name, Protocol: string(p.Protocol), Port: p.Port, TargetPort: tp, NodePort: p.NodePort})
	}
	add := func(sev, code, format string, args ...any) {
		r.Findings = append(r.Findings, Finding{Severity: sev, Code: code, Message: fmt.Sprintf(format, args...)})
	}

	if s.Spec.Type == corev1.ServiceTypeExternalName {
		r.ExternalName = s.Spec.ExternalName
		r.Paths = append(r.Paths, fmt.Sprintf("in cluster: %s is a DNS CNAME to %s (no proxying, ports are not remapped)", r.DNSName, s.Spec.ExternalName))
		if net.ParseIP(strings.TrimSpace(s.Spec.ExternalName)) != nil {
			add(SeverityWarning, CodeExternalNameIsIP,
				"externalName %q is an IP address: DNS serves it as a CNAME to a name that does not exist, so lookups fail; use a Service without selector plus an EndpointSlice with that IP instead", s.Spec.ExternalName)
		}
		return r, nil
	}

	// Endpoints from EndpointSlices.
	nc, err := cl.namespace(ctx, c, s.Namespace)
	if err != nil {
		return nil, err
	}
	ready, notReady := endpoints(nc.slices[s.Name])
	r.Endpoints = Endpoints{Ready: ready, NotReady: notReady}

	// Paths in.
	portList := func(f func(Port) string) string {
		parts := make([]string, 0, len(r.Ports))
		for _, p := range r.Ports {
			parts = append(parts, f(p))
		}
		return strings.Join(parts, ", ")
	}
	if r.Headless {
		r.Paths = append(r.Paths, fmt.Sprintf("in cluster: %s resolves straight to the %d ready Pod IP(s); ports %s", r.DNSName, len(ready),
			portList(func(p Port) string { return fmt.Sprintf("%d/%s", p.Port, p.Protocol) })))
	} else {
		r.Paths = append(r.Paths, fmt.Sprintf("in cluster: %s (%s) ports %s", r.DNSName, strings.Join(r.ClusterIPs, ","),
			portList(func(p Port) string { return fmt.Sprintf("%d->%s/%s", p.Port, orPort(p), p.Protocol) })))
	}

	hasNodePorts := false
	for _, p := range r.Ports {
		if p.NodePort != 0 {
			hasNodePorts = true
		}
	}
	local := s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	if s.Spec.Type == corev1.ServiceTypeNodePort || s.Spec.Type == corev1.ServiceTypeLoadBalancer {
		r.ExternalTrafficPolicy = string(s.Spec.ExternalTrafficPolicy)
		if r.ExternalTrafficPolicy == "" {
			r.ExternalTrafficPolicy = string(corev1.ServiceExternalTrafficPolicyCluster)
		}
	}
	if hasNodePorts {
		r.NodePortRange = cl.portRange.String()
		readyNodes := map[string]bool{}
		for _, e := range ready {
			if e.Node != "" {
				readyNodes[e.Node] = true
			}
		}
		for _, n := range cl.nodes {
			for _, a := range n.Status.Addresses {
				if a.Type != corev1.NodeInternalIP && a.Type != corev1.NodeExternalIP {
					continue
				}
				for _, p := range r.Ports {
					if p.NodePort == 0 {
						continue
					}
					na := NodeAccess{Node: n.Name, Address: a.Address, Type: string(a.Type), NodePort: p.NodePort}
					if local {
						v := readyNodes[n.Name]
						na.LocalEndpoint = &v
					}
					r.NodeAccess = append(r.NodeAccess, na)
				}
			}
		}
		r.Paths = append(r.Paths, fmt.Sprintf("from outside: any of %d node address(es) on nodePort %s (externalTrafficPolicy %s)",
			countAddrs(r.NodeAccess), portList(func(p Port) string { return strconv.Itoa(int(p.NodePort)) }), r.ExternalTrafficPolicy))
		for _, p := range r.Ports {
			if p.NodePort != 0 && !cl.portRange.Contains(int(p.NodePort)) {
				add(SeverityError, CodeNodePortOutOfRange,
					"nodePort %d is outside the cluster's node-port range %s (%s): firewalls and other control planes that assume the range will not pass it",
					p.NodePort, cl.portRange, cl.rangeSource)
			}
		}
		if local {
			var without []string
			for _, n := range cl.nodes {
				if !readyNodes[n.Name] {
					without = append(without, n.Name)
				}
			}
			switch {
			case len(readyNodes) == 0:
				add(SeverityError, CodeLocalPolicyNoEndpoints,
					"externalTrafficPolicy is Local but no node has a ready local endpoint: every external connection is dropped; run Pods on the nodes that receive traffic or use Cluster")
			case len(without) > 0:
				add(SeverityWarning, CodeLocalPolicyPartial,
					"externalTrafficPolicy is Local: nodes without a ready endpoint drop external traffic (%s); only %d node(s) answer (the client IP is preserved)",
					strings.Join(without, ", "), len(readyNodes))
			}
		}
	}

	if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
		lb := &LoadBalancer{}
		if s.Spec.LoadBalancerClass != nil {
			lb.Class = *s.Spec.LoadBalancerClass
		}
		for _, in := range s.Status.LoadBalancer.Ingress {
			if in.IP != "" {
				lb.Ingress = append(lb.Ingress, in.IP)
			}
			if in.Hostname != "" {
				lb.Ingress = append(lb.Ingress, in.Hostname)
			}
		}
		if len(lb.Ingress) == 0 {
			lb.Pending = true
			lb.Reason, lb.Fixes = pendingReason(ctx, c, cl, s, lb.Class)
			add(SeverityWarning, CodeLoadBalancerPending, "load balancer <pending>: %s", lb.Reason)
			r.Paths = append(r.Paths, "load balancer: <pending> (nothing has assigned an external address)")
		} else {
			r.Paths = append(r.Paths, fmt.Sprintf("load balancer: %s ports %s", strings.Join(lb.Ingress, ","),
				portList(func(p Port) string { return strconv.Itoa(int(p.Port)) })))
		}
		r.LoadBalancer = lb
	}

	// Selector checks.
	if len(s.Spec.Selector) == 0 && s.Namespace == metav1.NamespaceDefault && s.Name == "kubernetes" {
		apiServerEndpoints(r, cl, len(ready), add)
		return r, nil
	}
	if len(s.Spec.Selector) == 0 {
		add(SeverityInfo, CodeNoSelector, "no selector: endpoints come from EndpointSlices you manage yourself (%d ready)", len(ready))
		if len(ready) == 0 {
			add(SeverityWarning, CodeNoReadyEndpoints, "no ready endpoints: connections to the Service are refused or time out")
		}
		return r, nil
	}
	sel := labels.SelectorFromSet(s.Spec.Selector)
	var live []corev1.Pod
	for _, p := range nc.pods {
		if sel.Matches(labels.Set(p.Labels)) && p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			live = append(live, p)
		}
	}
	r.MatchingPods = len(live)
	if len(live) == 0 {
		add(SeverityError, CodeSelectorMatchesNoPod,
			"selector %s matches no Pod in namespace %s: check the labels of your Pod template (kubectl get pods --show-labels)",
			labels.SelectorFromSet(s.Spec.Selector), s.Namespace)
		return r, nil
	}
	if len(ready) == 0 {
		add(SeverityWarning, CodeNoReadyEndpoints,
			"%d Pod(s) match the selector but none is a ready endpoint: check readiness probes and Pod status", len(live))
	}
	for _, p := range s.Spec.Ports {
		if msg := targetPortProblem(p, live); msg != "" {
			add(SeverityError, CodeTargetPortNotExposed, "%s", msg)
		}
	}
	return r, nil
}

// apiServerEndpoints explains default/kubernetes: no selector, and nobody
// manages its EndpointSlice by hand: each kube-apiserver registers its own
// advertise address (the "lease" endpoint reconciler, renewed every 10s, so
// a stopped API server drops out after its lease expires).
func apiServerEndpoints(r *Report, cl *cluster, registered int, add func(sev, code, format string, args ...any)) {
	r.APIServers = &APIServerEndpoints{Registered: registered, Pods: cl.apiServers}
	pods := fmt.Sprintf("%d kube-apiserver Pod(s) exist in kube-system", cl.apiServers)
	if cl.apiServers < 0 {
		pods = "the kube-apiserver Pods cannot be listed"
	} else if cl.apiServers == 0 {
		pods = "no kube-apiserver Pod is visible in kube-system (a managed control plane, or not kubeadm)"
	}
	switch {
	case registered == 0:
		add(SeverityWarning, CodeAPIServerEndpointsMissing,
			"the built-in kubernetes Service: the API servers register its endpoints themselves, and none is registered (%s): in-cluster clients cannot reach the API; is --endpoint-reconciler-type none, or no API server running?", pods)
	case cl.apiServers > registered:
		add(SeverityWarning, CodeAPIServerEndpointsMissing,
			"the built-in kubernetes Service: the API servers register its endpoints themselves; %d registered, %s: an API server is down or not registering (check its --advertise-address and --endpoint-reconciler-type)", registered, pods)
	default:
		add(SeverityInfo, CodeAPIServerEndpoints,
			"the built-in kubernetes Service: the API servers register its endpoints themselves (the endpoint reconciler, not a selector and not you); %d registered, %s", registered, pods)
	}
}

func orPort(p Port) string {
	if p.TargetPort == "" {
		return strconv.Itoa(int(p.Port))
	}
	return p.TargetPort
}

func countAddrs(as []NodeAccess) int {
	seen := map[string]bool{}
	for _, a := range as {
		seen[a.Address] = true
	}
	return len(seen)
}

// targetPortProblem checks a Service port's targetPort against the
// container ports of the Pods it selects.
func targetPortProblem(sp corev1.ServicePort, pods []corev1.Pod) string {
	tp := sp.TargetPort
	if tp.Type == intstr.Int && tp.IntVal == 0 {
		tp = intstr.FromInt32(sp.Port)
	}
	declared := map[string]bool{}
	anyDeclared := false
	for _, p := range pods {
		for _, ctr := range p.Spec.Containers {
			for _, cp := range ctr.Ports {
				anyDeclared = true
				proto := cp.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				spProto := sp.Protocol
				if spProto == "" {
					spProto = corev1.ProtocolTCP
				}
				if proto != spProto {
					continue
				}
				if tp.Type == intstr.String && cp.Name == tp.StrVal {
					return ""
				}
				if tp.Type == intstr.Int && cp.ContainerPort == tp.IntVal {
					return ""
				}
				if cp.Name != "" {
					declared[cp.Name+"="+strconv.Itoa(int(cp.ContainerPort))] = true
				} else {
					declared[strconv.Itoa(int(cp.ContainerPort))] = true
				}
			}
		}
	}
	list := make([]string, 0, len(declared))
	for k := range declared {
		list = append(list, k)
	}
	sort.Strings(list)
	have := "none"
	if len(list) > 0 {
		have = strings.Join(list, ", ")
	}
	if tp.Type == intstr.String {
		return fmt.Sprintf("port %d: targetPort %q names no container port of the selected Pods (they declare: %s); the port gets no endpoints", sp.Port, tp.StrVal, have)
	}
	if !anyDeclared {
		return fmt.Sprintf("port %d: targetPort %d is not declared by any container of the selected Pods (they declare no ports); make sure the app listens there", sp.Port, tp.IntVal)
	}
	return fmt.Sprintf("port %d: targetPort %d is not a container port of the selected Pods (they declare: %s); traffic goes to a port nothing listens on", sp.Port, tp.IntVal, have)
}

// nsCache holds one namespace's Pods and EndpointSlices (by Service name),
// read once however many of its Services are explained.
type nsCache struct {
	pods   []corev1.Pod
	slices map[string][]discoveryv1.EndpointSlice
}

func (cl *cluster) namespace(ctx context.Context, c kubernetes.Interface, ns string) (*nsCache, error) {
	if nc, ok := cl.cache[ns]; ok {
		return nc, nil
	}
	pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list pods in %s: %w", ns, err)
	}
	slices, err := c.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName})
	if err != nil {
		return nil, fmt.Errorf("list endpointslices in %s: %w", ns, err)
	}
	nc := &nsCache{pods: pods.Items, slices: map[string][]discoveryv1.EndpointSlice{}}
	for _, sl := range slices.Items {
		name := sl.Labels[discoveryv1.LabelServiceName]
		nc.slices[name] = append(nc.slices[name], sl)
	}
	if cl.cache == nil {
		cl.cache = map[string]*nsCache{}
	}
	cl.cache[ns] = nc
	return nc, nil
}

func endpoints(slices []discoveryv1.EndpointSlice) (ready, notReady []Endpoint) {
	ready, notReady = []Endpoint{}, []Endpoint{}
	seen := map[string]bool{}
	for _, sl := range slices {
		var ports []int32
		for _, p := range sl.Ports {
			if p.Port != nil {
				ports = append(ports, *p.Port)
			}
		}
		for _, e := range sl.Endpoints {
			for _, a := range e.Addresses {
				if seen[a] {
					continue
				}
				seen[a] = true
				ep := Endpoint{Address: a, Ports: ports}
				if e.NodeName != nil {
					ep.Node = *e.NodeName
				}
				if e.TargetRef != nil && e.TargetRef.Kind == "Pod" {
					ep.Pod = e.TargetRef.Name
				}
				if e.Conditions.Ready == nil || *e.Conditions.Ready {
					ready = append(ready, ep)
				} else {
					notReady = append(notReady, ep)
				}
			}
		}
	}
	byAddr := func(l []Endpoint) { sort.Slice(l, func(i, j int) bool { return l[i].Address < l[j].Address }) }
	byAddr(ready)
	byAddr(notReady)
	return ready, notReady
}

func pendingReason(ctx context.Context, c kubernetes.Interface, cl *cluster, s *corev1.Service, class string) (string, []string) {
	// The newest warning event about this Service says most.
	if evs, err := c.CoreV1().Events(s.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Service,involvedObject.name=" + s.Name,
	}); err == nil {
		var last *corev1.Event
		for i := range evs.Items {
			e := &evs.Items[i]
			if e.InvolvedObject.Kind == "Service" && e.InvolvedObject.Name == s.Name && e.Type == corev1.EventTypeWarning && (last == nil || e.LastTimestamp.After(last.LastTimestamp.Time)) {
				last = e
			}
		}
		if last != nil {
			return fmt.Sprintf("%s: %s", last.Reason, last.Message), []string{"fix what the event above reports, then watch kubectl get svc " + s.Name + " -w"}
		}
	}
	if class != "" {
		return fmt.Sprintf("loadBalancerClass %q is set: only the controller for that class will assign an address, and it has not", class),
			[]string{"install or fix the controller for class " + class, "or remove spec.loadBalancerClass to let the default controller handle it"}
	}
	fixes := []string{
		"install MetalLB (L2 or BGP mode) with an IPAddressPool from your LAN",
		"or kube-vip's cloud provider with an address range",
		"or use type NodePort (or an Ingress controller on NodePorts/hostNetwork) and your own load balancer (HAProxy, keepalived VIP)",
		"or set spec.externalIPs to an address routed to a node",
	}
	if cl.lbController != "" {
		return fmt.Sprintf("a load-balancer controller is present (%s) but has not assigned an address: check its logs and address pool", cl.lbController),
			[]string{"check the controller's logs and that its address pool has free addresses", "kubectl describe svc " + s.Name + " -n " + s.Namespace}
	}
	if cl.bareMetal {
		return "no load-balancer controller found and the nodes have no cloud providerID (bare metal): nothing will ever assign an external address", fixes
	}
	return "no load-balancer controller found (no cloud-controller-manager, MetalLB or kube-vip)", fixes
}
