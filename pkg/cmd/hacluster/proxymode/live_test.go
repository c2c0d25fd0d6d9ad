package proxymode

// Real kube-apiserver tests: the HA shape from pkg/testbed, with the real
// controller-manager (DaemonSet rollouts) and kwok serving kube-proxy's logs
// through the apiserver -> "kubelet" path.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/hacluster/hacluster/pkg/cmd/hacluster/factory"
	core "github.com/hacluster/hacluster/pkg/proxymode"
	"github.com/hacluster/hacluster/pkg/testbed"
)

// startupLog is what kube-proxy of a given Kubernetes version prints when
// it starts in mode m (cmd/kube-proxy/app/server_linux.go).
func startupLog(version string, m core.Mode) []string {
	pre := []string{`I1124 10:00:00.000001       1 server_linux.go:53] "Using iptables proxy"`,
		`I1124 10:00:00.000002       1 server.go:256] "kube-proxy running in single-stack mode" ipFamily="IPv4"`}
	switch {
	case strings.HasPrefix(version, "json"):
		return []string{fmt.Sprintf(`{"ts":1732440000000.1,"caller":"app/server_linux.go:231","msg":"Using %s Proxier","v":0}`, m)}
	case m == core.IPVS && (strings.HasPrefix(version, "v1.35") || strings.HasPrefix(version, "v1.36")):
		return append(pre, `I1124 10:00:00.1       1 server_linux.go:194] "Using ipvs Proxier"`,
			`E1124 10:00:00.1       1 server_linux.go:196] "The ipvs proxier is now deprecated and may be removed in a future release. Please use 'nftables' instead."`)
	case m == core.IPVS && strings.HasPrefix(version, "v1.37"):
		return append(pre, `I1124 10:00:00.1       1 server_linux.go:191] "Using ipvs Proxier"`,
			`E1124 10:00:00.1       1 server_linux.go:193] "The ipvs proxier has been deprecated and will be disabled by default in Kubernetes 1.40 and removed in Kubernetes 1.43. Migrate to the 'nftables' proxier instead."`)
	}
	return append(pre, fmt.Sprintf(`I1124 10:00:00.1       1 server_linux.go:144] "Using %s Proxier"`, m),
		`I1124 10:00:00.2       1 proxier.go:270] "Setting route_localnet=1 to allow node-ports on localhost"`)
}

func run(ctx context.Context, bed *testbed.Bed, args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	f := factory.ForKubeconfig(bed.Kubeconfig, "", genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errb})
	cmd := NewCmd(f)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	err := cmd.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

func proxyPods(t *testing.T, ctx context.Context, bed *testbed.Bed) map[string]corev1.Pod {
	t.Helper()
	pods, err := bed.Client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: core.PodSelector})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]corev1.Pod{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			m[p.Spec.NodeName] = p
		}
	}
	return m
}

// kubeProxyStarter plays kube-proxy starting on kwok nodes: every kube-proxy
// Pod that appears after it starts logs the mode the ConfigMap held at that
// moment, the way a real kube-proxy reads its config once at start.
type kubeProxyStarter struct {
	stop   context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	logged map[string]core.Mode
}

func startKubeProxies(t *testing.T, ctx context.Context, bed *testbed.Bed, skip map[string]bool) *kubeProxyStarter {
	ctx, cancel := context.WithCancel(ctx)
	s := &kubeProxyStarter{stop: cancel, done: make(chan struct{}), logged: map[string]core.Mode{}}
	go func() {
		defer close(s.done)
		for ctx.Err() == nil {
			pods, err := bed.Client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: core.PodSelector})
			if err == nil {
				for _, p := range pods.Items {
					s.mu.Lock()
					_, done := s.logged[p.Name]
					s.mu.Unlock()
					if done || skip[p.Name] || p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
						continue
					}
					cm, err := bed.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, core.ConfigMapName, metav1.GetOptions{})
					if err != nil {
						continue
					}
					cfg, _ := core.ParseConfig(cm.Data[core.ConfigKey])
					m := core.Effective(cfg.Mode)
					if err := bed.SetPodLogs(ctx, "kube-system", p.Name, "kube-proxy", startupLog(bed.Version, m)); err != nil {
						if ctx.Err() == nil {
							t.Logf("set logs of %s: %v", p.Name, err)
						}
						continue
					}
					s.mu.Lock()
					s.logged[p.Name] = m
					s.mu.Unlock()
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *kubeProxyStarter) Stop() { s.stop(); <-s.done }

// hostIP is an address of this machine that the apiserver's node proxy accepts
// (global unicast: it refuses loopback).
func hostIP(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
			return ipn.IP.String()
		}
	}
	return ""
}

func TestProxyModeOnHAShape(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bed := testbed.Start(t, testbed.Options{Components: true})
	if _, err := bed.ApplyHAShape(ctx, testbed.Shape{KubeProxyMode: "ipvs"}); err != nil {
		t.Fatal(err)
	}
	pods := proxyPods(t, ctx, bed)
	if len(pods) != 5 {
		t.Fatalf("want 5 kube-proxy pods, got %d", len(pods))
	}
	// The log wording of each supported version, one per node; worker-2
	// still runs iptables although the ConfigMap says ipvs.
	wording := map[string]string{"cp-1": "v1.33.13", "cp-2": "v1.35.1", "cp-3": "json", "worker-1": "v1.37.2", "worker-2": "v1.34.4"}
	original := map[string]bool{}
	for node, p := range pods {
		m := core.IPVS
		if node == "worker-2" {
			m = core.IPTables
		}
		if err := bed.SetPodLogs(ctx, "kube-system", p.Name, "kube-proxy", startupLog(wording[node], m)); err != nil {
			t.Fatal(err)
		}
		original[p.Name] = true
	}

	t.Run("mismatch", func(t *testing.T) {
		start := time.Now()
		out, _, err := run(ctx, bed, "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("proxymode -o json on 5 nodes: %s", time.Since(start).Round(time.Millisecond))
		var rep core.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if !rep.ConfigMapFound || rep.Configured != core.IPVS || rep.ConfiguredValue != "ipvs" || !rep.NFTablesSupported || rep.ServerVersion != bed.Version {
			t.Errorf("report: %+v", rep)
		}
		if rep.Mismatches != 1 || len(rep.Nodes) != 5 {
			t.Fatalf("want 1 mismatch on 5 nodes: %s", out)
		}
		for _, n := range rep.Nodes {
			want := core.IPVS
			if n.Node == "worker-2" {
				want = core.IPTables
			}
			if n.FromLogs != want || n.Effective != want || n.Mismatch != (n.Node == "worker-2") || n.Pod != pods[n.Node].Name {
				t.Errorf("node %s (%s wording): %+v", n.Node, wording[n.Node], n)
			}
			if n.FromEndpoint != "" || !strings.HasPrefix(n.EndpointError, "not tried") {
				t.Errorf("node %s: endpoint must not be tried with metricsBindAddress \"\": %+v", n.Node, n)
			}
		}
		table, _, err := run(ctx, bed)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{`mode "ipvs"`, "worker-2", "MISMATCH: restart needed", "proxymode set ipvs"} {
			if !strings.Contains(table, s) {
				t.Errorf("table lacks %q:\n%s", s, table)
			}
		}
		t.Logf("proxymode on the HA shape with one stale node:\n%s", table)
	})

	t.Run("endpoint-through-node-proxy", func(t *testing.T) {
		ip := hostIP(t)
		if ip == "" {
			t.Fatal("this machine has no global unicast IPv4 address for the node-proxy test")
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/proxyMode" {
				http.NotFound(w, r)
				return
			}
			fmt.Fprint(w, "nftables")
		})}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		// A node whose address the apiserver may proxy to; no kube-proxy Pod.
		edge := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "edge-1"}}
		if _, err := bed.Client.CoreV1().Nodes().Create(ctx, edge, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = bed.Client.CoreV1().Nodes().Delete(context.Background(), "edge-1", metav1.DeleteOptions{}) }()
		edge.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}
		if _, err := bed.Client.CoreV1().Nodes().UpdateStatus(ctx, edge, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		get := core.NodeProxyEndpoint(bed.Client, 2*time.Second)
		got, err := get(ctx, "edge-1", port)
		if err != nil || got != "nftables" {
			t.Fatalf("/api/v1/nodes/edge-1:%d/proxy/proxyMode = %q, %v", port, got, err)
		}
		// The shape's nodes have loopback addresses: the apiserver refuses to
		// proxy there, and the report says so per node instead of failing.
		_, err = get(ctx, "cp-1", 10249)
		if err == nil || !strings.Contains(err.Error(), "address not allowed") {
			t.Errorf("loopback node: %v", err)
		}
	})

	t.Run("probe", func(t *testing.T) {
		// kwok runs the probe Pods; their output is what the probe would print.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := map[string]bool{}
			for {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				ps, err := bed.Client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: core.ProbeAppLabel + "=" + core.ProbeAppValue})
				if err != nil {
					continue
				}
				for _, p := range ps.Items {
					if seen[p.Name] || p.Status.Phase != corev1.PodRunning {
						continue
					}
					mode := "ipvs"
					if p.Spec.NodeName == "worker-2" {
						mode = "iptables"
					}
					if !p.Spec.HostNetwork || len(p.Spec.Tolerations) == 0 || p.Spec.Containers[0].Image != "probe.example/busybox:1.36" {
						t.Errorf("probe pod spec: %+v", p.Spec)
					}
					if err := bed.SetPodLogs(ctx, "kube-system", p.Name, "probe", []string{mode}); err == nil {
						seen[p.Name] = true
					}
				}
			}
		}()
		out, stderr, err := run(ctx, bed, "--probe", "--image", "probe.example/busybox:1.36", "-o", "json")
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		var rep core.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		for _, n := range rep.Nodes {
			want := core.IPVS
			if n.Node == "worker-2" {
				want = core.IPTables
			}
			if n.FromProbe != want || n.ProbeError != "" {
				t.Errorf("probe on %s: %+v", n.Node, n)
			}
		}
		if !strings.Contains(stderr, "probing 5 node(s)") {
			t.Errorf("no progress on stderr: %q", stderr)
		}
		left, _ := bed.Client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: core.ProbeAppLabel + "=" + core.ProbeAppValue})
		if len(left.Items) != 0 {
			t.Errorf("%d probe pods left behind", len(left.Items))
		}

		// Interrupted (Ctrl-C, modelled by a cancelled context): still cleaned up.
		cctx, ccancel := context.WithCancel(ctx)
		go func() {
			for cctx.Err() == nil {
				ps, _ := bed.Client.CoreV1().Pods("kube-system").List(cctx, metav1.ListOptions{LabelSelector: core.ProbeAppLabel + "=" + core.ProbeAppValue})
				if ps != nil && len(ps.Items) == 5 {
					ccancel()
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		_, err = core.Probe(cctx, bed.Client, []string{"cp-1", "cp-2", "cp-3", "worker-1", "worker-2"}, core.ProbeOptions{Image: "probe.example/busybox:1.36", Timeout: time.Minute})
		ccancel()
		if err == nil {
			t.Fatal("cancelled probe returned no error")
		}
		left, _ = bed.Client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: core.ProbeAppLabel + "=" + core.ProbeAppValue})
		if len(left.Items) != 0 {
			t.Errorf("cancelled probe left %d pods", len(left.Items))
		}
		if _, _, err := run(ctx, bed, "--probe"); err == nil || !strings.Contains(err.Error(), "--probe needs --image") {
			t.Errorf("--probe without --image: %v", err)
		}
	})

	t.Run("set", func(t *testing.T) {
		cmBefore, _ := bed.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, core.ConfigMapName, metav1.GetOptions{})
		out, _, err := run(ctx, bed, "set", "iptables", "--dry-run", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var plan core.Plan
		if err := json.Unmarshal([]byte(out), &plan); err != nil {
			t.Fatal(err)
		}
		if !plan.DryRun || plan.Applied || plan.From != core.IPVS || plan.To != core.IPTables ||
			!strings.Contains(plan.Diff, "-mode: \"ipvs\"\n+mode: iptables\n") {
			t.Errorf("dry run plan: %s", out)
		}
		cmAfter, _ := bed.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, core.ConfigMapName, metav1.GetOptions{})
		if cmAfter.ResourceVersion != cmBefore.ResourceVersion {
			t.Error("--dry-run changed the ConfigMap")
		}
		table, _, err := run(ctx, bed, "set", "ipvs", "--dry-run")
		if err != nil || !strings.Contains(table, "strictARP is false") || !strings.Contains(table, "dry run: nothing changed") {
			t.Errorf("dry run table (%v):\n%s", err, table)
		}

		// Apply nftables: kube-proxy Pods restart one by one and report it.
		starter := startKubeProxies(t, ctx, bed, original)
		defer starter.Stop()
		start := time.Now()
		out, stderr, err := run(ctx, bed, "set", "nftables", "--timeout", "3m", "-o", "json")
		if err != nil {
			t.Fatalf("%v\nstderr:\n%s", err, stderr)
		}
		t.Logf("set nftables on 5 nodes (rolling restart and wait): %s", time.Since(start).Round(time.Millisecond))
		plan = core.Plan{}
		if err := json.Unmarshal([]byte(out), &plan); err != nil {
			t.Fatal(err)
		}
		if !plan.Applied || plan.To != core.NFTables || len(plan.Pods) != 5 || plan.RestartedAt == "" {
			t.Errorf("plan after apply: %s", out)
		}
		for _, p := range plan.Pods {
			if original[p.Pod] || p.Mode != core.NFTables {
				t.Errorf("pod after restart: %+v", p)
			}
		}
		if !strings.Contains(stderr, "5/5 kube-proxy Pods restarted and report nftables") {
			t.Errorf("progress:\n%s", stderr)
		}
		cm, _ := bed.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, core.ConfigMapName, metav1.GetOptions{})
		if cfg, _ := core.ParseConfig(cm.Data[core.ConfigKey]); cfg.Mode != "nftables" || cm.Annotations[core.PreviousModeAnnotation] != "ipvs" {
			t.Errorf("ConfigMap after set: mode %q, previous %q", cfg.Mode, cm.Annotations[core.PreviousModeAnnotation])
		}
		ds, _ := bed.Client.AppsV1().DaemonSets("kube-system").Get(ctx, core.DaemonSetName, metav1.GetOptions{})
		if ds.Spec.Template.Annotations[core.RestartedAtAnnotation] != plan.RestartedAt {
			t.Errorf("DaemonSet template annotations: %v", ds.Spec.Template.Annotations)
		}
		rep, err := core.Inspect(ctx, bed.Client, core.InspectOptions{})
		if err != nil || rep.Mismatches != 0 {
			t.Errorf("after set: %v %+v", err, rep)
		}

		// Roll back to ipvs.
		start = time.Now()
		out, stderr, err = run(ctx, bed, "set", "--rollback", "--timeout", "3m")
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		t.Logf("rollback: %s", time.Since(start).Round(time.Millisecond))
		if !strings.Contains(out, "-mode: nftables\n+mode: ipvs") || !strings.Contains(out, "kube-proxy runs ipvs on all 5 node(s)") {
			t.Errorf("rollback output:\n%s", out)
		}
		cm, _ = bed.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, core.ConfigMapName, metav1.GetOptions{})
		if cm.Annotations[core.PreviousModeAnnotation] != "nftables" {
			t.Errorf("previous after rollback: %q", cm.Annotations[core.PreviousModeAnnotation])
		}

		// Pods that never come back with the new mode: a clear timeout.
		starter.Stop()
		_, _, err = run(ctx, bed, "set", "iptables", "--timeout", "4s", "-q")
		if err == nil || !strings.Contains(err.Error(), "timed out after 4s") || !strings.Contains(err.Error(), "--rollback") {
			t.Errorf("timeout error: %v", err)
		}
		// Bad input.
		for _, args := range [][]string{{"set"}, {"set", "userspace"}, {"set", "ipvs", "--rollback"}} {
			if _, _, err := run(ctx, bed, args...); err == nil {
				t.Errorf("%v accepted", args)
			}
		}
	})
}

// An image the nodes cannot pull: the kubelet (played here, on a bed without
// kwok) reports ErrImagePull / ImagePullBackOff; --probe fails fast with the
// reason and exits non-zero, after printing what it knows. (A real image pull
// failure is tested on the node bed once bootstrap exists.)
func TestProbeUnpullableImage(t *testing.T) {
	bed := testbed.Start(t, testbed.Options{})
	ctx := context.Background()
	if _, err := bed.ApplyHAShape(ctx, testbed.Shape{}); err != nil {
		t.Fatal(err)
	}
	// No controller-manager on this bed: the ServiceAccount it would create.
	if _, err := bed.Client.CoreV1().ServiceAccounts("kube-system").Create(ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const image = "registry.invalid/busybox:1.36"
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			ps, err := bed.Client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: core.ProbeAppLabel + "=" + core.ProbeAppValue})
			if err != nil {
				continue
			}
			for _, p := range ps.Items {
				if len(p.Status.ContainerStatuses) > 0 {
					continue
				}
				reason := "ErrImagePull"
				if p.Spec.NodeName == "worker-2" {
					reason = "ImagePullBackOff"
				}
				p.Status.Phase = corev1.PodPending
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "probe", Image: image, State: corev1.ContainerState{
					Waiting: &corev1.ContainerStateWaiting{Reason: reason,
						Message: `failed to pull and unpack image "` + image + `": dial tcp: lookup registry.invalid: no such host`}}}}
				_, _ = bed.Client.CoreV1().Pods("kube-system").UpdateStatus(ctx, &p, metav1.UpdateOptions{})
			}
		}
	}()
	start := time.Now()
	out, stderr, err := run(ctx, bed, "--probe", "--image", image, "--probe-timeout", "2m", "--no-endpoint")
	took := time.Since(start)
	close(stop)
	wg.Wait()
	if err == nil {
		t.Fatalf("unpullable image: no error; stdout:\n%s\nstderr:\n%s", out, stderr)
	}
	if took > 30*time.Second {
		t.Errorf("took %s: waited for the probe timeout", took)
	}
	for _, want := range []string{"no answer from 5 of 5 node(s)", "image " + image + " cannot be pulled: ErrImagePull", "ImagePullBackOff", "no such host", "(cp-1, cp-2, cp-3, worker-1)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if !strings.Contains(out, "cp-1: probe: image "+image+" cannot be pulled: ErrImagePull") {
		t.Errorf("report lacks the per-node reason:\n%s", out)
	}
	if strings.Contains(stderr, "✓") || !strings.Contains(stderr, "✗") {
		t.Errorf("progress says success: %q", stderr)
	}
	left, _ := bed.Client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: core.ProbeAppLabel + "=" + core.ProbeAppValue})
	if len(left.Items) != 0 {
		t.Errorf("%d probe pods left behind", len(left.Items))
	}
	t.Logf("failed after %s: %v", took.Round(time.Millisecond), err)
}
