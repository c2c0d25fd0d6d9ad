// Package servingcert approves the kubelets' serving certificates: with
// serverTLSBootstrap: true in the KubeletConfiguration a kubelet asks the
// cluster CA (signer kubernetes.io/kubelet-serving) for its serving
// certificate, and nothing in Kubernetes approves those requests. What a
// kubelet may get is checked first (Check): only its own node's name and
// addresses, as kubeadm's documentation asks of whoever approves them.
package servingcert

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// KubeletFile is where a kubelet keeps the serving certificate it was
// issued (a link to the current one): on the node, the proof it has one.
const KubeletFile = "/var/lib/kubelet/pki/kubelet-server-current.pem"

// Node is a node whose kubelet may ask for a serving certificate: its name
// and every address it may put in the certificate.
type Node struct {
	Name      string
	Addresses []string
}

// Enabled reads the cluster's kubelet configuration (the
// kubelet-config ConfigMap kubeadm keeps): true when the kubelets ask for
// serving certificates signed by the cluster CA (serverTLSBootstrap).
func Enabled(ctx context.Context, cs kubernetes.Interface) (bool, error) {
	cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubelet-config", metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("kubelet-config: %w", err)
	}
	var kc struct {
		ServerTLSBootstrap bool `json:"serverTLSBootstrap"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["kubelet"]), &kc); err != nil {
		return false, fmt.Errorf("kubelet-config: %w", err)
	}
	return kc.ServerTLSBootstrap, nil
}

// Approve approves the kubelet-serving certificate requests of nodes, once
// each is what the kubelet of that node may ask for (see Check), and waits
// until issued says that every node's kubelet has its certificate (the
// requests are no proof: kube-controller-manager deletes issued ones after
// an hour). A request that asks for more is left pending and named. It
// returns how many requests it approved.
func Approve(ctx context.Context, cs kubernetes.Interface, nodes []Node, issued func(context.Context, Node) (bool, error), timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	approved := 0
	for {
		list, err := cs.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
		if err != nil {
			return approved, fmt.Errorf("list certificate signing requests: %w", err)
		}
		var refused []string
		for i := range list.Items {
			csr := &list.Items[i]
			if csr.Spec.SignerName != certificatesv1.KubeletServingSignerName {
				continue
			}
			h, ok := nodeOf(csr, nodes)
			if !ok {
				continue
			}
			if len(csr.Status.Certificate) > 0 || decided(csr) {
				continue
			}
			if err := Check(csr, h); err != nil {
				refused = append(refused, fmt.Sprintf("%s (%s): %v", csr.Name, h.Name, err))
				continue
			}
			csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
				Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue,
				Reason: "HaclusterApproved", Message: "the kubelet's serving certificate for the node's own name and addresses, approved by kubectl hacluster",
			})
			if _, err := cs.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
				return approved, fmt.Errorf("approve %s: %w", csr.Name, err)
			}
			approved++
		}
		var waiting []string
		for _, h := range nodes {
			ok, err := issued(ctx, h)
			if err != nil {
				return approved, err
			}
			if !ok {
				waiting = append(waiting, h.Name)
			}
		}
		if len(waiting) == 0 {
			return approved, nil
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("no kubelet serving certificate issued after %s for %s", timeout, strings.Join(waiting, ", "))
			if len(refused) > 0 {
				msg += "; left pending: " + strings.Join(refused, "; ")
			}
			return approved, fmt.Errorf("%s", msg)
		}
		select {
		case <-ctx.Done():
			return approved, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func decided(csr *certificatesv1.CertificateSigningRequest) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateApproved || c.Type == certificatesv1.CertificateDenied || c.Type == certificatesv1.CertificateFailed {
			return true
		}
	}
	return false
}

// nodeOf is the node whose kubelet sent csr (by its node identity).
func nodeOf(csr *certificatesv1.CertificateSigningRequest, nodes []Node) (Node, bool) {
	name, ok := strings.CutPrefix(csr.Spec.Username, "system:node:")
	if !ok {
		return Node{}, false
	}
	for _, n := range nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// Check accepts what the kubelet of node h may ask for and nothing more:
// sent by the node itself (system:node:<name> in system:nodes), subject
// CN=system:node:<name>, O=system:nodes, its name as the only DNS name, IP
// addresses among its addresses, no e-mail or URI names, and the usages of
// a serving certificate.
func Check(csr *certificatesv1.CertificateSigningRequest, h Node) error {
	node := "system:node:" + h.Name
	if csr.Spec.Username != node || !slices.Contains(csr.Spec.Groups, "system:nodes") {
		return fmt.Errorf("sent by %s, not by the node", csr.Spec.Username)
	}
	block, _ := pem.Decode(csr.Spec.Request)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return fmt.Errorf("no PEM certificate request")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return err
	}
	if err := req.CheckSignature(); err != nil {
		return err
	}
	if req.Subject.CommonName != node || !slices.Equal(req.Subject.Organization, []string{"system:nodes"}) {
		return fmt.Errorf("subject %q", req.Subject.String())
	}
	if len(req.EmailAddresses) > 0 || len(req.URIs) > 0 {
		return fmt.Errorf("asks for e-mail or URI names")
	}
	if len(req.DNSNames)+len(req.IPAddresses) == 0 {
		return fmt.Errorf("names no DNS name or address")
	}
	for _, d := range req.DNSNames {
		if d != h.Name {
			return fmt.Errorf("DNS name %q is not the node's name", d)
		}
	}
	for _, ip := range req.IPAddresses {
		if !slices.ContainsFunc(h.Addresses, func(a string) bool { p := net.ParseIP(a); return p != nil && p.Equal(ip) }) {
			return fmt.Errorf("address %s is not one of the node's (%s)", ip, strings.Join(h.Addresses, ", "))
		}
	}
	for _, u := range csr.Spec.Usages {
		switch u {
		case certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageServerAuth:
		default:
			return fmt.Errorf("usage %q", u)
		}
	}
	if !slices.Contains(csr.Spec.Usages, certificatesv1.UsageServerAuth) {
		return fmt.Errorf("no server auth usage")
	}
	return nil
}
