// Package stack describes an app + MySQL stack (from flags, a k8sprep.yaml or
// a compose.yaml), and runs it on a Docker engine: a user-defined network, a
// named data volume, a MySQL container and the app container, all labelled so
// that later runs reconcile them and `down` removes only what the stack owns.
// It knows nothing of cobra.
package stack

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hacluster/hacluster/pkg/dockerfile"
)

// Labels put on everything a stack owns. A container, network or volume that
// lacks LabelStack=<name> is never changed or removed.
const (
	LabelStack   = "io.hacluster.k8sprep.stack"
	LabelService = "io.hacluster.k8sprep.service"
	LabelHash    = "io.hacluster.k8sprep.hash"
	LabelImage   = "io.hacluster.k8sprep.image"
)

// Service names inside a stack.
const (
	ServiceApp   = "app"
	ServiceMySQL = "mysql"
)

// DefaultMySQLImage is used when the stack does not name one.
const DefaultMySQLImage = "mysql:8.4"

// Stack is the whole description. Paths are absolute after Load/Defaults.
type Stack struct {
	Name    string `json:"name" yaml:"name"`
	Network string `json:"network,omitempty" yaml:"network,omitempty"`
	App     App    `json:"app" yaml:"app"`
	MySQL   MySQL  `json:"mysql" yaml:"mysql"`

	// Dir is the folder relative paths are resolved against (the stack
	// file's folder, or the current folder). Source is the file read, if any.
	Dir    string `json:"-" yaml:"-"`
	Source string `json:"-" yaml:"-"`
}

// App is the Go service.
type App struct {
	// Build is the build context; Dockerfile is relative to it.
	Build      string `json:"build,omitempty" yaml:"build,omitempty"`
	Dockerfile string `json:"dockerfile,omitempty" yaml:"dockerfile,omitempty"`
	// Image is the tag given to the built image, or the image to run when
	// Build is empty.
	Image      string            `json:"image,omitempty" yaml:"image,omitempty"`
	Ports      []Port            `json:"ports,omitempty" yaml:"ports,omitempty"`
	Env        map[string]string `json:"env,omitempty" yaml:"env,omitempty"`
	HealthPath string            `json:"healthPath,omitempty" yaml:"healthPath,omitempty"`
	Config     *ConfigFile       `json:"config,omitempty" yaml:"config,omitempty"`
	// PasswordEnv also puts the password in DB_PASSWORD when there is no
	// config file (it is always in the file DB_PASSWORD_FILE names); the
	// environment is visible to docker inspect.
	PasswordEnv bool `json:"passwordEnv,omitempty" yaml:"passwordEnv,omitempty"`
	// Target is the Dockerfile stage to build (compose build.target).
	Target string `json:"target,omitempty" yaml:"target,omitempty"`
	// Command replaces the image's CMD.
	Command []string `json:"command,omitempty" yaml:"command,omitempty"`
	// Aliases are more DNS names of the app on the stack's network (compose
	// service names).
	Aliases []string `json:"aliases,omitempty" yaml:"aliases,omitempty"`
	// Secrets are files copied into the container (compose secrets:
	// /run/secrets/<name>).
	Secrets []FileCopy `json:"secrets,omitempty" yaml:"secrets,omitempty"`
	// Healthcheck is run by the engine in the container; readiness then
	// waits for "healthy".
	Healthcheck *Healthcheck `json:"healthcheck,omitempty" yaml:"healthcheck,omitempty"`
}

// FileCopy is a host file copied into a container before it starts.
type FileCopy struct {
	Source string `json:"source" yaml:"source"`
	Target string `json:"target" yaml:"target"`
}

// Healthcheck is the engine's health check of a container.
type Healthcheck struct {
	Test        []string      `json:"test" yaml:"test"`
	Interval    time.Duration `json:"interval,omitempty" yaml:"interval,omitempty"`
	Timeout     time.Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	StartPeriod time.Duration `json:"startPeriod,omitempty" yaml:"startPeriod,omitempty"`
	Retries     int           `json:"retries,omitempty" yaml:"retries,omitempty"`
}

// ConfigFile is the app's config file (TOML) and the keys that hold the
// database connection. A rewritten copy is mounted read-only at MountPath.
type ConfigFile struct {
	File        string `json:"file" yaml:"file"`
	MountPath   string `json:"mountPath,omitempty" yaml:"mountPath,omitempty"`
	HostKey     string `json:"hostKey,omitempty" yaml:"hostKey,omitempty"`
	PortKey     string `json:"portKey,omitempty" yaml:"portKey,omitempty"`
	UserKey     string `json:"userKey,omitempty" yaml:"userKey,omitempty"`
	PasswordKey string `json:"passwordKey,omitempty" yaml:"passwordKey,omitempty"`
	DatabaseKey string `json:"databaseKey,omitempty" yaml:"databaseKey,omitempty"`
	// MountPathFrom says where a MountPath the stack did not give comes
	// from (the Dockerfile line that copies the file), for the notes.
	MountPathFrom string `json:"-" yaml:"-"`
}

// MySQL is the database service.
type MySQL struct {
	Image    string `json:"image,omitempty" yaml:"image,omitempty"`
	Database string `json:"database,omitempty" yaml:"database,omitempty"`
	User     string `json:"user,omitempty" yaml:"user,omitempty"`
	// PasswordFile holds the app user's password, RootPasswordFile root's.
	// Both are generated (mode 0600) when absent.
	PasswordFile     string `json:"passwordFile,omitempty" yaml:"passwordFile,omitempty"`
	RootPasswordFile string `json:"rootPasswordFile,omitempty" yaml:"rootPasswordFile,omitempty"`
	Volume           string `json:"volume,omitempty" yaml:"volume,omitempty"`
	// HostPort publishes 3306 on 127.0.0.1:HostPort; 0 picks a free port.
	HostPort int `json:"hostPort,omitempty" yaml:"hostPort,omitempty"`
	// Aliases are more DNS names of MySQL on the stack's network (compose
	// service names, such as db).
	Aliases []string `json:"aliases,omitempty" yaml:"aliases,omitempty"`
	// InitScripts are copied into /docker-entrypoint-initdb.d (run once, on
	// an empty volume).
	InitScripts []FileCopy `json:"initScripts,omitempty" yaml:"initScripts,omitempty"`
}

// Port maps a host port to a container port ("8080:8080" or "8080").
type Port struct {
	Host      int `json:"host"`
	Container int `json:"container"`
}

func (p Port) String() string { return fmt.Sprintf("%d:%d", p.Host, p.Container) }

// ParsePort reads "HOST:CONTAINER" or "PORT".
func ParsePort(s string) (Port, error) {
	h, c, found := strings.Cut(strings.TrimSpace(s), ":")
	if !found {
		c = h
	}
	hp, err1 := strconv.Atoi(h)
	cp, err2 := strconv.Atoi(c)
	if err1 != nil || err2 != nil || hp < 1 || hp > 65535 || cp < 1 || cp > 65535 {
		return Port{}, fmt.Errorf("invalid port %q: want HOST:CONTAINER with numbers 1-65535, like 8080:8080", s)
	}
	return Port{Host: hp, Container: cp}, nil
}

// MarshalYAML and UnmarshalYAML use the "HOST:CONTAINER" text form.
func (p Port) MarshalYAML() (any, error) { return p.String(), nil }

// UnmarshalYAML reads the "HOST:CONTAINER" form and keeps the line on error.
func (p *Port) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParsePort(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*p = v
	return nil
}

// UnmarshalText accepts the "HOST:CONTAINER" text form (json).
func (p *Port) UnmarshalText(b []byte) error {
	v, err := ParsePort(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

var (
	dnsLabel = lazyRegexp(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	sqlName  = lazyRegexp(`^[A-Za-z0-9_]{1,32}$`)
)

// SanitizeName turns a folder name into a DNS-safe stack name.
func SanitizeName(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	for strings.Contains(out, "--") {
		out = strings.ReplaceAll(out, "--", "-")
	}
	if len(out) > 40 {
		out = strings.Trim(out[:40], "-")
	}
	if out == "" {
		out = "stack"
	}
	return out
}

// Container names of the two services.
func (s *Stack) AppContainer() string   { return s.Name + "-app" }
func (s *Stack) MySQLContainer() string { return s.Name + "-mysql" }

// StateDir holds generated passwords and the rewritten config copy.
func (s *Stack) StateDir() string { return filepath.Join(s.Dir, ".k8sprep", s.Name) }

// Defaults fills every empty field. dir is used when s.Dir is empty.
func (s *Stack) Defaults(dir string) {
	if s.Dir == "" {
		s.Dir = dir
	}
	if s.Name == "" {
		s.Name = SanitizeName(filepath.Base(s.Dir))
	}
	if s.Network == "" {
		s.Network = s.Name + "-net"
	}
	a := &s.App
	if a.Build == "" && a.Image == "" {
		a.Build = "."
	}
	if a.Build != "" {
		a.Build = s.abs(a.Build)
		if a.Dockerfile == "" {
			a.Dockerfile = "Dockerfile"
		}
		if a.Image == "" {
			a.Image = s.Name + "-app:latest"
		}
	}
	if a.Ports == nil {
		// An explicit empty list (`ports: []`, or a compose service without
		// ports) publishes nothing: readiness is then running and stable.
		a.Ports = []Port{{Host: 8080, Container: 8080}}
	}
	if a.Config == nil && a.Build != "" {
		// The article's layout: config.toml next to the Dockerfile.
		if fi, err := os.Stat(filepath.Join(a.Build, "config.toml")); err == nil && fi.Mode().IsRegular() {
			a.Config = &ConfigFile{File: filepath.Join(a.Build, "config.toml")}
		}
	}
	if a.HealthPath == "" {
		a.HealthPath = "/healthz"
	}
	if c := a.Config; c != nil {
		c.File = s.abs(c.File)
		if c.MountPath == "" {
			c.MountPath, c.MountPathFrom = s.configPlace()
		}
		def := func(v *string, d string) {
			if *v == "" {
				*v = d
			}
		}
		def(&c.HostKey, "mysql.ip")
		def(&c.PortKey, "mysql.port")
		def(&c.UserKey, "mysql.user")
		def(&c.PasswordKey, "mysql.password")
		def(&c.DatabaseKey, "mysql.database")
	}
	for i := range a.Secrets {
		a.Secrets[i].Source = s.abs(a.Secrets[i].Source)
	}
	m := &s.MySQL
	for i := range m.InitScripts {
		m.InitScripts[i].Source = s.abs(m.InitScripts[i].Source)
	}
	if m.Image == "" {
		m.Image = DefaultMySQLImage
	}
	if m.Database == "" {
		m.Database = "app"
	}
	if m.User == "" {
		m.User = "app"
	}
	if m.PasswordFile == "" {
		m.PasswordFile = filepath.Join(s.StateDir(), "mysql-password")
	}
	if m.RootPasswordFile == "" {
		m.RootPasswordFile = filepath.Join(s.StateDir(), "mysql-root-password")
	}
	m.PasswordFile = s.abs(m.PasswordFile)
	m.RootPasswordFile = s.abs(m.RootPasswordFile)
	if m.Volume == "" {
		m.Volume = s.Name + "-mysql-data"
	}
}

// configPlace is where the image the app runs reads its config file: the
// path the Dockerfile's last COPY of that file (from the build context) gives
// it in the stage built, else the file's name in the stage's WORKDIR (a
// program that opens "config.toml" looks there), else /<name>. compose-run
// mounts the rewritten copy there and export k8s the Secret with it, so the
// app never reads a stale copy baked into its image.
func (s *Stack) configPlace() (mountPath, from string) {
	a := &s.App
	base := filepath.Base(a.Config.File)
	if a.Build == "" {
		return "/" + base, ""
	}
	df := a.Dockerfile
	if !filepath.IsAbs(df) {
		df = filepath.Join(a.Build, df)
	}
	src, err := os.ReadFile(df)
	if err != nil {
		return "/" + base, ""
	}
	rel, err := filepath.Rel(a.Build, a.Config.File)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		rel = "" // not in the build context: no COPY can bring it
	}
	p, err := dockerfile.Place(src, a.Target, filepath.ToSlash(rel))
	switch {
	case err != nil:
		return "/" + base, ""
	case rel != "" && p.Path != "":
		return p.Path, fmt.Sprintf("%s:%d copies %s there", filepath.Base(df), p.Line, filepath.ToSlash(rel))
	}
	return path.Join(p.Workdir, base), fmt.Sprintf("%s copies no %s: its WORKDIR %s", filepath.Base(df), base, p.Workdir)
}

func (s *Stack) abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(s.Dir, p)
}

// FieldError is a problem with one field of the stack description.
type FieldError struct {
	Field   string
	Message string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// FieldPath lets yamlfile.WithLine find the field's line.
func (e FieldError) FieldPath() string { return e.Field }

// Validate checks a defaulted stack; it returns the first problem as a
// FieldError so that a file loader can add the file and line.
func (s *Stack) Validate() error {
	if !dnsLabel().MatchString(s.Name) || len(s.Name) > 40 {
		return FieldError{"name", fmt.Sprintf("%q is not a valid stack name (lower-case letters, digits and '-', at most 40)", s.Name)}
	}
	if s.App.Build == "" && s.App.Image == "" {
		return FieldError{"app", "set build (a folder with a Dockerfile) or image"}
	}
	if strings.TrimSpace(s.App.Image) != s.App.Image || strings.ContainsAny(s.App.Image, " \t") {
		return FieldError{"app.image", fmt.Sprintf("%q is not an image reference", s.App.Image)}
	}
	seen := map[int]bool{}
	for i, p := range s.App.Ports {
		if p.Host < 1 || p.Host > 65535 || p.Container < 1 || p.Container > 65535 {
			return FieldError{fmt.Sprintf("app.ports[%d]", i), fmt.Sprintf("invalid port %d:%d", p.Host, p.Container)}
		}
		if seen[p.Host] {
			return FieldError{fmt.Sprintf("app.ports[%d]", i), fmt.Sprintf("host port %d is listed twice", p.Host)}
		}
		seen[p.Host] = true
	}
	if !strings.HasPrefix(s.App.HealthPath, "/") {
		return FieldError{"app.healthPath", fmt.Sprintf("%q must start with /", s.App.HealthPath)}
	}
	for k := range s.App.Env {
		if k == "" || strings.ContainsAny(k, "= \t") {
			return FieldError{"app.env", fmt.Sprintf("%q is not a valid variable name", k)}
		}
	}
	if c := s.App.Config; c != nil {
		if c.File == "" {
			return FieldError{"app.config.file", "is required when app.config is set"}
		}
		if !strings.HasSuffix(c.File, ".toml") {
			return FieldError{"app.config.file", fmt.Sprintf("%s: only TOML config files are rewritten", c.File)}
		}
		if !strings.HasPrefix(c.MountPath, "/") {
			return FieldError{"app.config.mountPath", fmt.Sprintf("%q must be an absolute path in the container", c.MountPath)}
		}
	}
	if !sqlName().MatchString(s.MySQL.Database) {
		return FieldError{"mysql.database", fmt.Sprintf("%q: use letters, digits and _ (at most 32)", s.MySQL.Database)}
	}
	if !sqlName().MatchString(s.MySQL.User) || s.MySQL.User == "root" {
		return FieldError{"mysql.user", fmt.Sprintf("%q: use letters, digits and _ (at most 32), not root", s.MySQL.User)}
	}
	if s.MySQL.HostPort < 0 || s.MySQL.HostPort > 65535 {
		return FieldError{"mysql.hostPort", fmt.Sprintf("invalid port %d", s.MySQL.HostPort)}
	}
	if seen[s.MySQL.HostPort] {
		return FieldError{"mysql.hostPort", fmt.Sprintf("host port %d is also used by the app", s.MySQL.HostPort)}
	}
	if s.MySQL.PasswordFile == s.MySQL.RootPasswordFile {
		return FieldError{"mysql.rootPasswordFile", "must differ from mysql.passwordFile"}
	}
	return nil
}
