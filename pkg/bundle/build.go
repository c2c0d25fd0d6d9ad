package bundle

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/hacluster/hacluster/pkg/artifacts"
	"github.com/hacluster/hacluster/pkg/version"
)

// Options of Build.
type Options struct {
	// Output is the archive to write; its name chooses the compression
	// (.tar, .tar.gz / .tgz, .tar.zst).
	Output string
	// Force replaces an existing Output.
	Force bool

	Versions Versions
	// CNI is flannel or none.
	CNI string
	// ImageRepository is kubeadm's imageRepository (default registry.k8s.io).
	ImageRepository string
	// Arches of the hosts (amd64, arm64); default amd64.
	Arches []string
	// ExtraImages are added to what kubeadm and the CNI need.
	ExtraImages []string

	// CacheDir is the artifacts cache (bootstrap's; default
	// artifacts.DefaultDir()); images are kept in CacheDir/images.
	CacheDir string
	// Mirrors maps an upstream site to a base URL serving the same paths
	// (spec.artifacts.mirrors).
	Mirrors map[string]string
	// RegistryMirrors maps a registry to endpoints tried before it, as in
	// spec.registries.mirrors: {"registry.k8s.io": ["http://10.0.0.1:5000/v2/registry.k8s.io"]}.
	RegistryMirrors map[string][]string

	// Logf reports each file and image (plain lines).
	Logf func(format string, args ...any)
	// OnBytes, when set, is called with the total bytes downloaded so far.
	OnBytes func(total int64)
	// Now is the creation time (default time.Now).
	Now func() time.Time
}

// Result is what Build wrote.
type Result struct {
	Path     string    `json:"path"`
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256"`
	Manifest *Manifest `json:"manifest"`
	// Downloaded counts the bytes fetched (0 when all came from the cache).
	Downloaded int64         `json:"downloaded"`
	Took       time.Duration `json:"took"`
}

// Arches Build knows.
var Arches = []string{"amd64", "arm64"}

func (o *Options) setDefaults() error {
	if o.Output == "" {
		return errors.New("no output file: pass -o FILE (bundle.tar, bundle.tar.gz or bundle.tar.zst)")
	}
	if !versionRE.MatchString(o.Versions.Kubernetes) {
		return fmt.Errorf("version %q of Kubernetes: want vMAJOR.MINOR.PATCH, e.g. v1.37.2", o.Versions.Kubernetes)
	}
	for what, v := range map[string]string{"containerd": o.Versions.Containerd, "runc": o.Versions.Runc, "CNI plugins": o.Versions.CNIPlugins, "crictl": o.Versions.Crictl} {
		if !strings.HasPrefix(v, "v") {
			return fmt.Errorf("%s version %q: want a release tag like v1.2.3", what, v)
		}
	}
	switch o.CNI {
	case "flannel":
		if _, err := artifacts.Flannel(o.Versions.Flannel); err != nil {
			return err
		}
	case "none":
		o.Versions.Flannel = ""
	case "calico":
		return errors.New("CNI calico: bootstrap does not install calico as the CNI yet; use flannel, or none and add the images with --image")
	default:
		return fmt.Errorf("CNI %q: want flannel or none", o.CNI)
	}
	if o.ImageRepository == "" {
		o.ImageRepository = defaultImageRepository
	}
	if len(o.Arches) == 0 {
		o.Arches = []string{"amd64"}
	}
	seen := map[string]bool{}
	for _, a := range o.Arches {
		if !slices.Contains(Arches, a) {
			return fmt.Errorf("architecture %q: want %s", a, strings.Join(Arches, " or "))
		}
		if seen[a] {
			return fmt.Errorf("architecture %s given twice", a)
		}
		seen[a] = true
	}
	for reg, eps := range o.RegistryMirrors {
		if len(eps) == 0 {
			return fmt.Errorf("registry mirror for %s: no endpoint", reg)
		}
		for _, ep := range eps {
			if _, err := mirrorRepo(ep, "x"); err != nil {
				return err
			}
		}
	}
	if o.CacheDir == "" {
		d, err := artifacts.DefaultDir()
		if err != nil {
			return err
		}
		o.CacheDir = d
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if fi, err := os.Stat(o.Output); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("%s is a directory: pass a file name", o.Output)
		}
		if !o.Force {
			return fmt.Errorf("%s exists: pass --force to replace it", o.Output)
		}
	}
	return nil
}

// source is where an entry's bytes are.
type source struct {
	File
	from string // a cached file
}

// Build downloads what is not cached and writes the bundle.
func Build(ctx context.Context, o Options) (*Result, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	t0 := time.Now()
	counter := &byteCounter{on: o.OnBytes}
	store := &artifacts.Store{Dir: o.CacheDir, Mirrors: o.Mirrors, Logf: o.Logf}
	av := artifacts.Versions{Kubernetes: o.Versions.Kubernetes, Containerd: o.Versions.Containerd, Runc: o.Versions.Runc, CNIPlugins: o.Versions.CNIPlugins, Crictl: o.Versions.Crictl}
	m := &Manifest{APIVersion: APIVersion, Kind: Kind, Created: o.Now().UTC().Truncate(time.Second), BuiltBy: version.Version,
		Versions: o.Versions, CNI: o.CNI, ImageRepository: o.ImageRepository, Arches: o.Arches}
	var entries []source
	kubeadmAt := map[string]string{}
	var downloaded int64
	for _, arch := range o.Arches {
		got, err := store.FetchAll(ctx, artifacts.List(av, arch))
		if err != nil {
			return nil, err
		}
		for _, f := range got {
			if !f.Cached {
				downloaded += f.Size
			}
			o.Logf("file  %-52s %8s  %s", "files/linux/"+arch+"/"+f.FileName(), mb(f.Size), cachedWord(f.Cached))
			entries = append(entries, source{File: File{Path: "files/linux/" + arch + "/" + f.FileName(), Kind: KindBinary, Name: f.Name, Arch: arch, Size: f.Size, SHA256: f.SHA256, URL: f.URL}, from: f.Path})
			if f.Name == "kubeadm" {
				kubeadmAt[arch] = f.Path
			}
		}
	}
	var cniImages []string
	if o.CNI == "flannel" {
		a, _ := artifacts.Flannel(o.Versions.Flannel)
		f, err := store.Fetch(ctx, a)
		if err != nil {
			return nil, err
		}
		if !f.Cached {
			downloaded += f.Size
		}
		raw, err := os.ReadFile(f.Path)
		if err != nil {
			return nil, err
		}
		cniImages = ManifestImages(raw)
		if len(cniImages) == 0 {
			return nil, fmt.Errorf("kube-flannel.yml %s names no image", o.Versions.Flannel)
		}
		o.Logf("file  %-52s %8s  %s", "manifests/kube-flannel.yml", mb(f.Size), cachedWord(f.Cached))
		entries = append(entries, source{File: File{Path: "manifests/kube-flannel.yml", Kind: KindManifest, Name: "kube-flannel.yml", Size: f.Size, SHA256: f.SHA256, URL: f.URL}, from: f.Path})
	}

	kubeadmRefs, from, err := imageList(ctx, o, kubeadmAt)
	if err != nil {
		return nil, err
	}
	m.ImagesFrom = from
	var refs []string
	for _, r := range slices.Concat(kubeadmRefs, cniImages, o.ExtraImages) {
		n, err := NormalizeRef(r)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(refs, n) {
			refs = append(refs, n)
		}
	}
	cache, err := newImageCache(filepath.Join(o.CacheDir, "images"), o.RegistryMirrors, o.Logf, counter)
	if err != nil {
		return nil, err
	}
	images, n, err := pullAll(ctx, cache, refs, o.Arches, o.Logf)
	if err != nil {
		return nil, err
	}
	downloaded += n
	m.Images = images

	// Each architecture's layout: hashed first (the manifest precedes it).
	layouts := map[string]*layout{}
	for _, arch := range o.Arches {
		l := newLayout(cache, images, arch)
		f, err := l.hash()
		if err != nil {
			return nil, err
		}
		layouts[arch] = l
		entries = append(entries, source{File: f})
	}
	for _, e := range entries {
		m.Files = append(m.Files, e.File)
	}
	size, sum, err := writeArchive(ctx, o.Output, m, entries, layouts)
	if err != nil {
		return nil, err
	}
	return &Result{Path: o.Output, Size: size, SHA256: sum, Manifest: m, Downloaded: downloaded, Took: time.Since(t0)}, nil
}

// imageList is what kubeadm asks for: from the bundle's kubeadm when it
// runs here, else from the table.
func imageList(ctx context.Context, o Options, kubeadmAt map[string]string) ([]string, string, error) {
	v, repo := o.Versions.Kubernetes, o.ImageRepository
	var runErr error
	for arch, p := range kubeadmAt {
		if !canRun(arch) {
			continue
		}
		list, err := KubeadmImagesFromBinary(ctx, p, v, repo)
		if err == nil {
			return list, "kubeadm " + v + " config images list", nil
		}
		runErr = err
	}
	list, err := KubeadmImagesFromTable(v, repo)
	if err != nil {
		if runErr != nil {
			return nil, "", fmt.Errorf("%w (and the bundle's kubeadm did not run: %v)", err, runErr)
		}
		return nil, "", err
	}
	if runErr != nil {
		o.Logf("note: the bundle's kubeadm did not run (%v); using hacluster's table of kubeadm %s's images", runErr, minor(v))
	}
	return list, "hacluster's table of kubeadm " + minor(v) + "'s images", nil
}

// pullAll puts every image for every arch in the cache, a few at a time.
func pullAll(ctx context.Context, c *imageCache, refs, arches []string, logf func(string, ...any)) ([]Image, int64, error) {
	type job struct{ ref, arch string }
	var jobs []job
	for _, a := range arches {
		for _, r := range refs {
			jobs = append(jobs, job{r, a})
		}
	}
	out := make([]Image, len(jobs))
	errs := make([]error, len(jobs))
	var total int64
	var mu sync.Mutex
	sem := make(chan struct{}, 3)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			t0 := time.Now()
			p, err := c.ensure(ctx, j.ref, j.arch)
			if err != nil {
				errs[i] = err
				return
			}
			p.Layout = LayoutPath(j.arch)
			out[i] = p.Image
			mu.Lock()
			total += p.Downloaded
			mu.Unlock()
			if p.Cached {
				logf("image %-52s %-5s %8s  cached", j.ref, j.arch, mb(p.Size))
			} else {
				logf("image %-52s %-5s %8s  pulled %s from %s in %s", j.ref, j.arch, mb(p.Size), mb(p.Downloaded), p.From, time.Since(t0).Round(time.Millisecond))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// ---- image layouts

// layout is one architecture's OCI image layout, written as a tar.
type layout struct {
	cache *imageCache
	arch  string
	index []byte
	blobs []Blob // sorted, unique
	file  File
}

// hdr is a tar header every entry shares (reproducible: fixed time, owner).
func hdr(name string, size int64, mode int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: mode, ModTime: time.Unix(0, 0), Format: tar.FormatUSTAR}
}

const ociLayoutFile = `{"imageLayoutVersion":"1.0.0"}`

func newLayout(c *imageCache, images []Image, arch string) *layout {
	l := &layout{cache: c, arch: arch}
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations"`
		Platform    map[string]string `json:"platform"`
	}
	idx := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Manifests     []desc `json:"manifests"`
	}{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json", Manifests: []desc{}}
	seen := map[string]bool{}
	add := func(b Blob) {
		if !seen[b.Digest] {
			seen[b.Digest] = true
			l.blobs = append(l.blobs, b)
		}
	}
	for _, im := range images {
		if im.Arch != arch {
			continue
		}
		idx.Manifests = append(idx.Manifests, desc{MediaType: im.MediaType, Digest: im.Digest, Size: im.ManifestSize,
			Annotations: map[string]string{RefAnnotation: im.Ref, ContainerdNameAnnotation: im.Ref},
			Platform:    map[string]string{"os": "linux", "architecture": arch}})
		add(Blob{Digest: im.Digest, Size: im.ManifestSize})
		add(im.Config)
		for _, b := range im.Layers {
			add(b)
		}
	}
	sort.Slice(l.blobs, func(i, j int) bool { return l.blobs[i].Digest < l.blobs[j].Digest })
	l.index, _ = json.MarshalIndent(idx, "", "  ")
	return l
}

// layoutRecord is a layout tar's size and sha256, by its index.json.
type layoutRecord struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

func (c *imageCache) layoutRecords() map[string]layoutRecord {
	return loadJSON[layoutRecord](filepath.Join(c.dir, "layouts.json"))
}

// recordLayout remembers (or, given a zero record, forgets) a layout.
func (c *imageCache) recordLayout(index string, r layoutRecord) error {
	return updateJSON(&c.mu, filepath.Join(c.dir, "layouts.json"), func(m map[string]layoutRecord) {
		if r.SHA256 == "" {
			delete(m, index)
		} else {
			m[index] = r
		}
	})
}

func blobName(digest string) string { return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:") }

// writeTo writes the layout tar; each blob is checked against its digest
// on the way (a damaged cache is refused, and the blob removed).
func (l *layout) writeTo(w io.Writer, checkBlobs bool) error {
	tw := tar.NewWriter(w)
	for _, e := range []struct {
		name string
		data []byte
	}{{"oci-layout", []byte(ociLayoutFile)}, {"index.json", l.index}} {
		if err := tw.WriteHeader(hdr(e.name, int64(len(e.data)), 0o644)); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	for _, b := range l.blobs {
		if err := tw.WriteHeader(hdr(blobName(b.Digest), b.Size, 0o644)); err != nil {
			return err
		}
		p := l.cache.blobPath(b.Digest)
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("image cache: %w (run the build again)", err)
		}
		if !checkBlobs {
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return err
			}
			continue
		}
		h := sha256.New()
		_, err = io.Copy(tw, io.TeeReader(f, h))
		f.Close()
		if err != nil {
			return err
		}
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != b.Digest {
			os.Remove(p)
			return fmt.Errorf("image cache: blob %s holds %s (damaged; removed: run the build again)", b.Digest, got)
		}
	}
	return tw.Close()
}

// hash computes the layout's size and sha256: a first pass over it, with
// every blob checked, unless an earlier build recorded them for the same
// index.json (the layout's bytes follow from it); writeEntries then checks
// the whole layout against the record as it writes it.
func (l *layout) hash() (File, error) {
	index := strings.TrimPrefix(digestOf(l.index), "sha256:")
	l.file = File{Path: LayoutPath(l.arch), Kind: KindImages, Name: "images", Arch: l.arch, IndexSHA256: index}
	rec := l.cache.layoutRecords()
	if r, ok := rec[index]; ok {
		l.file.Size, l.file.SHA256 = r.Size, r.SHA256
		return l.file, nil
	}
	h := sha256.New()
	cw := &countWriter{w: h}
	if err := l.writeTo(cw, true); err != nil {
		return File{}, err
	}
	l.file.Size, l.file.SHA256 = cw.n, hex.EncodeToString(h.Sum(nil))
	return l.file, l.cache.recordLayout(index, layoutRecord{Size: l.file.Size, SHA256: l.file.SHA256})
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ---- the archive

// writeArchive writes the bundle to a temporary file next to path and
// renames it into place; it returns the archive's size and sha256.
func writeArchive(ctx context.Context, dst string, m *Manifest, entries []source, layouts map[string]*layout) (int64, string, error) {
	dir := filepath.Dir(dst)
	f, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".partial-*")
	if err != nil {
		return 0, "", err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the rename: nothing
	sum := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, sum)}
	var comp io.WriteCloser
	var w io.Writer = cw
	switch CompressionFor(dst) {
	case Gzip:
		comp, _ = gzip.NewWriterLevel(cw, gzip.BestSpeed)
	case Zstd:
		comp, err = zstd.NewWriter(cw, zstd.WithEncoderLevel(zstd.SpeedDefault))
		if err != nil {
			f.Close()
			return 0, "", err
		}
	}
	if comp != nil {
		w = comp
	}
	err = writeEntries(ctx, w, m, entries, layouts)
	if err == nil && comp != nil {
		err = comp.Close()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, "", fmt.Errorf("write %s: %w", dst, err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return 0, "", err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return 0, "", err
	}
	return cw.n, hex.EncodeToString(sum.Sum(nil)), nil
}

func writeEntries(ctx context.Context, w io.Writer, m *Manifest, entries []source, layouts map[string]*layout) error {
	tw := tar.NewWriter(w)
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	mj = append(mj, '\n')
	if err := tw.WriteHeader(hdr(ManifestName, int64(len(mj)), 0o644)); err != nil {
		return err
	}
	if _, err := tw.Write(mj); err != nil {
		return err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		mode := int64(0o644)
		if e.Kind == KindBinary && !isArchive(e.Path) {
			mode = 0o755
		}
		if err := tw.WriteHeader(hdr(e.Path, e.Size, mode)); err != nil {
			return err
		}
		if e.Kind == KindImages {
			l := layouts[e.Arch]
			h := sha256.New()
			cw := &countWriter{w: io.MultiWriter(tw, h)}
			if err := l.writeTo(cw, false); err != nil {
				return err
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != e.SHA256 || cw.n != e.Size {
				_ = l.cache.recordLayout(e.IndexSHA256, layoutRecord{})
				return fmt.Errorf("%s: the image cache no longer holds what it did (a damaged blob?): run the build again, which checks every blob", e.Path)
			}
			continue
		}
		if err := copyVerified(tw, e); err != nil {
			return err
		}
	}
	return tw.Close()
}

// copyVerified copies a cached file into the archive, checking it against
// the sha256 it was downloaded with.
func copyVerified(w io.Writer, e source) error {
	f, err := os.Open(e.from)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(w, io.TeeReader(io.LimitReader(f, e.Size+1), h))
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != e.SHA256 || n != e.Size {
		return fmt.Errorf("the cached %s (%s) no longer matches its sha256 %s: remove it and build again", e.Name, e.from, e.SHA256)
	}
	return nil
}

func isArchive(p string) bool {
	b := path.Base(p)
	return strings.HasSuffix(b, ".tar.gz") || strings.HasSuffix(b, ".tgz")
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func cachedWord(c bool) string {
	if c {
		return "cached"
	}
	return "downloaded, sha256 verified"
}
