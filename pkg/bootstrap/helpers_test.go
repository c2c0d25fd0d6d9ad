package bootstrap_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hacluster/hacluster/pkg/nodebed"
)

// haclusterBin is the kubectl-hacluster a user runs: $HACLUSTER_BIN's
// (make test) or one built now.
func haclusterBin(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("HACLUSTER_BIN"); d != "" {
		return filepath.Join(d, "kubectl-hacluster")
	}
	bin := filepath.Join(t.TempDir(), "kubectl-hacluster")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/hacluster/hacluster/cmd/kubectl-hacluster").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// killAt runs `kubectl hacluster bootstrap` and SIGKILLs it `after` the
// line that starts phase (e.g. "[init]") appears on its stderr; then calls
// then. The run must not have finished by itself.
func killAt(t *testing.T, bin, file, phase string, after time.Duration, then func()) {
	t.Helper()
	cmd := exec.Command(bin, "bootstrap", "-f", file, "--cache-dir", cache, "--state-dir", filepath.Join(cache, "state"), "--merge-kubeconfig=false")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := make(chan struct{})
	sc := bufio.NewScanner(stderr)
	var timer *time.Timer
	for sc.Scan() {
		t.Logf("child: %s", sc.Text())
		if timer == nil && strings.Contains(sc.Text(), phase) {
			t0 := time.Now()
			timer = time.AfterFunc(after, func() {
				_ = cmd.Process.Kill()
				t.Logf("SIGKILL %s after %s", phase, time.Since(t0).Round(time.Millisecond))
				close(killed)
			})
		}
	}
	err = cmd.Wait()
	select {
	case <-killed:
	default:
		if timer != nil {
			timer.Stop()
		}
		t.Fatalf("bootstrap ended before the kill at %s: %v", phase, err)
	}
	if then != nil {
		then()
	}
}

// workload runs two netcheck Pods on two nodes and a Service: each Pod
// reaches the other's IP, and the Service by its DNS name.
func workload(t *testing.T, kubectl, kubeconfig string) {
	t.Helper()
	ctx := context.Background()
	bin := filepath.Join(t.TempDir(), "netcheck")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "../../hack/netcheck")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build netcheck: %v\n%s", err, out)
	}
	// The image netcheck.yaml names.
	if _, err := bed.Upstream.PushStatic(ctx, nodebed.TestRegistry+"/netcheck:v1", bin); err != nil {
		t.Fatal(err)
	}
	k := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := k("", "apply", "-f", "../../hack/netcheck/netcheck.yaml"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if out, err := k("", "rollout", "status", "deployment/netcheck", "--timeout=3m"); err != nil {
		pods, _ := k("", "get", "pods", "-o", "wide")
		ev, _ := k("", "get", "events", "--sort-by=.lastTimestamp")
		t.Fatalf("rollout: %v\n%s\n%s\n%s", err, out, pods, ev)
	}
	out, err := k("", "get", "pods", "-l", "app=netcheck", "-o", `jsonpath={range .items[*]}{.metadata.name} {.status.podIP} {.spec.nodeName}{"\n"}{end}`)
	if err != nil {
		t.Fatalf("%v %s", err, out)
	}
	var pods [][]string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		pods = append(pods, strings.Fields(l))
	}
	if len(pods) != 2 || len(pods[0]) != 3 || len(pods[1]) != 3 || pods[0][2] == pods[1][2] {
		t.Fatalf("want 2 pods on 2 nodes: %q", out)
	}
	for i, p := range pods {
		other := pods[1-i]
		got, err := k("", "exec", p[0], "--", "/netcheck", "get", "http://"+other[1]+":8080/")
		if err != nil || !strings.Contains(got, other[0]+" on "+other[2]) {
			t.Errorf("%s on %s -> %s on %s: %v %s", p[0], p[2], other[0], other[2], err, got)
		}
	}
	// kube-proxy rejects the Service's address until its endpoints reach it,
	// a moment after the rollout.
	got, err := "", error(nil)
	for t0 := time.Now(); ; time.Sleep(time.Second) {
		got, err = k("", "exec", pods[0][0], "--", "/netcheck", "get", "http://netcheck.default.svc.cluster.local/")
		if err == nil && strings.Contains(got, "netcheck netcheck-") || time.Since(t0) > 30*time.Second {
			break
		}
	}
	if err != nil || !strings.Contains(got, "netcheck netcheck-") {
		t.Errorf("the Service through DNS: %v %s", err, got)
	}
	t.Logf("netcheck: pods on %s and %s reach each other and the Service by name", pods[0][2], pods[1][2])
}
