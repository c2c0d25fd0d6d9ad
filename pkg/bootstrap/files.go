package bootstrap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/hacluster/hacluster/pkg/remote"
)

// remoteSHA256 is the sha256 of a file on the host, "" when it is absent.
func remoteSHA256(ctx context.Context, c *remote.Conn, path string) (string, error) {
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
func ensureContent(ctx context.Context, c *remote.Conn, path string, data []byte, mode os.FileMode) (bool, error) {
	sum := sha256.Sum256(data)
	have, err := remoteSHA256(ctx, c, path)
	if err != nil {
		return false, err
	}
	if have == hex.EncodeToString(sum[:]) {
		return false, nil
	}
	return true, c.WriteFile(ctx, path, bytes.NewReader(data), mode, true)
}

// ensureUpload copies a local file (whose sha256 is known) to path unless the
// host already has it: a stamp under /var/lib/hacluster/installed records the
// sha256 of what was uploaded, and the file's size must still match (hashing
// 100 MB binaries on every re-run would cost seconds).
func ensureUpload(ctx context.Context, c *remote.Conn, path, local, sum string, mode os.FileMode) (bool, error) {
	fi, err := os.Stat(local)
	if err != nil {
		return false, err
	}
	stamp := stampDir + "/" + strings.ReplaceAll(strings.TrimPrefix(path, "/"), "/", "_") + ".sha256"
	out, err := c.Output(ctx, "cat "+remote.Quote(stamp)+" 2>/dev/null; stat -c %s "+remote.Quote(path)+" 2>/dev/null; true", true)
	if err != nil {
		return false, err
	}
	if f := strings.Fields(out); len(f) == 2 && f[0] == sum && f[1] == fmt.Sprint(fi.Size()) {
		return false, nil
	}
	in, err := os.Open(local)
	if err != nil {
		return false, err
	}
	defer in.Close()
	if err := c.WriteFile(ctx, path, in, mode, true); err != nil {
		return true, err
	}
	return true, c.WriteFile(ctx, stamp, strings.NewReader(sum+"\n"), 0o644, true)
}
