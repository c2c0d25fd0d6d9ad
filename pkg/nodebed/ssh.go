package nodebed

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/hacluster/hacluster/pkg/fileutil"
)

// makeKey writes a new ed25519 client key pair: KeyFile (0600) and KeyFile.pub.
func (b *Bed) makeKey() error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(priv, "nodebed")
	if err != nil {
		return err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return err
	}
	if b.Signer, err = ssh.NewSignerFromKey(priv); err != nil {
		return err
	}
	b.KeyFile = b.path("id_ed25519")
	if err := fileutil.WriteAtomic(b.KeyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	return fileutil.WriteAtomic(b.KeyFile+".pub", ssh.MarshalAuthorizedKey(sshPub), 0o644)
}

// KnownHosts returns the known_hosts lines for every host's keys.
func (b *Bed) KnownHosts() string {
	var sb strings.Builder
	for _, h := range b.Hosts {
		for _, k := range h.HostKeys {
			sb.WriteString(knownhosts.Line([]string{knownhosts.Normalize(h.SSHAddr())}, k))
			sb.WriteByte('\n')
		}
	}
	return sb.String()
}

func (b *Bed) writeKnownHosts() error {
	b.knownHosts.Lock()
	defer b.knownHosts.Unlock()
	b.KnownHostsFile = b.path("known_hosts")
	return fileutil.WriteAtomic(b.KnownHostsFile, []byte(b.KnownHosts()), 0o644)
}

// ClientConfig is an SSH client configuration for user with the bed's key
// that verifies host keys against knownHostsFile (default KnownHostsFile).
func (b *Bed) ClientConfig(user, knownHostsFile string) (*ssh.ClientConfig, error) {
	if knownHostsFile == "" {
		knownHostsFile = b.KnownHostsFile
	}
	cb, err := knownhosts.New(knownHostsFile)
	if err != nil {
		return nil, err
	}
	return &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(b.Signer)},
		HostKeyCallback: cb,
		Timeout:         5 * time.Second,
	}, nil
}

// Dial opens an SSH connection to the host as user, checking its host key
// against KnownHostsFile.
func (b *Bed) Dial(ctx context.Context, h *Host, user string) (*ssh.Client, error) {
	cfg, err := b.ClientConfig(user, "")
	if err != nil {
		return nil, err
	}
	return DialConfig(ctx, h.SSHAddr(), cfg)
}

// DialConfig is ssh.Dial that honours ctx.
func DialConfig(ctx context.Context, addr string, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	d := net.Dialer{Timeout: cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// Run runs cmd in an SSH session and returns its combined output.
func Run(c *ssh.Client, cmd string) (string, error) {
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	out, err := s.CombinedOutput(cmd)
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", cmd, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// ChangeHostKey gives the host new SSH host keys (as a reinstalled server
// would have) and restarts sshd. KnownHostsFile is not updated: a client that
// trusted the old keys must refuse the new ones. Host.HostKeys holds the new
// keys afterwards; RefreshKnownHosts writes them.
func (h *Host) ChangeHostKey(ctx context.Context) error {
	if _, err := h.Exec(ctx, "sh", "-c", "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh"); err != nil {
		return err
	}
	return h.readIdentity(ctx)
}

// RefreshKnownHosts rewrites KnownHostsFile from every host's current keys.
func (b *Bed) RefreshKnownHosts() error { return b.writeKnownHosts() }

// IsKnownHostsMismatch reports whether err is a host key that differs from
// the one known_hosts holds for that host.
func IsKnownHostsMismatch(err error) bool {
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) {
		return len(ke.Want) > 0
	}
	return false
}
