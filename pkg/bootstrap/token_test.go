package bootstrap

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// A fast check beside the node bed's (where the real bootstrap signer signs):
// the token Secret has kubeadm's fields, createToken waits for the
// signature, and the CA hash is the one of cluster-info's CA.
func TestCreateTokenWaitsForSignature(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubernetes"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kc := clientcmdapi.NewConfig()
	kc.Clusters[""] = &clientcmdapi.Cluster{Server: "https://10.0.0.100:16443", CertificateAuthorityData: caPEM}
	kcb, err := clientcmd.Write(*kc)
	if err != nil {
		t.Fatal(err)
	}
	cs := fake.NewClientset(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cluster-info", Namespace: "kube-public"}, Data: map[string]string{"kubeconfig": string(kcb)}})
	ctx := context.Background()
	go func() { // the bootstrap signer, late
		for {
			time.Sleep(300 * time.Millisecond)
			l, _ := cs.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
			if len(l.Items) == 1 {
				cm, _ := cs.CoreV1().ConfigMaps("kube-public").Get(ctx, "cluster-info", metav1.GetOptions{})
				cm.Data["jws-kubeconfig-"+l.Items[0].StringData["token-id"]] = "signed"
				_, _ = cs.CoreV1().ConfigMaps("kube-public").Update(ctx, cm, metav1.UpdateOptions{})
				return
			}
		}
	}()
	t0 := time.Now()
	tok, err := createToken(ctx, cs, time.Hour, tokenDescription, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(t0) < 250*time.Millisecond {
		t.Errorf("returned before the signature (%s)", time.Since(t0))
	}
	want, _ := caCertHash(caPEM)
	if tok.CAHash != want || !strings.HasPrefix(tok.Value, tok.ID+".") || len(tok.Value) != 23 {
		t.Errorf("token %s… hash %s, want %s", tok.ID, tok.CAHash, want)
	}
	s, err := cs.CoreV1().Secrets("kube-system").Get(ctx, "bootstrap-token-"+tok.ID, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Type != "bootstrap.kubernetes.io/token" || s.StringData["usage-bootstrap-authentication"] != "true" || s.StringData["auth-extra-groups"] != joinTokenGroups || s.StringData["expiration"] == "" {
		t.Errorf("secret %v", s.StringData)
	}
	// Never signed: a clear error, not a hang.
	if _, err := createToken(ctx, fake.NewClientset(), time.Hour, "x", 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "no signature") {
		t.Errorf("unsigned: %v", err)
	}
}
