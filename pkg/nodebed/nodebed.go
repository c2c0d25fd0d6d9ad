// Package nodebed gives tests real Linux hosts to install Kubernetes on: Docker
// containers that boot systemd, run OpenSSH and look like freshly installed
// Debian servers, with nothing of Kubernetes on them. Each host has its own
// hostname, machine-id, MAC, product_uuid and SSH host keys, a fixed address
// on a private network, and login by key for root, a password-less sudo user
// and a sudo user with a password. A free address on that network is kept
// for a VIP.
//
//	bed := nodebed.Start(t, nodebed.Options{Count: 4})
//	h := bed.Hosts[0]
//	client, err := bed.Dial(ctx, h, nodebed.SudoUser) // host key checked against bed.KnownHostsFile
//	out, err := h.Exec(ctx, "cat", "/etc/machine-id")   // out of band, as root, through the engine
//	err = bed.BlockPort(ctx, bed.Hosts[1], h, 2379)     // iptables on h: nothing from Hosts[1] reaches :2379
//
// Knobs for failure tests: HostSpec duplicates another host's hostname,
// machine-id or product_uuid; Host.Stop, Kill, Pause, Unpause, Start and
// Restart (the disk and the identity survive); Host.ChangeHostKey.
//
// What the hosts share with this machine, and what the product must handle on
// them as it would on a real server:
//   - The kernel. Whatever a kubelet changes under /proc/sys outside its own
//     network namespace (kernel.panic, vm.overcommit_memory, ...) changes this
//     machine; the machine's own values are recorded once for all beds (when
//     none runs) and every Stop, and Remove, restores them (HostSysctls).
//   - No --privileged (CAP_SYS_RESOURCE is outside this machine's bounding
//     set): hosts run with every other capability, no seccomp or AppArmor
//     profile, all devices, a private cgroup namespace, and the entrypoint
//     (hack/images/node/nodebed-init) makes /sys and the cgroup hierarchies
//     writable. Processes cannot lower their oom_score_adj below 0, so
//     containerd needs restrict_oom_score_adj = true.
//   - cgroup v1: kubelet >= 1.35 needs failCgroupV1: false, and kubeadm's
//     SystemVerification preflight check fails.
//   - /etc/resolv.conf names Docker's embedded resolver 127.0.0.11, a
//     loopback address, which Pods must not inherit (CoreDNS would loop): the
//     kubelet needs a resolvConf with a real upstream (UpstreamDNS).
//   - No IPVS in this kernel (kube-proxy: iptables or nftables), no DMI (the
//     product_uuid is a file of the bed's, under a rebuilt /sys/class), no
//     kernel modules to load (everything is built in, there is no modprobe
//     target).
//   - Docker's storage driver here is fuse-overlayfs: reading large files out
//     of an image layer is slow, so big artifacts are served over the network
//     (the upstream servers) instead of baked into the image.
//   - Routes added by hand inside a host live in its network namespace and are
//     lost when it restarts.
package nodebed

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"golang.org/x/crypto/ssh"

	"github.com/hacluster/hacluster/pkg/dockertest"
	"github.com/hacluster/hacluster/pkg/upstream"
)

// Image is the host image `make images` builds (hack/images/node).
const Image = "hacluster.local/node:bookworm"

// The users every host has. All three log in with Bed.KeyFile.
const (
	RootUser         = "root"
	SudoUser         = "admin" // sudo without a password
	PasswordSudoUser = "ops"   // sudo asks for Host.SudoPassword
)

// LabelKey is set on everything a bed makes (with dockertest's labels), so
// that `docker ps --filter label=io.hacluster.nodebed` lists the hosts.
const LabelKey = "io.hacluster.nodebed"

// KeepEnv, when set to 1, keeps the hosts of a failed or passed test.
const KeepEnv = "HACLUSTER_NODEBED_KEEP"

// Options describe a bed.
type Options struct {
	// Hosts to make; when empty, Count hosts named node-1..node-N (default 1).
	Hosts []HostSpec
	Count int
	// Prefix of container names (default "nb"): <prefix>-<id>-<host name>.
	Prefix string
	// Image of every host (default Image).
	Image string
	// Subnet of the bed's network; default a free 172.30.X.0/24. Hosts get
	// .11, .12, ...; the VIP is .100; the gateway (this machine) is .1.
	Subnet netip.Prefix
	// ID fixes the labels' ID, so that a later process can find the bed again
	// (the nodebed command); "" picks a random one.
	ID string
	// Dir keeps the client key and known_hosts; default a new temporary
	// directory, removed at Stop.
	Dir string
	// Logf, when set, reports progress (host booted, ...).
	Logf func(format string, args ...any)
	// Upstream starts the internet in a box (pkg/upstream) on the gateway:
	// release downloads and a registry the hosts reach over plain http.
	// Its artifacts come from `make upstream`.
	Upstream bool
}

// HostSpec describes one host. The Same* fields copy another host's identity,
// for the preflight tests that must catch duplicates.
type HostSpec struct {
	Name string
	// Hostname defaults to Name.
	Hostname string
	// SameMachineIDAs and SameProductUUIDAs name an earlier host of the bed.
	SameMachineIDAs   string
	SameProductUUIDAs string
	// Spare hosts run, but ClusterFile leaves them out: the hosts a test
	// joins to a cluster later.
	Spare bool
}

// Bed is a running set of hosts on one private network.
type Bed struct {
	Network string
	Subnet  netip.Prefix
	// Gateway is this machine's address on the network: where the hosts reach
	// servers that run here (release downloads, the registry).
	Gateway netip.Addr
	// VIP is a free address on the network that no host or container takes.
	VIP   netip.Addr
	Hosts []*Host
	// KeyFile is the client's private key (OpenSSH format, 0600) for root,
	// SudoUser and PasswordSudoUser on every host; Signer is the same key.
	KeyFile string
	Signer  ssh.Signer
	// KnownHostsFile lists every host's host keys by address (OpenSSH format).
	KnownHostsFile string
	// UpstreamDNS is a resolver that is not on loopback (this machine's), for
	// a kubelet's resolvConf.
	UpstreamDNS netip.Addr
	// Upstream serves release downloads and images on the gateway (with
	// Options.Upstream), nil otherwise.
	Upstream *upstream.Server

	env        *dockertest.Env
	dir        string
	removeDir  bool
	registered bool // in the machine's sysctl record (joinSysctls)
	logf       func(string, ...any)
	knownHosts sync.Mutex
}

// Host is one server of the bed.
type Host struct {
	Name        string
	Hostname    string
	Address     netip.Addr
	MAC         string
	MachineID   string
	ProductUUID string
	// SudoPassword is PasswordSudoUser's password.
	SudoPassword string
	// HostKeys are the host's SSH host keys as the host reports them through
	// the engine (not over SSH), one per algorithm.
	HostKeys []ssh.PublicKey
	// BootTime is how long the last (re)start took, from the container start
	// to an SSH handshake that verified the host key.
	BootTime  time.Duration
	Container *dockertest.Container
	// Spare: see HostSpec.
	Spare bool

	bed    *Bed
	volume string
}

// Start makes a bed for the test and removes it when the test ends. On a
// failure it logs every host's journal first. A missing engine or image fails
// the test when CI is set and skips it otherwise.
func Start(t testing.TB, opts Options) *Bed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	bed, err := New(ctx, opts)
	if err != nil {
		if IsUnavailable(err) && os.Getenv("CI") == "" {
			t.Skipf("%v (set CI=1 to make this a failure)", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			bed.LogJournals(t.Logf)
		}
		if os.Getenv(KeepEnv) == "1" {
			t.Logf("nodebed: %s=1, keeping the hosts (docker ps --filter label=%s=%s)", KeepEnv, dockertest.LabelKey, bed.env.ID())
			return
		}
		if err := bed.Stop(); err != nil {
			t.Errorf("nodebed: %v", err)
		}
	})
	return bed
}

// IsUnavailable reports whether New failed because the engine does not
// answer or the image is missing (skip), rather than because a host broke.
func IsUnavailable(err error) bool {
	var u *unavailableError
	return errors.As(err, &u)
}

type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

// New makes a bed without a test (TestMain, the nodebed command). The caller
// calls Stop. On an error nothing it made is left behind.
func New(ctx context.Context, opts Options) (_ *Bed, err error) {
	specs, err := opts.hostSpecs()
	if err != nil {
		return nil, err
	}
	if opts.Image == "" {
		opts.Image = Image
	}
	if opts.Prefix == "" {
		opts.Prefix = "nb"
	}
	env, err := dockertest.Connect(ctx, opts.ID, "nodebed")
	if err != nil {
		return nil, &unavailableError{err}
	}
	if _, err := env.Client.ImageInspect(ctx, opts.Image); err != nil {
		env.Client.Close()
		return nil, &unavailableError{fmt.Errorf("nodebed: image %s is not in the engine (%v): run `make images`", opts.Image, err)}
	}
	b := &Bed{env: env, logf: opts.Logf, dir: opts.Dir}
	if b.logf == nil {
		b.logf = func(string, ...any) {}
	}
	defer func() {
		if err != nil {
			if ctx.Err() != nil {
				// A create the context cancelled on this side can still
				// finish in the engine: let it, so Stop's sweep by label
				// finds the container.
				time.Sleep(2 * time.Second)
			}
			err = errors.Join(err, b.Stop())
		}
	}()
	if b.dir == "" {
		if b.dir, err = os.MkdirTemp("", "nodebed-"); err != nil {
			return nil, err
		}
		b.removeDir = true
	} else if err := os.MkdirAll(b.dir, 0o700); err != nil {
		return nil, err
	}
	if err := joinSysctls(env.ID()); err != nil {
		return nil, err
	}
	b.registered = true
	b.UpstreamDNS = upstreamDNS()
	if err := b.makeKey(); err != nil {
		return nil, err
	}
	if err := b.makeNetwork(ctx, opts.Prefix, opts.Subnet, len(specs)); err != nil {
		return nil, err
	}
	if opts.Upstream {
		b.Upstream, err = upstream.Start(ctx, upstream.Options{Addr: net.JoinHostPort(b.Gateway.String(), "0"), Logf: b.logf})
		if err != nil {
			if errors.Is(err, upstream.ErrNotBuilt) {
				err = &unavailableError{err}
			}
			return nil, err
		}
	}
	for i, spec := range specs {
		h, err := b.makeHost(ctx, opts, spec, i)
		if err != nil {
			return nil, err
		}
		b.Hosts = append(b.Hosts, h)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(b.Hosts))
	for i, h := range b.Hosts {
		wg.Go(func() { errs[i] = h.Start(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := b.writeResolvConf(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

func (o Options) hostSpecs() ([]HostSpec, error) {
	specs := o.Hosts
	if len(specs) == 0 {
		n := o.Count
		if n <= 0 {
			n = 1
		}
		for i := 1; i <= n; i++ {
			specs = append(specs, HostSpec{Name: fmt.Sprintf("node-%d", i)})
		}
	}
	if len(specs) > 80 {
		return nil, fmt.Errorf("nodebed: %d hosts: at most 80", len(specs))
	}
	seen := map[string]bool{}
	for _, s := range specs {
		if s.Name == "" || strings.Trim(strings.ToLower(s.Name), "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return nil, fmt.Errorf("nodebed: host name %q: want lower-case letters, digits and dashes", s.Name)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("nodebed: host name %q given twice", s.Name)
		}
		for _, ref := range []string{s.SameMachineIDAs, s.SameProductUUIDAs} {
			if ref != "" && !seen[ref] {
				return nil, fmt.Errorf("nodebed: host %s copies the identity of %q, which is not an earlier host", s.Name, ref)
			}
		}
		seen[s.Name] = true
	}
	return specs, nil
}

// Host returns the host named name, or nil.
func (b *Bed) Host(name string) *Host {
	for _, h := range b.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Dir is where the bed keeps its key and known_hosts.
func (b *Bed) Dir() string { return b.dir }

// ID is the label ID of everything the bed made.
func (b *Bed) ID() string { return b.env.ID() }

// Remove deletes what a bed with Options.ID id left behind (its runner was
// killed before Stop) and restores the machine's sysctls. It returns how many
// containers it removed.
func Remove(ctx context.Context, id string) (int, error) {
	env, err := dockertest.Connect(ctx, id, "nodebed")
	if err != nil {
		return 0, err
	}
	defer env.Client.Close()
	res, err := env.Client.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", dockertest.LabelKey+"="+id)})
	if err != nil {
		return 0, err
	}
	errs := []error{env.Cleanup(nil), leaveSysctls(id, nil)}
	return len(res.Items), errors.Join(errs...)
}

// Stop removes every host, volume and the network, restores the sysctls the
// hosts changed on this machine and removes the temporary directory.
func (b *Bed) Stop() error {
	var errs []error
	if b.Upstream != nil {
		errs = append(errs, b.Upstream.Close())
	}
	if b.env != nil {
		errs = append(errs, b.env.Cleanup(nil))
		b.env.Client.Close()
	}
	if b.registered {
		errs = append(errs, leaveSysctls(b.env.ID(), b.logf))
	}
	if b.removeDir && b.dir != "" {
		errs = append(errs, os.RemoveAll(b.dir))
	}
	return errors.Join(errs...)
}

// makeNetwork creates the bed's bridge network on a free /24.
func (b *Bed) makeNetwork(ctx context.Context, prefix string, subnet netip.Prefix, hosts int) error {
	var candidates []netip.Prefix
	if !subnet.IsValid() {
		start := int(randByte())
		for i := range 256 {
			candidates = append(candidates, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 30, byte(start + i), 0}), 24))
		}
	} else if subnet.Bits() > 24 || !subnet.Addr().Is4() {
		return fmt.Errorf("nodebed: subnet %s: want an IPv4 /24 or larger", subnet)
	} else {
		candidates = append(candidates, subnet)
	}
	name := b.env.Name(prefix)
	var lastErr error
	for _, sn := range candidates {
		sn = sn.Masked()
		gw := sn.Addr().Next()
		// Docker hands out addresses only from the upper half; hosts and the
		// VIP take fixed ones below it.
		dyn := netip.PrefixFrom(offset(sn.Addr(), 128), 25)
		_, err := b.env.Client.NetworkCreate(ctx, name, client.NetworkCreateOptions{
			Driver: "bridge",
			IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: sn, Gateway: gw, IPRange: dyn}}},
			Labels: b.labels(),
		})
		if err == nil {
			b.Network, b.Subnet, b.Gateway, b.VIP = name, sn, gw, offset(sn.Addr(), 100)
			b.logf("nodebed: network %s on %s (gateway %s, VIP %s reserved, %d hosts from %s)", name, sn, gw, b.VIP, hosts, offset(sn.Addr(), 11))
			return nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "overlap") {
			break
		}
	}
	return fmt.Errorf("nodebed: create network %s: %w", name, lastErr)
}

func (b *Bed) labels() map[string]string {
	l := b.env.Labels()
	l[LabelKey] = b.env.ID()
	return l
}

func offset(a netip.Addr, n byte) netip.Addr {
	v := a.As4()
	v[3] += n
	return netip.AddrFrom4(v)
}

func (b *Bed) makeHost(ctx context.Context, opts Options, spec HostSpec, i int) (*Host, error) {
	h := &Host{
		Name:         spec.Name,
		Hostname:     spec.Hostname,
		Spare:        spec.Spare,
		Address:      offset(b.Subnet.Addr(), byte(11+i)),
		MachineID:    strings.ReplaceAll(newUUID(), "-", ""),
		ProductUUID:  newUUID(),
		SudoPassword: "nb-" + strings.ReplaceAll(newUUID(), "-", "")[:16],
		bed:          b,
	}
	if h.Hostname == "" {
		h.Hostname = h.Name
	}
	if o := b.Host(spec.SameMachineIDAs); o != nil {
		h.MachineID = o.MachineID
	}
	if o := b.Host(spec.SameProductUUIDAs); o != nil {
		h.ProductUUID = o.ProductUUID
	}
	name := b.env.Name(opts.Prefix + "-" + spec.Name)
	h.volume = name + "-var"
	if _, err := b.env.Client.VolumeCreate(ctx, client.VolumeCreateOptions{Name: h.volume, Labels: b.labels()}); err != nil {
		return nil, fmt.Errorf("nodebed: create volume %s: %w", h.volume, err)
	}
	pub, err := os.ReadFile(b.KeyFile + ".pub")
	if err != nil {
		return nil, err
	}
	c, err := b.env.RunContext(ctx, dockertest.RunSpec{
		Image:    opts.Image,
		Name:     name,
		Hostname: h.Hostname,
		Network:  b.Network,
		Volumes:  map[string]string{h.volume: "/var"},
		Labels:   map[string]string{LabelKey: b.env.ID(), LabelKey + ".host": spec.Name},
		Files: map[string][]byte{
			"/etc/nodebed/machine-id":      []byte(h.MachineID + "\n"),
			"/etc/nodebed/product_uuid":    []byte(h.ProductUUID + "\n"),
			"/etc/nodebed/authorized_keys": pub,
			"/etc/nodebed/ops-password":    []byte(h.SudoPassword),
		},
		NoStart: true,
		Configure: func(cfg *container.Config, hc *container.HostConfig, ep *network.EndpointSettings) {
			hostConfig(hc)
			ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: h.Address}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("nodebed: host %s: %w", spec.Name, err)
	}
	h.Container = c
	return h, nil
}

// hostConfig is what a host needs from the engine on this machine (see the
// package documentation): kind's and bootloose's settings, without
// --privileged.
func hostConfig(hc *container.HostConfig) {
	hc.CapAdd = []string{"ALL"}
	hc.CapDrop = []string{"SYS_RESOURCE"}
	hc.SecurityOpt = []string{"seccomp=unconfined", "apparmor=unconfined"}
	// `--security-opt systempaths=unconfined` is a CLI option: the engine gets
	// empty (not absent) lists.
	hc.MaskedPaths = []string{}
	hc.ReadonlyPaths = []string{}
	hc.CgroupnsMode = container.CgroupnsModePrivate
	hc.DeviceCgroupRules = []string{"a *:* rwm"}
	hc.Devices = []container.DeviceMapping{{PathOnHost: "/dev/kmsg", PathInContainer: "/dev/kmsg", CgroupPermissions: "rwm"}}
	// As on a systemd host: exec allowed (Docker's tmpfs default is noexec).
	hc.Tmpfs = map[string]string{"/run": "rw,exec,nosuid,nodev,mode=0755", "/tmp": "rw,exec,nosuid,nodev,mode=1777"}
}

// Start starts the host (a no-op when it runs) and waits until systemd has
// booted and sshd answers with the host's own key.
func (h *Host) Start(ctx context.Context) error {
	t0 := time.Now()
	if err := h.Container.Start(ctx); err != nil {
		return fmt.Errorf("nodebed: %w", err)
	}
	if err := h.waitReady(ctx); err != nil {
		return err
	}
	h.BootTime = time.Since(t0)
	h.bed.logf("nodebed: %s (%s) up in %s", h.Name, h.Address, h.BootTime.Round(10*time.Millisecond))
	return nil
}

func (h *Host) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 6*time.Minute)
	defer cancel()
	// systemctl --wait returns when the boot is over (running or degraded);
	// it says "offline" while the entrypoint has not yet handed over to systemd.
	// Each try has its own deadline: a busy engine may drop one exec.
	var state string
	for {
		try, cancelTry := context.WithTimeout(ctx, time.Minute)
		out, err := h.Exec(try, "systemctl", "is-system-running", "--wait")
		cancelTry()
		state = strings.TrimSpace(out)
		if state != "offline" && state != "" {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("nodebed: %s: systemd did not start: %v", h.Name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if state != "running" {
		failed, _ := h.Exec(ctx, "systemctl", "--failed", "--no-legend", "--plain")
		return fmt.Errorf("nodebed: %s booted %q; failed units: %s", h.Name, state, strings.TrimSpace(failed))
	}
	if err := h.readIdentity(ctx); err != nil {
		return err
	}
	if err := h.bed.writeKnownHosts(); err != nil {
		return err
	}
	for {
		c, err := h.bed.Dial(ctx, h, RootUser)
		if err == nil {
			return c.Close()
		}
		if ctx.Err() != nil {
			return fmt.Errorf("nodebed: %s: no SSH session: %w", h.Name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readIdentity reads the host keys and the MAC through the engine.
func (h *Host) readIdentity(ctx context.Context) error {
	out, err := h.Exec(ctx, "sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub; echo; cat /sys/class/net/eth0/address")
	if err != nil {
		return err
	}
	var keys []ssh.PublicKey
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines[:len(lines)-1] {
		if strings.TrimSpace(l) == "" {
			continue
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(l))
		if err != nil {
			return fmt.Errorf("nodebed: %s: host key %q: %w", h.Name, l, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return fmt.Errorf("nodebed: %s has no SSH host keys", h.Name)
	}
	h.HostKeys = keys
	h.MAC = strings.TrimSpace(lines[len(lines)-1])
	return nil
}

// Exec runs a command on the host as root through the engine (docker exec):
// the out-of-band channel tests use to look at or change a host without the
// product's SSH code. It returns stdout; a non-zero exit is an error that
// carries stderr.
func (h *Host) Exec(ctx context.Context, cmd ...string) (string, error) {
	res, err := h.Container.Exec(ctx, cmd...)
	if err != nil {
		return "", fmt.Errorf("nodebed: %s: %w", h.Name, err)
	}
	if res.ExitCode != 0 {
		return res.Stdout, fmt.Errorf("nodebed: %s: %s: exit %d: %s", h.Name, strings.Join(cmd, " "), res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	return res.Stdout, nil
}

// SSHAddr is the host's sshd, host:port.
func (h *Host) SSHAddr() string { return net.JoinHostPort(h.Address.String(), "22") }

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func randByte() byte {
	var b [1]byte
	_, _ = rand.Read(b[:])
	return b[0]
}

// upstreamDNS is the first non-loopback nameserver of this machine.
func upstreamDNS() netip.Addr {
	data, _ := os.ReadFile("/etc/resolv.conf")
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil && !a.IsLoopback() {
				return a
			}
		}
	}
	return netip.Addr{}
}

func (b *Bed) path(name string) string { return filepath.Join(b.dir, name) }

// Main runs a package's tests (from TestMain) with one bed for all of them:
// it makes the bed, hands it to set (nil when the engine or an artifact is
// missing outside CI: the tests then skip), logs every host's journal when a
// test failed, and removes the bed. It returns the exit code for os.Exit.
//
// Test packages take turns (a lock file in the temporary directory): `go
// test ./...` runs packages in parallel, and two beds bootstrapping clusters
// at once on 2 cores starve each other and the engine.
func Main(m *testing.M, opts Options, set func(*Bed)) int {
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
	unlock, err := lockBeds(logf)
	if err != nil {
		logf("nodebed: %v", err)
		return 1
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	if opts.Logf == nil {
		opts.Logf = logf
	}
	// SIGINT or SIGTERM (Ctrl-C, a CI runner giving up) ends
	// the bed's boot, or stops the bed, before the process goes: no
	// containers, network or sysctl record are left behind.
	var (
		mu      sync.Mutex
		running *Bed
		booted  bool // New has returned
		stopped bool
	)
	stop := func() error {
		mu.Lock()
		defer mu.Unlock()
		if running == nil || stopped {
			return nil
		}
		stopped = true
		return running.Stop()
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		s := <-sigs
		logf("nodebed: %v: removing the bed", s)
		cancel()
		if err := stop(); err != nil {
			logf("%v", err)
		}
		mu.Lock()
		done := booted
		mu.Unlock()
		if done {
			unlock()
			os.Exit(1)
		}
		// still booting: New fails on the cancelled context and cleans up
	}()
	bed, err := New(ctx, opts)
	mu.Lock()
	booted = true
	if err == nil {
		running = bed
	}
	mu.Unlock()
	if err == nil && ctx.Err() != nil { // a signal as New returned
		_ = stop()
		return 1
	}
	if err != nil {
		if !IsUnavailable(err) || os.Getenv("CI") != "" {
			logf("%v", err)
			return 1
		}
		logf("no node bed, the tests that need one skip: %v", err)
		set(nil)
		return m.Run()
	}
	set(bed)
	code := m.Run()
	if code != 0 {
		bed.LogJournals(logf)
	}
	if err := stop(); err != nil {
		logf("%v", err)
		code = 1
	}
	return code
}

// lockBeds waits for the machine-wide test-bed lock.
func lockBeds(logf func(string, ...any)) (func(), error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "hacluster-nodebed-tests.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		logf("nodebed: another test package has a bed; waiting for it")
		t0 := time.Now()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, err
		}
		logf("nodebed: waited %s", time.Since(t0).Round(time.Second))
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
