package bundle_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/hacluster/hacluster/pkg/bundle"
)

// rewrite copies the (uncompressed) bundle src to dst, passing each entry
// through edit, which returns the new content (or nil to keep it). Entries
// are streamed; an edited one goes through a temporary file.
func rewrite(t *testing.T, src, dst string, edit func(name string, r io.Reader) []byte) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tw := tar.NewWriter(out)
	eachEntry(t, in, func(h *tar.Header, r io.Reader) {
		tmp, err := os.CreateTemp(t.TempDir(), "entry")
		if err != nil {
			t.Fatal(err)
		}
		defer tmp.Close()
		if _, err := io.Copy(tmp, r); err != nil {
			t.Fatal(err)
		}
		tmp.Seek(0, io.SeekStart)
		var body io.Reader = tmp
		if nb := edit(h.Name, tmp); nb != nil {
			body = bytes.NewReader(nb)
			h.Size = int64(len(nb))
		} else {
			tmp.Seek(0, io.SeekStart)
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, body); err != nil {
			t.Fatal(err)
		}
	})
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// swapLayer rewrites an image layout tar (r) with the blob named victim
// holding the content of the blob named donor.
func swapLayer(t *testing.T, r io.Reader, victim, donor string) []byte {
	t.Helper()
	type entry struct {
		h    *tar.Header
		body []byte
	}
	var es []entry
	bodies := map[string][]byte{}
	eachEntry(t, r, func(h *tar.Header, r io.Reader) {
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, entry{h, b})
		bodies[h.Name] = b
	})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	found := false
	for _, e := range es {
		if e.h.Name == "blobs/sha256/"+strings.TrimPrefix(victim, "sha256:") {
			e.body = bodies["blobs/sha256/"+strings.TrimPrefix(donor, "sha256:")]
			e.h.Size = int64(len(e.body))
			found = true
		}
		tw.WriteHeader(e.h)
		tw.Write(e.body)
	}
	tw.Close()
	if !found {
		t.Fatalf("no blob %s in the layout", victim)
	}
	return buf.Bytes()
}

// flipByte changes one byte in the middle of r's content.
func flipByte(r io.Reader) []byte {
	b, _ := io.ReadAll(r)
	b[len(b)/2] ^= 0x01
	return b
}

// checkLayout extracts each architecture's image layout and reads it with
// go-containerregistry's layout package: every image named in index.json by
// the references the manifest lists, every blob valid (validate.Image
// re-hashes manifests, configs and layers, compressed and not).
func checkLayout(t *testing.T, file string, m *bundle.Manifest, full bool) map[string]bool {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	eachEntry(t, f, func(h *tar.Header, r io.Reader) {
		if strings.HasPrefix(h.Name, "images/") {
			arch := strings.TrimSuffix(strings.TrimPrefix(h.Name, "images/linux-"), ".tar")
			untar(t, r, filepath.Join(dir, arch))
		}
	})
	names := map[string]bool{}
	for _, arch := range m.Arches {
		p, err := layout.FromPath(filepath.Join(dir, arch))
		if err != nil {
			t.Fatalf("%s: not an OCI layout: %v", arch, err)
		}
		idx, err := p.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range im.Manifests {
			ref := d.Annotations[bundle.RefAnnotation]
			if ref == "" || d.Annotations[bundle.ContainerdNameAnnotation] != ref || d.Platform == nil || d.Platform.Architecture != arch {
				t.Errorf("%s: descriptor %s: annotations %v platform %v", arch, d.Digest, d.Annotations, d.Platform)
			}
			names[ref+" "+arch] = true
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			var opts []validate.Option
			if !full {
				opts = append(opts, validate.Fast)
			}
			if err := validate.Image(img, opts...); err != nil {
				t.Errorf("%s (%s): %v", ref, arch, err)
			}
			cfg, err := img.ConfigFile()
			if err != nil || cfg.Architecture != arch || cfg.OS != "linux" {
				t.Errorf("%s: config %v %v", ref, cfg, err)
			}
		}
	}
	for _, im := range m.Images {
		if !names[im.Ref+" "+im.Arch] {
			t.Errorf("manifest lists %s (%s), the layout does not", im.Ref, im.Arch)
		}
	}
	return names
}

func untar(t *testing.T, r io.Reader, dir string) {
	t.Helper()
	eachEntry(t, r, func(h *tar.Header, r io.Reader) {
		p := filepath.Join(dir, h.Name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := io.Copy(f, r); err != nil {
			t.Fatal(err)
		}
	})
}

// rewriteEntry copies one entry of the bundle src to the file dst.
func rewriteEntry(t *testing.T, src, name, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	found := false
	eachEntry(t, in, func(h *tar.Header, r io.Reader) {
		if h.Name != name {
			return
		}
		found = true
		out, err := os.Create(dst)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		if _, err := io.Copy(out, r); err != nil {
			t.Fatal(err)
		}
	})
	if !found {
		t.Fatalf("%s: no entry %s", src, name)
	}
}

// eachEntry calls fn for every entry of the tar stream r.
func eachEntry(t *testing.T, r io.Reader, fn func(*tar.Header, io.Reader)) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		fn(h, tr)
	}
}

// imageNamed is the manifest's first image whose reference contains part.
func imageNamed(t *testing.T, m *bundle.Manifest, part string) bundle.Image {
	t.Helper()
	for _, im := range m.Images {
		if strings.Contains(im.Ref, part) {
			return im
		}
	}
	t.Fatalf("no image %q in the bundle", part)
	return bundle.Image{}
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func mustContain(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one with %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not say %q", err, p)
		}
	}
	if testing.Verbose() {
		fmt.Println("   error as the user sees it:", err)
	}
}

func nilLogger() *log.Logger { return log.New(io.Discard, "", 0) }
