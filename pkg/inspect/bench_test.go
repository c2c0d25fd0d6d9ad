package inspect

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/hacluster/hacluster/pkg/testbed"
)

const (
	benchNodes = 1000
	benchPods  = 10000
)

// kubectlCalls fetch the same objects as `inspect components`, one kubectl
// process each, the way a person or a script would.
var kubectlCalls = [][]string{
	{"version", "-o", "json"},
	{"get", "nodes", "-o", "json"},
	{"get", "pods", "-n", "kube-system", "-l", "tier=control-plane", "-o", "json"},
	{"get", "leases", "-n", "kube-system", "-o", "json"},
	{"get", "configmaps", "-n", "kube-system", "kubeadm-config", "kube-proxy", "-o", "json"},
	{"get", "configmaps", "-n", "kube-public", "cluster-info", "-o", "json"},
	{"get", "endpointslices", "-n", "default", "-l", "kubernetes.io/service-name=kubernetes", "-o", "json"},
	{"get", "daemonsets", "-A", "-o", "json"},
	{"get", "deployments", "-n", "kube-system", "-o", "json"},
	{"get", "services", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o", "json"},
	{"get", "apiservices", "--ignore-not-found", "v1beta1.metrics.k8s.io", "-o", "json"},
	{"get", "--raw", "/readyz?verbose"},
	{"get", "--raw", "/livez?verbose"},
}

// BenchmarkInspectBigCluster compares `kubectl hacluster inspect components -o
// json` with the kubectl calls that fetch the same objects, on a test bed with
// 1,000 kwok nodes and 10,000 pods. It prints both wall times and request
// counts side by side (goal: inspect <= 1.5x kubectl).
func BenchmarkInspectBigCluster(b *testing.B) {
	bin := pluginBinary(b)
	bed := testbed.Start(b, testbed.Options{Components: true})
	ctx := context.Background()
	if _, err := bed.ApplyHAShape(ctx, testbed.Shape{}); err != nil {
		b.Fatal(err)
	}
	cfg := rest.CopyConfig(bed.Config)
	cfg.QPS, cfg.Burst = 2000, 4000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	nodes := scaleNodes(b, cs, benchNodes)
	nodeTime := time.Since(t0)
	t0 = time.Now()
	createPods(b, cs, bed, nodes, benchPods)
	podTime := time.Since(t0)
	waitRunning(b, cs)
	runTime := time.Since(t0)
	b.Logf("created %d nodes in %s and %d pods in %s (%.0f pods/s); kwok had them all Running after %s",
		len(nodes), nodeTime.Round(time.Millisecond), benchPods, podTime.Round(time.Millisecond),
		float64(benchPods)/podTime.Seconds(), runTime.Round(time.Millisecond))

	// Warm both: kubectl's discovery cache, the page cache for both binaries.
	cacheDir := b.TempDir()
	runKubectlCalls(b, bed, cacheDir, false)
	runInspect(b, bin, bed.Kubeconfig)

	var inspectDur, seqDur, parDur time.Duration
	var inspectReq, kubectlReq int64
	n := 0
	for b.Loop() {
		d, req := runInspect(b, bin, bed.Kubeconfig)
		inspectDur += d
		inspectReq = req
		d, req = runKubectlCalls(b, bed, cacheDir, false)
		seqDur += d
		kubectlReq = req
		d, _ = runKubectlCalls(b, bed, cacheDir, true)
		parDur += d
		n++
	}
	ms := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(n) }
	im, sm, pm := ms(inspectDur), ms(seqDur), ms(parDur)
	b.ReportMetric(im, "inspect-ms")
	b.ReportMetric(sm, "kubectl-seq-ms")
	b.ReportMetric(pm, "kubectl-par-ms")
	b.ReportMetric(im/pm, "ratio-vs-par")
	b.ReportMetric(float64(inspectReq), "inspect-requests")
	b.ReportMetric(float64(kubectlReq), "kubectl-requests")
	b.Logf("\n%-52s %10s %9s\n%-52s %8.0fms %9d\n%-52s %8.0fms %9d\n%-52s %8.0fms %9d\n"+
		"ratio %.2fx vs sequential, %.2fx vs parallel kubectl (goal <= 1.5x); mean of %d runs, %d nodes, %d pods",
		"", "wall", "requests",
		"kubectl hacluster inspect components -o json", im, inspectReq,
		fmt.Sprintf("%d kubectl calls, one after the other", len(kubectlCalls)), sm, kubectlReq,
		fmt.Sprintf("%d kubectl calls, all at once", len(kubectlCalls)), pm, kubectlReq,
		im/sm, im/pm, n, len(nodes), benchPods)
}

// pluginBinary is $HACLUSTER_BIN/kubectl-hacluster (make bench builds it) or a fresh build.
func pluginBinary(b *testing.B) string {
	if dir := os.Getenv("HACLUSTER_BIN"); dir != "" {
		return filepath.Join(dir, "kubectl-hacluster")
	}
	out := filepath.Join(b.TempDir(), "kubectl-hacluster")
	cmd := exec.Command("go", "build", "-o", out, "github.com/hacluster/hacluster/cmd/kubectl-hacluster")
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, o)
	}
	return out
}

func runInspect(b *testing.B, bin, kubeconfig string) (time.Duration, int64) {
	start := time.Now()
	out, err := exec.Command(bin, "inspect", "components", "-o", "json", "--kubeconfig", kubeconfig).Output()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("inspect: %v", err)
	}
	var r Report
	if err := json.Unmarshal(out, &r); err != nil {
		b.Fatalf("inspect -o json: %v", err)
	}
	if r.NodeSummary.Total < benchNodes {
		b.Fatalf("inspect saw %d nodes", r.NodeSummary.Total)
	}
	return d, r.Stats.APIRequests
}

// runKubectlCalls runs the calls one after the other (or all at once) and
// counts the HTTP requests kubectl logs at -v=6.
func runKubectlCalls(b *testing.B, bed *testbed.Bed, cacheDir string, concurrent bool) (time.Duration, int64) {
	var requests atomic.Int64
	one := func(args []string) {
		full := append([]string{"--kubeconfig", bed.Kubeconfig, "--cache-dir", cacheDir, "-v=6"}, args...)
		cmd := exec.Command(filepath.Join(bed.Bin, "kubectl"), full...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			b.Errorf("kubectl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
			return
		}
		sc := bufio.NewScanner(&stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			l := sc.Text()
			if strings.Contains(l, `"Response"`) || strings.Contains(l, " GET https://") {
				requests.Add(1)
			}
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, args := range kubectlCalls {
		if !concurrent {
			one(args)
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); one(args) }()
	}
	wg.Wait()
	d := time.Since(start)
	if b.Failed() {
		b.FailNow()
	}
	return d, requests.Load()
}

// scaleNodes clones the shape's worker-1 (so kwok manages the clones too)
// until there are n nodes.
func scaleNodes(b *testing.B, cs kubernetes.Interface, n int) []string {
	ctx := context.Background()
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var tmpl *corev1.Node
	var names []string
	for i := range list.Items {
		names = append(names, list.Items[i].Name)
		if _, cp := list.Items[i].Labels["node-role.kubernetes.io/control-plane"]; !cp && tmpl == nil {
			tmpl = &list.Items[i]
		}
	}
	if tmpl == nil {
		b.Fatal("the HA shape has no worker node to clone")
	}
	var mu sync.Mutex
	parallel(b, n-len(names), func(i int) error {
		nd := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%04d", i),
			Labels: copyMap(tmpl.Labels), Annotations: copyMap(tmpl.Annotations)}, Spec: corev1.NodeSpec{Taints: tmpl.Spec.Taints}}
		nd.Labels["kubernetes.io/hostname"] = nd.Name
		// Off the kube-proxy DaemonSet's node selector: createPods makes those pods.
		delete(nd.Labels, "kubernetes.io/os")
		delete(nd.Labels, "beta.kubernetes.io/os")
		nd.Status.NodeInfo = tmpl.Status.NodeInfo
		nd.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)}}
		if _, err := cs.CoreV1().Nodes().Create(ctx, nd, metav1.CreateOptions{}); err != nil {
			return err
		}
		mu.Lock()
		names = append(names, nd.Name)
		mu.Unlock()
		return nil
	})
	return names
}

// createPods creates n pods bound to the nodes (spec.nodeName: no scheduler):
// one kube-proxy-like pod per node in kube-system, the rest in a namespace.
func createPods(b *testing.B, cs kubernetes.Interface, bed *testbed.Bed, nodes []string, n int) {
	ctx := context.Background()
	ns := bed.Namespace(b)
	// Pods are refused until the controller-manager made the default ServiceAccount.
	deadline := time.Now().Add(time.Minute)
	for _, sans := range []string{ns, "kube-system"} {
		for {
			if _, err := cs.CoreV1().ServiceAccounts(sans).Get(ctx, "default", metav1.GetOptions{}); err == nil {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("no default ServiceAccount in %s", sans)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	parallel(b, n, func(i int) error {
		node := nodes[i%len(nodes)]
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("app-%05d", i), Labels: map[string]string{"app": "bench"}},
			Spec: corev1.PodSpec{NodeName: node, AutomountServiceAccountToken: new(bool),
				Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
				Containers:  []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}}}
		if i < len(nodes) {
			p.Namespace, p.Name = "kube-system", "kube-proxy-"+node
			p.Labels = map[string]string{"k8s-app": "kube-proxy"}
		}
		_, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
		return err
	})
}

// waitRunning waits until kwok has made every pod Running, so that the
// measurements do not compete with that burst of status updates.
func waitRunning(b *testing.B, cs kubernetes.Interface) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		l, err := cs.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{FieldSelector: "status.phase!=Running", Limit: 1})
		if err == nil && len(l.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("pods not Running after 5m (%v)", err)
		}
		time.Sleep(2 * time.Second)
	}
}

func parallel(b *testing.B, n int, f func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				mu.Lock()
				stop := firstErr != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
