package bootstrap

// Join adds hosts to a cluster that bootstrap built: the same phases on the
// new hosts only, with the running cluster as the reference. The phases, in
// order (Join below reads the same):
//
//	connect        SSH to every host of the file, host keys checked
//	facts          what each host is (the cross-host checks need them all)
//	preflight      bootstrap's checks, the running hosts included
//	members        a Node or etcd member that already has a new host's name
//	               or address is stale state: refused, or noted for --replace
//	inventory      Options.Commit (the command writes the cluster file)
//	replace        the stale etcd members removed (etcdctl in a healthy etcd
//	               Pod), then the stale Nodes deleted
//	download       as bootstrap
//	prepare, runtime, kube-binaries  on the new hosts only
//	load-balancer  HAProxy's backends and keepalived's peers on every control
//	               plane, one host at a time, the running ones first
//	join-control-planes  the new control planes, one at a time
//	join-workers   the new workers, in parallel
//	nodes-ready    every node Ready
//	coredns        CoreDNS spread over two nodes again (a replaced node's
//	               replica may have landed beside the other)
//	verify         pkg/inspect's verdict: Healthy, with an even etcd size a warning

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hacluster/hacluster/pkg/facts"
	"github.com/hacluster/hacluster/pkg/fleet"
	"github.com/hacluster/hacluster/pkg/inspect"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/remote"
)

// JoinOptions of Join.
type JoinOptions struct {
	Options
	// Hosts name the hosts of the cluster file to join; the others are the
	// running cluster (at least one of its control planes must answer).
	Hosts []string
	// Replace removes a stale Node or etcd member that has a new host's name
	// or address (a dead control plane replaced) instead of refusing.
	Replace bool
	// Commit runs once every check has passed, before any host is changed.
	Commit func() error
}

// JoinPhases are Join's phase names, in order (Options.Until takes one).
var JoinPhases = []string{"connect", "facts", "preflight", "members", "inventory", "replace", "download", "prepare", "runtime", "kube-binaries", "load-balancer", "join-control-planes", "join-workers", "nodes-ready", "coredns", "verify"}

// Join joins o.Hosts to the cluster c describes.
func Join(ctx context.Context, c *inventory.Cluster, o JoinOptions) (*Result, error) {
	r := &run{c: c, o: o.Options, tolerate: tolerance(c, true)}
	for _, name := range o.Hosts {
		i := slices.IndexFunc(c.Spec.Hosts, func(h inventory.Host) bool { return h.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("%s is not a host of %s", name, c.Metadata.Name)
		}
		r.joining = append(r.joining, c.Spec.Hosts[i])
	}
	if len(r.joining) == 0 {
		return nil, errors.New("no host to join")
	}
	for _, cp := range c.ControlPlanes() {
		if !slices.Contains(o.Hosts, cp.Name) {
			r.first = cp.Name
			break
		}
	}
	if r.first == "" {
		return nil, fmt.Errorf("every control plane of %s is being joined: the cluster needs one that runs (bootstrap builds a new one)", c.Metadata.Name)
	}
	if r.o.Logf == nil {
		r.o.Logf = func(string, ...any) {}
	}
	t0 := time.Now()
	defer func() { r.res.Duration = time.Since(t0) }()
	defer func() {
		if r.fleet != nil {
			r.fleet.Close()
		}
	}()
	var stale []staleState
	checkMembers := func(ctx context.Context) (err error) {
		stale, err = r.checkStale(ctx, o.Replace || r.o.DryRun)
		return err
	}
	if r.o.DryRun {
		// Read-only, as bootstrap's: no journal, no download, no Commit.
		err := r.sequence(ctx,
			step{"connect", r.connectJoin},
			step{"facts", r.gatherFacts},
			step{"preflight", r.preflight},
			step{"members", checkMembers},
			step{"plan", func(ctx context.Context) error { return r.planJoin(ctx, stale, o.Replace) }},
		)
		return &r.res, err
	}
	var err error
	if r.journal, err = openJournal(r.stateDir(), t0); err != nil {
		return nil, err
	}
	defer r.journal.close()
	r.res.Journal = r.journal.path
	err = r.sequence(ctx,
		step{"connect", r.connectJoin},
		step{"facts", r.gatherFacts},
		step{"preflight", r.preflight},
		step{"members", checkMembers},
		step{"inventory", func(context.Context) error { return commit(o.Commit) }},
		step{"replace", func(ctx context.Context) error { return r.removeStale(ctx, "replace", stale) }},
		step{"download", r.download},
		step{"prepare", r.onHosts("prepare", r.joining, r.prepare)},
		step{"runtime", r.onHosts("runtime", r.joining, r.runtime)},
		step{"kube-binaries", r.onHosts("kube-binaries", r.joining, r.kubeBinaries)},
		step{"load-balancer", r.joinLoadBalancer},
		step{"join-control-planes", r.joinNewControlPlanes},
		step{"join-workers", r.joinNewWorkers},
		step{"nodes-ready", r.nodesReady},
		step{"coredns", r.spreadCoreDNS},
		step{"verify", r.verifyJoin},
	)
	r.journal.finish(err, r.stopped)
	return &r.res, err
}

// connectJoin connects to every host of the file. A running host that does
// not answer SSH is left out of the run, with a warning, when the join can
// do without it (deadHostsAllowed); the cross-host checks then skip it.
func (r *run) connectJoin(ctx context.Context) error {
	err := r.connect(ctx)
	if err == nil {
		return nil
	}
	dead := make([]bool, len(r.c.Spec.Hosts))
	var wg sync.WaitGroup
	for i, h := range r.c.Spec.Hosts {
		wg.Go(func() {
			fl, err := r.dialOne(ctx, h)
			if err != nil {
				dead[i] = true
				return
			}
			fl.Close()
		})
	}
	wg.Wait()
	var gone []string
	alive := *r.c
	alive.Spec.Hosts = nil
	for i, h := range r.c.Spec.Hosts {
		if dead[i] {
			gone = append(gone, h.Name)
		} else {
			alive.Spec.Hosts = append(alive.Spec.Hosts, h)
		}
	}
	if len(gone) == 0 {
		return err // not a dead host: a key refused, a login failed
	}
	if perr := deadHostsAllowed(r.c, r.joining, gone); perr != nil {
		return fmt.Errorf("%w (%v)", perr, strings.SplitN(err.Error(), "\n", 2)[0])
	}
	if slices.Contains(gone, r.first) {
		for _, cp := range alive.ControlPlanes() {
			if !r.isJoining(cp.Name) {
				r.first = cp.Name
				break
			}
		}
	}
	r.c, r.dead = &alive, gone
	w := fmt.Sprintf("not answering SSH: %s; the join goes on without (the cross-host checks skip them, inspect's verdict is reported, not required)", strings.Join(gone, ", "))
	r.res.Warnings = append(r.res.Warnings, w)
	r.o.Logf("  warning: %s", w)
	return r.connect(ctx)
}

// dialOne connects to h alone, given 15 s: join and remove use it to tell
// a host that does not answer from the others.
func (r *run) dialOne(ctx context.Context, h inventory.Host) (*fleet.Fleet, error) {
	one := *r.c
	one.Spec.Hosts = []inventory.Host{h}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return fleet.Connect(cctx, &one, fleet.Options{AcceptNewHostKeys: r.o.AcceptNewHostKeys})
}

// deadHostsAllowed says whether a join can go on with the hosts dead not
// answering: never a host to join; never every running control plane; and
// no dead control plane while a control plane joins (its load balancer
// needs the new backend, and kubeadm's check-etcd refuses while an etcd
// member is down).
func deadHostsAllowed(c *inventory.Cluster, joining []inventory.Host, dead []string) error {
	cpJoins := false
	for _, h := range joining {
		if slices.Contains(dead, h.Name) {
			return fmt.Errorf("%s does not answer SSH at %s: a host to join must", h.Name, h.Address)
		}
		cpJoins = cpJoins || isControlPlane(h)
	}
	running := 0
	for _, cp := range c.ControlPlanes() {
		if slices.ContainsFunc(joining, func(h inventory.Host) bool { return h.Name == cp.Name }) {
			continue
		}
		if !slices.Contains(dead, cp.Name) {
			running++
			continue
		}
		if cpJoins {
			return fmt.Errorf("control plane %s does not answer SSH: a control plane joins only when all answer (every load balancer gets the new backend, and kubeadm refuses while an etcd member is down); replace it first (kubectl hacluster join %s=NEW-ADDRESS --control-plane --replace) or take it out (kubectl hacluster remove %s)", cp.Name, cp.Name, cp.Name)
		}
	}
	if running == 0 {
		return fmt.Errorf("no control plane of %s answers SSH", c.Metadata.Name)
	}
	return nil
}

func commit(fn func() error) error {
	if fn == nil {
		return nil
	}
	return fn()
}

// staleState is a Node or an etcd member in the way of a new host.
type staleState struct {
	host   string
	node   string // a Node of the host's name or address
	member *inspect.EtcdMember
	via    *inspect.EtcdMembership
}

func (s staleState) String() string {
	if s.member != nil {
		return fmt.Sprintf("etcd member %s (%s, %s)", s.member.Name, s.member.ID, strings.Join(s.member.PeerURLs, ","))
	}
	return "Node " + s.node
}

// checkStale finds the Nodes and etcd members that have a new host's name or
// address. A host that has started to join (its own Node, its own learner)
// is not new: the join resumes.
func (r *run) checkStale(ctx context.Context, replace bool) ([]staleState, error) {
	cs, err := r.kube(ctx)
	if err != nil {
		return nil, err
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var fresh []inventory.Host
	for _, h := range r.joining {
		if r.joinState(ctx, h, r.fleet.Conns[h.Name], isControlPlane(h)) == absent {
			fresh = append(fresh, h)
		}
	}
	var stale []staleState
	var membership *inspect.EtcdMembership
	for _, h := range fresh {
		for _, n := range nodes.Items {
			if n.Name == h.Name || slices.ContainsFunc(n.Status.Addresses, func(a corev1.NodeAddress) bool {
				return a.Type == corev1.NodeInternalIP && a.Address == h.InternalAddress
			}) {
				stale = append(stale, staleState{host: h.Name, node: n.Name})
			}
		}
		if !isControlPlane(h) {
			continue
		}
		if membership == nil {
			if membership, err = r.etcdMembership(ctx); err != nil {
				return nil, fmt.Errorf("reading etcd's members to check that none is %s's: %w", h.Name, err)
			}
		}
		for i, m := range membership.Members {
			if m.Name == h.Name || slices.ContainsFunc(m.PeerURLs, func(u string) bool { return urlHostname(u) == h.InternalAddress }) {
				stale = append(stale, staleState{host: h.Name, member: &membership.Members[i], via: membership})
			}
		}
	}
	for _, s := range stale {
		r.o.Logf("  %-12s stale     %s", s.host, s)
	}
	if len(stale) > 0 && !replace {
		var lines []string
		for _, s := range stale {
			lines = append(lines, fmt.Sprintf("%s: %s already exists", s.host, s))
		}
		return nil, fmt.Errorf("%s; nothing was changed. A dead host being replaced: run again with --replace (it removes them first); a node still in use: kubectl hacluster remove it, or give the new host another name and address", strings.Join(lines, "; "))
	}
	r.record(PhaseResult{Phase: "members", Detail: fmt.Sprintf("%d stale Node(s) or etcd member(s)", len(stale))})
	return stale, nil
}

// planJoin is join's dry run: the new hosts' plan as bootstrap's, the
// running control planes' load-balancer files when a control plane joins,
// and the stale state --replace would remove (or that stops the join
// without it).
func (r *run) planJoin(ctx context.Context, stale []staleState, replace bool) error {
	hosts := slices.Clone(r.joining)
	cpJoins := slices.ContainsFunc(r.joining, isControlPlane)
	if cpJoins && r.c.Spec.ControlPlaneEndpoint.VIP != "" {
		for _, cp := range r.c.ControlPlanes() {
			if !r.isJoining(cp.Name) {
				hosts = append(hosts, cp)
			}
		}
	}
	plans, err := r.planHosts(ctx, hosts)
	if err != nil {
		return err
	}
	for i := range plans {
		if r.isJoining(plans[i].Host) {
			var pre []Action
			for _, s := range stale {
				if s.host != plans[i].Host {
					continue
				}
				var what string
				switch {
				case !replace:
					what = "REFUSED without --replace: " + s.String() + " already exists"
				case s.member != nil && s.via.Pod == "etcd-"+s.member.Name:
					what = "REFUSED: " + s.String() + " answers in its own Pod: the host still runs"
				case s.member != nil:
					what = "remove the stale " + s.String() + " through " + s.via.Pod
				default:
					what = "delete the stale Node " + s.node
				}
				if strings.HasPrefix(what, "REFUSED") {
					r.res.Warnings = append(r.res.Warnings, fmt.Sprintf("%s: %s (the join would stop at members)", s.host, what))
				}
				pre = append(pre, Action{Phase: "replace", What: what})
			}
			plans[i].Actions = append(pre, plans[i].Actions...)
			continue
		}
		// A running control plane: join changes its load balancer only.
		plans[i].Actions = slices.DeleteFunc(plans[i].Actions, func(a Action) bool { return a.Phase != "load-balancer" })
		plans[i].Files = slices.DeleteFunc(plans[i].Files, func(f FileDiff) bool { return f.Phase != "load-balancer" })
	}
	r.res.Plan = plans
	return nil
}

// etcdMembership is etcd's member list, read with etcdctl in an etcd Pod.
func (r *run) etcdMembership(ctx context.Context) (*inspect.EtcdMembership, error) {
	cs, err := r.kube(ctx)
	if err != nil {
		return nil, err
	}
	pods, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "component=etcd"})
	if err != nil {
		return nil, err
	}
	rd := &inspect.EtcdctlReader{Exec: inspect.NewPodExec(r.kubeConfig, cs)}
	return rd.ReadMembership(ctx, pods.Items)
}

func urlHostname(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// removeStale removes the stale etcd members first (a Node deleted first
// takes the etcd Pod's mirror with it, not the member), then the Nodes.
func (r *run) removeStale(ctx context.Context, phase string, stale []staleState) error {
	if len(stale) == 0 {
		return nil
	}
	cs, err := r.kube(ctx)
	if err != nil {
		return err
	}
	exec := inspect.NewPodExec(r.kubeConfig, cs)
	removed := map[string]bool{}
	for _, s := range stale {
		if s.member == nil || removed[s.member.ID] {
			continue
		}
		t0 := time.Now()
		pod := s.via.Pod
		if pod == "etcd-"+s.member.Name {
			// etcdctl answered there: the member's own host still runs.
			return fmt.Errorf("etcd member %s answers in its own Pod %s: the host still runs; take it out with kubectl hacluster remove %s first", s.member.Name, pod, s.member.Name)
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, stderr, err := exec(cctx, "kube-system", pod, "etcd", append(slices.Clone(s.via.Command), "member", "remove", s.member.ID))
		cancel()
		if err != nil {
			return fmt.Errorf("etcdctl member remove %s in %s: %w %s", s.member.ID, pod, err, strings.TrimSpace(string(stderr)))
		}
		removed[s.member.ID] = true
		detail := fmt.Sprintf("etcd member %s (%s) removed through %s", s.member.Name, s.member.ID, pod)
		r.record(PhaseResult{Phase: phase, Host: s.host, Changed: true, Detail: detail, Duration: time.Since(t0)})
		r.o.Logf("  %-12s changed   %s", s.host, detail)
	}
	for _, s := range stale {
		if s.node == "" || removed["node/"+s.node] {
			continue
		}
		t0 := time.Now()
		err := cs.CoreV1().Nodes().Delete(ctx, s.node, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting Node %s: %w", s.node, err)
		}
		removed["node/"+s.node] = true
		r.record(PhaseResult{Phase: phase, Host: s.host, Changed: true, Detail: "Node " + s.node + " deleted", Duration: time.Since(t0)})
		r.o.Logf("  %-12s changed   Node %s deleted", s.host, s.node)
	}
	return nil
}

// joinLoadBalancer is rollingLoadBalancer when a control plane joins; new
// workers change no load balancer.
func (r *run) joinLoadBalancer(ctx context.Context) error {
	if !slices.ContainsFunc(r.joining, isControlPlane) {
		r.record(PhaseResult{Phase: "load-balancer", Detail: "no control plane joins: the load balancers keep their backends"})
		return nil
	}
	return r.rollingLoadBalancer(ctx)
}

// rollingLoadBalancer: the load balancer of every control plane for the
// file's control planes, one host at a time so that the VIP always has a
// working HAProxy behind it; the running control planes first, so that
// their keepalived knows a new peer before that peer's keepalived starts
// (unicast VRRP: a peer nobody sends adverts to takes the VIP).
func (r *run) rollingLoadBalancer(ctx context.Context) error {
	if r.c.Spec.ControlPlaneEndpoint.VIP == "" {
		r.record(PhaseResult{Phase: "load-balancer", Detail: "external load balancer " + r.c.Spec.ControlPlaneEndpoint.LoadBalancer + ": add the new control planes to it yourself"})
		return nil
	}
	var order []inventory.Host
	for _, cp := range r.c.ControlPlanes() {
		if !r.isJoining(cp.Name) {
			order = append(order, cp)
		}
	}
	for _, cp := range r.c.ControlPlanes() {
		if r.isJoining(cp.Name) {
			order = append(order, cp)
		}
	}
	for _, cp := range order {
		if err := r.onHosts("load-balancer", []inventory.Host{cp}, r.lbHost)(ctx); err != nil {
			return err
		}
	}
	return r.waitVIP(ctx)
}

func (r *run) isJoining(name string) bool {
	return slices.ContainsFunc(r.joining, func(h inventory.Host) bool { return h.Name == name })
}

// joinNewControlPlanes joins the new control planes one at a time.
func (r *run) joinNewControlPlanes(ctx context.Context) error {
	for _, h := range r.joining {
		if isControlPlane(h) {
			if err := r.join(ctx, h, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// joinNewWorkers joins the new workers in parallel; then the tokens have no
// use left.
func (r *run) joinNewWorkers(ctx context.Context) error {
	var workers []inventory.Host
	for _, h := range r.joining {
		if !isControlPlane(h) {
			workers = append(workers, h)
		}
	}
	err := r.onHosts("join-workers", workers, func(ctx context.Context, h inventory.Host, _ *remote.Conn, _ *facts.Facts) (bool, string, error) {
		return r.joinIfNeeded(ctx, h, false)
	})(ctx)
	if err != nil {
		return err
	}
	r.deleteRunTokens(ctx)
	return nil
}

// verifyJoin is verify, and a warning for an even number of etcd members
// (4 tolerate one failure, as 3 do, with one more member to lose).
func (r *run) verifyJoin(ctx context.Context) error {
	if len(r.dead) > 0 {
		return r.verifyReported(ctx, strings.Join(r.dead, ", ")+" not answering")
	}
	if err := r.verify(ctx); err != nil {
		return err
	}
	if n := r.etcdMembers; n > 0 && n%2 == 0 {
		w := fmt.Sprintf("etcd has %d members now: an even number tolerates no more failures than %d members do; join or remove a control plane to make it odd", n, n-1)
		r.res.Warnings = append(r.res.Warnings, w)
		r.o.Logf("  warning: %s", w)
	}
	return nil
}

// JoinCommands are the kubeadm join command lines for people who run kubeadm
// themselves (`join --print`), with the expiry of each secret in them.
type JoinCommands struct {
	Endpoint     string    `json:"endpoint"`
	Worker       string    `json:"worker"`
	TokenExpires time.Time `json:"tokenExpires"`
	// ControlPlane is the --control-plane variant with a fresh certificate
	// key; the certificates it unlocks (the kubeadm-certs Secret) are
	// deleted 2 hours after the upload.
	ControlPlane          string     `json:"controlPlane,omitempty"`
	CertificateKeyExpires *time.Time `json:"certificateKeyExpires,omitempty"`
	// Via is the control plane the token and upload came through.
	Via string `json:"via"`
}

// printTokenDescription marks the tokens `join --print` makes: bootstrap and
// join delete their own when done, never these.
const printTokenDescription = "kubectl hacluster join --print"

// certsTTL is how long kubeadm keeps the kubeadm-certs Secret.
const certsTTL = 2 * time.Hour

// PrintJoin makes a bootstrap token (ttl) through the API and, for
// controlPlane, uploads the certificates again with a new key, through the
// first control plane of c that answers SSH.
func PrintJoin(ctx context.Context, c *inventory.Cluster, o Options, controlPlane bool, ttl time.Duration) (*JoinCommands, error) {
	r := &run{c: c, o: o}
	if r.o.Logf == nil {
		r.o.Logf = func(string, ...any) {}
	}
	var errs []error
	for _, cp := range c.ControlPlanes() {
		fl, err := r.dialOne(ctx, cp)
		if err != nil {
			r.o.Logf("  %s: %v", cp.Name, err)
			errs = append(errs, err)
			continue
		}
		r.o.Logf("  connected to %s", cp.Name)
		r.fleet, r.first = fl, cp.Name
		break
	}
	if r.fleet == nil {
		return nil, fmt.Errorf("no control plane answers: %w", errors.Join(errs...))
	}
	defer r.fleet.Close()
	cs, err := r.kube(ctx)
	if err != nil {
		return nil, err
	}
	t, err := createToken(ctx, cs, ttl, printTokenDescription, time.Minute)
	if err != nil {
		return nil, err
	}
	ep := c.Endpoint()
	out := &JoinCommands{Endpoint: ep, Via: r.first, TokenExpires: t.Expires,
		Worker: fmt.Sprintf("kubeadm join %s --token %s --discovery-token-ca-cert-hash %s", ep, t.Value, t.CAHash)}
	if controlPlane {
		t0 := time.Now()
		key, err := r.uploadCerts(ctx)
		if err != nil {
			return nil, err
		}
		exp := t0.Add(certsTTL).UTC().Truncate(time.Second)
		out.CertificateKeyExpires = &exp
		out.ControlPlane = out.Worker + " --control-plane --certificate-key " + key
	}
	return out, nil
}
