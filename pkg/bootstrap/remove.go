package bootstrap

// Remove takes nodes out of a cluster that bootstrap built. The phases, in
// order (Remove below reads the same):
//
//	connect        SSH to every host that stays (each must answer), and to
//	               each one that goes when it answers (a dead one is removed
//	               through the others)
//	facts          of the hosts that stay (their load balancer is rewritten)
//	check          etcd's members and health, read from etcd: the removal
//	               must leave etcd its quorum (unless Force), and the last
//	               control plane never goes; DryRun stops here with the plan
//	drain          cordon, then evictions that respect PodDisruptionBudgets
//	               (skipped for a dead host's NotReady node: its Pods go with it)
//	reset          on a host that answers: keepalived and HAProxy stopped (the
//	               VIP moves away first), kubeadm reset (a control plane's
//	               reset removes its own etcd member)
//	etcd-member    a member left (its host dead) removed through a live one
//	node           the Node deleted
//	load-balancer  HAProxy and keepalived of the control planes that stay,
//	               one at a time, without the removed ones
//	inventory      Options.Commit (the command rewrites the cluster file)
//	verify         pkg/inspect's verdict on what stays: Healthy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubectl/pkg/drain"

	"github.com/hacluster/hacluster/pkg/inspect"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/remote"
)

// RemoveOptions of Remove.
type RemoveOptions struct {
	Options
	// Hosts name the hosts of the cluster file to remove.
	Hosts []string
	// Force removes control planes even when etcd would lose its quorum.
	Force bool
	// DrainTimeout bounds the drain of each node (default 5m).
	DrainTimeout time.Duration
	// Commit runs once the nodes are out, before verify.
	Commit func() error
}

// RemovePhases are Remove's phase names, in order.
var RemovePhases = []string{"connect", "facts", "check", "drain", "reset", "etcd-member", "node", "load-balancer", "inventory", "verify"}

// leaving is a host being removed: its connection when it answers.
type leaving struct {
	host inventory.Host
	conn *remote.Conn
	node *corev1.Node
}

// Remove removes o.Hosts from the cluster c describes.
func Remove(ctx context.Context, c *inventory.Cluster, o RemoveOptions) (*Result, error) {
	stays := *c
	stays.Spec.Hosts = nil
	var gone []*leaving
	for _, h := range c.Spec.Hosts {
		if slices.Contains(o.Hosts, h.Name) {
			gone = append(gone, &leaving{host: h})
		} else {
			stays.Spec.Hosts = append(stays.Spec.Hosts, h)
		}
	}
	for _, name := range o.Hosts {
		if !slices.ContainsFunc(gone, func(l *leaving) bool { return l.host.Name == name }) {
			return nil, fmt.Errorf("%s is not a host of %s", name, c.Metadata.Name)
		}
	}
	if len(gone) == 0 {
		return nil, errors.New("no host to remove")
	}
	if len(stays.ControlPlanes()) == 0 {
		return nil, fmt.Errorf("removing %s leaves no control plane: that is the end of the cluster, not a removal", strings.Join(o.Hosts, ", "))
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 5 * time.Minute
	}
	r := &run{c: &stays, o: o.Options, first: stays.ControlPlanes()[0].Name, tolerate: tolerance(&stays, true)}
	if r.o.Logf == nil {
		r.o.Logf = func(string, ...any) {}
	}
	t0 := time.Now()
	defer func() { r.res.Duration = time.Since(t0) }()
	defer func() {
		if r.fleet != nil {
			r.fleet.Close()
		}
		for _, l := range gone {
			if l.conn != nil {
				l.conn.Close()
			}
		}
	}()
	check := func(ctx context.Context) error { return r.checkRemoval(ctx, gone, o.Force) }
	if r.o.DryRun {
		err := r.sequence(ctx,
			step{"connect", func(ctx context.Context) error { return r.connectRemoval(ctx, gone) }},
			step{"check", check},
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
		step{"connect", func(ctx context.Context) error { return r.connectRemoval(ctx, gone) }},
		step{"facts", r.gatherFacts},
		step{"check", check},
		step{"drain", func(ctx context.Context) error { return r.drain(ctx, gone, o.DrainTimeout) }},
		step{"reset", func(ctx context.Context) error { return r.reset(ctx, gone, o.Force) }},
		step{"etcd-member", func(ctx context.Context) error { return r.removeMembers(ctx, gone) }},
		step{"node", func(ctx context.Context) error { return r.deleteNodes(ctx, gone) }},
		step{"load-balancer", r.rollingLoadBalancer},
		step{"inventory", func(context.Context) error { return commit(o.Commit) }},
		step{"verify", r.verifyRemoval},
	)
	r.journal.finish(err, r.stopped)
	return &r.res, err
}

// connectRemoval connects to the hosts that stay (all of them), and to each
// host that goes as far as it answers within 15 s.
func (r *run) connectRemoval(ctx context.Context, gone []*leaving) error {
	if err := r.connect(ctx); err != nil {
		return err
	}
	for _, l := range gone {
		fl, err := r.dialOne(ctx, l.host)
		if err != nil {
			r.o.Logf("  %-12s does not answer (%v): removed through the others", l.host.Name, strings.SplitN(err.Error(), "\n", 2)[0])
			continue
		}
		l.conn = fl.Conns[l.host.Name]
		r.o.Logf("  %-12s connected", l.host.Name)
	}
	return nil
}

// checkRemoval reads the Nodes and etcd's members and refuses a removal
// that would cost etcd its quorum; with DryRun it records the plan.
func (r *run) checkRemoval(ctx context.Context, gone []*leaving, force bool) error {
	cs, err := r.kube(ctx)
	if err != nil {
		return err
	}
	for _, l := range gone {
		n, err := cs.CoreV1().Nodes().Get(ctx, l.host.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return err
		default:
			l.node = n
		}
	}
	removing := slices.ContainsFunc(gone, func(l *leaving) bool { return isControlPlane(l.host) })
	var ms *inspect.EtcdMembership
	if removing {
		if ms, err = r.etcdMembership(ctx); err != nil {
			return fmt.Errorf("reading etcd's members: %w", err)
		}
		msg, ok := quorumAfter(ms, gone)
		r.o.Logf("  %s", msg)
		if !ok {
			if !force {
				return fmt.Errorf("%s: etcd would stop answering, and the API with it; nothing was changed (bring members back first, or --force to remove anyway and then restore etcd from a snapshot)", msg)
			}
			r.o.Logf("  warning: --force: %s; etcd will lose its quorum", msg)
		}
	}
	if !r.o.DryRun {
		return nil
	}
	for _, l := range gone {
		hp := HostPlan{Host: l.host.Name}
		add := func(phase, what string) { hp.Actions = append(hp.Actions, Action{Phase: phase, What: what}) }
		switch {
		case l.node == nil:
			add("node", "no Node of that name: nothing to drain or delete")
		case !drainable(l):
			add("drain", "skipped: the host does not answer and its node is not Ready (its Pods go with the Node)")
		default:
			add("drain", "cordon and drain (PodDisruptionBudgets respected)")
		}
		if l.conn != nil {
			if isControlPlane(l.host) {
				add("reset", "stop and disable keepalived and HAProxy")
			}
			add("reset", "kubeadm reset -f")
		} else {
			add("reset", "skipped: the host does not answer SSH")
		}
		if ms != nil {
			for _, m := range ms.Members {
				if memberOf(m, []*leaving{l}) == nil {
					continue
				}
				how := "kubeadm reset removes etcd member"
				if l.conn == nil {
					how = "remove etcd member (through " + ms.Pod + ")"
				}
				add("etcd-member", fmt.Sprintf("%s %s (%s)", how, m.Name, m.ID))
			}
		}
		if l.node != nil {
			add("node", "delete Node "+l.node.Name)
		}
		r.res.Plan = append(r.res.Plan, hp)
	}
	if removing {
		for _, cp := range r.c.ControlPlanes() {
			r.res.Plan = append(r.res.Plan, HostPlan{Host: cp.Name, Actions: []Action{{Phase: "load-balancer", What: "HAProxy backends and keepalived peers without " + strings.Join(names(gone), ", ")}}})
		}
	}
	return nil
}

// quorumAfter says what removing gone's members leaves etcd, and whether
// that keeps its quorum: as many healthy members as a majority of the rest.
func quorumAfter(ms *inspect.EtcdMembership, gone []*leaving) (string, bool) {
	total, healthy, goTotal, goHealthy := len(ms.Members), 0, 0, 0
	for _, m := range ms.Members {
		ok := m.Healthy != nil && *m.Healthy
		if ok {
			healthy++
		}
		if memberOf(m, gone) != nil {
			goTotal++
			if ok {
				goHealthy++
			}
		}
	}
	after, upAfter := total-goTotal, healthy-goHealthy
	quorum, _ := inspect.EtcdQuorum(after, upAfter)
	return fmt.Sprintf("etcd has %d members, %d healthy; after the removal %d members with %d healthy, and %d are needed for quorum", total, healthy, after, upAfter, quorum), upAfter >= quorum
}

func names(gone []*leaving) []string {
	var out []string
	for _, l := range gone {
		out = append(out, l.host.Name)
	}
	return out
}

// memberOf is the host of gone that etcd member m belongs to (by name or
// peer address), or nil.
func memberOf(m inspect.EtcdMember, gone []*leaving) *leaving {
	for _, l := range gone {
		if isControlPlane(l.host) && (m.Name == l.host.Name || slices.ContainsFunc(m.PeerURLs, func(u string) bool { return urlHostname(u) == l.host.InternalAddress })) {
			return l
		}
	}
	return nil
}

// drainable: the node's Pods can be evicted: its host answers, or its
// node is Ready. A dead host's Pods go with its Node.
func drainable(l *leaving) bool { return l.conn != nil || nodeIsReady(l.node) }

func nodeIsReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// drain cordons and drains each node that goes (unless its host is dead and
// the node NotReady), as kubectl drain
// --ignore-daemonsets --delete-emptydir-data --force does: through the
// eviction API, so PodDisruptionBudgets hold.
func (r *run) drain(ctx context.Context, gone []*leaving, timeout time.Duration) error {
	cs, err := r.kube(ctx)
	if err != nil {
		return err
	}
	for _, l := range gone {
		t0 := time.Now()
		if l.node == nil || !drainable(l) {
			r.record(PhaseResult{Phase: "drain", Host: l.host.Name, Detail: "skipped: no Node, or a dead host's NotReady one"})
			continue
		}
		evicted := 0
		// A Pod whose deletion is older than 20 s is not waited for: its
		// kubelet is not there to finish it (a NotReady node).
		h := &drain.Helper{Ctx: ctx, Client: cs, Force: true, IgnoreAllDaemonSets: true, DeleteEmptyDirData: true,
			GracePeriodSeconds: -1, Timeout: timeout, SkipWaitForDeleteTimeoutSeconds: 20, Out: io.Discard, ErrOut: io.Discard,
			OnPodDeletionOrEvictionFinished: func(p *corev1.Pod, _ bool, err error) {
				if err == nil {
					evicted++
				}
			}}
		if err := drain.RunCordonOrUncordon(h, l.node, true); err != nil {
			return fmt.Errorf("cordon %s: %w", l.host.Name, err)
		}
		if err := drain.RunNodeDrain(h, l.host.Name); err != nil {
			return fmt.Errorf("drain %s (the node stays cordoned; kubectl uncordon %s undoes it): %w", l.host.Name, l.host.Name, err)
		}
		detail := fmt.Sprintf("cordoned, %d Pod(s) evicted", evicted)
		r.record(PhaseResult{Phase: "drain", Host: l.host.Name, Changed: true, Detail: detail, Duration: time.Since(t0)})
		r.o.Logf("  %-12s changed   %s (%s)", l.host.Name, detail, time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

// reset runs kubeadm reset on each host that goes and answers; a control
// plane's quorum arithmetic is done again first (unless force), then its
// keepalived and HAProxy stop, so that the VIP moves to a control plane that
// stays while this API server still answers.
func (r *run) reset(ctx context.Context, gone []*leaving, force bool) error {
	for _, l := range gone {
		t0 := time.Now()
		if l.conn == nil {
			r.record(PhaseResult{Phase: "reset", Host: l.host.Name, Detail: "skipped: the host does not answer"})
			continue
		}
		if err := r.waitForKubeadm(ctx, l.conn); err != nil {
			return err
		}
		var did []string
		if isControlPlane(l.host) && !force {
			// Again, just before: a member may have gone down since check.
			ms, err := r.etcdMembership(ctx)
			if err != nil {
				return fmt.Errorf("reading etcd's members again before the reset of %s: %w", l.host.Name, err)
			}
			if msg, ok := quorumAfter(ms, []*leaving{l}); !ok {
				return fmt.Errorf("%s: etcd would stop answering; %s was drained but not reset (kubectl uncordon %s undoes the drain)", msg, l.host.Name, l.host.Name)
			}
		}
		if isControlPlane(l.host) {
			if _, err := l.conn.Output(ctx, "systemctl disable -q --now keepalived 2>/dev/null; systemctl disable -q --now haproxy 2>/dev/null; true", true); err != nil {
				return err
			}
			did = append(did, "keepalived and HAProxy stopped")
		}
		if exists(ctx, l.conn, kubeletConf) || exists(ctx, l.conn, "/etc/kubernetes/manifests/kube-apiserver.yaml") {
			if _, err := l.conn.Output(ctx, "kubeadm reset -f >>"+kubeadmLogFile+" 2>&1", true); err != nil {
				return fmt.Errorf("%s: kubeadm reset: %w (see %s there)", l.host.Name, err, kubeadmLogFile)
			}
			did = append(did, "kubeadm reset")
		}
		if _, err := l.conn.Output(ctx, "rm -f "+initDone+" "+joinDone, true); err != nil {
			return err
		}
		detail := strings.Join(did, ", ")
		if detail == "" {
			detail = "nothing to reset"
		}
		r.record(PhaseResult{Phase: "reset", Host: l.host.Name, Changed: len(did) > 0, Detail: detail, Duration: time.Since(t0)})
		r.o.Logf("  %-12s changed   %s (%s)", l.host.Name, detail, time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

// removeMembers removes the etcd members of the hosts that go that are still
// there (a dead host's, or one kubeadm reset could not remove).
func (r *run) removeMembers(ctx context.Context, gone []*leaving) error {
	if !slices.ContainsFunc(gone, func(l *leaving) bool { return isControlPlane(l.host) }) {
		return nil
	}
	ms, err := r.etcdMembership(ctx)
	if err != nil {
		return fmt.Errorf("reading etcd's members: %w", err)
	}
	var stale []staleState
	for i, m := range ms.Members {
		if l := memberOf(m, gone); l != nil {
			stale = append(stale, staleState{host: l.host.Name, member: &ms.Members[i], via: ms})
		}
	}
	if len(stale) == 0 {
		r.record(PhaseResult{Phase: "etcd-member", Detail: "no member of the removed hosts is left"})
		return nil
	}
	return r.removeStale(ctx, "etcd-member", stale)
}

// deleteNodes deletes the Nodes of the hosts that go.
func (r *run) deleteNodes(ctx context.Context, gone []*leaving) error {
	var stale []staleState
	for _, l := range gone {
		if l.node != nil {
			stale = append(stale, staleState{host: l.host.Name, node: l.node.Name})
		}
	}
	return r.removeStale(ctx, "node", stale)
}

// verifyRemoval is verify when 3 or more control planes stay. With fewer,
// etcd cannot be HA and inspect never says Healthy: once the nodes are
// Ready, inspect's verdict is recorded with a warning, and the run does not
// fail.
func (r *run) verifyRemoval(ctx context.Context) error {
	n := len(r.c.ControlPlanes())
	if n >= 3 {
		return r.verifyJoin(ctx)
	}
	return r.verifyReported(ctx, fmt.Sprintf("%d control plane(s) left: the cluster is not HA; join control planes to make it 3", n))
}

// verifyReported, for a cluster that cannot be Healthy (why): the file's
// nodes Ready, then inspect's verdict once, reported as a warning.
func (r *run) verifyReported(ctx context.Context, why string) error {
	t0 := time.Now()
	if err := r.waitNodesReady(ctx, 5*time.Minute); err != nil {
		return err
	}
	src, err := r.inspectSource()
	if err != nil {
		return err
	}
	rep, err := inspect.Inspect(ctx, src, inspect.AnalyzeOptions{})
	if err != nil {
		return err
	}
	r.res.Verdict, r.res.Reasons = rep.Verdict, rep.Reasons
	r.etcdMembers = rep.Etcd.Members
	w := fmt.Sprintf("%s (inspect components: %s: %s)", why, rep.Verdict, strings.Join(rep.Reasons, "; "))
	r.res.Warnings = append(r.res.Warnings, w)
	r.o.Logf("  warning: %s", w)
	r.record(PhaseResult{Phase: "verify", Detail: fmt.Sprintf("inspect: %s (%s)", rep.Verdict, why), Duration: time.Since(t0)})
	return nil
}
