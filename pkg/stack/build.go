package stack

import (
	"bufio"
	"context"
	"encoding/json"
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
}

// BuildFunc builds an image and returns its ID.
type BuildFunc func(ctx context.Context, api client.APIClient, req BuildRequest) (string, error)

// alwaysExcluded never goes into a build context: the stack's generated
// passwords and rewritten configs, and VCS metadata.
var alwaysExcluded = []string{".k8sprep", ".git"}

// ClassicBuild sends the context (honouring .dockerignore) to the engine's
// builder and returns the built image's ID. It is imagebuild.Build's job
// plus one rule: the stack's .k8sprep/ folder (generated passwords) never
// enters a build context, whatever .dockerignore says.
func ClassicBuild(ctx context.Context, api client.APIClient, req BuildRequest) (string, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarContext(pw, req.ContextDir, req.Dockerfile)) }()
	res, err := api.ImageBuild(ctx, pr, client.ImageBuildOptions{
		Tags:        []string{req.Tag},
		Dockerfile:  filepath.ToSlash(req.Dockerfile),
		Remove:      true,
		ForceRemove: true,
		Labels:      req.Labels,
	})
	if err != nil {
		pr.CloseWithError(err)
		return "", fmt.Errorf("building %s: %w", req.Tag, err)
	}
	defer res.Body.Close()
	var tail []string
	dec := json.NewDecoder(bufio.NewReader(res.Body))
	for {
		var m struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return "", fmt.Errorf("building %s: reading the build output: %w", req.Tag, err)
		}
		if m.Stream != "" {
			if req.Log != nil {
				io.WriteString(req.Log, m.Stream)
			}
			tail = append(tail, strings.Split(strings.TrimRight(m.Stream, "\n"), "\n")...)
			if len(tail) > 15 {
				tail = tail[len(tail)-15:]
			}
		}
		if m.Error != "" {
			return "", fmt.Errorf("building %s failed: %s\n%s", req.Tag, m.Error, strings.Join(tail, "\n"))
		}
	}
	insp, err := api.ImageInspect(ctx, req.Tag)
	if err != nil {
		return "", fmt.Errorf("building %s: %w", req.Tag, err)
	}
	return insp.ID, nil
}

// tarContext writes dir as a tar stream with pkg/imagebuild's context
// writer, leaving out what .dockerignore and alwaysExcluded exclude.
func tarContext(w io.Writer, dir, dockerfile string) error {
	patterns, err := imagebuild.ReadDockerignore(dir)
	if err != nil {
		return err
	}
	_, err = imagebuild.WriteContext(w, dir, dockerfile, append(patterns, alwaysExcluded...))
	return err
}
