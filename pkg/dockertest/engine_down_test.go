package dockertest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hacluster/hacluster/pkg/dockertest"
)

// With no engine, New fails the test when CI is set and skips it otherwise.
// The test binary re-runs itself against a socket nobody listens on.
func TestNewWithoutEngine(t *testing.T) {
	if os.Getenv("DOCKERTEST_PROBE") == "1" {
		dockertest.New(t)
		t.Log("PROBE: engine answered")
		return
	}
	sock := "unix://" + filepath.Join(t.TempDir(), "no-docker.sock")
	for _, c := range []struct {
		ci       string
		wantFail bool
		want     string
	}{
		{"1", true, "CI is set, so this is a failure"},
		{"", false, "--- SKIP: TestNewWithoutEngine"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestNewWithoutEngine$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "DOCKERTEST_PROBE=1", "DOCKER_HOST="+sock, "CI="+c.ci)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != c.wantFail || !strings.Contains(string(out), c.want) || !strings.Contains(string(out), "does not answer") {
			t.Errorf("CI=%q: err=%v, want failure=%v and %q in:\n%s", c.ci, err, c.wantFail, c.want, out)
		}
	}
}
