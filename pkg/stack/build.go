package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"

	"github.com/hacluster/hacluster/pkg/imagebuild"
)

// BuildRequest is one image build: the stack needs exactly one call.
type BuildRequest struct {
	ContextDir string
	Dockerfile string // relative to ContextDir
	Tag        string
	Labels     map[string]string
	Log        io.Writer // build output (nil: discarded)
	// Exclude adds .dockerignore patterns: the stack file and the password
	// files when they sit in the context.
	Exclude []string
	Target  string // Dockerfile stage
}

// BuildFunc builds an image and returns its ID.
type BuildFunc func(ctx context.Context, api client.APIClient, req BuildRequest) (string, error)

// alwaysExcluded never goes into a build context: the stack's generated
// passwords and rewritten configs, and VCS metadata.
var alwaysExcluded = []string{".k8sprep", ".git"}

// ClassicBuild builds through imagebuild.Build, with rules more: the
// stack's .k8sprep/ folder (generated passwords) and req.Exclude never enter
// a build context, whatever .dockerignore says. A failed build's error carries the
// last lines of the builder's output.
func ClassicBuild(ctx context.Context, api client.APIClient, req BuildRequest) (string, error) {
	tail := &tailWriter{w: req.Log, max: 15}
	res, err := imagebuild.Build(ctx, api, imagebuild.Options{
		Dir:        req.ContextDir,
		Dockerfile: req.Dockerfile,
		Tags:       []string{req.Tag},
		Labels:     req.Labels,
		Exclude:    append(append([]string{}, alwaysExcluded...), req.Exclude...),
		Output:     tail,
		Target:     req.Target,
	})
	var failed *imagebuild.Error
	switch {
	case errors.As(err, &failed):
		return "", fmt.Errorf("building %s failed: %s\n%s", req.Tag, failed.Message, strings.Join(tail.lines, "\n"))
	case err != nil:
		return "", fmt.Errorf("building %s: %w", req.Tag, err)
	}
	return res.ImageID, nil
}

// tailWriter passes the build output on to w (when set) and keeps its last
// max lines for the error message.
type tailWriter struct {
	w     io.Writer
	max   int
	lines []string
}

func (t *tailWriter) Write(p []byte) (int, error) {
	if t.w != nil {
		_, _ = t.w.Write(p)
	}
	t.lines = append(t.lines, strings.Split(strings.TrimRight(string(p), "\n"), "\n")...)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
	return len(p), nil
}

// contextExcludes returns the files of the stack that must stay out of its
// build context: the stack file (editing an environment variable must not
// change the context, so the image is not rebuilt) and the password files.
func contextExcludes(s *Stack) []string {
	var out []string
	for _, f := range []string{s.Source, s.MySQL.PasswordFile, s.MySQL.RootPasswordFile} {
		if f == "" {
			continue
		}
		rel, err := filepath.Rel(s.App.Build, f)
		if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
			continue
		}
		out = append(out, filepath.ToSlash(rel))
	}
	return out
}
