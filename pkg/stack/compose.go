package stack

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

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
	s := &Stack{Name: SanitizeName(p.Name), Dir: dir}
	// App.
	if app.Build != nil {
		s.App.Build = app.Build.Context
		s.App.Dockerfile = app.Build.Dockerfile
		if app.Image != "" {
			s.App.Image = app.Image
		}
	} else {
		s.App.Image = app.Image
	}
	s.App.Ports = []Port{} // a compose service without ports publishes none
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
