package dockertest_test

import (
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hacluster/hacluster/pkg/dockertest"
)

// The Go builder image runs the host's Go with GOTOOLCHAIN=local, and trusts
// the host's CA bundle: `go mod download` through the same module proxy as
// the host (which here is reached through an intercepting HTTPS proxy).
func TestGolangImageDownloadsModules(t *testing.T) {
	env := dockertest.New(t)
	env.RequireImage(t, dockertest.GolangImage)
	proxy, err := exec.Command("go", "env", "GOPROXY").Output()
	if err != nil {
		t.Fatalf("go env GOPROXY: %v", err)
	}
	script := `set -e
go version
go env GOTOOLCHAIN CGO_ENABLED
cd "$(mktemp -d)"
printf 'module m\ngo 1.26\n' >go.mod
go mod download -json github.com/BurntSushi/toml@v1.6.0 | grep '"Sum"'`
	code, out := env.RunOnce(t, dockertest.RunSpec{
		Image: dockertest.GolangImage, Cmd: []string{"sh", "-c", script},
		Env: []string{"GOPROXY=" + strings.TrimSpace(string(proxy)), "GOFLAGS=-modcacherw"},
	}, 3*time.Minute)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{"go version " + runtime.Version() + " linux/", "\nlocal\n0\n", `"Sum": "h1:`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
