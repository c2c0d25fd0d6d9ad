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
	cm := decode[corev1.ConfigMap](t, find(t, ms, "30-app-configmap.yaml"))
	got := cm.Data["config.toml"]
	if !strings.Contains(got, `ip = "shop-mysql"`) || !strings.Contains(got, "port = 3306") || !strings.Contains(got, `password = ""`) || strings.Contains(got, "12345678") {
		t.Errorf("configmap config.toml:\n%s", got)
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
	if env["DB_HOST"].Value != "shop-mysql" || env["DB_PASSWORD"].ValueFrom.SecretKeyRef.Name != "shop-mysql" || env["GREETING"].Value != "hi" {
		t.Errorf("app env: %+v", c.Env)
	}
	if c.VolumeMounts[0].MountPath != "/config.toml" || c.VolumeMounts[0].SubPath != "config.toml" {
		t.Errorf("config mount: %+v", c.VolumeMounts)
	}
	appSvc := decode[corev1.Service](t, find(t, ms, "32-app-service.yaml"))
	if appSvc.Spec.Type != corev1.ServiceTypeNodePort || appSvc.Spec.Ports[0].Port != 8080 {
		t.Errorf("app service: %+v", appSvc.Spec)
	}
	if notes := strings.Join(Explain(s, Options{ServiceType: corev1.ServiceTypeNodePort}), "\n"); !strings.Contains(notes, "NodePort") || !strings.Contains(notes, "headless") {
		t.Errorf("explanation: %s", notes)
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
