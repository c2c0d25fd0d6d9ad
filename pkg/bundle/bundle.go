// Package bundle is the offline bundle format: one archive that carries
// everything a cluster of one Kubernetes version needs from the internet,
// for sites where registry.k8s.io and GitHub are far away or unreachable.
//
// A bundle is a tar archive (plain, or gzip / zstd when its name ends in
// .gz / .tgz / .zst) whose entries are, in this order:
//
//	manifest.json                       what is inside: versions, every entry's
//	                                    path, size and sha256, every image with
//	                                    its manifest, config and layer digests
//	files/linux/<arch>/<file>           the release files bootstrap installs
//	                                    (kubelet, kubeadm, kubectl, containerd,
//	                                    runc, CNI plugins, crictl), as published
//	manifests/kube-flannel.yml          the CNI's release manifest
//	images/linux-<arch>.tar             per architecture, an OCI image layout in
//	                                    a tar (oci-layout, index.json, blobs/),
//	                                    every image named by its full reference
//	                                    (org.opencontainers.image.ref.name and
//	                                    io.containerd.image.name), which is what
//	                                    `ctr -n k8s.io images import` names it
//
// The manifest comes first so that Inspect reads a few kilobytes only, and
// each architecture's images are one entry so that an installer uploads the
// one its hosts need and imports it as it is.
//
// Build downloads through pkg/artifacts (published checksums verified, the
// same cache as bootstrap) and pulls images with go-containerregistry into a
// cache of blobs by digest, so that a second bundle downloads nothing and a
// killed build resumes. Verify re-hashes every entry and every image blob.
package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// APIVersion and Kind identify manifest.json.
const (
	APIVersion = "hacluster.io/v1alpha1"
	Kind       = "Bundle"
	// ManifestName is the archive's first entry.
	ManifestName = "manifest.json"
)

// Entry kinds.
const (
	KindBinary   = "binary"   // a release file (executable or archive)
	KindManifest = "manifest" // a Kubernetes manifest (the CNI's)
	KindImages   = "images"   // an OCI image layout tar for one architecture
)

// RefAnnotation and ContainerdNameAnnotation name an image in index.json.
const (
	RefAnnotation            = "org.opencontainers.image.ref.name"
	ContainerdNameAnnotation = "io.containerd.image.name"
)

// Manifest is manifest.json.
type Manifest struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Created    time.Time `json:"created"`
	// BuiltBy is the hacluster version that wrote the bundle.
	BuiltBy  string   `json:"builtBy,omitempty"`
	Versions Versions `json:"versions"`
	CNI      string   `json:"cni"`
	// ImageRepository is kubeadm's imageRepository the images are named for.
	ImageRepository string   `json:"imageRepository"`
	Arches          []string `json:"arches"`
	// ImagesFrom says where the list of kubeadm's images came from.
	ImagesFrom string  `json:"imagesFrom"`
	Files      []File  `json:"files"`
	Images     []Image `json:"images"`
}

// Versions of everything in the bundle.
type Versions struct {
	Kubernetes string `json:"kubernetes"`
	Containerd string `json:"containerd"`
	Runc       string `json:"runc"`
	CNIPlugins string `json:"cniPlugins"`
	Crictl     string `json:"crictl"`
	Flannel    string `json:"flannel,omitempty"`
}

// File is one archive entry after manifest.json.
type File struct {
	Path string `json:"path"`
	Kind string `json:"kind"`
	// Name is what it is (kubelet, containerd, ...; "images" for a layout).
	Name string `json:"name"`
	// Arch is empty for what every architecture shares.
	Arch   string `json:"arch,omitempty"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// URL is where the file was downloaded from (upstream, not the mirror).
	URL string `json:"url,omitempty"`
	// IndexSHA256 is the sha256 of an image layout's index.json.
	IndexSHA256 string `json:"indexSHA256,omitempty"`
}

// Image is one image of an image layout.
type Image struct {
	// Ref is the full reference kubeadm and the manifests ask for.
	Ref  string `json:"ref"`
	Arch string `json:"arch"`
	// Layout is the path of the layout entry holding it.
	Layout string `json:"layout"`
	// Digest is the image manifest's (the platform's, not an index's);
	// Source is what the tag resolved to at the registry (an index, often).
	Digest    string `json:"digest"`
	Source    string `json:"source,omitempty"`
	MediaType string `json:"mediaType"`
	// ManifestSize is the manifest's length; Size adds config and layers.
	ManifestSize int64  `json:"manifestSize"`
	Size         int64  `json:"size"`
	Config       Blob   `json:"config"`
	Layers       []Blob `json:"layers"`
}

// Blob is a content-addressed blob.
type Blob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// LayoutPath is the entry of an architecture's image layout.
func LayoutPath(arch string) string { return "images/linux-" + arch + ".tar" }

// Compression of the archive, chosen by the file name.
type Compression string

const (
	None Compression = ""
	Gzip Compression = "gzip"
	Zstd Compression = "zstd"
)

// CompressionFor is the compression a bundle named path gets.
func CompressionFor(path string) Compression {
	switch {
	case strings.HasSuffix(path, ".gz"), strings.HasSuffix(path, ".tgz"):
		return Gzip
	case strings.HasSuffix(path, ".zst"):
		return Zstd
	}
	return None
}

// archiveReader opens a bundle for sequential reading, whatever its
// compression (told by its first bytes, not its name).
type archiveReader struct {
	*tar.Reader
	f     *os.File
	close func()
}

func openArchive(path string) (*archiveReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 1<<20)
	magic, _ := br.Peek(4)
	r := &archiveReader{f: f, close: func() {}}
	var src io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		gz, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		src = gz
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		src, r.close = zr, zr.Close
	}
	r.Reader = tar.NewReader(src)
	return r, nil
}

func (r *archiveReader) Close() error {
	r.close()
	return r.f.Close()
}

// ErrNotBundle is returned (wrapped) for a file that is no bundle.
var ErrNotBundle = errors.New("not a hacluster bundle")

// readManifest reads the first entry, which must be manifest.json.
func readManifest(path string, r *archiveReader) (*Manifest, error) {
	h, err := r.Next()
	if err != nil {
		return nil, fmt.Errorf("%s: %w (%v)", path, ErrNotBundle, err)
	}
	if h.Name != ManifestName {
		return nil, fmt.Errorf("%s: %w: its first entry is %q, not %s", path, ErrNotBundle, h.Name, ManifestName)
	}
	if h.Size > 64<<20 {
		return nil, fmt.Errorf("%s: %w: %s is %d bytes", path, ErrNotBundle, ManifestName, h.Size)
	}
	var m Manifest
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w: %s: %v", path, ErrNotBundle, ManifestName, err)
	}
	if m.APIVersion != APIVersion || m.Kind != Kind {
		return nil, fmt.Errorf("%s: %s is apiVersion %q kind %q; this hacluster reads %s %s", path, ManifestName, m.APIVersion, m.Kind, APIVersion, Kind)
	}
	return &m, nil
}

// ReadManifest returns a bundle's manifest (its first entry only).
func ReadManifest(path string) (*Manifest, error) {
	r, err := openArchive(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return readManifest(path, r)
}

// FileSize is the sum of the entries' sizes after manifest.json.
func (m *Manifest) FileSize() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}
