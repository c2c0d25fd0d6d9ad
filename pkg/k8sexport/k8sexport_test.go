package k8sexport

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/hacluster/hacluster/pkg/stack"
)

const config = "[mysql]\n  database = \"x\"\n  ip = \"127.0.0.1\"\n  password = \"12345678\"\n  port = 8806\n  user = \"root\"\n"

func testStack(t *testing.T) *stack.Stack {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o644)
	s, err := stack.Load("", stack.LoadOptions{Dir: dir, Override: func(s *stack.Stack) {
		s.Name = "shop"
		s.App.Env = map[string]string{"GREETING": "hi"}
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func decode[T any](t *testing.T, m Manifest) *T {
	t.Helper()
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "creationTimestamp") || strings.Contains("\n"+string(b), "\nstatus:") {
		t.Errorf("%s carries server-side fields:\n%s", m.File, b)
	}
	var v T
	if err := yaml.UnmarshalStrict(b, &v); err != nil {
		t.Fatalf("%s: %v\n%s", m.File, err, b)
	}
	return &v
}

func find(t *testing.T, ms []Manifest, file string) Manifest {
	t.Helper()
	for _, m := range ms {
		if m.File == file {
			return m
		}
	}
	t.Fatalf("no %s among %v", file, ms)
	return Manifest{}
}

func TestBuild(t *testing.T) {
	s := testStack(t)
	ms, err := Build(s, "app-pw", "root-pw", []byte(config), Options{ServiceType: corev1.ServiceTypeNodePort})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 6 {
		t.Fatalf("want 6 manifests, got %d", len(ms))
	}
	sec := decode[corev1.Secret](t, find(t, ms, "10-mysql-secret.yaml"))
	if string(sec.Data["mysql-password"]) != "app-pw" || string(sec.Data["mysql-root-password"]) != "root-pw" || !find(t, ms, "10-mysql-secret.yaml").Sensitive {
		t.Errorf("secret: %v", sec.Data)
	}
	svc := decode[corev1.Service](t, find(t, ms, "20-mysql-service.yaml"))
	if svc.Name != "shop-mysql" || svc.Spec.ClusterIP != corev1.ClusterIPNone || svc.Spec.Ports[0].Port != 3306 {
		t.Errorf("mysql service: %+v", svc.Spec)
	}
	sts := decode[appsv1.StatefulSet](t, find(t, ms, "21-mysql-statefulset.yaml"))
	if sts.Spec.ServiceName != "shop-mysql" || len(sts.Spec.VolumeClaimTemplates) != 1 || sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests.Storage().String() != "1Gi" {
		t.Errorf("statefulset: %+v", sts.Spec)
	}
	if c := sts.Spec.Template.Spec.Containers[0]; c.Image != stack.DefaultMySQLImage || c.ReadinessProbe == nil || c.LivenessProbe == nil {
		t.Errorf("mysql container: %+v", c)
	}
	// The rewritten config, password included, is a Secret; no ConfigMap at all.
	for _, m := range ms {
		if m.Kind == "ConfigMap" {
			t.Errorf("%s: a ConfigMap is exported", m.File)
		}
	}
	cs := decode[corev1.Secret](t, find(t, ms, ConfigSecretFile))
	got := string(cs.Data["config.toml"])
	if cs.Name != "shop-config" || !find(t, ms, ConfigSecretFile).Sensitive {
		t.Errorf("config secret %s not sensitive", cs.Name)
	}
	if !strings.Contains(got, `ip = "shop-mysql"`) || !strings.Contains(got, "port = 3306") || !strings.Contains(got, `password = "app-pw"`) ||
		!strings.Contains(got, `user = "app"`) || strings.Contains(got, "12345678") {
		t.Errorf("config secret config.toml:\n%s", got)
	}
	dep := decode[appsv1.Deployment](t, find(t, ms, "31-app-deployment.yaml"))
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	if c.Image != "shop-app:latest" || c.ReadinessProbe.HTTPGet.Path != "/healthz" || c.LivenessProbe == nil {
		t.Errorf("app container: %+v", c)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("app resources: %+v", c.Resources)
	}
	if pod.SecurityContext == nil || !*pod.SecurityContext.RunAsNonRoot || *pod.SecurityContext.RunAsUser == 0 || *c.SecurityContext.AllowPrivilegeEscalation {
		t.Errorf("app security context: %+v %+v", pod.SecurityContext, c.SecurityContext)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if env["DB_HOST"].Value != "shop-mysql" || env["GREETING"].Value != "hi" {
		t.Errorf("app env: %+v", c.Env)
	}
	if _, ok := env["DB_PASSWORD"]; ok {
		t.Errorf("DB_PASSWORD is set although the config carries the password: %+v", c.Env)
	}
	if m := c.VolumeMounts[0]; m.MountPath != "/config.toml" || m.SubPath != "config.toml" || !m.ReadOnly {
		t.Errorf("config mount: %+v", c.VolumeMounts)
	}
	if v := pod.Volumes[0]; v.Secret == nil || v.Secret.SecretName != "shop-config" || v.ConfigMap != nil {
		t.Errorf("config volume: %+v", v)
	}
	appSvc := decode[corev1.Service](t, find(t, ms, "32-app-service.yaml"))
	if appSvc.Spec.Type != corev1.ServiceTypeNodePort || appSvc.Spec.Ports[0].Port != 8080 {
		t.Errorf("app service: %+v", appSvc.Spec)
	}
	if notes := strings.Join(Explain(s, Options{ServiceType: corev1.ServiceTypeNodePort}), "\n"); !strings.Contains(notes, "NodePort") || !strings.Contains(notes, "headless") {
		t.Errorf("explanation: %s", notes)
	}
}

// TestBuildWithoutConfig: without a config file the app gets its password
// as compose-run gives it: the file DB_PASSWORD_FILE names, mounted from the
// MySQL Secret, and DB_PASSWORD only with passwordEnv.
func TestBuildWithoutConfig(t *testing.T) {
	s := testStack(t)
	s.App.Config = nil
	for _, passwordEnv := range []bool{false, true} {
		s.App.PasswordEnv = passwordEnv
		ms, err := Build(s, "app-pw", "root-pw", nil, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 5 {
			t.Fatalf("want 5 manifests, got %d", len(ms))
		}
		pod := decode[appsv1.Deployment](t, find(t, ms, "31-app-deployment.yaml")).Spec.Template.Spec
		c := pod.Containers[0]
		env := map[string]corev1.EnvVar{}
		for _, e := range c.Env {
			env[e.Name] = e
		}
		if env["DB_PASSWORD_FILE"].Value != stack.AppPasswordFile {
			t.Errorf("DB_PASSWORD_FILE: %+v", c.Env)
		}
		if e, ok := env["DB_PASSWORD"]; ok != passwordEnv || ok && e.ValueFrom.SecretKeyRef.Key != "mysql-password" {
			t.Errorf("passwordEnv=%v: DB_PASSWORD %+v", passwordEnv, e)
		}
		if m := c.VolumeMounts[0]; m.MountPath != "/run/k8sprep" || !m.ReadOnly {
			t.Errorf("password mount: %+v", c.VolumeMounts)
		}
		if v := pod.Volumes[0].Secret; v == nil || v.SecretName != "shop-mysql" || len(v.Items) != 1 || v.Items[0].Key != "mysql-password" || v.Items[0].Path != "db-password" {
			t.Errorf("password volume: %+v", pod.Volumes)
		}
	}
}

// TestWriteRemovesTheOldConfigMap: a folder exported by an earlier version
// loses its 30-app-configmap.yaml of the same stack; another one stays.
func TestWriteRemovesTheOldConfigMap(t *testing.T) {
	s := testStack(t)
	ms, err := Build(s, "a", "b", []byte(config), Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	old := filepath.Join(dir, "30-app-configmap.yaml")
	ours := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop-config\n  labels:\n    app.kubernetes.io/managed-by: docker-k8sprep\n    app.kubernetes.io/name: shop\n"
	os.WriteFile(old, []byte(strings.ReplaceAll(ours, "name: shop\n", "name: other\n")), 0o644)
	if _, err := Write(dir, ms, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); err != nil {
		t.Fatal("another stack's ConfigMap file was removed")
	}
	os.WriteFile(old, []byte(ours), 0o644)
	res, err := Write(dir, ms, false)
	if err != nil {
		t.Fatal(err)
	}
	if last := res[len(res)-1]; last.Action != "removed" || last.Kind != "ConfigMap" || last.Name != "shop-config" {
		t.Errorf("results: %+v", res)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Error("the old ConfigMap file is still there")
	}
}

func TestParseServiceType(t *testing.T) {
	for in, want := range map[string]corev1.ServiceType{"": "ClusterIP", "nodeport": "NodePort", "LoadBalancer": "LoadBalancer"} {
		if got, err := ParseServiceType(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	if _, err := ParseServiceType("Ingress"); err == nil {
		t.Error("Ingress accepted")
	}
}

func TestWriteNeverOverwritesWithoutForce(t *testing.T) {
	s := testStack(t)
	ms, err := Build(s, "a", "b", []byte(config), Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "k8s")
	res, err := Write(dir, ms, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		fi, err := os.Stat(r.Path)
		if err != nil || r.Action != "created" {
			t.Fatalf("%s: %v %s", r.Path, err, r.Action)
		}
		if want := os.FileMode(0o644); r.Sensitive && fi.Mode().Perm() != 0o600 || !r.Sensitive && fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v", r.File, fi.Mode())
		}
	}
	// Same content again: fine, nothing rewritten.
	if res, err = Write(dir, ms, false); err != nil || res[0].Action != "unchanged" {
		t.Fatalf("rewrite same content: %v %v", res, err)
	}
	// A file the user edited is not replaced without force, and nothing else is written.
	edited := filepath.Join(dir, "32-app-service.yaml")
	os.WriteFile(edited, []byte("# mine\n"), 0o644)
	os.Remove(filepath.Join(dir, "10-mysql-secret.yaml"))
	if _, err := Write(dir, ms, false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("want a --force error, got %v", err)
	}
	if b, _ := os.ReadFile(edited); string(b) != "# mine\n" {
		t.Error("edited file was overwritten")
	}
	if _, err := os.Stat(filepath.Join(dir, "10-mysql-secret.yaml")); !os.IsNotExist(err) {
		t.Error("a refused write still wrote other files")
	}
	if _, err := Write(dir, ms, true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(edited); string(b) == "# mine\n" {
		t.Error("--force did not replace the file")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestExplainNamesWhatIsNotExported(t *testing.T) {
	s := testStack(t)
	if n := NotExported(s); len(n) != 0 {
		t.Fatalf("plain stack: %v", n)
	}
	s.App.Command = []string{"/main", "-x"}
	s.App.Aliases = []string{"web"}
	s.MySQL.Aliases = []string{"db"}
	s.MySQL.InitScripts = []stack.FileCopy{{Source: "/x.sql", Target: "/docker-entrypoint-initdb.d/x.sql"}}
	got := strings.Join(Explain(s, Options{}), "\n")
	for _, want := range []string{"warning: not in these manifests yet", "app command", "network aliases web, db", "MySQL init scripts"} {
		if !strings.Contains(got, want) {
			t.Errorf("notes lack %q:\n%s", want, got)
		}
	}
}
