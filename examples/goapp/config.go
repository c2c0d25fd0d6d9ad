package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/go-sql-driver/mysql"
)

// Config is the content of config.toml.
type Config struct {
	MySQL MySQLConfig `toml:"mysql"`
}

// MySQLConfig is the [mysql] section of config.toml.
type MySQLConfig struct {
	Database string `toml:"database"`
	IP       string `toml:"ip"`
	Password string `toml:"password"`
	Port     int    `toml:"port"`
	User     string `toml:"user"`
}

// loadConfig reads path (a missing file is fine when the environment supplies
// everything) and applies the DB_* environment overrides (DB_PASSWORD_FILE:
// the password from a file).
func loadConfig(path string, getenv func(string) string) (Config, error) {
	cfg := Config{MySQL: MySQLConfig{IP: "127.0.0.1", Port: 3306, User: "root"}}
	if path != "" {
		md, err := toml.DecodeFile(path, &cfg)
		switch {
		case os.IsNotExist(err):
			// Environment only.
		case err != nil:
			return cfg, fmt.Errorf("config %s: %w", path, err)
		default:
			if und := md.Undecoded(); len(und) > 0 {
				return cfg, fmt.Errorf("config %s: unknown key %q", path, und[0].String())
			}
		}
	}
	m := &cfg.MySQL
	for _, o := range []struct {
		env string
		dst *string
	}{{"DB_HOST", &m.IP}, {"DB_USER", &m.User}, {"DB_PASSWORD", &m.Password}, {"DB_NAME", &m.Database}} {
		if v := getenv(o.env); v != "" {
			*o.dst = v
		}
	}
	// DB_PASSWORD_FILE names a file holding the password (a Docker or
	// Kubernetes secret): it keeps the password out of the environment that
	// `docker inspect` shows. It wins over DB_PASSWORD.
	if f := getenv("DB_PASSWORD_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return cfg, fmt.Errorf("DB_PASSWORD_FILE: %w", err)
		}
		m.Password = strings.TrimRight(string(b), "\r\n")
	}
	if v := getenv("DB_PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return cfg, fmt.Errorf("DB_PORT=%q: not a port number", v)
		}
		m.Port = p
	}
	if m.Database == "" {
		return cfg, fmt.Errorf("no database name: set [mysql] database in %s or DB_NAME", path)
	}
	if m.Port < 1 || m.Port > 65535 {
		return cfg, fmt.Errorf("[mysql] port %d: not a port number", m.Port)
	}
	return cfg, nil
}

// DSN returns the go-sql-driver data source name for the section.
func (m MySQLConfig) DSN() string {
	c := mysql.NewConfig()
	c.User = m.User
	c.Passwd = m.Password
	c.Net = "tcp"
	c.Addr = net.JoinHostPort(m.IP, strconv.Itoa(m.Port))
	c.DBName = m.Database
	c.ParseTime = true
	c.Timeout = 5 * time.Second
	return c.FormatDSN()
}
