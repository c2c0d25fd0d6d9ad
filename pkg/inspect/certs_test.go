package inspect

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// servingCert is a self-signed serving certificate for the IPs, valid until notAfter.
func servingCert(t *testing.T, serial int64, notAfter time.Time, ips ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: notAfter.Add(-365 * 24 * time.Hour), NotAfter: notAfter, DNSNames: []string{"kubernetes", "kubernetes.default"}}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsListeners serves each certificate on its host at one common port (like
// 6443 on every control plane) and returns that port.
func tlsListeners(t *testing.T, certs map[string]tls.Certificate) string {
	t.Helper()
	for attempt := 0; attempt < 20; attempt++ {
		var ls []net.Listener
		port := "0"
		ok := true
		for host, cert := range certs {
			l, err := net.Listen("tcp", net.JoinHostPort(host, port))
			if err != nil {
				ok = false
				break
			}
			_, port, _ = net.SplitHostPort(l.Addr().String())
			ls = append(ls, tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}}))
		}
		if !ok {
			for _, l := range ls {
				l.Close()
			}
			continue
		}
		for _, l := range ls {
			t.Cleanup(func() { l.Close() })
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					go func() {
						_ = c.(*tls.Conn).Handshake()
						c.Close()
					}()
				}
			}()
		}
		return port
	}
	t.Fatal("no common free port for the TLS listeners")
	return ""
}

// Three API servers with three distinct certificates: one expiring soon, one
// without the VIP in its SANs; the VIP answered by cp-2. Each row names its
// server and each problem is found at the server that has it.
func TestEachAPIServerCertificate(t *testing.T) {
	soon, later := fakeNow.Add(10*24*time.Hour), fakeNow.Add(300*24*time.Hour)
	cp2 := servingCert(t, 2, soon, "127.0.0.12", "127.0.0.100")
	port := tlsListeners(t, map[string]tls.Certificate{
		"127.0.0.11":  servingCert(t, 1, later, "127.0.0.11", "127.0.0.100"),
		"127.0.0.12":  cp2,
		"127.0.0.13":  servingCert(t, 3, later, "127.0.0.13"), // no VIP
		"127.0.0.100": cp2,                                    // HAProxy handed this dial to cp-2
	})
	vip := "127.0.0.100:" + port
	cs, src := fakeCluster(fakeShape{ControlPlaneEndpoint: vip})
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		p, err := cs.CoreV1().Pods("kube-system").Get(ctx, fmt.Sprintf("kube-apiserver-cp-%d", i), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Annotations = map[string]string{AdvertiseAnnotation: fmt.Sprintf("127.0.0.1%d:%s", i, port)}
		if _, err := cs.CoreV1().Pods("kube-system").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	sl, err := cs.DiscoveryV1().EndpointSlices("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var portNum int32
	fmt.Sscan(port, &portNum)
	sl.Ports[0].Port = ptr.To(portNum)
	for i := range sl.Endpoints {
		sl.Endpoints[i].Addresses = []string{fmt.Sprintf("127.0.0.1%d", i+1)}
	}
	if _, err := cs.DiscoveryV1().EndpointSlices("default").Update(ctx, sl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	src.SkipDial = false
	src.DialTimeout = 2 * time.Second
	src.Server = "https://127.0.0.11:" + port // the kubeconfig talks to cp-1 directly
	s := Collect(ctx, src)
	s.Now = fakeNow
	r := Analyze(s, AnalyzeOptions{})

	type want struct{ via, server, answeredBy string }
	wants := map[string]want{
		"127.0.0.11:" + port: {ViaKubeconfig, "cp-1", "cp-1"},
		vip:                  {ViaEndpoint, "", "cp-2"},
		"127.0.0.12:" + port: {ViaAdvertise, "cp-2", ""},
		"127.0.0.13:" + port: {ViaAdvertise, "cp-3", ""},
	}
	if len(r.APIServer.Certificates) != len(wants) {
		t.Fatalf("%d certificate rows, want %d: %+v", len(r.APIServer.Certificates), len(wants), r.APIServer.Certificates)
	}
	for _, c := range r.APIServer.Certificates {
		w, ok := wants[c.Target]
		if !ok || c.Via != w.via || c.Server != w.server || c.AnsweredBy != w.answeredBy || !c.Reachable || c.SHA256 == "" {
			t.Errorf("row %+v, want %+v", c, w)
		}
		if c.Via != ViaEndpoint && (c.CoversNode == nil || !*c.CoversNode) {
			t.Errorf("%s: coversNode %v", c.Target, c.CoversNode)
		}
	}
	for _, f := range []struct {
		check, subject string
		sev            Severity
		text           string
	}{
		{"cert.expiry", "127.0.0.12:" + port, Warning, "kube-apiserver on cp-2 (127.0.0.12:" + port + ") expires in 10 days"},
		{"cert.expiry", vip, Warning, "controlPlaneEndpoint " + vip + ", answered by kube-apiserver on cp-2 expires in 10 days"},
		{"cert.san", "127.0.0.13:" + port, Error, "kube-apiserver on cp-3 (127.0.0.13:" + port + ") does not include the endpoint host 127.0.0.100"},
		{"cert.expiry", "127.0.0.11:" + port, OK, "kubeconfig server 127.0.0.11:" + port + ", answered by kube-apiserver on cp-1"},
		{"cert.expiry", "127.0.0.13:" + port, OK, "cp-3"},
	} {
		got := findingOf(r, f.check, f.subject)
		for got != nil && got.Severity != f.sev { // several cert.san per subject
			got = nil
			for i := range r.Findings {
				if r.Findings[i].Check == f.check && r.Findings[i].Subject == f.subject && r.Findings[i].Severity == f.sev {
					got = &r.Findings[i]
				}
			}
		}
		if got == nil || !strings.Contains(got.Message, f.text) {
			t.Errorf("no %s %s for %s with %q; got %+v", f.sev, f.check, f.subject, f.text, got)
		}
	}
	var buf bytes.Buffer
	if err := Render(&buf, r, RenderOptions{Now: fakeNow}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, w := range []string{
		`(?m)^ +VIA +ADDRESS +SERVER +DAYS LEFT +EXPIRES +ENDPOINT IN SANS +OWN ADDRESS IN SANS +NOTE$`,
		`(?m)^ +controlPlaneEndpoint +` + regexp.QuoteMeta(vip) + ` +answered by cp-2 +10 +2026-12-04 +yes +-$`,
		`(?m)^ +advertise-address +127\.0\.0\.13:` + port + ` +cp-3 +300 +\S+ +NO +yes$`,
	} {
		if !regexp.MustCompile(w).MatchString(out) {
			t.Errorf("table lacks %s:\n%s", w, out)
		}
	}

	// A server whose own address is not reachable from here: a note naming it, no finding.
	s.APIServerCerts[2] = &Probe{Target: "127.0.0.13:" + port, Server: "cp-3", Via: ViaAdvertise, Err: fmt.Errorf("dial tcp: connection refused")}
	r = Analyze(s, AnalyzeOptions{})
	if !containsNote(r, "could not read the serving certificate of kube-apiserver on cp-3 (127.0.0.13:"+port+"): dial tcp: connection refused") {
		t.Errorf("notes %q", r.Notes)
	}
	if f := findingOf(r, "cert.san", "127.0.0.13:"+port); f != nil {
		t.Errorf("finding for an unread certificate: %+v", f)
	}
}

func containsNote(r *Report, s string) bool {
	for _, n := range r.Notes {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// Addresses of the API servers: kubeadm's annotation, else the flags, else
// the host IP; EndpointSlice addresses no Pod advertises come after.
func TestAPIServerTargets(t *testing.T) {
	pod := func(node string, ann map[string]string, cmd []string, hostIP string) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"component": "kube-apiserver"}, Annotations: ann},
			Spec:   corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Command: cmd}}},
			Status: corev1.PodStatus{HostIP: hostIP}}
	}
	pods := []corev1.Pod{
		pod("cp-1", map[string]string{AdvertiseAnnotation: "10.0.0.11:6443"}, nil, ""),
		pod("cp-2", nil, []string{"kube-apiserver", "--advertise-address=10.0.0.12", "--secure-port=8443"}, "10.0.0.12"),
		pod("cp-3", nil, nil, "10.0.0.13"),
		{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"component": "etcd"}}, Status: corev1.PodStatus{HostIP: "10.0.0.14"}},
	}
	_, src := fakeCluster(fakeShape{})
	s := Collect(context.Background(), src)
	s.Slices[0].Endpoints = append(s.Slices[0].Endpoints, s.Slices[0].Endpoints[0])
	s.Slices[0].Endpoints[3].Addresses = []string{"10.0.0.99"}
	got := apiServerTargets(pods, s.Slices)
	var list []string
	for _, p := range got {
		list = append(list, p.Target+"="+p.Server+"/"+p.Via)
	}
	want := "10.0.0.11:6443=cp-1/advertise-address 10.0.0.12:6443=/endpointslice 10.0.0.12:8443=cp-2/advertise-address " +
		"10.0.0.13:6443=cp-3/advertise-address 10.0.0.99:6443=/endpointslice"
	if strings.Join(list, " ") != want {
		t.Errorf("targets\n%s\nwant\n%s", strings.Join(list, " "), want)
	}
}
