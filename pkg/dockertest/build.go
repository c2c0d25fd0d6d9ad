package dockertest

import (
	"context"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/hacluster/hacluster/pkg/imagebuild"
)

// BuildSpec describes an image build for Env.Build.
type BuildSpec struct {
	// Dir is the build context directory.
	Dir string
	// Dockerfile is relative to Dir; default "Dockerfile".
	Dockerfile string
	// Tag defaults to Env.Name("img") + ":test".
	Tag       string
	BuildArgs map[string]string
	// NetworkMode for RUN steps; "none" proves the build needs no network.
	NetworkMode string
	// NoCache ignores the layer cache (whose keys do not include NetworkMode).
	NoCache bool
	Labels  map[string]string
}

// Build builds an image with the classic builder from spec.Dir, labelled so
// that the Env's cleanup removes it, and returns its tag. The build output
// is logged when the build fails.
func (e *Env) Build(t testing.TB, spec BuildSpec) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	tag, out, err := e.build(ctx, spec)
	if err != nil {
		t.Fatalf("dockertest: build %s: %v\n%s", spec.Dir, err, out)
	}
	return tag
}

func (e *Env) build(ctx context.Context, spec BuildSpec) (string, string, error) {
	tag := spec.Tag
	if tag == "" {
		tag = e.Name("img") + ":test"
	}
	labels := e.Labels()
	maps.Copy(labels, spec.Labels)
	var out strings.Builder
	_, err := imagebuild.Build(ctx, e.Client, imagebuild.Options{
		Dir: spec.Dir, Dockerfile: spec.Dockerfile, Tags: []string{tag}, BuildArgs: spec.BuildArgs,
		Labels: labels, NetworkMode: spec.NetworkMode, NoCache: spec.NoCache, Output: &out,
	})
	e.removeStageImages(ctx, out.String())
	return tag, out.String(), err
}

var stepImage = regexp.MustCompile(`^ ---> ([0-9a-f]{12,64})$`)

// removeStageImages removes the images the build created for earlier stages
// of a multi-stage Dockerfile: the classic builder leaves them untagged and
// without the build's labels. Only images this build made (not "Using
// cache" ones, which may serve other builds) are tried, without force, so an
// image that is still a parent of the result, or in use, stays.
func (e *Env) removeStageImages(ctx context.Context, out string) {
	cached := false
	var made []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "Using cache") {
			cached = true
			continue
		}
		if m := stepImage.FindStringSubmatch(line); m != nil {
			if !cached {
				made = append(made, m[1])
			}
			cached = false
		}
	}
	for i := len(made) - 1; i >= 0; i-- {
		ins, err := e.Client.ImageInspect(ctx, made[i])
		if err != nil || len(ins.RepoTags) > 0 {
			continue
		}
		_, _ = e.Client.ImageRemove(ctx, made[i], client.ImageRemoveOptions{PruneChildren: true})
	}
}

// Save writes the images refs to a `docker save` archive in a temporary
// folder of the test and returns its path: how a test hands an image it
// built to a registry (upstream.Server.PushSaved) or a node.
func (e *Env) Save(t testing.TB, refs ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "images.tar")
	if err := e.save(ctx, path, refs); err != nil {
		t.Fatalf("dockertest: save %s: %v", strings.Join(refs, " "), err)
	}
	return path
}

func (e *Env) save(ctx context.Context, path string, refs []string) error {
	r, err := e.Client.ImageSave(ctx, refs)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
