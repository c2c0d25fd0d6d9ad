package dockertest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
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
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(TarDir(pw, spec.Dir)) }()
	defer pr.Close()
	labels := e.Labels()
	maps.Copy(labels, spec.Labels)
	args := map[string]*string{}
	for k, v := range spec.BuildArgs {
		args[k] = &v
	}
	res, err := e.Client.ImageBuild(ctx, pr, client.ImageBuildOptions{
		Tags: []string{tag}, Dockerfile: spec.Dockerfile, BuildArgs: args, Labels: labels,
		NetworkMode: spec.NetworkMode, NoCache: spec.NoCache, Remove: true, ForceRemove: true,
	})
	if err != nil {
		return tag, "", err
	}
	defer res.Body.Close()
	out, err := readBuildStream(res.Body)
	e.removeStageImages(ctx, out)
	return tag, out, err
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

// readBuildStream collects the JSON message stream of /build and returns
// the first error it reports.
func readBuildStream(r io.Reader) (string, error) {
	var out strings.Builder
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var m struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return out.String(), nil
		} else if err != nil {
			return out.String(), err
		}
		out.WriteString(m.Stream)
		if m.Error != "" {
			return out.String(), fmt.Errorf("%s", m.Error)
		}
	}
}

// TarDir writes dir as a tar stream (a build context). Symlinks are kept as
// links; the owner is root.
func TarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			h.Name += "/"
		}
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// TarFiles returns a tar stream of in-memory files (name -> content), for
// small build contexts written by a test.
func TarFiles(files map[string][]byte) io.Reader {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range files {
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0)})
		_, _ = tw.Write(data)
	}
	_ = tw.Close()
	return &buf
}
