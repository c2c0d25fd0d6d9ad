package stack

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

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
