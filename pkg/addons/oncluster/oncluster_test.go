package oncluster_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hacluster/hacluster/pkg/artifacts"
	"github.com/hacluster/hacluster/pkg/bootstrap"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/nodebed"
	"github.com/hacluster/hacluster/pkg/testbed"
)

// One control plane and one worker: metrics-server runs on the worker and
// scrapes both kubelets.
var bed *nodebed.Bed

func TestMain(m *testing.M) {
	os.Exit(nodebed.Main(m, nodebed.Options{Prefix: "ao", Upstream: true,
		Hosts: []nodebed.HostSpec{{Name: "cp-1"}, {Name: "worker-1"}}}, func(b *nodebed.Bed) { bed = b }))
}

// TestBootstrapWithMetricsServer: `spec.addons: [metrics-server]` with a
// catalog that pins the release's components.yaml. A catalog without the
// pin, or with a wrong one, stops the run before any host changes; the
// pinned one gives a cluster whose kubelets serve certificates of the
// cluster CA (approved by bootstrap), a metrics-server that verifies them
// and answers `kubectl top nodes` for both nodes, and a re-run that changes
// nothing.
func TestBootstrapWithMetricsServer(t *testing.T) {
	if bed == nil {
		t.Skip("no node bed")
	}
	version := bed.Upstream.Versions.MetricsServer
	if version == "" {
		t.Skip("the upstream box has no metrics-server: run `make upstream`")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	kubectlDir, err := testbed.BinDir()
	if err != nil {
		t.Skip(err)
	}
	kubectl := filepath.Join(kubectlDir, "kubectl")

	// The catalog a user writes after `addons fetch`: the release URL
	// (served through the file's github.com mirror) and its sha256.
	work := t.TempDir()
	writeCatalog := func(pin string) string {
		b, err := bed.MetricsServerCatalog(pin)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(work, "catalog-"+pin[:min(8, len(pin))]+".yaml")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	load := func(catalog string, extra ...string) *inventory.Cluster {
		t.Helper()
		file := filepath.Join(work, "cluster.yaml")
		src := nodebed.WithAddons(bed.ClusterFile("ao", nodebed.SudoUser), catalog, "metrics-server") + strings.Join(extra, "")
		if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := inventory.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	opts := bootstrap.Options{Artifacts: &artifacts.Store{Dir: filepath.Join(work, "cache")}, StateDir: filepath.Join(work, "state"), Logf: t.Logf}

	// Refusals: nothing past download runs.
	for _, tc := range []struct{ name, pin, extra, want string }{
		{"unpinned", "", "", "spec.addons: metrics-server " + version + " is not pinned"},
		{"wrong pin", strings.Repeat("0", 64), "", "checksum mismatch"},
		{"calico not in the catalog", "served", "  network: {cni: calico}\n", "spec.network.cni: calico is not in"},
	} {
		res, err := bootstrap.Run(ctx, load(writeCatalog(tc.pin), tc.extra), opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("%s: bootstrap error %v, want one line with %q", tc.name, err, tc.want)
		}
		for _, p := range res.Phases {
			if p.Phase != "download" && p.Phase != "preflight" && p.Phase != "facts" && p.Phase != "connect" {
				t.Errorf("%s: phase %s ran (%s)", tc.name, p.Phase, p.Detail)
			}
		}
		t.Logf("%s: refused: %v", tc.name, err)
	}

	c := load(writeCatalog("served"))
	res, err := bootstrap.Run(ctx, c, opts)
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	t.Logf("bootstrapped with metrics-server in %s: %s", res.Duration.Round(time.Second), res.Verdict)
	var addonPhase *bootstrap.PhaseResult
	for i, p := range res.Phases {
		if p.Phase == "addons" {
			addonPhase = &res.Phases[i]
		}
	}
	if addonPhase == nil || !addonPhase.Changed || !strings.Contains(addonPhase.Detail, "Ready") {
		t.Fatalf("addons phase: %+v", addonPhase)
	}
	t.Logf("addons phase: %s in %s", addonPhase.Detail, addonPhase.Duration.Round(100*time.Millisecond))

	b, err := os.ReadFile(res.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	// Each kubelet's serving certificate: asked for, approved by bootstrap, issued.
	csrs, err := cs.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	issued := map[string]bool{}
	for _, r := range csrs.Items {
		if r.Spec.SignerName != certificatesv1.KubeletServingSignerName || len(r.Status.Certificate) == 0 {
			continue
		}
		for _, cond := range r.Status.Conditions {
			if cond.Type == certificatesv1.CertificateApproved && cond.Reason == "HaclusterApproved" {
				issued[strings.TrimPrefix(r.Spec.Username, "system:node:")] = true
			}
		}
	}
	if !issued["cp-1"] || !issued["worker-1"] {
		t.Errorf("kubelet serving certificates approved by bootstrap and issued: %v", issued)
	}

	// metrics-server verifies the kubelets (no --kubelet-insecure-tls) and
	// answers for both nodes, as `kubectl top nodes` asks.
	d, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "metrics-server", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if args := strings.Join(d.Spec.Template.Spec.Containers[0].Args, " "); strings.Contains(args, "insecure") {
		t.Errorf("metrics-server runs with %s", args)
	}
	var top string
	for deadline := time.Now().Add(2 * time.Minute); ; {
		out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", res.Kubeconfig, "top", "nodes", "--no-headers").CombinedOutput()
		top = string(out)
		if err == nil && strings.Contains(top, "cp-1") && strings.Contains(top, "worker-1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kubectl top nodes: %v\n%s", err, top)
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("kubectl top nodes:\n%s", top)

	// Converged: a re-run changes nothing, the add-on included.
	again, err := bootstrap.Run(ctx, c, opts)
	if err != nil {
		t.Fatalf("re-run: %v", err)
	}
	for _, p := range again.Phases {
		if p.Changed && p.Phase != "download" {
			t.Errorf("re-run changed %s on %q: %s", p.Phase, p.Host, p.Detail)
		}
	}
	t.Logf("converged re-run in %s", again.Duration.Round(100*time.Millisecond))
}
