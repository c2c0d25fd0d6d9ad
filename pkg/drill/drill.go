// Package drill proves that the control-plane endpoint of a bootstrapped
// cluster fails over, and measures how long the API is unavailable through
// it. A drill: the cluster must be Healthy (pkg/inspect) and the fault must
// not cost etcd its quorum; the VIP holder is found over SSH; probes start
// through the endpoint (a read every ProbeInterval, each on a new connection
// as a new client would open, a write of a ConfigMap every 500 ms, and a
// watch of that ConfigMap that must resume after the fault); the fault is
// injected over SSH and held until the API has answered again for a while;
// then it is undone and the drill waits until inspect says Healthy again.
// Run returns what it measured: when the VIP moved, the first failed and the
// first good request after it, every outage window and the errors seen.
//
// It knows nothing of cobra (pkg/cmd/hacluster/drill is the command).
package drill

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/hacluster/hacluster/pkg/fleet"
	"github.com/hacluster/hacluster/pkg/inspect"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/remote"
)

// Faults a drill injects over SSH.
const (
	StopAPIServer  = "stop-apiserver"  // the kube-apiserver static pod manifest moved out of the kubelet's sight, then back
	StopHAProxy    = "stop-haproxy"    // systemctl stop haproxy, then start
	StopKeepalived = "stop-keepalived" // systemctl stop keepalived, then start
	StopKubelet    = "stop-kubelet"    // systemctl stop kubelet, then start (the static pods keep running)
	Reboot         = "reboot"          // systemctl reboot; undone by the host coming back
)

// Faults lists the faults in the order of the help text.
var Faults = []string{StopAPIServer, StopHAProxy, StopKeepalived, StopKubelet, Reboot}

// TargetVIPHolder targets whichever control plane holds the VIP when the
// drill starts.
const TargetVIPHolder = "vip-holder"

// Where stop-apiserver keeps the manifest while the fault is on: outside
// the directory the kubelet watches, on the same file system.
const (
	manifest      = "/etc/kubernetes/manifests/kube-apiserver.yaml"
	stashManifest = "/etc/kubernetes/kube-apiserver.yaml.drill"
)

// Injector is a fault that the caller makes and undoes itself (the node
// bed kills a host's container and starts it again).
type Injector struct {
	Name string
	// HostDown: the fault takes the whole host away (its etcd member too),
	// and the SSH connection to it is made again after Undo.
	HostDown bool
	Inject   func(ctx context.Context, host string) error
	Undo     func(ctx context.Context, host string) error
}

// Options of Run.
type Options struct {
	// Fault is one of Faults; Custom replaces it.
	Fault  string
	Custom *Injector
	// Target is TargetVIPHolder (default) or a host name of the cluster file.
	Target string
	// ProbeInterval between reads (default 100 ms); RequestTimeout of each
	// request (default 1 s).
	ProbeInterval  time.Duration
	RequestTimeout time.Duration
	// Hold is the least time the fault stays on (default 10 s); it stays
	// on longer until the reads have answered for 3 s in a row (at most
	// 2 minutes more).
	Hold time.Duration
	// RecoverTimeout bounds the wait for Healthy after the undo (default 5m).
	RecoverTimeout time.Duration
	// Settle is how long a cluster that is not Healthy at the start is given
	// to become Healthy before the drill is refused (default 30 s; negative:
	// refuse at once). A static pod restarted a moment ago can still turn not
	// Ready once, and a drill should not be refused for that.
	Settle time.Duration
	// RESTConfig is an admin client configuration for the cluster; its
	// server is replaced by the cluster file's endpoint.
	RESTConfig *rest.Config
	// Fleet is the cluster's hosts, connected (fleet.Connect). Run replaces
	// the connection of a host that went down.
	Fleet *fleet.Fleet
	// AcceptNewHostKeys, for the reconnections.
	AcceptNewHostKeys bool
	// Logf reports progress (stderr).
	Logf func(format string, args ...any)
}

// RefusedError is a drill that did not start: the cluster is not Healthy,
// the fault would cost etcd its quorum, or a previous drill left a fault.
// Nothing was changed.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return "drill refused: " + e.Reason }

// IsRefused reports whether err is a RefusedError.
func IsRefused(err error) bool {
	var r *RefusedError
	return errors.As(err, &r)
}

type drill struct {
	c       *inventory.Cluster
	o       Options
	fault   fault
	vip     string
	cfg     *rest.Config
	src     *inspect.Source
	rep     Report
	t0      time.Time // the fault
	connsMu sync.Mutex
}

func (d *drill) conn(host string) *remote.Conn {
	d.connsMu.Lock()
	defer d.connsMu.Unlock()
	return d.o.Fleet.Conns[host]
}

// Run runs one drill on cluster c. A refused drill returns a *RefusedError
// and no report; a drill that ran returns its report, with an error when
// the fault could not be undone or the cluster did not become Healthy
// again.
func Run(ctx context.Context, c *inventory.Cluster, o Options) (*Report, error) {
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = 100 * time.Millisecond
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = time.Second
	}
	if o.Hold <= 0 {
		o.Hold = 10 * time.Second
	}
	if o.RecoverTimeout <= 0 {
		o.RecoverTimeout = 5 * time.Minute
	}
	if o.Settle == 0 {
		o.Settle = 30 * time.Second
	}
	if o.Target == "" {
		o.Target = TargetVIPHolder
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.RESTConfig == nil || o.Fleet == nil {
		return nil, errors.New("drill: RESTConfig and Fleet are required")
	}
	d := &drill{c: c, o: o, vip: c.Spec.ControlPlaneEndpoint.VIP}
	if err := d.prepare(ctx); err != nil {
		return nil, err
	}
	return d.run(ctx)
}

// prepare checks everything before the drill changes anything.
func (d *drill) prepare(ctx context.Context) error {
	c := d.c
	if d.vip == "" {
		return &RefusedError{"the cluster file has no controlPlaneEndpoint.vip: a drill fails over the VIP that bootstrap's keepalived holds"}
	}
	f, err := newFault(d.o)
	if err != nil {
		return err
	}
	d.fault = f
	cps := c.ControlPlanes()
	if len(cps) < 2 {
		return &RefusedError{fmt.Sprintf("%d control plane: nothing to fail over to", len(cps))}
	}
	cfg := rest.CopyConfig(d.o.RESTConfig)
	cfg.Host = (&url.URL{Scheme: "https", Host: c.Endpoint()}).String()
	cfg.Timeout = 15 * time.Second
	cfg.UserAgent = "kubectl-hacluster-drill"
	d.cfg = cfg
	if d.src, err = inspect.NewSource(cfg); err != nil {
		return err
	}
	d.rep = Report{APIVersion: inspect.APIVersion, Kind: "FailoverDrill", Cluster: c.Metadata.Name, Endpoint: c.Endpoint(),
		Fault: f.name, ProbeIntervalMillis: d.o.ProbeInterval.Milliseconds(), RequestTimeoutMillis: d.o.RequestTimeout.Milliseconds()}

	d.o.Logf("checking that the cluster is Healthy (inspect components through %s)", c.Endpoint())
	rep, err := d.healthyAtStart(ctx)
	if err != nil {
		return err
	}
	holders, err := d.vipHolders(ctx)
	if err != nil {
		return err
	}
	if len(holders) != 1 {
		return &RefusedError{fmt.Sprintf("the VIP %s is on %d hosts (%s), not one", d.vip, len(holders), strings.Join(holders, ", "))}
	}
	d.rep.VIPHolderBefore = holders[0]
	target := d.o.Target
	if target == TargetVIPHolder {
		target = holders[0]
	}
	var host *inventory.Host
	for i := range c.Spec.Hosts {
		if c.Spec.Hosts[i].Name == target {
			host = &c.Spec.Hosts[i]
		}
	}
	if host == nil {
		var names []string
		for _, h := range c.Spec.Hosts {
			names = append(names, h.Name)
		}
		return fmt.Errorf("--target %q: not a host of %s (%s, or %s)", target, c.Metadata.Name, strings.Join(names, ", "), TargetVIPHolder)
	}
	if f.controlPlaneOnly && !host.HasRole(inventory.RoleControlPlane) {
		return fmt.Errorf("--fault %s: %s is not a control plane", f.name, target)
	}
	d.rep.Target = target
	d.rep.TargetHeldVIP = target == holders[0]
	// The fault must leave etcd its quorum.
	if f.stopsEtcd && slices.Contains(rep.Etcd.MemberNodes, target) && rep.Etcd.ToleratesFailures < 1 {
		return &RefusedError{fmt.Sprintf("%s on %s would lose etcd quorum: %d of %d members up, quorum %d, tolerates %d failure(s)",
			f.name, target, rep.Etcd.ReadyMembers, rep.Etcd.Members, rep.Etcd.Quorum, rep.Etcd.ToleratesFailures)}
	}
	// A previous drill killed half-way may have left its fault.
	if out, err := d.conn(target).Output(ctx, "test -e "+stashManifest+" && echo left || true", true); err != nil {
		return err
	} else if strings.TrimSpace(out) == "left" {
		return &RefusedError{fmt.Sprintf("%s: a previous drill left the API server's manifest at %s; put it back first: sudo mv %s %s", target, stashManifest, stashManifest, manifest)}
	}
	return nil
}

// vipHolders asks every control plane whether it has the VIP.
func (d *drill) vipHolders(ctx context.Context) ([]string, error) {
	var mu sync.Mutex
	var holders []string
	var errs []error
	var wg sync.WaitGroup
	for _, h := range d.c.ControlPlanes() {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			out, err := d.conn(h.Name).Output(ctx, vipScript(d.vip), false)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if strings.TrimSpace(out) != "" {
				holders = append(holders, h.Name)
			}
		})
	}
	wg.Wait()
	slices.Sort(holders)
	return holders, errors.Join(errs...)
}

func vipScript(vip string) string {
	return "ip -4 -o addr show | grep -F " + remote.Quote(" "+vip+"/") + " || true"
}

func (d *drill) run(ctx context.Context) (*Report, error) {
	o := d.o
	pctx, stopProbes := context.WithCancel(ctx)
	defer stopProbes()
	p, err := startProbes(pctx, d.cfg, o.ProbeInterval, o.RequestTimeout)
	if err != nil {
		return nil, err
	}
	defer p.cleanup()
	vw := startVIPWatch(pctx, d)
	// A baseline: the probes answer before the fault.
	o.Logf("probing through %s every %s (requests time out after %s); VIP %s on %s", d.c.Endpoint(), o.ProbeInterval, o.RequestTimeout, d.vip, d.rep.VIPHolderBefore)
	if err := p.waitGood(ctx, 2*time.Second, 30*time.Second); err != nil {
		return nil, &RefusedError{"the API does not answer through the endpoint before the fault: " + err.Error()}
	}
	d.rep.StartedAt = time.Now().UTC()
	o.Logf("fault: %s on %s", d.fault.name, d.rep.Target)
	d.t0 = time.Now()
	p.setEpoch(d.t0)
	vw.setEpoch(d.t0)
	injectErr := d.fault.inject(ctx, d, d.rep.Target)
	if injectErr != nil {
		o.Logf("the fault failed: %v; undoing it", injectErr)
	} else {
		// Hold: at least Hold, and until the reads have been good for 3 s.
		deadline := time.Now().Add(o.Hold + 2*time.Minute)
		for time.Since(d.t0) < o.Hold || (!p.goodFor(3*time.Second) && time.Now().Before(deadline)) {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	undoAt := time.Now()
	d.rep.UndoAtMillis = undoAt.Sub(d.t0).Milliseconds()
	o.Logf("undo: %s on %s (%s after the fault)", d.fault.name, d.rep.Target, undoAt.Sub(d.t0).Round(time.Millisecond))
	undoErr := d.fault.undo(ctx, d, d.rep.Target)
	if undoErr == nil && d.fault.hostDown {
		if undoErr = d.reconnect(ctx, d.rep.Target); undoErr == nil {
			vw.restart(d.rep.Target)
		}
	}
	var healthyErr error
	if undoErr == nil {
		healthyErr = d.waitHealthy(ctx, undoAt)
	}
	// The last reads and events after Healthy, then the measures.
	time.Sleep(time.Second)
	stopProbes()
	p.wait()
	vw.wait()
	d.measure(p, vw, undoAt)
	if holders, err := d.vipHolders(ctx); err == nil {
		d.rep.VIPHolderAfter = strings.Join(holders, ",")
	}
	err = errors.Join(wrapErr("inject", injectErr), wrapErr("undo", undoErr), healthyErr)
	if err == nil && !d.rep.Watch.Resumed {
		err = errors.New("the watch through the endpoint did not resume after the fault")
	}
	return &d.rep, err
}

func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// nodeLeases are the renew times of the kubelets' Leases.
func (d *drill) nodeLeases(ctx context.Context) (map[string]time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	l, err := d.src.Client.CoordinationV1().Leases("kube-node-lease").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	m := map[string]time.Time{}
	for _, x := range l.Items {
		if x.Spec.RenewTime != nil {
			m[x.Name] = x.Spec.RenewTime.Time
		}
	}
	return m, nil
}

// healthyAtStart: Healthy now, or within Settle, or a RefusedError with the
// last verdict's reasons.
func (d *drill) healthyAtStart(ctx context.Context) (*inspect.Report, error) {
	deadline := time.Now().Add(d.o.Settle)
	for said := false; ; {
		rep, err := inspect.Inspect(ctx, d.src, inspect.AnalyzeOptions{})
		if err == nil && rep.Verdict == inspect.Healthy {
			return rep, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return nil, &RefusedError{err.Error()}
			}
			return nil, &RefusedError{fmt.Sprintf("the cluster is %s, not Healthy: %s (see kubectl hacluster inspect components)", rep.Verdict, strings.Join(rep.Reasons, "; "))}
		}
		if !said {
			said = true
			d.o.Logf("  not Healthy yet, waiting up to %s for it to settle", d.o.Settle)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// waitHealthy polls inspect until Healthy, and until every kubelet has
// renewed its Lease since the undo: a kubelet that lost its API server
// during the fault turns its node NotReady only when its Lease expires,
// after a first Healthy verdict.
func (d *drill) waitHealthy(ctx context.Context, undoAt time.Time) error {
	deadline := time.Now().Add(d.o.RecoverTimeout)
	last := ""
	var before map[string]time.Time
	healthyOnce := false
	for before == nil && time.Now().Before(deadline) {
		if before, _ = d.nodeLeases(ctx); before == nil {
			time.Sleep(time.Second)
		}
	}
	for {
		rep, err := inspect.Inspect(ctx, d.src, inspect.AnalyzeOptions{})
		if err == nil && rep.Verdict == inspect.Healthy {
			var stale []string
			if now, lerr := d.nodeLeases(ctx); lerr != nil {
				stale = []string{lerr.Error()}
			} else {
				for n, t := range before {
					if !now[n].After(t) {
						stale = append(stale, n)
					}
				}
			}
			if len(stale) > 0 {
				slices.Sort(stale)
				err = fmt.Errorf("inspect says Healthy, but the kubelet Lease of %s is not renewed since the undo yet", strings.Join(stale, ", "))
			}
		}
		if err == nil && rep.Verdict == inspect.Healthy && !healthyOnce {
			// Once more: a restarted static pod can still turn not Ready
			// right after its first Ready.
			healthyOnce = true
			err = errors.New("inspect said Healthy once; checking again")
		} else if err != nil || rep.Verdict != inspect.Healthy {
			healthyOnce = false
		}
		if err == nil && rep.Verdict == inspect.Healthy {
			d.rep.Verdict = rep.Verdict
			d.rep.HealthyAfterUndoMillis = time.Since(undoAt).Milliseconds()
			d.o.Logf("Healthy again %s after the undo", time.Since(undoAt).Round(time.Millisecond))
			return nil
		}
		now := ""
		if err != nil {
			now = err.Error()
		} else {
			now = rep.Verdict + ": " + strings.Join(rep.Reasons, "; ")
			d.rep.Verdict = rep.Verdict
		}
		if now != last {
			d.o.Logf("  waiting for Healthy (%s)", firstLine(now))
			last = now
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster is not Healthy %s after the undo: %s", d.o.RecoverTimeout, now)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// reconnect waits until SSH reaches host again (after a reboot or a crash)
// and replaces its connection.
func (d *drill) reconnect(ctx context.Context, host string) error {
	var h inventory.Host
	for _, x := range d.c.Spec.Hosts {
		if x.Name == host {
			h = x
		}
	}
	t, err := fleet.Target(d.c, h, d.o.AcceptNewHostKeys)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(d.o.RecoverTimeout)
	for {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := remote.Dial(dctx, t)
		if err == nil {
			_, err = c.Output(dctx, "true", false)
		}
		cancel()
		if err == nil {
			d.connsMu.Lock()
			old := d.o.Fleet.Conns[host]
			d.o.Fleet.Conns[host] = c
			d.connsMu.Unlock()
			if old != nil {
				old.Close()
			}
			d.o.Logf("%s answers SSH again", host)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not answer SSH %s after the undo: %v", host, d.o.RecoverTimeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}
