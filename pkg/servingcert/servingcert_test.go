package servingcert

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

var worker = Node{Name: "worker-1", Addresses: []string{"10.0.0.21", "192.168.1.21"}}

type req struct {
	user   string
	groups []string
	cn     string
	org    []string
	dns    []string
	ips    []string
	uri    string
	usages []certificatesv1.KeyUsage
}

// kubelet is what worker-1's kubelet sends (pkg/kubelet/certificate asks
// for its node's hostname and addresses, with these usages).
func kubelet() req {
	return req{user: "system:node:worker-1", groups: []string{"system:nodes", "system:authenticated"},
		cn: "system:node:worker-1", org: []string{"system:nodes"}, dns: []string{"worker-1"}, ips: []string{"10.0.0.21"},
		usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}}
}

func csrOf(t *testing.T, name string, r req) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: r.cn, Organization: r.org}, DNSNames: r.dns}
	for _, ip := range r.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	if r.uri != "" {
		u, _ := url.Parse(r.uri)
		tmpl.URIs = []*url.URL{u}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: certificatesv1.KubeletServingSignerName, Username: r.user, Groups: r.groups, Usages: r.usages,
		},
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*req)
		want   string // "" accepts
	}{
		{"the kubelet's request", func(*req) {}, ""},
		{"both addresses", func(r *req) { r.ips = []string{"10.0.0.21", "192.168.1.21"} }, ""},
		{"another node's identity sends it", func(r *req) { r.user = "system:node:worker-2" }, "not by the node"},
		{"not in system:nodes", func(r *req) { r.groups = []string{"system:authenticated"} }, "not by the node"},
		{"a user asks for the node", func(r *req) { r.user = "alice" }, "not by the node"},
		{"subject of another node", func(r *req) { r.cn = "system:node:cp-1" }, "subject"},
		{"subject without the group", func(r *req) { r.org = nil }, "subject"},
		{"a foreign DNS name", func(r *req) { r.dns = []string{"worker-1", "kubernetes.default"} }, `DNS name "kubernetes.default"`},
		{"a foreign address", func(r *req) { r.ips = []string{"10.0.0.21", "10.96.0.1"} }, "address 10.96.0.1"},
		{"a URI name", func(r *req) { r.uri = "spiffe://cluster/ns/kube-system" }, "URI"},
		{"no name at all", func(r *req) { r.dns, r.ips = nil, nil }, "no DNS name"},
		{"client auth", func(r *req) { r.usages = append(r.usages, certificatesv1.UsageClientAuth) }, `usage "client auth"`},
		{"no server auth", func(r *req) { r.usages = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature} }, "no server auth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := kubelet()
			tc.change(&r)
			err := Check(csrOf(t, "csr-x", r), worker)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
	bad := csrOf(t, "csr-x", kubelet())
	bad.Spec.Request = []byte("not pem")
	if err := Check(bad, worker); err == nil {
		t.Fatal("a request that is not PEM accepted")
	}
}

// TestApprove: the kubelet's request is approved, a request for a foreign
// address is left pending and named, another signer's and another node's
// are not touched.
func TestApprove(t *testing.T) {
	ctx := context.Background()
	good := csrOf(t, "csr-good", kubelet())
	evil := kubelet()
	evil.ips = []string{"10.96.0.1"}
	client := kubelet()
	other := csrOf(t, "csr-client", client)
	other.Spec.SignerName = certificatesv1.KubeAPIServerClientKubeletSignerName
	stranger := kubelet()
	stranger.user, stranger.cn, stranger.dns = "system:node:elsewhere", "system:node:elsewhere", []string{"elsewhere"}
	cs := fake.NewClientset(good, csrOf(t, "csr-evil", evil), other, csrOf(t, "csr-stranger", stranger))

	// issued reads what the signer did (on a real cluster: the kubelet's file).
	issued := func(ctx context.Context, n Node) (bool, error) {
		c, err := cs.CertificatesV1().CertificateSigningRequests().Get(ctx, "csr-good", metav1.GetOptions{})
		return err == nil && len(c.Status.Certificate) > 0, err
	}
	_, err := Approve(ctx, cs, []Node{worker}, issued, 0)
	if err == nil || !strings.Contains(err.Error(), "no kubelet serving certificate issued") || !strings.Contains(err.Error(), "csr-evil (worker-1): address 10.96.0.1") {
		t.Fatalf("Approve with no signer running: %v", err)
	}
	approved := func(name string) bool {
		c, err := cs.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return decided(c)
	}
	if !approved("csr-good") || approved("csr-evil") || approved("csr-client") || approved("csr-stranger") {
		t.Fatalf("approved: good %v evil %v client %v stranger %v", approved("csr-good"), approved("csr-evil"), approved("csr-client"), approved("csr-stranger"))
	}
	// The signer (kube-controller-manager) issues it; Approve then returns.
	c, _ := cs.CertificatesV1().CertificateSigningRequests().Get(ctx, "csr-good", metav1.GetOptions{})
	c.Status.Certificate = []byte("issued")
	if _, err := cs.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	n, err := Approve(ctx, cs, []Node{worker}, issued, time.Second)
	if err != nil || n != 0 {
		t.Fatalf("Approve once issued: %d, %v", n, err)
	}
}

func TestEnabled(t *testing.T) {
	ctx := context.Background()
	for cfg, want := range map[string]bool{
		"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nserverTLSBootstrap: true\n": true,
		"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\n":    false,
	} {
		cs := fake.NewClientset(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kubelet-config"}, Data: map[string]string{"kubelet": cfg}})
		if got, err := Enabled(ctx, cs); err != nil || got != want {
			t.Errorf("Enabled(%q) = %v, %v", cfg, got, err)
		}
	}
	if _, err := Enabled(ctx, fake.NewClientset()); err == nil {
		t.Error("no kubelet-config: no error")
	}
}
