package bootstrap

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/hacluster/hacluster/pkg/inspect"
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
		case <-time.After(3 * time.Second):
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

// onlyTolerated: every finding that keeps rep from Healthy is a warning
// whose check the run tolerates (r.tolerate: an even etcd size after a join
// or a removal, which verifyJoin reports as a warning of its own).
func (r *run) onlyTolerated(rep *inspect.Report) bool {
	if len(r.tolerate) == 0 || rep.Verdict != inspect.Degraded {
		return false
	}
	for _, f := range rep.Findings {
		if f.Severity != inspect.OK && (f.Severity != inspect.Warning || !slices.Contains(r.tolerate, f.Check)) {
			return false
		}
	}
	return true
}
