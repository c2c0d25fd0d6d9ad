package proxymode

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
)

// Start-up logs as kube-proxy writes them (klog text and JSON format), per version.
var versionLogs = []struct {
	version string
	log     string
	want    Mode
	dflt    bool
}{
	{"v1.33.13", `I1124 10:00:00.000000       1 server_linux.go:66] "Using iptables proxy"` + "\n" +
		`I1124 10:00:00.100000       1 server.go:256] "kube-proxy running in single-stack mode" ipFamily="IPv4"` + "\n" +
		`I1124 10:00:00.100001       1 server_linux.go:147] "Using iptables Proxier"`, IPTables, false},
	{"v1.34.4", `I1124 10:00:00.1       1 server_linux.go:190] "Using ipvs Proxier"`, IPVS, false},
	{"v1.35.1", `I0525 03:22:43.627302       1 server_linux.go:194] "Using ipvs Proxier"` + "\n" +
		`E0525 03:22:43.627358       1 server_linux.go:196] "The ipvs proxier is now deprecated and may be removed in a future release. Please use 'nftables' instead."`, IPVS, false},
	{"v1.36.0", `{"ts":1732440000000.1,"caller":"app/server_linux.go:231","msg":"Using nftables Proxier","v":0}`, NFTables, false},
	{"v1.37.2", `E1124 10:00:00.0       1 server_linux.go:141] "No kube-proxy mode specified: defaulting to 'iptables'. Note that in Kubernetes 1.40 the default mode will switch to 'nftables'."` + "\n" +
		`I1124 10:00:00.1       1 server_linux.go:144] "Using iptables Proxier"`, IPTables, true},
	{"v1.22 (old)", "I0101 server_others.go:212] Using iptables Proxier.", IPTables, false},
	{"v1.10 (old)", `W0101 server.go:194] Unknown proxy mode "", assuming iptables proxy`, IPTables, true},
	{"windows", `I0101 server_windows.go:90] "Using kernelspace Proxier"`, KernelSpace, false},
	{"none", "I0101 something else entirely", "", false},
}

func TestModeFromLogsPerVersion(t *testing.T) {
	for _, c := range versionLogs {
		ev := ModeFromLogs(c.log)
		if ev.Mode != c.want || ev.Defaulted != c.dflt {
			t.Errorf("%s: got %+v, want %s (defaulted %v)", c.version, ev, c.want, c.dflt)
		}
		if c.want != "" && !strings.Contains(ev.Line, "Using") && !strings.Contains(ev.Line, "assuming") {
			t.Errorf("%s: evidence line %q", c.version, ev.Line)
		}
	}
}

const kubeadmConf = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
clusterCIDR: 10.244.0.0/16
ipvs:
  scheduler: ""
  strictARP: false
kind: KubeProxyConfiguration
metricsBindAddress: ""
mode: ""
nftables:
  masqueradeAll: false
`

func TestSetModeAndDiff(t *testing.T) {
	out, err := SetMode(kubeadmConf, IPVS)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, "\n") != strings.Count(kubeadmConf, "\n") || !strings.Contains(out, "\nmode: ipvs\n") {
		t.Errorf("SetMode changed more than the mode line:\n%s", out)
	}
	d := Diff("kube-proxy/config.conf", kubeadmConf, out)
	want := "--- a/kube-proxy/config.conf\n+++ b/kube-proxy/config.conf\n@@\n kind: KubeProxyConfiguration\n metricsBindAddress: \"\"\n-mode: \"\"\n+mode: ipvs\n nftables:\n   masqueradeAll: false\n"
	if d != want {
		t.Errorf("diff:\n%s\nwant:\n%s", d, want)
	}
	if Diff("x", out, out) != "" {
		t.Error("diff of equal texts")
	}
	// No mode line: one is added.
	noMode := strings.Replace(kubeadmConf, "mode: \"\"\n", "", 1)
	added, err := SetMode(noMode, NFTables)
	if err != nil || !strings.HasSuffix(added, "mode: nftables\n") {
		t.Errorf("add: %q %v", added, err)
	}
	// Back to unset.
	back, err := SetMode(out, "")
	if err != nil || back != kubeadmConf {
		t.Errorf("unset: %q %v", back, err)
	}
	if _, err := SetMode("mode: a\nmode: b\n", IPVS); err == nil {
		t.Error("two mode lines accepted")
	}
}

func TestParseMetricsBindAddress(t *testing.T) {
	for in, want := range map[string]MetricsAccess{
		"":                  {Address: "127.0.0.1:10249", Port: 10249},
		"0.0.0.0:10249":     {Address: "0.0.0.0:10249", Port: 10249, Reachable: true},
		"0.0.0.0":           {Address: "0.0.0.0", Port: 10249, Reachable: true},
		"[::]:20249":        {Address: "[::]:20249", Port: 20249, Reachable: true},
		"127.0.0.1:10249":   {Address: "127.0.0.1:10249", Port: 10249},
		"192.168.1.11:9000": {Address: "192.168.1.11:9000", Port: 9000, OnlyIP: "192.168.1.11"},
	} {
		got := ParseMetricsBindAddress(in)
		got.Reason = ""
		if got != want {
			t.Errorf("%q: got %+v want %+v", in, got, want)
		}
	}
}

func proxyPod(name, node string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name, Labels: map[string]string{"k8s-app": "kube-proxy"}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "kube-proxy"}}}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
}

func cluster(conf string, extra ...runtime.Object) *fake.Clientset {
	objs := []runtime.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: ConfigMapName}, Data: map[string]string{ConfigKey: conf}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: DaemonSetName}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cp-1"}, Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KernelVersion: "6.1.0-13-amd64"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-1"}, Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KernelVersion: "5.10.0-26-amd64"}}},
		proxyPod("kube-proxy-a", "cp-1"), proxyPod("kube-proxy-b", "worker-1"),
	}
	c := fake.NewClientset(append(objs, extra...)...)
	c.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{GitVersion: "v1.30.4", Major: "1", Minor: "30"}
	return c
}

func TestInspectMismatchFromEndpoint(t *testing.T) {
	conf := strings.Replace(strings.Replace(kubeadmConf, `mode: ""`, "mode: ipvs", 1), `metricsBindAddress: ""`, "metricsBindAddress: 0.0.0.0:10249", 1)
	c := cluster(conf)
	asked := map[string]int{}
	var mu sync.Mutex
	ep := func(_ context.Context, node string, port int) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		asked[node] = port
		if node == "cp-1" {
			return "ipvs", nil
		}
		return "iptables", nil
	}
	r, err := Inspect(context.Background(), c, InspectOptions{Endpoint: ep})
	if err != nil {
		t.Fatal(err)
	}
	if r.Configured != IPVS || r.Defaulted || !r.Metrics.Reachable || r.NFTablesSupported || r.ServerVersion != "v1.30.4" {
		t.Errorf("report: %+v", r)
	}
	if asked["cp-1"] != 10249 || asked["worker-1"] != 10249 {
		t.Errorf("endpoint asked: %v", asked)
	}
	if len(r.Nodes) != 2 || r.Mismatches != 1 || r.Nodes[0].Mismatch || !r.Nodes[1].Mismatch || r.Nodes[1].Effective != IPTables {
		t.Errorf("nodes: %+v", r.Nodes)
	}
	if !strings.Contains(strings.Join(r.Nodes[1].Notes, " "), "restart needed") {
		t.Errorf("notes: %v", r.Nodes[1].Notes)
	}
	// A probe result wins over the endpoint.
	MergeProbe(r, []ProbeResult{{Node: "worker-1", Mode: IPVS}})
	if r.Mismatches != 0 || r.Nodes[1].Effective != IPVS || strings.Contains(strings.Join(r.Nodes[1].Notes, " "), "restart needed") {
		t.Errorf("after probe: %+v", r.Nodes[1])
	}
}

func TestInspectEndpointNotTriedAndReplacement(t *testing.T) {
	c := cluster(kubeadmConf, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: "cilium-config"}, Data: map[string]string{"kube-proxy-replacement": "true"}})
	called := false
	r, err := Inspect(context.Background(), c, InspectOptions{Endpoint: func(context.Context, string, int) (string, error) {
		called = true
		return "", errors.New("unreachable")
	}})
	if err != nil {
		t.Fatal(err)
	}
	if called {
		t.Error("endpoint queried although metricsBindAddress is loopback")
	}
	if !r.Defaulted || r.Configured != IPTables || !strings.HasPrefix(r.Replacement, "cilium") {
		t.Errorf("report: %+v", r)
	}
	if !strings.HasPrefix(r.Nodes[0].EndpointError, "not tried") {
		t.Errorf("endpoint error: %q", r.Nodes[0].EndpointError)
	}
}

func TestPlanSetChecks(t *testing.T) {
	c := cluster(kubeadmConf)
	p, err := PlanSet(context.Background(), c, NFTables, false)
	if err != nil {
		t.Fatal(err)
	}
	bl := strings.Join(p.Blocked(), "|")
	if !strings.Contains(bl, "Linux 5.13+; nodes worker-1 run 5.10.0-26-amd64") {
		t.Errorf("kernel check: %q", bl)
	}
	if !p.Changed || !strings.Contains(p.Diff, "+mode: nftables") {
		t.Errorf("diff: %s", p.Diff)
	}
	if err := Apply(context.Background(), c, p, ApplyOptions{}); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("apply with failed checks: %v", err)
	}
	c.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{GitVersion: "v1.29.9"}
	p, _ = PlanSet(context.Background(), c, NFTables, false)
	if !strings.Contains(strings.Join(p.Blocked(), "|"), "needs Kubernetes 1.31 or newer; this cluster runs v1.29.9") {
		t.Errorf("version check: %v", p.Blocked())
	}
	p, _ = PlanSet(context.Background(), c, IPVS, false)
	var names []string
	for _, ch := range p.Checks {
		names = append(names, ch.Name+"="+ch.Status)
	}
	if got := strings.Join(names, ","); got != "daemonset=ok,modules=warning,strictARP=warning" {
		t.Errorf("ipvs checks: %s", got)
	}
	if _, err := PlanSet(context.Background(), c, "", true); err == nil || !strings.Contains(err.Error(), "nothing to roll back") {
		t.Errorf("rollback without record: %v", err)
	}
	ds, _ := c.AppsV1().DaemonSets(Namespace).Get(context.Background(), DaemonSetName, metav1.GetOptions{})
	ds.Spec.UpdateStrategy.Type = appsv1.OnDeleteDaemonSetStrategyType
	if _, err := c.AppsV1().DaemonSets(Namespace).Update(context.Background(), ds, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	p, _ = PlanSet(context.Background(), c, IPTables, false)
	if !strings.Contains(strings.Join(p.Blocked(), "|"), "OnDelete") {
		t.Errorf("OnDelete not refused: %v", p.Checks)
	}
}

// BenchmarkInspect100Nodes reports the API requests of `proxymode` on 100
// nodes: a fixed handful plus one log read per kube-proxy Pod.
func BenchmarkInspect100Nodes(b *testing.B) {
	objs := []runtime.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: ConfigMapName}, Data: map[string]string{ConfigKey: kubeadmConf}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: DaemonSetName}},
	}
	for i := range 100 {
		n := fmt.Sprintf("node-%03d", i)
		objs = append(objs, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}, proxyPod("kube-proxy-"+n, n))
	}
	c := fake.NewClientset(objs...)
	b.ResetTimer()
	for b.Loop() {
		c.ClearActions()
		r, err := Inspect(context.Background(), c, InspectOptions{})
		if err != nil || len(r.Nodes) != 100 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(c.Actions())), "requests/op")
}
