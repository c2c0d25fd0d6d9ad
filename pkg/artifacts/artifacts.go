// Package artifacts downloads the release files bootstrap installs (kubelet,
// kubeadm, kubectl, containerd, runc, the CNI plugins, crictl) on the
// operator's machine, once: each is verified against the checksum file its
// upstream publishes next to it, and kept in a cache by content, so that a
// second cluster of the same versions downloads nothing. Interrupted
// downloads resume (HTTP Range). Upstream sites can be replaced by mirrors
// that serve the same paths.
package artifacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hacluster/hacluster/pkg/fileutil"
)

// SumFormat is how a checksum file is written.
type SumFormat int

const (
	// Bare: the file holds the hex digest only (dl.k8s.io).
	Bare SumFormat = iota
	// SHA256Sum: "<digest>  <file name>" lines (sha256sum; GitHub releases).
	SHA256Sum
)

// Artifact is one release file.
type Artifact struct {
	// Name is what it is ("kubelet", "containerd", ...).
	Name string `json:"name"`
	// URL and SumURL are the upstream addresses of the file and its checksums.
	URL       string    `json:"url"`
	SumURL    string    `json:"sumURL,omitempty"`
	SumFormat SumFormat `json:"-"`
	// Pinned is the sha256 this project pins, for files whose upstream
	// publishes no checksum (a release's manifest); SumURL is then empty.
	Pinned string `json:"pinned,omitempty"`
	// Archive: a .tar.gz / .tgz to unpack (else a single executable).
	Archive bool `json:"archive"`
}

// FileName is the file's base name.
func (a Artifact) FileName() string { return path.Base(a.URL) }

// Versions of the runtime pieces (Kubernetes' own are one version).
type Versions struct {
	Kubernetes, Containerd, Runc, CNIPlugins, Crictl string
}

// FlannelManifests pins kube-flannel.yml of the flannel releases bootstrap
// knows: flannel publishes no checksum for it.
var FlannelManifests = map[string]string{
	"v0.28.10": "944a3c1f925f117727a1b7272a323c80965da642498397ec7e6ea9bef0f9e6c5",
}

// Flannel is the manifest of a flannel release.
func Flannel(version string) (Artifact, error) {
	sum, ok := FlannelManifests[version]
	if !ok {
		return Artifact{}, fmt.Errorf("flannel %s: no pinned checksum (known: %s)", version, strings.Join(slices.Sorted(maps.Keys(FlannelManifests)), ", "))
	}
	return Artifact{Name: "kube-flannel.yml", URL: "https://github.com/flannel-io/flannel/releases/download/" + version + "/kube-flannel.yml", Pinned: sum}, nil
}

// List is every artifact bootstrap installs, for linux on arch (amd64, arm64).
func List(v Versions, arch string) []Artifact {
	k := "https://dl.k8s.io/release/" + v.Kubernetes + "/bin/linux/" + arch + "/"
	gh := "https://github.com/"
	c := strings.TrimPrefix(v.Containerd, "v")
	out := []Artifact{}
	for _, b := range []string{"kubelet", "kubeadm", "kubectl"} {
		out = append(out, Artifact{Name: b, URL: k + b, SumURL: k + b + ".sha256", SumFormat: Bare})
	}
	cf := fmt.Sprintf("containerd-%s-linux-%s.tar.gz", c, arch)
	cni := fmt.Sprintf("cni-plugins-linux-%s-%s.tgz", arch, v.CNIPlugins)
	cr := fmt.Sprintf("crictl-%s-linux-%s.tar.gz", v.Crictl, arch)
	return append(out,
		Artifact{Name: "containerd", URL: gh + "containerd/containerd/releases/download/" + v.Containerd + "/" + cf,
			SumURL: gh + "containerd/containerd/releases/download/" + v.Containerd + "/" + cf + ".sha256sum", SumFormat: SHA256Sum, Archive: true},
		Artifact{Name: "runc", URL: gh + "opencontainers/runc/releases/download/" + v.Runc + "/runc." + arch,
			SumURL: gh + "opencontainers/runc/releases/download/" + v.Runc + "/runc.sha256sum", SumFormat: SHA256Sum},
		Artifact{Name: "cni-plugins", URL: gh + "containernetworking/plugins/releases/download/" + v.CNIPlugins + "/" + cni,
			SumURL: gh + "containernetworking/plugins/releases/download/" + v.CNIPlugins + "/" + cni + ".sha256", SumFormat: SHA256Sum, Archive: true},
		Artifact{Name: "crictl", URL: gh + "kubernetes-sigs/cri-tools/releases/download/" + v.Crictl + "/" + cr,
			SumURL: gh + "kubernetes-sigs/cri-tools/releases/download/" + v.Crictl + "/" + cr + ".sha256", SumFormat: SHA256Sum, Archive: true},
	)
}

// Store is the cache: Dir/sha256/<digest> holds verified files, and
// Dir/index.json maps upstream URLs to digests (a hit needs no request).
type Store struct {
	Dir string
	// Mirrors maps an upstream site ("https://dl.k8s.io") to a base URL
	// serving the same paths.
	Mirrors map[string]string
	HTTP    *http.Client
	// Logf reports downloads and their progress.
	Logf func(format string, args ...any)

	mu sync.Mutex
}

// Fetched is a verified file in the cache.
type Fetched struct {
	Artifact
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Cached: nothing was downloaded.
	Cached bool `json:"cached"`
}

// DefaultDir is the user's cache: $XDG_CACHE_HOME/hacluster/artifacts.
func DefaultDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "hacluster", "artifacts"), nil
}

func (s *Store) client() *http.Client {
	if s.HTTP != nil {
		return s.HTTP
	}
	return &http.Client{Timeout: 30 * time.Minute}
}

func (s *Store) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// Resolve applies the mirrors to an upstream URL.
func (s *Store) Resolve(u string) string {
	best := ""
	for site := range s.Mirrors {
		site = strings.TrimRight(site, "/")
		if (u == site || strings.HasPrefix(u, site+"/")) && len(site) > len(best) {
			best = site
		}
	}
	if best == "" {
		return u
	}
	return strings.TrimRight(s.Mirrors[best], "/") + strings.TrimPrefix(u, best)
}

type index map[string]string // upstream URL -> sha256

func (s *Store) loadIndex() index {
	idx := index{}
	b, err := os.ReadFile(filepath.Join(s.Dir, "index.json"))
	if err == nil {
		_ = json.Unmarshal(b, &idx)
	}
	return idx
}

func (s *Store) remember(url, sum string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := s.loadIndex()
	idx[url] = sum
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return fileutil.WriteAtomic(filepath.Join(s.Dir, "index.json"), b, 0o644)
}

func (s *Store) blob(sum string) string { return filepath.Join(s.Dir, "sha256", sum) }

// Fetch returns the verified file, from the cache or downloaded.
func (s *Store) Fetch(ctx context.Context, a Artifact) (Fetched, error) {
	if err := os.MkdirAll(filepath.Join(s.Dir, "sha256"), 0o755); err != nil {
		return Fetched{}, err
	}
	if sum, ok := s.loadIndex()[a.URL]; ok {
		if fi, err := os.Stat(s.blob(sum)); err == nil {
			return Fetched{Artifact: a, Path: s.blob(sum), SHA256: sum, Size: fi.Size(), Cached: true}, nil
		}
	}
	want, err := s.checksum(ctx, a)
	if err != nil {
		return Fetched{}, err
	}
	if fi, err := os.Stat(s.blob(want)); err == nil {
		return Fetched{Artifact: a, Path: s.blob(want), SHA256: want, Size: fi.Size(), Cached: true}, s.remember(a.URL, want)
	}
	size, err := s.download(ctx, a, want)
	if err != nil {
		return Fetched{}, err
	}
	return Fetched{Artifact: a, Path: s.blob(want), SHA256: want, Size: size}, s.remember(a.URL, want)
}

// checksum reads the published digest of a (or returns the pinned one).
func (s *Store) checksum(ctx context.Context, a Artifact) (string, error) {
	if a.Pinned != "" {
		return a.Pinned, nil
	}
	u := s.Resolve(a.SumURL)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := s.client().Do(req)
	if err != nil {
		return "", fmt.Errorf("%s: checksum file: %w", a.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: checksum file %s: %s", a.Name, u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	return parseSum(string(body), a.SumFormat, a.FileName())
}

func parseSum(body string, f SumFormat, file string) (string, error) {
	fields := strings.Fields(body)
	isHex := func(s string) bool {
		_, err := hex.DecodeString(s)
		return err == nil && len(s) == 64
	}
	if f == Bare {
		if len(fields) >= 1 && isHex(fields[0]) {
			return strings.ToLower(fields[0]), nil
		}
		return "", fmt.Errorf("checksum file of %s holds no sha256", file)
	}
	for _, line := range strings.Split(body, "\n") {
		fs := strings.Fields(line)
		if len(fs) == 2 && isHex(fs[0]) && strings.TrimPrefix(fs[1], "*") == file {
			return strings.ToLower(fs[0]), nil
		}
	}
	return "", fmt.Errorf("checksum file lists no %s", file)
}

// download fetches a into the cache, resuming a partial file, and checks
// the digest before the file takes its place.
func (s *Store) download(ctx context.Context, a Artifact, want string) (int64, error) {
	part := filepath.Join(s.Dir, want+".partial")
	f, err := os.OpenFile(part, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	u := s.Resolve(a.URL)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := s.client().Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", a.Name, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		s.logf("download %-12s resuming at %d bytes from %s", a.Name, have, u)
	case resp.StatusCode == http.StatusOK:
		if err := f.Truncate(0); err != nil {
			return 0, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return 0, err
		}
		have = 0
		s.logf("download %-12s %s", a.Name, u)
	default:
		return 0, fmt.Errorf("%s: %s: %s", a.Name, u, resp.Status)
	}
	t0 := time.Now()
	n, err := io.Copy(f, resp.Body)
	if err != nil {
		return 0, fmt.Errorf("%s: download interrupted after %d bytes (run again to resume): %w", a.Name, have+n, err)
	}
	// Hash the whole file (the resumed part included).
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return 0, err
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != want {
		f.Close()
		os.Remove(part)
		return 0, fmt.Errorf("%s: checksum mismatch: %s has sha256 %s, its checksum file says %s (removed; a broken mirror or a tampered file)", a.Name, u, got, want)
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(part, s.blob(want)); err != nil {
		return 0, err
	}
	d := time.Since(t0)
	s.logf("download %-12s %.1f MB in %s, sha256 verified", a.Name, float64(n)/1e6, d.Round(time.Millisecond))
	return size, nil
}

// FetchAll fetches every artifact, a few at a time.
func (s *Store) FetchAll(ctx context.Context, as []Artifact) ([]Fetched, error) {
	out := make([]Fetched, len(as))
	errs := make([]error, len(as))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, a := range as {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i], errs[i] = s.Fetch(ctx, a)
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}
