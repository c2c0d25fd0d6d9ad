package inspect

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/hacluster/hacluster/pkg/testbed"
)

// readmeClusterRole is the least-privilege ClusterRole the README documents.
func readmeClusterRole(t *testing.T) *rbacv1.ClusterRole {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "```yaml\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: hacluster-inspect")
	if i < 0 {
		t.Fatal("README: no hacluster-inspect ClusterRole")
	}
	s = s[i+len("```yaml\n"):]
	s = s[:strings.Index(s, "```")]
	var cr rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict([]byte(s), &cr); err != nil {
		t.Fatalf("README ClusterRole: %v", err)
	}
	return &cr
}

// asServiceAccount returns a client config for a new ServiceAccount bound to role.
func asServiceAccount(t *testing.T, bed *testbed.Bed, role *rbacv1.ClusterRole) *rest.Config {
	t.Helper()
	ctx := context.Background()
	cs := bed.Client
	ns := bed.Namespace(t)
	role = role.DeepCopy()
	role.Name = ns + "-" + role.Name
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sa, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "inspector"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: ns}}}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), crb.Name, metav1.DeleteOptions{})
		_ = cs.RbacV1().ClusterRoles().Delete(context.Background(), role.Name, metav1.DeleteOptions{})
	})
	tok, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(bed.Config)
	cfg.BearerToken = tok.Status.Token
	return cfg
}

// The documented ClusterRole is enough for a full report; without pods the
// report degrades to a note instead of failing.
func TestLeastPrivilegeTestbed(t *testing.T) {
	bed := testbed.Start(t, testbed.Options{})
	ctx := context.Background()
	if _, err := bed.ApplyHAShape(ctx, testbed.Shape{}); err != nil {
		t.Fatal(err)
	}
	role := readmeClusterRole(t)
	src, err := NewSource(asServiceAccount(t, bed, role))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Inspect(ctx, src, AnalyzeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Verdict != Healthy || slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "forbidden") }) {
		t.Errorf("with the README ClusterRole: verdict %s, findings %+v, notes %q", r.Verdict, nonOK(r), r.Notes)
	}
	if len(r.ControlPlane) != 12 || r.Etcd.Members != 3 {
		t.Errorf("with the README ClusterRole: %d control-plane rows, etcd %+v", len(r.ControlPlane), r.Etcd)
	}

	// Take pods away: a note, the control-plane section skipped, no crash.
	less := role.DeepCopy()
	less.Name += "-nopods"
	less.Rules[0].Resources = []string{"nodes", "services", "configmaps"}
	src, err = NewSource(asServiceAccount(t, bed, less))
	if err != nil {
		t.Fatal(err)
	}
	r, err = Inspect(ctx, src, AnalyzeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "cannot read pods: forbidden") }) || len(r.ControlPlane) != 0 {
		t.Errorf("without pods: notes %q, %d control-plane rows", r.Notes, len(r.ControlPlane))
	}
	if r.Stats.APIRequests < 10 || r.Stats.APIRequests > 20 {
		t.Errorf("%d API requests", r.Stats.APIRequests)
	}
}

// A bare API server (no kubeadm shape, as on a managed cluster whose control
// plane is invisible) gives notes, not a crash or made-up findings.
func TestManagedTestbed(t *testing.T) {
	bed := testbed.Start(t, testbed.Options{})
	src, err := NewSource(bed.Config)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Inspect(context.Background(), src, AnalyzeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Cluster.ManagedControlPlane || len(r.ControlPlane) != 0 || r.Etcd.Members != 0 {
		t.Errorf("managed: %+v, %d control-plane rows, etcd %+v", r.Cluster, len(r.ControlPlane), r.Etcd)
	}
	for _, want := range []string{"managed control plane", "no kube-system/kubeadm-config"} {
		if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, want) }) {
			t.Errorf("no note %q in %q", want, r.Notes)
		}
	}
	if hasFinding(r, "etcd.members", Error) || hasFinding(r, "leader.missing", Warning) || hasFinding(r, "endpoint.unset", Error) {
		t.Errorf("findings about what cannot be seen: %+v", nonOK(r))
	}
	if !hasFinding(r, "apiserver.readyz", OK) || r.Cluster.KubernetesVersion != bed.Version {
		t.Errorf("readyz/version not read: %+v %s", nonOK(r), r.Cluster.KubernetesVersion)
	}
}
