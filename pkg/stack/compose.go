package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
)

// ComposeExtension is the optional `x-k8sprep` block of the app service in a
// compose.yaml: what compose has no words for.
type ComposeExtension struct {
	HealthPath  string      `yaml:"healthPath,omitempty" json:"healthPath,omitempty"`
	Config      *ConfigFile `yaml:"config,omitempty" json:"config,omitempty"`
	PasswordEnv bool        `yaml:"passwordEnv,omitempty" json:"passwordEnv,omitempty"`
}

// loadCompose reads a compose.yaml with an app service and a MySQL service
// (the one whose image names mysql or mariadb) into a Stack.
func loadCompose(path string) (*Stack, error) {
	dir := filepath.Dir(path)
	opts, err := cli.NewProjectOptions([]string{path},
		cli.WithWorkingDirectory(dir),
		cli.WithOsEnv,
		cli.WithDotEnv,
	)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, err := fromProject(p, dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func isMySQLImage(img string) bool {
	img = strings.ToLower(img)
	return strings.Contains(img, "mysql") || strings.Contains(img, "mariadb")
}

func fromProject(p *types.Project, dir string) (*Stack, error) {
	names := make([]string, 0, len(p.Services))
	for n := range p.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	var app, db *types.ServiceConfig
	for _, n := range names {
		svc := p.Services[n]
		switch {
		case svc.Build == nil && isMySQLImage(svc.Image):
			if db != nil {
				return nil, FieldError{"services." + n, fmt.Sprintf("a second MySQL service (the first is %q)", db.Name)}
			}
			db = &svc
		default:
			if app != nil {
				return nil, FieldError{"services." + n, fmt.Sprintf("a second app service (the first is %q); k8sprep runs one app and one MySQL", app.Name)}
			}
			app = &svc
		}
	}
	if app == nil {
		return nil, FieldError{"services", "no app service (one with build: or a non-MySQL image)"}
	}
	if db == nil {
		return nil, FieldError{"services", "no MySQL service (one whose image names mysql or mariadb)"}
	}
	if err := refuseUnsupported(p, app, db); err != nil {
		return nil, err
	}
	s := &Stack{Name: SanitizeName(p.Name), Dir: dir}
	// App.
	if app.Build != nil {
		s.App.Build = app.Build.Context
		s.App.Dockerfile = app.Build.Dockerfile
		s.App.Target = app.Build.Target
		if app.Image != "" {
			s.App.Image = app.Image
		}
	} else {
		s.App.Image = app.Image
	}
	s.App.Ports = []Port{} // a compose service without ports publishes none
	s.App.Command = app.Command
	if app.Name != ServiceApp {
		s.App.Aliases = []string{app.Name} // the name other services dial
	}
	for i, sec := range app.Secrets {
		def, ok := p.Secrets[sec.Source]
		if !ok || def.File == "" {
			return nil, FieldError{fmt.Sprintf("services.%s.secrets[%d]", app.Name, i), fmt.Sprintf("secret %q has no file: only file secrets are supported", sec.Source)}
		}
		target := sec.Target
		if target == "" {
			target = sec.Source
		}
		if !strings.HasPrefix(target, "/") {
			target = "/run/secrets/" + target
		}
		s.App.Secrets = append(s.App.Secrets, FileCopy{Source: def.File, Target: target})
	}
	if hc := app.HealthCheck; hc != nil && !hc.Disable && len(hc.Test) > 0 && hc.Test[0] != "NONE" {
		h := &Healthcheck{Test: hc.Test}
		dur := func(d *types.Duration) time.Duration {
			if d == nil {
				return 0
			}
			return time.Duration(*d)
		}
		h.Interval, h.Timeout, h.StartPeriod = dur(hc.Interval), dur(hc.Timeout), dur(hc.StartPeriod)
		if hc.Retries != nil {
			h.Retries = int(*hc.Retries)
		}
		s.App.Healthcheck = h
	}
	for i, port := range app.Ports {
		host := port.Published
		if host == "" {
			host = strconv.Itoa(int(port.Target))
		}
		pp, err := ParsePort(host + ":" + strconv.Itoa(int(port.Target)))
		if err != nil {
			return nil, FieldError{fmt.Sprintf("services.%s.ports[%d]", app.Name, i), err.Error()}
		}
		s.App.Ports = append(s.App.Ports, pp)
	}
	for k, v := range app.Environment {
		if s.App.Env == nil {
			s.App.Env = map[string]string{}
		}
		if v != nil {
			s.App.Env[k] = *v
		}
	}
	// Values the stack sets itself win over the compose file's.
	for _, k := range []string{"DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_PASSWORD_FILE", "DB_NAME"} {
		delete(s.App.Env, k)
	}
	if raw, ok := app.Extensions["x-k8sprep"]; ok {
		var x ComposeExtension
		b, err := yaml.Marshal(raw)
		if err == nil {
			dec := yaml.NewDecoder(bytes.NewReader(b))
			dec.KnownFields(true)
			err = dec.Decode(&x)
		}
		if err != nil {
			return nil, FieldError{"services." + app.Name + ".x-k8sprep", strings.TrimPrefix(err.Error(), "yaml: ")}
		}
		s.App.HealthPath = x.HealthPath
		s.App.Config = x.Config
		s.App.PasswordEnv = x.PasswordEnv
	}
	for name := range app.Networks {
		if n, ok := p.Networks[name]; ok && n.Name != "" {
			s.Network = n.Name
		}
		break
	}
	// MySQL.
	s.MySQL.Image = db.Image
	if db.Name != ServiceMySQL {
		s.MySQL.Aliases = []string{db.Name}
	}
	env := func(keys ...string) string {
		for _, k := range keys {
			if v, ok := db.Environment[k]; ok && v != nil {
				return *v
			}
		}
		return ""
	}
	s.MySQL.Database = env("MYSQL_DATABASE", "MARIADB_DATABASE")
	s.MySQL.User = env("MYSQL_USER", "MARIADB_USER")
	for _, sec := range db.Secrets {
		def, ok := p.Secrets[sec.Source]
		if !ok || def.File == "" {
			continue
		}
		target := sec.Target
		if target == "" {
			target = sec.Source
		}
		if strings.Contains(strings.ToLower(target), "root") {
			s.MySQL.RootPasswordFile = def.File
		} else if strings.Contains(strings.ToLower(target), "password") {
			s.MySQL.PasswordFile = def.File
		}
	}
	for _, port := range db.Ports {
		if port.Target == 3306 && port.Published != "" {
			hp, err := strconv.Atoi(port.Published)
			if err != nil {
				return nil, FieldError{"services." + db.Name + ".ports", fmt.Sprintf("published port %q is not a number", port.Published)}
			}
			s.MySQL.HostPort = hp
		}
	}
	for _, v := range db.Volumes {
		if v.Type == types.VolumeTypeBind && (v.Target == initDir || strings.HasPrefix(v.Target, initDir+"/")) {
			scripts, err := initScripts(v.Source, v.Target)
			if err != nil {
				return nil, FieldError{"services." + db.Name + ".volumes", err.Error()}
			}
			s.MySQL.InitScripts = append(s.MySQL.InitScripts, scripts...)
			continue
		}
		if v.Type == types.VolumeTypeVolume && v.Target == "/var/lib/mysql" {
			if vol, ok := p.Volumes[v.Source]; ok && vol.Name != "" {
				s.MySQL.Volume = vol.Name
			} else {
				s.MySQL.Volume = v.Source
			}
		}
	}
	return s, nil
}

// initScripts lists the first-start scripts a bind mount on
// /docker-entrypoint-initdb.d provides: the file, or the folder's scripts.
func initScripts(src, target string) ([]FileCopy, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []FileCopy{{Source: src, Target: target}}, nil
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return nil, err
	}
	var out []FileCopy
	for _, e := range entries {
		n := e.Name()
		if e.Type().IsRegular() && (strings.HasSuffix(n, ".sh") || strings.HasSuffix(n, ".sql") || strings.HasSuffix(n, ".sql.gz")) {
			out = append(out, FileCopy{Source: filepath.Join(src, n), Target: path.Join(target, n)})
		}
	}
	return out, nil
}

// Compose settings compose-run maps; anything else set on a service is refused.
var (
	appKeys   = keySet("build", "image", "ports", "environment", "env_file", "networks", "depends_on", "command", "healthcheck", "secrets", "restart", "expose")
	dbKeys    = keySet("image", "environment", "env_file", "networks", "depends_on", "secrets", "volumes", "ports", "restart", "healthcheck", "expose")
	buildKeys = keySet("context", "dockerfile", "target")
)

func keySet(keys ...string) map[string]bool {
	m := map[string]bool{}
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// setKeys returns the settings present on v (its JSON form, null values left out).
func setKeys(v any) map[string]json.RawMessage {
	b, _ := json.Marshal(v)
	m := map[string]json.RawMessage{}
	_ = json.Unmarshal(b, &m)
	for k, raw := range m {
		if string(raw) == "null" {
			delete(m, k)
		}
	}
	return m
}

// refuseUnsupported lists every setting of the two services that
// compose-run would otherwise drop, and refuses them all in one error.
func refuseUnsupported(p *types.Project, app, db *types.ServiceConfig) error {
	var bad []string
	check := func(svc *types.ServiceConfig, allowed map[string]bool) {
		for k := range setKeys(svc) {
			if !allowed[k] {
				bad = append(bad, fmt.Sprintf("services.%s.%s", svc.Name, k))
			}
		}
	}
	check(app, appKeys)
	check(db, dbKeys)
	if app.Build != nil {
		for k := range setKeys(app.Build) {
			if !buildKeys[k] {
				bad = append(bad, fmt.Sprintf("services.%s.build.%s", app.Name, k))
			}
		}
	}
	for i, v := range db.Volumes {
		isData := v.Type == types.VolumeTypeVolume && v.Target == "/var/lib/mysql"
		isInit := v.Type == types.VolumeTypeBind && (v.Target == initDir || strings.HasPrefix(v.Target, initDir+"/"))
		if !isData && !isInit {
			bad = append(bad, fmt.Sprintf("services.%s.volumes[%d] (%s %s:%s; only a named volume on /var/lib/mysql and scripts on %s)", db.Name, i, v.Type, v.Source, v.Target, initDir))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return FieldError{"services", "compose-run has no equivalent for these settings and refuses them rather than drop them (nothing was started): " +
		strings.Join(bad, ", ") + "; remove them, or run this file with docker compose"}
}
