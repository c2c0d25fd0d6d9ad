package inspect

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
)

// variant is one broken (or healthy) HA shape and what inspect must say.
type variant struct {
	name    string
	shape   fakeShape
	verdict string
	check   string   // a finding that must be there
	sev     Severity // with this severity
	subject string   // and this subject, when set
}

var variants = []variant{
	{name: "healthy", verdict: Healthy},
	{name: "apiserver missing on cp-2", shape: fakeShape{Missing: map[string][]string{"cp-2": {"kube-apiserver"}}},
		verdict: Degraded, check: "controlplane.missing", sev: Warning, subject: "cp-2"},
	{name: "2 etcd members", shape: fakeShape{EtcdMembers: 2}, verdict: Failing, check: "etcd.members", sev: Error},
	{name: "4 etcd members", shape: fakeShape{EtcdMembers: 4}, verdict: Degraded, check: "etcd.members", sev: Warning},
	{name: "endpoint on a node IP", shape: fakeShape{ControlPlaneEndpoint: "10.0.0.11:6443"},
		verdict: Failing, check: "endpoint.single-node", sev: Error, subject: "cp-1"},
	{name: "stale leader lease", shape: fakeShape{StaleLeases: true}, verdict: Failing, check: "leader.stale", sev: Error},
	{name: "node NotReady", shape: fakeShape{NotReady: []string{"worker-2"}}, verdict: Degraded, check: "node.not-ready", sev: Warning, subject: "worker-2"},
	{name: "kubelet newer than apiserver", shape: fakeShape{KubeletVersions: map[string]string{"worker-1": "v1.38.0"}},
		verdict: Failing, check: "node.skew", sev: Error, subject: "worker-1"},
	{name: "kubelet 4 minors older", shape: fakeShape{KubeletVersions: map[string]string{"worker-1": "v1.33.5"}},
		verdict: Failing, check: "node.skew", sev: Error, subject: "worker-1"},
	{name: "kubelet 3 minors older is allowed", shape: fakeShape{KubeletVersions: map[string]string{"worker-1": "v1.34.1"}}, verdict: Healthy},
}

func analyzeFake(t *testing.T, sh fakeShape, opts AnalyzeOptions) *Report {
	t.Helper()
	_, src := fakeCluster(sh)
	s := Collect(context.Background(), src)
	s.Now = fakeNow
	return Analyze(s, opts)
}

// checkVariant asserts the verdict, the expected finding and the exit codes.
func checkVariant(t *testing.T, v variant, r *Report) {
	t.Helper()
	if r.Verdict != v.verdict {
		t.Errorf("verdict = %s, want %s; findings: %+v", r.Verdict, v.verdict, nonOK(r))
	}
	if v.check != "" {
		i := slices.IndexFunc(r.Findings, func(f Finding) bool {
			return f.Check == v.check && f.Severity == v.sev && (v.subject == "" || f.Subject == v.subject)
		})
		if i < 0 {
			t.Errorf("no %s finding %q (subject %q); findings: %+v", v.sev, v.check, v.subject, nonOK(r))
		}
	}
	if v.verdict == Healthy && len(nonOK(r)) != 0 {
		t.Errorf("healthy shape has problems: %+v", nonOK(r))
	}
}

func nonOK(r *Report) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Severity != OK {
			out = append(out, f)
		}
	}
	return out
}

func TestVariantsFake(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			checkVariant(t, v, analyzeFake(t, v.shape, AnalyzeOptions{}))
		})
	}
}

func TestHealthyDetails(t *testing.T) {
	r := analyzeFake(t, fakeShape{KubeProxyMode: "ipvs"}, AnalyzeOptions{})
	if got := len(r.ControlPlane); got != 12 {
		t.Errorf("control-plane rows = %d, want 12", got)
	}
	if r.Etcd.Members != 3 || r.Etcd.Quorum != 2 || r.Etcd.ToleratesFailures != 1 {
		t.Errorf("etcd = %+v", r.Etcd)
	}
	if r.Network.KubeProxyMode != "ipvs" || !slices.Equal(r.Network.CNI, []string{"Flannel"}) || r.Network.CoreDNS.Ready != 2 {
		t.Errorf("network = %+v", r.Network)
	}
	if r.APIServer.Registered != 3 || len(r.APIServer.Readyz) != 4 || len(r.APIServer.Livez) != 3 {
		t.Errorf("apiserver = %+v", r.APIServer)
	}
	if r.Endpoint.MatchesClusterInfo == nil || !*r.Endpoint.MatchesClusterInfo {
		t.Errorf("endpoint = %+v", r.Endpoint)
	}
	if len(r.Leaders) != 2 || !r.Leaders[0].Fresh || r.Leaders[0].Node != "cp-1" {
		t.Errorf("leaders = %+v", r.Leaders)
	}
	if r.NodeSummary != (NodeSummary{Total: 5, Ready: 5, ControlPlanes: 3, Workers: 2}) {
		t.Errorf("nodes = %+v", r.NodeSummary)
	}
	if !strings.Contains(r.Cluster.CoreDNS, "v1.12.0") || !strings.Contains(r.Cluster.CoreDNS, "10.96.0.10") {
		t.Errorf("coreDNS header = %q", r.Cluster.CoreDNS)
	}
	var buf bytes.Buffer
	if err := Render(&buf, r, RenderOptions{Now: fakeNow}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CONTROL PLANE", "kube-apiserver", "LEADERS", "quorum 2, tolerates 1", "Verdict: Healthy", "mode ipvs"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table output lacks %q:\n%s", want, buf.String())
		}
	}
	if strings.Contains(buf.String(), "\x1b[") {
		t.Errorf("colour codes written to a non-terminal")
	}
}

func TestUnsetEndpointAndNodeFilter(t *testing.T) {
	_, src := fakeCluster(fakeShape{NotReady: []string{"worker-2"}, Missing: map[string][]string{"cp-3": {"kube-scheduler"}}})
	s := Collect(context.Background(), src)
	s.KubeadmConfig.Data["ClusterConfiguration"] = "kind: ClusterConfiguration\n"
	r := Analyze(s, AnalyzeOptions{})
	if !hasFinding(r, "endpoint.unset", Error) || r.Verdict != Failing {
		t.Errorf("unset endpoint not flagged: %+v", nonOK(r))
	}
	r = Analyze(s, AnalyzeOptions{Node: "cp-3"})
	if hasFinding(r, "node.not-ready", Warning) {
		t.Errorf("--node cp-3 still reports worker-2")
	}
	if !hasFinding(r, "controlplane.missing", Warning) || len(r.Nodes) != 1 || len(r.ControlPlane) != 4 {
		t.Errorf("--node cp-3: nodes %d, control plane rows %d, findings %+v", len(r.Nodes), len(r.ControlPlane), nonOK(r))
	}
	if _, err := Inspect(context.Background(), src, AnalyzeOptions{Node: "nope"}); err == nil || !strings.Contains(err.Error(), `node "nope" not found`) {
		t.Errorf("unknown node: err = %v", err)
	}
}

func hasFinding(r *Report, check string, sev Severity) bool {
	return slices.ContainsFunc(r.Findings, func(f Finding) bool { return f.Check == check && f.Severity == sev })
}

// Forbidden reads become notes, never a crash; managed clusters get a note.
func TestForbiddenAndManaged(t *testing.T) {
	cs, src := fakeCluster(fakeShape{})
	cs.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", nil)
	})
	cs.PrependReactor("get", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "kubeadm-config", nil)
	})
	s := Collect(context.Background(), src)
	s.Now = fakeNow
	r := Analyze(s, AnalyzeOptions{})
	if len(r.ControlPlane) != 0 || !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "cannot read pods: forbidden") }) {
		t.Errorf("forbidden pods: rows %d, notes %q", len(r.ControlPlane), r.Notes)
	}
	if r.Verdict != Healthy {
		t.Errorf("forbidden reads should not fail the verdict: %+v", nonOK(r))
	}

	r = analyzeFake(t, fakeShape{NoControlPlanePods: true}, AnalyzeOptions{})
	if !r.Cluster.ManagedControlPlane || !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "managed control plane") }) {
		t.Errorf("managed: %+v notes %q", r.Cluster, r.Notes)
	}
}

// The number of API requests must not grow with the node count.
func TestRequestCountIndependentOfNodes(t *testing.T) {
	count := func(workers int) int {
		cs, src := fakeCluster(fakeShape{Workers: workers})
		cs.ClearActions()
		Collect(context.Background(), src)
		return len(cs.Actions())
	}
	small, big := count(2), count(300)
	if small != big || small > 15 {
		t.Errorf("requests: %d with 5 nodes, %d with 303 nodes (want equal and at most 15)", small, big)
	}
}

// The JSON field names are a documented interface.
func TestJSONFieldsStable(t *testing.T) {
	r := analyzeFake(t, fakeShape{}, AnalyzeOptions{})
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := []string{"apiVersion", "kind", "cluster", "controlPlane", "leaders", "apiServer", "etcd", "endpoint",
		"nodeSummary", "nodes", "network", "findings", "notes", "verdict", "reasons", "stats"}
	var got []string
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("top-level JSON keys = %v, want %v", got, want)
	}
	for _, key := range []string{`"verdict":"Healthy"`, `"toleratesFailures":1`, `"controlPlaneEndpoint":"10.0.0.100:6443"`,
		`"kubeletVersion":"v1.37.2"`, `"component":"kube-apiserver"`, `"secondsSinceRenewal":2`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("JSON lacks %s", key)
		}
	}
}

// probeTLS reads a real serving certificate.
func TestProbeTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	host, port := splitURLHostPort(srv.URL)
	p := probeTLS(context.Background(), host+":"+port, host, time.Second)
	if !p.Reachable || p.Cert == nil {
		t.Fatalf("probe = %+v", p)
	}
	if p.Cert.VerifyHostname("127.0.0.1") != nil {
		t.Errorf("httptest certificate should cover 127.0.0.1")
	}
	p = probeTLS(context.Background(), "127.0.0.1:1", "127.0.0.1", time.Second)
	if p.Reachable || p.Err == nil {
		t.Errorf("closed port: %+v", p)
	}
}

func TestHelpers(t *testing.T) {
	for in, want := range map[string]string{"registry.k8s.io/etcd:3.5.24-0": "3.5.24-0", "localhost:5000/kube-apiserver": "",
		"k8s/kube-scheduler:v1.37.2@sha256:abc": "v1.37.2"} {
		if got := imageVersion(in); got != want {
			t.Errorf("imageVersion(%q) = %q, want %q", in, got, want)
		}
	}
	h := parseHealth("[+]ping ok\n[-]etcd failed: reason withheld\n[+]poststarthook/x ok\nreadyz check failed\n")
	if len(h) != 3 || h[1].OK || h[1].Name != "etcd" || h[1].Message != "failed: reason withheld" {
		t.Errorf("parseHealth = %+v", h)
	}
	if ok, _ := apiServiceAvailable([]byte(`{"status":{"conditions":[{"type":"Available","status":"False","reason":"FailedDiscoveryCheck"}]}}`)); ok {
		t.Errorf("unavailable APIService read as available")
	}
	if h, p := splitHostPortDefault("[fd00::1]", "6443"); h != "fd00::1" || p != "6443" {
		t.Errorf("split = %s %s", h, p)
	}
	if c := cniFromDaemonSet("calico-node", "docker.io/calico/node:v3.29"); c != "Calico" {
		t.Errorf("cni = %s", c)
	}
}

// BenchmarkAnalyze measures collecting (fake clientset) and judging a
// 1,000-node cluster in process; the real comparison is BenchmarkInspectBigCluster.
func BenchmarkAnalyze(b *testing.B) {
	_, src := fakeCluster(fakeShape{Workers: 997})
	s := Collect(context.Background(), src)
	s.Now = fakeNow
	for b.Loop() {
		if r := Analyze(s, AnalyzeOptions{}); r.NodeSummary.Total != 1000 {
			b.Fatalf("%d nodes", r.NodeSummary.Total)
		}
	}
}

func selfSigned(t *testing.T, notAfter time.Time, ips ...string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: notAfter.Add(-365 * 24 * time.Hour), NotAfter: notAfter, DNSNames: []string{"kubernetes"}}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Certificate expiry and SANs, and fewer registered API servers than pods.
func TestCertificateAndEndpointFindings(t *testing.T) {
	_, src := fakeCluster(fakeShape{})
	s := Collect(context.Background(), src)
	s.Now = fakeNow
	s.ServerCert = &Probe{Target: "10.0.0.11:6443", Reachable: true, Cert: selfSigned(t, fakeNow.Add(10*24*time.Hour), "10.0.0.11")}
	s.EndpointCert = &Probe{Target: "10.0.0.100:6443", Reachable: true, Cert: selfSigned(t, fakeNow.Add(-time.Hour), "10.0.0.100")}
	s.Slices[0].Endpoints = s.Slices[0].Endpoints[:1]
	r := Analyze(s, AnalyzeOptions{})
	for _, want := range []struct {
		check, subject string
		sev            Severity
	}{
		{"cert.expiry", "10.0.0.11:6443", Warning}, {"cert.san", "10.0.0.11:6443", Error},
		{"cert.expiry", "10.0.0.100:6443", Error}, {"cert.san", "10.0.0.100:6443", OK},
		{"apiserver.endpoints", "", Warning},
	} {
		if !slices.ContainsFunc(r.Findings, func(f Finding) bool {
			return f.Check == want.check && f.Subject == want.subject && f.Severity == want.sev
		}) {
			t.Errorf("no %s %s for %q; findings %+v", want.sev, want.check, want.subject, r.Findings)
		}
	}
	if len(r.APIServer.Certificates) != 2 || r.APIServer.Certificates[0].DaysLeft != 10 || r.APIServer.Certificates[0].CoversEndpoint {
		t.Errorf("certificates %+v", r.APIServer.Certificates)
	}
	if r.Endpoint.Reachable == nil || !*r.Endpoint.Reachable || r.Verdict != Failing {
		t.Errorf("endpoint %+v, verdict %s", r.Endpoint, r.Verdict)
	}
}

// -o wide: the NODES header reads INTERNAL-IP, as in kubectl (issue 18).
func TestWideHeaders(t *testing.T) {
	r := analyzeFake(t, fakeShape{}, AnalyzeOptions{})
	var buf bytes.Buffer
	if err := Render(&buf, r, RenderOptions{Wide: true, Now: fakeNow}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !regexp.MustCompile(`(?m)^NAME +ROLES +READY +KUBELET +RUNTIME +SKEW +TAINTS +INTERNAL-IP$`).MatchString(out) ||
		strings.Contains(out, "INTERNAL - IP") {
		t.Errorf("wide headers:\n%s", out)
	}
}
