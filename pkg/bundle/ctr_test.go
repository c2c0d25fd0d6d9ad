package bundle_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// ctrImport starts the bundle's own containerd (from its release tarball,
// in a private root and socket, with the CRI plugin off: nothing else on
// this machine is touched) and imports layout with `ctr -n k8s.io images
// import`, as an offline host would. It returns `ctr images ls` by name:
// name -> manifest digest. Skipped unless root on linux/amd64.
func ctrImport(t *testing.T, containerdTgz, layout string) map[string]string {
	t.Helper()
	if os.Geteuid() != 0 || runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("containerd needs root on linux/amd64")
	}
	dir := t.TempDir()
	f, err := os.Open(containerdTgz)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	eachEntry(t, gz, func(h *tar.Header, r io.Reader) {
		if h.Typeflag != tar.TypeReg {
			return
		}
		p := filepath.Join(dir, h.Name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		if _, err := io.Copy(out, r); err != nil {
			t.Fatal(err)
		}
	})
	sock := filepath.Join(dir, "containerd.sock")
	cfg := `version = 3
root = "` + filepath.Join(dir, "root") + `"
state = "` + filepath.Join(dir, "state") + `"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime", "io.containerd.nri.v1.nri"]
[grpc]
  address = "` + sock + `"
[ttrpc]
  address = "` + sock + `.ttrpc"
`
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, _ := os.Create(filepath.Join(dir, "containerd.log"))
	d := exec.Command(filepath.Join(dir, "bin", "containerd"), "--config", filepath.Join(dir, "config.toml"))
	d.Stdout, d.Stderr = logf, logf
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Process.Kill()
		d.Wait()
		logf.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ctr := func(args ...string) (string, error) {
		b, err := exec.CommandContext(ctx, filepath.Join(dir, "bin", "ctr"), append([]string{"--address", sock, "-n", "k8s.io"}, args...)...).CombinedOutput()
		return string(b), err
	}
	for i := 0; ; i++ {
		if _, err := ctr("version"); err == nil {
			break
		}
		if i == 100 {
			b, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			t.Fatalf("containerd did not start:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, err := ctr("images", "import", layout); err != nil {
		t.Fatalf("ctr images import: %v\n%s", err, out)
	} else {
		t.Logf("ctr -n k8s.io images import %s:\n%s", filepath.Base(layout), out)
	}
	out, err := ctr("images", "ls")
	if err != nil {
		t.Fatalf("ctr images ls: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		// REF TYPE DIGEST ... lines, after the header (and containerd's warnings).
		if f := strings.Fields(line); len(f) >= 3 && f[0] != "REF" && strings.HasPrefix(f[2], "sha256:") {
			got[f[0]] = f[2]
		}
	}
	return got
}
