// Package remote runs commands and writes files on hosts over SSH
// (golang.org/x/crypto/ssh), the way bootstrap, join and drill reach servers:
//
//   - Host keys are checked against known_hosts files. An unknown key is
//     refused unless the caller accepts new keys (then it is added to the
//     first known_hosts file, like OpenSSH's StrictHostKeyChecking=accept-new);
//     a changed key is always refused, with the fix in the message.
//   - Login by private key file or the SSH agent; optionally through a bastion.
//   - Privileged commands go through sudo for non-root users: `sudo -n` when
//     sudo needs no password (asked once per connection), else `sudo -k -S`
//     with the password written to stdin from a file (-k: sudo always reads
//     it, so it can never reach the command instead). Secrets never appear on a command line
//     (another user's `ps` shows it), in an error or in a log.
//   - Files are written atomically (a temporary file in the same folder,
//     then rename), with their mode set before any byte is written.
package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/hacluster/hacluster/pkg/fileutil"
)

// Target is how to reach one host.
type Target struct {
	// Name is used in messages (the inventory's host name).
	Name    string
	Address string
	Port    int
	User    string
	// KeyFile is a private key file; UseAgent uses $SSH_AUTH_SOCK. Both may
	// be set (the key is tried first).
	KeyFile  string
	UseAgent bool
	// KnownHostsFiles are checked in order; new keys go to the first one.
	KnownHostsFiles []string
	// AcceptNewHostKeys trusts (and records) a key for a host that has none
	// in known_hosts. A changed key is refused whatever this says.
	AcceptNewHostKeys bool
	// Sudo runs Run(..., Sudo: true) commands through sudo; SudoPassword is
	// sudo's password when it asks for one (read from the inventory's file).
	Sudo         bool
	SudoPassword []byte
	// Bastion, when set, is the jump host (its own Bastion is ignored).
	Bastion *Target
	// Timeout of the TCP connection and the handshake (default 10 s).
	Timeout time.Duration
}

func (t Target) addr() string {
	port := t.Port
	if port == 0 {
		port = 22
	}
	return net.JoinHostPort(t.Address, strconv.Itoa(port))
}

func (t Target) name() string {
	if t.Name != "" {
		return t.Name
	}
	return t.Address
}

// Conn is an open SSH connection to a host.
type Conn struct {
	Target Target
	client *ssh.Client
	jump   *ssh.Client

	sudoOnce     sync.Once
	sudoPassword bool // sudo asks this user for a password
}

// HostKeyError is a refused host key.
type HostKeyError struct {
	Host        string
	Addr        string
	Fingerprint string
	// Changed: known_hosts has another key for this host (possible
	// man-in-the-middle, or a reinstalled host). Otherwise it has none.
	Changed bool
	File    string
}

func (e *HostKeyError) Error() string {
	if e.Changed {
		return fmt.Sprintf("%s (%s): the host key changed (now %s); if the host was reinstalled, remove its old key with `ssh-keygen -R %s -f %s` and connect again; otherwise someone may be intercepting the connection",
			e.Host, e.Addr, e.Fingerprint, knownhosts.Normalize(e.Addr), e.File)
	}
	return fmt.Sprintf("%s (%s): unknown host key %s (not in %s): check it on the host (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`), then add it to known_hosts or pass --accept-new-host-keys",
		e.Host, e.Addr, e.Fingerprint, e.File)
}

// knownHostsMu serialises additions to known_hosts files in this process.
var knownHostsMu sync.Mutex

func hostKeyCallback(t Target) (ssh.HostKeyCallback, error) {
	files := t.KnownHostsFiles
	if len(files) == 0 {
		return nil, errors.New("no known_hosts file: host keys cannot be checked")
	}
	var existing []string
	for _, f := range files {
		if _, err := os.Stat(f); err == nil {
			existing = append(existing, f)
		} else if !os.IsNotExist(err) {
			return nil, err
		}
	}
	check := func(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} }
	if len(existing) > 0 {
		var err error
		if check, err = knownhosts.New(existing...); err != nil {
			return nil, fmt.Errorf("known_hosts: %w", err)
		}
	}
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := check(hostname, remote, key)
		var ke *knownhosts.KeyError
		if err == nil || !errors.As(err, &ke) {
			return err
		}
		he := &HostKeyError{Host: t.name(), Addr: hostname, Fingerprint: key.Type() + " " + ssh.FingerprintSHA256(key), File: files[0], Changed: len(ke.Want) > 0}
		if he.Changed || !t.AcceptNewHostKeys {
			return he
		}
		return addKnownHost(files[0], hostname, key)
	}, nil
}

// addKnownHost appends a line for key to file (created 0600 with its folder).
func addKnownHost(file, hostname string, key ssh.PublicKey) error {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	old, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key) + "\n"
	if len(old) > 0 && !bytes.HasSuffix(old, []byte("\n")) {
		old = append(old, '\n')
	}
	mode := os.FileMode(0o600)
	if fi, err := os.Stat(file); err == nil {
		mode = fi.Mode().Perm()
	}
	return fileutil.WriteAtomic(file, append(old, line...), mode)
}

func authMethods(t Target) ([]ssh.AuthMethod, func(), error) {
	var methods []ssh.AuthMethod
	cleanup := func() {}
	if t.KeyFile != "" {
		pem, err := os.ReadFile(t.KeyFile)
		if err != nil {
			return nil, cleanup, fmt.Errorf("ssh key: %w", err)
		}
		signer, err := ssh.ParsePrivateKey(pem)
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, cleanup, fmt.Errorf("ssh key %s is encrypted: load it into ssh-agent and set agent: true", t.KeyFile)
		}
		if err != nil {
			return nil, cleanup, fmt.Errorf("ssh key %s: %w", t.KeyFile, err)
		}
		methods = append(methods, ssh.PublicKeys(signer))
	}
	if t.UseAgent {
		sock := os.Getenv("SSH_AUTH_SOCK")
		if sock == "" {
			return nil, cleanup, errors.New("agent: true, but SSH_AUTH_SOCK is not set")
		}
		c, err := net.Dial("unix", sock)
		if err != nil {
			return nil, cleanup, fmt.Errorf("ssh agent at %s: %w", sock, err)
		}
		cleanup = func() { c.Close() }
		methods = append(methods, ssh.PublicKeysCallback(agent.NewClient(c).Signers))
	}
	if len(methods) == 0 {
		return nil, cleanup, errors.New("no SSH key: set keyFile or agent: true")
	}
	return methods, cleanup, nil
}

func clientConfig(t Target) (*ssh.ClientConfig, func(), error) {
	cb, err := hostKeyCallback(t)
	if err != nil {
		return nil, func() {}, err
	}
	auth, cleanup, err := authMethods(t)
	if err != nil {
		return nil, cleanup, err
	}
	timeout := t.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	return &ssh.ClientConfig{User: t.User, Auth: auth, HostKeyCallback: cb, Timeout: timeout}, cleanup, nil
}

// Dial connects to the target (through its bastion, if any) and
// authenticates. The error names the host and says what to do.
func Dial(ctx context.Context, t Target) (*Conn, error) {
	if t.User == "" {
		t.User = "root"
	}
	c := &Conn{Target: t}
	dial := func(network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: 10 * time.Second}
		return d.DialContext(ctx, network, addr)
	}
	if t.Bastion != nil {
		b := *t.Bastion
		b.Bastion = nil
		if b.User == "" {
			b.User = t.User
		}
		if len(b.KnownHostsFiles) == 0 {
			b.KnownHostsFiles, b.AcceptNewHostKeys = t.KnownHostsFiles, t.AcceptNewHostKeys
		}
		if b.KeyFile == "" && !b.UseAgent {
			b.KeyFile, b.UseAgent = t.KeyFile, t.UseAgent
		}
		jc, err := Dial(ctx, b)
		if err != nil {
			return nil, fmt.Errorf("bastion of %s: %w", t.name(), err)
		}
		c.jump = jc.client
		dial = func(network, addr string) (net.Conn, error) { return jc.client.DialContext(ctx, network, addr) }
	}
	cfg, cleanup, err := clientConfig(t)
	defer cleanup()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", t.name(), err)
	}
	conn, err := dial("tcp", t.addr())
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: cannot reach %s: %w", t.name(), t.addr(), err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(cfg.Timeout))
	}
	sc, chans, reqs, err := ssh.NewClientConn(conn, t.addr(), cfg)
	if err != nil {
		conn.Close()
		c.Close()
		var he *HostKeyError
		if errors.As(err, &he) {
			return nil, he
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, fmt.Errorf("%s: %s@%s refused the key (is it in ~%s/.ssh/authorized_keys?)", t.name(), t.User, t.addr(), t.User)
		}
		return nil, fmt.Errorf("%s: ssh %s@%s: %w", t.name(), t.User, t.addr(), err)
	}
	_ = conn.SetDeadline(time.Time{})
	c.client = ssh.NewClient(sc, chans, reqs)
	return c, nil
}

// Close closes the connection (and the bastion's).
func (c *Conn) Close() error {
	var err error
	if c.client != nil {
		err = c.client.Close()
	}
	if c.jump != nil {
		c.jump.Close()
	}
	return err
}

// Cmd is one command for Run.
type Cmd struct {
	// Script is a POSIX shell script, run by sh -c on the host.
	Script string
	// Sudo runs it as root (through sudo when the target's user is not root).
	Sudo bool
	// Stdin is given to the script (after sudo's password, when sudo needs one).
	Stdin io.Reader
	// Stdout and Stderr, when set, receive the output as it comes; Result
	// holds it otherwise.
	Stdout, Stderr io.Writer
}

// Result is what a command did.
type Result struct {
	Stdout   string
	Stderr   string
	ExitCode int
}

// ExitError is a command that ran and exited non-zero.
type ExitError struct {
	Host     string
	Command  string
	ExitCode int
	Stderr   string
}

func (e *ExitError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
		msg = msg[i+1:]
	}
	return fmt.Sprintf("%s: %s: exit %d: %s", e.Host, e.Command, e.ExitCode, msg)
}

// Quote quotes s as one POSIX shell word: in single quotes, which keep every
// byte as it is (newlines too), each single quote in s becoming quote,
// backslash, quote, quote:
//
//	it's  ->  'it'\''s'
//
// (mvdan.cc/sh's syntax.Quote refuses control characters for POSIX shells,
// and scripts have newlines.)
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Run runs the command and waits for it. A non-zero exit is an *ExitError.
func (c *Conn) Run(ctx context.Context, cmd Cmd) (Result, error) {
	s, err := c.client.NewSession()
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", c.Target.name(), err)
	}
	defer s.Close()
	line := "sh -c " + Quote(cmd.Script)
	stdin := cmd.Stdin
	if cmd.Sudo && c.Target.User != "root" && c.Target.Sudo {
		if len(c.Target.SudoPassword) > 0 && c.sudoNeedsPassword(ctx) {
			// -S reads the password from stdin (first line), -p '' prints no
			// prompt, -k ignores cached credentials so that sudo reads it
			// every time; the rest of stdin goes to the command.
			line = "sudo -k -S -p '' -- " + line
			pw := append(bytes.TrimRight(append([]byte(nil), c.Target.SudoPassword...), "\r\n"), '\n')
			if stdin == nil {
				stdin = bytes.NewReader(pw)
			} else {
				stdin = io.MultiReader(bytes.NewReader(pw), stdin)
			}
		} else {
			line = "sudo -n -- " + line
		}
	}
	var stdout, stderr bytes.Buffer
	s.Stdout, s.Stderr = &stdout, &stderr
	if cmd.Stdout != nil {
		s.Stdout = io.MultiWriter(&stdout, cmd.Stdout)
	}
	if cmd.Stderr != nil {
		s.Stderr = io.MultiWriter(&stderr, cmd.Stderr)
	}
	if stdin != nil {
		s.Stdin = stdin
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(line) }()
	select {
	case <-ctx.Done():
		_ = s.Signal(ssh.SIGKILL)
		s.Close()
		return Result{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: -1}, fmt.Errorf("%s: %s: %w", c.Target.name(), firstLine(cmd.Script), ctx.Err())
	case err = <-done:
	}
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return res, nil
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitStatus()
		e := &ExitError{Host: c.Target.name(), Command: firstLine(cmd.Script), ExitCode: res.ExitCode, Stderr: res.Stderr}
		if cmd.Sudo && res.ExitCode == 1 && strings.Contains(res.Stderr, "a password is required") {
			e.Stderr = "sudo asks for a password: set sudoPasswordFile in the inventory, or allow the user sudo without one"
		}
		return res, e
	default:
		return res, fmt.Errorf("%s: %s: %w", c.Target.name(), firstLine(cmd.Script), err)
	}
}

// sudoNeedsPassword asks sudo once whether this user's `sh -c` needs a
// password. A password sent to a sudo that does not ask for one would be read
// by the command instead.
func (c *Conn) sudoNeedsPassword(ctx context.Context) bool {
	c.sudoOnce.Do(func() {
		_, err := c.Run(ctx, Cmd{Script: "sudo -n -- sh -c true 2>/dev/null"})
		c.sudoPassword = err != nil
	})
	return c.sudoPassword
}

// Output runs a script and returns its stdout.
func (c *Conn) Output(ctx context.Context, script string, sudo bool) (string, error) {
	res, err := c.Run(ctx, Cmd{Script: script, Sudo: sudo})
	return res.Stdout, err
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " ..."
	}
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// WriteFile writes data to path on the host atomically: a temporary file in
// the same folder, created with mode (umask 077 first), then renamed over
// path. With sudo it runs as root. The content travels on stdin, never in
// the command line.
func (c *Conn) WriteFile(ctx context.Context, p string, data io.Reader, mode os.FileMode, sudo bool) error {
	dir := path.Dir(p)
	script := fmt.Sprintf(`set -e
umask 077
mkdir -p %[1]s
tmp=$(mktemp %[2]s)
trap 'rm -f "$tmp"' EXIT
cat >"$tmp"
chmod %[3]o "$tmp"
mv -f "$tmp" %[4]s
trap - EXIT`, Quote(dir), Quote(path.Join(dir, "."+path.Base(p)+".tmp-XXXXXX")), mode.Perm(), Quote(p))
	_, err := c.Run(ctx, Cmd{Script: script, Sudo: sudo, Stdin: data})
	return err
}

// ReadFile returns the content of path on the host; a missing file is an
// error for which os.IsNotExist is true.
func (c *Conn) ReadFile(ctx context.Context, p string, sudo bool) ([]byte, error) {
	res, err := c.Run(ctx, Cmd{Script: "if [ -e " + Quote(p) + " ]; then cat " + Quote(p) + "; else exit 66; fi", Sudo: sudo})
	var ee *ExitError
	if errors.As(err, &ee) && ee.ExitCode == 66 {
		return nil, &os.PathError{Op: "read", Path: c.Target.name() + ":" + p, Err: os.ErrNotExist}
	}
	return []byte(res.Stdout), err
}
