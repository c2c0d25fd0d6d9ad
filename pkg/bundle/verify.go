package bundle

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Verified is what Verify checked.
type Verified struct {
	Manifest *Manifest `json:"manifest"`
	Files    int       `json:"files"`
	Images   int       `json:"images"`
	Blobs    int       `json:"blobs"`
	Bytes    int64     `json:"bytes"`
}

// VerifyError lists what does not match the manifest; its first problem is
// the most specific one (a named image blob before the layout holding it).
type VerifyError struct {
	Path     string
	Problems []string
}

func (e *VerifyError) Error() string {
	if len(e.Problems) == 1 {
		return fmt.Sprintf("%s fails verification: %s", e.Path, e.Problems[0])
	}
	return fmt.Sprintf("%s fails verification: %d problems:\n  %s", e.Path, len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// openListed opens a bundle past its manifest, with the entries the
// manifest lists by path (each name checked).
func openListed(file string) (*archiveReader, *Manifest, map[string]File, error) {
	r, err := openArchive(file)
	if err != nil {
		return nil, nil, nil, err
	}
	m, err := readManifest(file, r)
	if err != nil {
		r.Close()
		return nil, nil, nil, err
	}
	want := map[string]File{}
	for _, f := range m.Files {
		if err := checkEntryName(f.Path); err != nil {
			r.Close()
			return nil, nil, nil, fmt.Errorf("%s: %s lists %w", file, ManifestName, err)
		}
		want[f.Path] = f
	}
	return r, m, want, nil
}

// Verify reads the whole bundle once: every entry's size and sha256 against
// the manifest, and inside each image layout every blob against its digest,
// index.json against the manifest's images, and each image's manifest,
// config and layers against the digests the manifest recorded.
func Verify(file string) (*Verified, error) {
	r, m, want, err := openListed(file)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	v := &Verified{Manifest: m}
	var specific, general []string // image problems first, then entries
	seen := map[string]bool{}
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			general = append(general, fmt.Sprintf("the archive is cut or damaged after %d entries: %v", len(seen)+1, err))
			break
		}
		f, ok := want[h.Name]
		switch {
		case !ok:
			general = append(general, fmt.Sprintf("%s: not in the manifest (an added entry)", h.Name))
			continue
		case seen[h.Name]:
			general = append(general, fmt.Sprintf("%s: twice in the archive", h.Name))
			continue
		}
		seen[h.Name] = true
		hs := sha256.New()
		src := &countReader{r: io.TeeReader(r, hs)}
		inner := 0
		if f.Kind == KindImages {
			probs, blobs, err := verifyLayout(src, f, m)
			if err != nil {
				general = append(general, fmt.Sprintf("%s: %v", f.Path, err))
			}
			specific = append(specific, probs...)
			v.Blobs += blobs
			inner = len(probs)
		}
		if _, err := io.Copy(io.Discard, src); err != nil {
			general = append(general, fmt.Sprintf("%s: %v", f.Path, err))
			continue
		}
		n := src.n
		v.Bytes += h.Size
		got := hex.EncodeToString(hs.Sum(nil))
		switch {
		case inner > 0:
			// The layout's own sha256 differs too: the named blobs say why.
		case h.Size != f.Size:
			general = append(general, fmt.Sprintf("%s: %d bytes, the manifest says %d", f.Path, h.Size, f.Size))
		case got != f.SHA256:
			general = append(general, fmt.Sprintf("%s: sha256 %s, the manifest says %s", f.Path, got, f.SHA256))
		case n != f.Size:
			general = append(general, fmt.Sprintf("%s: read %d bytes of %d", f.Path, n, f.Size))
		}
		v.Files++
	}
	for _, f := range m.Files {
		if !seen[f.Path] {
			general = append(general, fmt.Sprintf("%s: in the manifest, missing from the archive", f.Path))
		}
	}
	v.Images = len(m.Images)
	if probs := append(specific, general...); len(probs) > 0 {
		return v, &VerifyError{Path: file, Problems: probs}
	}
	return v, nil
}

func checkEntryName(p string) error {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || strings.HasPrefix(p, "../") || p == ".." || p == ManifestName {
		return fmt.Errorf("a bad entry name %q", p)
	}
	return nil
}

// verifyLayout reads one image layout tar as it streams by.
func verifyLayout(r io.Reader, f File, m *Manifest) (problems []string, blobs int, err error) {
	type got struct {
		size   int64
		digest string
		body   []byte // kept for the small JSON documents
	}
	var images []Image
	small := map[string]bool{} // manifests and configs to parse
	for _, im := range m.Images {
		if im.Layout == f.Path {
			images = append(images, im)
			small[im.Digest] = true
		}
	}
	entries := map[string]got{}
	var index []byte
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return problems, blobs, fmt.Errorf("the image layout is damaged: %v", err)
		}
		hs := sha256.New()
		var body []byte
		keep := h.Name == "index.json" || h.Name == "oci-layout" || small["sha256:"+strings.TrimPrefix(h.Name, "blobs/sha256/")]
		var n int64
		if keep && h.Size < 16<<20 {
			body, err = io.ReadAll(io.TeeReader(tr, hs))
			n = int64(len(body))
		} else {
			n, err = io.Copy(hs, tr)
		}
		if err != nil {
			return problems, blobs, fmt.Errorf("the image layout is damaged at %s: %v", h.Name, err)
		}
		entries[h.Name] = got{size: n, digest: "sha256:" + hex.EncodeToString(hs.Sum(nil)), body: body}
		if h.Name == "index.json" {
			index = body
		}
		if strings.HasPrefix(h.Name, "blobs/") {
			blobs++
		}
	}
	if _, ok := entries["oci-layout"]; !ok {
		problems = append(problems, f.Path+": no oci-layout file (not an OCI image layout)")
	}
	if index == nil {
		return append(problems, f.Path+": no index.json"), blobs, nil
	}
	if d := strings.TrimPrefix(digestOf(index), "sha256:"); f.IndexSHA256 != "" && d != f.IndexSHA256 {
		problems = append(problems, fmt.Sprintf("%s: index.json has sha256 %s, the manifest says %s (the images it names were changed)", f.Path, d, f.IndexSHA256))
	}
	idx, err := v1.ParseIndexManifest(strings.NewReader(string(index)))
	if err != nil {
		return append(problems, fmt.Sprintf("%s: index.json: %v", f.Path, err)), blobs, nil
	}
	named := map[string]string{}
	for _, d := range idx.Manifests {
		named[d.Annotations[RefAnnotation]] = d.Digest.String()
	}
	// check one blob of an image; what names it in the message.
	check := func(im Image, role string, b Blob) bool {
		e, ok := entries[blobName(b.Digest)]
		where := fmt.Sprintf("%s: image %s (linux/%s): %s %s", f.Path, im.Ref, im.Arch, role, b.Digest)
		switch {
		case !ok:
			problems = append(problems, where+": missing from the layout")
		case e.digest != b.Digest:
			problems = append(problems, fmt.Sprintf("%s: content hashes to %s (%d bytes; a changed or swapped blob)", where, e.digest, e.size))
		case e.size != b.Size:
			problems = append(problems, fmt.Sprintf("%s: %d bytes, want %d", where, e.size, b.Size))
		default:
			return true
		}
		return false
	}
	for _, im := range images {
		if d, ok := named[im.Ref]; !ok {
			problems = append(problems, fmt.Sprintf("%s: image %s (linux/%s): not in index.json", f.Path, im.Ref, im.Arch))
		} else if d != im.Digest {
			problems = append(problems, fmt.Sprintf("%s: image %s (linux/%s): index.json names manifest %s, the bundle's manifest says %s", f.Path, im.Ref, im.Arch, d, im.Digest))
		}
		if !check(im, "manifest", Blob{Digest: im.Digest, Size: im.ManifestSize}) {
			continue
		}
		// The manifest is intact: it must name the config and layers recorded.
		mf, err := v1.ParseManifest(strings.NewReader(string(entries[blobName(im.Digest)].body)))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: image %s: manifest: %v", f.Path, im.Ref, err))
			continue
		}
		if mf.Config.Digest.String() != im.Config.Digest || len(mf.Layers) != len(im.Layers) {
			problems = append(problems, fmt.Sprintf("%s: image %s: its manifest names other blobs than the bundle's manifest", f.Path, im.Ref))
			continue
		}
		check(im, "config", im.Config)
		for i, l := range im.Layers {
			if mf.Layers[i].Digest.String() != l.Digest {
				problems = append(problems, fmt.Sprintf("%s: image %s: layer %d of %d is %s in its manifest, %s in the bundle's", f.Path, im.Ref, i+1, len(im.Layers), mf.Layers[i].Digest, l.Digest))
				continue
			}
			check(im, fmt.Sprintf("layer %d of %d", i+1, len(im.Layers)), l)
		}
	}
	// Any other blob must still be what its name says.
	for name, e := range entries {
		if strings.HasPrefix(name, "blobs/sha256/") && "sha256:"+strings.TrimPrefix(name, "blobs/sha256/") != e.digest && !mentioned(problems, strings.TrimPrefix(name, "blobs/sha256/")) {
			problems = append(problems, fmt.Sprintf("%s: blob %s hashes to %s", f.Path, name, e.digest))
		}
	}
	return problems, blobs, nil
}

func mentioned(problems []string, hex string) bool {
	for _, p := range problems {
		if strings.Contains(p, hex) {
			return true
		}
	}
	return false
}

// Contents is what Inspect reports.
type Contents struct {
	Path     string    `json:"path"`
	Size     int64     `json:"size"`
	Manifest *Manifest `json:"manifest"`
}

// Inspect reads the manifest of a bundle (not the rest: Verify does).
func Inspect(file string) (*Contents, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	m, err := ReadManifest(file)
	if err != nil {
		return nil, err
	}
	return &Contents{Path: file, Size: fi.Size(), Manifest: m}, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ErrVerify matches a *VerifyError with errors.As; errors.Is(err, ErrVerify)
// is true for one too.
var ErrVerify = errors.New("bundle verification failed")

// Is lets errors.Is(err, ErrVerify) match.
func (e *VerifyError) Is(target error) bool { return target == ErrVerify }
