package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/hacluster/hacluster/pkg/yamlfile"
)

// File names looked for in the current folder, in this order.
var DefaultFiles = []string{"k8sprep.yaml", "k8sprep.yml", "compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"}

// Find returns the first default stack file in dir, or "" when there is none.
func Find(dir string) string {
	for _, n := range DefaultFiles {
		p := filepath.Join(dir, n)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// IsCompose reports whether path names a compose file rather than a k8sprep.yaml.
func IsCompose(path string) bool {
	b := filepath.Base(path)
	return strings.Contains(b, "compose")
}

// LoadOptions adjust Load.
type LoadOptions struct {
	// Dir is the folder for a flags-only stack (path ""); default: the current folder.
	Dir string
	// Override applies command-line flags on top of the file, before defaults.
	Override func(*Stack)
	// SkipCheck skips looking at the files the stack refers to (for ps, logs
	// and down, which only need the name).
	SkipCheck bool
	// Base starts a flags-only stack (path "") before Override: export k8s
	// passes the flags compose-run remembered (LoadFlags).
	Base *Stack
}

// Load reads a k8sprep.yaml or compose.yaml (path "" means flags only),
// applies the overrides, fills defaults and validates. Problems in a
// k8sprep.yaml are reported as "file:line: field: message".
func Load(path string, o LoadOptions) (*Stack, error) {
	if path == "" {
		dir := o.Dir
		if dir == "" {
			wd, err := os.Getwd()
			if err != nil {
				return nil, err
			}
			dir = wd
		}
		s := &Stack{}
		if o.Base != nil {
			b, err := yaml.Marshal(o.Base)
			if err != nil {
				return nil, err
			}
			if err := yaml.Unmarshal(b, s); err != nil { // a deep copy
				return nil, err
			}
		}
		if o.Override != nil {
			o.Override(s)
		}
		return finish(s, dir, "", nil, o)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if IsCompose(abs) {
		s, err := loadCompose(abs)
		if err != nil {
			return nil, err
		}
		if o.Override != nil {
			o.Override(s)
		}
		return finish(s, filepath.Dir(abs), abs, nil, o)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("reading stack file: %w", err)
	}
	return parseK8sprep(abs, data, o)
}

// finish fills defaults and validates; doc (k8sprep.yaml) gives line numbers.
func finish(s *Stack, dir, source string, doc *yaml.Node, o LoadOptions) (*Stack, error) {
	s.Source = source
	s.Defaults(dir)
	wrap := func(err error) error {
		switch {
		case doc != nil:
			return yamlfile.WithLine(source, doc, err)
		case source != "":
			return fmt.Errorf("%s: %w", source, err)
		}
		return err
	}
	if err := s.Validate(); err != nil {
		return nil, wrap(err)
	}
	if !o.SkipCheck {
		if err := s.Check(); err != nil {
			return nil, wrap(err)
		}
	}
	return s, nil
}

// lazyRegexp compiles expr on first use: a package-level regexp is compiled
// at start-up by every run of the binary, whichever command runs.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

func parseK8sprep(path string, data []byte, o LoadOptions) (*Stack, error) {
	s := &Stack{}
	doc, err := yamlfile.Decode(path, data, s)
	if err != nil {
		return nil, err
	}
	if o.Override != nil {
		o.Override(s)
	}
	return finish(s, filepath.Dir(path), path, doc, o)
}

// Check looks at the files a stack refers to: the build context and its
// Dockerfile, the config file and its database keys.
func (s *Stack) Check() error {
	if s.App.Build != "" {
		fi, err := os.Stat(s.App.Build)
		if err != nil || !fi.IsDir() {
			return FieldError{"app.build", fmt.Sprintf("%s is not a folder", s.App.Build)}
		}
		df := s.App.Dockerfile
		if !filepath.IsAbs(df) {
			df = filepath.Join(s.App.Build, df)
		}
		if _, err := os.Stat(df); err != nil {
			return FieldError{"app.dockerfile", fmt.Sprintf("%s not found (write one with `docker k8sprep dockerfile`, or set app.image)", df)}
		}
	}
	if c := s.App.Config; c != nil {
		data, err := os.ReadFile(c.File)
		if err != nil {
			return FieldError{"app.config.file", err.Error()}
		}
		for _, k := range []struct{ field, key string }{{"app.config.hostKey", c.HostKey}, {"app.config.portKey", c.PortKey}} {
			if _, ok := tomlLookup(data, k.key); !ok {
				return FieldError{k.field, fmt.Sprintf("%s has no key %q", filepath.Base(c.File), k.key)}
			}
		}
	}
	for _, f := range []struct{ field, path string }{{"mysql.passwordFile", s.MySQL.PasswordFile}, {"mysql.rootPasswordFile", s.MySQL.RootPasswordFile}} {
		if fi, err := os.Stat(f.path); err == nil && !fi.Mode().IsRegular() {
			return FieldError{f.field, fmt.Sprintf("%s is not a regular file", f.path)}
		}
	}
	return nil
}

// flagsFile is where compose-run remembers a stack started from flags alone.
func flagsFile(dir, name string) string { return filepath.Join(dir, ".k8sprep", name, "flags.yaml") }

// RememberFlags keeps f, the stack the flags alone describe (before
// defaults), in the state folder of s (mode 0600: -e values may be
// private), so that export k8s of the same stack takes the same settings.
// It returns the file.
func (s *Stack) RememberFlags(f *Stack) (string, error) {
	b, err := yaml.Marshal(f)
	if err != nil {
		return "", err
	}
	p := flagsFile(s.Dir, s.Name)
	if err := s.ensureStateDir(filepath.Dir(p)); err != nil {
		return "", err
	}
	return p, WriteFileAtomic(p, append([]byte("# the flags of the last `docker k8sprep compose-run` of this stack; export k8s reads them\n"), b...), 0o600)
}

// LoadFlags returns the flags compose-run remembered for the stack name in
// dir, and their file; nil and "" when there are none.
func LoadFlags(dir, name string) (*Stack, string, error) {
	p := flagsFile(dir, name)
	data, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return nil, "", nil
	} else if err != nil {
		return nil, "", err
	}
	s := &Stack{}
	if _, err := yamlfile.Decode(p, data, s); err != nil {
		return nil, "", err
	}
	return s, p, nil
}
