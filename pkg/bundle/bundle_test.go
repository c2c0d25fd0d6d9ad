package bundle_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hacluster/hacluster/pkg/bundle"
)

// fakeUpstream serves made-up release files with their checksum files in
// the real sites' layouts (/dl.k8s.io/..., /github.com/...) and a registry
// holding made-up images under mirror names (/v2/registry.k8s.io/...):
// small and quick, for what the upstream in a box is too big to do often.
type fakeUpstream struct {
	*httptest.Server
	mu       sync.Mutex
	requests map[string]int // "files" or "registry"
	// failBlob, when set, fails that blob's GETs (a registry cut off).
	failBlob string
	images   []string
}

// kubeadm of the fake release: a script that prints the image list.
const fakeKubeadm = `#!/bin/sh
[ "$1 $2 $3" = "config images list" ] || exit 1
echo registry.k8s.io/kube-apiserver:v1.37.2
echo registry.k8s.io/pause:3.10.2
echo registry.k8s.io/coredns/coredns:v1.14.6
`

func content(p string) []byte {
	if path.Base(p) == "kubeadm" {
		return []byte(fakeKubeadm)
	}
	return []byte(strings.Repeat("release file "+p+"\n", 2000))
}

func newFakeUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	u := &fakeUpstream{requests: map[string]int{}}
	reg := registry.New(registry.Logger(nilLogger()))
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		u.mu.Lock()
		if strings.HasPrefix(p, "/v2/") {
			u.requests["registry"]++
			fail := u.failBlob != "" && r.Method == http.MethodGet && strings.HasSuffix(p, "/blobs/"+u.failBlob)
			u.mu.Unlock()
			if fail {
				http.Error(w, "blob unknown", http.StatusNotFound) // not retried, unlike 5xx
				return
			}
			reg.ServeHTTP(w, r)
			return
		}
		u.requests["files"]++
		u.mu.Unlock()
		for _, suffix := range []string{".sha256sum", ".sha256"} {
			if base, ok := strings.CutSuffix(p, suffix); ok {
				names := []string{base}
				if path.Base(base) == "runc" {
					names = []string{base + ".amd64", base + ".arm64"}
				}
				for _, n := range names {
					fmt.Fprintf(w, "%s  %s\n", sum(content(n)), path.Base(n))
				}
				return
			}
		}
		w.Write(content(p))
	}))
	t.Cleanup(u.Close)
	host := strings.TrimPrefix(u.URL, "http://")
	for i, ref := range []string{"registry.k8s.io/kube-apiserver:v1.37.2", "registry.k8s.io/pause:3.10.2", "registry.k8s.io/coredns/coredns:v1.14.6", "ghcr.io/extra/tool:v1", "docker.io/library/busybox:1.37"} {
		img, err := random.Image(int64(3000+i*1000), 2)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := img.ConfigFile()
		cfg = cfg.DeepCopy()
		cfg.OS, cfg.Architecture = "linux", "amd64"
		if img, err = mutate.ConfigFile(img, cfg); err != nil {
			t.Fatal(err)
		}
		dst, err := name.ParseReference(host+"/"+ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(dst, img); err != nil {
			t.Fatal(err)
		}
		u.images = append(u.images, ref)
	}
	u.requests = map[string]int{}
	return u
}

func (u *fakeUpstream) counts() map[string]int {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := map[string]int{}
	for k, v := range u.requests {
		out[k] = v
	}
	return out
}

func (u *fakeUpstream) options(t *testing.T, cache, out string) bundle.Options {
	return bundle.Options{
		Output:          out,
		Versions:        bundle.Versions{Kubernetes: "v1.37.2", Containerd: "v2.4.2", Runc: "v1.5.3", CNIPlugins: "v1.10.0", Crictl: "v1.37.0"},
		CNI:             "none",
		ExtraImages:     []string{"ghcr.io/extra/tool:v1"},
		CacheDir:        cache,
		Mirrors:         map[string]string{"https://dl.k8s.io": u.URL + "/dl.k8s.io", "https://github.com": u.URL + "/github.com"},
		RegistryMirrors: map[string][]string{"registry.k8s.io": {u.URL + "/v2/registry.k8s.io"}, "ghcr.io": {u.URL + "/v2/ghcr.io"}},
		Logf:            t.Logf,
	}
}

func TestBuildInspectVerify(t *testing.T) {
	u := newFakeUpstream(t)
	dir, cache := t.TempDir(), t.TempDir()
	ctx := context.Background()
	out := filepath.Join(dir, "bundle.tar")
	res, err := bundle.Build(ctx, u.options(t, cache, out))
	if err != nil {
		t.Fatal(err)
	}
	m := res.Manifest
	if m.ImagesFrom != "kubeadm v1.37.2 config images list" {
		t.Errorf("images from %q, want the bundle's kubeadm", m.ImagesFrom)
	}
	if len(m.Files) != 8 || len(m.Images) != 4 {
		t.Fatalf("%d files, %d images: %+v", len(m.Files), len(m.Images), m)
	}
	fi, _ := os.Stat(out)
	if fi.Size() != res.Size || res.Downloaded == 0 {
		t.Errorf("result %+v, file %d bytes", res, fi.Size())
	}
	got, err := bundle.ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(m)
	if string(a) != string(b) {
		t.Errorf("manifest read back differs:\n%s\n%s", a, b)
	}
	v, err := bundle.Verify(out)
	if err != nil {
		t.Fatal(err)
	}
	if v.Files != 8 || v.Images != 4 || v.Blobs != 4*(2+2) {
		t.Errorf("verified %+v", v)
	}
	names := checkLayout(t, out, m, true)
	for _, ref := range u.images[:4] { // kubeadm's and --image's (not busybox)
		if !names[ref+" amd64"] {
			t.Errorf("%s not in the layout", ref)
		}
	}

	// A second bundle of the same versions downloads nothing at all.
	before := u.counts()
	res2, err := bundle.Build(ctx, u.options(t, cache, filepath.Join(dir, "again.tar.zst")))
	if err != nil {
		t.Fatal(err)
	}
	if after := u.counts(); after["files"] != before["files"] || after["registry"] != before["registry"] || res2.Downloaded != 0 {
		t.Errorf("second build: requests %v -> %v, downloaded %d", before, after, res2.Downloaded)
	}
	if _, err := bundle.Verify(res2.Path); err != nil {
		t.Errorf("zstd bundle: %v", err)
	}
	if res2.Size >= res.Size {
		t.Errorf("zstd bundle %d bytes, plain %d", res2.Size, res.Size)
	}
	// The same bytes but the creation time: a reproducible archive.
	o := u.options(t, cache, filepath.Join(dir, "b1.tar"))
	o.Now = func() time.Time { return time.Unix(1e9, 0) }
	r1, _ := bundle.Build(ctx, o)
	o.Output = filepath.Join(dir, "b2.tar")
	r2, err := bundle.Build(ctx, o)
	if err != nil || r1.SHA256 != r2.SHA256 {
		t.Errorf("two builds differ: %v %v", r1, err)
	}
}

func TestVerifyRefusesTampering(t *testing.T) {
	u := newFakeUpstream(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "bundle.tar")
	res, err := bundle.Build(context.Background(), u.options(t, t.TempDir(), out))
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.tar")

	rewrite(t, out, bad, func(n string, r io.Reader) []byte {
		if n == "files/linux/amd64/kubelet" {
			return flipByte(r)
		}
		return nil
	})
	_, err = bundle.Verify(bad)
	mustContain(t, err, "files/linux/amd64/kubelet: sha256 ", "the manifest says")
	if !errors.Is(err, bundle.ErrVerify) || strings.Count(err.Error(), "\n") != 0 {
		t.Errorf("want one line: %v", err)
	}

	// One layer of pause swapped for one of kube-apiserver.
	pause, apiserver := imageNamed(t, res.Manifest, "/pause:"), imageNamed(t, res.Manifest, "/kube-apiserver:")
	rewrite(t, out, bad, func(n string, r io.Reader) []byte {
		if n == "images/linux-amd64.tar" {
			return swapLayer(t, r, pause.Layers[1].Digest, apiserver.Layers[0].Digest)
		}
		return nil
	})
	_, err = bundle.Verify(bad)
	mustContain(t, err, "image registry.k8s.io/pause:3.10.2 (linux/amd64): layer 2 of 2 "+pause.Layers[1].Digest, "content hashes to "+apiserver.Layers[0].Digest)
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("want the one named layer, not more: %v", err)
	}

	// An entry missing, one added; not a bundle at all.
	rewrite(t, out, bad, func(n string, r io.Reader) []byte { return nil })
	if _, err := bundle.Verify(bad); err != nil {
		t.Fatalf("an untouched copy: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "junk.tar"), []byte("not a tar"), 0o644)
	_, err = bundle.Verify(filepath.Join(dir, "junk.tar"))
	if !errors.Is(err, bundle.ErrNotBundle) {
		t.Errorf("junk: %v", err)
	}
}

// A build cut in the middle (here: a blob's download fails) leaves what it
// fetched in the cache; the rerun fetches only the rest.
func TestResumeAfterAFailedBuild(t *testing.T) {
	u := newFakeUpstream(t)
	cache, dir := t.TempDir(), t.TempDir()
	o := u.options(t, cache, filepath.Join(dir, "bundle.tar"))
	// The extra image's first layer cannot be had, until the rerun.
	ref, _ := name.ParseReference(strings.TrimPrefix(u.URL, "http://")+"/ghcr.io/extra/tool:v1", name.Insecure)
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := img.Layers()
	d, _ := ls[0].Digest()
	u.mu.Lock()
	u.failBlob = d.String()
	u.mu.Unlock()
	_, err = bundle.Build(context.Background(), o)
	mustContain(t, err, "ghcr.io/extra/tool:v1", d.String())
	if _, serr := os.Stat(o.Output); !os.IsNotExist(serr) {
		t.Errorf("a failed build left %s", o.Output)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("a failed build left %v", left)
	}
	u.mu.Lock()
	u.failBlob = ""
	u.mu.Unlock()
	before := u.counts()
	res, err := bundle.Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	after := u.counts()
	if after["files"] != before["files"] {
		t.Errorf("the rerun downloaded release files again: %v -> %v", before, after)
	}
	// The two layers it had not fetched (the config and the manifest it
	// had): the registry ping, then one GET each.
	if n := after["registry"] - before["registry"]; n != 3 || res.Downloaded != ls0Size(t, ls[0])+ls0Size(t, ls[1]) {
		t.Errorf("the rerun made %d registry requests and downloaded %d bytes", n, res.Downloaded)
	}
}

func ls0Size(t *testing.T, l v1.Layer) int64 {
	n, err := l.Size()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Registry mirrors are tried in order (a dead one is skipped), and a
// Docker Hub short name is mirrored under its registry name docker.io.
func TestRegistryMirrorsInOrder(t *testing.T) {
	u := newFakeUpstream(t)
	o := u.options(t, t.TempDir(), filepath.Join(t.TempDir(), "b.tar"))
	o.RegistryMirrors["registry.k8s.io"] = []string{"http://127.0.0.1:1/v2/registry.k8s.io", u.URL + "/v2/registry.k8s.io"}
	o.RegistryMirrors["docker.io"] = []string{u.URL + "/v2/docker.io"}
	o.ExtraImages = append(o.ExtraImages, "busybox:1.37")
	res, err := bundle.Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if im := imageNamed(t, res.Manifest, "busybox"); im.Ref != "docker.io/library/busybox:1.37" {
		t.Errorf("busybox named %s", im.Ref)
	}
	if _, err := bundle.Verify(res.Path); err != nil {
		t.Fatal(err)
	}
}

// A damaged blob in the image cache never reaches a bundle: the build that
// meets it fails and forgets the layout it had recorded, the next one finds
// the blob (named) and removes it, the one after fetches it again.
func TestDamagedCache(t *testing.T) {
	u := newFakeUpstream(t)
	cache, dir := t.TempDir(), t.TempDir()
	o := u.options(t, cache, filepath.Join(dir, "b.tar"))
	res, err := bundle.Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	layer := imageNamed(t, res.Manifest, "/pause:").Layers[0].Digest
	blob := filepath.Join(cache, "images", "blobs", "sha256", strings.TrimPrefix(layer, "sha256:"))
	b, _ := os.ReadFile(blob)
	os.WriteFile(blob, flipByte(bytes.NewReader(b)), 0o644)
	o.Force = true
	_, err = bundle.Build(context.Background(), o)
	mustContain(t, err, "images/linux-amd64.tar: the image cache no longer holds what it did")
	_, err = bundle.Build(context.Background(), o)
	mustContain(t, err, "blob "+layer+" holds sha256:", "removed")
	if _, err := os.Stat(blob); !os.IsNotExist(err) {
		t.Errorf("the damaged blob is still there: %v", err)
	}
	res, err = bundle.Build(context.Background(), o)
	if err != nil || res.Downloaded == 0 {
		t.Fatalf("third build: %v, %+v", err, res)
	}
	if _, err := bundle.Verify(o.Output); err != nil {
		t.Fatal(err)
	}
}

func TestBadInput(t *testing.T) {
	u := newFakeUpstream(t)
	dir := t.TempDir()
	exists := filepath.Join(dir, "exists.tar")
	os.WriteFile(exists, []byte("mine"), 0o644)
	for want, edit := range map[string]func(*bundle.Options){
		`version "1.37" of Kubernetes: want vMAJOR.MINOR.PATCH`: func(o *bundle.Options) { o.Versions.Kubernetes = "1.37" },
		`architecture "x86": want amd64 or arm64`:               func(o *bundle.Options) { o.Arches = []string{"x86"} },
		"exists.tar exists: pass --force":                       func(o *bundle.Options) { o.Output = exists },
		"calico as the CNI yet":                                 func(o *bundle.Options) { o.CNI = "calico" },
		`flannel v0.1: no pinned checksum`:                      func(o *bundle.Options) { o.CNI, o.Versions.Flannel = "flannel", "v0.1" },
		`registry mirror "ftp://x"`:                             func(o *bundle.Options) { o.RegistryMirrors = map[string][]string{"ghcr.io": {"ftp://x"}} },
		`no output file: pass -o FILE`:                          func(o *bundle.Options) { o.Output = "" },
	} {
		o := u.options(t, t.TempDir(), filepath.Join(dir, "b.tar"))
		edit(&o)
		_, err := bundle.Build(context.Background(), o)
		mustContain(t, err, want)
	}
	if b, _ := os.ReadFile(exists); string(b) != "mine" {
		t.Error("the user's file was overwritten")
	}
	if u.counts()["files"] != 0 {
		t.Error("bad input reached the network")
	}
}

func TestKubeadmTableAndManifestImages(t *testing.T) {
	got, err := bundle.KubeadmImagesFromTable("v1.37.2", "registry.k8s.io")
	if err != nil {
		t.Fatal(err)
	}
	want := "registry.k8s.io/kube-apiserver:v1.37.2 registry.k8s.io/kube-controller-manager:v1.37.2 registry.k8s.io/kube-scheduler:v1.37.2 registry.k8s.io/kube-proxy:v1.37.2 registry.k8s.io/coredns/coredns:v1.14.6 registry.k8s.io/pause:3.10.2 registry.k8s.io/etcd:3.7.0-0"
	if strings.Join(got, " ") != want {
		t.Errorf("table: %v", got)
	}
	got, _ = bundle.KubeadmImagesFromTable("v1.37.0", "mirror.local/k8s")
	if got[4] != "mirror.local/k8s/coredns:v1.14.6" {
		t.Errorf("CoreDNS under another repository: %s", got[4])
	}
	if _, err := bundle.KubeadmImagesFromTable("v1.99.0", "registry.k8s.io"); err == nil || !strings.Contains(err.Error(), "known: v1.37") {
		t.Errorf("unknown minor: %v", err)
	}
	m := "containers:\n  - name: a\n    image: ghcr.io/flannel-io/flannel:v0.28.10\n  - image: \"ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3\" # cni\n    image: ghcr.io/flannel-io/flannel:v0.28.10\n"
	if got := bundle.ManifestImages([]byte(m)); strings.Join(got, " ") != "ghcr.io/flannel-io/flannel:v0.28.10 ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3" {
		t.Errorf("manifest images: %v", got)
	}
	if n, _ := bundle.NormalizeRef("nginx:1.27"); n != "docker.io/library/nginx:1.27" {
		t.Errorf("normalized: %s", n)
	}
}

// Unpack writes each entry once under its sha256, reuses them on a second
// bundle of the same content, and refuses a changed entry.
func TestUnpack(t *testing.T) {
	u := newFakeUpstream(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "bundle.tar")
	res, err := bundle.Build(context.Background(), u.options(t, t.TempDir(), out))
	if err != nil {
		t.Fatal(err)
	}
	into := filepath.Join(dir, "unpacked")
	first, err := bundle.Unpack(out, into)
	if err != nil {
		t.Fatal(err)
	}
	if first.Reused != 0 || len(first.Paths) != len(res.Manifest.Files) {
		t.Errorf("first unpack: reused %d, %d of %d entries", first.Reused, len(first.Paths), len(res.Manifest.Files))
	}
	for _, f := range res.Manifest.Files {
		b, err := os.ReadFile(first.Paths[f.Path])
		if err != nil || sum(b) != f.SHA256 {
			t.Errorf("%s: unpacked content does not match: %v", f.Path, err)
		}
	}
	again, err := bundle.Unpack(out, into)
	if err != nil || again.Reused != len(res.Manifest.Files) {
		t.Errorf("second unpack: %+v %v", again, err)
	}
	bad := filepath.Join(dir, "bad.tar")
	rewrite(t, out, bad, func(n string, r io.Reader) []byte {
		if n == "files/linux/amd64/kubeadm" {
			return flipByte(r)
		}
		return nil
	})
	_, err = bundle.Unpack(bad, t.TempDir())
	mustContain(t, err, "files/linux/amd64/kubeadm", "the manifest says")
}
