package imagebuild_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hacluster/hacluster/pkg/dockertest"
	"github.com/hacluster/hacluster/pkg/imagebuild"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: owner %d:%d, want 0:0", h.Name, h.Uid, h.Gid)
		}
		names = append(names, h.Name)
	}
}

func TestWriteContextHonoursDockerignore(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"Dockerfile":       "FROM scratch\n",
		".dockerignore":    "Dockerfile\n.git\n*.log\nsecrets/\ndocs/**\n!docs/keep.md\n",
		"main.go":          "package main\n",
		"app.log":          "noise",
		".git/HEAD":        "ref",
		"secrets/key.pem":  "KEY",
		"docs/a.md":        "a",
		"docs/keep.md":     "keep",
		"pkg/sub/x.go":     "package sub\n",
		"pkg/sub/deep.log": "noise",
	})
	patterns, err := imagebuild.ReadDockerignore(dir)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	st, err := imagebuild.WriteContext(&buf, dir, "Dockerfile", patterns)
	if err != nil {
		t.Fatal(err)
	}
	got := tarNames(t, buf.Bytes())
	want := []string{".dockerignore", "Dockerfile", "docs/", "docs/keep.md", "main.go", "pkg/", "pkg/sub/", "pkg/sub/deep.log", "pkg/sub/x.go"} // *.log is anchored at the root, as in docker
	if !slices.Equal(got, want) {
		t.Fatalf("context entries\n got %q\nwant %q", got, want)
	}
	if st.Files != 6 {
		t.Errorf("files = %d, want 6", st.Files)
	}
	// Same tree, same stream.
	var again bytes.Buffer
	if _, err := imagebuild.WriteContext(&again, dir, "Dockerfile", patterns); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two tars of the same tree differ")
	}
}

func TestWriteContextBadPattern(t *testing.T) {
	dir := writeTree(t, map[string]string{"Dockerfile": "FROM scratch\n"})
	if _, err := imagebuild.WriteContext(io.Discard, dir, "Dockerfile", []string{"[z-a"}); err == nil {
		t.Fatal("want an error for a bad pattern")
	}
}

// TestBuildScratchImage builds on the real engine: no base image is needed.
func TestBuildScratchImage(t *testing.T) {
	env := dockertest.New(t)
	dir := writeTree(t, map[string]string{
		"Dockerfile":       "FROM scratch\nCOPY hello.txt /hello.txt\nCOPY data/ /data/\n",
		".dockerignore":    "data/ignored.bin\n",
		"hello.txt":        "hello\n",
		"data/a.txt":       strings.Repeat("a", 1000),
		"data/ignored.bin": strings.Repeat("x", 100000),
	})
	tag := env.Name("imagebuild") + ":test"
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := imagebuild.Build(ctx, env.Client, imagebuild.Options{Dir: dir, Tags: []string{tag}, Labels: env.Labels(), Output: &out})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "COPY hello.txt") {
		t.Errorf("build output lacks the steps:\n%s", out.String())
	}
	if res.Layers != 2 {
		t.Errorf("layers = %d, want 2", res.Layers)
	}
	if res.Size < 1006 || res.Size > 10000 {
		t.Errorf("size = %d, want the two small files only (ignored.bin left out)", res.Size)
	}
	if !strings.HasPrefix(res.ImageID, "sha256:") || res.Context.Files != 4 {
		t.Errorf("result = %+v", res)
	}
}

func TestBuildFailureIsBuilderError(t *testing.T) {
	env := dockertest.New(t)
	dir := writeTree(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY missing.txt /\n"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := imagebuild.Build(ctx, env.Client, imagebuild.Options{Dir: dir, Tags: []string{env.Name("imagebuild-fail") + ":x"}, Labels: env.Labels()})
	var be *imagebuild.Error
	if !errors.As(err, &be) || !strings.Contains(be.Message, "missing.txt") {
		t.Fatalf("err = %v, want a builder error naming missing.txt", err)
	}
}
