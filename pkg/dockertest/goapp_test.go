package dockertest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hacluster/hacluster/pkg/dockertest"
)

// The seed article's scenario end to end: examples/goapp built by its
// multi-stage Dockerfile on hacluster.local/golang:1.26 with the network
// switched off (vendor/ is made in a temporary copy of the context), then
// run next to MariaDB on a user-defined network with DB_HOST=<container
// name>, and its /roundtrip endpoint called through the published port.
func TestGoAppOfflineBuildAndRoundTrip(t *testing.T) {
	env := dockertest.New(t)
	env.RequireImage(t, dockertest.GolangImage)
	env.RequireImage(t, dockertest.MariaDBImage)

	ctxDir := t.TempDir()
	copyTree(t, filepath.Join("..", "..", "examples", "goapp"), ctxDir)
	vendor := exec.Command("go", "mod", "vendor")
	vendor.Dir = ctxDir
	vendor.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := vendor.CombinedOutput(); err != nil {
		t.Fatalf("go mod vendor: %v\n%s", err, out)
	}

	start := time.Now()
	// No layer cache: a cached RUN step may have been made with the network on.
	tag := env.Build(t, dockertest.BuildSpec{Dir: ctxDir, NetworkMode: "none", NoCache: true})
	t.Logf("offline multi-stage build of examples/goapp: %s", time.Since(start).Round(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	img, err := env.Client.ImageInspect(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("app image %s: %.1f MB", tag, float64(img.Size)/1e6)
	if img.Size > 30e6 {
		t.Errorf("app image is %d bytes: the final stage should be scratch + one static binary", img.Size)
	}

	// As in the article: MySQL's root password 12345678 (config.toml), the
	// database created by MYSQL_DATABASE, the host given by DB_HOST.
	net := env.Network(t, "mynetwork")
	db := env.StartMariaDB(t, dockertest.MariaDBOptions{
		Name: env.Name("mymysql"), Network: net, RootPassword: "12345678", Database: "PersonalizedRecommendationSystem",
	})
	app := env.Run(t, dockertest.RunSpec{Image: tag, Network: net, Env: []string{"DB_HOST=" + db.Name}, Publish: []string{"8080/tcp"}})
	base := "http://" + app.HostAddr(t, "8080/tcp")

	var health map[string]string
	if err := pollJSON(ctx, base+"/healthz", &health); err != nil || health["status"] != "ok" {
		logs, _ := app.Logs(context.Background())
		t.Fatalf("GET /healthz: %v %v\napp output:\n%s", health, err, logs)
	}
	for i := int64(1); i <= 2; i++ {
		var rt struct {
			OK    bool   `json:"ok"`
			Wrote string `json:"wrote"`
			Read  string `json:"read"`
			Rows  int64  `json:"rows"`
			Table string `json:"table"`
		}
		if err := getJSON(ctx, base+"/roundtrip", &rt); err != nil {
			t.Fatalf("GET /roundtrip: %v", err)
		}
		if !rt.OK || rt.Wrote == "" || rt.Read != rt.Wrote || rt.Rows != i {
			t.Fatalf("GET /roundtrip #%d = %+v", i, rt)
		}
	}
	// The rows are really in MariaDB.
	out, err := db.Query(ctx, "root", "12345678", "PersonalizedRecommendationSystem", "SELECT COUNT(*) FROM goapp_roundtrip")
	if err != nil || out != "2\n" {
		t.Fatalf("rows seen by the mariadb client: %q, %v", out, err)
	}
}

func pollJSON(ctx context.Context, url string, v any) error {
	var err error
	for {
		if err = getJSON(ctx, url, v); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, body)
	}
	return json.Unmarshal(body, v)
}

// copyTree copies the regular files under src (no vendor/) to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			if rel == "vendor" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// examples/goapp is its own module, so `go test ./...` at the root does not
// reach it: run its unit tests from here.
func TestGoAppUnitTests(t *testing.T) {
	cmd := exec.Command("go", "test", "-count=1", "./...")
	cmd.Dir = filepath.Join("..", "..", "examples", "goapp")
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test in examples/goapp: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
