package dockertest

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/moby/moby/client"
)

// MariaDBOptions configures Env.StartMariaDB. Zero values give a server with
// a random root password and no extra database or user.
type MariaDBOptions struct {
	// Image defaults to MariaDBImage.
	Image string
	// Name is the container name (its DNS name on Network); default Env.Name("mariadb").
	Name    string
	Network string
	// RootPassword defaults to a random one; set AllowEmptyPassword for none.
	RootPassword       string
	AllowEmptyPassword bool
	Database           string
	User               string
	Password           string
	// RootPasswordFile / PasswordFile, when set, are paths in the container:
	// the password is written there and passed as MYSQL_ROOT_PASSWORD_FILE /
	// MYSQL_PASSWORD_FILE instead of the plain variable.
	RootPasswordFile string
	PasswordFile     string
	// Env is appended after the variables above (so it can override them,
	// e.g. with MYSQL_ROOT_PASSWORD_FILE).
	Env []string
	// Volume, when set, is mounted at /var/lib/mysql.
	Volume string
	// InitScripts are copied into /docker-entrypoint-initdb.d (name -> content).
	InitScripts map[string][]byte
	// Files are copied into the container before it starts (path -> content).
	Files map[string][]byte
	// ReadyTimeout bounds the wait for the first query; default 2 minutes.
	ReadyTimeout time.Duration
	// NoWait returns as soon as the container started.
	NoWait bool
}

// MariaDB is a running MariaDB container whose port 3306 is published on
// 127.0.0.1.
type MariaDB struct {
	*Container
	RootPassword string
	Database     string
	User         string
	Password     string
	// Addr is the host address of port 3306, "127.0.0.1:<port>".
	Addr string
	// ReadyAfter is the time from container start to the first successful
	// query through Addr (zero with NoWait).
	ReadyAfter time.Duration
}

// StartMariaDB runs the MariaDB image, publishes 3306 on a free host port
// and waits until root can run a query over TCP from the host.
func (e *Env) StartMariaDB(t testing.TB, o MariaDBOptions) *MariaDB {
	t.Helper()
	if o.Image == "" {
		o.Image = MariaDBImage
	}
	if o.Name == "" {
		o.Name = e.Name("mariadb")
	}
	if o.RootPassword == "" && !o.AllowEmptyPassword {
		o.RootPassword = "root-" + e.Name("pw")
	}
	var env []string
	add := func(k, v string) {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	files := map[string][]byte{}
	secret := func(name, value, file string) {
		if file != "" && value != "" {
			files[file] = []byte(value + "\n")
			add(name+"_FILE", file)
		} else {
			add(name, value)
		}
	}
	secret("MYSQL_ROOT_PASSWORD", o.RootPassword, o.RootPasswordFile)
	if o.AllowEmptyPassword {
		add("MYSQL_ALLOW_EMPTY_PASSWORD", "yes")
	}
	add("MYSQL_DATABASE", o.Database)
	add("MYSQL_USER", o.User)
	secret("MYSQL_PASSWORD", o.Password, o.PasswordFile)
	env = append(env, o.Env...)
	maps.Copy(files, o.Files)
	for name, body := range o.InitScripts {
		files[path.Join("/docker-entrypoint-initdb.d", name)] = body
	}
	spec := RunSpec{Image: o.Image, Name: o.Name, Network: o.Network, Env: env, Publish: []string{"3306/tcp"}, Files: files}
	if o.Volume != "" {
		spec.Volumes = map[string]string{o.Volume: "/var/lib/mysql"}
	}
	start := time.Now()
	c := e.Run(t, spec)
	m := &MariaDB{Container: c, RootPassword: o.RootPassword, Database: o.Database, User: o.User, Password: o.Password}
	m.Addr = c.HostAddr(t, "3306/tcp")
	if o.NoWait {
		return m
	}
	timeout := o.ReadyTimeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := m.WaitReady(ctx, "root", m.RootPassword); err != nil {
		logs, _ := c.Logs(context.Background())
		t.Fatalf("dockertest: MariaDB %s not ready: %v\ncontainer output:\n%s", c.Name, err, logs)
	}
	m.ReadyAfter = time.Since(start)
	return m
}

// DSN is a go-sql-driver data source name for user on the published port.
func (m *MariaDB) DSN(user, password, database string) string {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = user, password, "tcp", m.Addr, database
	c.Timeout = 5 * time.Second
	c.ParseTime = true
	c.MultiStatements = true
	return c.FormatDSN()
}

// Open opens a pool for user on the published port, closed at test cleanup.
func (m *MariaDB) Open(t testing.TB, user, password, database string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", m.DSN(user, password, database))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// WaitReady retries a query over the published port until it succeeds, the
// container stops, or ctx ends. The port accepts TCP (docker-proxy) before
// the server does, so a successful connect is not enough.
func (m *MariaDB) WaitReady(ctx context.Context, user, password string) error {
	// Quiet the driver's "unexpected EOF" log lines while the server starts.
	_ = mysql.SetLogger(quietLogger{})
	db, err := sql.Open("mysql", m.DSN(user, password, ""))
	if err != nil {
		return err
	}
	defer db.Close()
	var last error
	for {
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		var one int
		last = db.QueryRowContext(qctx, "SELECT 1").Scan(&one)
		cancel()
		if last == nil {
			return nil
		}
		ins, err := m.env.Client.ContainerInspect(ctx, m.ID, client.ContainerInspectOptions{})
		if err == nil && ins.Container.State != nil && !ins.Container.State.Running {
			return fmt.Errorf("container exited with code %d (last query error: %v)", ins.Container.State.ExitCode, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last query error: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Query runs the mariadb command-line client inside this container against
// its own server (over TCP to 127.0.0.1) and returns its output.
func (m *MariaDB) Query(ctx context.Context, user, password, database, sqlText string) (string, error) {
	args := []string{"mariadb", "-h127.0.0.1", "-u" + user, "--batch", "--skip-column-names"}
	if password != "" {
		args = append(args, "-p"+password)
	}
	if database != "" {
		args = append(args, database)
	}
	res, err := m.Exec(ctx, append(args, "-e", sqlText)...)
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return res.Stdout, fmt.Errorf("mariadb client exit %d: %s", res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	return res.Stdout, nil
}

type quietLogger struct{}

func (quietLogger) Print(...any) {}
