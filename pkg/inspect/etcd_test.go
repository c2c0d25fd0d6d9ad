package inspect

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// Quorum and the failures still tolerated, for 1..7 members and every count
// of members up: counted from what is left, never from the total.
func TestEtcdQuorumTable(t *testing.T) {
	want := map[int]int{1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 6: 4, 7: 4} // members -> quorum
	for n := 1; n <= 7; n++ {
		for up := 0; up <= n; up++ {
			q, tol := EtcdQuorum(n, up)
			wantTol := up - want[n]
			if wantTol < 0 {
				wantTol = 0
			}
			if q != want[n] || tol != wantTol {
				t.Errorf("EtcdQuorum(%d members, %d up) = quorum %d, tolerates %d; want %d, %d", n, up, q, tol, want[n], wantTol)
			}
		}
	}
	for _, c := range []struct{ n, up, tol int }{{3, 3, 1}, {3, 2, 0}, {5, 5, 2}, {5, 4, 1}, {5, 3, 0}, {7, 5, 1}, {4, 4, 1}, {4, 3, 0}} {
		if _, tol := EtcdQuorum(c.n, c.up); tol != c.tol {
			t.Errorf("%d of %d up: tolerates %d, want %d", c.up, c.n, tol, c.tol)
		}
	}
	if q, tol := EtcdQuorum(0, 0); q != 0 || tol != 0 {
		t.Errorf("no members: %d %d", q, tol)
	}
}

// etcdDown marks the etcd Pods of the given nodes not Ready.
func etcdDown(s *Snapshot, nodes ...string) {
	for i := range s.Pods {
		p := &s.Pods[i]
		if p.Labels["component"] != "etcd" {
			continue
		}
		for _, n := range nodes {
			if p.Spec.NodeName == n {
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
			}
		}
	}
}

// The report, for 1..7 members with some down: the JSON numbers, the
// findings and the line in the table.
func TestEtcdFaultToleranceReport(t *testing.T) {
	for _, c := range []struct {
		members int
		down    []string
		tol     int
		sev     Severity // of etcd.quorum
	}{
		{members: 1, tol: 0, sev: OK},
		{members: 1, down: []string{"cp-1"}, tol: 0, sev: Error},
		{members: 2, down: []string{"cp-2"}, tol: 0, sev: Error},
		{members: 3, tol: 1, sev: OK},
		{members: 3, down: []string{"cp-3"}, tol: 0, sev: Warning},
		{members: 3, down: []string{"cp-2", "cp-3"}, tol: 0, sev: Error},
		{members: 4, down: []string{"cp-4"}, tol: 0, sev: Warning},
		{members: 5, tol: 2, sev: OK},
		{members: 5, down: []string{"cp-1"}, tol: 1, sev: Warning},
		{members: 5, down: []string{"cp-1", "cp-5"}, tol: 0, sev: Warning},
		{members: 5, down: []string{"cp-1", "cp-2", "cp-5"}, tol: 0, sev: Error},
		{members: 7, down: []string{"cp-4", "cp-7"}, tol: 1, sev: Warning},
	} {
		t.Run(fmt.Sprintf("%d members, %d down", c.members, len(c.down)), func(t *testing.T) {
			_, src := fakeCluster(fakeShape{EtcdMembers: c.members})
			s := Collect(context.Background(), src)
			s.Now = fakeNow
			etcdDown(s, c.down...)
			r := Analyze(s, AnalyzeOptions{})
			e := r.Etcd
			if e.Members != c.members || e.ReadyMembers != c.members-len(c.down) || e.ToleratesFailures != c.tol {
				t.Errorf("etcd = %+v, want %d members, %d ready, tolerates %d", e, c.members, c.members-len(c.down), c.tol)
			}
			if _, all := EtcdQuorum(c.members, c.members); e.ToleratesFailuresAllUp != all {
				t.Errorf("toleratesFailuresAllUp = %d, want %d", e.ToleratesFailuresAllUp, all)
			}
			if !hasFinding(r, "etcd.quorum", c.sev) {
				t.Errorf("no %s etcd.quorum; findings %+v", c.sev, r.Findings)
			}
			var buf bytes.Buffer
			if err := Render(&buf, r, RenderOptions{Now: fakeNow}); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("tolerates %d failure(s)", c.tol)
			if len(c.down) > 0 {
				want = fmt.Sprintf("tolerates %d more failure(s)", c.tol)
			}
			if !strings.Contains(buf.String(), want) {
				t.Errorf("table lacks %q:\n%s", want, buf.String())
			}
		})
	}
}

// The defect of issue 18: 1 of 3 members down used to print "tolerates 1 failure(s)".
func TestEtcdOneOfThreeDown(t *testing.T) {
	_, src := fakeCluster(fakeShape{})
	s := Collect(context.Background(), src)
	s.Now = fakeNow
	etcdDown(s, "cp-2")
	r := Analyze(s, AnalyzeOptions{})
	var buf bytes.Buffer
	if err := Render(&buf, r, RenderOptions{Now: fakeNow}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "members: 3 (2 ready) on cp-1, cp-2, cp-3; quorum 2, tolerates 0 more failure(s) (1 with all members up)") ||
		strings.Contains(out, "tolerates 1 failure") {
		t.Errorf("etcd line wrong:\n%s", out)
	}
	if r.Verdict != Degraded {
		t.Errorf("verdict %s, findings %+v", r.Verdict, nonOK(r))
	}
}
