package bundle_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hacluster/hacluster/pkg/bundle"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/upstream"
)

// startUpstream starts the upstream in a box (skipped when `make upstream`
// has not built it, outside CI).
func startUpstream(t testing.TB) *upstream.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	up, err := upstream.Start(ctx, upstream.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		if errors.Is(err, upstream.ErrNotBuilt) && os.Getenv("CI") == "" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	return up
}

// boxOptions builds from the box only: its release mirrors and its
// registry as the mirror of every registry it holds images of.
func boxOptions(up *upstream.Server, cache, out string, logf func(string, ...any)) bundle.Options {
	v := up.Versions
	reg := map[string][]string{}
	for _, im := range up.Images {
		r, _ := name.ParseReference(im.Ref)
		reg[r.Context().RegistryStr()] = []string{up.RegistryMirror(r.Context().RegistryStr())}
	}
	return bundle.Options{
		Output:          out,
		Versions:        bundle.Versions{Kubernetes: v.Kubernetes, Containerd: v.Containerd, Runc: v.Runc, CNIPlugins: v.CNIPlugins, Crictl: v.Crictl, Flannel: inventory.DefaultFlannel},
		CNI:             "flannel",
		CacheDir:        cache,
		Mirrors:         map[string]string{"https://dl.k8s.io": up.MirrorURL("dl.k8s.io"), "https://github.com": up.MirrorURL("github.com")},
		RegistryMirrors: reg,
		Logf:            logf,
	}
}

// The real thing: every release file and image the box serves (what
// bootstrap and kubeadm use in the node bed) into a bundle that verifies,
// whose layouts hold every image `kubeadm config images list` names and
// flannel's, by the digests the registry serves; a second build makes no
// request; a flipped byte in kubelet and a swapped kube-proxy layer are
// refused with the entry named.
func TestBundleFromUpstreamInABox(t *testing.T) {
	up := startUpstream(t)
	ctx := context.Background()
	cache, dir := t.TempDir(), t.TempDir()
	out := filepath.Join(dir, "bundle.tar")
	res, err := bundle.Build(ctx, boxOptions(up, cache, out, t.Logf))
	if err != nil {
		t.Fatal(err)
	}
	m := res.Manifest
	t.Logf("cold build: %s, %.1f MB downloaded, bundle %.1f MB", res.Took.Round(time.Millisecond), float64(res.Downloaded)/1e6, float64(res.Size)/1e6)

	// Which images: kubeadm's own answer, and the table agrees with it.
	if !strings.HasPrefix(m.ImagesFrom, "kubeadm ") {
		t.Errorf("images from %q: want the bundle's kubeadm", m.ImagesFrom)
	}
	var kubeadm string
	for _, f := range m.Files {
		if f.Name == "kubeadm" {
			kubeadm = filepath.Join(cache, "sha256", f.SHA256)
		}
	}
	fromBinary, err := bundle.KubeadmImagesFromBinary(ctx, kubeadm, m.Versions.Kubernetes, m.ImageRepository)
	if err != nil {
		t.Fatal(err)
	}
	fromTable, err := bundle.KubeadmImagesFromTable(m.Versions.Kubernetes, m.ImageRepository)
	if err != nil || !slices.Equal(fromBinary, fromTable) {
		t.Errorf("kubeadm says %v, the table %v (%v)", fromBinary, fromTable, err)
	}

	v, err := bundle.Verify(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("verified %d files, %d images, %d blobs, %.1f MB", v.Files, v.Images, v.Blobs, float64(v.Bytes)/1e6)
	names := checkLayout(t, out, m, false)
	for _, ref := range fromBinary {
		if !names[ref+" amd64"] {
			t.Errorf("kubeadm asks for %s: not in the bundle", ref)
		}
	}
	served := map[string]string{}
	for _, im := range up.Images {
		served[im.Ref] = im.Digest
	}
	for _, im := range m.Images {
		if served[im.Ref] != im.Digest {
			t.Errorf("%s: bundle has %s, the registry serves %s", im.Ref, im.Digest, served[im.Ref])
		}
	}
	if len(m.Images) != len(up.ClusterImages()) {
		t.Errorf("%d images in the bundle, the box serves %d of kubeadm's and flannel's", len(m.Images), len(up.ClusterImages()))
	}

	// The bundle's own containerd imports its images under kubeadm's names.
	t.Run("ctr import", func(t *testing.T) {
		var tgz string
		for _, f := range m.Files {
			if f.Name == "containerd" {
				tgz = filepath.Join(cache, "sha256", f.SHA256)
			}
		}
		layout := filepath.Join(t.TempDir(), "linux-amd64.tar")
		rewriteEntry(t, out, bundle.LayoutPath("amd64"), layout)
		got := ctrImport(t, tgz, layout)
		for _, im := range m.Images {
			if got[im.Ref] != im.Digest {
				t.Errorf("containerd has %s as %q, want %s", im.Ref, got[im.Ref], im.Digest)
			}
		}
		if len(got) != len(m.Images) {
			t.Errorf("containerd has %d images, the bundle %d: %v", len(got), len(m.Images), got)
		}
	})

	// Warm: nothing downloaded, not even a checksum file or a registry ping.
	before := up.Requests()
	res2, err := bundle.Build(ctx, boxOptions(up, cache, filepath.Join(dir, "again.tar"), t.Logf))
	if err != nil {
		t.Fatal(err)
	}
	after := up.Requests()
	for k := range after {
		if after[k] != before[k] {
			t.Errorf("the second build made requests to %s: %d -> %d", k, before[k], after[k])
		}
	}
	if res2.Downloaded != 0 || res2.SHA256 == "" {
		t.Errorf("second build: %+v", res2)
	}
	t.Logf("warm build: %s", res2.Took.Round(time.Millisecond))
	os.Remove(res2.Path)

	// Tampered: one byte of kubelet; one layer of kube-proxy swapped for pause's.
	bad := filepath.Join(dir, "bad.tar")
	rewrite(t, out, bad, func(n string, r io.Reader) []byte {
		if n == "files/linux/amd64/kubelet" {
			return flipByte(r)
		}
		return nil
	})
	_, err = bundle.Verify(bad)
	mustContain(t, err, "files/linux/amd64/kubelet: sha256")
	proxy, pause := imageNamed(t, m, "/kube-proxy:"), imageNamed(t, m, "/pause:")
	last := len(proxy.Layers) - 1
	rewrite(t, out, bad, func(n string, r io.Reader) []byte {
		if n == "images/linux-amd64.tar" {
			return swapLayer(t, r, proxy.Layers[last].Digest, pause.Layers[0].Digest)
		}
		return nil
	})
	_, err = bundle.Verify(bad)
	mustContain(t, err, "image "+proxy.Ref+" (linux/amd64): layer ", proxy.Layers[last].Digest, "content hashes to "+pause.Layers[0].Digest)
}
