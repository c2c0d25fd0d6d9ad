package stack

import (
	"os"
	"path/filepath"
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
