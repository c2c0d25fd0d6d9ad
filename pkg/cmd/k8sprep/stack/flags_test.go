package stack

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hacluster/hacluster/pkg/stack"
)

// loadWithFlags parses compose-run flags and loads the stack file in dir.
func loadWithFlags(t *testing.T, dir, file string, args ...string) (*stack.Stack, error) {
	t.Helper()
	o := &upOptions{}
	cmd := composeRunCmd(nil, o)
	if err := cmd.ParseFlags(args); err != nil {
		return nil, err
	}
	o.cmd = cmd
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.fromFile = file != ""
	return stack.Load(file, stack.LoadOptions{Dir: dir, Override: o.override})
}

func TestFlagsOverrideTheStackFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	file := filepath.Join(dir, "k8sprep.yaml")
	os.WriteFile(file, []byte("name: fromfile\napp:\n  ports: [\"9000:8080\"]\n  env: {A: file, B: file}\nmysql:\n  database: filedb\n"), 0o644)

	s, err := loadWithFlags(t, dir, file, "--name", "fromflag", "-p", "7000:8080", "-e", "B=flag", "--mysql-image", "hacluster.local/mariadb:10.11", "--mysql-port", "8806")
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "fromflag" || s.App.Ports[0] != (stack.Port{Host: 7000, Container: 8080}) || s.MySQL.Database != "filedb" || s.MySQL.HostPort != 8806 {
		t.Errorf("override: %+v", s)
	}
	if s.App.Env["A"] != "file" || s.App.Env["B"] != "flag" || s.MySQL.Image != "hacluster.local/mariadb:10.11" {
		t.Errorf("env/image: %v %s", s.App.Env, s.MySQL.Image)
	}
	if s.App.Build != dir {
		t.Errorf("a file's build stays when --image is given with a file: %q", s.App.Build)
	}

	// Flags only: --image alone runs that image, nothing is built.
	empty := t.TempDir()
	s, err = loadWithFlags(t, empty, "", "--image", "hacluster.local/debian:bookworm")
	if err != nil {
		t.Fatal(err)
	}
	if s.App.Build != "" || s.App.Image != "hacluster.local/debian:bookworm" || s.MySQL.Image != stack.DefaultMySQLImage {
		t.Errorf("flags only: %+v", s)
	}
}

func TestBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-p", "80:http"}, "--port"},
		{[]string{"-e", "NOVALUE"}, "--env"},
		{[]string{"--mysql-port", "70000"}, "--mysql-port"},
		{[]string{"-o", "xml"}, "unknown output format"},
	} {
		_, err := loadWithFlags(t, t.TempDir(), "", c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: want %q, got %v", c.args, c.want, err)
		}
	}
}

// TestSchemaInvalidComposeFile: compose-run (and export k8s, through the same
// stack.Load) refuse a compose.yaml that breaks the compose specification's
// schema, whatever the flags say.
func TestSchemaInvalidComposeFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	file := filepath.Join(dir, "compose.yaml")
	os.WriteFile(file, []byte("services:\n  web:\n    build: .\n    ports: {http: 8080}\n  db:\n    image: mysql:8.4\n"), 0o644)
	_, err := loadWithFlags(t, dir, file, "-p", "7000:8080")
	if err == nil || !strings.Contains(err.Error(), "validating "+file) || !strings.Contains(err.Error(), "services.web.ports must be a array") {
		t.Fatalf("want compose-go's schema error for services.web.ports, got %v", err)
	}
}

// TestExportTakesTheFlagsOfComposeRun: a stack started from flags alone is
// exported with the same settings; export's own flags override them, and
// export k8s of a stack compose-run never saw uses the defaults.
func TestExportTakesTheFlagsOfComposeRun(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY config.toml /etc/app/\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "config.toml"), []byte("[mysql]\n  ip = \"x\"\n  port = 1\n"), 0o644)
	t.Chdir(dir)
	o := &upOptions{}
	cmd := composeRunCmd(nil, o)
	if err := cmd.ParseFlags([]string{"--name", "shop", "--mysql-image", "hacluster.local/mariadb:10.11", "--database", "shopdb",
		"--db-user", "shopper", "-e", "GREETING=hi", "-e", "MODE=x", "-p", "9000:8000", "--health-path", "/ready"}); err != nil {
		t.Fatal(err)
	}
	o.cmd = cmd
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	run, err := stack.Load("", stack.LoadOptions{Override: o.override})
	if err != nil {
		t.Fatal(err)
	}
	// What compose-run keeps after a run from flags alone.
	flags := &stack.Stack{}
	o.override(flags)
	file, err := run.RememberFlags(flags)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v", file, fi, err)
	}

	export := func(args ...string) (*stack.Stack, string) {
		t.Helper()
		e := &exportOptions{}
		cmd := exportK8sCmd(nil, e)
		if err := cmd.ParseFlags(args); err != nil {
			t.Fatal(err)
		}
		if err := e.flags.validate(); err != nil {
			t.Fatal(err)
		}
		s, remembered, err := e.load()
		if err != nil {
			t.Fatal(err)
		}
		return s, remembered
	}
	got, remembered := export("--name", "shop")
	if remembered != file {
		t.Errorf("remembered %q, want %q", remembered, file)
	}
	if !reflect.DeepEqual(got.MySQL, run.MySQL) || got.App.Image != run.App.Image || got.App.HealthPath != "/ready" || got.App.Ports[0] != run.App.Ports[0] ||
		got.App.Env["GREETING"] != "hi" || got.App.Env["MODE"] != "x" || got.App.Config.MountPath != "/etc/app/config.toml" {
		t.Errorf("export:\n%+v\n%+v\ncompose-run:\n%+v\n%+v", got.App, got.MySQL, run.App, run.MySQL)
	}
	// Export's flags win over the remembered ones.
	got, _ = export("--name", "shop", "--database", "other", "-e", "MODE=y", "--mysql-image", "mysql:8.4")
	if got.MySQL.Database != "other" || got.MySQL.User != "shopper" || got.App.Env["MODE"] != "y" || got.App.Env["GREETING"] != "hi" || got.MySQL.Image != "mysql:8.4" {
		t.Errorf("export with flags: %+v %+v", got.App.Env, got.MySQL)
	}
	// Another stack name: nothing remembered, the defaults.
	got, remembered = export("--name", "other")
	if remembered != "" || got.MySQL.Image != stack.DefaultMySQLImage || got.MySQL.Database != "app" || len(got.App.Env) != 0 {
		t.Errorf("a stack without remembered flags: %q %+v", remembered, got.MySQL)
	}
	// A damaged file is an error that names it, not silently the defaults.
	os.WriteFile(file, []byte("mysql:\n  databse: x\n"), 0o600)
	e := &exportOptions{}
	c := exportK8sCmd(nil, e)
	c.ParseFlags([]string{"--name", "shop"})
	if _, _, err := e.load(); err == nil || !strings.Contains(err.Error(), file+":2") {
		t.Errorf("damaged flags file: %v", err)
	}
}
