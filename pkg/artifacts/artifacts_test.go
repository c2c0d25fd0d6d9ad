package artifacts_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hacluster/hacluster/pkg/artifacts"
	"github.com/hacluster/hacluster/pkg/upstream"
)

// Against the upstream in a box (real release files and checksum files in
// the upstreams' layouts): every artifact of the pinned versions verifies,
// and a second fetch makes no request at all.
func TestFetchFromUpstreamInABox(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	up, err := upstream.Start(ctx, upstream.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		if errors.Is(err, upstream.ErrNotBuilt) && os.Getenv("CI") == "" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	defer up.Close()
	v := up.Versions
	list := artifacts.List(artifacts.Versions{Kubernetes: v.Kubernetes, Containerd: v.Containerd, Runc: v.Runc, CNIPlugins: v.CNIPlugins, Crictl: v.Crictl}, "amd64")
	s := &artifacts.Store{Dir: t.TempDir(), Logf: t.Logf, Mirrors: map[string]string{
		"https://dl.k8s.io":  up.MirrorURL("dl.k8s.io"),
		"https://github.com": up.MirrorURL("github.com"),
	}}
	t0 := time.Now()
	got, err := s.FetchAll(ctx, list)
	if err != nil {
		t.Fatal(err)
	}
	cold := time.Since(t0)
	var total int64
	for _, f := range got {
		b, err := os.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(b)
		if hex.EncodeToString(h[:]) != f.SHA256 || f.Cached || f.Size < 1<<20 {
			t.Errorf("%s: %+v", f.Name, f)
		}
		total += f.Size
	}
	before := up.Requests()
	t0 = time.Now()
	again, err := s.FetchAll(ctx, list)
	if err != nil {
		t.Fatal(err)
	}
	warm := time.Since(t0)
	for i, f := range again {
		if !f.Cached || f.SHA256 != got[i].SHA256 {
			t.Errorf("second fetch of %s: %+v", f.Name, f)
		}
	}
	after := up.Requests()
	for k := range after {
		if after[k] != before[k] {
			t.Errorf("the second fetch made requests to %s: %d -> %d", k, before[k], after[k])
		}
	}
	t.Logf("%d artifacts, %.0f MB: cold %s, cached %s", len(list), float64(total)/1e6, cold.Round(time.Millisecond), warm.Round(time.Microsecond))
}

// A file that does not match its checksum file is refused and not kept; a
// cut download resumes with a Range request and is verified whole.
func TestChecksumMismatchAndResume(t *testing.T) {
	good := strings.Repeat("kubelet binary ", 200000)
	sum := sha256.Sum256([]byte(good))
	var ranges atomic.Int32
	serveBad := atomic.Bool{}
	cut := atomic.Bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, ".sha256"):
			fmt.Fprintln(w, hex.EncodeToString(sum[:]))
		case serveBad.Load():
			fmt.Fprint(w, good[:len(good)-1]+"X")
		case cut.Load():
			// Announce the whole length, send half, then drop the connection.
			w.Header().Set("Content-Length", fmt.Sprint(len(good)))
			w.WriteHeader(http.StatusOK)
			w.Write([]byte(good[:len(good)/2]))
			if hj, ok := w.(http.Hijacker); ok {
				c, _, _ := hj.Hijack()
				c.Close()
			}
		default:
			if r.Header.Get("Range") != "" {
				ranges.Add(1)
			}
			http.ServeContent(w, r, "kubelet", time.Time{}, strings.NewReader(good))
		}
	}))
	defer srv.Close()
	a := artifacts.Artifact{Name: "kubelet", URL: "https://dl.k8s.io/release/v9/bin/linux/amd64/kubelet", SumURL: "https://dl.k8s.io/release/v9/bin/linux/amd64/kubelet.sha256", SumFormat: artifacts.Bare}
	dir := t.TempDir()
	s := &artifacts.Store{Dir: dir, Mirrors: map[string]string{"https://dl.k8s.io": srv.URL}}
	ctx := context.Background()

	serveBad.Store(true)
	if _, err := s.Fetch(ctx, a); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("bad file: %v", err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "sha256", "*")); len(files) != 0 {
		t.Fatalf("a bad file was kept: %v", files)
	}
	serveBad.Store(false)

	cut.Store(true)
	if _, err := s.Fetch(ctx, a); err == nil || !strings.Contains(err.Error(), "resume") {
		t.Fatalf("cut download: %v", err)
	}
	cut.Store(false)
	f, err := s.Fetch(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if ranges.Load() != 1 {
		t.Errorf("resume sent %d Range requests, want 1", ranges.Load())
	}
	b, _ := os.ReadFile(f.Path)
	if string(b) != good {
		t.Error("resumed file differs")
	}
}

func TestResolveMirrors(t *testing.T) {
	s := &artifacts.Store{Mirrors: map[string]string{
		"https://github.com":            "http://m/gh/",
		"https://github.com/containerd": "http://other/containerd",
		"https://dl.k8s.io":             "http://m/k8s",
	}}
	for in, want := range map[string]string{
		"https://dl.k8s.io/release/v1/kubelet":               "http://m/k8s/release/v1/kubelet",
		"https://github.com/opencontainers/runc/x":           "http://m/gh/opencontainers/runc/x",
		"https://github.com/containerd/containerd/releases/": "http://other/containerd/containerd/releases/",
		"https://dl.k8s.io.evil.com/x":                       "https://dl.k8s.io.evil.com/x",
	} {
		if got := s.Resolve(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
