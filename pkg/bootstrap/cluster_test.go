package bootstrap_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
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

// Each API server's own certificate is checked and named: cp-2's replaced
// by one that expires tomorrow is reported for cp-2 alone.
func TestAPIServerCertificates(t *testing.T) {
	if bed == nil {
		t.Skip("no node bed")
	}
	kc := adminKubeconfig(t)
	ctx := context.Background()
	cp2 := bed.Host("cp-2")
	read := func(p string) []byte {
		t.Helper()
		out, err := cp2.Exec(ctx, "cat", p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		return []byte(out)
	}
	caCert, caKey := read("/etc/kubernetes/pki/ca.crt"), read("/etc/kubernetes/pki/ca.key")
	serverKey := read("/etc/kubernetes/pki/apiserver.key")
	bad, err := signServing(caCert, caKey, serverKey, "cp-2", []string{cp2.Address.String(), bed.VIP.String()}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	const crt = "/etc/kubernetes/pki/apiserver.crt"
	restartAPIServer := func() {
		t.Helper()
		if out, err := cp2.Exec(ctx, "sh", "-c", "crictl stop $(crictl ps -q --name '^kube-apiserver$') >/dev/null"); err != nil {
			t.Fatalf("restart kube-apiserver on cp-2: %v %s", err, out)
		}
	}
	if out, err := cp2.Exec(ctx, "sh", "-c", "cp -p "+crt+" "+crt+".test && echo "+base64.StdEncoding.EncodeToString(bad)+" | base64 -d > "+crt); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if out, err := cp2.Exec(ctx, "mv", crt+".test", crt); err != nil {
				t.Errorf("%v %s", err, out)
			}
			restartAPIServer()
		}
	}
	defer restore()
	restartAPIServer()
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	src, err := inspect.NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The reasons that name a certificate, until cp-2's new one is seen.
	certReasons := func() []string {
		rep, err := inspect.Inspect(ctx, src, inspect.AnalyzeOptions{})
		if err != nil {
			return []string{err.Error()}
		}
		var out []string
		for _, r := range rep.Reasons {
			if strings.Contains(r, "certificate") {
				out = append(out, r)
			}
		}
		return out
	}
	var got []string
	for t0 := time.Now(); time.Since(t0) < 2*time.Minute; time.Sleep(3 * time.Second) {
		if got = certReasons(); strings.Contains(strings.Join(got, " "), "expires in 0 days") {
			break
		}
	}
	all := strings.Join(got, "\n")
	t.Logf("inspect with cp-2's certificate replaced:\n%s", all)
	if !strings.Contains(all, "kube-apiserver on cp-2") || !strings.Contains(all, "expires in 0 days") || strings.Contains(all, "on cp-1") || strings.Contains(all, "on cp-3") {
		t.Errorf("inspect with cp-2's certificate expiring tomorrow: want the finding for cp-2 only:\n%s", all)
	}
	restore()
	for t0 := time.Now(); time.Since(t0) < 2*time.Minute; time.Sleep(3 * time.Second) {
		if got = certReasons(); len(got) == 0 {
			return
		}
	}
	t.Errorf("certificate findings after the restore: %q", got)
}

// signServing is an API server certificate for node at addrs, signed by the
// cluster's CA with the server's own key, valid for life.
func signServing(caPEM, caKeyPEM, keyPEM []byte, node string, addrs []string, life time.Duration) ([]byte, error) {
	cb, _ := pem.Decode(caPEM)
	kb, _ := pem.Decode(caKeyPEM)
	sb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil || sb == nil {
		return nil, errors.New("not PEM")
	}
	ca, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, err
	}
	caKey, err := parseKey(kb.Bytes)
	if err != nil {
		return nil, err
	}
	key, err := parseKey(sb.Bytes)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(life),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{node, "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPAddresses:  []net.IP{net.ParseIP("10.96.0.1")},
	}
	for _, a := range addrs {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(a))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.(crypto.Signer).Public(), caKey)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func parseKey(der []byte) (any, error) {
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return k, nil
	}
	return x509.ParseECPrivateKey(der)
}
