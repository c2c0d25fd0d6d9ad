package upstream

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// PushStatic puts an image FROM scratch into the registry under ref's
// mirror name: one layer holding the static binary at /<its name>, which is
// also the entrypoint. Tests use it for workloads of their own (there is no
// other registry here); it returns the image's digest.
func (s *Server) PushStatic(ctx context.Context, ref, binary string) (string, error) {
	data, err := os.ReadFile(binary)
	if err != nil {
		return "", err
	}
	file := path.Base(binary)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: file, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		return "", err
	}
	if _, err := tw.Write(data); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		return "", err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return "", err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Config(img, v1.Config{Entrypoint: []string{"/" + file}})
	if err != nil {
		return "", err
	}
	if img, err = mutate.ConfigFile(img, withPlatform(img)); err != nil {
		return "", err
	}
	return s.Push(ctx, ref, img)
}

// Push puts img into the registry under ref's mirror name and returns its
// digest: for images a test builds on the Docker engine (see PushSaved).
func (s *Server) Push(ctx context.Context, ref string, img v1.Image) (string, error) {
	src, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("upstream: image %q: %w", ref, err)
	}
	dst, err := s.MirrorRef(src)
	if err != nil {
		return "", err
	}
	if err := remote.Write(dst, img, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("upstream: push %s: %w", dst, err)
	}
	d, err := img.Digest()
	return d.String(), err
}

// PushSaved pushes the image tagged tag in a `docker save` archive under
// ref's mirror name.
func (s *Server) PushSaved(ctx context.Context, ref, archive, tag string) (string, error) {
	t, err := name.NewTag(tag)
	if err != nil {
		return "", fmt.Errorf("upstream: image %q: %w", tag, err)
	}
	img, err := tarball.ImageFromPath(archive, &t)
	if err != nil {
		return "", fmt.Errorf("upstream: %s in %s: %w", tag, archive, err)
	}
	return s.Push(ctx, ref, img)
}

func withPlatform(img v1.Image) *v1.ConfigFile {
	cf, err := img.ConfigFile()
	if err != nil || cf == nil {
		cf = &v1.ConfigFile{}
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	return cf
}
