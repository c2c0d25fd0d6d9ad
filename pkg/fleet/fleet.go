// Package fleet is the set of hosts of an inventory, reached over SSH: it
// turns each host's inventory entry into a remote.Target (keys, known_hosts,
// sudo and its password file, bastion), connects to all of them in parallel,
// and runs per-host work in parallel with progress. bootstrap, join and
// preflight act on hosts through it.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hacluster/hacluster/pkg/facts"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/remote"
)

// Options of Connect.
type Options struct {
	// AcceptNewHostKeys trusts and records keys of hosts known_hosts does not
	// list (a changed key is refused whatever this says).
	AcceptNewHostKeys bool
	// Logf reports progress per host ("connect", "facts"), to stderr.
	Logf func(format string, args ...any)
}

// Fleet is the connected hosts.
type Fleet struct {
	Cluster *inventory.Cluster
	// Conns by host name.
	Conns map[string]*remote.Conn
	logf  func(string, ...any)
}

// Target is the SSH target of host h.
func Target(c *inventory.Cluster, h inventory.Host, acceptNew bool) (remote.Target, error) {
	s := c.HostSSH(h)
	t := remote.Target{
		Name:              h.Name,
		Address:           h.Address,
		Port:              s.Port,
		User:              s.User,
		KeyFile:           inventory.ExpandHome(s.KeyFile),
		UseAgent:          s.Agent != nil && *s.Agent,
		AcceptNewHostKeys: acceptNew,
		Sudo:              s.UsesSudo(),
	}
	kh := s.KnownHostsFile
	if kh == "" {
		kh = "~/.ssh/known_hosts"
	}
	t.KnownHostsFiles = []string{inventory.ExpandHome(kh)}
	if t.KeyFile == "" && !t.UseAgent {
		// OpenSSH's default identities, in its order.
		for _, k := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			p := inventory.ExpandHome(filepath.Join("~/.ssh", k))
			if _, err := os.Stat(p); err == nil {
				t.KeyFile = p
				break
			}
		}
		if t.KeyFile == "" && os.Getenv("SSH_AUTH_SOCK") != "" {
			t.UseAgent = true
		}
	}
	if s.SudoPasswordFile != "" {
		pw, err := readSecret(inventory.ExpandHome(s.SudoPasswordFile))
		if err != nil {
			return t, fmt.Errorf("%s: sudoPasswordFile: %w", h.Name, err)
		}
		t.SudoPassword = pw
	}
	if b := s.Bastion; b != nil {
		bt := remote.Target{Name: h.Name + " bastion " + b.Address, Address: b.Address, Port: b.Port, User: b.User,
			KeyFile: inventory.ExpandHome(b.KeyFile), KnownHostsFiles: t.KnownHostsFiles, AcceptNewHostKeys: acceptNew}
		t.Bastion = &bt
	}
	return t, nil
}

// readSecret reads a password file, refusing one other users may read.
func readSecret(p string) ([]byte, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %o): chmod 600 %s", p, fi.Mode().Perm(), p)
	}
	return os.ReadFile(p)
}

// Connect opens a connection to every host, in parallel. On an error it
// closes what it opened and returns every host's error, joined.
func Connect(ctx context.Context, c *inventory.Cluster, o Options) (*Fleet, error) {
	f := &Fleet{Cluster: c, Conns: map[string]*remote.Conn{}, logf: o.Logf}
	if f.logf == nil {
		f.logf = func(string, ...any) {}
	}
	var mu sync.Mutex
	err := f.each(ctx, "connect", c.Spec.Hosts, func(ctx context.Context, h inventory.Host) error {
		t, err := Target(c, h, o.AcceptNewHostKeys)
		if err != nil {
			return err
		}
		conn, err := remote.Dial(ctx, t)
		if err != nil {
			return err
		}
		mu.Lock()
		f.Conns[h.Name] = conn
		mu.Unlock()
		return nil
	})
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// each runs fn for every host in parallel and logs each host's outcome.
func (f *Fleet) each(ctx context.Context, phase string, hosts []inventory.Host, fn func(context.Context, inventory.Host) error) error {
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() {
			t0 := time.Now()
			errs[i] = fn(ctx, h)
			d := time.Since(t0).Round(time.Millisecond)
			if errs[i] != nil {
				f.logf("%-8s %-12s failed after %s", phase, h.Name, d)
			} else {
				f.logf("%-8s %-12s ok (%s)", phase, h.Name, d)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Facts gathers every host's facts in parallel.
func (f *Fleet) Facts(ctx context.Context) (map[string]*facts.Facts, error) {
	out := map[string]*facts.Facts{}
	var mu sync.Mutex
	err := f.each(ctx, "facts", f.Cluster.Spec.Hosts, func(ctx context.Context, h inventory.Host) error {
		fa, err := facts.Gather(ctx, f.Conns[h.Name])
		if err != nil {
			return err
		}
		mu.Lock()
		out[h.Name] = fa
		mu.Unlock()
		return nil
	})
	return out, err
}

// Probe runs a read-only script on one host (not as root).
func (f *Fleet) Probe(ctx context.Context, host, script string) (string, error) {
	c, ok := f.Conns[host]
	if !ok {
		return "", fmt.Errorf("no connection to %s", host)
	}
	return c.Output(ctx, script, false)
}

// Close closes every connection.
func (f *Fleet) Close() {
	for _, c := range f.Conns {
		c.Close()
	}
}
