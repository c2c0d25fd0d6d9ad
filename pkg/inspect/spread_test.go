package inspect

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func findingOf(r *Report, check, subject string) *Finding {
	for i := range r.Findings {
		if r.Findings[i].Check == check && r.Findings[i].Subject == subject {
			return &r.Findings[i]
		}
	}
	return nil
}

// CoreDNS with both replicas on one node (kubeadm's first control plane) is a
// warning with the fix, not Healthy.
func TestCoreDNSOnOneNode(t *testing.T) {
	r := analyzeFake(t, fakeShape{CoreDNSNodes: []string{"cp-1", "cp-1"}}, AnalyzeOptions{})
	f := findingOf(r, "addon.single-node", "kube-system/coredns")
	if f == nil || f.Severity != Warning || r.Verdict != Degraded {
		t.Fatalf("finding %+v, verdict %s; findings %+v", f, r.Verdict, nonOK(r))
	}
	for _, want := range []string{"all 2 ready replicas of CoreDNS", "on node cp-1", "kubectl -n kube-system rollout restart deploy/coredns"} {
		if !strings.Contains(f.Message, want) {
			t.Errorf("message %q lacks %q", f.Message, want)
		}
	}
	if len(r.Network.CriticalDeployments) != 1 || !slices.Equal(r.Network.CriticalDeployments[0].Nodes, []string{"cp-1"}) {
		t.Errorf("criticalDeployments %+v", r.Network.CriticalDeployments)
	}
	var buf bytes.Buffer
	if err := Render(&buf, r, RenderOptions{Now: fakeNow}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "CoreDNS: v1.12.0 2/2 ready, on cp-1 only") || !strings.Contains(buf.String(), "addon.single-node") {
		t.Errorf("table:\n%s", buf.String())
	}

	// Spread: ok. A not-ready replica elsewhere does not count as spread.
	r = analyzeFake(t, fakeShape{}, AnalyzeOptions{})
	if f := findingOf(r, "addon.single-node", "kube-system/coredns"); f == nil || f.Severity != OK || r.Verdict != Healthy {
		t.Errorf("spread: %+v, verdict %s", f, r.Verdict)
	}
	cs, src := fakeCluster(fakeShape{CoreDNSNodes: []string{"cp-1", "cp-1"}})
	if _, err := cs.CoreV1().Pods("kube-system").Create(context.Background(),
		addonPod("coredns-5d78c9869d-x", map[string]string{"k8s-app": "kube-dns"}, "worker-1", false), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s := Collect(context.Background(), src)
	s.Now = fakeNow
	if f := findingOf(Analyze(s, AnalyzeOptions{}), "addon.single-node", "kube-system/coredns"); f == nil || f.Severity != Warning {
		t.Errorf("not-ready replica on worker-1 counted as spread: %+v", f)
	}
}

// Every node but one cordoned or NotReady: the fix waits for other nodes.
func TestCoreDNSOnOneNodeNoOtherNode(t *testing.T) {
	_, src := fakeCluster(fakeShape{CoreDNSNodes: []string{"cp-1", "cp-1"}})
	s := Collect(context.Background(), src)
	s.Now = fakeNow
	for i := range s.Nodes {
		if s.Nodes[i].Name != "cp-1" {
			s.Nodes[i].Spec.Unschedulable = true
		}
	}
	f := findingOf(Analyze(s, AnalyzeOptions{}), "addon.single-node", "kube-system/coredns")
	if f == nil || !strings.Contains(f.Message, "once other nodes are Ready") {
		t.Errorf("finding %+v", f)
	}
}

// metrics-server and a CNI controller are checked like CoreDNS; other
// Deployments and single-replica ones are not.
func TestCriticalDeploymentsSpread(t *testing.T) {
	cs, src := fakeCluster(fakeShape{})
	ctx := context.Background()
	dep := func(name, image string, replicas int32, labels map[string]string) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: name, Labels: labels},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas), Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Image: image}}}}},
			Status: appsv1.DeploymentStatus{ReadyReplicas: replicas}}
	}
	for _, d := range []struct {
		dep   *appsv1.Deployment
		nodes []string
	}{
		{dep("calico-kube-controllers", "docker.io/calico/kube-controllers:v3.33.1", 2, map[string]string{"k8s-app": "calico-kube-controllers"}), []string{"cp-2", "cp-2"}},
		{dep("metrics-server", "registry.k8s.io/metrics-server/metrics-server:v0.8.1", 2, map[string]string{"k8s-app": "metrics-server"}), []string{"worker-1", "worker-2"}},
		{dep("my-app", "example/app:1", 2, map[string]string{"app": "mine"}), []string{"worker-1", "worker-1"}},
		{dep("cilium-operator", "quay.io/cilium/operator-generic:v1.18", 1, map[string]string{"name": "cilium-operator"}), []string{"cp-1"}},
	} {
		if _, err := cs.AppsV1().Deployments("kube-system").Create(ctx, d.dep, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for i, n := range d.nodes {
			if _, err := cs.CoreV1().Pods("kube-system").Create(ctx, addonPod(d.dep.Name+"-"+string(rune('a'+i)), d.dep.Spec.Selector.MatchLabels, n, true), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	cs.ClearActions()
	s := Collect(ctx, src)
	s.Now = fakeNow
	podLists := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == "list" && a.GetResource().Resource == "pods" {
			podLists++
		}
	}
	if podLists != 4 { // control-plane Pods + coredns, calico, metrics-server
		t.Errorf("%d pod lists, want 4", podLists)
	}
	r := Analyze(s, AnalyzeOptions{})
	if f := findingOf(r, "addon.single-node", "kube-system/calico-kube-controllers"); f == nil || f.Severity != Warning ||
		!strings.Contains(f.Message, "Calico controller") || !strings.Contains(f.Message, "rollout restart deploy/calico-kube-controllers") {
		t.Errorf("calico: %+v", f)
	}
	if f := findingOf(r, "addon.single-node", "kube-system/metrics-server"); f == nil || f.Severity != OK {
		t.Errorf("metrics-server: %+v", f)
	}
	for _, name := range []string{"my-app", "cilium-operator"} {
		if f := findingOf(r, "addon.single-node", "kube-system/"+name); f != nil {
			t.Errorf("%s judged: %+v", name, f)
		}
	}
	var names []string
	for _, sp := range r.Network.CriticalDeployments {
		names = append(names, sp.Name)
	}
	if !slices.Equal(names, []string{"calico-kube-controllers", "coredns", "metrics-server"}) {
		t.Errorf("criticalDeployments %v", names)
	}
}

// Every check id the code can emit is in the README findings table.
func TestFindingChecksDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, check := range []string{"addon.single-node", "etcd.quorum", "etcd.members", "cert.expiry", "cert.san",
		"loadbalancer.vip", "loadbalancer.keepalived", "loadbalancer.haproxy", "loadbalancer.backends", "loadbalancer.unreachable"} {
		if !bytes.Contains(readme, []byte("`"+check+"`")) {
			t.Errorf("README findings table lacks `%s`", check)
		}
	}
}
