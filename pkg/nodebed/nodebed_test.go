package nodebed_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/hacluster/hacluster/pkg/nodebed"
)

// One bed for the package: three hosts and a fourth that copies node-1's
// hostname, machine-id and product_uuid.
var bed *nodebed.Bed

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	return nodebed.Main(m, nodebed.Options{
		Prefix:   "nbt",
		Upstream: true,
		Hosts: []nodebed.HostSpec{
			{Name: "node-1"}, {Name: "node-2"}, {Name: "node-3"},
			{Name: "dup", Hostname: "node-1", SameMachineIDAs: "node-1", SameProductUUIDAs: "node-1"},
		},
	}, func(b *nodebed.Bed) { bed = b })
}

func need(t *testing.T) *nodebed.Bed {
	t.Helper()
	if bed == nil {
		t.Skip("no node bed (see TestMain's message)")
	}
	return bed
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func sshRun(t *testing.T, h *nodebed.Host, user, cmd string) string {
	t.Helper()
	c, err := bed.Dial(ctxT(t, 20*time.Second), h, user)
	if err != nil {
		t.Fatalf("ssh %s@%s: %v", user, h.Name, err)
	}
	defer c.Close()
	out, err := nodebed.Run(c, cmd)
	if err != nil {
		t.Fatalf("ssh %s@%s: %v", user, h.Name, err)
	}
	return strings.TrimSpace(out)
}

func TestEveryUserLogsInWithAVerifiedHostKey(t *testing.T) {
	b := need(t)
	for _, h := range b.Hosts {
		if got := sshRun(t, h, nodebed.RootUser, "id -un; hostname"); got != "root\n"+h.Hostname {
			t.Errorf("%s as root: %q", h.Name, got)
		}
		if got := sshRun(t, h, nodebed.SudoUser, "id -un; sudo -n id -u"); got != "admin\n0" {
			t.Errorf("%s as admin (password-less sudo): %q", h.Name, got)
		}
	}
	// ops: sudo without the password is refused; with it (on stdin) it works.
	h := b.Hosts[0]
	if got := sshRun(t, h, nodebed.PasswordSudoUser, "sudo -n true 2>&1; echo rc=$?"); !strings.Contains(got, "rc=1") || !strings.Contains(got, "password") {
		t.Errorf("ops: sudo -n should want a password: %q", got)
	}
	c, err := b.Dial(ctxT(t, 20*time.Second), h, nodebed.PasswordSudoUser)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Stdin = strings.NewReader(h.SudoPassword + "\n")
	out, err := s.CombinedOutput("sudo -S -p '' id -u")
	if err != nil || strings.TrimSpace(string(out)) != "0" {
		t.Errorf("ops: sudo -S with the password: %q, %v", out, err)
	}
	// Passwords are not accepted by sshd: key only.
	cfg := &ssh.ClientConfig{User: nodebed.PasswordSudoUser, Auth: []ssh.AuthMethod{ssh.Password(h.SudoPassword)},
		HostKeyCallback: mustKnownHosts(t, b.KnownHostsFile), Timeout: 5 * time.Second}
	if c, err := nodebed.DialConfig(ctxT(t, 10*time.Second), h.SSHAddr(), cfg); err == nil {
		c.Close()
		t.Error("sshd accepted a password login")
	}
}

func mustKnownHosts(t *testing.T, file string) ssh.HostKeyCallback {
	t.Helper()
	cb, err := knownhosts.New(file)
	if err != nil {
		t.Fatal(err)
	}
	return cb
}

func TestUnknownHostKeyIsRefused(t *testing.T) {
	b := need(t)
	empty := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := b.ClientConfig(nodebed.RootUser, empty)
	if err != nil {
		t.Fatal(err)
	}
	c, err := nodebed.DialConfig(ctxT(t, 10*time.Second), b.Hosts[0].SSHAddr(), cfg)
	if err == nil {
		c.Close()
		t.Fatal("connected to a host whose key is not in known_hosts")
	}
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) || len(ke.Want) != 0 {
		t.Fatalf("want an unknown-key error, got %v", err)
	}
	if nodebed.IsKnownHostsMismatch(err) {
		t.Error("an unknown key is not a changed key")
	}
}

// Keys differ per host: each host's key is not accepted for another address.
func TestHostKeysDifferPerHost(t *testing.T) {
	b := need(t)
	seen := map[string]string{}
	for _, h := range b.Hosts {
		if len(h.HostKeys) < 2 {
			t.Errorf("%s: %d host keys, want ed25519, ecdsa and rsa", h.Name, len(h.HostKeys))
		}
		for _, k := range h.HostKeys {
			fp := ssh.FingerprintSHA256(k)
			if o, ok := seen[fp]; ok {
				t.Errorf("%s and %s share host key %s", h.Name, o, fp)
			}
			seen[fp] = h.Name
		}
	}
}

func TestIdentitiesAsSeenFromInside(t *testing.T) {
	b := need(t)
	ctx := ctxT(t, time.Minute)
	type ident struct{ hostname, machineID, uuid, mac, addr string }
	got := map[string]ident{}
	for _, h := range b.Hosts {
		out := sshRun(t, h, nodebed.SudoUser, "hostname; cat /etc/machine-id; sudo cat /sys/class/dmi/id/product_uuid; cat /sys/class/net/eth0/address; ip -4 -o addr show eth0 | awk '{print $4}'")
		f := strings.Split(out, "\n")
		if len(f) != 5 {
			t.Fatalf("%s: %q", h.Name, out)
		}
		id := ident{f[0], f[1], f[2], f[3], f[4]}
		got[h.Name] = id
		want := ident{h.Hostname, h.MachineID, h.ProductUUID, h.MAC, fmt.Sprintf("%s/%d", h.Address, b.Subnet.Bits())}
		if id != want {
			t.Errorf("%s: inside %+v, bed says %+v", h.Name, id, want)
		}
	}
	for i, a := range []string{"node-1", "node-2", "node-3"} {
		for _, c := range []string{"node-1", "node-2", "node-3"}[i+1:] {
			x, y := got[a], got[c]
			if x.hostname == y.hostname || x.machineID == y.machineID || x.uuid == y.uuid || x.mac == y.mac || x.addr == y.addr {
				t.Errorf("%s and %s share an identity: %+v %+v", a, c, x, y)
			}
		}
	}
	d, one := got["dup"], got["node-1"]
	if d.hostname != one.hostname || d.machineID != one.machineID || d.uuid != one.uuid {
		t.Errorf("dup should copy node-1's hostname, machine-id and product_uuid: %+v vs %+v", d, one)
	}
	if d.mac == one.mac || d.addr == one.addr {
		t.Errorf("dup should still have its own MAC and address: %+v vs %+v", d, one)
	}
	// The VIP is in the hosts' subnet and nobody holds it.
	if !b.Subnet.Contains(b.VIP) {
		t.Errorf("VIP %s outside %s", b.VIP, b.Subnet)
	}
	out, err := b.Hosts[1].Exec(ctx, "sh", "-c", fmt.Sprintf("ping -c1 -W1 %s >/dev/null 2>&1 && echo taken || echo free; ip neigh show %s", b.VIP, b.VIP))
	if err != nil || !strings.HasPrefix(out, "free") {
		t.Errorf("VIP %s: %q %v", b.VIP, out, err)
	}
}

func TestABareServer(t *testing.T) {
	b := need(t)
	h := b.Hosts[0]
	// What a minimal server install has.
	out := sshRun(t, h, nodebed.RootUser, "for c in systemctl sshd sudo ip iptables modprobe ps curl; do command -v $c >/dev/null || echo missing $c; done; test -s /etc/ssl/certs/ca-certificates.crt || echo missing ca-certificates; grep -h '^deb http://' /etc/apt/sources.list | head -1")
	if strings.Contains(out, "missing") || !strings.Contains(out, "deb http://deb.debian.org/debian bookworm main") {
		t.Errorf("not a minimal server: %q", out)
	}
	// Nothing the product installs (Debian's iptables package brings
	// ebtables-nft, so ebtables is there as on any Debian server).
	out = sshRun(t, h, nodebed.RootUser, "for c in containerd runc ctr crictl kubelet kubeadm kubectl keepalived haproxy conntrack socat; do command -v $c && echo present $c; done; ls -d /opt/cni/bin /etc/containerd /etc/kubernetes 2>/dev/null; true")
	if out != "" {
		t.Errorf("the host already has what bootstrap must install: %q", out)
	}
	// /tmp and /run allow programs, as on a server (Docker's tmpfs default is noexec).
	if got := sshRun(t, h, nodebed.RootUser, "findmnt -no OPTIONS /tmp; findmnt -no OPTIONS /run"); strings.Contains(got, "noexec") {
		t.Errorf("noexec tmpfs: %q", got)
	}
	// systemd is PID 1 and the boot is clean.
	if got := sshRun(t, h, nodebed.RootUser, "cat /proc/1/comm; systemctl is-system-running"); got != "systemd\nrunning" {
		t.Errorf("init: %q", got)
	}
	// The Debian mirror answers over plain http (apt works on the hosts).
	if got := sshRun(t, h, nodebed.RootUser, "curl -fsS -o /dev/null -w '%{http_code}' --max-time 20 http://deb.debian.org/debian/dists/bookworm/Release"); got != "200" {
		t.Errorf("mirror: %q", got)
	}
}

func canConnect(ctx context.Context, from, to *nodebed.Host, port int) bool {
	_, err := from.Exec(ctx, "timeout", "2", "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", to.Address, port))
	return err == nil
}

func TestBlockPort(t *testing.T) {
	b := need(t)
	ctx := ctxT(t, time.Minute)
	one, two, three := b.Host("node-1"), b.Host("node-2"), b.Host("node-3")
	if !canConnect(ctx, two, one, 22) {
		t.Fatal("node-2 cannot reach node-1:22 before the block")
	}
	if err := b.BlockPort(ctx, two, one, 22); err != nil {
		t.Fatal(err)
	}
	blocked := !canConnect(ctx, two, one, 22)
	others := canConnect(ctx, three, one, 22)
	reverse := canConnect(ctx, one, two, 22)
	if err := b.UnblockPort(ctx, two, one, 22); err != nil {
		t.Fatal(err)
	}
	if !blocked {
		t.Error("node-2 still reaches node-1:22 after BlockPort")
	}
	if !others || !reverse {
		t.Errorf("the block is wider than one port from one host: node-3->node-1 %v, node-1->node-2 %v", others, reverse)
	}
	if !canConnect(ctx, two, one, 22) {
		t.Error("node-2 cannot reach node-1:22 after UnblockPort")
	}
}

func TestChangedHostKeyIsRefused(t *testing.T) {
	b := need(t)
	ctx := ctxT(t, time.Minute)
	h := b.Host("node-3")
	old := append([]ssh.PublicKey(nil), h.HostKeys...)
	if err := h.ChangeHostKey(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.RefreshKnownHosts(); err != nil {
			t.Error(err)
		}
	})
	if ssh.FingerprintSHA256(old[0]) == ssh.FingerprintSHA256(h.HostKeys[0]) {
		t.Fatal("ChangeHostKey kept the key")
	}
	c, err := b.Dial(ctx, h, nodebed.RootUser)
	if err == nil {
		c.Close()
		t.Fatal("connected although the host key changed")
	}
	if !nodebed.IsKnownHostsMismatch(err) {
		t.Fatalf("want a changed-key error, got %v", err)
	}
	if err := b.RefreshKnownHosts(); err != nil {
		t.Fatal(err)
	}
	if got := sshRun(t, h, nodebed.RootUser, "hostname"); got != "node-3" {
		t.Errorf("after refresh: %q", got)
	}
}

func TestStopKillPauseRestartKeepDiskAndIdentity(t *testing.T) {
	b := need(t)
	ctx := ctxT(t, 4*time.Minute)
	h := b.Host("node-2")
	identity := func() string {
		return sshRun(t, h, nodebed.RootUser, "cat /etc/machine-id /sys/class/dmi/id/product_uuid /etc/ssh/ssh_host_ed25519_key.pub; hostname; cat /var/lib/nodebed-marker 2>/dev/null")
	}
	sshRun(t, h, nodebed.RootUser, "echo kept >/var/lib/nodebed-marker; ip route add 10.250.0.0/24 via "+b.Gateway.String())
	before := identity()
	if !strings.HasSuffix(before, "kept") {
		t.Fatalf("marker not written: %q", before)
	}

	// A clean reboot: disk and identity stay, the run-time route is gone.
	if err := h.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got := identity(); got != before {
		t.Errorf("after restart:\n%s\nbefore:\n%s", got, before)
	}
	if got := sshRun(t, h, nodebed.RootUser, "ip route show 10.250.0.0/24"); got != "" {
		t.Errorf("a hand-made route survived the reboot: %q", got)
	}

	// A power cut, then power on.
	if err := h.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := h.State(ctx); st != "exited" {
		t.Errorf("after Kill the host is %q", st)
	}
	if _, err := b.Dial(ctx, h, nodebed.RootUser); err == nil {
		t.Error("ssh to a killed host worked")
	}
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := identity(); got != before {
		t.Errorf("after kill + start:\n%s\nbefore:\n%s", got, before)
	}

	// A hung host: TCP connects time out, then it answers again.
	if err := h.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 3*time.Second)
	_, err := b.Dial(short, h, nodebed.RootUser)
	cancel()
	if err := h.Unpause(ctx); err != nil {
		t.Fatal(err)
	}
	if err == nil {
		t.Error("ssh to a paused host worked")
	}
	if got := identity(); got != before {
		t.Errorf("after pause:\n%s", got)
	}
	t.Logf("node-2 boot times: last %s", h.BootTime)
}

// The sysctls the hosts share with this machine come back at Stop.
func TestStopRestoresHostSysctls(t *testing.T) {
	need(t)
	if os.Geteuid() != 0 {
		t.Skip("restoring sysctls needs root")
	}
	ctx := ctxT(t, 3*time.Minute)
	read := func() string {
		v, err := os.ReadFile("/proc/sys/kernel/panic_on_oops")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(v))
	}
	orig := read()
	flipped := "1"
	if orig == "1" {
		flipped = "0"
	}
	b, err := nodebed.New(ctx, nodebed.Options{Prefix: "nbs", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	// What a kubelet does at start: not namespaced, so it reaches this machine.
	if _, err := b.Hosts[0].Exec(ctx, "sysctl", "-w", "kernel.panic_on_oops="+flipped); err != nil {
		b.Stop()
		t.Fatal(err)
	}
	if got := read(); got != flipped {
		t.Logf("note: the host's sysctl did not reach this machine (%s); the restore is still checked", got)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != orig {
		t.Fatalf("kernel.panic_on_oops is %s after Stop, was %s", got, orig)
	}
}

// A bed that starts after a kubelet changed the machine's sysctls still
// restores the machine's own values, whichever bed stops last.
func TestLaterBedRestoresTheMachinesValues(t *testing.T) {
	need(t)
	if os.Geteuid() != 0 {
		t.Skip("restoring sysctls needs root")
	}
	ctx := ctxT(t, 3*time.Minute)
	const p = "/proc/sys/kernel/panic"
	orig, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	first, err := nodebed.New(ctx, nodebed.Options{Prefix: "nbs", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	// What the kubelet does at start (kernel.panic=10), seen by the machine.
	if _, err := first.Hosts[0].Exec(ctx, "sysctl", "-w", "kernel.panic=10"); err != nil {
		first.Stop()
		t.Fatal(err)
	}
	second, err := nodebed.New(ctx, nodebed.Options{Prefix: "nbs", Count: 1})
	if err != nil {
		first.Stop()
		t.Fatal(err)
	}
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := second.Stop(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != string(orig) {
		t.Fatalf("kernel.panic is %s after both beds stopped, was %s", strings.TrimSpace(string(got)), strings.TrimSpace(string(orig)))
	}
}

func TestBootTimeAndIdleMemory(t *testing.T) {
	b := need(t)
	ctx := ctxT(t, time.Minute)
	for _, h := range b.Hosts {
		m, err := h.MemoryBytes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: boot %s, idle memory %.1f MiB", h.Name, h.BootTime.Round(10*time.Millisecond), float64(m)/(1<<20))
		if m <= 0 || m > 512<<20 {
			t.Errorf("%s: idle memory %d bytes", h.Name, m)
		}
		if h.BootTime <= 0 || h.BootTime > 2*time.Minute {
			t.Errorf("%s: boot time %s", h.Name, h.BootTime)
		}
	}
}

func TestBadOptions(t *testing.T) {
	ctx := ctxT(t, 10*time.Second)
	for _, o := range []nodebed.Options{
		{Hosts: []nodebed.HostSpec{{Name: "a"}, {Name: "a"}}},
		{Hosts: []nodebed.HostSpec{{Name: "Bad_Name"}}},
		{Hosts: []nodebed.HostSpec{{Name: "a", SameMachineIDAs: "b"}, {Name: "b"}}},
		{Count: 81},
	} {
		if b, err := nodebed.New(ctx, o); err == nil {
			b.Stop()
			t.Errorf("%+v: accepted", o)
		}
	}
}

// The hosts download releases the way the upstream docs say (curl, then
// sha256sum against the published checksum file), run what they got, and read
// image manifests from the registry over plain http on the gateway.
func TestHostsDownloadFromUpstreamInABox(t *testing.T) {
	b := need(t)
	u := b.Upstream
	v := u.Versions
	c := strings.TrimPrefix(v.Containerd, "v")
	script := fmt.Sprintf(`set -eu
cd "$(mktemp -d)"
K=%[1]s/dl.k8s.io/release/%[2]s/bin/linux/amd64
curl -fsSLO "$K/kubeadm" -fsSLO "$K/kubeadm.sha256"
echo "$(cat kubeadm.sha256)  kubeadm" | sha256sum --check --quiet
chmod +x kubeadm && ./kubeadm version -o short
G=%[1]s/github.com
curl -fsSLO "$G/containerd/containerd/releases/download/%[3]s/containerd-%[4]s-linux-amd64.tar.gz" -fsSLO "$G/containerd/containerd/releases/download/%[3]s/containerd-%[4]s-linux-amd64.tar.gz.sha256sum"
sha256sum --check --quiet containerd-%[4]s-linux-amd64.tar.gz.sha256sum
tar -xzf containerd-%[4]s-linux-amd64.tar.gz && bin/containerd --version | cut -d' ' -f3
curl -fsSLO "$G/opencontainers/runc/releases/download/%[5]s/runc.amd64" -fsSLO "$G/opencontainers/runc/releases/download/%[5]s/runc.sha256sum"
sha256sum --check --quiet --ignore-missing runc.sha256sum
chmod +x runc.amd64 && ./runc.amd64 --version | head -1 | cut -d' ' -f3
curl -fsSLO "$G/containernetworking/plugins/releases/download/%[6]s/cni-plugins-linux-amd64-%[6]s.tgz" -fsSLO "$G/containernetworking/plugins/releases/download/%[6]s/cni-plugins-linux-amd64-%[6]s.tgz.sha256"
sha256sum --check --quiet cni-plugins-linux-amd64-%[6]s.tgz.sha256
mkdir cni && tar -xzf cni-plugins-linux-amd64-%[6]s.tgz -C cni && CNI_COMMAND=VERSION cni/bridge </dev/null | grep -o '"cniVersion":"[^"]*"' | head -1
curl -fsSLO "$G/kubernetes-sigs/cri-tools/releases/download/%[7]s/crictl-%[7]s-linux-amd64.tar.gz" -fsSLO "$G/kubernetes-sigs/cri-tools/releases/download/%[7]s/crictl-%[7]s-linux-amd64.tar.gz.sha256"
sha256sum --check --quiet crictl-%[7]s-linux-amd64.tar.gz.sha256
tar -xzf crictl-%[7]s-linux-amd64.tar.gz && ./crictl --version | cut -d' ' -f3
`, u.URL, v.Kubernetes, v.Containerd, c, v.Runc, v.CNIPlugins, v.Crictl)
	ctx := ctxT(t, 3*time.Minute)
	out, err := b.Hosts[0].Exec(ctx, "bash", "-c", script)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := strings.Fields(out)
	want := []string{v.Kubernetes, v.Containerd, strings.TrimPrefix(v.Runc, "v"), `"cniVersion":"1.0.0"`, v.Crictl}
	if len(got) != len(want) {
		t.Fatalf("versions: %q, want %q", got, want)
	}
	for i := range want {
		if i == 3 {
			if !strings.HasPrefix(got[i], `"cniVersion":`) {
				t.Errorf("CNI plugin version answer %q", got[i])
			}
			continue
		}
		if got[i] != want[i] {
			t.Errorf("version %d: %q, want %q", i, got[i], want[i])
		}
	}
	// Image manifests from the host: their sha256 is the digest pushed.
	for _, im := range u.Images {
		repo, tag, _ := strings.Cut(im.Ref, ":")
		if strings.Count(im.Ref, ":") != 1 {
			t.Fatalf("unexpected reference %s", im.Ref)
		}
		out, err := b.Hosts[1].Exec(ctx, "sh", "-c", fmt.Sprintf(
			"curl -fsS -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' -H 'Accept: application/vnd.oci.image.manifest.v1+json' %s/v2/%s/manifests/%s | sha256sum | cut -d' ' -f1",
			u.URL, repo, tag))
		if err != nil {
			t.Fatal(err)
		}
		if "sha256:"+strings.TrimSpace(out) != im.Digest {
			t.Errorf("%s: the host read manifest sha256:%s, pushed %s", im.Ref, strings.TrimSpace(out), im.Digest)
		}
	}
}
