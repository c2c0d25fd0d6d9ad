package inspect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// PageSize is the limit of every list request (the same chunk size as kubectl).
const PageSize = 500

// Source is where Collect reads from. NewSource builds one from a rest.Config;
// tests may fill it by hand (a fake clientset, canned Raw answers).
type Source struct {
	Client kubernetes.Interface
	// Raw GETs a non-resource path (such as /readyz?verbose) and returns the
	// HTTP status and body. Nil: the health checks are reported as unknown.
	Raw func(ctx context.Context, path string) (int, []byte, error)
	// Server is the API server URL of the kubeconfig ("https://host:port").
	Server string
	// ServerName overrides the TLS server name (kubeconfig tls-server-name).
	ServerName string
	// DialTimeout bounds each TLS dial (default 3s). SkipDial disables dialling.
	DialTimeout time.Duration
	SkipDial    bool
	// Requests returns the number of API requests made so far (may be nil).
	Requests func() int64
	// Etcd reads etcd's membership from etcd itself (nil: only from the etcd Pods).
	Etcd EtcdReader
	// LoadBalancer reads keepalived and HAProxy on the control planes over
	// SSH (inspect components -f cluster.yaml); nil: not read.
	LoadBalancer LoadBalancerSource
}

// NewSource prepares a client for inspection: protobuf where the API has it,
// a higher client-side rate limit (the requests run in parallel) and a
// counter of the requests made.
func NewSource(cfg *rest.Config) (*Source, error) {
	c := rest.CopyConfig(cfg)
	c.ContentType = "application/vnd.kubernetes.protobuf"
	c.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	if c.QPS == 0 {
		c.QPS = 50
	}
	if c.Burst == 0 {
		c.Burst = 300
	}
	var n atomic.Int64
	prev := c.WrapTransport
	c.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		if prev != nil {
			rt = prev(rt)
		}
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			n.Add(1)
			return rt.RoundTrip(r)
		})
	}
	cs, err := kubernetes.NewForConfig(c)
	if err != nil {
		return nil, err
	}
	rc := cs.Discovery().RESTClient()
	return &Source{
		Client:     cs,
		Etcd:       &EtcdctlReader{Exec: NewPodExec(c, cs), Timeout: 5 * time.Second},
		Server:     c.Host,
		ServerName: c.TLSClientConfig.ServerName,
		Requests:   n.Load,
		Raw: func(ctx context.Context, path string) (int, []byte, error) {
			var code int
			p, query, _ := strings.Cut(path, "?")
			req := rc.Get().AbsPath(p).SetHeader("Accept", "application/json, */*")
			if query != "" {
				q, err := url.ParseQuery(query)
				if err != nil {
					return 0, nil, err
				}
				for k, vs := range q {
					for _, v := range vs {
						req = req.Param(k, v)
					}
				}
			}
			res := req.Do(ctx)
			res.StatusCode(&code)
			body, err := res.Raw()
			return code, body, err
		},
	}, nil
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Snapshot is everything Collect read. A nil object with no error means "not
// found"; Errs holds the reads that failed (Forbidden, timeouts), by source.
type Snapshot struct {
	Now           time.Time
	Server        string
	ServerVersion *version.Info
	Nodes         []corev1.Node
	Pods          []corev1.Pod // kube-system, tier=control-plane
	Leases        []coordinationv1.Lease
	KubeadmConfig *corev1.ConfigMap
	KubeProxy     *corev1.ConfigMap
	ClusterInfo   *corev1.ConfigMap
	Slices        []discoveryv1.EndpointSlice
	DaemonSets    []appsv1.DaemonSet // all namespaces
	Deployments   []appsv1.Deployment
	// DeploymentPods are the Pods of the kube-system Deployments the cluster's
	// availability rests on (CriticalDeployment) with 2 or more ready
	// replicas, by Deployment name.
	DeploymentPods map[string][]corev1.Pod
	DNSServices    []corev1.Service
	// MetricsAPIService is the raw JSON of the v1beta1.metrics.k8s.io APIService (nil: absent).
	MetricsAPIService []byte
	Readyz, Livez     *RawHealth
	ServerCert        *Probe
	EndpointCert      *Probe
	// EtcdMembership is etcd's own member list (Source.Etcd), nil when not
	// read; EtcdErr why it could not be read.
	EtcdMembership *EtcdMembership
	EtcdErr        error
	// APIServerCerts are the serving certificates read at each API server's
	// own address (kube-apiserver Pods' advertise address, then addresses of
	// the kubernetes EndpointSlice no Pod advertises), sorted by Target.
	APIServerCerts []*Probe
	// LoadBalancer is what Source.LoadBalancer read (nil: not read).
	LoadBalancer *LoadBalancerSnapshot
	Errs         map[string]error
	Requests     int64
	Duration     time.Duration
}

// RawHealth is the answer of a health endpoint.
type RawHealth struct {
	Code int
	Body string
}

// Probe is the result of TLS-dialling an address.
type Probe struct {
	Target    string
	Reachable bool
	Err       error
	Cert      *x509.Certificate
	// Server is the node of the API server dialled (APIServerCerts; "" when
	// only its address is known); Via says where its address came from.
	Server string
	Via    string
}

// Where the address of an API server came from (Certificate.Via).
const (
	ViaKubeconfig  = "kubeconfig"
	ViaEndpoint    = "controlPlaneEndpoint"
	ViaAdvertise   = "advertise-address" // the kube-apiserver Pod
	ViaEndpointSet = "endpointslice"     // default/kubernetes, no Pod advertises it
)

// AdvertiseAnnotation is where kubeadm records the kube-apiserver Pod's advertise address:port.
const AdvertiseAnnotation = "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"

// apiServerTargets lists the address of each API server: from the
// kube-apiserver Pods (kubeadm's annotation, else --advertise-address and
// --secure-port, else the Pod's host IP), then the ready addresses of the
// kubernetes EndpointSlice that no Pod advertises. Sorted, no duplicates.
func apiServerTargets(pods []corev1.Pod, slices []discoveryv1.EndpointSlice) []*Probe {
	seen := map[string]bool{}
	var out []*Probe
	add := func(target, server, via string) {
		if target == "" || seen[target] {
			return
		}
		seen[target] = true
		out = append(out, &Probe{Target: target, Server: server, Via: via})
	}
	for i := range pods {
		p := &pods[i]
		if p.Labels["component"] != "kube-apiserver" || p.DeletionTimestamp != nil {
			continue
		}
		add(advertiseEndpoint(p), p.Spec.NodeName, ViaAdvertise)
	}
	for _, sl := range slices {
		port := "443"
		for _, pt := range sl.Ports {
			if pt.Port != nil {
				port = fmt.Sprint(*pt.Port)
			}
		}
		for _, ep := range sl.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			server := ""
			if ep.NodeName != nil {
				server = *ep.NodeName
			}
			for _, ad := range ep.Addresses {
				add(net.JoinHostPort(ad, port), server, ViaEndpointSet)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Target < out[j].Target })
	return out
}

// advertiseEndpoint is host:port where a kube-apiserver Pod serves.
func advertiseEndpoint(p *corev1.Pod) string {
	if ep := p.Annotations[AdvertiseAnnotation]; ep != "" {
		h, port := splitHostPortDefault(ep, "6443")
		return net.JoinHostPort(h, port)
	}
	host, port := "", "6443"
	for _, c := range p.Spec.Containers {
		for _, arg := range append(append([]string{}, c.Command...), c.Args...) {
			if v, ok := strings.CutPrefix(arg, "--advertise-address="); ok {
				host = v
			}
			if v, ok := strings.CutPrefix(arg, "--secure-port="); ok {
				port = v
			}
		}
	}
	if host == "" {
		host = p.Status.HostIP
	}
	if host == "" {
		return ""
	}
	return net.JoinHostPort(host, port)
}

// Source names in Snapshot.Errs.
const (
	srcVersion     = "version"
	srcNodes       = "nodes"
	srcPods        = "pods"
	srcLeases      = "leases"
	srcKubeadm     = "configmap kube-system/kubeadm-config"
	srcKubeProxy   = "configmap kube-system/kube-proxy"
	srcClusterInfo = "configmap kube-public/cluster-info"
	srcSlices      = "endpointslices"
	srcDaemonSets  = "daemonsets"
	srcDeployments = "deployments"
	// srcDeploymentPods: the Pods of CoreDNS, metrics-server and the CNI's controllers.
	srcDeploymentPods = "pods of kube-system Deployments"
	srcServices       = "services"
	srcAPIService     = "apiservices"
	srcReadyz         = "/readyz"
	srcLivez          = "/livez"
)

// Collect reads the cluster: a fixed set of requests (lists paginated by
// PageSize), all in parallel; never one request per node.
func Collect(ctx context.Context, src *Source) *Snapshot {
	start := time.Now()
	s := &Snapshot{Now: start, Server: src.Server, Errs: map[string]error{}}
	var mu sync.Mutex
	fail := func(name string, err error) {
		mu.Lock()
		s.Errs[name] = err
		mu.Unlock()
	}
	var wg sync.WaitGroup
	run := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	cs := src.Client
	const ks = "kube-system"

	if src.LoadBalancer != nil {
		run(func() { s.LoadBalancer = src.LoadBalancer.ReadLoadBalancer(ctx) })
	}
	run(func() {
		v, err := cs.Discovery().ServerVersion()
		if err != nil {
			fail(srcVersion, err)
			return
		}
		s.ServerVersion = v
	})
	run(func() {
		items, err := listAll(ctx, metav1.ListOptions{}, cs.CoreV1().Nodes().List,
			func(l *corev1.NodeList) ([]corev1.Node, string) { return l.Items, l.Continue })
		if err != nil {
			fail(srcNodes, err)
		}
		s.Nodes = items
	})
	// The API servers' own addresses are known once the Pods and the
	// EndpointSlice are read: their certificates are read right then.
	var addrs sync.WaitGroup
	addrs.Add(2)
	run(func() {
		defer addrs.Done()
		items, err := listAll(ctx, metav1.ListOptions{LabelSelector: "tier=control-plane"}, cs.CoreV1().Pods(ks).List,
			func(l *corev1.PodList) ([]corev1.Pod, string) { return l.Items, l.Continue })
		if err != nil {
			fail(srcPods, err)
		}
		s.Pods = items
		if src.Etcd != nil && err == nil {
			run(func() { s.EtcdMembership, s.EtcdErr = src.Etcd.ReadMembership(ctx, items) })
		}
	})
	run(func() {
		items, err := listAll(ctx, metav1.ListOptions{}, cs.CoordinationV1().Leases(ks).List,
			func(l *coordinationv1.LeaseList) ([]coordinationv1.Lease, string) { return l.Items, l.Continue })
		if err != nil {
			fail(srcLeases, err)
		}
		s.Leases = items
	})
	getCM := func(ns, name, src string, dst **corev1.ConfigMap) {
		cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			fail(src, err)
		default:
			*dst = cm
		}
	}
	run(func() {
		getCM(ks, "kubeadm-config", srcKubeadm, &s.KubeadmConfig)
		// The endpoint is known only now: dial it in this goroutine.
		if src.SkipDial || s.KubeadmConfig == nil {
			return
		}
		if ep := parseClusterConfiguration(s.KubeadmConfig.Data["ClusterConfiguration"]).ControlPlaneEndpoint; ep != "" {
			host, port := splitHostPortDefault(ep, "6443")
			s.EndpointCert = probeTLS(ctx, net.JoinHostPort(host, port), host, src.DialTimeout)
		}
	})
	run(func() { getCM(ks, "kube-proxy", srcKubeProxy, &s.KubeProxy) })
	run(func() { getCM("kube-public", "cluster-info", srcClusterInfo, &s.ClusterInfo) })
	run(func() {
		defer addrs.Done()
		items, err := listAll(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kubernetes"},
			cs.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).List,
			func(l *discoveryv1.EndpointSliceList) ([]discoveryv1.EndpointSlice, string) {
				return l.Items, l.Continue
			})
		if err != nil {
			fail(srcSlices, err)
		}
		s.Slices = items
	})
	run(func() {
		items, err := listAll(ctx, metav1.ListOptions{}, cs.AppsV1().DaemonSets(metav1.NamespaceAll).List,
			func(l *appsv1.DaemonSetList) ([]appsv1.DaemonSet, string) { return l.Items, l.Continue })
		if err != nil {
			fail(srcDaemonSets, err)
		}
		s.DaemonSets = items
	})
	run(func() {
		items, err := listAll(ctx, metav1.ListOptions{}, cs.AppsV1().Deployments(ks).List,
			func(l *appsv1.DeploymentList) ([]appsv1.Deployment, string) { return l.Items, l.Continue })
		if err != nil {
			fail(srcDeployments, err)
		}
		s.Deployments = items
		// Where do the replicas of the Deployments the cluster rests on run?
		// One list per such Deployment (a handful, not per node), by its selector.
		var pw sync.WaitGroup
		for i := range items {
			d := &items[i]
			if CriticalDeployment(d) == "" || d.Spec.Selector == nil || d.Status.ReadyReplicas < 2 {
				continue
			}
			sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
			if err != nil || sel.Empty() {
				continue
			}
			pw.Add(1)
			go func() {
				defer pw.Done()
				pods, err := listAll(ctx, metav1.ListOptions{LabelSelector: sel.String()}, cs.CoreV1().Pods(ks).List,
					func(l *corev1.PodList) ([]corev1.Pod, string) { return l.Items, l.Continue })
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					s.Errs[srcDeploymentPods] = err
					return
				}
				if s.DeploymentPods == nil {
					s.DeploymentPods = map[string][]corev1.Pod{}
				}
				s.DeploymentPods[d.Name] = pods
			}()
		}
		pw.Wait()
	})
	run(func() {
		items, err := listAll(ctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-dns"}, cs.CoreV1().Services(ks).List,
			func(l *corev1.ServiceList) ([]corev1.Service, string) { return l.Items, l.Continue })
		if err != nil {
			fail(srcServices, err)
		}
		s.DNSServices = items
	})
	if src.Raw != nil {
		run(func() {
			code, body, err := src.Raw(ctx, "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io")
			switch {
			case code == http.StatusNotFound || apierrors.IsNotFound(err):
			case err != nil:
				fail(srcAPIService, err)
			default:
				s.MetricsAPIService = body
			}
		})
		health := func(path, name string, dst **RawHealth) {
			code, body, err := src.Raw(ctx, path+"?verbose")
			if code == 0 && err != nil {
				fail(name, err)
				return
			}
			if code == http.StatusForbidden || code == http.StatusUnauthorized {
				fail(name, err)
				return
			}
			*dst = &RawHealth{Code: code, Body: string(body)}
		}
		run(func() { health("/readyz", srcReadyz, &s.Readyz) })
		run(func() { health("/livez", srcLivez, &s.Livez) })
	}
	if !src.SkipDial {
		run(func() {
			addrs.Wait()
			targets := apiServerTargets(s.Pods, s.Slices)
			var dw sync.WaitGroup
			for _, t := range targets {
				dw.Add(1)
				go func() {
					defer dw.Done()
					p := probeTLS(ctx, t.Target, "", src.DialTimeout)
					p.Server, p.Via = t.Server, t.Via
					*t = *p
				}()
			}
			dw.Wait()
			s.APIServerCerts = targets
		})
	}
	if !src.SkipDial && src.Server != "" {
		run(func() {
			host, port := splitURLHostPort(src.Server)
			if host == "" {
				return
			}
			sn := src.ServerName
			if sn == "" {
				sn = host
			}
			s.ServerCert = probeTLS(ctx, net.JoinHostPort(host, port), sn, src.DialTimeout)
		})
	}
	wg.Wait()
	if src.Requests != nil {
		s.Requests = src.Requests()
	}
	s.Duration = time.Since(start)
	return s
}

// listAll follows continue tokens; each page holds at most PageSize items.
func listAll[L any, T any](ctx context.Context, opts metav1.ListOptions,
	list func(context.Context, metav1.ListOptions) (L, error), items func(L) ([]T, string)) ([]T, error) {
	var all []T
	opts.Limit = PageSize
	for {
		l, err := list(ctx, opts)
		if err != nil {
			return all, err
		}
		page, next := items(l)
		all = append(all, page...)
		if next == "" {
			return all, nil
		}
		opts.Continue = next
	}
}

// probeTLS dials addr and reads the peer certificate. Nothing is sent and the
// certificate is not trusted for anything: it is only read (expiry, SANs), so
// verification is off on purpose, as with `openssl s_client`.
func probeTLS(ctx context.Context, addr, serverName string, timeout time.Duration) *Probe {
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	p := &Probe{Target: addr}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		p.Err = err
		return p
	}
	p.Reachable = true
	defer raw.Close()
	if ip := net.ParseIP(serverName); ip != nil {
		serverName = "" // SNI carries host names only
	}
	conn := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, ServerName: serverName}) //nolint:gosec // read-only look at the certificate
	if err := conn.HandshakeContext(ctx); err != nil {
		p.Err = fmt.Errorf("TLS handshake: %w", err)
		return p
	}
	if certs := conn.ConnectionState().PeerCertificates; len(certs) > 0 {
		p.Cert = certs[0]
	}
	return p
}
