// Command nodebed runs the node test bed behind `make nodebed-up` and
// `make nodebed-down`: bare Debian hosts in containers, reachable over SSH
// (pkg/nodebed), and the upstream in a box on the network's gateway
// (pkg/upstream) when its artifacts are built.
//
//	go run ./hack/nodebed [--dir DIR] up [-n 4]   start the hosts and print how to reach them
//	go run ./hack/nodebed [--dir DIR] down        remove them, restore this machine's sysctls
//	go run ./hack/nodebed [--dir DIR] status
//
// `up` starts a detached runner (`serve`) that owns the bed, so that it
// outlives `make`; `down` stops it, and the runner removes everything.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hacluster/hacluster/hack/internal/detach"
	"github.com/hacluster/hacluster/pkg/fileutil"
	"github.com/hacluster/hacluster/pkg/nodebed"
	"github.com/hacluster/hacluster/pkg/upstream"
)

const usage = `usage: nodebed [--dir DIR] [--id ID] up [-n N] | down | status

  up      start N bare Debian hosts (default 4) on a private network, plus the
          upstream in a box when ` + "`make upstream`" + ` has built it; prints how to reach them
  down    remove every host, volume and the network; restore the sysctls
  status  say whether it runs
`

func main() {
	fs := flag.NewFlagSet("nodebed", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	dir := fs.String("dir", "", "state directory (default <repo>/.nodebed)")
	id := fs.String("id", defaultID, "label ID of the bed's Docker objects (one bed per ID)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if fs.NArg() < 1 {
		fs.Usage()
		os.Exit(2)
	}
	if *dir == "" {
		root, err := fileutil.RepoRoot()
		if err != nil {
			fail(err)
		}
		*dir = filepath.Join(root, ".nodebed")
	}
	r := runner{dir: *dir, id: *id}
	var err error
	switch cmd, args := fs.Arg(0), fs.Args()[1:]; cmd {
	case "up":
		sub := flag.NewFlagSet("up", flag.ContinueOnError)
		n := sub.Int("n", 4, "number of hosts")
		spare := sub.Int("spare", 0, "of them, how many the cluster file leaves out (hosts to join later)")
		if err := sub.Parse(args); err != nil {
			os.Exit(2)
		}
		if *n < 1 || *n > 80 {
			fail(fmt.Errorf("-n %d: want 1 to 80 hosts", *n))
		}
		if *spare < 0 || *spare >= *n {
			fail(fmt.Errorf("-spare %d: want 0 to %d", *spare, *n-1))
		}
		err = r.up(*n, *spare)
	case "down":
		err = r.down()
	case "status":
		err = r.status()
	case "serve":
		n, spare := 4, 0
		if len(args) >= 1 {
			n, _ = strconv.Atoi(args[0])
		}
		if len(args) == 2 {
			spare, _ = strconv.Atoi(args[1])
		}
		err = r.serve(n, spare)
	default:
		fs.Usage()
		os.Exit(2)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "nodebed: %v\n", err)
	os.Exit(1)
}

type runner struct{ dir, id string }

func (r runner) path(name string) string { return filepath.Join(r.dir, name) }

func (r runner) detached() detach.Runner { return detach.Runner{Dir: r.dir, Name: "hacluster-nodebed"} }

// info is written to info.json once the bed is up.
type info struct {
	Network        string      `json:"network"`
	Subnet         string      `json:"subnet"`
	Gateway        string      `json:"gateway"`
	VIP            string      `json:"vip"`
	KeyFile        string      `json:"keyFile"`
	KnownHostsFile string      `json:"knownHostsFile"`
	Hosts          []hostInfo  `json:"hosts"`
	Upstream       *upstreamIn `json:"upstream,omitempty"`
	StartedIn      string      `json:"startedIn"`
}

type hostInfo struct {
	Name        string `json:"name"`
	Address     string `json:"address"`
	MachineID   string `json:"machineID"`
	ProductUUID string `json:"productUUID"`
	MAC         string `json:"mac"`
	BootTime    string `json:"bootTime"`
}

type upstreamIn struct {
	URL      string            `json:"url"`
	Versions upstream.Versions `json:"versions"`
	Images   []upstream.Image  `json:"images"`
}

func (r runner) readInfo() (*info, error) {
	b, err := os.ReadFile(r.path("info.json"))
	if err != nil {
		return nil, err
	}
	var inf info
	return &inf, json.Unmarshal(b, &inf)
}

func (r runner) up(n, spare int) error {
	if pid := r.detached().PID(); pid != 0 {
		if inf, err := r.readInfo(); err == nil {
			fmt.Fprintf(os.Stderr, "nodebed: already running (runner pid %d)\n", pid)
			r.announce(inf)
			return nil
		}
		return fmt.Errorf("a runner (pid %d) is starting or stuck; see %s, or run `make nodebed-down`", pid, r.detached().Log())
	}
	// Leftovers of a runner that was killed: remove them, start afresh.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if left, err := nodebed.Remove(ctx, r.id); err != nil {
		return err
	} else if left > 0 {
		fmt.Fprintf(os.Stderr, "nodebed: removed %d leftover hosts\n", left)
	}
	if err := os.RemoveAll(r.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return err
	}
	start := time.Now()
	exited, err := r.detached().Start("--dir", r.dir, "--id", r.id, "serve", strconv.Itoa(n), strconv.Itoa(spare))
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "nodebed: starting %d hosts (containers on this machine; log: %s)\n", n, r.detached().Log())
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("the runner exited (%v); last lines of %s:\n  %s", err, r.detached().Log(), strings.ReplaceAll(r.detached().Tail(20), "\n", "\n  "))
		case <-tick.C:
			fmt.Fprintf(os.Stderr, "nodebed: still starting (%s)...\n", time.Since(start).Round(time.Second))
		case <-time.After(100 * time.Millisecond):
			if inf, err := r.readInfo(); err == nil {
				fmt.Fprintf(os.Stderr, "nodebed: ready in %s\n", time.Since(start).Round(100*time.Millisecond))
				r.announce(inf)
				return nil
			}
			if time.Since(start) > 5*time.Minute {
				_ = r.down()
				return fmt.Errorf("not ready after 5 minutes; see %s", r.detached().Log())
			}
		}
	}
}

// announce prints how to reach the hosts, for people (stdout).
func (r runner) announce(inf *info) {
	fmt.Printf("network %s (%s), gateway %s, VIP %s reserved\n", inf.Network, inf.Subnet, inf.Gateway, inf.VIP)
	fmt.Printf("users: root, %s (sudo without password), %s (sudo password in %s)\n", nodebed.SudoUser, nodebed.PasswordSudoUser, r.path("sudo-passwords"))
	for _, h := range inf.Hosts {
		fmt.Printf("  %-8s ssh -i %s -o UserKnownHostsFile=%s root@%s\n", h.Name, inf.KeyFile, inf.KnownHostsFile, h.Address)
	}
	if u := inf.Upstream; u != nil {
		fmt.Printf("upstream in a box: %s/dl.k8s.io/release/%s/..., %s/github.com/..., registry %s/v2/registry.k8s.io/ (%d images)\n",
			u.URL, u.Versions.Kubernetes, u.URL, u.URL, len(u.Images))
	} else {
		fmt.Println("upstream in a box: not started (run `make upstream` to build its artifacts)")
	}
	fmt.Printf("cluster file for these hosts: %s (kubectl hacluster bootstrap -f %s)\n", r.path("cluster.yaml"), r.path("cluster.yaml"))
}

func (r runner) down() error {
	stopped := r.detached().Stop(2 * time.Minute)
	_ = os.Remove(r.path("info.json"))
	_ = os.Remove(r.path("cluster.yaml"))
	_ = os.Remove(r.path("nodebed.env"))
	// A runner killed with SIGKILL leaves its containers: remove them by label.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	left, err := nodebed.Remove(ctx, r.id)
	switch {
	case stopped:
		fmt.Fprintln(os.Stderr, "nodebed: stopped")
	case left > 0:
		fmt.Fprintf(os.Stderr, "nodebed: removed %d leftover objects\n", left)
	default:
		fmt.Fprintln(os.Stderr, "nodebed: not running")
	}
	return err
}

func (r runner) status() error {
	pid := r.detached().PID()
	inf, err := r.readInfo()
	if pid == 0 || err != nil {
		fmt.Println("nodebed: not running")
		return nil
	}
	fmt.Printf("nodebed: running (runner pid %d)\n", pid)
	r.announce(inf)
	return nil
}

// defaultID labels the bed `make nodebed-up` starts, so that `down` finds it
// even after the runner was killed.
const defaultID = "nodebed-cli"

// serve is the detached runner: it starts the bed, writes info.json and holds
// it (and the upstream server) until SIGTERM, then removes it.
func (r runner) serve(n, spare int) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
	}
	start := time.Now()
	opts := nodebed.Options{Count: n, Prefix: "nb", ID: r.id, Dir: r.path("ssh"), Logf: logf, Upstream: true}
	bed, err := nodebed.New(ctx, opts)
	if err != nil && errors.Is(err, upstream.ErrNotBuilt) {
		logf("no upstream in a box: %v", err)
		opts.Upstream = false
		bed, err = nodebed.New(ctx, opts)
	}
	if err != nil {
		return err
	}
	for _, h := range bed.Hosts[len(bed.Hosts)-spare:] {
		h.Spare = true // left out of cluster.yaml
	}
	defer func() {
		if err := bed.Stop(); err != nil {
			logf("stop: %v", err)
		}
		logf("stopped")
	}()
	inf := info{Network: bed.Network, Subnet: bed.Subnet.String(), Gateway: bed.Gateway.String(), VIP: bed.VIP.String(),
		KeyFile: bed.KeyFile, KnownHostsFile: bed.KnownHostsFile, StartedIn: time.Since(start).Round(time.Millisecond).String()}
	var pw strings.Builder
	for _, h := range bed.Hosts {
		inf.Hosts = append(inf.Hosts, hostInfo{Name: h.Name, Address: h.Address.String(), MachineID: h.MachineID,
			ProductUUID: h.ProductUUID, MAC: h.MAC, BootTime: h.BootTime.Round(time.Millisecond).String()})
		fmt.Fprintf(&pw, "%s %s\n", h.Name, h.SudoPassword)
	}
	if u := bed.Upstream; u != nil {
		if err := pushNetcheck(ctx, u, r.dir); err != nil {
			return err
		}
		inf.Upstream = &upstreamIn{URL: u.URL, Versions: u.Versions, Images: u.Images}
	}
	if err := fileutil.WriteAtomic(r.path("sudo-passwords"), []byte(pw.String()), 0o600); err != nil {
		return err
	}
	// The same for shell scripts (hack/bench/bootstrap.sh sources it).
	if err := fileutil.WriteAtomic(r.path("nodebed.env"), []byte(shellEnv(bed)), 0o600); err != nil {
		return err
	}
	// A cluster file for the bed as it is (kubectl hacluster bootstrap -f).
	if err := fileutil.WriteAtomic(r.path("cluster.yaml"), []byte(bed.ClusterFile("nodebed", nodebed.SudoUser)), 0o600); err != nil {
		return err
	}
	// An add-ons catalog pinning the upstream's metrics-server, for
	// spec.artifacts.addonsCatalog (make demo adds it to a copy of the file).
	_ = os.Remove(r.path("addons.yaml"))
	if cat, err := bed.MetricsServerCatalog("served"); err == nil {
		if err := fileutil.WriteAtomic(r.path("addons.yaml"), cat, 0o644); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(inf, "", "  ")
	if err != nil {
		return err
	}
	if err := fileutil.WriteAtomic(r.path("info.json"), b, 0o644); err != nil {
		return err
	}
	logf("ready after %s", time.Since(start).Round(time.Millisecond))
	<-ctx.Done()
	logf("stopping")
	return nil
}

// shellEnv describes the bed as shell variables: NODEBED_HOSTS (names),
// NODEBED_IPS (addresses, same order), NODEBED_KEY, NODEBED_KNOWN_HOSTS,
// NODEBED_VIP, NODEBED_PREFIX_LEN, NODEBED_DNS, NODEBED_RESOLV_CONF, and with
// the upstream in a box NODEBED_UPSTREAM (its URL) and the versions it
// serves (K8S_VERSION, CONTAINERD_VERSION, RUNC_VERSION, CNI_PLUGINS_VERSION,
// CRICTL_VERSION).
func shellEnv(b *nodebed.Bed) string {
	var names, ips []string
	for _, h := range b.Hosts {
		names = append(names, h.Name)
		ips = append(ips, h.Address.String())
	}
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	var sb strings.Builder
	for _, kv := range [][2]string{
		{"NODEBED_HOSTS", strings.Join(names, " ")}, {"NODEBED_IPS", strings.Join(ips, " ")},
		{"NODEBED_KEY", b.KeyFile}, {"NODEBED_KNOWN_HOSTS", b.KnownHostsFile}, {"NODEBED_VIP", b.VIP.String()},
		{"NODEBED_PREFIX_LEN", strconv.Itoa(b.Subnet.Bits())}, {"NODEBED_DNS", b.UpstreamDNS.String()}, {"NODEBED_RESOLV_CONF", nodebed.ResolvConf},
	} {
		fmt.Fprintf(&sb, "%s=%s\n", kv[0], q(kv[1]))
	}
	if u := b.Upstream; u != nil {
		v := u.Versions
		for _, kv := range [][2]string{{"NODEBED_UPSTREAM", u.URL}, {"K8S_VERSION", v.Kubernetes}, {"CONTAINERD_VERSION", v.Containerd},
			{"RUNC_VERSION", v.Runc}, {"CNI_PLUGINS_VERSION", v.CNIPlugins}, {"CRICTL_VERSION", v.Crictl}} {
			fmt.Fprintf(&sb, "%s=%s\n", kv[0], q(kv[1]))
		}
	}
	return sb.String()
}

// NetcheckImage is the bed's workload image (hack/netcheck), in the
// registry under nodebed.TestRegistry.
const NetcheckImage = nodebed.TestRegistry + "/netcheck:v1"

// pushNetcheck builds hack/netcheck (static) and pushes it as NetcheckImage.
func pushNetcheck(ctx context.Context, u *upstream.Server, dir string) error {
	root, err := fileutil.RepoRoot()
	if err != nil {
		return err
	}
	bin := filepath.Join(dir, "netcheck")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./hack/netcheck")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build netcheck: %v\n%s", err, out)
	}
	_, err = u.PushStatic(ctx, NetcheckImage, bin)
	return err
}
