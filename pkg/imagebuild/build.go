package imagebuild

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

// API is the part of the Engine API client that Build uses;
// client.APIClient (dockerCLI.Client()) satisfies it.
type API interface {
	ImageBuild(ctx context.Context, buildContext io.Reader, options client.ImageBuildOptions) (client.ImageBuildResult, error)
	ImageInspect(ctx context.Context, image string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
}

// Options describe one build.
type Options struct {
	// Dir is the build context directory.
	Dir string
	// Dockerfile is relative to Dir; "Dockerfile" when empty.
	Dockerfile string
	// Tags name the image (repo:tag); at least one is usual.
	Tags      []string
	BuildArgs map[string]string
	Labels    map[string]string
	Target    string
	NoCache   bool
	// NetworkMode for RUN steps ("none" proves a build needs no network).
	NetworkMode string
	// Exclude adds .dockerignore-style patterns that never enter the
	// context, whatever the project's .dockerignore says (for example the
	// stack's generated passwords).
	Exclude []string
	// Output receives the builder's output ("Step 1/9 : FROM ...") as it
	// streams; nil discards it.
	Output io.Writer
}

// Result describes the built image. The JSON field names are stable.
type Result struct {
	ImageID string       `json:"imageID"`
	Tags    []string     `json:"tags"`
	Size    int64        `json:"size"`
	Layers  int          `json:"layers"`
	Context ContextStats `json:"context"`
	Seconds float64      `json:"seconds"`
}

// Error is a failure reported by the builder (a RUN that exited non-zero, a
// missing base image...), as opposed to a transport error.
type Error struct{ Message string }

func (e *Error) Error() string { return "build failed: " + e.Message }

// Build sends the context of opts.Dir to the engine, waits for the classic
// builder and inspects the result.
func Build(ctx context.Context, api API, opts Options) (Result, error) {
	start := time.Now()
	var res Result
	if opts.Dockerfile == "" {
		opts.Dockerfile = "Dockerfile"
	}
	if _, err := os.Stat(filepath.Join(opts.Dir, opts.Dockerfile)); err != nil {
		return res, fmt.Errorf("no Dockerfile: %w", err)
	}
	patterns, err := ReadDockerignore(opts.Dir)
	if err != nil {
		return res, err
	}
	patterns = append(patterns, opts.Exclude...)
	pr, pw := io.Pipe()
	statsc := make(chan ContextStats, 1)
	go func() {
		st, err := WriteContext(pw, opts.Dir, opts.Dockerfile, patterns)
		statsc <- st
		pw.CloseWithError(err)
	}()
	defer pr.Close()

	args := make(map[string]*string, len(opts.BuildArgs))
	for k, v := range opts.BuildArgs {
		args[k] = &v
	}
	resp, err := api.ImageBuild(ctx, pr, client.ImageBuildOptions{
		Tags:        opts.Tags,
		Dockerfile:  filepath.ToSlash(opts.Dockerfile),
		BuildArgs:   args,
		Labels:      opts.Labels,
		Target:      opts.Target,
		NoCache:     opts.NoCache,
		NetworkMode: opts.NetworkMode,
		Remove:      true,
		ForceRemove: true,
	})
	if err != nil {
		return res, fmt.Errorf("build: %w", err)
	}
	defer resp.Body.Close()
	id, err := readStream(resp.Body, opts.Output)
	if err != nil {
		return res, err
	}
	pr.Close() // unblocks the writer if the engine stopped reading early
	res.Context = <-statsc
	if id == "" && len(opts.Tags) > 0 {
		id = opts.Tags[0]
	}
	if id == "" {
		return res, errors.New("build: the engine reported no image ID")
	}
	ins, err := api.ImageInspect(ctx, id)
	if err != nil {
		return res, fmt.Errorf("inspect built image: %w", err)
	}
	res.ImageID = ins.ID
	res.Tags = append([]string{}, opts.Tags...)
	res.Size = ins.Size
	res.Layers = len(ins.RootFS.Layers)
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// readStream decodes the engine's JSON message stream, copies the text to
// out and returns the image ID from the aux message.
func readStream(r io.Reader, out io.Writer) (string, error) {
	if out == nil {
		out = io.Discard
	}
	dec := json.NewDecoder(r)
	var id string
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err == io.EOF {
			return id, nil
		} else if err != nil {
			return id, fmt.Errorf("build output: %w", err)
		}
		if m.Error != nil {
			return id, &Error{Message: strings.TrimSpace(m.Error.Message)}
		}
		if m.Aux != nil {
			var aux struct{ ID string }
			if json.Unmarshal(*m.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
		}
		switch {
		case m.Stream != "":
			_, _ = io.WriteString(out, m.Stream)
		case m.Status != "":
			_, _ = fmt.Fprintln(out, strings.TrimSpace(m.ID+" "+m.Status))
		}
	}
}
