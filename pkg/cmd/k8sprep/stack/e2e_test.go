package stack_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/hacluster/hacluster/pkg/dockertest"
	"github.com/hacluster/hacluster/pkg/k8sexport/replay"
	"github.com/hacluster/hacluster/pkg/stack"
)

// These tests drive the real docker CLI with the plugin installed in a
// temporary DOCKER_CONFIG, against the real engine and the local images
// (`make build images`; HACLUSTER_BIN=bin skips building the plugin here).

func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "examples", "goapp")); err == nil {
				return dir
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("repository root not found")
		}
		dir = parent
	}
}

// TestMain removes the plugin built for this test binary.
func TestMain(m *testing.M) {
	code := m.Run()
	if pluginPath != "" {
		os.RemoveAll(filepath.Dir(pluginPath))
	}
	os.Exit(code)
}

var (
	pluginOnce sync.Once
	pluginPath string
	pluginErr  error
)

// plugin returns the docker-k8sprep binary: $HACLUSTER_BIN/docker-k8sprep, or
// one built once for this test binary.
func plugin(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("HACLUSTER_BIN"); dir != "" {
		p := filepath.Join(dir, "docker-k8sprep")
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("HACLUSTER_BIN is set but %v (run `make build`)", err)
		}
		return p
	}
	pluginOnce.Do(func() {
		dir, err := os.MkdirTemp("", "k8sprep-plugin-")
		if err != nil {
			pluginErr = err
			return
		}
		pluginPath = filepath.Join(dir, "docker-k8sprep")
		cmd := exec.Command("go", "build", "-o", pluginPath, "./cmd/docker-k8sprep")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			pluginErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if pluginErr != nil {
		t.Fatal(pluginErr)
	}
	return pluginPath
}

// cli runs `docker k8sprep ...` in a folder with the plugin installed.
type cli struct {
	t         testing.TB
	dir       string
	dockerCfg string
}

func newCLI(t testing.TB, dir string) *cli {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatalf("the docker CLI is needed: %v", err)
	}
	cfg := t.TempDir()
	plugins := filepath.Join(cfg, "cli-plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(plugin(t), filepath.Join(plugins, "docker-k8sprep")); err != nil {
		t.Fatal(err)
	}
	return &cli{t: t, dir: dir, dockerCfg: cfg}
}

func (c *cli) run(args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", append([]string{"k8sprep"}, args...)...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+c.dockerCfg, "NO_COLOR=1")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func (c *cli) ok(args ...string) (string, string) {
	c.t.Helper()
	start := time.Now()
	o, e, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("docker k8sprep %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, o, e)
	}
	c.t.Logf("docker k8sprep %s: %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	return o, e
}

func (c *cli) fails(want string, args ...string) string {
	c.t.Helper()
	o, e, err := c.run(args...)
	if err == nil {
		c.t.Fatalf("docker k8sprep %s succeeded, want an error containing %q\n%s", strings.Join(args, " "), want, o)
	}
	if !strings.Contains(e, want) {
		c.t.Fatalf("docker k8sprep %s: stderr lacks %q:\n%s", strings.Join(args, " "), want, e)
	}
	return e
}

// testDockerignore keeps the per-test files out of the build context, so that
// every test's context is the same and the builder's layer cache serves all
// but the first build.
const testDockerignore = "k8sprep.yaml\ncompose.yaml\ndb-password.txt\n"

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func actions(t testing.TB, out string) (res stack.Result, byService map[string]string) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("compose-run -o json: %v\n%s", err, out)
	}
	byService = map[string]string{}
	for _, s := range res.Services {
		byService[s.Service] = s.Action
	}
	return res, byService
}

func volumeExists(t testing.TB, api client.APIClient, name string) bool {
	_, err := api.VolumeInspect(context.Background(), name, client.VolumeInspectOptions{})
	return err == nil
}

func TestComposeRunE2E(t *testing.T) {
	env := dockertest.New(t)
	env.RequireImage(t, dockertest.MariaDBImage)
	env.RequireImage(t, dockertest.GolangImage)
	dir := dockertest.CopyGoApp(t)
	name := env.Name("k8e")
	appPort := freePort(t)
	stackFile := fmt.Sprintf(`name: %s
app:
  ports: ["%d:8080"]
mysql:
  image: %s
  database: shop
  user: shopper
`, name, appPort, dockertest.MariaDBImage)
	if err := os.WriteFile(filepath.Join(dir, "k8sprep.yaml"), []byte(stackFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte(testDockerignore), 0o644); err != nil {
		t.Fatal(err)
	}
	userConfig, _ := os.ReadFile(filepath.Join(dir, "config.toml"))
	c := newCLI(t, dir)
	t.Cleanup(func() {
		c.run("down", "--volumes")
		env.Client.ImageRemove(context.Background(), name+"-app:latest", client.ImageRemoveOptions{Force: true})
	})

	// First run: everything is created.
	out, errOut := c.ok("compose-run", "-o", "json")
	res, act := actions(t, out)
	if act["mysql"] != "created" || act["app"] != "created" {
		t.Fatalf("first run actions: %v", act)
	}
	if len(res.Generated) != 2 {
		t.Errorf("generated password files: %v", res.Generated)
	}
	for _, f := range res.Generated {
		fi, err := os.Stat(f)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, fi.Mode(), err)
		}
		pw, _ := os.ReadFile(f)
		if p := strings.TrimSpace(string(pw)); strings.Contains(out, p) || strings.Contains(errOut, p) {
			t.Errorf("a password from %s was printed", f)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "config.toml")); !bytes.Equal(b, userConfig) {
		t.Error("the user's config.toml was modified")
	}
	url := ""
	for _, s := range res.Services {
		if s.Service == "app" {
			url = s.URL
		}
	}
	if url != fmt.Sprintf("http://0.0.0.0:%d", appPort) && !strings.HasSuffix(url, fmt.Sprintf(":%d", appPort)) {
		t.Fatalf("app URL %q does not use port %d", url, appPort)
	}
	rt := dockertest.GetRoundtrip(t, url)
	if !rt.OK || rt.Rows != 1 {
		t.Fatalf("first roundtrip: %+v", rt)
	}
	// The app container gets no password in its environment.
	insp, err := env.Client.ContainerInspect(context.Background(), name+"-app", client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range insp.Container.Config.Env {
		if strings.HasPrefix(e, "DB_PASSWORD=") || strings.HasPrefix(e, "MYSQL_PASSWORD=") {
			t.Errorf("password in the app's environment: %s", strings.SplitN(e, "=", 2)[0])
		}
	}

	// Same description: nothing is recreated.
	out, _ = c.ok("compose-run", "-o", "json")
	if _, act = actions(t, out); act["mysql"] != "unchanged" || act["app"] != "unchanged" {
		t.Fatalf("rerun actions: %v", act)
	}
	// A changed env recreates only the app; the data is still there.
	out, _ = c.ok("compose-run", "-o", "json", "-e", "GREETING=hello")
	if _, act = actions(t, out); act["mysql"] != "unchanged" || act["app"] != "recreated" {
		t.Fatalf("env change actions: %v", act)
	}
	if rt = dockertest.GetRoundtrip(t, url); rt.Rows != 2 {
		t.Fatalf("after the app was recreated: %+v", rt)
	}
	// A restarted app finds the data.
	if _, err := env.Client.ContainerRestart(context.Background(), name+"-app", client.ContainerRestartOptions{}); err != nil {
		t.Fatal(err)
	}
	if rt = dockertest.GetRoundtrip(t, url); rt.Rows != 3 {
		t.Fatalf("after a restart: %+v", rt)
	}

	// ps and logs by stack label.
	out, _ = c.ok("ps", "-o", "json")
	var svcs []stack.Service
	if err := json.Unmarshal([]byte(out), &svcs); err != nil || len(svcs) != 2 {
		t.Fatalf("ps: %v %s", err, out)
	}
	for _, s := range svcs {
		if s.Stack != name || !strings.HasPrefix(s.State, "running") {
			t.Errorf("ps: %+v", s)
		}
	}
	out, _ = c.ok("ps")
	if !strings.Contains(out, "SERVICE") || !strings.Contains(out, name+"-mysql") {
		t.Errorf("ps table:\n%s", out)
	}
	// The app logs to stderr, which logs keeps on stderr as `docker logs` does.
	out, errOut = c.ok("logs", "app")
	if !strings.Contains(errOut, "listening on") {
		t.Errorf("logs app:\nstdout:\n%s\nstderr:\n%s", out, errOut)
	}
	out, errOut = c.ok("logs", "--tail", "50")
	if !strings.Contains(out+errOut, "app | ") || !strings.Contains(out+errOut, "mysql | ") {
		t.Errorf("logs of both services are not prefixed:\n%s%s", out, errOut)
	}

	// export k8s: the same credentials as the running stack, refused overwrite, --force.
	k8sDir := filepath.Join(t.TempDir(), "k8s")
	out, _ = c.ok("export", "k8s", "-o", k8sDir, "--service-type", "NodePort", "--format", "json")
	var rep struct {
		ServiceType string `json:"serviceType"`
		Files       []struct {
			File   string `json:"file"`
			Action string `json:"action"`
		} `json:"files"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Files) != 6 || rep.ServiceType != "NodePort" {
		t.Fatalf("export: %v %s", err, out)
	}
	secret, _ := os.ReadFile(filepath.Join(k8sDir, "10-mysql-secret.yaml"))
	pw, _ := os.ReadFile(filepath.Join(dir, ".k8sprep", name, "mysql-password"))
	if !strings.Contains(string(secret), base64.StdEncoding.EncodeToString(bytes.TrimSpace(pw))) {
		t.Error("the exported Secret does not carry the stack's password")
	}
	c.fails("--force", "export", "k8s", "-o", k8sDir, "--service-type", "LoadBalancer")
	c.ok("export", "k8s", "-o", k8sDir, "--service-type", "LoadBalancer", "--force")

	// down keeps the volume; the next run finds the data.
	c.ok("down")
	if !volumeExists(t, env.Client, name+"-mysql-data") {
		t.Fatal("down removed the data volume")
	}
	if out, _ = c.ok("ps", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("containers left after down: %s", out)
	}
	out, _ = c.ok("compose-run", "-o", "json")
	if _, act = actions(t, out); act["mysql"] != "created" || act["app"] != "created" {
		t.Fatalf("run after down: %v", act)
	}
	if rt = dockertest.GetRoundtrip(t, url); rt.Rows != 4 {
		t.Fatalf("after down and up: %+v", rt)
	}
	// down --volumes removes it.
	out, _ = c.ok("down", "--volumes")
	if volumeExists(t, env.Client, name+"-mysql-data") {
		t.Fatal("down --volumes kept the data volume")
	}
	if !strings.Contains(out, "removed volume "+name+"-mysql-data") {
		t.Errorf("down --volumes output:\n%s", out)
	}
}

func TestComposeRunRefusesBadInput(t *testing.T) {
	env := dockertest.New(t)
	env.RequireImage(t, dockertest.MariaDBImage)
	env.RequireImage(t, dockertest.DebianImage)
	dir := dockertest.CopyGoApp(t)
	c := newCLI(t, dir)
	// The app is a plain image here: these runs never get as far as the app.
	base := []string{"compose-run", "--image", dockertest.DebianImage, "--mysql-image", dockertest.MariaDBImage}

	t.Run("bad stack file", func(t *testing.T) {
		p := filepath.Join(dir, "bad.k8sprep.yaml")
		os.WriteFile(p, []byte("name: x\napp:\n  prots: [\"8080:8080\"]\n"), 0o644)
		c.fails(p+":3: unknown field prots", "compose-run", "-f", p)
	})

	t.Run("name collision", func(t *testing.T) {
		name := env.Name("k8c")
		foreign := env.Run(t, dockertest.RunSpec{Image: dockertest.DebianImage, Name: name + "-mysql", Cmd: []string{"true"}, NoStart: true})
		c.fails("was not created by stack", append(base, "--name", name, "--port", fmt.Sprintf("%d:8080", freePort(t)))...)
		if _, err := env.Client.ContainerInspect(context.Background(), foreign.ID, client.ContainerInspectOptions{}); err != nil {
			t.Fatalf("the foreign container is gone: %v", err)
		}
		c.ok("down", "--name", name)
		if _, err := env.Client.ContainerInspect(context.Background(), foreign.ID, client.ContainerInspectOptions{}); err != nil {
			t.Fatalf("down removed a container the stack does not own: %v", err)
		}
	})

	t.Run("taken host port", func(t *testing.T) {
		l, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		port := l.Addr().(*net.TCPAddr).Port
		name := env.Name("k8p")
		c.fails(fmt.Sprintf("host port %d is already in use", port), append(base, "--name", name, "--port", fmt.Sprintf("%d:8080", port))...)
		out, _ := c.ok("ps", "--name", name, "-o", "json")
		if strings.TrimSpace(out) != "[]" {
			t.Errorf("a refused run left containers: %s", out)
		}
	})

	t.Run("crash-looping app without ports", func(t *testing.T) {
		name := env.Name("i20-crash")
		t.Cleanup(func() { c.run("down", "--volumes", "--name", name) })
		img := t.TempDir()
		os.WriteFile(filepath.Join(img, "Dockerfile"), []byte("FROM "+dockertest.DebianImage+"\nCMD [\"sh\", \"-c\", \"echo crash-marker; exit 3\"]\n"), 0o644)
		tag := env.Build(t, dockertest.BuildSpec{Dir: img, Tag: name + "-img:test"})
		p := filepath.Join(dir, "crash.compose.yaml")
		os.WriteFile(p, []byte(fmt.Sprintf("name: %s\nservices:\n  worker:\n    image: %s\n  db:\n    image: %s\n", name, tag, dockertest.MariaDBImage)), 0o644)
		e := c.fails("keeps exiting", "compose-run", "-f", p, "--timeout", "60s")
		if !strings.Contains(e, "crash-marker") || !strings.Contains(e, name+"-app") {
			t.Errorf("the error lacks the app's name or log tail:\n%s", e)
		}
	})

	t.Run("MySQL never ready", func(t *testing.T) {
		name := env.Name("k8m")
		t.Cleanup(func() { c.run("down", "--volumes", "--name", name) })
		// A Debian image in place of MySQL: it exits at once.
		args := []string{"compose-run", "--image", dockertest.DebianImage, "--mysql-image", dockertest.DebianImage,
			"--name", name, "--port", fmt.Sprintf("%d:8080", freePort(t)), "--timeout", "30s"}
		e := c.fails("last lines of its log", args...)
		if !strings.Contains(e, name+"-mysql") {
			t.Errorf("the error does not name the MySQL container:\n%s", e)
		}
	})
}

// TestComposeFileE2E runs the same app from a compose.yaml: the password
// comes from the compose secret file and MySQL must accept it.
func TestComposeFileE2E(t *testing.T) {
	env := dockertest.New(t)
	env.RequireImage(t, dockertest.MariaDBImage)
	env.RequireImage(t, dockertest.GolangImage)
	dir := dockertest.CopyGoApp(t)
	name := env.Name("k8f")
	port := freePort(t)
	compose := fmt.Sprintf(`name: %s
services:
  web:
    build: .
    ports: ["%d:8080"]
    environment:
      GREETING: from-compose
    x-k8sprep:
      healthPath: /healthz
  db:
    image: %s
    environment:
      MYSQL_DATABASE: shop
      MYSQL_USER: shopper
    secrets: [db_password]
    volumes: [dbdata:/var/lib/mysql]
volumes:
  dbdata: {}
secrets:
  db_password:
    file: ./db-password.txt
`, name, port, dockertest.MariaDBImage)
	os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(compose), 0o644)
	os.WriteFile(filepath.Join(dir, "db-password.txt"), []byte("compose-secret-pw\n"), 0o600)
	os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte(testDockerignore), 0o644)
	c := newCLI(t, dir)
	t.Cleanup(func() {
		c.run("down", "--volumes")
		env.Client.ImageRemove(context.Background(), name+"-app:latest", client.ImageRemoveOptions{Force: true})
	})
	out, errOut := c.ok("compose-run", "-o", "json")
	if strings.Contains(out+errOut, "compose-secret-pw") {
		t.Error("the password was printed")
	}
	res, act := actions(t, out)
	if act["app"] != "created" || act["mysql"] != "created" || res.Volume != name+"_dbdata" {
		t.Fatalf("compose run: %+v", res)
	}
	for _, g := range res.Generated {
		if strings.HasSuffix(g, "mysql-password") {
			t.Errorf("generated %s although compose.yaml gives a password file", g)
		}
	}
	if rt := dockertest.GetRoundtrip(t, fmt.Sprintf("http://127.0.0.1:%d", port)); !rt.OK {
		t.Fatalf("roundtrip: %+v", rt)
	}
	insp, err := env.Client.ContainerInspect(context.Background(), name+"-app", client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(insp.Container.Config.Env, " "), "GREETING=from-compose") {
		t.Errorf("app env: %v", insp.Container.Config.Env)
	}
}

// TestExportTakesTheFlagsOfComposeRunE2E: the article's way, compose-run
// from flags alone (--mysql-image, --database, -e); export k8s without flags
// then writes the same settings, and the exported objects replayed on the
// engine (pkg/k8sexport/replay) get a query through the app.
func TestExportTakesTheFlagsOfComposeRunE2E(t *testing.T) {
	env := dockertest.New(t)
	env.RequireImage(t, dockertest.MariaDBImage)
	env.RequireImage(t, dockertest.GolangImage)
	dir := dockertest.CopyGoApp(t)
	os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte(testDockerignore), 0o644)
	name := env.Name("h20flags")
	c := newCLI(t, dir)
	t.Cleanup(func() {
		c.run("down", "--volumes", "--name", name)
		env.Client.ImageRemove(context.Background(), name+"-app:latest", client.ImageRemoveOptions{Force: true})
	})
	port := freePort(t)
	c.ok("compose-run", "--name", name, "--mysql-image", dockertest.MariaDBImage, "--database", "shop", "-e", "GREETING=from-flags",
		"--port", fmt.Sprintf("%d:8080", port), "-q")
	if rt := dockertest.GetRoundtrip(t, fmt.Sprintf("http://127.0.0.1:%d", port)); !rt.OK {
		t.Fatalf("compose-run roundtrip: %+v", rt)
	}
	c.ok("down", "--volumes", "--name", name) // the replay below runs its own MySQL

	k8sDir := filepath.Join(t.TempDir(), "k8s")
	out, _ := c.ok("export", "k8s", "--name", name, "-o", k8sDir, "--format", "json")
	var rep struct {
		Notes []string `json:"notes"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Notes) == 0 || !strings.Contains(rep.Notes[0], "flags of the last compose-run") {
		t.Fatalf("export notes: %v %s", err, out)
	}
	objs, err := replay.Load(k8sDir)
	if err != nil {
		t.Fatal(err)
	}
	sts, err := objs.Workload("StatefulSet", name+"-mysql")
	if err != nil {
		t.Fatal(err)
	}
	dep, err := objs.Workload("Deployment", name+"-app")
	if err != nil {
		t.Fatal(err)
	}
	envOf := func(w *replay.Workload) map[string]string {
		m := map[string]string{}
		for _, e := range w.Template.Spec.Containers[0].Env {
			m[e.Name] = e.Value
		}
		return m
	}
	if img := sts.Template.Spec.Containers[0].Image; img != dockertest.MariaDBImage || envOf(sts)["MYSQL_DATABASE"] != "shop" {
		t.Errorf("MySQL: %s %v", img, envOf(sts))
	}
	if e := envOf(dep); e["GREETING"] != "from-flags" || e["DB_NAME"] != "shop" {
		t.Errorf("app env: %v", e)
	}
	// The flags given to export win.
	other := filepath.Join(t.TempDir(), "k8s")
	c.ok("export", "k8s", "--name", name, "-o", other, "-e", "GREETING=from-export")
	if b, _ := os.ReadFile(filepath.Join(other, "31-app-deployment.yaml")); !strings.Contains(string(b), "from-export") {
		t.Errorf("export -e did not override:\n%s", b)
	}

	netName := env.Network(t, "h20-flags")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	db := objs.Start(t, env, sts, netName, "h20")
	app := objs.Start(t, env, dep, netName, "h20")
	for _, p := range []*replay.Pod{db, app} {
		if err := p.WaitReady(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	if rt := dockertest.GetRoundtrip(t, "http://"+app.Ports["http"]); !rt.OK || rt.Rows != 1 {
		t.Fatalf("roundtrip through the exported app: %+v", rt)
	}
}
