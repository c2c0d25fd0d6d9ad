package bootstrap

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/hacluster/hacluster/pkg/inspect"
	"github.com/hacluster/hacluster/pkg/inventory"
)

// verify asks pkg/inspect, through the endpoint with the admin kubeconfig,
// what `kubectl hacluster inspect components` would say, until it says
// Healthy (static pods and leases settle for a while after the last join).
// The run fails with inspect's reasons when it never does.
func (r *run) verify(ctx context.Context) error {
	t0 := time.Now()
	src, err := r.inspectSource()
	if err != nil {
		return err
	}
	timeout := r.o.VerifyTimeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	deadline := time.Now().Add(timeout)
	var last string
	for said := false; ; said = true {
		rep, err := inspect.Inspect(ctx, src, inspect.AnalyzeOptions{})
		if err == nil {
			r.res.Verdict, r.res.Reasons = rep.Verdict, rep.Reasons
			if rep.Verdict == inspect.Healthy || r.onlyTolerated(rep) {
				r.etcdMembers = rep.Etcd.Members
				r.record(PhaseResult{Phase: "verify", Detail: fmt.Sprintf("inspect: %s (%d nodes, %d etcd members)", rep.Verdict, len(rep.Nodes), rep.Etcd.Members), Duration: time.Since(t0)})
				r.notHA()
				return nil
			}
			last = rep.Verdict + ": " + strings.Join(rep.Reasons, "; ")
		} else {
			last = err.Error()
		}
		if !said {
			r.o.Logf("  waiting for Healthy (%s)", last)
		}
		if time.Now().After(deadline) {
			r.record(PhaseResult{Phase: "verify", Error: last, Duration: time.Since(t0)})
			return fmt.Errorf("the cluster is not Healthy after %s: %s (see `kubectl hacluster inspect components`)", timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second): // one inspect costs ~0.5 s
		}
	}
}

// inspectSource is pkg/inspect's view of the cluster through the endpoint,
// with the admin kubeconfig.
func (r *run) inspectSource() (*inspect.Source, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(r.adminConf)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 15 * time.Second
	return inspect.NewSource(cfg)
}

// tolerance is what verify accepts short of Healthy, by inspect check: after
// a join or a removal (evenEtcd) an even etcd size, which verifyJoin reports
// as a warning of its own; and, when the file has fewer than three control
// planes, the etcd that tolerates no failure which that file asked for
// (notHA says so as a warning).
func tolerance(c *inventory.Cluster, evenEtcd bool) map[string]inspect.Severity {
	t := map[string]inspect.Severity{}
	if evenEtcd {
		t["etcd.members"] = inspect.Warning
	}
	if len(c.ControlPlanes()) < 3 {
		t["etcd.members"] = inspect.Error
	}
	return t
}

// onlyTolerated: every finding that keeps rep from Healthy is of a check
// the run tolerates, no more severe than it tolerates (r.tolerate).
func (r *run) onlyTolerated(rep *inspect.Report) bool {
	if len(r.tolerate) == 0 || rep.Verdict == inspect.Healthy {
		return false
	}
	n := 0
	for _, f := range rep.Findings {
		if f.Severity == inspect.OK {
			continue
		}
		n++
		if limit, ok := r.tolerate[f.Check]; !ok || !limit.AtLeast(f.Severity) {
			return false
		}
	}
	return n > 0
}

// notHA is the warning of a run whose file has fewer than three control
// planes: the cluster works, and one control-plane failure stops its API.
func (r *run) notHA() {
	if n := len(r.c.ControlPlanes()); n < 3 {
		w := fmt.Sprintf("%d control plane(s): etcd has %d member(s) and tolerates no failure, so this cluster is not highly available; `kubectl hacluster join --control-plane` makes it 3", n, r.etcdMembers)
		r.res.Warnings = append(r.res.Warnings, w)
		r.o.Logf("  warning: %s", w)
	}
}
