package bundle

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hacluster/hacluster/pkg/fileutil"
)

// kubeadmImages is what `kubeadm config images list` names besides the
// Kubernetes images, per minor release (kubeadm's constants PauseVersion,
// CoreDNSVersion and SupportedEtcdVersion of that release). It is used when
// the bundle's kubeadm cannot run here (another OS or architecture).
var kubeadmImages = map[string]struct{ Pause, CoreDNS, Etcd string }{
	"v1.37": {Pause: "3.10.2", CoreDNS: "v1.14.6", Etcd: "3.7.0-0"},
}

// defaultImageRepository is kubeadm's; CoreDNS lives one level down there.
const defaultImageRepository = "registry.k8s.io"

var versionRE = regexp.MustCompile(`^v(\d+)\.(\d+)\.(\d+)$`)

// minor is "v1.37" of "v1.37.2".
func minor(version string) string {
	m := versionRE.FindStringSubmatch(version)
	if m == nil {
		return ""
	}
	return "v" + m[1] + "." + m[2]
}

// KubeadmImagesFromTable is `kubeadm config images list` as kubeadm of
// version computes it, from the table above.
func KubeadmImagesFromTable(version, repo string) ([]string, error) {
	t, ok := kubeadmImages[minor(version)]
	if !ok {
		return nil, fmt.Errorf("which images kubeadm %s asks for is not known to this hacluster (known: %s); build the bundle on linux with its architecture in --arch, so that its kubeadm can say", version, strings.Join(slices.Sorted(maps.Keys(kubeadmImages)), ", "))
	}
	dns := repo
	if repo == defaultImageRepository {
		dns = repo + "/coredns"
	}
	return []string{
		repo + "/kube-apiserver:" + version,
		repo + "/kube-controller-manager:" + version,
		repo + "/kube-scheduler:" + version,
		repo + "/kube-proxy:" + version,
		dns + "/coredns:" + t.CoreDNS,
		repo + "/pause:" + t.Pause,
		repo + "/etcd:" + t.Etcd,
	}, nil
}

// KubeadmImagesFromBinary runs `kubeadm config images list` with the
// kubeadm at path (a cached download: copied to an executable temporary
// file first). It makes no network request: the version is given.
func KubeadmImagesFromBinary(ctx context.Context, path, version, repo string) ([]string, error) {
	tmp, err := os.MkdirTemp("", "hacluster-kubeadm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "kubeadm")
	if err := copyFile(path, bin, 0o755); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "config", "images", "list", "--kubernetes-version", version, "--image-repository", repo)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + tmp}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("kubeadm config images list: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var out []string
	for _, l := range strings.Split(stdout.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("kubeadm config images list printed no image")
	}
	return out, nil
}

// canRun reports whether a linux/arch binary runs on this machine.
func canRun(arch string) bool { return runtime.GOOS == "linux" && runtime.GOARCH == arch }

var imageLineRE = regexp.MustCompile(`(?m)^\s*-?\s*image:\s*["']?([^\s"'#]+)`)

// ManifestImages are the images a Kubernetes manifest names (image: lines),
// in order, without repeats.
func ManifestImages(manifest []byte) []string {
	var out []string
	for _, m := range imageLineRE.FindAllSubmatch(manifest, -1) {
		if s := string(m[1]); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// NormalizeRef is ref as containerd names it: registry, repository and tag
// (docker.io/library/ for Docker Hub's short names).
func NormalizeRef(ref string) (string, error) {
	n, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", ref, err)
	}
	return n.String(), nil
}

// ---- the image cache

// imageCache keeps image blobs by digest in Dir/blobs/sha256 and remembers
// which manifest a reference resolved to for an architecture in
// Dir/refs.json, so that a cached image needs no request at all. Blobs are
// written to a temporary file, checked against their digest and renamed:
// a killed build leaves whole blobs only, and a rerun fetches the rest.
type imageCache struct {
	dir     string
	mirrors map[string][]string // registry (as go-containerregistry names it) -> endpoints
	logf    func(string, ...any)
	opts    []remote.Option
	counter *byteCounter

	mu       sync.Mutex
	inflight map[string]*sync.Mutex
}

type refEntry struct {
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	Source    string `json:"source,omitempty"`
}

func newImageCache(dir string, mirrors map[string][]string, logf func(string, ...any), counter *byteCounter) (*imageCache, error) {
	c := &imageCache{dir: dir, mirrors: map[string][]string{}, logf: logf, counter: counter, inflight: map[string]*sync.Mutex{}}
	for reg, eps := range mirrors {
		r, err := name.NewRegistry(reg)
		if err != nil {
			return nil, fmt.Errorf("registry mirror for %q: %w", reg, err)
		}
		for _, ep := range eps {
			if _, err := mirrorRepo(ep, "x"); err != nil {
				return nil, err
			}
		}
		c.mirrors[r.RegistryStr()] = append(c.mirrors[r.RegistryStr()], eps...)
	}
	c.opts = []remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithUserAgent("kubectl-hacluster")}
	// One puller: a registry is pinged (and logged in to) once per build.
	p, err := remote.NewPuller(c.opts...)
	if err != nil {
		return nil, err
	}
	c.opts = append(c.opts, remote.Reuse(p))
	return c, os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755)
}

// mirrorRepo is repository repo at a mirror endpoint, as containerd's
// hosts.toml gives it: http://10.0.0.1:5000 serves /v2/<repo>, and
// http://10.0.0.1:5000/v2/registry.k8s.io (override_path) serves
// /v2/registry.k8s.io/<repo>.
func mirrorRepo(endpoint, repo string) (name.Repository, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return name.Repository{}, fmt.Errorf("registry mirror %q: want http(s)://host[:port][/v2/prefix]", endpoint)
	}
	p := strings.Trim(u.Path, "/")
	p = strings.Trim(strings.TrimPrefix(p, "v2"), "/")
	full := u.Host + "/"
	if p != "" {
		full += p + "/"
	}
	var opts []name.Option
	if u.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewRepository(full+repo, opts...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("registry mirror %q: %w", endpoint, err)
	}
	return r, nil
}

// candidates are the repositories to try for ref: its mirrors in order,
// then the registry itself.
func (c *imageCache) candidates(ref name.Reference) ([]name.Repository, error) {
	repo := ref.Context()
	var out []name.Repository
	for _, ep := range c.mirrors[repo.RegistryStr()] {
		r, err := mirrorRepo(ep, repo.RepositoryStr())
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return append(out, repo), nil
}

func (c *imageCache) blobPath(digest string) string {
	return filepath.Join(c.dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

func (c *imageCache) has(b Blob) bool {
	fi, err := os.Stat(c.blobPath(b.Digest))
	return err == nil && fi.Size() == b.Size
}

func refKey(ref, arch string) string { return ref + " linux/" + arch }

func (c *imageCache) loadRefs() map[string]refEntry {
	return loadJSON[refEntry](filepath.Join(c.dir, "refs.json"))
}

func (c *imageCache) remember(key string, e refEntry) error {
	return updateJSON(&c.mu, filepath.Join(c.dir, "refs.json"), func(refs map[string]refEntry) { refs[key] = e })
}

// loadJSON reads a JSON object of V (empty when missing or unreadable:
// the cache then fetches or hashes again).
func loadJSON[V any](path string) map[string]V {
	m := map[string]V{}
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

// updateJSON rewrites such a file with edit applied, atomically, one
// writer at a time.
func updateJSON[V any](mu *sync.Mutex, path string, edit func(map[string]V)) error {
	mu.Lock()
	defer mu.Unlock()
	m := loadJSON[V](path)
	edit(m)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return fileutil.WriteAtomic(path, b, 0o644)
}

// lock serialises the download of one digest (two images sharing a base
// layer fetch it once).
func (c *imageCache) lock(digest string) func() {
	c.mu.Lock()
	m, ok := c.inflight[digest]
	if !ok {
		m = &sync.Mutex{}
		c.inflight[digest] = m
	}
	c.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// pulled says what ensure did.
type pulled struct {
	Image
	Cached     bool
	Downloaded int64
	From       string
}

// ensure puts ref's image for linux/arch in the cache (what is there
// already is not fetched again) and describes it.
func (c *imageCache) ensure(ctx context.Context, ref, arch string) (pulled, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return pulled{}, fmt.Errorf("image %q: %w", ref, err)
	}
	cands, err := c.candidates(r)
	if err != nil {
		return pulled{}, err
	}
	key := refKey(ref, arch)
	out := pulled{Image: Image{Ref: ref, Arch: arch}, Cached: true}
	e, ok := c.loadRefs()[key]
	raw, rerr := os.ReadFile(c.blobPath(e.Digest))
	if !ok || rerr != nil || digestOf(raw) != e.Digest {
		out.Cached = false
		if e, raw, out.From, err = c.resolve(ctx, r, cands, arch); err != nil {
			return pulled{}, err
		}
		if err := c.writeBlob(e.Digest, bytes.NewReader(raw), int64(len(raw))); err != nil {
			return pulled{}, err
		}
		out.Downloaded += int64(len(raw))
		// Remembered now: a rerun after a failed blob needs no resolving.
		if err := c.remember(key, e); err != nil {
			return pulled{}, err
		}
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return pulled{}, fmt.Errorf("%s: manifest %s: %w", ref, e.Digest, err)
	}
	out.Digest, out.MediaType, out.Source, out.ManifestSize = e.Digest, e.MediaType, e.Source, int64(len(raw))
	out.Config = Blob{Digest: m.Config.Digest.String(), Size: m.Config.Size}
	out.Size = out.ManifestSize + m.Config.Size
	blobs := []Blob{out.Config}
	for _, l := range m.Layers {
		b := Blob{Digest: l.Digest.String(), Size: l.Size}
		out.Layers = append(out.Layers, b)
		out.Size += l.Size
		blobs = append(blobs, b)
	}
	for _, b := range blobs {
		n, from, err := c.fetchBlob(ctx, r, cands, b)
		if err != nil {
			return pulled{}, err
		}
		if n > 0 {
			out.Cached = false
			out.Downloaded += n
			if out.From == "" {
				out.From = from
			}
		}
	}
	if err := c.checkPlatform(out.Config, ref, arch); err != nil {
		return pulled{}, err
	}
	return out, nil
}

// resolve asks the candidates, in order, for ref's manifest for linux/arch.
func (c *imageCache) resolve(ctx context.Context, ref name.Reference, cands []name.Repository, arch string) (refEntry, []byte, string, error) {
	var errs []string
	for i, repo := range cands {
		var at name.Reference
		if d, ok := ref.(name.Digest); ok {
			at = repo.Digest(d.DigestStr())
		} else {
			at = repo.Tag(ref.Identifier())
		}
		opts := append(slices.Clone(c.opts), remote.WithContext(ctx), remote.WithPlatform(v1.Platform{OS: "linux", Architecture: arch}))
		desc, err := remote.Get(at, opts...)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", at, err))
			continue
		}
		img, err := desc.Image()
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: no linux/%s image: %v", at, arch, err))
			continue
		}
		raw, err := img.RawManifest()
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", at, err))
			continue
		}
		mt, err := img.MediaType()
		if err != nil {
			return refEntry{}, nil, "", err
		}
		e := refEntry{Digest: digestOf(raw), MediaType: string(mt)}
		if desc.Digest.String() != e.Digest {
			e.Source = desc.Digest.String()
		}
		return e, raw, where(i, cands), nil
	}
	return refEntry{}, nil, "", fmt.Errorf("pull %s (linux/%s): %s", ref, arch, strings.Join(errs, "; "))
}

// where names candidate i for the progress lines.
func where(i int, cands []name.Repository) string {
	if i < len(cands)-1 {
		return "mirror " + cands[i].RegistryStr()
	}
	return cands[i].RegistryStr()
}

// fetchBlob makes sure b is in the cache; it returns the bytes downloaded.
func (c *imageCache) fetchBlob(ctx context.Context, ref name.Reference, cands []name.Repository, b Blob) (int64, string, error) {
	if c.has(b) {
		return 0, "", nil
	}
	unlock := c.lock(b.Digest)
	defer unlock()
	if c.has(b) {
		return 0, "", nil
	}
	var errs []string
	for i, repo := range cands {
		l, err := remote.Layer(repo.Digest(b.Digest), append(slices.Clone(c.opts), remote.WithContext(ctx))...)
		if err == nil {
			var rc io.ReadCloser
			if rc, err = l.Compressed(); err == nil {
				err = c.writeBlob(b.Digest, c.counter.reader(rc), b.Size)
				rc.Close()
			}
		}
		if err == nil {
			return b.Size, where(i, cands), nil
		}
		if ctx.Err() != nil {
			return 0, "", ctx.Err()
		}
		errs = append(errs, fmt.Sprintf("%s: %v", repo, err))
	}
	return 0, "", fmt.Errorf("%s: blob %s: %s", ref, b.Digest, strings.Join(errs, "; "))
}

// writeBlob stores r as blob digest, verified, atomically.
func (c *imageCache) writeBlob(digest string, r io.Reader, size int64) error {
	dst := c.blobPath(digest)
	f, err := os.CreateTemp(filepath.Dir(dst), ".partial-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest || n != size {
		return fmt.Errorf("blob %s: got %d bytes hashing to %s (want %d bytes)", digest, n, got, size)
	}
	return os.Rename(f.Name(), dst)
}

// checkPlatform refuses an image built for another platform (a registry
// that serves one architecture's image under a tag, without an index).
func (c *imageCache) checkPlatform(config Blob, ref, arch string) error {
	f, err := os.Open(c.blobPath(config.Digest))
	if err != nil {
		return err
	}
	defer f.Close()
	cfg, err := v1.ParseConfigFile(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("%s: config %s: %w", ref, config.Digest, err)
	}
	if cfg.OS != "linux" || cfg.Architecture != arch {
		return fmt.Errorf("%s: the registry's image is %s/%s, not linux/%s (it publishes no image for linux/%s)", ref, cfg.OS, cfg.Architecture, arch, arch)
	}
	return nil
}

func digestOf(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// byteCounter counts downloaded bytes for the progress line.
type byteCounter struct {
	mu sync.Mutex
	n  int64
	on func(total int64)
}

func (b *byteCounter) add(n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.n += n
	t := b.n
	b.mu.Unlock()
	if b.on != nil {
		b.on(t)
	}
}

func (b *byteCounter) reader(r io.Reader) io.Reader { return &countingReader{r: r, c: b} }

type countingReader struct {
	r io.Reader
	c *byteCounter
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.c.add(int64(n))
	return n, err
}
