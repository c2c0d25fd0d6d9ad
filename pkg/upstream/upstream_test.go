package upstream_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hacluster/hacluster/pkg/upstream"
)

func start(t *testing.T) *upstream.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := upstream.Start(ctx, upstream.Options{Addr: "127.0.0.1:0", Logf: t.Logf})
	if err != nil {
		if errors.Is(err, upstream.ErrNotBuilt) && os.Getenv("CI") == "" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Every download matches its checksum file, in the upstream's own format.
func TestReleaseDownloadsMatchTheirChecksumFiles(t *testing.T) {
	s := start(t)
	v := s.Versions
	k8s := s.MirrorURL("dl.k8s.io") + "/release/" + v.Kubernetes + "/bin/linux/amd64/"
	gh := s.MirrorURL("github.com")
	for _, c := range []struct {
		file, sums string
	}{
		{k8s + "kubelet", k8s + "kubelet.sha256"},
		{k8s + "kubeadm", k8s + "kubeadm.sha256"},
		{k8s + "kubectl", k8s + "kubectl.sha256"},
		{gh + fmt.Sprintf("/containerd/containerd/releases/download/%s/containerd-%s-linux-amd64.tar.gz", v.Containerd, strings.TrimPrefix(v.Containerd, "v")),
			gh + fmt.Sprintf("/containerd/containerd/releases/download/%s/containerd-%s-linux-amd64.tar.gz.sha256sum", v.Containerd, strings.TrimPrefix(v.Containerd, "v"))},
		{gh + "/opencontainers/runc/releases/download/" + v.Runc + "/runc.amd64", gh + "/opencontainers/runc/releases/download/" + v.Runc + "/runc.sha256sum"},
		{gh + fmt.Sprintf("/containernetworking/plugins/releases/download/%s/cni-plugins-linux-amd64-%s.tgz", v.CNIPlugins, v.CNIPlugins),
			gh + fmt.Sprintf("/containernetworking/plugins/releases/download/%s/cni-plugins-linux-amd64-%s.tgz.sha256", v.CNIPlugins, v.CNIPlugins)},
		{gh + fmt.Sprintf("/kubernetes-sigs/cri-tools/releases/download/%s/crictl-%s-linux-amd64.tar.gz", v.Crictl, v.Crictl),
			gh + fmt.Sprintf("/kubernetes-sigs/cri-tools/releases/download/%s/crictl-%s-linux-amd64.tar.gz.sha256", v.Crictl, v.Crictl)},
	} {
		body := get(t, c.file)
		sums := strings.Fields(string(get(t, c.sums)))
		base := filepath.Base(c.file)
		want := ""
		switch {
		case len(sums) == 1: // dl.k8s.io: the bare digest
			want = sums[0]
		default: // sha256sum format: "<digest>  <file>" lines
			for i := 0; i+1 < len(sums); i += 2 {
				if sums[i+1] == base {
					want = sums[i]
				}
			}
		}
		if got := sum(body); got != want || len(body) < 1<<20 {
			t.Errorf("%s: sha256 %s (%d bytes), checksum file says %q", base, got, len(body), want)
		}
	}
	if n := s.Requests()["dl.k8s.io"]; n != 6 {
		t.Errorf("dl.k8s.io requests: %d, want 6", n)
	}
}

// The registry holds every image under its mirror name; what is pulled has
// the digest of what was pushed, and that is the tarball's image.
func TestRegistryServesPushedDigests(t *testing.T) {
	s := start(t)
	var names []string
	for _, im := range s.Images {
		names = append(names, im.Ref)
		ref, err := name.ParseReference(im.Ref)
		if err != nil {
			t.Fatal(err)
		}
		mirror, err := s.MirrorRef(ref)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Get(mirror)
		if err != nil {
			t.Fatalf("pull %s: %v", mirror, err)
		}
		if desc.Digest.String() != im.Digest {
			t.Errorf("%s: pulled %s, pushed %s", im.Ref, desc.Digest, im.Digest)
		}
		img, err := desc.Image()
		if err != nil {
			t.Fatal(err)
		}
		layers, err := img.Layers()
		if err != nil || len(layers) == 0 {
			t.Fatalf("%s: layers %v %v", im.Ref, len(layers), err)
		}
		// The first layer's blob comes back whole (digest checked by the client).
		rc, err := layers[len(layers)-1].Compressed()
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n == 0 {
			t.Errorf("%s: layer read %d bytes: %v", im.Ref, n, err)
		}
	}
	joined := strings.Join(names, " ")
	for _, want := range []string{"/kube-apiserver:", "/kube-controller-manager:", "/kube-scheduler:", "/kube-proxy:", "/etcd:", "/pause:", "/coredns/coredns:"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no %s image in %s", want, joined)
		}
	}
	// A tag nobody pushed is unknown, not an error page.
	bad, _ := name.ParseReference(s.Addr+"/registry.k8s.io/kube-apiserver:v0.0.0", name.Insecure)
	if _, err := remote.Head(bad); err == nil {
		t.Error("an unknown tag resolved")
	}
}

// A second start pushes nothing new (the blobs are on disk, the layers were
// hashed at build time) and takes well under the time of the first.
func TestSecondStartIsCheap(t *testing.T) {
	first := start(t)
	t0 := time.Now()
	s := start(t)
	d := time.Since(t0)
	t.Logf("warm start with %d images: %s", len(s.Images), d.Round(time.Millisecond))
	if d > 5*time.Second {
		t.Errorf("warm start took %s", d)
	}
	for i := range s.Images {
		if s.Images[i] != first.Images[i] {
			t.Errorf("digests differ between starts: %+v %+v", s.Images[i], first.Images[i])
		}
	}
}

func TestStartWithoutArtifacts(t *testing.T) {
	_, err := upstream.Start(context.Background(), upstream.Options{Addr: "127.0.0.1:0", Dir: t.TempDir()})
	if !errors.Is(err, upstream.ErrNotBuilt) {
		t.Fatalf("want ErrNotBuilt, got %v", err)
	}
}
