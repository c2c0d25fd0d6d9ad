package drill_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hacluster/hacluster/pkg/artifacts"
	"github.com/hacluster/hacluster/pkg/bootstrap"
	"github.com/hacluster/hacluster/pkg/drill"
	"github.com/hacluster/hacluster/pkg/fleet"
	"github.com/hacluster/hacluster/pkg/inspect"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/nodebed"
)

// Three control planes and a worker, bootstrapped once for the package.
var (
	bed   *nodebed.Bed
	cache string

	once     sync.Once
	built    *inventory.Cluster
	adminCfg *rest.Config
	buildErr error
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if cache, err = os.MkdirTemp("", "hacluster-drill-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(cache)
	return nodebed.Main(m, nodebed.Options{Prefix: "dr", Upstream: true, Hosts: []nodebed.HostSpec{{Name: "cp-1"}, {Name: "cp-2"}, {Name: "cp-3"}, {Name: "worker-1"}}}, func(b *nodebed.Bed) { bed = b })
}

// cluster bootstraps the bed once and returns the cluster and its admin
// client configuration.
func cluster(t *testing.T) (*inventory.Cluster, *rest.Config) {
	t.Helper()
	if bed == nil {
		t.Skip("no node bed")
	}
	once.Do(func() {
		p := filepath.Join(cache, "cluster.yaml")
		if buildErr = os.WriteFile(p, []byte(bed.ClusterFile("bed", nodebed.SudoUser)), 0o600); buildErr != nil {
			return
		}
		if built, buildErr = inventory.Load(p); buildErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		var res *bootstrap.Result
		res, buildErr = bootstrap.Run(ctx, built, bootstrap.Options{Artifacts: &artifacts.Store{Dir: cache}, StateDir: filepath.Join(cache, "state"), Logf: t.Logf})
		if buildErr != nil {
			return
		}
		adminCfg, buildErr = clientcmd.BuildConfigFromFlags("", res.Kubeconfig)
		t.Logf("bootstrapped in %s: %s", res.Duration.Round(time.Second), res.Verdict)
	})
	if buildErr != nil {
		t.Fatalf("bootstrap: %v", buildErr)
	}
	return built, adminCfg
}

func runDrill(t *testing.T, o drill.Options) (*drill.Report, error) {
	t.Helper()
	c, cfg := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	fl, err := fleet.Connect(ctx, c, fleet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	o.RESTConfig, o.Fleet, o.Logf = cfg, fl, t.Logf
	return drill.Run(ctx, c, o)
}

// repeat is how many times the drills of the two targets run
// (HACLUSTER_DRILL_REPEAT, default 1); the bound applies to the median.
func repeat() int {
	if n, err := strconv.Atoi(os.Getenv("HACLUSTER_DRILL_REPEAT")); err == nil && n > 0 {
		return n
	}
	return 1
}

// powerSupply starts host again whenever it stops (a reboot inside a bed
// host ends its container: this is the machine coming back up).
func powerSupply(t *testing.T, h *nodebed.Host) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if st, err := h.State(ctx); err == nil && st == "exited" {
				t.Logf("power supply: %s is off, starting it", h.Name)
				if err := h.Start(ctx); err != nil && ctx.Err() == nil {
					t.Errorf("power supply: %v", err)
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	return func() { cancel(); <-done }
}

// crash: the bed kills the host's container (a power cut); undo starts it.
func crash() *drill.Injector {
	return &drill.Injector{Name: "crash", HostDown: true,
		Inject: func(ctx context.Context, host string) error { return bed.Host(host).Kill(ctx) },
		Undo:   func(ctx context.Context, host string) error { return bed.Host(host).Start(ctx) }}
}

// Each fault, on the VIP holder and (stop-apiserver) on another control
// plane: the drill measures an outage under the bound, the watch resumes,
// and the cluster is Healthy again after the undo.
func TestFailover(t *testing.T) {
	cases := []struct {
		name   string
		fault  string
		custom func() *drill.Injector
		other  bool // target a control plane that does not hold the VIP
		bound  time.Duration
		moves  bool // the VIP must leave the target
		target bool // one of the targets: repeated (HACLUSTER_DRILL_REPEAT)
	}{
		{name: "crash", custom: crash, bound: 3 * time.Second, moves: true, target: true},
		{name: "stop-apiserver-other", fault: drill.StopAPIServer, other: true, bound: time.Second, target: true},
		{name: "stop-apiserver", fault: drill.StopAPIServer, bound: time.Second},
		{name: "stop-haproxy", fault: drill.StopHAProxy, bound: 3 * time.Second, moves: true},
		{name: "stop-keepalived", fault: drill.StopKeepalived, bound: 3 * time.Second, moves: true},
		{name: "stop-kubelet", fault: drill.StopKubelet, bound: time.Second},
		{name: "reboot", fault: drill.Reboot, bound: 3 * time.Second, moves: true},
	}
	if f := os.Getenv("HACLUSTER_DRILL_LOOSE"); f == "1" {
		// Before the tuning: measure, with a bound that only catches a
		// failover that never happens.
		for i := range cases {
			cases[i].bound = 30 * time.Second
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := cluster(t)
			waitHealthy(t) // a failed case before leaves time to recover
			var downs, moved []int64
			n := 1
			if tc.target {
				n = repeat()
			}
			for i := range n {
				if i > 0 {
					waitHealthy(t) // the API server or kubelet of the last run may still settle
				}
				o := drill.Options{Fault: tc.fault, Hold: 8 * time.Second}
				if tc.custom != nil {
					o.Custom = tc.custom()
				}
				if tc.other {
					holder := vipHolder(t, c)
					for _, cp := range c.ControlPlanes() {
						if cp.Name != holder {
							o.Target = cp.Name
							break
						}
					}
				}
				if tc.fault == drill.Reboot {
					stop := powerSupply(t, bed.Host(vipHolder(t, c)))
					defer stop()
				}
				rep, err := runDrill(t, o)
				if rep != nil {
					t.Logf("run %d: %s on %s: downtime %dms (writes %dms, after the undo %dms), VIP %s -> %s at %s, reads failed %d/%d, watch gap %dms restarts %d, Healthy %dms after the undo; outages %+v; errors %q",
						i+1, rep.Fault, rep.Target, rep.DowntimeMillis, rep.Writes.DowntimeMillis, rep.UndoDowntimeMillis, rep.VIPHolderBefore, rep.VIPMovedTo, fmtMillis(rep.VIPMovedMillis),
						rep.Reads.Errors, rep.Reads.Requests, rep.Watch.LongestGapMillis, rep.Watch.Restarts, rep.HealthyAfterUndoMillis, rep.Outages, rep.Errors)
				}
				if err != nil {
					t.Fatalf("drill: %v", err)
				}
				if rep.Verdict != "Healthy" || !rep.Watch.Resumed {
					t.Errorf("after the drill: verdict %s, watch resumed %v", rep.Verdict, rep.Watch.Resumed)
				}
				if tc.moves && rep.VIPMovedMillis == nil {
					t.Errorf("the VIP did not leave %s", rep.Target)
				}
				if !tc.moves && rep.TargetHeldVIP == false && rep.VIPMovedMillis != nil {
					t.Errorf("the VIP moved (to %s) though its holder was not hit", rep.VIPMovedTo)
				}
				if tc.other && rep.TargetHeldVIP {
					t.Errorf("the target %s held the VIP", rep.Target)
				}
				downs = append(downs, rep.DowntimeMillis)
				if rep.VIPMovedMillis != nil {
					moved = append(moved, *rep.VIPMovedMillis)
				}
			}
			med := median(downs)
			t.Logf("%s: downtime median %dms of %v; VIP moved at %v (median %dms)", tc.name, med, downs, moved, median(moved))
			if time.Duration(med)*time.Millisecond >= tc.bound {
				t.Errorf("%s: median downtime %dms, want under %s", tc.name, med, tc.bound)
			}
		})
	}
}

// A drill on a Degraded cluster is refused and changes nothing.
func TestRefusedWhenDegraded(t *testing.T) {
	c, _ := cluster(t)
	ctx := context.Background()
	// The scheduler of a control plane that does not hold the VIP goes away.
	holder := vipHolder(t, c)
	var other *nodebed.Host
	for _, cp := range c.ControlPlanes() {
		if cp.Name != holder {
			other = bed.Host(cp.Name)
			break
		}
	}
	const m, stash = "/etc/kubernetes/manifests/kube-scheduler.yaml", "/etc/kubernetes/kube-scheduler.yaml.test"
	if out, err := other.Exec(ctx, "mv", m, stash); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if out, err := other.Exec(ctx, "mv", stash, m); err != nil {
				t.Errorf("%v %s", err, out)
			}
		}
	}
	defer restore()
	// inspect sees it first (a drill started before would run).
	_, cfg := cluster(t)
	src, err := inspect.NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for t0 := time.Now(); ; time.Sleep(2 * time.Second) {
		rep, err := inspect.Inspect(ctx, src, inspect.AnalyzeOptions{})
		if err == nil && rep.Verdict != inspect.Healthy {
			break
		}
		if time.Since(t0) > 2*time.Minute {
			t.Fatalf("still Healthy 2 minutes without the scheduler on %s: %v", other.Name, err)
		}
	}
	_, err = runDrill(t, drill.Options{Fault: drill.StopAPIServer})
	if !drill.IsRefused(err) || !strings.Contains(err.Error(), "kube-scheduler") {
		t.Fatalf("want a refusal naming kube-scheduler: %v", err)
	}
	t.Logf("refused: %v", err)
	for _, h := range c.ControlPlanes() {
		if out, _ := bed.Host(h.Name).Exec(ctx, "sh", "-c", "ls /etc/kubernetes/manifests; ls /etc/kubernetes/*.drill 2>/dev/null; true"); !strings.Contains(out, "kube-apiserver.yaml") || strings.Contains(out, ".drill") {
			t.Errorf("%s: the refused drill changed the manifests: %s", h.Name, out)
		}
	}
	restore()
	waitHealthy(t)
}

// Bad targets and faults are refused before anything changes.
func TestBadOptions(t *testing.T) {
	cluster(t)
	waitHealthy(t) // the target checks come after the Healthy one
	if _, err := runDrill(t, drill.Options{Fault: "unplug"}); err == nil || !strings.Contains(err.Error(), "not a fault") {
		t.Errorf("bad fault: %v", err)
	}
	if _, err := runDrill(t, drill.Options{Fault: drill.StopHAProxy, Target: "worker-1"}); err == nil || !strings.Contains(err.Error(), "not a control plane") {
		t.Errorf("worker target: %v", err)
	}
	if _, err := runDrill(t, drill.Options{Fault: drill.StopAPIServer, Target: "cp-9"}); err == nil || !strings.Contains(err.Error(), "not a host") {
		t.Errorf("unknown target: %v", err)
	}
}

func vipHolder(t *testing.T, c *inventory.Cluster) string {
	t.Helper()
	for _, cp := range c.ControlPlanes() {
		out, _ := bed.Host(cp.Name).Exec(context.Background(), "sh", "-c", "ip -4 -o addr show | grep -F ' "+bed.VIP.String()+"/' || true")
		if strings.TrimSpace(out) != "" {
			return cp.Name
		}
	}
	t.Fatal("no host holds the VIP")
	return ""
}

// waitHealthy: a drill whose only purpose is the Healthy check would change
// things, so this polls with a refused-or-not probe: a stop-kubelet drill
// with an impossible target is refused after the Healthy check.
func waitHealthy(t *testing.T) {
	t.Helper()
	var err error
	for t0 := time.Now(); time.Since(t0) < 3*time.Minute; time.Sleep(3 * time.Second) {
		_, err = runDrill(t, drill.Options{Fault: drill.StopKubelet, Target: "no-such-host"})
		if err != nil && strings.Contains(err.Error(), "not a host") {
			return
		}
	}
	t.Fatalf("not Healthy again: %v", err)
}

func median(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func fmtMillis(v *int64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatInt(*v, 10) + "ms"
}
