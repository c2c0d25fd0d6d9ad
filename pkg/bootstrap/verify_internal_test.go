package bootstrap

import (
	"testing"

	"github.com/hacluster/hacluster/pkg/inspect"
)

// A join that makes etcd's size even is accepted with that warning only.
func TestOnlyTolerated(t *testing.T) {
	even := inspect.Finding{Severity: inspect.Warning, Check: "etcd.members", Message: "etcd has an even number of members (4)"}
	other := inspect.Finding{Severity: inspect.Warning, Check: "node.not-ready", Message: "a node is not Ready"}
	ok := inspect.Finding{Severity: inspect.OK, Check: "etcd.quorum"}
	r := &run{tolerate: []string{"etcd.members"}}
	for _, tc := range []struct {
		verdict  string
		findings []inspect.Finding
		want     bool
	}{
		{inspect.Degraded, []inspect.Finding{ok, even}, true},
		{inspect.Degraded, []inspect.Finding{even, other}, false},
		{inspect.Failing, []inspect.Finding{{Severity: inspect.Error, Check: "etcd.members"}}, false},
	} {
		if got := r.onlyTolerated(&inspect.Report{Verdict: tc.verdict, Findings: tc.findings}); got != tc.want {
			t.Errorf("%s %v: %v", tc.verdict, tc.findings, got)
		}
	}
	if (&run{}).onlyTolerated(&inspect.Report{Verdict: inspect.Degraded, Findings: []inspect.Finding{even}}) {
		t.Error("bootstrap (nothing tolerated) accepted an even etcd")
	}
}
