package bootstrap_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/hacluster/hacluster/pkg/inspect"
	"github.com/hacluster/hacluster/pkg/nodebed"
)

// What issue 18 found only on a cluster kubeadm really built, checked on the
// one TestHAControlPlane bootstrapped (the joins come after these).

func adminKubeconfig(t *testing.T) string {
	t.Helper()
	kc := filepath.Join(cache, "state", "admin.conf")
	if _, err := clientcmd.LoadFromFile(kc); err != nil {
		t.Skipf("no cluster: %v", err)
	}
	return kc
}

// CoreDNS with both replicas on one node is a warning with the fix, and a
// bootstrap re-run spreads them again.
func TestCoreDNSOnOneNode(t *testing.T) {
	if bed == nil {
		t.Skip("no node bed")
	}
	kc := adminKubeconfig(t)
	kubectl := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(kubectlBin(t), append([]string{"--kubeconfig", kc}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	pods := strings.Fields(kubectl("-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", `jsonpath={range .items[*]}{.metadata.name}={.spec.nodeName} {end}`))
	if len(pods) != 2 {
		t.Fatalf("CoreDNS pods: %v", pods)
	}
	_, node, _ := strings.Cut(pods[0], "=")
	other, _, _ := strings.Cut(pods[1], "=")
	// Every other node cordoned: the replacement of the other replica can
	// only go beside the first.
	var cordoned []string
	for _, h := range clusterHosts() {
		if h.Name != node {
			kubectl("cordon", h.Name)
			cordoned = append(cordoned, h.Name)
		}
	}
	uncordon := func() {
		for _, n := range cordoned {
			kubectl("uncordon", n)
		}
		cordoned = nil
	}
	defer uncordon()
	kubectl("-n", "kube-system", "delete", "pod", other)
	kubectl("-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=2m")
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	src, err := inspect.NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := inspect.Inspect(context.Background(), src, inspect.AnalyzeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reasons := strings.Join(rep.Reasons, "\n")
	if !strings.Contains(reasons, "run on node "+node) || !strings.Contains(reasons, "rollout restart deploy/coredns") {
		t.Errorf("inspect with both CoreDNS replicas on %s does not warn with the fix: %s %q", node, rep.Verdict, rep.Reasons)
	}
	uncordon()
	res := bootstrapRun(t, cluster(t, nodebed.SudoUser), "coredns")
	spread := false
	for _, p := range res.Phases {
		spread = spread || (p.Phase == "coredns" && p.Changed)
	}
	nodes := map[string]bool{}
	for _, f := range strings.Fields(kubectl("-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", `jsonpath={range .items[*]}{.spec.nodeName} {end}`)) {
		nodes[f] = true
	}
	if !spread || len(nodes) < 2 {
		t.Errorf("the bootstrap re-run did not spread CoreDNS again: %v %v", spread, nodes)
	}
}

// proxymode --probe with an image the nodes cannot pull fails fast, with
// the reason, and never says ✓.
func TestProbeUnpullableImage(t *testing.T) {
	if bed == nil {
		t.Skip("no node bed")
	}
	kc := adminKubeconfig(t)
	t0 := time.Now()
	out, err := exec.Command(haclusterBin(t), "proxymode", "--kubeconfig", kc, "--probe", "--image", nodebed.TestRegistry+"/no-such-image:v1", "--probe-timeout", "90s").CombinedOutput()
	took := time.Since(t0)
	t.Logf("%s in %s", out, took.Round(time.Millisecond))
	if err == nil || !strings.Contains(string(out), "no-such-image") || !strings.Contains(string(out), "ErrImagePull") && !strings.Contains(string(out), "ImagePullBackOff") {
		t.Errorf("want a failure naming the image and the pull error: %v", err)
	}
	if took > 60*time.Second {
		t.Errorf("took %s: an unpullable image should fail fast, not wait out --probe-timeout", took)
	}
}
