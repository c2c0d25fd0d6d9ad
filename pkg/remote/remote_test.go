package remote_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hacluster/hacluster/pkg/nodebed"
	"github.com/hacluster/hacluster/pkg/remote"
)

// Real sshd on the node bed's hosts: root, a password-less sudo user and a
// sudo user with a password.
var bed *nodebed.Bed

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	return nodebed.Main(m, nodebed.Options{Prefix: "rmt", Count: 3}, func(b *nodebed.Bed) { bed = b })
}

func need(t *testing.T) *nodebed.Bed {
	t.Helper()
	if bed == nil {
		t.Skip("no node bed")
	}
	return bed
}

func target(h *nodebed.Host, user string) remote.Target {
	return remote.Target{Name: h.Name, Address: h.Address.String(), User: user, KeyFile: bed.KeyFile,
		KnownHostsFiles: []string{bed.KnownHostsFile}, Sudo: user != "root"}
}

func dial(t *testing.T, tg remote.Target) *remote.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := remote.Dial(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func out(t *testing.T, c *remote.Conn, script string, sudo bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := c.Output(ctx, script, sudo)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(s)
}

func TestRootAndSudoUsers(t *testing.T) {
	b := need(t)
	h := b.Hosts[0]
	root := dial(t, target(h, nodebed.RootUser))
	if got := out(t, root, "id -u", true); got != "0" {
		t.Errorf("root: %q", got)
	}
	admin := dial(t, target(h, nodebed.SudoUser))
	if got := out(t, admin, "id -un", false); got != "admin" {
		t.Errorf("admin without sudo: %q", got)
	}
	if got := out(t, admin, "id -u", true); got != "0" {
		t.Errorf("admin with sudo: %q", got)
	}
	// ops: sudo asks for a password. Without one configured: a clear error.
	ops := dial(t, target(h, nodebed.PasswordSudoUser))
	_, err := ops.Output(context.Background(), "id -u", true)
	var ee *remote.ExitError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), "sudoPasswordFile") {
		t.Errorf("ops without a password: %v", err)
	}
	tg := target(h, nodebed.PasswordSudoUser)
	tg.SudoPassword = []byte(h.SudoPassword + "\n")
	ops = dial(t, tg)
	if got := out(t, ops, "id -u", true); got != "0" {
		t.Errorf("ops with its password: %q", got)
	}
	// With a password, stdin still reaches the command after it.
	ctx := context.Background()
	data := "line 1\nsecret: not really\n"
	if err := ops.WriteFile(ctx, "/etc/hacluster-test/conf", strings.NewReader(data), 0o600, true); err != nil {
		t.Fatal(err)
	}
	got, err := ops.ReadFile(ctx, "/etc/hacluster-test/conf", true)
	if err != nil || string(got) != data {
		t.Errorf("read back %q, %v", got, err)
	}
	if st := out(t, root, "stat -c '%a %U' /etc/hacluster-test/conf; ls -a /etc/hacluster-test | grep -c tmp || true", false); st != "600 root\n0" {
		t.Errorf("mode/owner/temporary files: %q", st)
	}
	if _, err := root.ReadFile(ctx, "/etc/hacluster-test/missing", false); !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
}

// A password configured for a user whose sudo needs none never reaches the
// command's stdin (it would end up in the file written).
func TestUnneededSudoPasswordIsNotSent(t *testing.T) {
	b := need(t)
	h := b.Hosts[0]
	tg := target(h, nodebed.SudoUser)
	tg.SudoPassword = []byte("not-a-real-password\n")
	admin := dial(t, tg)
	ctx := context.Background()
	if err := admin.WriteFile(ctx, "/etc/hacluster-test/nopw", strings.NewReader("content\n"), 0o600, true); err != nil {
		t.Fatal(err)
	}
	got, err := admin.ReadFile(ctx, "/etc/hacluster-test/nopw", true)
	if err != nil || string(got) != "content\n" {
		t.Errorf("file holds %q (%v): the password went to the command", got, err)
	}
}

func TestSudoPasswordNeverOnACommandLineOrInTheJournal(t *testing.T) {
	b := need(t)
	h := b.Hosts[1]
	tg := target(h, nodebed.PasswordSudoUser)
	tg.SudoPassword = []byte(h.SudoPassword)
	ops := dial(t, tg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := ops.Output(ctx, "sleep 3", true)
		done <- err
	}()
	time.Sleep(1500 * time.Millisecond)
	// Every process's argv and environment on the host, while sudo runs.
	procs, err := h.Exec(ctx, "sh", "-c", "for p in /proc/[0-9]*; do tr '\\0' ' ' <$p/cmdline; echo; tr '\\0' ' ' <$p/environ 2>/dev/null; echo; done")
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(procs, "sleep 3") {
		t.Fatalf("the command was not seen running:\n%s", procs)
	}
	if strings.Contains(procs, h.SudoPassword) {
		t.Error("the sudo password is in a process's argv or environment")
	}
	journal, err := h.Exec(ctx, "journalctl", "--no-pager", "-o", "cat")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(journal, h.SudoPassword) {
		t.Error("the sudo password is in the journal")
	}
	if !strings.Contains(journal, "COMMAND=/bin/sh -c sleep 3") && !strings.Contains(journal, "COMMAND=/usr/bin/sh -c sleep 3") {
		t.Logf("note: sudo's log line not found in the journal")
	}
}

func TestHostKeys(t *testing.T) {
	b := need(t)
	h := b.Hosts[2]
	ctx := context.Background()
	kh := filepath.Join(t.TempDir(), "ssh", "known_hosts")
	tg := target(h, nodebed.RootUser)
	tg.KnownHostsFiles = []string{kh}
	// Unknown: refused, and nothing is written.
	_, err := remote.Dial(ctx, tg)
	var he *remote.HostKeyError
	if !errors.As(err, &he) || he.Changed || !strings.Contains(err.Error(), "--accept-new-host-keys") {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := os.Stat(kh); !os.IsNotExist(err) {
		t.Errorf("known_hosts written on a refusal: %v", err)
	}
	// Accepted once, recorded (0600), then known without the flag.
	tg.AcceptNewHostKeys = true
	dial(t, tg).Close()
	fi, err := os.Stat(kh)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("known_hosts after accept-new: %v %v", fi, err)
	}
	tg.AcceptNewHostKeys = false
	dial(t, tg).Close()
	// Changed: refused even with accept-new.
	if err := h.ChangeHostKey(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.RefreshKnownHosts() })
	tg.AcceptNewHostKeys = true
	_, err = remote.Dial(ctx, tg)
	if !errors.As(err, &he) || !he.Changed || !strings.Contains(err.Error(), "ssh-keygen -R") {
		t.Fatalf("changed key: %v", err)
	}
}

func TestBastion(t *testing.T) {
	b := need(t)
	jump, h := b.Hosts[0], b.Hosts[1]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// This machine may not reach h's sshd any more; the bastion still does.
	rule := []string{"INPUT", "-s", b.Gateway.String(), "-p", "tcp", "--dport", "22", "-j", "DROP"}
	if _, err := h.Exec(ctx, append([]string{"iptables", "-w", "-I"}, rule...)...); err != nil {
		t.Fatal(err)
	}
	defer h.Exec(context.Background(), append([]string{"iptables", "-w", "-D"}, rule...)...)
	direct := target(h, nodebed.RootUser)
	direct.Timeout = 2 * time.Second
	if c, err := remote.Dial(ctx, direct); err == nil {
		c.Close()
		t.Fatal("direct connection worked although it is blocked")
	}
	tg := target(h, nodebed.SudoUser)
	bt := target(jump, nodebed.SudoUser)
	tg.Bastion = &bt
	c := dial(t, tg)
	if got := out(t, c, "hostname; sudo -n true && echo sudo-ok", false); got != h.Name+"\nsudo-ok" {
		t.Errorf("through the bastion: %q", got)
	}
}

func TestRunCancelAndQuoting(t *testing.T) {
	b := need(t)
	c := dial(t, target(b.Hosts[0], nodebed.RootUser))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	if _, err := c.Output(ctx, "sleep 30", false); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled command: %v", err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("cancel took %s", d)
	}
	for _, s := range []string{"plain", "it's", `"$HOME" $(id) ; rm -rf /nope`, "new\nline", "back\\slash", ""} {
		if got, err := c.Output(context.Background(), "printf '%s' "+remote.Quote(s), false); err != nil || got != s {
			t.Errorf("quote %q: got %q, %v", s, got, err)
		}
	}
	_, err := c.Output(context.Background(), "echo oops >&2; exit 3", false)
	var ee *remote.ExitError
	if !errors.As(err, &ee) || ee.ExitCode != 3 || !strings.Contains(err.Error(), "oops") {
		t.Errorf("exit error: %v", err)
	}
}

func TestDialErrors(t *testing.T) {
	b := need(t)
	h := b.Hosts[0]
	ctx := context.Background()
	tg := target(h, "nobody-here")
	if _, err := remote.Dial(ctx, tg); err == nil || !strings.Contains(err.Error(), "refused the key") {
		t.Errorf("wrong user: %v", err)
	}
	tg = target(h, nodebed.RootUser)
	tg.KeyFile = filepath.Join(t.TempDir(), "none")
	if _, err := remote.Dial(ctx, tg); err == nil || !strings.Contains(err.Error(), "ssh key") {
		t.Errorf("missing key: %v", err)
	}
	tg = target(h, nodebed.RootUser)
	tg.Port = 2222
	tg.Timeout = 2 * time.Second
	if _, err := remote.Dial(ctx, tg); err == nil || !strings.Contains(err.Error(), "cannot reach") {
		t.Errorf("closed port: %v", err)
	}
}
