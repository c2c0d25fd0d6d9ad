package stack

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
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
// builder and returns the built image's ID.
func ClassicBuild(ctx context.Context, api client.APIClient, req BuildRequest) (string, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarContext(pw, req.ContextDir)) }()
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

// tarContext writes dir as a tar stream, skipping what .dockerignore and
// alwaysExcluded exclude.
func tarContext(w io.Writer, dir string) error {
	patterns := append([]string{}, alwaysExcluded...)
	if f, err := os.Open(filepath.Join(dir, ".dockerignore")); err == nil {
		p, err := ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return fmt.Errorf(".dockerignore: %w", err)
		}
		patterns = append(patterns, p...)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return fmt.Errorf(".dockerignore: %w", err)
	}
	tw := tar.NewWriter(w)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		skip, err := pm.MatchesOrParentMatches(rel)
		if err != nil {
			return err
		}
		if skip && rel != "Dockerfile" && rel != ".dockerignore" {
			if d.IsDir() && !pm.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if d.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
