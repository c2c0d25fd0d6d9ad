package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Unpacked is a bundle's entries on disk: Paths maps each entry's path in
// the archive to its file under the directory Unpack was given.
type Unpacked struct {
	Manifest *Manifest
	Paths    map[string]string
	// Reused counts the entries that were on disk already.
	Reused int
}

// Unpack writes every entry the manifest lists into dir, named by its
// sha256 (dir/sha256/<sum>), checking each against the manifest as it is
// written; entries already there with the right size are kept, so a second
// bootstrap from the same bundle writes nothing. It checks entry contents
// only: Verify checks every image blob too.
func Unpack(file, dir string) (*Unpacked, error) {
	r, m, want, err := openListed(file)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	blobs := filepath.Join(dir, "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return nil, err
	}
	u := &Unpacked{Manifest: m, Paths: map[string]string{}}
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: the archive is cut or damaged: %w", file, err)
		}
		f, ok := want[h.Name]
		if !ok {
			return nil, fmt.Errorf("%s: entry %s is not in its %s", file, h.Name, ManifestName)
		}
		dst := filepath.Join(blobs, f.SHA256)
		if fi, err := os.Stat(dst); err == nil && fi.Size() == f.Size {
			u.Paths[h.Name], u.Reused = dst, u.Reused+1
			continue
		}
		if err := writeChecked(r, dst, f); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", file, h.Name, err)
		}
		u.Paths[h.Name] = dst
	}
	for p := range want {
		if _, ok := u.Paths[p]; !ok {
			return nil, fmt.Errorf("%s: %s lists %s, which the archive lacks", file, ManifestName, p)
		}
	}
	return u, nil
}

// writeChecked copies an entry to dst through a temporary file, keeping it
// only when its size and sha256 are the manifest's.
func writeChecked(src io.Reader, dst string, f File) error {
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".unpack-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), src)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if sum := hex.EncodeToString(h.Sum(nil)); n != f.Size || sum != f.SHA256 {
		return fmt.Errorf("content is %d bytes with sha256 %s, the manifest says %d bytes %s (a changed or swapped entry)", n, sum, f.Size, f.SHA256)
	}
	return os.Rename(tmp.Name(), dst)
}
