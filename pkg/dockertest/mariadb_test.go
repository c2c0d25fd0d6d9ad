package dockertest_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/hacluster/hacluster/pkg/dockertest"
)

// The acceptance test: the MariaDB image on a user-defined network,
// reached by container name from a second container (the mariadb client) and
// by the published port from the host (Go driver). It also checks
// MYSQL_DATABASE/USER/PASSWORD and both kinds of init script.
func TestMariaDBByNameAndPublishedPort(t *testing.T) {
	env := dockertest.New(t)
	env.RequireImage(t, dockertest.MariaDBImage)
	net := env.Network(t, "mynetwork")
	const userPW = `app'pw"with\specials`
	db := env.StartMariaDB(t, dockertest.MariaDBOptions{
		Network:  net,
		Database: "PersonalizedRecommendationSystem",
		User:     "appuser",
		Password: userPW,
		InitScripts: map[string][]byte{
			"01-schema.sql": []byte("CREATE TABLE greetings (id INT AUTO_INCREMENT PRIMARY KEY, source VARCHAR(32) NOT NULL);\n" +
				"INSERT INTO greetings (source) VALUES ('sql');\n"),
			// Sourced (not executable): sees the exported MYSQL_* values and
			// reaches the init server through the default socket.
			"02-more.sh": []byte(`mariadb -uroot -p"$MYSQL_ROOT_PASSWORD" "$MYSQL_DATABASE" -e "INSERT INTO greetings (source) VALUES ('sh')"` + "\n"),
		},
	})
	t.Logf("docker run -> first query over TCP from the host: %s", db.ReadyAfter.Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// From the host through the published port, as the ordinary user.
	conn := db.Open(t, "appuser", userPW, "PersonalizedRecommendationSystem")
	var who string
	if err := conn.QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&who); err != nil {
		t.Fatalf("query as appuser via %s: %v", db.Addr, err)
	}
	if who != "appuser@%" {
		t.Errorf("CURRENT_USER() = %q, want appuser@%%", who)
	}
	if got := sources(ctx, t, conn); got != "sql,sh" {
		t.Errorf("rows written by the init scripts = %q, want sql,sh", got)
	}
	if _, err := conn.ExecContext(ctx, "INSERT INTO greetings (source) VALUES ('host')"); err != nil {
		t.Fatalf("insert from host: %v", err)
	}
	// The ordinary user has no rights outside its database.
	var n int
	err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM mysql.user").Scan(&n)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1142 {
		t.Errorf("appuser reading mysql.user: err = %v, want error 1142 (denied)", err)
	}
	// A wrong password is refused.
	bad, _ := sql.Open("mysql", db.DSN("appuser", "wrong", ""))
	defer bad.Close()
	if err := bad.PingContext(ctx); !errors.As(err, &me) || me.Number != 1045 {
		t.Errorf("wrong password: err = %v, want error 1045 (access denied)", err)
	}

	// From a second container on the same network, by container name.
	code, out := env.RunOnce(t, dockertest.RunSpec{
		Image: dockertest.MariaDBImage, Network: net,
		Cmd: []string{"mariadb", "-h", db.Name, "-P", "3306", "-uappuser", "-p" + userPW, "--batch", "--skip-column-names",
			"PersonalizedRecommendationSystem", "-e", "SELECT GROUP_CONCAT(source ORDER BY id) FROM greetings"},
	}, 2*time.Minute)
	if code != 0 || strings.TrimSpace(out) != "sql,sh,host" {
		t.Fatalf("mariadb client in a second container, host %s: exit %d, output %q", db.Name, code, out)
	}

	// Root works from the host too (root@'%' from MYSQL_ROOT_PASSWORD).
	root := db.Open(t, "root", db.RootPassword, "")
	var dbs string
	if err := root.QueryRowContext(ctx, "SELECT GROUP_CONCAT(SCHEMA_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ('mysql','information_schema','performance_schema','sys')").Scan(&dbs); err != nil {
		t.Fatal(err)
	}
	if dbs != "PersonalizedRecommendationSystem" {
		t.Errorf("databases = %q, want only PersonalizedRecommendationSystem (no test database)", dbs)
	}
}

// _FILE variants, and data in a volume surviving a restart and a new
// container; init scripts run only on the first start.
func TestMariaDBFileSecretsAndVolumePersistence(t *testing.T) {
	env := dockertest.New(t)
	env.RequireImage(t, dockertest.MariaDBImage)
	vol := env.Volume(t, "mysql-data")
	opts := dockertest.MariaDBOptions{
		RootPassword: "root-from-file", RootPasswordFile: "/run/secrets/mysql-root",
		User: "filer", Password: "user-from-file", PasswordFile: "/run/secrets/mysql-user",
		Database: "keep", Volume: vol,
		InitScripts: map[string][]byte{"10-once.sql": []byte("CREATE TABLE runs (n INT);\nINSERT INTO runs VALUES (1);\n")},
	}
	db := env.StartMariaDB(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	conn := db.Open(t, "filer", "user-from-file", "keep")
	if _, err := conn.ExecContext(ctx, "CREATE TABLE items (v VARCHAR(16)); INSERT INTO items VALUES ('persisted')"); err != nil {
		t.Fatalf("as the user from MYSQL_PASSWORD_FILE: %v", err)
	}
	// The _FILE values are the passwords (the trailing newline is dropped),
	// not the file names.
	if _, err := db.Query(ctx, "root", "/run/secrets/mysql-root", "", "SELECT 1"); err == nil {
		t.Error("root accepted the file name as password")
	}
	if out, err := db.Query(ctx, "root", "root-from-file", "keep", "SELECT v FROM items"); err != nil || strings.TrimSpace(out) != "persisted" {
		t.Fatalf("root from MYSQL_ROOT_PASSWORD_FILE inside the container: %q, %v", out, err)
	}

	// docker restart: same container, same volume.
	if err := db.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	db.Addr = db.HostAddr(t, "3306/tcp") // a restart may publish another port
	if err := db.WaitReady(ctx, "root", "root-from-file"); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	checkPersisted(ctx, t, db)

	// A new container on the same volume, with other passwords in its
	// environment: the existing data directory wins, nothing is re-initialised.
	if err := db.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	opts.RootPassword, opts.Password = "ignored-root", "ignored-user"
	opts.NoWait = true
	db2 := env.StartMariaDB(t, opts)
	if err := db2.WaitReady(ctx, "root", "root-from-file"); err != nil {
		logs, _ := db2.Logs(ctx)
		t.Fatalf("new container on the old volume: %v\n%s", err, logs)
	}
	checkPersisted(ctx, t, db2)
	logs, err := db2.Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs, "already initialised") || strings.Contains(logs, "10-once.sql") {
		t.Errorf("second container re-initialised the volume:\n%s", logs)
	}
}

func checkPersisted(ctx context.Context, t *testing.T, db *dockertest.MariaDB) {
	t.Helper()
	conn := db.Open(t, "filer", "user-from-file", "keep")
	var v string
	var runs int
	if err := conn.QueryRowContext(ctx, "SELECT (SELECT v FROM items), (SELECT COUNT(*) FROM runs)").Scan(&v, &runs); err != nil {
		t.Fatalf("%s: %v", db.Name, err)
	}
	if v != "persisted" || runs != 1 {
		t.Errorf("%s: items=%q runs=%d, want persisted and 1", db.Name, v, runs)
	}
}

// Bad configurations stop the container at once with a clear message.
func TestMariaDBRejectsBadEnvironment(t *testing.T) {
	env := dockertest.New(t)
	env.RequireImage(t, dockertest.MariaDBImage)
	cases := []struct {
		name string
		env  []string
		want string
	}{
		{"no root password", nil, "MYSQL_ROOT_PASSWORD"},
		{"value and file", []string{"MYSQL_ROOT_PASSWORD=a", "MYSQL_ROOT_PASSWORD_FILE=/etc/hostname"}, "both MYSQL_ROOT_PASSWORD and MYSQL_ROOT_PASSWORD_FILE"},
		{"missing file", []string{"MYSQL_ROOT_PASSWORD_FILE=/run/secrets/none"}, "not readable"},
		{"user root", []string{"MYSQL_ROOT_PASSWORD=a", "MYSQL_USER=root", "MYSQL_PASSWORD=b"}, "MYSQL_USER=root"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out := env.RunOnce(t, dockertest.RunSpec{Image: dockertest.MariaDBImage, Env: c.env}, 2*time.Minute)
			if code == 0 || !strings.Contains(out, c.want) {
				t.Errorf("exit %d, output %q: want a failure mentioning %q", code, out, c.want)
			}
		})
	}
}

func sources(ctx context.Context, t *testing.T, db *sql.DB) string {
	t.Helper()
	var s sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT GROUP_CONCAT(source ORDER BY id) FROM greetings").Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s.String
}
