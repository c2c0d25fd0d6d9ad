// Package dockerfile writes (Generate), checks (Lint) and explains (Explain)
// Dockerfiles for Go services: a golang builder stage and a small final stage
// (scratch by default). Parsing uses BuildKit's own Dockerfile parser. It
// knows nothing of cobra.
package dockerfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Project is what Inspect learns about a Go module directory.
type Project struct {
	Dir       string `json:"dir"`
	Module    string `json:"module"`
	GoVersion string `json:"goVersion"`
	// Mains are the main packages, as "." or "./cmd/name".
	Mains []string `json:"mains"`
	// Configs are configuration files at the module root (config.toml ...).
	Configs []string `json:"configs,omitempty"`
	// Port is the listen port of the first main package that has one, or 0.
	Port int `json:"port,omitempty"`
	// Listen says, for each main package, whether it is a server and on
	// which ports (DetectListen).
	Listen    map[string]Listen `json:"listen,omitempty"`
	HasGoSum  bool              `json:"hasGoSum"`
	HasVendor bool              `json:"hasVendor"`
}

var configNames = []string{
	"config.toml", "config.yaml", "config.yml", "config.json",
	"app.toml", "app.yaml", "app.yml", "settings.toml", "settings.yaml",
}

var (
	goDirective  = lazyRegexp(`^go\s+(\d+\.\d+(?:\.\d+)?)\s*$`)
	errNoGoMod   = errors.New("no go.mod")
	skipDirNames = map[string]bool{"vendor": true, "testdata": true, "node_modules": true}
)

// Inspect reads dir/go.mod and finds the main packages, config files and the
// listen port of a Go module.
func Inspect(dir string) (*Project, error) {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w: run it in a Go module (or pass its directory)", dir, errNoGoMod)
	}
	if err != nil {
		return nil, err
	}
	p := &Project{Dir: dir}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "//"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if rest, ok := strings.CutPrefix(line, "module "); ok && p.Module == "" {
			p.Module = strings.Trim(strings.TrimSpace(rest), `"`)
		}
		if m := goDirective().FindStringSubmatch(line); m != nil {
			p.GoVersion = m[1]
		}
	}
	if p.Module == "" {
		return nil, fmt.Errorf("%s/go.mod has no module line", dir)
	}
	if p.GoVersion == "" {
		return nil, fmt.Errorf("%s/go.mod has no go directive: add one (go mod edit -go=1.26) so the builder image can be pinned", dir)
	}
	p.HasGoSum = exists(filepath.Join(dir, "go.sum"))
	p.HasVendor = exists(filepath.Join(dir, "vendor", "modules.txt"))
	for _, n := range configNames {
		if exists(filepath.Join(dir, n)) {
			p.Configs = append(p.Configs, n)
		}
	}
	if err := p.findMains(); err != nil {
		return nil, err
	}
	return p, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func (p *Project) findMains() error {
	fset := token.NewFileSet()
	mains := map[string]bool{}
	err := filepath.WalkDir(p.Dir, func(fp string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if fp != p.Dir && (skipDirNames[name] || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			if fp != p.Dir && exists(filepath.Join(fp, "go.mod")) {
				return filepath.SkipDir // another module
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(fp)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, fp, src, parser.PackageClauseOnly)
		if err != nil || f.Name.Name != "main" {
			return nil
		}
		rel, _ := filepath.Rel(p.Dir, filepath.Dir(fp))
		pkg := "./" + filepath.ToSlash(rel)
		if rel == "." {
			pkg = "."
		}
		mains[pkg] = true
		return nil
	})
	if err != nil {
		return err
	}
	for m := range mains {
		p.Mains = append(p.Mains, m)
	}
	sort.Strings(p.Mains)
	p.Listen = map[string]Listen{}
	for _, m := range p.Mains {
		ln := DetectListen(p.Dir, filepath.Join(p.Dir, filepath.FromSlash(m)))
		p.Listen[m] = ln
		if p.Port == 0 {
			p.Port = ln.Port()
		}
	}
	return nil
}

// BinaryName is the file name of the built command for main package pkg:
// the directory name, or the module's last path element for ".".
func (p *Project) BinaryName(pkg string) string {
	name := path.Base(strings.TrimPrefix(pkg, "./"))
	if pkg == "." || name == "." || name == "" {
		name = path.Base(p.Module)
	}
	// Major-version suffixes (example.com/app/v2) are not names.
	if len(name) > 1 && name[0] == 'v' && strings.Trim(name[1:], "0123456789") == "" {
		name = path.Base(path.Dir(p.Module))
	}
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '-'
	}, name)
	if name == "" || name == "." {
		name = "app"
	}
	return name
}
