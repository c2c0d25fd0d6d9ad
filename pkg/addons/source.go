package addons

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hacluster/hacluster/pkg/fileutil"
)

// SumsFile is the checksum list `addons fetch` writes at the top of a bundle,
// in the format of sha256sum(1), so `sha256sum -c SHA256SUMS` also checks it.
const SumsFile = "SHA256SUMS"

// maxManifestBytes bounds a download: upstream add-on manifests are < 1 MiB
// (Calico's, the largest, is about 0.3 MiB).
const maxManifestBytes = 32 << 20

// Manifest is one manifest file whose content has been read and checked.
type Manifest struct {
	// File is the file name (calico.yaml), Origin the URL or path read.
	File   string `json:"file"`
	Origin string `json:"origin"`
	SHA256 string `json:"sha256"`
	// VerifiedBy lists what the checksum was compared with: "catalog",
	// "--sha256", "SHA256SUMS". Empty for a local file nothing pins.
	VerifiedBy []string `json:"verifiedBy,omitempty"`
	Data       []byte   `json:"-"`
}

// SourceOptions selects where manifests come from.
type SourceOptions struct {
	// From is a local file, a bundle directory (as written by Fetch) or an
	// http(s) URL; empty means the catalog's URLs.
	From string
	// SHA256 is an expected checksum given by the user, for an add-on with
	// a single manifest.
	SHA256 string
	// HTTP downloads; nil means http.DefaultClient.
	HTTP *http.Client
}

// ErrChecksum is wrapped by every checksum mismatch.
var ErrChecksum = errors.New("checksum mismatch")

// Load reads and verifies the manifests of one add-on.
func Load(ctx context.Context, a Addon, o SourceOptions) ([]Manifest, error) {
	if o.SHA256 != "" {
		o.SHA256 = strings.ToLower(strings.TrimSpace(o.SHA256))
		if !isSHA256(o.SHA256) {
			return nil, fmt.Errorf("--sha256 %q is not a sha256 (64 hex digits)", o.SHA256)
		}
		if len(a.Sources) != 1 {
			return nil, fmt.Errorf("%s has %d manifests: --sha256 works for one; use a bundle with SHA256SUMS", a.Name, len(a.Sources))
		}
	}
	switch {
	case o.From == "":
		out := make([]Manifest, 0, len(a.Sources))
		for _, s := range a.Sources {
			m, err := loadURL(ctx, o.HTTP, a, s.URL, o.SHA256)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		}
		return out, nil
	case isURL(o.From):
		if len(a.Sources) != 1 {
			return nil, fmt.Errorf("%s has %d manifests: --from URL works for one; use a bundle directory", a.Name, len(a.Sources))
		}
		m, err := loadURL(ctx, o.HTTP, a, o.From, o.SHA256)
		if err != nil {
			return nil, err
		}
		return []Manifest{m}, nil
	}
	fi, err := os.Stat(o.From)
	if err != nil {
		return nil, fmt.Errorf("--from: %w", err)
	}
	if !fi.IsDir() {
		if len(a.Sources) != 1 {
			return nil, fmt.Errorf("%s has %d manifests: --from FILE works for one; use a bundle directory", a.Name, len(a.Sources))
		}
		sums, err := readSums(filepath.Join(filepath.Dir(o.From), SumsFile))
		if err != nil {
			return nil, err
		}
		m, err := loadFile(a, a.Sources[0], o.From, filepath.Base(o.From), sums, o.SHA256)
		if err != nil {
			return nil, err
		}
		return []Manifest{m}, nil
	}
	sums, err := readSums(filepath.Join(o.From, SumsFile))
	if err != nil {
		return nil, err
	}
	out := make([]Manifest, 0, len(a.Sources))
	for _, s := range a.Sources {
		rel := filepath.ToSlash(filepath.Join(a.Name, s.FileName()))
		p := filepath.Join(o.From, a.Name, s.FileName())
		if _, err := os.Stat(p); err != nil {
			rel = s.FileName()
			p = filepath.Join(o.From, s.FileName())
			if _, err := os.Stat(p); err != nil {
				return nil, fmt.Errorf("bundle %s has no %s (looked for %s/%s and %s, the layout `addons fetch` writes)",
					o.From, s.FileName(), a.Name, s.FileName(), s.FileName())
			}
		}
		m, err := loadFile(a, s, p, rel, sums, o.SHA256)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func loadURL(ctx context.Context, hc *http.Client, a Addon, url, userSum string) (Manifest, error) {
	var pin string
	for _, s := range a.Sources {
		if s.URL == url || (s.SHA256 != "" && s.FileName() == (Source{URL: url}).FileName()) {
			pin = s.SHA256
			break
		}
	}
	if pin == "" && userSum == "" {
		return Manifest{}, fmt.Errorf("%s %s: no pinned sha256 for %s, so it will not be applied: pass --sha256 after checking upstream's checksum, or run `kubectl hacluster addons fetch %s --to DIR`, review the files and install with --from DIR",
			a.Name, a.Version, url, a.Name)
	}
	data, err := download(ctx, hc, url)
	if err != nil {
		return Manifest{}, err
	}
	m := Manifest{File: (Source{URL: url}).FileName(), Origin: url, SHA256: sum(data), Data: data}
	if err := m.check(pin, "catalog"); err != nil {
		return Manifest{}, err
	}
	if err := m.check(userSum, "--sha256"); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

func loadFile(a Addon, s Source, file, rel string, sums map[string]string, userSum string) (Manifest, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return Manifest{}, err
	}
	m := Manifest{File: s.FileName(), Origin: file, SHA256: sum(data), Data: data}
	if filepath.Base(file) == s.FileName() {
		if err := m.check(s.SHA256, "catalog"); err != nil {
			return Manifest{}, err
		}
	}
	if err := m.check(sums[rel], SumsFile); err != nil {
		return Manifest{}, err
	}
	if err := m.check(userSum, "--sha256"); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// check compares the content's checksum with want (when want is known).
func (m *Manifest) check(want, by string) error {
	if want == "" {
		return nil
	}
	if !strings.EqualFold(want, m.SHA256) {
		return fmt.Errorf("%w: %s has sha256 %s, %s says %s; nothing was applied", ErrChecksum, m.Origin, m.SHA256, by, strings.ToLower(want))
	}
	m.VerifiedBy = append(m.VerifiedBy, by)
	return nil
}

func download(ctx context.Context, hc *http.Client, url string) ([]byte, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download %s: %s", url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", url, err)
	}
	if len(data) > maxManifestBytes {
		return nil, fmt.Errorf("download %s: larger than %d MiB, not a manifest", url, maxManifestBytes>>20)
	}
	return data, nil
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")
}

// readSums parses a sha256sum(1) file; a missing file is an empty list.
func readSums(file string) (map[string]string, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		h, name, ok := strings.Cut(line, " ")
		name = strings.TrimPrefix(strings.TrimSpace(name), "*")
		if !ok || !isSHA256(strings.ToLower(h)) || name == "" {
			return nil, fmt.Errorf("%s line %d: not a sha256sum line", file, n)
		}
		out[filepath.ToSlash(name)] = strings.ToLower(h)
	}
	return out, sc.Err()
}

func writeSums(file string, sums map[string]string) error {
	names := make([]string, 0, len(sums))
	for n := range sums {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, n := range names {
		fmt.Fprintf(&b, "%s  %s\n", sums[n], n)
	}
	return fileutil.WriteAtomic(file, b.Bytes(), 0o644)
}

// FetchResult is one file written by Fetch.
type FetchResult struct {
	Addon   string `json:"addon"`
	Version string `json:"version"`
	URL     string `json:"url"`
	// File is the path inside the bundle directory.
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	Bytes  int    `json:"bytes"`
	// Pinned is true when the catalog pins this checksum (and it matched);
	// false means nobody has vouched for it yet: compare it with upstream.
	Pinned bool `json:"pinned"`
	// Unchanged is true when the file was already there with this content.
	Unchanged bool `json:"unchanged"`
}

// Fetch downloads the manifests of addons into dir/<addon>/<file> and
// records their checksums in dir/SHA256SUMS, for an air-gapped install with
// `install --from dir`. A pinned checksum that does not match stops before
// anything is written for that file. An existing file with other content is
// replaced only when overwrite is set.
func Fetch(ctx context.Context, hc *http.Client, list []Addon, dir string, overwrite bool) ([]FetchResult, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	sumsPath := filepath.Join(dir, SumsFile)
	sums, err := readSums(sumsPath)
	if err != nil {
		return nil, err
	}
	var out []FetchResult
	for _, a := range list {
		for _, s := range a.Sources {
			data, err := download(ctx, hc, s.URL)
			if err != nil {
				return out, err
			}
			m := Manifest{Origin: s.URL, SHA256: sum(data)}
			if err := m.check(s.SHA256, "catalog"); err != nil {
				return out, err
			}
			rel := a.Name + "/" + s.FileName()
			target := filepath.Join(dir, a.Name, s.FileName())
			r := FetchResult{Addon: a.Name, Version: a.Version, URL: s.URL, File: rel, SHA256: m.SHA256, Bytes: len(data), Pinned: s.SHA256 != ""}
			old, err := os.ReadFile(target)
			switch {
			case err == nil && bytes.Equal(old, data):
				r.Unchanged = true
			case err == nil && !overwrite:
				return out, fmt.Errorf("%s exists with other content (sha256 %s); pass --overwrite to replace it", target, sum(old))
			case err != nil && !errors.Is(err, os.ErrNotExist):
				return out, err
			default:
				if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
					return out, err
				}
				if err := fileutil.WriteAtomic(target, data, 0o644); err != nil {
					return out, err
				}
			}
			sums[rel] = m.SHA256
			if err := writeSums(sumsPath, sums); err != nil {
				return out, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}
