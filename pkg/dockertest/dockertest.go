// Package dockertest gives tests a real Docker engine: it checks that the
// engine answers, names and labels everything a test creates, and removes
// exactly those containers, networks, volumes and images when the test ends,
// whether it passed or failed.
//
//	env := dockertest.New(t)
//	env.RequireImage(t, dockertest.MariaDBImage)
//	net := env.Network(t, "app")
//	db := env.StartMariaDB(t, dockertest.MariaDBOptions{Network: net})
//
// New fails the test when the engine does not answer and the environment
// variable CI is set; otherwise it skips it.
package dockertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Images built by `make images` (hack/images/build.sh).
const (
	DebianImage  = "hacluster.local/debian:bookworm"
	MariaDBImage = "hacluster.local/mariadb:10.11"
	GolangImage  = "hacluster.local/golang:1.26"
)

const (
	// LabelKey marks every object an Env creates; its value is the Env's ID.
	LabelKey = "io.hacluster.dockertest"
	// LabelTest records the test name, for people looking at `docker ps`.
	LabelTest = "io.hacluster.dockertest.test"
	// KeepEnv, when set to 1, keeps the objects after the test for debugging.
	KeepEnv = "HACLUSTER_DOCKERTEST_KEEP"
)

// Env is one test's view of the engine.
type Env struct {
	// Client talks to the engine named by DOCKER_HOST (or the default socket).
	Client *client.Client

	id       string
	testName string
	seq      atomic.Int64
}

// New connects to the engine, registers the cleanup of everything labelled
// with this Env's ID and returns the Env. When the engine does not answer it
// fails the test if CI is set and skips it otherwise.
func New(t testing.TB) *Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	e, err := Connect(ctx, "", t.Name())
	cancel()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v; CI is set, so this is a failure: start dockerd (see .ci/run)", err)
		}
		t.Skipf("%v; skipping (set CI=1 to make this a failure)", err)
	}
	t.Cleanup(func() {
		if os.Getenv(KeepEnv) == "1" {
			t.Logf("dockertest: %s=1, keeping objects labelled %s=%s", KeepEnv, LabelKey, e.id)
		} else {
			var logf func(string, ...any)
			if t.Failed() {
				logf = t.Logf
			}
			if err := e.Cleanup(logf); err != nil {
				t.Errorf("dockertest cleanup: %v", err)
			}
		}
		e.Client.Close()
	})
	return e
}

// Connect is New without a test: for beds shared from TestMain and for
// commands. id "" picks a random one; a fixed id (for example one a command
// stores) finds the objects of an earlier Connect with that id again. The
// caller removes what it made with Cleanup and closes Client.
func Connect(ctx context.Context, id, testName string) (*Env, error) {
	cli, err := client.New(client.FromEnv)
	if err == nil {
		_, err = cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
		if err != nil {
			cli.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("dockertest: the Docker engine does not answer (%s): %v", engineHost(), err)
	}
	if id == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		id = hex.EncodeToString(b)
	}
	return &Env{Client: cli, id: id, testName: testName}, nil
}

func engineHost() string {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return "DOCKER_HOST=" + h
	}
	return client.DefaultDockerHost
}

// ID is the value of LabelKey on every object this Env creates.
func (e *Env) ID() string { return e.id }

// Labels returns a fresh map with the labels to put on anything the test
// creates by other means (the docker CLI, a plugin under test) so that the
// cleanup removes it too.
func (e *Env) Labels() map[string]string {
	return map[string]string{LabelKey: e.id, LabelTest: e.testName}
}

// LabelFilter is the `--filter` value matching this Env's objects.
func (e *Env) LabelFilter() string { return "label=" + LabelKey + "=" + e.id }

// Name returns a unique, DNS-safe name that starts with prefix: lower-case
// letters, digits and dashes, at most 63 characters.
func (e *Env) Name(prefix string) string {
	p := sanitize(prefix)
	if p == "" {
		p = "t"
	}
	return fmt.Sprintf("%s-%s-%d", p, e.id, e.seq.Add(1))
}

func sanitize(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		switch {
		case ok:
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.TrimRight(b.String(), "-")
	if len(out) > 40 {
		out = strings.TrimRight(out[:40], "-")
	}
	return out
}

// RequireImage checks that ref is in the engine. When it is missing the test
// fails if CI is set (the Makefile builds the images before the tests) and is
// skipped otherwise, in both cases saying how to build it.
func (e *Env) RequireImage(t testing.TB, ref string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := e.Client.ImageInspect(ctx, ref)
	if err == nil {
		return
	}
	msg := fmt.Sprintf("dockertest: image %s is not in the engine (%v): run `make images`", ref, err)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Cleanup removes every container, network, volume and image labelled with
// this Env's ID. With a non-nil logf (a failed test's t.Logf) it first logs
// the tail of each container's output.
func (e *Env) Cleanup(logf func(format string, args ...any)) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := make(client.Filters).Add("label", LabelKey+"="+e.id)
	var errs []error

	cs, err := e.Client.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	errs = append(errs, err)
	for _, c := range cs.Items {
		if logf != nil {
			name := strings.TrimPrefix(strings.Join(c.Names, ","), "/")
			if logs, err := e.logsTail(ctx, c.ID, "40"); err == nil {
				logf("dockertest: last output of container %s (%s):\n%s", name, c.State, logs)
			}
		}
		_, err := e.Client.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		errs = append(errs, ignoreNotFound(err))
	}
	ns, err := e.Client.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	errs = append(errs, err)
	for _, n := range ns.Items {
		_, err := e.Client.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{})
		errs = append(errs, ignoreNotFound(err))
	}
	vs, err := e.Client.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	errs = append(errs, err)
	for _, v := range vs.Items {
		_, err := e.Client.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true})
		errs = append(errs, ignoreNotFound(err))
	}
	// Images last: a labelled image may have been the parent of another.
	for range 3 {
		is, err := e.Client.ImageList(ctx, client.ImageListOptions{All: true, Filters: f})
		if err != nil {
			errs = append(errs, err)
			break
		}
		if len(is.Items) == 0 {
			break
		}
		for _, im := range is.Items {
			_, _ = e.Client.ImageRemove(ctx, im.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		}
	}
	is, err := e.Client.ImageList(ctx, client.ImageListOptions{All: true, Filters: f})
	if err == nil && len(is.Items) > 0 {
		errs = append(errs, fmt.Errorf("%d labelled image(s) left, e.g. %s", len(is.Items), is.Items[0].ID))
	}
	return errors.Join(errs...)
}

func ignoreNotFound(err error) error {
	if err == nil || cerrdefs.IsNotFound(err) {
		return nil
	}
	return err
}
