package explain

// Real kube-apiserver test: the HA shape from pkg/testbed with the real
// controller-manager (EndpointSlices) and kwok (Pods Running and Ready), and
// Services of all four types plus each mistake `explain service` reports.

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/hacluster/hacluster/pkg/cmd/hacluster/factory"
	"github.com/hacluster/hacluster/pkg/svcexplain"
	"github.com/hacluster/hacluster/pkg/testbed"
)

func run(ctx context.Context, bed *testbed.Bed, ns string, args ...string) (string, error) {
	var out, errb bytes.Buffer
	f := factory.ForKubeconfig(bed.Kubeconfig, ns, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errb})
	cmd := NewCmd(f)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

func TestExplainServicesOnHAShape(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bed := testbed.Start(t, testbed.Options{Components: true})
	if _, err := bed.ApplyHAShape(ctx, testbed.Shape{}); err != nil {
		t.Fatal(err)
	}
	ns := bed.Namespace(t)
	cs := bed.Client
	web := map[string]string{"app": "web"}
	for _, node := range []string{"worker-1", "worker-2"} {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web-" + node, Labels: web},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "web", Image: "example/web:1",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}}}},
		}
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	port := func(p int32, target intstr.IntOrString, nodePort int32) []corev1.ServicePort {
		return []corev1.ServicePort{{Name: "web", Port: p, TargetPort: target, NodePort: nodePort, Protocol: corev1.ProtocolTCP}}
	}
	mk := func(name string, typ corev1.ServiceType, sel map[string]string, ports []corev1.ServicePort, mut func(*corev1.Service)) {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{Type: typ, Selector: sel, Ports: ports}}
		if mut != nil {
			mut(s)
		}
		if _, err := cs.CoreV1().Services(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatalf("service %s: %v", name, err)
		}
	}
	local := func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal }
	mk("web", corev1.ServiceTypeClusterIP, web, port(80, intstr.FromString("http"), 0), nil)
	mk("headless", corev1.ServiceTypeClusterIP, web, port(8080, intstr.FromInt32(8080), 0), func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone })
	mk("nodeport", corev1.ServiceTypeNodePort, web, port(80, intstr.FromInt32(8080), 30080), nil)
	mk("outofrange", corev1.ServiceTypeNodePort, web, port(80, intstr.FromInt32(8080), 32100), nil)
	mk("lb", corev1.ServiceTypeLoadBalancer, web, port(80, intstr.FromInt32(8080), 30081), local)
	mk("lb-nolocal", corev1.ServiceTypeLoadBalancer, map[string]string{"app": "ghost"}, port(80, intstr.FromInt32(8080), 30082), local)
	mk("ghost", corev1.ServiceTypeClusterIP, map[string]string{"app": "ghost"}, port(80, intstr.FromInt32(8080), 0), nil)
	mk("wrongport", corev1.ServiceTypeClusterIP, web, port(80, intstr.FromInt32(9090), 0), nil)
	mk("external", corev1.ServiceTypeExternalName, nil, nil, func(s *corev1.Service) { s.Spec.ExternalName = "db.example.com" })
	mk("external-ip", corev1.ServiceTypeExternalName, nil, nil, func(s *corev1.Service) { s.Spec.ExternalName = "10.1.2.3" })

	// The controller-manager publishes EndpointSlices once kwok has the Pods Ready.
	deadline := time.Now().Add(90 * time.Second)
	for {
		sl, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
		ready := 0
		if err == nil {
			for _, s := range sl.Items {
				for _, e := range s.Endpoints {
					if e.Conditions.Ready != nil && *e.Conditions.Ready {
						ready++
					}
				}
			}
		}
		if ready == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("EndpointSlices of web: %d ready endpoints after 90s (%v)", ready, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	start := time.Now()
	out, err := run(ctx, bed, ns, "service", "--all", "--node-port-range", "30000-31999", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("explain service --all (10 Services, 5 nodes): %s", time.Since(start).Round(time.Millisecond))
	var doc struct {
		Services []svcexplain.Report `json:"services"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	got := map[string]svcexplain.Report{}
	for _, r := range doc.Services {
		got[r.Name] = r
	}
	if len(got) != 10 {
		t.Fatalf("want 10 services, got %d", len(got))
	}
	codes := func(r svcexplain.Report) string {
		var c []string
		for _, f := range r.Findings {
			c = append(c, f.Code)
		}
		return strings.Join(c, ",")
	}
	want := map[string]string{
		"web":         "",
		"headless":    "",
		"nodeport":    "",
		"outofrange":  svcexplain.CodeNodePortOutOfRange,
		"lb":          svcexplain.CodeLocalPolicyPartial + "," + svcexplain.CodeLoadBalancerPending,
		"lb-nolocal":  svcexplain.CodeLocalPolicyNoEndpoints + "," + svcexplain.CodeLoadBalancerPending + "," + svcexplain.CodeSelectorMatchesNoPod,
		"ghost":       svcexplain.CodeSelectorMatchesNoPod,
		"wrongport":   svcexplain.CodeTargetPortNotExposed,
		"external":    "",
		"external-ip": svcexplain.CodeExternalNameIsIP,
	}
	for name, w := range want {
		if c := codes(got[name]); c != w {
			t.Errorf("%s: findings %q, want %q: %+v", name, c, w, got[name].Findings)
		}
	}
	w := got["web"]
	if w.DNSName != "web."+ns+".svc.cluster.local" || len(w.ClusterIPs) != 1 || len(w.Endpoints.Ready) != 2 || w.MatchingPods != 2 {
		t.Errorf("web: %+v", w)
	}
	for _, e := range w.Endpoints.Ready {
		if e.Pod != "web-"+e.Node || len(e.Ports) != 1 || e.Ports[0] != 8080 {
			t.Errorf("web endpoint: %+v", e)
		}
	}
	if h := got["headless"]; !h.Headless || len(h.ClusterIPs) != 0 {
		t.Errorf("headless: %+v", h)
	}
	np := got["nodeport"]
	if len(np.NodeAccess) != 5 || np.NodePortRange != "30000-31999" {
		t.Errorf("nodeport: every node's address on 30080: %+v", np.NodeAccess)
	}
	for _, a := range np.NodeAccess {
		if a.NodePort != 30080 || !strings.HasPrefix(a.Address, "127.0.0.") {
			t.Errorf("node access: %+v", a)
		}
	}
	lb := got["lb"]
	if lb.LoadBalancer == nil || !lb.LoadBalancer.Pending || lb.LoadBalancer.Reason == "" || len(lb.LoadBalancer.Fixes) == 0 {
		t.Errorf("lb pending: %+v", lb.LoadBalancer)
	}
	locals := 0
	for _, a := range lb.NodeAccess {
		if *a.LocalEndpoint {
			locals++
			if !strings.HasPrefix(a.Node, "worker-") {
				t.Errorf("local endpoint on %s", a.Node)
			}
		}
	}
	if locals != 2 || len(lb.NodeAccess) != 5 {
		t.Errorf("lb node access: %+v", lb.NodeAccess)
	}
	if got["external"].ExternalName != "db.example.com" {
		t.Errorf("external: %+v", got["external"])
	}

	// People's view of one Service, named as svc/NAME.
	table, err := run(ctx, bed, ns, "service", "svc/lb")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Service " + ns + "/lb  type LoadBalancer", "usual fixes for the pending load balancer:", "MetalLB", "LOCAL ENDPOINT", "no (dropped)", "externalTrafficPolicy is Local"} {
		if !strings.Contains(table, s) {
			t.Errorf("table lacks %q:\n%s", s, table)
		}
	}
	t.Logf("explain service svc/lb:\n%s", table)

	// The HA shape's own Services across namespaces (-A), and bad input.
	out, err = run(ctx, bed, ns, "service", "-A", "-o", "yaml")
	if err != nil || !strings.Contains(out, "name: kube-dns") || !strings.Contains(out, "dnsName: kube-dns.kube-system.svc.cluster.local") {
		t.Errorf("-A (%v):\n%.2000s", err, out)
	}
	// The listing flags on explain itself (issue 18: `explain --all -A` was an unknown flag).
	short, err := run(ctx, bed, ns, "--all", "-A", "-o", "yaml")
	items := func(y string) int { return strings.Count(y, "\n  - ") } // the Services of "services:"
	if err != nil || !strings.Contains(short, "name: kube-dns") || items(short) < 5 || items(short) != items(out) {
		t.Errorf("explain --all -A (%v): %d Services, explain service -A: %d\n%.1000s", err, items(short), items(out), short)
	}

	// default/kubernetes: the API servers register its endpoints, not "you"
	// (the bed's API server runs with --endpoint-reconciler-type none, so
	// none is registered against the 3 kube-apiserver Pods of the shape).
	out, err = run(ctx, bed, "default", "service", "kubernetes", "-o", "json")
	var kube struct{ Services []svcexplain.Report }
	if err != nil || json.Unmarshal([]byte(out), &kube) != nil || len(kube.Services) != 1 {
		t.Fatalf("explain service kubernetes (%v):\n%s", err, out)
	}
	if k := kube.Services[0]; k.APIServers == nil || k.APIServers.Registered != 0 || k.APIServers.Pods != 3 ||
		!slices.ContainsFunc(k.Findings, func(f svcexplain.Finding) bool {
			return f.Code == svcexplain.CodeAPIServerEndpointsMissing && strings.Contains(f.Message, "the API servers register its endpoints themselves")
		}) || slices.ContainsFunc(k.Findings, func(f svcexplain.Finding) bool { return f.Code == svcexplain.CodeNoSelector }) {
		t.Errorf("kubernetes: %+v", k)
	}
	table, _ = run(ctx, bed, "default", "service", "kubernetes")
	if !strings.Contains(table, "registered by the API servers themselves: 0 registered, 3 kube-apiserver Pod(s)") || strings.Contains(table, "manage yourself") {
		t.Errorf("kubernetes table:\n%s", table)
	}
	if _, err := run(ctx, bed, ns, "service", "nosuch"); err == nil || !strings.Contains(err.Error(), `service "nosuch" not found`) {
		t.Errorf("missing service: %v", err)
	}
	if _, err := run(ctx, bed, ns, "service"); err == nil {
		t.Error("no name and no --all accepted")
	}
	if _, err := run(ctx, bed, ns, "service", "web", "--node-port-range", "x"); err == nil {
		t.Error("bad --node-port-range accepted")
	}
}

func TestServiceTypesOutput(t *testing.T) {
	var out bytes.Buffer
	o := &TypesOptions{Out: &out, format: "json"}
	if err := o.Run(); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Types []svcexplain.TypeInfo `json:"types"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil || len(doc.Types) != 5 {
		t.Fatalf("%v %s", err, out.String())
	}
	out.Reset()
	o.format = ""
	if err := o.Run(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"LoadBalancer builds on NodePort, which builds on ClusterIP", "ExternalName", "reach:", "cost:"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("missing %q", s)
		}
	}
	out.Reset()
	if err := PrintTradeOffs(&out, ""); err != nil || !strings.Contains(out.String(), "nftables") || !strings.Contains(out.String(), "10249/proxyMode") {
		t.Errorf("trade-offs: %v\n%s", err, out.String())
	}
}
