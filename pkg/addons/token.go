package addons

import (
	"context"
	"fmt"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Token is a short-lived login token for a UI add-on.
type Token struct {
	Namespace      string    `json:"namespace"`
	ServiceAccount string    `json:"serviceAccount"`
	Token          string    `json:"token"`
	Expires        time.Time `json:"expirationTimestamp"`
}

// LoginToken asks the TokenRequest API for a token of the add-on's
// read-only ServiceAccount (the cluster-admin one with admin). Nothing is
// stored in the cluster: the token expires after d.
func (c *Cluster) LoginToken(ctx context.Context, a Addon, admin bool, d time.Duration) (*Token, error) {
	if a.UI == nil {
		return nil, fmt.Errorf("%s has no web UI to log in to (add-ons with one: headlamp, dashboard)", a.Name)
	}
	if d < 10*time.Minute {
		return nil, fmt.Errorf("--duration %s is too short: the API server accepts 10m or more", d)
	}
	sa := ViewerAccount(a.Name)
	if admin {
		sa = AdminAccount(a.Name)
	}
	secs := int64(d / time.Second)
	tr, err := c.Client.CoreV1().ServiceAccounts(a.UI.Namespace).CreateToken(ctx, sa,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &secs}}, metav1.CreateOptions{})
	if apierrors.IsNotFound(err) {
		if admin {
			return nil, fmt.Errorf("ServiceAccount %s/%s not found: install with `kubectl hacluster addons install %s --admin` first", a.UI.Namespace, sa, a.Name)
		}
		return nil, fmt.Errorf("ServiceAccount %s/%s not found: install %s with `kubectl hacluster addons install %s` first", a.UI.Namespace, sa, a.Name, a.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("token request for %s/%s: %w", a.UI.Namespace, sa, err)
	}
	return &Token{Namespace: a.UI.Namespace, ServiceAccount: sa, Token: tr.Status.Token, Expires: tr.Status.ExpirationTimestamp.Time}, nil
}
