package stack

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/go-sql-driver/mysql"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/hacluster/hacluster/pkg/output"
)

func init() {
	// go-sql-driver logs "unexpected EOF" while MySQL initialises; the wait
	// loop reports what matters.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
}

// secretsDir is where the passwords are copied inside the containers.
const secretsDir = "/run/k8sprep"

// AppPasswordFile is the app's password file (DB_PASSWORD_FILE) when the app
// has no config file to carry it.
const AppPasswordFile = secretsDir + "/db-password"

// Progress receives the steps of a run (pkg/output.Progress fits).
type Progress interface {
	Start(format string, args ...any)
	Done()
	Fail()
}

type nopProgress struct{}

func (nopProgress) Start(string, ...any) {}
func (nopProgress) Done()                {}
func (nopProgress) Fail()                {}

// Runner runs a stack on one Docker engine.
type Runner struct {
	API      client.APIClient
	Build    BuildFunc     // nil: ClassicBuild
	Progress Progress      // nil: silent
	BuildLog io.Writer     // build output (nil: discarded)
	Timeout  time.Duration // for MySQL and the app to become ready; 0: 3 minutes
	// Stable is how long the app must run without exiting or restarting
	// before it counts as ready when it gave no answer (no published port,
	// no health check); 0: 3 seconds. One that answered needs 1 s at most.
	Stable time.Duration
}

// Service is one running piece of a stack, as ps and compose-run report it.
type Service struct {
	Stack     string `json:"stack"`
	Service   string `json:"service"`
	Container string `json:"container"`
	Image     string `json:"image"`
	State     string `json:"state"`
	// Action is what compose-run did: created, recreated, started or unchanged.
	Action string `json:"action,omitempty"`
	// Network address other containers use, and the address published on the host.
	Internal  string   `json:"internal"`
	Published []string `json:"published,omitempty"`
	URL       string   `json:"url,omitempty"`
}

// Result is what Up did.
type Result struct {
	Stack     string    `json:"stack"`
	Network   string    `json:"network"`
	Volume    string    `json:"volume"`
	Services  []Service `json:"services"`
	Generated []string  `json:"generatedPasswordFiles,omitempty"`
	Config    string    `json:"rewrittenConfig,omitempty"`
	// Notes say how the app gets its password, and warn when it is in the
	// app's environment.
	Notes []string `json:"notes,omitempty"`
}

func (r *Runner) progress() Progress {
	if r.Progress == nil {
		return nopProgress{}
	}
	return r.Progress
}

func (r *Runner) timeout() time.Duration {
	if r.Timeout <= 0 {
		return 3 * time.Minute
	}
	return r.Timeout
}

// labels returns the ownership labels of one service.
func labels(s *Stack, service, hash string) map[string]string {
	l := map[string]string{LabelStack: s.Name}
	if service != "" {
		l[LabelService] = service
	}
	if hash != "" {
		l[LabelHash] = hash
	}
	return l
}

func withImage(l map[string]string, image string) map[string]string {
	l[LabelImage] = image
	return l
}

// notOwned is the error for a name taken by something the stack did not create.
func notOwned(kind, name string, s *Stack) error {
	return fmt.Errorf("a %s named %q already exists and was not created by stack %q (no %s=%s label); "+
		"it is left alone: remove or rename it, or give the stack another name with --name", kind, name, s.Name, LabelStack, s.Name)
}

// engineHost is the address where ports published by the engine are reached.
func (r *Runner) engineHost() (host string, local bool) {
	u, err := url.Parse(r.API.DaemonHost())
	if err != nil || u.Scheme == "unix" || u.Scheme == "npipe" || u.Hostname() == "" {
		return "127.0.0.1", true
	}
	h := u.Hostname()
	ip := net.ParseIP(h)
	return h, h == "localhost" || (ip != nil && ip.IsLoopback())
}

// Up creates or reconciles the stack and waits until MySQL answers queries
// as the app's user and the app is ready.
//
// Everything that can be refused is checked before anything changes, and a
// rerun that fails leaves what ran running: a container to be replaced is
// stopped and renamed <name>-previous, and put back (renamed and started
// again) when its replacement or anything after it fails.
func (r *Runner) Up(ctx context.Context, s *Stack) (res *Result, err error) {
	p := r.progress()
	res = &Result{Stack: s.Name, Network: s.Network, Volume: s.MySQL.Volume}

	p.Start("checking names and ports")
	if err := r.recoverPrevious(ctx, s); err != nil {
		p.Fail()
		return nil, err
	}
	existing, err := r.checkOwnership(ctx, s)
	if err != nil {
		p.Fail()
		return nil, err
	}
	if err := r.checkPorts(ctx, s, existing); err != nil {
		p.Fail()
		return nil, err
	}
	secrets, err := s.EnsureSecrets()
	if err != nil {
		p.Fail()
		return nil, err
	}
	res.Generated = secrets.Generated
	var config []byte
	if s.App.Config != nil {
		orig, err := os.ReadFile(s.App.Config.File)
		if err != nil {
			p.Fail()
			return nil, fmt.Errorf("reading the app config: %w", err)
		}
		config, err = s.RewriteConfig(orig, s.MySQLContainer(), 3306, secrets.Password)
		if err != nil {
			p.Fail()
			return nil, fmt.Errorf("%s: %w", s.App.Config.File, err)
		}
	}
	appFiles, err := readCopies(s.App.Secrets, "")
	if err != nil {
		p.Fail()
		return nil, err
	}
	if secrets.initScripts, err = readCopies(s.MySQL.InitScripts, initDir); err != nil {
		p.Fail()
		return nil, err
	}
	mysqlImage, err := r.API.ImageInspect(ctx, s.MySQL.Image)
	if err != nil {
		p.Fail()
		if cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("MySQL image %s is not on the engine: pull or load it first (docker pull %s)", s.MySQL.Image, s.MySQL.Image)
		}
		return nil, err
	}
	dbSpec := r.mysqlSpec(s, mysqlImage.ID, secrets)
	if err := r.checkMySQLReuse(ctx, s, existing[ServiceMySQL], dbSpec, secrets.Password); err != nil {
		p.Fail()
		return nil, err
	}
	p.Done()

	// The app image does not need MySQL: it builds while MySQL starts. On a
	// rerun (MySQL exists) the build comes first, so that a failed build
	// changes nothing.
	appCtx, cancelApp := context.WithCancel(ctx)
	defer cancelApp()
	type built struct {
		id  string
		err error
	}
	buildDone := make(chan built, 1)
	go func() {
		id, err := r.appImage(appCtx, s)
		buildDone <- built{id, err}
	}()
	var img *built
	awaitImage := func() error {
		if img == nil {
			if s.App.Build != "" {
				p.Start("building the app image %s", s.App.Image)
			} else {
				p.Start("preparing the app (%s)", s.App.Image)
			}
			b := <-buildDone
			img = &b
			if b.err != nil {
				p.Fail()
				return b.err
			}
			p.Done()
		}
		return img.err
	}
	if existing[ServiceMySQL] != nil {
		if err := awaitImage(); err != nil {
			return nil, err
		}
	}

	tx := &txn{r: r}
	defer func() {
		if err != nil {
			cancelApp()
			if img == nil {
				<-buildDone
			}
			if rerr := tx.rollback(ctx); rerr != nil {
				err = fmt.Errorf("%w\nputting the previous containers back failed too: %v", err, rerr)
			} else if len(tx.replaced) > 0 {
				err = fmt.Errorf("%w\nthe previous containers run again, unchanged", err)
			}
			return
		}
		tx.commit(ctx)
		removeStaleConfigs(s, res.Config)
	}()
	fail := func(e error) (*Result, error) {
		p.Fail()
		return nil, e
	}

	if err := r.ensureNetwork(ctx, s); err != nil {
		return nil, err
	}
	if err := r.ensureVolume(ctx, s); err != nil {
		return nil, err
	}

	p.Start("starting MySQL (%s)", s.MySQL.Image)
	dbPrep, err := tx.prepare(ctx, s, dbSpec, existing[ServiceMySQL])
	if err != nil {
		return fail(err)
	}
	dbSvc, err := r.start(ctx, dbPrep)
	if err != nil {
		return fail(err)
	}
	p.Done()
	p.Start("waiting until MySQL accepts queries as %s over TCP", s.MySQL.User)
	if err := r.waitMySQL(ctx, s, dbSvc, secrets.Password); err != nil {
		return fail(err)
	}
	p.Done()

	if err := awaitImage(); err != nil {
		return nil, err
	}
	appSpec, cfgPath, err := r.appSpec(s, img.id, config, secrets.Password, appFiles)
	if err != nil {
		return nil, err
	}
	res.Config = cfgPath
	res.Notes = passwordNotes(s, cfgPath)
	p.Start("starting the app")
	appPrep, err := tx.prepare(ctx, s, appSpec, existing[ServiceApp])
	if err != nil {
		return fail(err)
	}
	appSvc, err := r.start(ctx, appPrep)
	if err != nil {
		return fail(err)
	}
	p.Done()
	if s.App.Healthcheck != nil {
		p.Start("waiting until the app's health check passes")
	} else if u := r.appURL(s); u != "" {
		p.Start("waiting until the app answers %s%s", u, s.App.HealthPath)
	} else {
		p.Start("waiting until the app runs steadily (no published port)")
	}
	if err := r.waitApp(ctx, s, appSvc); err != nil {
		return fail(err)
	}
	p.Done()
	res.Services = []Service{*dbSvc, *appSvc}
	return res, nil
}

// previousName is where a replaced container waits until its replacement is ready.
func previousName(name string) string { return name + "-previous" }

// recoverPrevious finishes an interrupted run: a <name>-previous of the stack
// is removed when <name> exists, and renamed back otherwise.
func (r *Runner) recoverPrevious(ctx context.Context, s *Stack) error {
	for svc, name := range map[string]string{ServiceApp: s.AppContainer(), ServiceMySQL: s.MySQLContainer()} {
		prev, err := r.API.ContainerInspect(ctx, previousName(name), client.ContainerInspectOptions{})
		if cerrdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		if prev.Container.Config == nil || prev.Container.Config.Labels[LabelStack] != s.Name || prev.Container.Config.Labels[LabelService] != svc {
			continue // not ours: never touched
		}
		_, err = r.API.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
		switch {
		case err == nil:
			_, err = r.API.ContainerRemove(ctx, prev.Container.ID, client.ContainerRemoveOptions{Force: true})
		case cerrdefs.IsNotFound(err):
			_, err = r.API.ContainerRename(ctx, prev.Container.ID, client.ContainerRenameOptions{NewName: name})
		}
		if err != nil {
			return fmt.Errorf("cleaning up %s from an interrupted run: %w", previousName(name), err)
		}
	}
	return nil
}

// checkMySQLReuse refuses, before anything changes, a MySQL replacement that
// cannot work on the existing data: the images create the database and the
// user only when the data volume is empty, so a new database name or user,
// or a password the data does not know, would fail after the old MySQL is
// gone. The password is tried against the running MySQL.
func (r *Runner) checkMySQLReuse(ctx context.Context, s *Stack, cur *container.InspectResponse, sp *spec, password string) error {
	if cur == nil || cur.Config.Labels[LabelHash] == sp.hash() {
		return nil
	}
	envOf := func(key string) string {
		for _, e := range cur.Config.Env {
			if k, v, ok := strings.Cut(e, "="); ok && k == key {
				return v
			}
		}
		return ""
	}
	hint := fmt.Sprintf("MySQL creates the database and user only on an empty data volume, so the running stack is left as it is: "+
		"keep the old setting, or use a new volume (--volume) or remove the data (docker k8sprep down --volumes --name %s)", s.Name)
	if old := envOf("MYSQL_DATABASE"); old != "" && old != s.MySQL.Database {
		return fmt.Errorf("the data volume %s holds database %q, not %q; %s", s.MySQL.Volume, old, s.MySQL.Database, hint)
	}
	if old := envOf("MYSQL_USER"); old != "" && old != s.MySQL.User {
		return fmt.Errorf("the data volume %s was initialised for user %q, not %q; %s", s.MySQL.Volume, old, s.MySQL.User, hint)
	}
	if cur.State == nil || !cur.State.Running {
		return nil
	}
	svc := r.service(cur)
	if len(svc.Published) == 0 {
		return nil
	}
	db, err := openMySQL(s, svc.Published[0], password)
	if err != nil {
		return err
	}
	defer db.Close()
	// A MySQL that is still starting gets a few seconds; any answer other
	// than a refusal lets the run go on.
	deadline := time.Now().Add(10 * time.Second)
	bo := newBackoff()
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var one int
		err := db.QueryRowContext(qctx, "SELECT 1").Scan(&one)
		cancel()
		if err == nil {
			return nil
		}
		if permanentMySQLError(err) {
			return fmt.Errorf("the running MySQL refuses the new credentials of %s (%v); %s", s.MySQL.User, err, hint)
		}
		if time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(bo.next()):
		}
	}
}

// permanentMySQLError reports errors that waiting does not heal: access
// denied and unknown database.
func permanentMySQLError(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1044, 1045, 1049, 1698:
			return true
		}
	}
	return false
}

func openMySQL(s *Stack, addr, password string) (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User = s.MySQL.User
	cfg.Passwd = password
	cfg.Net = "tcp"
	cfg.Addr = addr
	cfg.DBName = s.MySQL.Database
	cfg.Timeout = 2 * time.Second
	cfg.ReadTimeout = 5 * time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	db.SetMaxIdleConns(0)
	return db, nil
}

// txn records the containers a run replaced, to put them back on failure.
type txn struct {
	r        *Runner
	replaced []replacement
}

type replacement struct {
	name, oldID, newID string
	wasRunning         bool
}

// prepare keeps, or (re)creates without starting, one container so that it
// matches sp. A container being replaced is stopped and renamed, not
// removed, until the whole run succeeds.
func (tx *txn) prepare(ctx context.Context, s *Stack, sp *spec, cur *container.InspectResponse) (*prepared, error) {
	r := tx.r
	h := sp.hash()
	action := "created"
	idx := -1
	if cur != nil {
		if cur.Config.Labels[LabelHash] == h {
			if cur.State != nil && cur.State.Running {
				return &prepared{id: cur.ID, action: "unchanged"}, nil
			}
			return &prepared{id: cur.ID, action: "started", needStart: true}, nil
		}
		action = "recreated"
		timeout := 10
		if _, err := r.API.ContainerStop(ctx, cur.ID, client.ContainerStopOptions{Timeout: &timeout}); err != nil && !cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("stopping the old %s container: %w", sp.Service, err)
		}
		if _, err := r.API.ContainerRename(ctx, cur.ID, client.ContainerRenameOptions{NewName: previousName(sp.Name)}); err != nil {
			if cur.State != nil && cur.State.Running {
				_, _ = r.API.ContainerStart(context.WithoutCancel(ctx), cur.ID, client.ContainerStartOptions{})
			}
			return nil, fmt.Errorf("renaming the old %s container: %w", sp.Service, err)
		}
		tx.replaced = append(tx.replaced, replacement{name: sp.Name, oldID: cur.ID, wasRunning: cur.State != nil && cur.State.Running})
		idx = len(tx.replaced) - 1
	}
	id, err := r.create(ctx, s, sp, h)
	if err != nil {
		return nil, err
	}
	if idx >= 0 {
		tx.replaced[idx].newID = id
	}
	return &prepared{id: id, action: action, needStart: true, remove: idx < 0}, nil
}

// rollback removes the replacements and puts the old containers back (the
// app first), started again when they ran.
func (tx *txn) rollback(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	var errs []error
	for i := len(tx.replaced) - 1; i >= 0; i-- {
		rp := tx.replaced[i]
		if rp.newID != "" {
			if _, err := tx.r.API.ContainerRemove(ctx, rp.newID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, err)
				continue
			}
		}
		if _, err := tx.r.API.ContainerRename(ctx, rp.oldID, client.ContainerRenameOptions{NewName: rp.name}); err != nil {
			errs = append(errs, err)
			continue
		}
		if rp.wasRunning {
			if _, err := tx.r.API.ContainerStart(ctx, rp.oldID, client.ContainerStartOptions{}); err != nil {
				errs = append(errs, fmt.Errorf("starting %s again: %w", rp.name, err))
			}
		}
	}
	tx.replaced = nil
	return errors.Join(errs...)
}

// commit removes the replaced containers.
func (tx *txn) commit(ctx context.Context) {
	for _, rp := range tx.replaced {
		_, _ = tx.r.API.ContainerRemove(context.WithoutCancel(ctx), rp.oldID, client.ContainerRemoveOptions{Force: true})
	}
	tx.replaced = nil
}

// checkOwnership inspects the names the stack will use and refuses any that
// belong to something else. It returns the stack's own containers by service.
func (r *Runner) checkOwnership(ctx context.Context, s *Stack) (map[string]*container.InspectResponse, error) {
	own := map[string]*container.InspectResponse{}
	for svc, name := range map[string]string{ServiceApp: s.AppContainer(), ServiceMySQL: s.MySQLContainer()} {
		c, err := r.API.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
		if cerrdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if c.Container.Config == nil || c.Container.Config.Labels[LabelStack] != s.Name || c.Container.Config.Labels[LabelService] != svc {
			return nil, notOwned("container", name, s)
		}
		cc := c.Container
		own[svc] = &cc
	}
	n, err := r.API.NetworkInspect(ctx, s.Network, client.NetworkInspectOptions{})
	if err == nil && n.Network.Labels[LabelStack] != s.Name {
		return nil, notOwned("network", s.Network, s)
	} else if err != nil && !cerrdefs.IsNotFound(err) {
		return nil, err
	}
	v, err := r.API.VolumeInspect(ctx, s.MySQL.Volume, client.VolumeInspectOptions{})
	if err == nil && v.Volume.Labels[LabelStack] != s.Name {
		return nil, notOwned("volume", s.MySQL.Volume, s)
	} else if err != nil && !cerrdefs.IsNotFound(err) {
		return nil, err
	}
	return own, nil
}

// checkPorts refuses host ports that something other than the stack holds.
func (r *Runner) checkPorts(ctx context.Context, s *Stack, own map[string]*container.InspectResponse) error {
	ours := map[string]bool{}
	for _, c := range own {
		if c.HostConfig == nil {
			continue
		}
		for _, bs := range c.HostConfig.PortBindings {
			for _, b := range bs {
				ours[b.HostPort] = true
			}
		}
	}
	want := []int{}
	for _, p := range s.App.Ports {
		want = append(want, p.Host)
	}
	if s.MySQL.HostPort != 0 {
		want = append(want, s.MySQL.HostPort)
	}
	var list []container.Summary
	for _, port := range want {
		if ours[strconv.Itoa(port)] {
			continue
		}
		if list == nil {
			l, err := r.API.ContainerList(ctx, client.ContainerListOptions{})
			if err != nil {
				return err
			}
			list = l.Items
		}
		for _, c := range list {
			for _, cp := range c.Ports {
				if int(cp.PublicPort) == port {
					name := strings.TrimPrefix(strings.Join(c.Names, ","), "/")
					return fmt.Errorf("host port %d is already published by container %q; stop it or choose another port (--port HOST:CONTAINER)", port, name)
				}
			}
		}
		if _, local := r.engineHost(); local {
			l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
			if err != nil {
				return fmt.Errorf("host port %d is already in use by another program; free it or choose another port (--port HOST:CONTAINER)", port)
			}
			l.Close()
		}
	}
	return nil
}

func (r *Runner) ensureNetwork(ctx context.Context, s *Stack) error {
	_, err := r.API.NetworkInspect(ctx, s.Network, client.NetworkInspectOptions{})
	if err == nil {
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return err
	}
	p := r.progress()
	p.Start("creating network %s", s.Network)
	if _, err := r.API.NetworkCreate(ctx, s.Network, client.NetworkCreateOptions{Driver: "bridge", Labels: labels(s, "", "")}); err != nil {
		p.Fail()
		return fmt.Errorf("creating network %s: %w", s.Network, err)
	}
	p.Done()
	return nil
}

func (r *Runner) ensureVolume(ctx context.Context, s *Stack) error {
	_, err := r.API.VolumeInspect(ctx, s.MySQL.Volume, client.VolumeInspectOptions{})
	if err == nil {
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return err
	}
	p := r.progress()
	p.Start("creating volume %s", s.MySQL.Volume)
	if _, err := r.API.VolumeCreate(ctx, client.VolumeCreateOptions{Name: s.MySQL.Volume, Labels: labels(s, ServiceMySQL, "")}); err != nil {
		p.Fail()
		return fmt.Errorf("creating volume %s: %w", s.MySQL.Volume, err)
	}
	p.Done()
	return nil
}

// spec is the desired state of one container; its hash decides recreation.
type spec struct {
	Name    string
	Service string
	ImageID string
	Image   string
	Env     []string
	Ports   []Port // Host 0: a free port on the engine
	HostIP  string
	Mounts  []mount.Mount
	Files   map[string]string // path in the container -> sha256 of the content copied in
	Cmd     []string
	Healthy bool
	Aliases []string
	Health  *container.HealthConfig
	copy    map[string][]byte // absolute path -> content; not hashed directly (Files carries their hashes)
}

func (sp *spec) hash() string {
	b, _ := json.Marshal(sp)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (r *Runner) mysqlSpec(s *Stack, imageID string, sec *Secrets) *spec {
	pw := []byte(sec.Password + "\n")
	root := []byte(sec.RootPassword + "\n")
	hostIP := "127.0.0.1"
	if _, local := r.engineHost(); !local {
		hostIP = ""
	}
	sp := &spec{
		Name: s.MySQLContainer(), Service: ServiceMySQL, ImageID: imageID, Image: s.MySQL.Image,
		Env: []string{
			"MYSQL_DATABASE=" + s.MySQL.Database,
			"MYSQL_USER=" + s.MySQL.User,
			"MYSQL_PASSWORD_FILE=" + secretsDir + "/mysql-password",
			"MYSQL_ROOT_PASSWORD_FILE=" + secretsDir + "/mysql-root-password",
		},
		Ports:   []Port{{Host: s.MySQL.HostPort, Container: 3306}},
		HostIP:  hostIP,
		Mounts:  []mount.Mount{{Type: mount.TypeVolume, Source: s.MySQL.Volume, Target: "/var/lib/mysql"}},
		Files:   map[string]string{"mysql-password": sha(pw), "mysql-root-password": sha(root)},
		copy:    map[string][]byte{secretsDir + "/mysql-password": pw, secretsDir + "/mysql-root-password": root},
		Aliases: s.MySQL.Aliases,
	}
	for path, b := range sec.initScripts {
		sp.Files[path] = sha(b)
		sp.copy[path] = b
	}
	return sp
}

// appImage builds (or finds) the app image and returns its ID. It changes
// no container.
func (r *Runner) appImage(ctx context.Context, s *Stack) (string, error) {
	if s.App.Build != "" {
		build := r.Build
		if build == nil {
			build = ClassicBuild
		}
		return build(ctx, r.API, BuildRequest{
			ContextDir: s.App.Build, Dockerfile: s.App.Dockerfile, Tag: s.App.Image,
			Labels: map[string]string{LabelStack: s.Name}, Log: r.BuildLog, Exclude: contextExcludes(s), Target: s.App.Target,
		})
	}
	insp, err := r.API.ImageInspect(ctx, s.App.Image)
	if cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("app image %s is not on the engine: build or load it first", s.App.Image)
	} else if err != nil {
		return "", err
	}
	return insp.ID, nil
}

// configCopyPath is where the rewritten config with this content lives: one
// file per content, so that a container being replaced keeps its own copy
// (and finds it again after a rollback).
func configCopyPath(s *Stack, config []byte) string {
	base := filepath.Base(s.App.Config.File)
	ext := filepath.Ext(base)
	return filepath.Join(s.StateDir(), strings.TrimSuffix(base, ext)+"."+sha(config)[:12]+ext)
}

// removeStaleConfigs removes the rewritten copies other than keep.
func removeStaleConfigs(s *Stack, keep string) {
	if s.App.Config == nil || keep == "" {
		return
	}
	base := filepath.Base(s.App.Config.File)
	ext := filepath.Ext(base)
	matches, _ := filepath.Glob(filepath.Join(s.StateDir(), strings.TrimSuffix(base, ext)+".*"+ext))
	for _, m := range matches {
		if m != keep {
			os.Remove(m)
		}
	}
}

// appSpec writes the config copy and returns the app container's desired state.
func (r *Runner) appSpec(s *Stack, imageID string, config []byte, password string, appFiles map[string][]byte) (*spec, string, error) {
	configPath := ""
	if config != nil {
		configPath = configCopyPath(s, config)
		if err := s.ensureStateDir(s.StateDir()); err != nil {
			return nil, "", err
		}
		// 0644 so that a non-root app user can read the mounted file; the
		// folder is 0700, so other host users cannot.
		if err := WriteFileAtomic(configPath, config, 0o644); err != nil {
			return nil, "", err
		}
	}
	env := map[string]string{}
	for k, v := range s.App.Env {
		env[k] = v
	}
	env["DB_HOST"] = s.MySQLContainer()
	env["DB_PORT"] = "3306"
	env["DB_USER"] = s.MySQL.User
	env["DB_NAME"] = s.MySQL.Database
	sp := &spec{Name: s.AppContainer(), Service: ServiceApp, ImageID: imageID, Image: s.App.Image, Ports: s.App.Ports,
		Cmd: s.App.Command, Aliases: s.App.Aliases, Health: healthConfig(s.App.Healthcheck)}
	if config != nil {
		// The password travels in the read-only config copy, not in the environment.
		sp.Mounts = []mount.Mount{{Type: mount.TypeBind, Source: configPath, Target: s.App.Config.MountPath, ReadOnly: true}}
		sp.Files = map[string]string{s.App.Config.MountPath: sha(config)}
	} else {
		// No config file: the password goes in as a file, copied in before
		// the start, and DB_PASSWORD_FILE names it; DB_PASSWORD (seen by
		// anyone who can run docker inspect) only when the stack asks.
		pw := []byte(password + "\n")
		sp.Files = map[string]string{AppPasswordFile: sha(pw)}
		sp.copy = map[string][]byte{AppPasswordFile: pw}
		env["DB_PASSWORD_FILE"] = AppPasswordFile
		if s.App.PasswordEnv {
			env["DB_PASSWORD"] = password
		}
	}
	for path, b := range appFiles {
		if sp.Files == nil {
			sp.Files = map[string]string{}
		}
		if sp.copy == nil {
			sp.copy = map[string][]byte{}
		}
		sp.Files[path] = sha(b)
		sp.copy[path] = b
	}
	for k, v := range env {
		sp.Env = append(sp.Env, k+"="+v)
	}
	sort.Strings(sp.Env)
	return sp, configPath, nil
}

func passwordNotes(s *Stack, cfgPath string) []string {
	if cfgPath != "" {
		return []string{fmt.Sprintf("the app's database password is in the rewritten config mounted read-only at %s, not in its environment", s.App.Config.MountPath)}
	}
	notes := []string{fmt.Sprintf("the app has no config file: its database password is in the file %s (DB_PASSWORD_FILE), "+
		"copied into the container; the app must read the file DB_PASSWORD_FILE names (set app.passwordEnv: true or --password-env "+
		"for an app that only reads DB_PASSWORD)", AppPasswordFile)}
	if s.App.PasswordEnv {
		notes = append(notes, "warning: DB_PASSWORD is in the app container's environment too (app.passwordEnv): anyone who can run docker inspect reads it")
	}
	return notes
}

// prepared is a container that matches its spec, possibly not yet started.
type prepared struct {
	id, action string
	needStart  bool
	remove     bool // remove it when it fails to start (it never ran)
}

// start starts a prepared container when needed and describes it.
func (r *Runner) start(ctx context.Context, p *prepared) (*Service, error) {
	if p.needStart {
		if _, err := r.API.ContainerStart(ctx, p.id, client.ContainerStartOptions{}); err != nil {
			name := p.id
			if c, ierr := r.API.ContainerInspect(ctx, p.id, client.ContainerInspectOptions{}); ierr == nil {
				name = strings.TrimPrefix(c.Container.Name, "/")
			}
			if p.remove {
				// Ours and never ran: remove it so that a rerun starts clean.
				r.API.ContainerRemove(context.WithoutCancel(ctx), p.id, client.ContainerRemoveOptions{Force: true})
			}
			return nil, startError(name, err)
		}
	}
	svc, err := r.describe(ctx, p.id)
	if err != nil {
		return nil, err
	}
	svc.Action = p.action
	return svc, nil
}

func (r *Runner) create(ctx context.Context, s *Stack, sp *spec, h string) (string, error) {
	exposed := network.PortSet{}
	bindings := network.PortMap{}
	for _, p := range sp.Ports {
		cp := network.MustParsePort(strconv.Itoa(p.Container) + "/tcp")
		exposed[cp] = struct{}{}
		b := network.PortBinding{}
		if p.Host != 0 {
			b.HostPort = strconv.Itoa(p.Host)
		}
		if sp.HostIP != "" {
			b.HostIP = netip.MustParseAddr(sp.HostIP)
		}
		bindings[cp] = append(bindings[cp], b)
	}
	created, err := r.API.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: sp.Name,
		Config: &container.Config{
			Image:        sp.ImageID,
			Env:          sp.Env,
			Labels:       withImage(labels(s, sp.Service, h), sp.Image),
			ExposedPorts: exposed,
			Cmd:          sp.Cmd,
			Healthcheck:  sp.Health,
		},
		HostConfig: &container.HostConfig{
			NetworkMode:   container.NetworkMode(s.Network),
			PortBindings:  bindings,
			Mounts:        sp.Mounts,
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			s.Network: {Aliases: append([]string{sp.Service}, sp.Aliases...)},
		}},
	})
	if err != nil {
		return "", fmt.Errorf("creating container %s: %w", sp.Name, err)
	}
	if len(sp.copy) > 0 {
		if err := r.copySecrets(ctx, created.ID, sp.copy); err != nil {
			r.API.ContainerRemove(context.WithoutCancel(ctx), created.ID, client.ContainerRemoveOptions{Force: true})
			return "", err
		}
	}
	return created.ID, nil
}

// copySecrets puts the password files into the container before it starts:
// they never appear in its environment or command line, and they work on a
// remote engine too. Mode 0444 lets the image's mysql user read them.
func (r *Runner) copySecrets(ctx context.Context, id string, files map[string][]byte) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	dirs := map[string]bool{}
	for n := range files {
		names = append(names, n)
		for d := path.Dir(n); d != "/" && d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	dirList := make([]string, 0, len(dirs))
	for d := range dirs {
		dirList = append(dirList, d)
	}
	sort.Strings(dirList)
	for _, d := range dirList {
		if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(d, "/") + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			return err
		}
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(n, "/"), Typeflag: tar.TypeReg, Mode: 0o444, Size: int64(len(files[n]))}); err != nil {
			return err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if _, err := r.API.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/", Content: &buf}); err != nil {
		return fmt.Errorf("copying the password files into the container: %w", err)
	}
	return nil
}

// initDir is where the MySQL images look for first-start scripts.
const initDir = "/docker-entrypoint-initdb.d"

// readCopies reads the files to copy into a container, keyed by their path
// in it (under dir when a target is relative or empty).
func readCopies(list []FileCopy, dir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, f := range list {
		b, err := os.ReadFile(f.Source)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f.Source, err)
		}
		t := f.Target
		if t == "" {
			t = filepath.Base(f.Source)
		}
		if !path.IsAbs(t) {
			t = path.Join(dir, t)
		}
		out[t] = b
	}
	return out, nil
}

// healthConfig is the engine's form of a stack health check.
func healthConfig(h *Healthcheck) *container.HealthConfig {
	if h == nil {
		return nil
	}
	return &container.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
}

func startError(name string, err error) error {
	msg := err.Error()
	if strings.Contains(msg, "port is already allocated") || strings.Contains(msg, "address already in use") {
		return fmt.Errorf("starting %s: a host port it publishes is already in use; choose another port (--port HOST:CONTAINER): %w", name, err)
	}
	return fmt.Errorf("starting %s: %w", name, err)
}

// describe reports one container of the stack.
func (r *Runner) describe(ctx context.Context, name string) (*Service, error) {
	c, err := r.API.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return nil, err
	}
	return r.service(&c.Container), nil
}

func (r *Runner) service(c *container.InspectResponse) *Service {
	host, _ := r.engineHost()
	svc := &Service{
		Stack:     c.Config.Labels[LabelStack],
		Service:   c.Config.Labels[LabelService],
		Container: strings.TrimPrefix(c.Name, "/"),
		Image:     c.Config.Labels[LabelImage],
	}
	if svc.Image == "" {
		svc.Image = c.Config.Image
	}
	if c.State != nil {
		svc.State = string(c.State.Status)
		if c.State.Health != nil && c.State.Running {
			svc.State += " (" + string(c.State.Health.Status) + ")"
		}
	}
	if len(svc.Image) > 19 && strings.HasPrefix(svc.Image, "sha256:") {
		svc.Image = svc.Image[7:19]
	}
	var ports []string
	if c.NetworkSettings != nil {
		for p, bs := range c.NetworkSettings.Ports {
			if svc.Internal == "" {
				svc.Internal = fmt.Sprintf("%s:%d", svc.Container, p.Num())
			}
			for _, b := range bs {
				addr := host
				if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
					addr = b.HostIP.String()
				}
				ports = append(ports, net.JoinHostPort(addr, b.HostPort))
			}
		}
	}
	sort.Strings(ports)
	// Published host ports are unique per host IP; keep one per port.
	seen := map[string]bool{}
	for _, p := range ports {
		_, port, _ := net.SplitHostPort(p)
		if !seen[port] {
			seen[port] = true
			svc.Published = append(svc.Published, p)
		}
	}
	if svc.Service == ServiceApp && len(svc.Published) > 0 {
		svc.URL = "http://" + svc.Published[0]
	}
	return svc
}

func (r *Runner) waitMySQL(ctx context.Context, s *Stack, svc *Service, password string) error {
	w, err := r.watch(ctx, s.MySQLContainer())
	if err != nil {
		return err
	}
	// The published port shows once the container runs; a container that
	// already stopped has none.
	for i := 0; len(svc.Published) == 0; i++ {
		if _, err := w.check(ctx); err != nil {
			return err
		}
		if i == 50 {
			return fmt.Errorf("MySQL container %s publishes no port on the engine host; last lines of its log:\n%s", s.MySQLContainer(), r.logTail(ctx, s.MySQLContainer(), 20))
		}
		time.Sleep(100 * time.Millisecond)
		d, err := r.describe(ctx, s.MySQLContainer())
		if err != nil {
			return err
		}
		svc.Published = d.Published
	}
	db, err := openMySQL(s, svc.Published[0], password)
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(r.timeout())
	bo := newBackoff()
	var last error
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var one int
		last = db.QueryRowContext(qctx, "SELECT 1").Scan(&one)
		cancel()
		if last == nil {
			return nil
		}
		if _, err := w.check(ctx); err != nil {
			return err
		}
		if permanentMySQLError(last) {
			return fmt.Errorf("MySQL refuses %s on database %s: %v; waiting does not help: the data volume %s was initialised with "+
				"another password or database (MySQL creates them only on an empty volume): use the password file it was created with, "+
				"another --volume, or remove the data (docker k8sprep down --volumes --name %s)",
				s.MySQL.User, s.MySQL.Database, last, s.MySQL.Volume, s.Name)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("MySQL did not accept queries as %s within %s (last error: %v); last lines of its log:\n%s",
				s.MySQL.User, r.timeout(), last, r.logTail(ctx, s.MySQLContainer(), 20))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(bo.next()):
		}
	}
}

// backoff spaces the probes of the readiness loops: 100 ms, doubling, at
// most 250 ms apart (a ready service is seen within a quarter of a second,
// and a slow one is probed 4 times a second, not dozens).
type backoff struct{ d, max time.Duration }

func newBackoff() *backoff { return &backoff{d: 100 * time.Millisecond, max: 250 * time.Millisecond} }

func (b *backoff) next() time.Duration {
	d := b.d
	b.d = min(2*b.d, b.max)
	return d
}

// stable is how long the app must run without a restart to be ready: 3 s
// (Runner.Stable) when nothing but its state says it runs, 1 s once it
// answered its health path or passed its health check (a crash loop exits
// before it serves).
func (r *Runner) stable(answered bool) time.Duration {
	d := r.Stable
	if d <= 0 {
		d = 3 * time.Second
	}
	if answered {
		d = min(d, time.Second)
	}
	return d
}

// appURL is the app's first published port on the engine host. It is known
// from the stack: a restarting container publishes nothing, so it cannot be
// read from the container.
func (r *Runner) appURL(s *Stack) string {
	if len(s.App.Ports) == 0 {
		return ""
	}
	host, _ := r.engineHost()
	return "http://" + net.JoinHostPort(host, strconv.Itoa(s.App.Ports[0].Host))
}

// waitApp waits until the app container runs, has not restarted, has been
// up for the stable window and, when it publishes a port, answers its health
// path below 400. A container that exits or restarts meanwhile fails at once
// with its log tail.
func (r *Runner) waitApp(ctx context.Context, s *Stack, svc *Service) error {
	name := s.AppContainer()
	w, err := r.watch(ctx, name)
	if err != nil {
		return err
	}
	base := r.appURL(s)
	u := ""
	if base != "" {
		svc.URL = base
		if s.App.Healthcheck == nil { // the health check replaces the HTTP probe
			u = base + s.App.HealthPath
		}
	}
	hc := &http.Client{Timeout: 3 * time.Second}
	deadline := time.Now().Add(r.timeout())
	last := "not probed yet"
	healthy := u == ""
	bo := newBackoff()
	for {
		st, err := w.check(ctx)
		if err != nil {
			return err
		}
		if s.App.Healthcheck != nil {
			switch st.health {
			case "healthy":
			case "unhealthy":
				return fmt.Errorf("the app's health check %q reports unhealthy (last output: %s); last lines of its log:\n%s",
					strings.Join(s.App.Healthcheck.Test, " "), st.healthLog, r.logTail(ctx, name, 20))
			default:
				last = "health " + st.health
				if time.Now().After(deadline) {
					return fmt.Errorf("the app's health check did not pass within %s (%s, last output: %s); last lines of its log:\n%s",
						r.timeout(), last, st.healthLog, r.logTail(ctx, name, 20))
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(bo.next()):
				}
				continue
			}
		}
		if !healthy {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			resp, err := hc.Do(req)
			if err == nil {
				io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
				resp.Body.Close()
				if resp.StatusCode < 400 {
					healthy = true
				}
				last = resp.Status
			} else {
				last = err.Error()
			}
		}
		if healthy {
			// Running, answering, and up long enough not to be a crash loop
			// between two restarts: check the state once more after the wait.
			if up, want := time.Since(st.startedAt), r.stable(u != "" || s.App.Healthcheck != nil); up < want {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(want - up):
				}
				continue
			}
			if _, err := w.check(ctx); err != nil {
				return err
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the app did not answer %s within %s (last: %s); last lines of its log:\n%s", u, r.timeout(), last, r.logTail(ctx, name, 20))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(bo.next()):
		}
	}
}

// watcher follows one container and fails when it stops or restarts after
// the watch began.
type watcher struct {
	r        *Runner
	name     string
	restarts int
}

type runState struct {
	startedAt time.Time
	health    string // the engine's health status, "" without a health check
	healthLog string // the last health check's output
}

// watch starts following a container; one that is already crash-looping
// (restarting now) fails at once.
func (r *Runner) watch(ctx context.Context, name string) (*watcher, error) {
	w := &watcher{r: r, name: name}
	c, err := r.API.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return nil, err
	}
	w.restarts = c.Container.RestartCount
	if st := c.Container.State; st != nil && st.Restarting {
		w.restarts = -1 // fail on the first check
	}
	return w, nil
}

func (w *watcher) check(ctx context.Context) (runState, error) {
	c, err := w.r.API.ContainerInspect(ctx, w.name, client.ContainerInspectOptions{})
	if err != nil {
		return runState{}, err
	}
	st := c.Container.State
	if st == nil || st.Status == container.StateCreated {
		return runState{startedAt: time.Now()}, nil
	}
	// The restart policy brings a crashed container back: a restart since
	// the watch began means it crashed while we waited.
	if st.Restarting || c.Container.RestartCount != w.restarts {
		// A container the policy started again reports exit code 0 while it
		// runs: the code is the last exit's only while it is down.
		code := ""
		if !st.Running {
			code = fmt.Sprintf("exit code %d, ", st.ExitCode)
		}
		return runState{}, fmt.Errorf("container %s keeps exiting (%srestarted %d times); last lines of its log:\n%s",
			w.name, code, c.Container.RestartCount, w.r.logTail(ctx, w.name, 20))
	}
	if !st.Running {
		return runState{}, fmt.Errorf("container %s stopped (exit code %d); last lines of its log:\n%s", w.name, st.ExitCode, w.r.logTail(ctx, w.name, 20))
	}
	started, err := time.Parse(time.RFC3339Nano, st.StartedAt)
	if err != nil {
		started = time.Now()
	}
	rs := runState{startedAt: started}
	if h := st.Health; h != nil {
		rs.health = string(h.Status)
		if n := len(h.Log); n > 0 {
			rs.healthLog = strings.TrimSpace(h.Log[n-1].Output)
		}
	}
	return rs, nil
}

func (r *Runner) logTail(ctx context.Context, name string, n int) string {
	rc, err := r.API.ContainerLogs(context.WithoutCancel(ctx), name, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n)})
	if err != nil {
		return "  (no log: " + err.Error() + ")"
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, rc); err != nil {
		return "  (log unreadable: " + err.Error() + ")"
	}
	if strings.TrimSpace(buf.String()) == "" {
		return "  (the log is empty)"
	}
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n")
}

// List returns the containers of one stack (name != "") or of all stacks.
func (r *Runner) List(ctx context.Context, name string) ([]Service, error) {
	f := client.Filters{}
	if name != "" {
		f.Add("label", LabelStack+"="+name)
	} else {
		f.Add("label", LabelStack)
	}
	l, err := r.API.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, err
	}
	out := []Service{}
	for _, c := range l.Items {
		insp, err := r.API.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if cerrdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *r.service(&insp.Container))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Stack != out[j].Stack {
			return out[i].Stack < out[j].Stack
		}
		return out[i].Service > out[j].Service // mysql before app
	})
	return out, nil
}

// Logs writes the logs of one service (or both, prefixed) of a stack.
func (r *Runner) Logs(ctx context.Context, name, service string, follow bool, tail string, stdout, stderr io.Writer) error {
	svcs, err := r.List(ctx, name)
	if err != nil {
		return err
	}
	var picked []Service
	for _, s := range svcs {
		if service == "" || s.Service == service {
			picked = append(picked, s)
		}
	}
	if len(picked) == 0 {
		if service != "" {
			return fmt.Errorf("stack %q has no %s container (services: app, mysql)", name, service)
		}
		return fmt.Errorf("stack %q has no containers", name)
	}
	if tail == "" {
		tail = "all"
	}
	errc := make(chan error, len(picked))
	for _, s := range picked {
		go func(s Service) {
			rc, err := r.API.ContainerLogs(ctx, s.Container, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: follow, Tail: tail})
			if err != nil {
				errc <- err
				return
			}
			defer rc.Close()
			o, e := stdout, stderr
			if len(picked) > 1 {
				o = &output.PrefixWriter{W: stdout, Prefix: s.Service + " | "}
				e = &output.PrefixWriter{W: stderr, Prefix: s.Service + " | "}
			}
			_, err = stdcopy.StdCopy(o, e, rc)
			if errors.Is(err, context.Canceled) {
				err = nil
			}
			errc <- err
		}(s)
	}
	var first error
	for range picked {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// DownResult is what Down removed.
type DownResult struct {
	Stack      string   `json:"stack"`
	Containers []string `json:"removedContainers"`
	Networks   []string `json:"removedNetworks"`
	Volumes    []string `json:"removedVolumes"`
	KeptVolume []string `json:"keptVolumes,omitempty"`
}

// Down removes the stack's containers and network, and its volumes only
// when volumes is true. Only objects labelled with the stack are touched.
func (r *Runner) Down(ctx context.Context, name string, volumes bool) (*DownResult, error) {
	res := &DownResult{Stack: name, Containers: []string{}, Networks: []string{}, Volumes: []string{}}
	f := client.Filters{}
	f.Add("label", LabelStack+"="+name)
	cl, err := r.API.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, err
	}
	// The app first, then MySQL, so that the app never sees a vanished database.
	sort.Slice(cl.Items, func(i, j int) bool {
		return cl.Items[i].Labels[LabelService] < cl.Items[j].Labels[LabelService]
	})
	for _, c := range cl.Items {
		if _, err := r.API.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return res, fmt.Errorf("removing container %s: %w", strings.TrimPrefix(strings.Join(c.Names, ","), "/"), err)
		}
		res.Containers = append(res.Containers, strings.TrimPrefix(strings.Join(c.Names, ","), "/"))
	}
	nl, err := r.API.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return res, err
	}
	for _, n := range nl.Items {
		if _, err := r.API.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			return res, fmt.Errorf("removing network %s: %w", n.Name, err)
		}
		res.Networks = append(res.Networks, n.Name)
	}
	vl, err := r.API.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return res, err
	}
	for _, v := range vl.Items {
		if !volumes {
			res.KeptVolume = append(res.KeptVolume, v.Name)
			continue
		}
		if _, err := r.API.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			return res, fmt.Errorf("removing volume %s: %w", v.Name, err)
		}
		res.Volumes = append(res.Volumes, v.Name)
	}
	return res, nil
}
