// Package upstream is the internet in a box for the node bed: one HTTP server
// on this machine that serves what an installer downloads from the real
// upstreams, so that tests run the product's real download, checksum, upload
// and pull code with no internet.
//
//   - Release downloads, in the real sites' URL layouts with their checksum
//     files, under a path named for the site: /dl.k8s.io/release/v1.37.2/bin/
//     linux/amd64/kubelet(.sha256), /github.com/containerd/containerd/releases/
//     download/v2.4.2/containerd-2.4.2-linux-amd64.tar.gz(.sha256sum), and
//     runc, the CNI plugins and crictl the same way. MirrorURL gives the base
//     to use in place of https://dl.k8s.io or https://github.com.
//   - An OCI registry (go-containerregistry's registry, blobs on disk) under
//     /v2/, holding every image kubeadm asks for, each under a repository
//     named for its registry: registry.k8s.io/kube-apiserver:v1.37.2 is
//     <Addr>/registry.k8s.io/kube-apiserver:v1.37.2. A containerd hosts.toml
//     points at it with RegistryMirror and override_path = true.
//
// The artifacts are built once by `make upstream` (hack/upstream/build.sh)
// into .cache/upstream; Start only serves them and pushes the images (blobs
// already on disk are not uploaded again).
package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hacluster/hacluster/pkg/fileutil"
)

// EnvDir overrides where the artifacts are looked up (default
// <repo>/.cache/upstream).
const EnvDir = "HACLUSTER_UPSTREAM_DIR"

// Options configure Start.
type Options struct {
	// Addr to listen on, host:port; the node bed passes its gateway address
	// with port 0 (a free port).
	Addr string
	// Dir holds files/ and images/ as hack/upstream/build.sh writes them.
	Dir string
	// Logf, when set, reports what is pushed and served.
	Logf func(format string, args ...any)
}

// Image is one image the registry holds.
type Image struct {
	// Ref is the name a user (or kubeadm) knows, e.g.
	// registry.k8s.io/kube-apiserver:v1.37.2.
	Ref string
	// Digest of its manifest, as pushed.
	Digest string
}

// Server serves the release downloads and the registry.
type Server struct {
	// Addr is host:port of the server; URL is http://Addr.
	Addr string
	URL  string
	// Images holds every image pushed, in images.txt's order.
	Images []Image
	// Dir is the artifact directory.
	Dir string
	// Versions of what is served (versions.json): Kubernetes, containerd,
	// runc, the CNI plugins, crictl.
	Versions Versions

	srv    *http.Server
	ln     net.Listener
	done   chan struct{}
	closed sync.Once

	mu       sync.Mutex
	requests map[string]int
}

// Versions are the pinned versions hack/upstream/build.sh built.
type Versions struct {
	Kubernetes string `json:"kubernetes"`
	Containerd string `json:"containerd"`
	Runc       string `json:"runc"`
	CNIPlugins string `json:"cniPlugins"`
	Crictl     string `json:"crictl"`
	// MetricsServer is the release of its image and components.yaml.
	MetricsServer string `json:"metricsServer"`
}

// DefaultDir is $HACLUSTER_UPSTREAM_DIR or <repo>/.cache/upstream.
func DefaultDir() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		return d, nil
	}
	root, err := fileutil.RepoRoot()
	if err != nil {
		return "", fmt.Errorf("%w; set %s", err, EnvDir)
	}
	return filepath.Join(root, ".cache", "upstream"), nil
}

// ErrNotBuilt is returned (wrapped) by Start when the artifacts are missing.
var ErrNotBuilt = errors.New("the upstream artifacts are not built: run `make upstream`")

// Start serves Dir on Addr and pushes the images. Close stops it.
func Start(ctx context.Context, opts Options) (*Server, error) {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dir := opts.Dir
	if dir == "" {
		var err error
		if dir, err = DefaultDir(); err != nil {
			return nil, err
		}
	}
	idx, list, err := readLayout(filepath.Join(dir, "images", "oci"))
	if err != nil {
		return nil, fmt.Errorf("upstream: %w (%v)", ErrNotBuilt, err)
	}
	var versions Versions
	data, err := os.ReadFile(filepath.Join(dir, "versions.json"))
	if err == nil {
		err = json.Unmarshal(data, &versions)
	}
	if err != nil {
		return nil, fmt.Errorf("upstream: %w (%v)", ErrNotBuilt, err)
	}
	blobs := filepath.Join(dir, "registry-blobs")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("upstream: listen on %s: %w", opts.Addr, err)
	}
	s := &Server{
		Addr:     ln.Addr().String(),
		Dir:      dir,
		Versions: versions,
		ln:       ln,
		done:     make(chan struct{}),
		requests: map[string]int{},
	}
	s.URL = "http://" + s.Addr
	reg := registry.New(registry.WithBlobHandler(registry.NewDiskBlobHandler(blobs)), registry.Logger(log.New(io.Discard, "", 0)))
	files := http.FileServer(http.Dir(filepath.Join(dir, "files")))
	mux := http.NewServeMux()
	mux.Handle("/v2/", reg)
	mux.Handle("/", files)
	s.srv = &http.Server{Handler: s.count(mux), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	t0 := time.Now()
	for _, im := range list {
		if err := s.push(ctx, idx, im); err != nil {
			s.Close()
			return nil, err
		}
		s.Images = append(s.Images, im)
	}
	logf("upstream: serving %s (releases under /<site>/..., registry under /v2/), %d images pushed in %s", s.URL, len(s.Images), time.Since(t0).Round(time.Millisecond))
	return s, nil
}

// RefAnnotation names an image in the OCI layout (hack/upstream/ocilayout).
const RefAnnotation = "org.opencontainers.image.ref.name"

// readLayout lists the images of the OCI layout by their ref annotation.
func readLayout(dir string) (v1.ImageIndex, []Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, nil, err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, nil, err
	}
	var out []Image
	for _, d := range m.Manifests {
		ref := d.Annotations[RefAnnotation]
		if ref == "" {
			return nil, nil, fmt.Errorf("%s: image %s has no %s annotation", dir, d.Digest, RefAnnotation)
		}
		out = append(out, Image{Ref: ref, Digest: d.Digest.String()})
	}
	if len(out) == 0 {
		return nil, nil, fmt.Errorf("%s holds no image", dir)
	}
	return idx, out, nil
}

// push uploads one image of the layout under its mirror name; blobs the
// registry already has (on disk from an earlier start) are not sent again.
func (s *Server) push(ctx context.Context, idx v1.ImageIndex, im Image) error {
	src, err := name.ParseReference(im.Ref)
	if err != nil {
		return fmt.Errorf("upstream: image %q: %w", im.Ref, err)
	}
	h, err := v1.NewHash(im.Digest)
	if err != nil {
		return err
	}
	img, err := idx.Image(h)
	if err != nil {
		return fmt.Errorf("upstream: %s: %w", im.Ref, err)
	}
	dst, err := s.MirrorRef(src)
	if err != nil {
		return err
	}
	if err := remote.Write(dst, img, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("upstream: push %s: %w", dst, err)
	}
	return nil
}

// MirrorRef is where the registry holds ref: <Addr>/<registry>/<repo>:<tag>.
func (s *Server) MirrorRef(ref name.Reference) (name.Reference, error) {
	repo := ref.Context()
	mirrored := s.Addr + "/" + repo.RegistryStr() + "/" + repo.RepositoryStr()
	out, err := name.ParseReference(mirrored+sep(ref)+ref.Identifier(), name.Insecure)
	if err != nil {
		return nil, fmt.Errorf("upstream: mirror name of %s: %w", ref, err)
	}
	return out, nil
}

func sep(ref name.Reference) string {
	if _, ok := ref.(name.Digest); ok {
		return "@"
	}
	return ":"
}

// MirrorURL is the base URL that stands in for an upstream site, e.g.
// MirrorURL("dl.k8s.io") = http://<Addr>/dl.k8s.io for https://dl.k8s.io.
func (s *Server) MirrorURL(site string) string { return s.URL + "/" + site }

// RegistryMirror is the endpoint a containerd hosts.toml gives for registry
// (with override_path = true): http://<Addr>/v2/<registry>.
func (s *Server) RegistryMirror(registry string) string { return s.URL + "/v2/" + registry }

// Requests returns how many requests each top-level path (a site, or "v2")
// has had: tests use it to prove that downloads came from here.
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.requests)
}

func (s *Server) count(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		top, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		s.mu.Lock()
		s.requests[top]++
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// Close stops the server.
func (s *Server) Close() error {
	var err error
	s.closed.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = s.srv.Shutdown(ctx)
		<-s.done
	})
	return err
}

// ClusterImages are the images every cluster's nodes pull: kubeadm's and
// flannel's, without the add-ons' (metrics-server), which a bundle leaves out.
func (s *Server) ClusterImages() []Image {
	var out []Image
	for _, im := range s.Images {
		if !strings.HasPrefix(im.Ref, "registry.k8s.io/metrics-server/") {
			out = append(out, im)
		}
	}
	return out
}
