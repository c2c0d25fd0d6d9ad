package stack

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"

	"github.com/hacluster/hacluster/pkg/dockerfile"
)

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// appDir makes a folder with a Dockerfile and the article's config.toml.
func appDir(t *testing.T) string {
	dir := t.TempDir()
	write(t, dir, "Dockerfile", "FROM scratch\n")
	write(t, dir, "config.toml", articleConfig)
	return dir
}

func TestLoadK8sprepYAML(t *testing.T) {
	dir := appDir(t)
	p := write(t, dir, "k8sprep.yaml", `name: shop
app:
  ports: ["9000:8080"]
  env: {LOG_LEVEL: debug}
mysql:
  image: hacluster.local/mariadb:10.11
  database: shop
  user: shopper
  passwordFile: secrets/db-password
`)
	s, err := Load(p, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "shop" || s.App.Build != dir || s.App.Image != "shop-app:latest" || s.Network != "shop-net" || s.MySQL.Volume != "shop-mysql-data" {
		t.Errorf("defaults: %+v", s)
	}
	if len(s.App.Ports) != 1 || s.App.Ports[0] != (Port{9000, 8080}) {
		t.Errorf("ports: %v", s.App.Ports)
	}
	if s.App.Config == nil || s.App.Config.File != filepath.Join(dir, "config.toml") || s.App.Config.MountPath != "/config.toml" {
		t.Errorf("config.toml next to the Dockerfile is picked up: %+v", s.App.Config)
	}
	if s.MySQL.PasswordFile != filepath.Join(dir, "secrets/db-password") || s.MySQL.RootPasswordFile != filepath.Join(dir, ".k8sprep/shop/mysql-root-password") {
		t.Errorf("password files: %q %q", s.MySQL.PasswordFile, s.MySQL.RootPasswordFile)
	}
}

func TestLoadErrorsNameFileLineAndField(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"unknown field", "app:\n  ports: [\"8080:8080\"]\n  imgae: x\n", "k8sprep.yaml:3: unknown field imgae"},
		{"bad port", "app:\n  ports:\n    - \"8080:8080\"\n    - \"99999:80\"\n", "k8sprep.yaml:4: invalid port \"99999:80\""},
		{"duplicate host port", "app:\n  ports:\n    - \"8080:80\"\n    - \"8080:81\"\n", "k8sprep.yaml:4: app.ports[1]: host port 8080 is listed twice"},
		{"bad user", "mysql:\n  database: app\n  user: root\n", "k8sprep.yaml:3: mysql.user"},
		{"missing config key", "app:\n  config:\n    file: config.toml\n    hostKey: mysql.host\n", "k8sprep.yaml:4: app.config.hostKey: config.toml has no key \"mysql.host\""},
		{"syntax", "app: [\n", "k8sprep.yaml:"},
		{"bad name", "name: Bad_Name\n", "k8sprep.yaml:1: name:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := appDir(t)
			p := write(t, dir, "k8sprep.yaml", c.yaml)
			_, err := Load(p, LoadOptions{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want error containing %q, got %v", c.want, err)
			}
			if !strings.HasPrefix(err.Error(), p) {
				t.Errorf("error does not start with the file: %v", err)
			}
		})
	}
}

func TestLoadMissingDockerfile(t *testing.T) {
	dir := t.TempDir()
	_, err := Load("", LoadOptions{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "Dockerfile") {
		t.Fatalf("want a Dockerfile error, got %v", err)
	}
	// ps/logs/down only need the name.
	s, err := Load("", LoadOptions{Dir: dir, SkipCheck: true})
	if err != nil || s.Name != SanitizeName(filepath.Base(dir)) {
		t.Fatalf("SkipCheck: %v %v", s, err)
	}
}

func TestLoadCompose(t *testing.T) {
	dir := appDir(t)
	write(t, dir, "secrets/app-pw.txt", "s3cret\n")
	p := write(t, dir, "compose.yaml", `name: Article App
services:
  web:
    build: .
    ports: ["8080:8080"]
    environment:
      DB_HOST: 127.0.0.1
      GREETING: hi
    networks: [backend]
    x-k8sprep:
      healthPath: /ready
  db:
    image: hacluster.local/mariadb:10.11
    environment:
      MYSQL_DATABASE: shop
      MYSQL_USER: shopper
      MYSQL_PASSWORD_FILE: /run/secrets/db_password
    secrets:
      - source: db_password
    ports: ["8806:3306"]
    volumes:
      - dbdata:/var/lib/mysql
    networks: [backend]
networks:
  backend: {}
volumes:
  dbdata: {}
secrets:
  db_password:
    file: secrets/app-pw.txt
`)
	s, err := Load(p, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "articleapp" || s.MySQL.Image != "hacluster.local/mariadb:10.11" || s.MySQL.Database != "shop" || s.MySQL.User != "shopper" {
		t.Errorf("stack: %+v", s)
	}
	if s.MySQL.PasswordFile != filepath.Join(dir, "secrets/app-pw.txt") || s.MySQL.HostPort != 8806 {
		t.Errorf("mysql: %+v", s.MySQL)
	}
	if s.MySQL.Volume != "articleapp_dbdata" || s.Network != "articleapp_backend" {
		t.Errorf("volume %q network %q", s.MySQL.Volume, s.Network)
	}
	if s.App.HealthPath != "/ready" || s.App.Env["GREETING"] != "hi" || s.App.Env["DB_HOST"] != "" {
		t.Errorf("app: %+v", s.App)
	}
}

func TestLoadComposeErrors(t *testing.T) {
	dir := appDir(t)
	p := write(t, dir, "compose.yaml", "services:\n  web:\n    build: .\n")
	if _, err := Load(p, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "no MySQL service") {
		t.Fatalf("want a no-MySQL error, got %v", err)
	}
	write(t, dir, "compose.yaml", "services:\n  web:\n    build: .\n    portz: [1]\n  db:\n    image: mysql:8.4\n")
	if _, err := Load(p, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "portz") || !strings.HasPrefix(err.Error(), p) {
		t.Fatalf("want an error naming the file and field, got %v", err)
	}
}

// TestLoadComposeSchema: compose.yaml files are checked against the compose
// specification's JSON schema (compose-go's loader, with validation on), so
// files that would decode but break the schema are refused, naming the field.
func TestLoadComposeSchema(t *testing.T) {
	for _, c := range []struct{ name, yaml, want string }{
		{"unknown service key", "services:\n  web:\n    build: .\n    portz: [1]\n  db:\n    image: mysql:8.4\n", "portz"},
		{"ports not a list", "services:\n  web:\n    build: .\n    ports: {http: 8080}\n  db:\n    image: mysql:8.4\n", "ports"},
		{"unknown top-level key", "servicez: {}\nservices:\n  web:\n    build: .\n  db:\n    image: mysql:8.4\n", "servicez"},
		{"restart not a string", "services:\n  web:\n    build: .\n    restart: [always]\n  db:\n    image: mysql:8.4\n", "restart"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := write(t, appDir(t), "compose.yaml", c.yaml)
			_, err := Load(p, LoadOptions{})
			// "validating FILE: ..." is compose-go's schema check speaking.
			if err == nil || !strings.Contains(err.Error(), "validating "+p) || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), p) {
				t.Fatalf("want a schema error naming the file and %q, got %v", c.want, err)
			}
		})
	}
}

func TestEnsureSecrets(t *testing.T) {
	dir := appDir(t)
	s, err := Load("", LoadOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := s.EnsureSecrets()
	if err != nil {
		t.Fatal(err)
	}
	if len(sec.Generated) != 2 || len(sec.Password) < 20 || sec.Password == sec.RootPassword {
		t.Fatalf("generated: %+v", sec.Generated)
	}
	for _, f := range sec.Generated {
		fi, err := os.Stat(f)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", f, fi.Mode(), err)
		}
	}
	if fi, err := os.Stat(s.StateDir()); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode: %v %v", fi.Mode(), err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, ".k8sprep/.gitignore")); err != nil || !strings.Contains(string(b), "*") {
		t.Errorf(".gitignore: %q %v", b, err)
	}
	again, err := s.EnsureSecrets()
	if err != nil || again.Password != sec.Password || len(again.Generated) != 0 {
		t.Errorf("second read must reuse the files: %v", err)
	}
}

// contextCapture is an engine that keeps the build context it is sent.
type contextCapture struct {
	client.APIClient
	sent bytes.Buffer
}

func (c *contextCapture) ImageBuild(_ context.Context, r io.Reader, _ client.ImageBuildOptions) (client.ImageBuildResult, error) {
	_, err := io.Copy(&c.sent, r)
	return client.ImageBuildResult{Body: io.NopCloser(strings.NewReader(`{"aux":{"ID":"sha256:0123"}}`))}, err
}

func (c *contextCapture) ImageInspect(context.Context, string, ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	return client.ImageInspectResult{InspectResponse: image.InspectResponse{ID: "sha256:0123"}}, nil
}

func TestContextLeavesOutState(t *testing.T) {
	dir := appDir(t)
	write(t, dir, ".k8sprep/x/mysql-password", "secret")
	write(t, dir, ".dockerignore", "*.log\n")
	write(t, dir, "debug.log", "x")
	write(t, dir, "main.go", "package main")
	write(t, dir, "Dockerfile", "FROM scratch\n")
	engine := &contextCapture{}
	id, err := ClassicBuild(context.Background(), engine, BuildRequest{ContextDir: dir, Dockerfile: "Dockerfile", Tag: "app:test"})
	if err != nil || id != "sha256:0123" {
		t.Fatalf("build: %q, %v", id, err)
	}
	got := engine.sent.String()
	if strings.Contains(got, "mysql-password") || strings.Contains(got, "debug.log") {
		t.Error("the build context holds excluded files")
	}
	if !strings.Contains(got, "main.go") || !strings.Contains(got, "Dockerfile") {
		t.Error("the build context lacks main.go or Dockerfile")
	}
}

func TestComposeMapsAndRefuses(t *testing.T) {
	dir := appDir(t)
	write(t, dir, "api-key.txt", "k\n")
	write(t, dir, "initdb/01-schema.sql", "CREATE TABLE t (id INT);\n")
	write(t, dir, "initdb/README", "not a script\n")
	p := write(t, dir, "compose.yaml", `name: shop
services:
  web:
    build: {context: ., target: final}
    command: ["/main", "-listen", ":9000"]
    secrets: [api_key]
    healthcheck: {test: ["CMD", "/main", "-check"], interval: 2s, retries: 5}
  db:
    image: mysql:8.4
    volumes: ["./initdb:/docker-entrypoint-initdb.d:ro", "data:/var/lib/mysql"]
volumes: {data: {}}
secrets:
  api_key: {file: ./api-key.txt}
`)
	s, err := Load(p, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a := s.App
	if a.Target != "final" || strings.Join(a.Command, " ") != "/main -listen :9000" || len(a.Ports) != 0 {
		t.Errorf("app: target %q command %q ports %v", a.Target, a.Command, a.Ports)
	}
	if len(a.Aliases) != 1 || a.Aliases[0] != "web" || len(s.MySQL.Aliases) != 1 || s.MySQL.Aliases[0] != "db" {
		t.Errorf("aliases: %v %v", a.Aliases, s.MySQL.Aliases)
	}
	if len(a.Secrets) != 1 || a.Secrets[0].Target != "/run/secrets/api_key" || a.Secrets[0].Source != filepath.Join(dir, "api-key.txt") {
		t.Errorf("secrets: %+v", a.Secrets)
	}
	if h := a.Healthcheck; h == nil || strings.Join(h.Test, " ") != "CMD /main -check" || h.Interval.String() != "2s" || h.Retries != 5 {
		t.Errorf("healthcheck: %+v", a.Healthcheck)
	}
	if is := s.MySQL.InitScripts; len(is) != 1 || is[0].Target != "/docker-entrypoint-initdb.d/01-schema.sql" {
		t.Errorf("init scripts: %+v", is)
	}

	p = write(t, dir, "compose.yaml", `services:
  web:
    build: {context: ., args: {X: "1"}}
    user: "1000"
    volumes: ["./src:/src"]
    entrypoint: ["/bin/sh"]
  db:
    image: mysql:8.4
    command: ["--sql-mode="]
    volumes: ["./conf:/etc/mysql/conf.d"]
`)
	_, err = Load(p, LoadOptions{})
	if err == nil {
		t.Fatal("unsupported settings were accepted")
	}
	for _, want := range []string{"services.web.build.args", "services.web.user", "services.web.volumes", "services.web.entrypoint",
		"services.db.command", "services.db.volumes[0] (bind", "refuses them rather than drop them"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestConfigMountPathFromTheDockerfile: the rewritten config goes where the
// image has it: the Dockerfile `dockerfile init` writes for the sample app
// copies it to /app/config.toml, the sample app's own to /config.toml, a
// compose build target picks that stage; mountPath in the stack file wins.
func TestConfigMountPathFromTheDockerfile(t *testing.T) {
	p, err := dockerfile.Inspect(filepath.Join("..", "..", "examples", "goapp"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := dockerfile.Generate(p, dockerfile.GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sample, err := os.ReadFile(filepath.Join("..", "..", "examples", "goapp", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, dockerfile, stackFile, want string
	}{
		{"dockerfile init", g.Dockerfile, "", "/app/config.toml"},
		{"examples/goapp", string(sample), "", "/config.toml"},
		{"build target", string(sample), "app:\n  target: builder\n", "/app/config.toml"},
		{"not copied: the WORKDIR", "FROM scratch\nWORKDIR /srv\n", "", "/srv/config.toml"},
		{"mountPath given", g.Dockerfile, "app:\n  config:\n    file: config.toml\n    mountPath: /etc/app.toml\n", "/etc/app.toml"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "Dockerfile", c.dockerfile)
			write(t, dir, "config.toml", articleConfig)
			file := ""
			if c.stackFile != "" {
				file = write(t, dir, "k8sprep.yaml", "name: x\n"+c.stackFile)
			}
			s, err := Load(file, LoadOptions{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if got := s.App.Config.MountPath; got != c.want {
				t.Errorf("mountPath %s, want %s (%s)", got, c.want, s.App.Config.MountPathFrom)
			}
		})
	}
}
