package build_test

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/hacluster/hacluster/pkg/dockertest"
)

// plugin returns the docker-k8sprep binary: $HACLUSTER_BIN/docker-k8sprep
// (make test) or one built for this test.
func plugin(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("HACLUSTER_BIN"); dir != "" {
		p := filepath.Join(dir, "docker-k8sprep")
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("HACLUSTER_BIN is set but %v", err)
		}
		return p
	}
	p := filepath.Join(t.TempDir(), "docker-k8sprep")
	out, err := exec.Command("go", "build", "-o", p, "github.com/hacluster/hacluster/cmd/docker-k8sprep").CombinedOutput()
	if err != nil {
		t.Fatalf("go build docker-k8sprep: %v\n%s", err, out)
	}
	return p
}

func copyDir(t *testing.T, src, dst string, skip ...string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		for _, s := range skip {
			if rel == s {
				return nil
			}
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, bin string, args ...string) (string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String()
}

// TestInitBuildRunGoapp is the end-to-end check: `dockerfile init` on
// a copy of examples/goapp, `build` with the local Go builder image on the
// real engine, then the image runs next to MariaDB and answers /healthz.
func TestInitBuildRunGoapp(t *testing.T) {
	env := dockertest.New(t)
	env.RequireImage(t, dockertest.GolangImage)
	env.RequireImage(t, dockertest.MariaDBImage)
	bin := plugin(t)

	dir := t.TempDir()
	copyDir(t, "../../../../examples/goapp", dir, "Dockerfile")
	stdout, _ := run(t, bin, "dockerfile", "init", dir, "--builder-image", dockertest.GolangImage, "--buildkit=false", "-o", "json")
	var ini struct {
		Binary, BuilderImage, Base string
		Port                       int
		Files                      []struct{ Path string }
	}
	if err := json.Unmarshal([]byte(stdout), &ini); err != nil {
		t.Fatalf("init -o json: %v\n%s", err, stdout)
	}
	if ini.Binary != "goapp" || ini.BuilderImage != dockertest.GolangImage || ini.Base != "scratch" || ini.Port != 8080 || len(ini.Files) != 2 {
		t.Fatalf("init result: %+v", ini)
	}
	run(t, bin, "dockerfile", "lint", filepath.Join(dir, "Dockerfile"), "--failure-threshold", "style")

	tag := env.Name("k8sprep-goapp") + ":e2e"
	args := []string{"build", dir, "-t", tag, "-o", "json", "--progress", "quiet"}
	for k, v := range env.Labels() {
		args = append(args, "--label", k+"="+v)
	}
	start := time.Now()
	stdout, _ = run(t, bin, args...)
	var res struct {
		ImageID string
		Size    int64
		Layers  int
		Context struct{ Files int }
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("build -o json: %v\n%s", err, stdout)
	}
	t.Logf("image %s: %d bytes, %d layers, built in %s", tag, res.Size, res.Layers, time.Since(start).Round(time.Second))
	if res.Size <= 0 || res.Size > 15*1000*1000 {
		t.Errorf("image size %d bytes, want <= 15 MB", res.Size)
	}
	if res.Layers < 3 || res.Layers > 8 {
		t.Errorf("layers = %d", res.Layers)
	}

	netName := env.Network(t, "goapp")
	dbName := env.Name("mymysql")
	env.Run(t, dockertest.RunSpec{
		Image: dockertest.MariaDBImage, Name: dbName, Network: netName,
		Env: []string{"MYSQL_ROOT_PASSWORD=12345678", "MYSQL_DATABASE=PersonalizedRecommendationSystem"},
	})
	app := env.Run(t, dockertest.RunSpec{
		Image: tag, Network: netName, Publish: []string{"8080/tcp"},
		Env: []string{"DB_HOST=" + dbName, "TZ=Europe/Berlin"},
	})
	addr := app.HostAddr(t, "8080/tcp")
	deadline := time.Now().Add(90 * time.Second)
	var body string
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			logs, _ := app.Logs(context.Background())
			t.Fatalf("/healthz not OK after 90s (last: %v %q)\napp logs:\n%s", err, body, logs)
		}
		time.Sleep(time.Second)
	}
	if !strings.Contains(body, `"ok"`) {
		t.Errorf("/healthz = %s", body)
	}
	// CA bundle, time zone data and config are in the scratch image.
	for _, f := range []string{"/etc/ssl/certs/ca-certificates.crt", "/usr/share/zoneinfo.zip", "/app/config.toml", "/app/goapp"} {
		st, err := env.Client.ContainerStatPath(context.Background(), app.ID, client.ContainerStatPathOptions{Path: f})
		if err != nil || st.Stat.Size == 0 {
			t.Errorf("%s in the image: %v (size %d)", f, err, st.Stat.Size)
		}
	}
	// The scratch image runs as the numeric non-root user.
	ins, err := env.Client.ImageInspect(context.Background(), tag)
	if err != nil {
		t.Fatal(err)
	}
	if ins.Config.User != "65532:65532" || len(ins.Config.Entrypoint) != 1 || ins.Config.Entrypoint[0] != "/app/goapp" {
		t.Errorf("image config: user %q entrypoint %q", ins.Config.User, ins.Config.Entrypoint)
	}
}

// TestBuildStopsOnLintErrors: an error-level finding stops the build before
// anything reaches the engine, unless --no-lint.
func TestBuildStopsOnLintErrors(t *testing.T) {
	env := dockertest.New(t)
	bin := plugin(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY app /app\nUSER 65532\nENTRYPOINT /app\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte(".git\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tag := env.Name("k8sprep-lintstop") + ":x"
	cmd := exec.Command(bin, "build", dir, "-t", tag)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "ScratchShellForm") || !strings.Contains(string(out), "--no-lint") {
		t.Fatalf("build of a shell-form ENTRYPOINT on scratch: err=%v\n%s", err, out)
	}
	if _, err := env.Client.ImageInspect(context.Background(), tag); err == nil {
		t.Fatal("the image was built although lint failed")
	}
	args := []string{"build", dir, "-t", tag, "--no-lint", "-q"}
	for k, v := range env.Labels() {
		args = append(args, "--label", k+"="+v)
	}
	stdout, _ := run(t, bin, args...)
	if !strings.HasPrefix(strings.TrimSpace(stdout), "sha256:") {
		t.Errorf("-q printed %q, want the image ID", stdout)
	}
}
