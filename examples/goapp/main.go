// Command goapp is the sample service of the seed article: a Go HTTP server on
// :8080 that reads the [mysql] section of config.toml, connects to MySQL,
// creates its table and proves a round trip to the database on GET /roundtrip.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	_ "github.com/go-sql-driver/mysql"
)

func main() {
	configPath := flag.String("config", "config.toml", "path of the TOML configuration file")
	addr := flag.String("listen", ":8080", "HTTP listen address")
	wait := flag.Duration("db-wait", 60*time.Second, "how long to retry the first database connection")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.LUTC)
	if err := run(*configPath, *addr, *wait); err != nil {
		log.Printf("goapp: %v", err)
		os.Exit(1)
	}
}

func run(configPath, addr string, wait time.Duration) error {
	cfg, err := loadConfig(configPath, os.Getenv)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	db, err := sql.Open("mysql", cfg.MySQL.DSN())
	if err != nil {
		return err
	}
	defer db.Close()
	log.Printf("connecting to mysql at %s:%d (database %s, user %s)", cfg.MySQL.IP, cfg.MySQL.Port, cfg.MySQL.Database, cfg.MySQL.User)
	if err := waitForDB(ctx, db, wait); err != nil {
		return err
	}
	if err := createTable(ctx, db); err != nil {
		return err
	}

	a := &app{db: db, database: cfg.MySQL.Database}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /roundtrip", a.roundtrip)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("listening on %s", addr)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdownCtx)
	}
}

// waitForDB retries Ping until the server answers: a database container
// accepts TCP before it accepts queries.
func waitForDB(ctx context.Context, db *sql.DB, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := db.PingContext(pctx)
		cancel()
		if err == nil {
			log.Printf("database answered after %d attempt(s)", attempt)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("database not reachable after %s: %w", wait, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

const table = "goapp_roundtrip"

func createTable(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  token VARCHAR(64) NOT NULL,
  created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
)`)
	if err != nil {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	return nil
}

type app struct {
	db       *sql.DB
	database string
}

// roundtripResult is the JSON body of GET /roundtrip.
type roundtripResult struct {
	OK       bool      `json:"ok"`
	Database string    `json:"database"`
	Table    string    `json:"table"`
	ID       int64     `json:"id"`
	Wrote    string    `json:"wrote"`
	Read     string    `json:"read"`
	Rows     int64     `json:"rows"`
	At       time.Time `json:"createdAt"`
	Error    string    `json:"error,omitempty"`
}

func (a *app) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := a.db.PingContext(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database unreachable", "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *app) roundtrip(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	res := roundtripResult{Database: a.database, Table: table}
	if err := a.doRoundtrip(ctx, &res); err != nil {
		res.Error = err.Error()
		writeJSON(w, http.StatusInternalServerError, res)
		return
	}
	res.OK = res.Read == res.Wrote
	writeJSON(w, http.StatusOK, res)
}

func (a *app) doRoundtrip(ctx context.Context, res *roundtripResult) error {
	buf := make([]byte, 16)
	if _, err := rand.Read(buf); err != nil {
		return err
	}
	res.Wrote = hex.EncodeToString(buf)
	r, err := a.db.ExecContext(ctx, "INSERT INTO "+table+" (token) VALUES (?)", res.Wrote)
	if err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	if res.ID, err = r.LastInsertId(); err != nil {
		return err
	}
	err = a.db.QueryRowContext(ctx, "SELECT token, created_at FROM "+table+" WHERE id = ?", res.ID).Scan(&res.Read, &res.At)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("row %d not found after insert", res.ID)
	} else if err != nil {
		return fmt.Errorf("select: %w", err)
	}
	return a.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&res.Rows)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
