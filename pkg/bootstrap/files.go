package bootstrap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/hacluster/hacluster/pkg/facts"
	"github.com/hacluster/hacluster/pkg/remote"
)

// snapshot is what a host holds of the files bootstrap writes, read in one
// round trip per host after the facts: a converged re-run then checks every
// file without a round trip of its own. Writes update it.
type snapshot struct {
	mu     sync.Mutex
	listed map[string]bool   // paths the snapshot knows about (absent or not)
	sums   map[string]string // path -> sha256 of a file bootstrap writes
	sizes  map[string]int64  // path -> size of a file bootstrap uploads
	stamps map[string]string // stamp path -> its first line
}

// Files bootstrap writes (content checked by sha256) and uploads (checked by
// stamp and size), wherever a host has them.
var (
	writtenFiles = []string{facts.ClusterMarker, modulesFile, sysctlFile, containerdConf, containerdUnit, crictlConf,
		kubeletUnit, kubeletDropIn, haproxyConf, keepalivedCheck, keepalivedConf}
	uploadedFiles = []string{"/usr/local/sbin/runc", "/usr/bin/kubelet", "/usr/bin/kubeadm", "/usr/bin/kubectl", imagesTar}
)

func snapshotScript() string {
	return fmt.Sprintf(`for f in %s $(ls %s/*/hosts.toml 2>/dev/null); do echo "list $f"; [ -f "$f" ] && echo "sum $(sha256sum "$f")"; done
for f in %s; do echo "list $f"; [ -f "$f" ] && echo "size $(stat -c %%s "$f") $f"; done
for f in %s/*; do [ -f "$f" ] && echo "stamp $f $(head -n 1 "$f")"; done
true`, strings.Join(writtenFiles, " "), registryCertsD, strings.Join(uploadedFiles, " "), stampDir)
}

// readSnapshots fills r.snaps for every host, in parallel.
func (r *run) readSnapshots(ctx context.Context) error {
	r.snaps = map[string]*snapshot{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(r.c.Spec.Hosts))
	for i, h := range r.c.Spec.Hosts {
		wg.Go(func() {
			out, err := r.fleet.Conns[h.Name].Output(ctx, snapshotScript(), true)
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", h.Name, err)
				return
			}
			s := parseSnapshot(out)
			mu.Lock()
			r.snaps[h.Name] = s
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func parseSnapshot(out string) *snapshot {
	s := &snapshot{listed: map[string]bool{}, sums: map[string]string{}, sizes: map[string]int64{}, stamps: map[string]string{}}
	for _, l := range strings.Split(out, "\n") {
		kind, rest, _ := strings.Cut(l, " ")
		f := strings.Fields(rest)
		switch {
		case kind == "list" && len(f) == 1:
			s.listed[f[0]] = true
		case kind == "sum" && len(f) == 2:
			s.sums[f[1]] = f[0]
		case kind == "size" && len(f) == 2:
			if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				s.sizes[f[1]] = n
			}
		case kind == "stamp" && len(f) >= 1:
			s.stamps[f[0]] = strings.TrimSpace(strings.TrimPrefix(rest, f[0]))
		}
	}
	return s
}

func (r *run) snap(c *remote.Conn) *snapshot {
	if r.snaps == nil {
		return nil
	}
	return r.snaps[c.Target.Name]
}

// stamp is a stamp file's first line ("" when absent).
func (r *run) stamp(ctx context.Context, c *remote.Conn, path string) string {
	if s := r.snap(c); s != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.stamps[path]
	}
	b, _ := c.ReadFile(ctx, path, true)
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(line)
}

// writeStamp writes a stamp file and remembers it.
func (r *run) writeStamp(ctx context.Context, c *remote.Conn, path, value string) error {
	if err := c.WriteFile(ctx, path, strings.NewReader(value+"\n"), 0o644, true); err != nil {
		return err
	}
	if s := r.snap(c); s != nil {
		s.mu.Lock()
		s.stamps[path] = value
		s.mu.Unlock()
	}
	return nil
}

// remoteSHA256 is the sha256 of a file on the host, "" when it is absent.
func (r *run) remoteSHA256(ctx context.Context, c *remote.Conn, path string) (string, error) {
	if s := r.snap(c); s != nil {
		s.mu.Lock()
		sum, listed := s.sums[path], s.listed[path]
		s.mu.Unlock()
		if listed {
			return sum, nil
		}
	}
	out, err := c.Output(ctx, "if [ -f "+remote.Quote(path)+" ]; then sha256sum "+remote.Quote(path)+"; fi", true)
	if err != nil {
		return "", err
	}
	f := strings.Fields(out)
	if len(f) == 0 {
		return "", nil
	}
	return f[0], nil
}

// ensureContent writes data to path (as root, atomically, with mode) unless
// the host already has exactly that content. It reports whether it wrote.
func (r *run) ensureContent(ctx context.Context, c *remote.Conn, path string, data []byte, mode os.FileMode) (bool, error) {
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	have, err := r.remoteSHA256(ctx, c, path)
	if err != nil {
		return false, err
	}
	if have == want {
		return false, nil
	}
	if err := c.WriteFile(ctx, path, bytes.NewReader(data), mode, true); err != nil {
		return true, err
	}
	if s := r.snap(c); s != nil {
		s.mu.Lock()
		s.listed[path], s.sums[path] = true, want
		s.mu.Unlock()
	}
	return true, nil
}

// ensureUpload copies a local file (whose sha256 is known) to path unless the
// host already has it: a stamp under /var/lib/hacluster/installed records the
// sha256 of what was uploaded, and the file's size must still match (hashing
// 100 MB binaries on every re-run would cost seconds).
func (r *run) ensureUpload(ctx context.Context, c *remote.Conn, path, local, sum string, mode os.FileMode) (bool, error) {
	fi, err := os.Stat(local)
	if err != nil {
		return false, err
	}
	stamp := stampDir + "/" + strings.ReplaceAll(strings.TrimPrefix(path, "/"), "/", "_") + ".sha256"
	if s := r.snap(c); s != nil && s.listedSize(path) {
		s.mu.Lock()
		same := s.stamps[stamp] == sum && s.sizes[path] == fi.Size()
		s.mu.Unlock()
		if same {
			return false, nil
		}
	} else {
		out, err := c.Output(ctx, "cat "+remote.Quote(stamp)+" 2>/dev/null; stat -c %s "+remote.Quote(path)+" 2>/dev/null; true", true)
		if err != nil {
			return false, err
		}
		if f := strings.Fields(out); len(f) == 2 && f[0] == sum && f[1] == fmt.Sprint(fi.Size()) {
			return false, nil
		}
	}
	in, err := os.Open(local)
	if err != nil {
		return false, err
	}
	defer in.Close()
	if err := c.WriteFile(ctx, path, in, mode, true); err != nil {
		return true, err
	}
	if s := r.snap(c); s != nil {
		s.mu.Lock()
		s.listed[path], s.sizes[path] = true, fi.Size()
		s.mu.Unlock()
	}
	return true, r.writeStamp(ctx, c, stamp, sum)
}

func (s *snapshot) listedSize(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listed[path]
}
