package bootstrap

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	tokenutil "k8s.io/cluster-bootstrap/token/util"
)

// Token is a bootstrap token made through the API, as kubeadm makes one: a
// Secret in kube-system that the controller-manager's bootstrap signer signs
// into the kube-public/cluster-info ConfigMap (joining nodes verify the
// cluster through that signature), and the CA hash of cluster-info's CA.
type Token struct {
	Value   string    // id.secret: a secret, never logged
	ID      string    // the public half
	Expires time.Time // the API server deletes the Secret then
	CAHash  string    // sha256:<hex> of the CA's public key
}

// joinTokenGroups are the groups kubeadm's default node token carries (its
// RBAC lets a node in them post its CSR and read cluster-info).
const joinTokenGroups = "system:bootstrappers:kubeadm:default-node-token"

// createToken makes a bootstrap token with the given TTL and description and
// waits (up to wait) until cluster-info carries its signature, so that a join
// that starts at once finds it.
func createToken(ctx context.Context, cs kubernetes.Interface, ttl time.Duration, description string, wait time.Duration) (Token, error) {
	value, err := tokenutil.GenerateBootstrapToken()
	if err != nil {
		return Token{}, err
	}
	id, secret, _ := strings.Cut(value, ".")
	t := Token{Value: value, ID: id, Expires: time.Now().Add(ttl).UTC().Truncate(time.Second)}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: bootstrapapi.BootstrapTokenSecretPrefix + id, Namespace: metav1.NamespaceSystem},
		Type:       bootstrapapi.SecretTypeBootstrapToken,
		StringData: map[string]string{
			bootstrapapi.BootstrapTokenIDKey:               id,
			bootstrapapi.BootstrapTokenSecretKey:           secret,
			bootstrapapi.BootstrapTokenExpirationKey:       t.Expires.Format(time.RFC3339),
			bootstrapapi.BootstrapTokenUsageAuthentication: "true",
			bootstrapapi.BootstrapTokenUsageSigningKey:     "true",
			bootstrapapi.BootstrapTokenExtraGroupsKey:      joinTokenGroups,
			bootstrapapi.BootstrapTokenDescriptionKey:      description,
		},
	}
	if _, err := cs.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		return Token{}, fmt.Errorf("bootstrap token: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		cm, err := cs.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
		if err == nil {
			if _, signed := cm.Data[bootstrapapi.JWSSignatureKeyPrefix+id]; signed {
				t.CAHash, err = clusterInfoCAHash(cm)
				return t, err
			}
		} else if !apierrors.IsNotFound(err) {
			return Token{}, fmt.Errorf("cluster-info: %w", err)
		}
		if time.Now().After(deadline) {
			return Token{}, fmt.Errorf("bootstrap token %s: kube-public/cluster-info carries no signature for it after %s (is kube-controller-manager's bootstrapsigner running?)", id, wait)
		}
		select {
		case <-ctx.Done():
			return Token{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// clusterInfoCAHash is the discovery hash of the CA in cluster-info's kubeconfig.
func clusterInfoCAHash(cm *corev1.ConfigMap) (string, error) {
	cfg, err := clientcmd.Load([]byte(cm.Data[bootstrapapi.KubeConfigKey]))
	if err != nil {
		return "", fmt.Errorf("cluster-info: %w", err)
	}
	for _, c := range cfg.Clusters {
		if len(c.CertificateAuthorityData) > 0 {
			return caCertHash(c.CertificateAuthorityData)
		}
	}
	return "", fmt.Errorf("cluster-info has no CA certificate")
}

// deleteTokens deletes the bootstrap tokens with the description (this run's
// and any an interrupted one left); they are of no use once the hosts joined.
func deleteTokens(ctx context.Context, cs kubernetes.Interface, description string) ([]string, error) {
	list, err := cs.CoreV1().Secrets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{FieldSelector: "type=" + string(bootstrapapi.SecretTypeBootstrapToken)})
	if err != nil {
		return nil, err
	}
	var deleted []string
	for _, s := range list.Items {
		if string(s.Data[bootstrapapi.BootstrapTokenDescriptionKey]) != description {
			continue
		}
		if err := cs.CoreV1().Secrets(metav1.NamespaceSystem).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return deleted, err
		}
		deleted = append(deleted, string(s.Data[bootstrapapi.BootstrapTokenIDKey]))
	}
	return deleted, nil
}
