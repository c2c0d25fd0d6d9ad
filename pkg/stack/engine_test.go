package stack

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/hacluster/hacluster/pkg/dockertest"
)

// These tests run stacks on the real engine with the local images
// (`make images`). Stacks are named i20-... and removed with Down; images
// built here carry the dockertest labels.

// appImage builds a tiny app image from the Debian image with cmd as its
// command.
func appImage(t *testing.T, env *dockertest.Env, cmd string) string {
	t.Helper()
	dir := t.TempDir()
	write(t, dir, "Dockerfile", "FROM "+dockertest.DebianImage+"\nCMD [\"sh\", \"-c\", "+quoteJSON(cmd)+"]\n")
	return env.Build(t, dockertest.BuildSpec{Dir: dir, Tag: env.Name("i20-img") + ":test"})
}

func quoteJSON(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func engineFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// testStack is a stack of an existing app image and the local MariaDB,
// removed (volumes too) when the test ends.
func testStack(t *testing.T, env *dockertest.Env, r *Runner, image string, ports []Port) *Stack {
	t.Helper()
	s := &Stack{Name: env.Name("i20"), App: App{Image: image, Ports: ports}, MySQL: MySQL{Image: dockertest.MariaDBImage}}
	s.Defaults(t.TempDir())
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := r.Down(context.Background(), s.Name, true); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	return s
}

func newRunner(t *testing.T, env *dockertest.Env) *Runner {
	return &Runner{API: env.Client, Timeout: 90 * time.Second, Stable: 2 * time.Second}
}

func requireImages(t *testing.T) *dockertest.Env {
	env := dockertest.New(t)
	env.RequireImage(t, dockertest.MariaDBImage)
	env.RequireImage(t, dockertest.DebianImage)
	return env
}

// TestUpFailsOnCrashLoop: an app that exits is a failure, with its log,
// whether it publishes a port or not; an app that keeps running without a
// port is ready once stable.
func TestUpFailsOnCrashLoop(t *testing.T) {
	env := requireImages(t)
	crash := appImage(t, env, "echo crash-marker-$$; sleep 0.3; exit 3")
	late := appImage(t, env, "echo late-crash; sleep 1; exit 4")
	for _, tc := range []struct {
		name  string
		image string
		ports []Port
		want  string
	}{
		{"crash, port published", crash, []Port{{Host: engineFreePort(t), Container: 8080}}, "crash-marker"},
		{"crash, no port", crash, []Port{}, "crash-marker"},
		{"exits after a second, no port", late, []Port{}, "late-crash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRunner(t, env)
			s := testStack(t, env, r, tc.image, tc.ports)
			start := time.Now()
			_, err := r.Up(context.Background(), s)
			if err == nil {
				t.Fatal("Up succeeded on an app that exits")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), s.AppContainer()) {
				t.Fatalf("error lacks the app's name or log tail:\n%v", err)
			}
			if strings.Contains(err.Error(), "exit code 0") {
				t.Errorf("an app that exits non-zero is reported with exit code 0:\n%v", err)
			}
			t.Logf("failed after %s: %v", time.Since(start).Round(time.Millisecond), firstLine(err))
			// Every rerun fails too.
			if _, err := r.Up(context.Background(), s); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("rerun on the crash-looping app: %v", err)
			}
		})
	}
	t.Run("running, no port", func(t *testing.T) {
		r := newRunner(t, env)
		s := testStack(t, env, r, appImage(t, env, "echo up; exec sleep 600"), []Port{})
		res, err := r.Up(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		for _, svc := range res.Services {
			if !strings.HasPrefix(svc.State, "running") {
				t.Errorf("%s: %s", svc.Service, svc.State)
			}
		}
	})
}

func firstLine(err error) string { return strings.SplitN(err.Error(), "\n", 2)[0] }

// containerID returns the ID and state of a container, "" when absent.
func containerID(t *testing.T, env *dockertest.Env, name string) (id string, running bool) {
	t.Helper()
	c, err := env.Client.ContainerInspect(context.Background(), name, client.ContainerInspectOptions{})
	if err != nil {
		return "", false
	}
	return c.Container.ID, c.Container.State != nil && c.Container.State.Running
}

// TestFailedRerunKeepsTheStack: reruns that fail, at the checks or after
// replacing containers, leave the containers that ran running, unchanged.
func TestFailedRerunKeepsTheStack(t *testing.T) {
	env := requireImages(t)
	good := appImage(t, env, "echo up; exec sleep 600")
	crash := appImage(t, env, "echo crash-marker; exit 3")
	r := newRunner(t, env)
	s := testStack(t, env, r, good, []Port{})
	if _, err := r.Up(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	appID, _ := containerID(t, env, s.AppContainer())
	dbID, _ := containerID(t, env, s.MySQLContainer())
	unchanged := func(t *testing.T) {
		t.Helper()
		for name, want := range map[string]string{s.AppContainer(): appID, s.MySQLContainer(): dbID} {
			if id, running := containerID(t, env, name); id != want || !running {
				t.Errorf("%s: id %.12s running %v, want the old %.12s running", name, id, running, want)
			}
			if id, _ := containerID(t, env, previousName(name)); id != "" {
				t.Errorf("%s is left behind", previousName(name))
			}
		}
	}
	rerun := func(t *testing.T, change func(*Stack), want string) {
		t.Helper()
		c := *s
		c.App.Env = map[string]string{}
		change(&c)
		start := time.Now()
		_, err := r.Up(context.Background(), &c)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("rerun: %v, want an error with %q", err, want)
		}
		t.Logf("refused in %s: %s", time.Since(start).Round(time.Millisecond), firstLine(err))
		unchanged(t)
	}
	t.Run("crashing app replaces nothing", func(t *testing.T) {
		rerun(t, func(c *Stack) { c.App.Image = crash; c.App.Env["X"] = "1" }, "crash-marker")
	})
	t.Run("new MySQL settings and a crashing app", func(t *testing.T) {
		// A fixed MySQL host port recreates MySQL; the app then fails: both go back.
		rerun(t, func(c *Stack) { c.App.Image = crash; c.MySQL.HostPort = engineFreePort(t) }, "crash-marker")
	})
	t.Run("other database", func(t *testing.T) {
		rerun(t, func(c *Stack) { c.MySQL.Database = "other" }, `holds database "app", not "other"`)
	})
	t.Run("password the data does not know", func(t *testing.T) {
		pw := filepath.Join(t.TempDir(), "pw")
		os.WriteFile(pw, []byte("not-the-password\n"), 0o600)
		rerun(t, func(c *Stack) { c.MySQL.PasswordFile = pw }, "refuses the new credentials")
	})
	t.Run("failed build", func(t *testing.T) {
		dir := t.TempDir()
		write(t, dir, "Dockerfile", "FROM "+dockertest.DebianImage+"\nRUN echo build-marker; false\n")
		rerun(t, func(c *Stack) {
			c.App.Build = dir
			c.App.Dockerfile = "Dockerfile"
			c.App.Image = env.Name("i20-bad") + ":test"
		}, "build-marker")
	})
	// And a good rerun still works afterwards.
	c := *s
	c.App.Env = map[string]string{"X": "2"}
	res, err := r.Up(context.Background(), &c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Services[1].Action != "recreated" || res.Services[0].Action != "unchanged" {
		t.Errorf("actions: %+v", res.Services)
	}
}

func TestBackoff(t *testing.T) {
	b := newBackoff()
	var got []time.Duration
	for range 7 {
		got = append(got, b.next())
	}
	want := []time.Duration{100, 200, 250, 250, 250, 250, 250}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("backoff: %v", got)
		}
	}
}

// TestWaitMySQLStopsOnPermanentErrors: MySQL on a volume initialised with
// another password or database refuses the app's user at once; the wait
// reports it without waiting for the timeout.
func TestWaitMySQLStopsOnPermanentErrors(t *testing.T) {
	env := requireImages(t)
	good := appImage(t, env, "exec sleep 600")
	r := newRunner(t, env)
	r.Timeout = 2 * time.Minute
	s := testStack(t, env, r, good, []Port{})
	if _, err := r.Up(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	// down keeps the volume: the next MySQL starts on the initialised data.
	for _, tc := range []struct {
		name   string
		change func(*Stack)
		want   string
	}{
		{"other password", func(c *Stack) {
			pw := filepath.Join(t.TempDir(), "pw")
			os.WriteFile(pw, []byte("not-the-password\n"), 0o600)
			c.MySQL.PasswordFile = pw
		}, "Access denied"},
		{"other database", func(c *Stack) { c.MySQL.Database = "other" }, "database other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := r.Down(context.Background(), s.Name, false); err != nil {
				t.Fatal(err)
			}
			c := *s
			tc.change(&c)
			start := time.Now()
			_, err := r.Up(context.Background(), &c)
			took := time.Since(start)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "waiting does not help") {
				t.Fatalf("Up: %v, want a permanent error with %q", err, tc.want)
			}
			t.Logf("failed after %s (timeout %s): %s", took.Round(time.Millisecond), r.Timeout, firstLine(err))
			if took > 45*time.Second {
				t.Errorf("took %s: the wait retried a permanent error", took)
			}
		})
	}
}

// readContainerFile reads one file out of a container.
func readContainerFile(t *testing.T, env *dockertest.Env, name, path string) string {
	t.Helper()
	res, err := env.Client.CopyFromContainer(context.Background(), name, client.CopyFromContainerOptions{SourcePath: path})
	if err != nil {
		t.Fatalf("reading %s from %s: %v", path, name, err)
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	if _, err := tr.Next(); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAppPasswordAsFile: without a config file the app gets its password
// as a file named by DB_PASSWORD_FILE, not in its environment; the sample
// app reads it and gets a query through.
func TestAppPasswordAsFile(t *testing.T) {
	env := requireImages(t)
	env.RequireImage(t, dockertest.GolangImage)
	r := newRunner(t, env)

	// The sample app, its baked-in config.toml left alone (no config file in the stack).
	dir := t.TempDir()
	src := filepath.Join("..", "..", "examples", "goapp")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			b, _ := os.ReadFile(filepath.Join(src, e.Name()))
			write(t, dir, e.Name(), string(b))
		}
	}
	port := engineFreePort(t)
	s := &Stack{Name: env.Name("i20"), App: App{Build: dir, Ports: []Port{{Host: port, Container: 8080}}}, MySQL: MySQL{Image: dockertest.MariaDBImage}}
	s.Defaults(dir)
	s.App.Config = nil
	t.Cleanup(func() {
		r.Down(context.Background(), s.Name, true)
		env.Client.ImageRemove(context.Background(), s.App.Image, client.ImageRemoveOptions{Force: true})
	})
	res, err := r.Up(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Notes) == 0 || !strings.Contains(res.Notes[0], "DB_PASSWORD_FILE") {
		t.Errorf("notes: %q", res.Notes)
	}
	pw, _ := os.ReadFile(s.MySQL.PasswordFile)
	insp, err := env.Client.ContainerInspect(context.Background(), s.AppContainer(), client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	envs := strings.Join(insp.Container.Config.Env, "\n")
	if strings.Contains(envs, strings.TrimSpace(string(pw))) || strings.Contains(envs, "DB_PASSWORD=") {
		t.Errorf("the password is in the app's environment:\n%s", envs)
	}
	if !strings.Contains(envs, "DB_PASSWORD_FILE="+AppPasswordFile) {
		t.Errorf("no DB_PASSWORD_FILE:\n%s", envs)
	}
	if got := readContainerFile(t, env, s.AppContainer(), AppPasswordFile); got != string(pw) {
		t.Errorf("%s in the app holds %q", AppPasswordFile, got)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/roundtrip", port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(strings.ReplaceAll(string(body), " ", ""), `"ok":true`) {
		t.Fatalf("roundtrip: %s %s", resp.Status, body)
	}

	// passwordEnv: also in DB_PASSWORD, with a warning.
	s.App.PasswordEnv = true
	res, err = r.Up(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Notes) < 2 || !strings.Contains(res.Notes[1], "docker inspect") {
		t.Errorf("no warning: %q", res.Notes)
	}
}

// TestStackFileOutOfBuildContext: the stack file and password files in the
// build folder never enter the image, and editing an environment variable
// in the stack file recreates the app from the same image (no rebuild).
func TestStackFileOutOfBuildContext(t *testing.T) {
	env := requireImages(t)
	r := newRunner(t, env)
	dir := t.TempDir()
	write(t, dir, "Dockerfile", "FROM "+dockertest.DebianImage+"\nCOPY . /ctx\nCMD [\"sleep\", \"600\"]\n")
	write(t, dir, "main.txt", "app source\n")
	write(t, dir, "db-password.txt", "in-context-secret\n")
	name := env.Name("i20")
	stackFile := func(greeting string) {
		write(t, dir, "k8sprep.yaml", fmt.Sprintf("name: %s\napp:\n  ports: []\n  env: {GREETING: %s}\nmysql:\n  image: %s\n  passwordFile: db-password.txt\n",
			name, greeting, dockertest.MariaDBImage))
	}
	stackFile("hi")
	load := func() *Stack {
		s, err := Load(filepath.Join(dir, "k8sprep.yaml"), LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := load()
	t.Cleanup(func() {
		r.Down(context.Background(), s.Name, true)
		env.Client.ImageRemove(context.Background(), s.App.Image, client.ImageRemoveOptions{Force: true})
	})
	imageOf := func() string {
		c, err := env.Client.ContainerInspect(context.Background(), s.AppContainer(), client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return c.Container.Image
	}
	if _, err := r.Up(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	first := imageOf()
	if got := readContainerFile(t, env, s.AppContainer(), "/ctx/main.txt"); got != "app source\n" {
		t.Fatalf("context: %q", got)
	}
	for _, f := range []string{"/ctx/k8sprep.yaml", "/ctx/db-password.txt", "/ctx/.k8sprep"} {
		if _, err := env.Client.CopyFromContainer(context.Background(), s.AppContainer(), client.CopyFromContainerOptions{SourcePath: f}); err == nil {
			t.Errorf("%s is in the image", f)
		}
	}
	stackFile("hello")
	s = load()
	res, err := r.Up(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if res.Services[1].Action != "recreated" {
		t.Errorf("app: %s, want recreated for the new env", res.Services[1].Action)
	}
	if second := imageOf(); second != first {
		t.Errorf("editing the stack file rebuilt the image: %.19s -> %.19s", first, second)
	}
}

// TestComposeSettingsOnTheEngine: service names as DNS names, file secrets,
// init scripts, build.target, command and the health check as readiness.
func TestComposeSettingsOnTheEngine(t *testing.T) {
	env := requireImages(t)
	r := newRunner(t, env)
	dir := t.TempDir()
	// The last stage fails: only build.target makes the build work.
	write(t, dir, "Dockerfile", "FROM "+dockertest.DebianImage+" AS final\nCMD [\"false\"]\nFROM final AS broken\nRUN false\n")
	write(t, dir, "api-key.txt", "secret-key-42\n")
	write(t, dir, "initdb/01-schema.sql", "CREATE TABLE seeded (id INT);\nINSERT INTO seeded VALUES (7);\n")
	name := env.Name("i20")
	// The command proves the names and the secret, then turns healthy after a second.
	cmd := `getent hosts db && getent hosts web && test "$(cat /run/secrets/api_key)" = secret-key-42 && sleep 1 && touch /tmp/ok && exec sleep 600`
	p := write(t, dir, "compose.yaml", fmt.Sprintf(`name: %s
services:
  web:
    build: {context: ., target: final}
    command: ["sh", "-c", %s]
    secrets: [api_key]
    healthcheck: {test: ["CMD", "test", "-f", "/tmp/ok"], interval: 1s, retries: 30}
  db:
    image: %s
    environment: {MYSQL_DATABASE: shop, MYSQL_USER: shopper}
    volumes: ["./initdb:/docker-entrypoint-initdb.d:ro", "data:/var/lib/mysql"]
volumes: {data: {}}
secrets:
  api_key: {file: ./api-key.txt}
`, name, quoteJSON(cmd), dockertest.MariaDBImage))
	s, err := Load(p, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Down(context.Background(), s.Name, true)
		env.Client.ImageRemove(context.Background(), s.App.Image, client.ImageRemoveOptions{Force: true})
	})
	res, err := r.Up(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	c, err := env.Client.ContainerInspect(context.Background(), s.AppContainer(), client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := c.Container.State.Health; h == nil || h.Status != "healthy" {
		t.Errorf("app health: %+v", h)
	}
	// The init script ran on the empty volume.
	pw, _ := os.ReadFile(s.MySQL.PasswordFile)
	db, err := openMySQL(s, res.Services[0].Published[0], strings.TrimSpace(string(pw)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var id int
	if err := db.QueryRow("SELECT id FROM seeded").Scan(&id); err != nil || id != 7 {
		t.Fatalf("seeded table: %d %v", id, err)
	}

	// A health check that never passes fails the run with its output.
	s2 := *s
	s2.App.Healthcheck = &Healthcheck{Test: []string{"CMD-SHELL", "echo probe-says-no; exit 1"}, Interval: time.Second, Retries: 2}
	_, err = r.Up(context.Background(), &s2)
	if err == nil || !strings.Contains(err.Error(), "unhealthy") || !strings.Contains(err.Error(), "probe-says-no") {
		t.Fatalf("unhealthy app: %v", err)
	}
}

// TestConfigMountedWhereTheImageReadsIt: in the layout `dockerfile init`
// writes (WORKDIR /app, COPY config.toml /app/config.toml, a non-root user)
// the rewritten copy goes to /app/config.toml, taken from the Dockerfile.
// The app reads ./config.toml and exits on the stale host baked into its
// image: mounted at /config.toml, as before, it crash-loops and Up fails.
func TestConfigMountedWhereTheImageReadsIt(t *testing.T) {
	env := requireImages(t)
	r := newRunner(t, env)
	dir := t.TempDir()
	write(t, dir, "config.toml", "[mysql]\n  database = \"d\"\n  ip = \"stale-host\"\n  password = \"baked-in\"\n  port = 1\n  user = \"u\"\n")
	write(t, dir, "Dockerfile", "FROM "+dockertest.DebianImage+"\nWORKDIR /app\nCOPY config.toml /app/config.toml\nUSER 65532:65532\n"+
		`CMD ["sh", "-c", "if grep -q stale-host config.toml; then echo the stale config.toml of the image; exit 3; fi; exec sleep 600"]`+"\n")
	s := &Stack{Name: env.Name("h20cfg"), App: App{Build: dir, Ports: []Port{}}, MySQL: MySQL{Image: dockertest.MariaDBImage}}
	s.Defaults(dir)
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Down(context.Background(), s.Name, true)
		env.Client.ImageRemove(context.Background(), s.App.Image, client.ImageRemoveOptions{Force: true})
	})
	if c := s.App.Config; c == nil || c.MountPath != "/app/config.toml" || !strings.Contains(c.MountPathFrom, "Dockerfile:3") {
		t.Fatalf("config: %+v", c)
	}
	start := time.Now()
	if _, err := r.Up(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	t.Logf("up in %s", time.Since(start).Round(100*time.Millisecond))
	pw, _ := os.ReadFile(s.MySQL.PasswordFile)
	got := readContainerFile(t, env, s.AppContainer(), "/app/config.toml")
	if !strings.Contains(got, fmt.Sprintf("ip = %q", s.MySQLContainer())) || !strings.Contains(got, fmt.Sprintf("password = %q", strings.TrimSpace(string(pw)))) {
		t.Errorf("/app/config.toml in the app is not the rewritten copy:\n%s", strings.ReplaceAll(got, strings.TrimSpace(string(pw)), "<password>"))
	}
}
