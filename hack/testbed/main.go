// Command testbed runs the local HA-shaped cluster behind `make testbed-up` and
// `make testbed-down`: a real etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler on loopback, with five nodes simulated by kwok (see pkg/testbed).
//
//	go run ./hack/testbed up     start it (or report the running one) and print KUBECONFIG
//	go run ./hack/testbed down   stop every process it started
//	go run ./hack/testbed status say whether it runs
//
// `up` copies this program to <dir>/bin and starts it as a detached runner
// (`serve`) that owns the processes, so the cluster outlives `make`.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hacluster/hacluster/hack/internal/detach"
	"github.com/hacluster/hacluster/pkg/testbed"
)

const usage = `usage: testbed [--dir DIR] up|down|status

  up      start the local HA-shaped cluster (real control plane, kwok nodes), or
          report the one already running; prints the KUBECONFIG to use
  down    stop every process up started
  status  say whether it runs
`

func main() {
	fs := flag.NewFlagSet("testbed", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	dir := fs.String("dir", "", "state directory (default <repo>/.testbed)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		os.Exit(2)
	}
	if *dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			fail(err)
		}
		*dir = filepath.Join(wd, ".testbed")
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		fail(err)
	}
	r := runner{dir: abs}
	switch fs.Arg(0) {
	case "up":
		err = r.up()
	case "down":
		err = r.down()
	case "status":
		err = r.status()
	case "serve":
		err = r.serve()
	default:
		fmt.Fprintf(os.Stderr, "testbed: unknown command %q\n", fs.Arg(0))
		fs.Usage()
		os.Exit(2)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "testbed: %v\n", err)
	os.Exit(1)
}

type runner struct{ dir string }

func (r runner) path(name string) string { return filepath.Join(r.dir, name) }

// info is written to info.json once the cluster is ready.
type info struct {
	Kubeconfig string             `json:"kubeconfig"`
	Version    string             `json:"version"`
	Server     string             `json:"server"`
	Shape      *testbed.ShapeInfo `json:"shape"`
	StartedIn  string             `json:"startedIn"`
	Bin        string             `json:"bin"`
}

func (r runner) detached() detach.Runner { return detach.Runner{Dir: r.dir, Name: "hacluster-testbed"} }

// runnerPID returns the PID of a live runner, or 0.
func (r runner) runnerPID() int { return r.detached().PID() }

func (r runner) readInfo() (*info, error) {
	b, err := os.ReadFile(r.path("info.json"))
	if err != nil {
		return nil, err
	}
	var inf info
	return &inf, json.Unmarshal(b, &inf)
}

func (r runner) up() error {
	if pid := r.runnerPID(); pid != 0 {
		if inf, err := r.readInfo(); err == nil {
			fmt.Fprintf(os.Stderr, "testbed: already running (runner pid %d)\n", pid)
			r.announce(inf)
			return nil
		}
		return fmt.Errorf("a runner (pid %d) is starting or stuck; see %s, or run `make testbed-down`", pid, r.path("runner.log"))
	}
	if _, err := testbed.BinDir(); err != nil {
		return err
	}
	// Leftovers of a runner that was killed: stop them, start afresh.
	if stopped, _ := testbed.KillFromPIDFiles(r.path("state"), 5*time.Second); len(stopped) > 0 {
		fmt.Fprintf(os.Stderr, "testbed: stopped leftover processes: %s\n", strings.Join(stopped, ", "))
	}
	for _, name := range []string{"state", "bin", "info.json", "kubeconfig", "runner.log", "runner.pid"} {
		if err := os.RemoveAll(r.path(name)); err != nil {
			return err
		}
	}
	start := time.Now()
	exited, err := r.detached().Start("--dir", r.dir, "serve")
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "testbed: starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (log: %s)\n", r.path("runner.log"))
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("the runner exited (%v); last lines of %s:\n  %s", err, r.path("runner.log"), strings.ReplaceAll(r.detached().Tail(20), "\n", "\n  "))
		case <-tick.C:
			fmt.Fprintf(os.Stderr, "testbed: still starting (%s)...\n", time.Since(start).Round(time.Second))
		case <-time.After(100 * time.Millisecond):
			if inf, err := r.readInfo(); err == nil {
				fmt.Fprintf(os.Stderr, "testbed: ready in %s\n", time.Since(start).Round(100*time.Millisecond))
				r.announce(inf)
				return nil
			}
			if time.Since(start) > 5*time.Minute {
				_ = r.down()
				return fmt.Errorf("not ready after 5 minutes; see %s", r.path("runner.log"))
			}
		}
	}
}

func (r runner) announce(inf *info) {
	fmt.Printf(`
Local HA-shaped cluster, Kubernetes %s.
  The control plane is REAL: etcd, kube-apiserver, kube-controller-manager and kube-scheduler
  run as local processes. The %d nodes are SIMULATED by kwok: no kubelet, no containers run;
  their pods only report Running.
  API server (via the VIP that plays HAProxy/keepalived): %s
  Nodes:`, inf.Version, len(inf.Shape.Nodes), inf.Server)
	for _, n := range inf.Shape.Nodes {
		fmt.Printf(" %s=%s", n.Name, n.IP)
	}
	fmt.Printf(`
  Stop it with: make testbed-down

export KUBECONFIG=%s
export PATH=%s:$PATH   # kubectl %s, matching the server
`, inf.Kubeconfig, inf.Bin, inf.Version)
}

func (r runner) down() error {
	stoppedRunner := r.detached().Stop(30 * time.Second)
	stopped, err := testbed.KillFromPIDFiles(r.path("state"), 5*time.Second)
	for _, name := range []string{"runner.pid", "info.json", "kubeconfig"} {
		_ = os.Remove(r.path(name))
	}
	switch {
	case stoppedRunner && len(stopped) == 0:
		fmt.Fprintln(os.Stderr, "testbed: stopped")
	case len(stopped) > 0:
		fmt.Fprintf(os.Stderr, "testbed: stopped (leftover processes killed: %s)\n", strings.Join(stopped, ", "))
	default:
		fmt.Fprintln(os.Stderr, "testbed: not running")
	}
	return err
}

func (r runner) status() error {
	pid := r.runnerPID()
	inf, err := r.readInfo()
	if pid == 0 || err != nil {
		fmt.Println("testbed: not running")
		return nil
	}
	fmt.Printf("testbed: running (runner pid %d), Kubernetes %s at %s\nexport KUBECONFIG=%s\n", pid, inf.Version, inf.Server, inf.Kubeconfig)
	return nil
}

// serve is the detached runner: it starts the bed, applies the HA shape,
// writes info.json and holds everything until SIGTERM.
func (r runner) serve() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
	}
	start := time.Now()
	bed, err := testbed.New(ctx, testbed.Options{Components: true, Dir: r.path("state"), Logf: logf})
	if err != nil {
		return err
	}
	defer bed.Stop()
	shape, err := bed.ApplyHAShape(ctx, testbed.Shape{})
	if err != nil {
		return err
	}
	logf("HA shape ready after %s", time.Since(start).Round(time.Millisecond))
	if err := r.kubeProxyLogs(ctx, bed); err != nil {
		logf("warning: kube-proxy logs: %v", err)
	}

	// The user's kubeconfig goes through the VIP, like kubeadm's admin.conf.
	cfg, err := clientcmd.LoadFromFile(bed.Kubeconfig)
	if err != nil {
		return err
	}
	server := "https://" + bed.VIP
	for _, c := range cfg.Clusters {
		c.Server = server
	}
	kubeconfig := r.path("kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		return err
	}
	inf := info{Kubeconfig: kubeconfig, Version: bed.Version, Server: server, Shape: shape,
		StartedIn: time.Since(start).Round(time.Millisecond).String(), Bin: bed.Bin}
	b, err := json.MarshalIndent(inf, "", "  ")
	if err != nil {
		return err
	}
	tmp := r.path(".info.json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, r.path("info.json")); err != nil {
		return err
	}
	logf("ready; pids %v", bed.PIDs())

	err = bed.Wait(ctx)
	logf("stopping: %v", err)
	_ = os.Remove(r.path("info.json"))
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// kubeProxyLogs gives each kube-proxy pod the start-up lines a real one logs,
// so that `kubectl logs -n kube-system <kube-proxy pod>` shows its mode.
func (r runner) kubeProxyLogs(ctx context.Context, bed *testbed.Bed) error {
	pods, err := bed.Client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-proxy"})
	if err != nil {
		return err
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning {
			continue
		}
		ts := p.CreationTimestamp.UTC().Format("0102 15:04:05.000000")
		lines := []string{
			fmt.Sprintf(`I%s       1 server_linux.go:66] "Using iptables proxy"`, ts),
			fmt.Sprintf(`I%s       1 server.go:698] "Successfully retrieved node IP(s)" IPs=["%s"]`, ts, p.Status.HostIP),
			fmt.Sprintf(`I%s       1 server_linux.go:170] "Using iptables Proxier"`, ts),
			fmt.Sprintf(`I%s       1 shared_informer.go:350] "Caches are synced" controller="service config"`, ts),
		}
		if err := bed.SetPodLogs(ctx, p.Namespace, p.Name, "kube-proxy", lines); err != nil {
			return err
		}
	}
	return nil
}
