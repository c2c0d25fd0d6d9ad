package svcexplain

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
)

func node(name, ip string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}, {Type: corev1.NodeHostName, Address: name}}}}
}

func pod(ns, name, node string, lbls map[string]string, ports ...corev1.ContainerPort) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
		Spec:   corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "x", Ports: ports}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
}

func svc(ns, name string, typ corev1.ServiceType, sel map[string]string, ports ...corev1.ServicePort) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Type: typ, Selector: sel, Ports: ports, ClusterIP: "10.96.0.50", ClusterIPs: []string{"10.96.0.50"}}}
	return s
}

func slice(ns, svcName string, port int32, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: svcName + "-abc", Labels: map[string]string{discoveryv1.LabelServiceName: svcName}},
		AddressType: discoveryv1.AddressTypeIPv4, Endpoints: eps,
		Ports: []discoveryv1.EndpointPort{{Port: &port}},
	}
}

func ep(addr, node, podName string, ready bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{addr}, NodeName: &node, Conditions: discoveryv1.EndpointConditions{Ready: &ready},
		TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: podName}}
}

func codes(r Report) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, f.Code)
	}
	return out
}

func has(r Report, code string) bool {
	for _, c := range codes(r) {
		if c == code {
			return true
		}
	}
	return false
}

func fixture() []runtime.Object {
	web := map[string]string{"app": "web"}
	http := corev1.ContainerPort{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}
	apiserver := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-apiserver-cp-1", Labels: map[string]string{"component": "kube-apiserver"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kube-apiserver", Command: []string{"kube-apiserver", "--service-node-port-range=30000-31000"}}}}}
	np := svc("shop", "np", corev1.ServiceTypeNodePort, web, corev1.ServicePort{Port: 80, TargetPort: intstr.FromInt32(8080), NodePort: 32000, Protocol: corev1.ProtocolTCP})
	lb := svc("shop", "lb", corev1.ServiceTypeLoadBalancer, web, corev1.ServicePort{Port: 80, TargetPort: intstr.FromString("http"), NodePort: 30080, Protocol: corev1.ProtocolTCP})
	lb.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	lbNone := svc("shop", "lbnone", corev1.ServiceTypeNodePort, map[string]string{"app": "idle"}, corev1.ServicePort{Port: 80, TargetPort: intstr.FromInt32(8080), NodePort: 30081, Protocol: corev1.ProtocolTCP})
	lbNone.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	ext := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "ext"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "10.1.2.3"}}
	headless := svc("shop", "db", corev1.ServiceTypeClusterIP, web, corev1.ServicePort{Port: 8080, Protocol: corev1.ProtocolTCP})
	headless.Spec.ClusterIP, headless.Spec.ClusterIPs = corev1.ClusterIPNone, []string{corev1.ClusterIPNone}
	notReady := pod("shop", "idle-1", "node-2", map[string]string{"app": "idle"}, http)
	notReady.Status.Phase = corev1.PodPending
	return []runtime.Object{
		node("node-1", "192.168.1.11"), node("node-2", "192.168.1.12"), apiserver,
		pod("shop", "web-1", "node-1", web, http),
		notReady,
		svc("shop", "web", corev1.ServiceTypeClusterIP, web, corev1.ServicePort{Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}),
		svc("shop", "nomatch", corev1.ServiceTypeClusterIP, map[string]string{"app": "ghost"}, corev1.ServicePort{Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}),
		svc("shop", "badport", corev1.ServiceTypeClusterIP, web, corev1.ServicePort{Name: "a", Port: 80, TargetPort: intstr.FromInt32(9090), Protocol: corev1.ProtocolTCP},
			corev1.ServicePort{Name: "b", Port: 81, TargetPort: intstr.FromString("metrics"), Protocol: corev1.ProtocolTCP}),
		np, lb, lbNone, ext, headless,
		slice("shop", "web", 8080, ep("10.244.1.5", "node-1", "web-1", true)),
		slice("shop", "lb", 8080, ep("10.244.1.5", "node-1", "web-1", true)),
		slice("shop", "lbnone", 8080, ep("10.244.2.7", "node-2", "idle-1", false)),
		slice("shop", "db", 8080, ep("10.244.1.5", "node-1", "web-1", true)),
	}
}

func explainAll(t *testing.T, o Options) map[string]Report {
	t.Helper()
	c := fake.NewClientset(fixture()...)
	o.Namespace, o.All = "shop", true
	reps, err := Explain(context.Background(), c, o)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]Report{}
	for _, r := range reps {
		m[r.Name] = r
	}
	return m
}

func TestExplainFindsEachMistake(t *testing.T) {
	m := explainAll(t, Options{})
	if len(m) != 8 {
		t.Fatalf("want 8 services, got %d", len(m))
	}
	web := m["web"]
	if len(web.Findings) != 0 || web.DNSName != "web.shop.svc.cluster.local" || len(web.Endpoints.Ready) != 1 || web.Endpoints.Ready[0].Pod != "web-1" {
		t.Errorf("healthy web: %+v", web)
	}
	if !has(m["nomatch"], CodeSelectorMatchesNoPod) {
		t.Errorf("nomatch: %v", codes(m["nomatch"]))
	}
	bp := m["badport"]
	n := 0
	for _, f := range bp.Findings {
		if f.Code == CodeTargetPortNotExposed {
			n++
			if !strings.Contains(f.Message, "http=8080") {
				t.Errorf("finding should list declared ports: %s", f.Message)
			}
		}
	}
	if n != 2 {
		t.Errorf("badport: want 2 target-port findings (numeric and named), got %v", codes(bp))
	}
	np := m["np"]
	if !has(np, CodeNodePortOutOfRange) || np.NodePortRange != "30000-31000" {
		t.Errorf("np: range %s, %v", np.NodePortRange, codes(np))
	}
	if len(np.NodeAccess) != 2 || np.NodeAccess[0].Address != "192.168.1.11" || np.NodeAccess[0].NodePort != 32000 {
		t.Errorf("np node access: %+v", np.NodeAccess)
	}
	lb := m["lb"]
	if !has(lb, CodeLocalPolicyPartial) || has(lb, CodeLocalPolicyNoEndpoints) || !has(lb, CodeLoadBalancerPending) {
		t.Errorf("lb: %v", codes(lb))
	}
	if lb.LoadBalancer == nil || !lb.LoadBalancer.Pending || !strings.Contains(lb.LoadBalancer.Reason, "bare metal") || len(lb.LoadBalancer.Fixes) == 0 {
		t.Errorf("lb pending reason: %+v", lb.LoadBalancer)
	}
	if has(lb, CodeTargetPortNotExposed) {
		t.Errorf("named targetPort http exists: %v", lb.Findings)
	}
	for _, a := range lb.NodeAccess {
		if a.LocalEndpoint == nil || *a.LocalEndpoint != (a.Node == "node-1") {
			t.Errorf("local endpoint flag wrong for %s", a.Node)
		}
	}
	ln := m["lbnone"]
	if !has(ln, CodeLocalPolicyNoEndpoints) || !has(ln, CodeNoReadyEndpoints) || len(ln.Endpoints.NotReady) != 1 {
		t.Errorf("lbnone: %v %+v", codes(ln), ln.Endpoints)
	}
	if !has(m["ext"], CodeExternalNameIsIP) || m["ext"].ExternalName != "10.1.2.3" {
		t.Errorf("ext: %v", codes(m["ext"]))
	}
	db := m["db"]
	if !db.Headless || len(db.ClusterIPs) != 0 || len(db.Findings) != 0 {
		t.Errorf("headless: %+v", db)
	}
	if m["web"].Worst() != "" || m["np"].Worst() != SeverityError || m["lb"].Worst() != SeverityWarning {
		t.Errorf("worst: %q %q %q", m["web"].Worst(), m["np"].Worst(), m["lb"].Worst())
	}
}

func TestNodePortRangeOverrideAndLBController(t *testing.T) {
	r := PortRange{Base: 30000, Size: 5000}
	m := explainAll(t, Options{NodePortRange: &r})
	if has(m["np"], CodeNodePortOutOfRange) {
		t.Errorf("32000 is inside 30000-34999")
	}
	// A MetalLB controller changes the pending reason.
	objs := append(fixture(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "metallb-controller-7c9"}})
	c := fake.NewClientset(objs...)
	reps, err := Explain(context.Background(), c, Options{Namespace: "shop", Names: []string{"svc/lb"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || !strings.Contains(reps[0].LoadBalancer.Reason, "metallb-controller") {
		t.Errorf("reason: %+v", reps[0].LoadBalancer)
	}
}

func TestSelectionErrorsAndJSON(t *testing.T) {
	c := fake.NewClientset(fixture()...)
	if _, err := Explain(context.Background(), c, Options{Namespace: "shop", Names: []string{"missing"}}); err == nil || !strings.Contains(err.Error(), `service "missing" not found`) {
		t.Errorf("missing: %v", err)
	}
	if _, err := Explain(context.Background(), c, Options{Namespace: "shop", Names: []string{"deploy/web"}}); err == nil {
		t.Error("deploy/web accepted")
	}
	reps, err := Explain(context.Background(), c, Options{AllNamespaces: true})
	if err != nil || len(reps) != 8 {
		t.Fatalf("-A: %d %v", len(reps), err)
	}
	b, _ := json.Marshal(reps[0])
	for _, k := range []string{`"namespace"`, `"dnsName"`, `"ports"`, `"endpoints"`, `"ready"`, `"notReady"`, `"findings"`, `"paths"`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("json lacks %s: %s", k, b)
		}
	}
}

func TestParsePortRange(t *testing.T) {
	r, err := ParsePortRange("30000-32767")
	if err != nil || r != DefaultNodePortRange || r.String() != "30000-32767" || !r.Contains(32767) || r.Contains(32768) {
		t.Errorf("%v %v", r, err)
	}
	for _, bad := range []string{"", "a-b", "3-1", "1-70000"} {
		if _, err := ParsePortRange(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestTypesCatalogue(t *testing.T) {
	ts := Types()
	want := []string{"ClusterIP", "Headless (ClusterIP: None)", "NodePort", "LoadBalancer", "ExternalName"}
	if len(ts) != len(want) {
		t.Fatalf("%d types", len(ts))
	}
	for i, w := range want {
		if ts[i].Type != w || ts[i].ReachableBy == "" || ts[i].Cost == "" || ts[i].UseWhen == "" || len(ts[i].Creates) == 0 {
			t.Errorf("type %d: %+v", i, ts[i])
		}
	}
	if ts[3].BuildsOn != "NodePort (and so ClusterIP)" || ts[2].BuildsOn != "ClusterIP" {
		t.Error("LoadBalancer builds on NodePort builds on ClusterIP")
	}
}

// BenchmarkExplainAllNamespaces explains 200 Services in 4 namespaces and
// reports how many API requests that costs (Pods and EndpointSlices are read
// once per namespace, not once per Service).
func BenchmarkExplainAllNamespaces(b *testing.B) {
	var objs []runtime.Object
	for i := range 5 {
		objs = append(objs, node("node-"+strconv.Itoa(i), "192.168.1."+strconv.Itoa(10+i)))
	}
	for n := range 4 {
		ns := "ns-" + strconv.Itoa(n)
		for i := range 50 {
			name := "svc-" + strconv.Itoa(i)
			sel := map[string]string{"app": name}
			objs = append(objs,
				svc(ns, name, corev1.ServiceTypeNodePort, sel, corev1.ServicePort{Port: 80, TargetPort: intstr.FromInt32(8080), NodePort: int32(30000 + n*50 + i), Protocol: corev1.ProtocolTCP}),
				pod(ns, name+"-a", "node-1", sel, corev1.ContainerPort{ContainerPort: 8080}),
				slice(ns, name, 8080, ep("10.244.1."+strconv.Itoa(i), "node-1", name+"-a", true)))
		}
	}
	c := fake.NewClientset(objs...)
	b.ResetTimer()
	for b.Loop() {
		c.ClearActions()
		reps, err := Explain(context.Background(), c, Options{AllNamespaces: true})
		if err != nil || len(reps) != 200 {
			b.Fatalf("%d %v", len(reps), err)
		}
	}
	b.ReportMetric(float64(len(c.Actions())), "requests/op")
}

// default/kubernetes: its endpoints are registered by the API servers, never
// "EndpointSlices you manage yourself"; registered against kube-apiserver Pods.
func TestKubernetesServiceRegisteredByAPIServers(t *testing.T) {
	kube := func() *corev1.Service {
		s := svc("default", "kubernetes", corev1.ServiceTypeClusterIP, nil, corev1.ServicePort{Name: "https", Port: 443, TargetPort: intstr.FromInt32(6443), Protocol: corev1.ProtocolTCP})
		s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.1", []string{"10.96.0.1"}
		return s
	}
	apiPod := func(n string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-apiserver-" + n, Labels: map[string]string{"component": "kube-apiserver"}}}
	}
	apiEP := func(ip string) discoveryv1.Endpoint {
		ready := true
		return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}
	}
	for _, c := range []struct {
		name       string
		registered []string
		pods       []string
		code, sev  string
		text       string
	}{
		{"all registered", []string{"10.0.0.11", "10.0.0.12", "10.0.0.13"}, []string{"cp-1", "cp-2", "cp-3"}, CodeAPIServerEndpoints, SeverityInfo,
			"the API servers register its endpoints themselves (the endpoint reconciler, not a selector and not you); 3 registered, 3 kube-apiserver Pod(s) exist"},
		{"one missing", []string{"10.0.0.11", "10.0.0.12"}, []string{"cp-1", "cp-2", "cp-3"}, CodeAPIServerEndpointsMissing, SeverityWarning,
			"2 registered, 3 kube-apiserver Pod(s) exist in kube-system: an API server is down or not registering"},
		{"none", nil, []string{"cp-1"}, CodeAPIServerEndpointsMissing, SeverityWarning, "none is registered (1 kube-apiserver Pod(s) exist"},
		{"managed", []string{"34.1.2.3"}, nil, CodeAPIServerEndpoints, SeverityInfo, "1 registered, no kube-apiserver Pod is visible"},
	} {
		t.Run(c.name, func(t *testing.T) {
			objs := []runtime.Object{kube()}
			for _, p := range c.pods {
				objs = append(objs, apiPod(p))
			}
			if c.registered != nil {
				var eps []discoveryv1.Endpoint
				for _, ip := range c.registered {
					eps = append(eps, apiEP(ip))
				}
				objs = append(objs, slice("default", "kubernetes", 6443, eps...))
			}
			reps, err := Explain(context.Background(), fake.NewClientset(objs...), Options{Namespace: "default", Names: []string{"kubernetes"}})
			if err != nil {
				t.Fatal(err)
			}
			r := reps[0]
			if has(r, CodeNoSelector) {
				t.Errorf("kubernetes called a Service whose endpoints you manage: %+v", r.Findings)
			}
			var f *Finding
			for i := range r.Findings {
				if r.Findings[i].Code == c.code {
					f = &r.Findings[i]
				}
			}
			if f == nil || f.Severity != c.sev || !strings.Contains(f.Message, c.text) {
				t.Errorf("finding %+v, want %s %s with %q; all %+v", f, c.sev, c.code, c.text, r.Findings)
			}
			if r.APIServers == nil || r.APIServers.Registered != len(c.registered) || r.APIServers.Pods != len(c.pods) {
				t.Errorf("apiServers %+v", r.APIServers)
			}
		})
	}
	// Another Service without selector is still yours.
	objs := []runtime.Object{svc("default", "external-db", corev1.ServiceTypeClusterIP, nil, corev1.ServicePort{Port: 5432, Protocol: corev1.ProtocolTCP})}
	reps, err := Explain(context.Background(), fake.NewClientset(objs...), Options{Namespace: "default", Names: []string{"external-db"}})
	if err != nil || !has(reps[0], CodeNoSelector) || reps[0].APIServers != nil {
		t.Errorf("external-db: %v %+v", err, reps)
	}
}
