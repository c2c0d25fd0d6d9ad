package bootstrap

import (
	"fmt"
	"testing"

	"github.com/hacluster/hacluster/pkg/inspect"
	"github.com/hacluster/hacluster/pkg/inventory"
)

// A join that makes etcd's size even is accepted with that warning only; a
// file with fewer than three control planes gets the one-member etcd it
// asked for; nothing else is accepted short of Healthy.
func TestOnlyTolerated(t *testing.T) {
	even := inspect.Finding{Severity: inspect.Warning, Check: "etcd.members", Message: "etcd has an even number of members (4)"}
	single := inspect.Finding{Severity: inspect.Error, Check: "etcd.members", Message: "etcd has 1 member(s)"}
	other := inspect.Finding{Severity: inspect.Warning, Check: "node.not-ready", Message: "a node is not Ready"}
	ok := inspect.Finding{Severity: inspect.OK, Check: "etcd.quorum"}
	cluster := func(cps int) *inventory.Cluster {
		c := &inventory.Cluster{}
		for i := range cps {
			c.Spec.Hosts = append(c.Spec.Hosts, inventory.Host{Name: fmt.Sprint("cp-", i), Roles: []string{inventory.RoleControlPlane}})
		}
		c.Spec.Hosts = append(c.Spec.Hosts, inventory.Host{Name: "w", Roles: []string{inventory.RoleWorker}})
		return c
	}
	for _, tc := range []struct {
		name     string
		cps      int
		evenEtcd bool
		verdict  string
		findings []inspect.Finding
		want     bool
	}{
		{"join, even etcd", 3, true, inspect.Degraded, []inspect.Finding{ok, even}, true},
		{"join, even etcd and a node", 3, true, inspect.Degraded, []inspect.Finding{even, other}, false},
		{"join, one member", 3, true, inspect.Failing, []inspect.Finding{single}, false},
		{"bootstrap, even etcd", 3, false, inspect.Degraded, []inspect.Finding{even}, false},
		{"bootstrap of one control plane", 1, false, inspect.Failing, []inspect.Finding{ok, single}, true},
		{"bootstrap of one control plane, a node", 1, false, inspect.Failing, []inspect.Finding{single, other}, false},
		{"failing with no finding", 1, false, inspect.Failing, nil, false},
	} {
		r := &run{tolerate: tolerance(cluster(tc.cps), tc.evenEtcd)}
		if got := r.onlyTolerated(&inspect.Report{Verdict: tc.verdict, Findings: tc.findings}); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
