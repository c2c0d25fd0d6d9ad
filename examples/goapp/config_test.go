package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadConfigFile(t *testing.T) {
	cfg, err := loadConfig("config.toml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := MySQLConfig{Database: "PersonalizedRecommendationSystem", IP: "mymysql", Password: "12345678", Port: 3306, User: "root"}
	if cfg.MySQL != want {
		t.Fatalf("got %+v, want %+v", cfg.MySQL, want)
	}
}

func TestLoadConfigEnvOverrides(t *testing.T) {
	cfg, err := loadConfig("config.toml", env(map[string]string{
		"DB_HOST": "db.example", "DB_PORT": "8806", "DB_USER": "app", "DB_PASSWORD": "p@ss:w/rd", "DB_NAME": "other",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := MySQLConfig{Database: "other", IP: "db.example", Password: "p@ss:w/rd", Port: 8806, User: "app"}
	if cfg.MySQL != want {
		t.Fatalf("got %+v, want %+v", cfg.MySQL, want)
	}
	// The DSN must survive special characters in the password.
	parsed, err := mysql.ParseDSN(cfg.MySQL.DSN())
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Passwd != want.Password || parsed.Addr != "db.example:8806" || parsed.DBName != "other" || parsed.User != "app" {
		t.Fatalf("DSN round trip: %+v", parsed)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, path string
		env        map[string]string
		want       string
	}{
		{"bad port env", "config.toml", map[string]string{"DB_PORT": "abc"}, "DB_PORT"},
		{"port out of range", write("p.toml", "[mysql]\ndatabase='x'\nport=70000\n"), nil, "not a port"},
		{"unknown key", write("u.toml", "[mysql]\ndatabase='x'\nhost='y'\n"), nil, "unknown key"},
		{"syntax", write("s.toml", "[mysql\n"), nil, "config"},
		{"no database", filepath.Join(dir, "missing.toml"), nil, "no database"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadConfig(c.path, env(c.env))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
	// A missing file is fine when the environment names the database.
	cfg, err := loadConfig(filepath.Join(dir, "missing.toml"), env(map[string]string{"DB_NAME": "d"}))
	if err != nil || cfg.MySQL.Database != "d" || cfg.MySQL.Port != 3306 {
		t.Fatalf("env-only config: %+v, %v", cfg.MySQL, err)
	}
}

func TestLoadConfigPasswordFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "db-password")
	if err := os.WriteFile(f, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig("config.toml", env(map[string]string{"DB_PASSWORD": "from-env", "DB_PASSWORD_FILE": f}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MySQL.Password != "from-a-file" {
		t.Fatalf("password %q, want the file's", cfg.MySQL.Password)
	}
	if _, err := loadConfig("config.toml", env(map[string]string{"DB_PASSWORD_FILE": f + ".missing"})); err == nil || !strings.Contains(err.Error(), "DB_PASSWORD_FILE") {
		t.Fatalf("missing file: %v", err)
	}
}
