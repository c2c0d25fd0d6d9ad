package inspect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// What etcdctl 3.6 prints for `member list -w json` and `endpoint health
// --cluster -w json` on a 3-member kubeadm cluster whose cp-3 is stopped.
const (
	memberListJSON = `{"header":{"cluster_id":17237436991929493444,"member_id":9372538179322589801,"raft_term":4},"members":[` +
		`{"ID":9372538179322589801,"name":"cp-1","peerURLs":["https://10.0.0.11:2380"],"clientURLs":["https://10.0.0.11:2379"]},` +
		`{"ID":10501334649042878790,"name":"cp-2","peerURLs":["https://10.0.0.12:2380"],"clientURLs":["https://10.0.0.12:2379"]},` +
		`{"ID":18249187646912138824,"name":"cp-3","peerURLs":["https://10.0.0.13:2380"],"clientURLs":["https://10.0.0.13:2379"]}]}` + "\n"
	healthJSON = `[{"endpoint":"https://10.0.0.11:2379","health":true,"took":"8.1ms"},{"endpoint":"https://10.0.0.12:2379","health":true,"took":"9.4ms"},` +
		`{"endpoint":"https://10.0.0.13:2379","health":false,"took":"5.001s","error":"failed to commit proposal: context deadline exceeded"}]` + "\n"
)

func TestParseEtcdctlJSON(t *testing.T) {
	ms, err := ParseMemberList([]byte(memberListJSON))
	if err != nil {
		t.Fatal(err)
	}
	// IDs are uint64 and printed in hex, as member remove takes them; a
	// float64 would have lost the low digits.
	if len(ms) != 3 || ms[0].ID != "8211f1d0f64f3269" || ms[2].ID != "fd422379fda50e48" || ms[1].Name != "cp-2" || ms[1].PeerURLs[0] != "https://10.0.0.12:2380" {
		t.Errorf("members %+v", ms)
	}
	h, err := ParseEndpointHealth([]byte(healthJSON))
	if err != nil || len(h) != 3 || h[2].Health || !strings.Contains(h[2].Error, "deadline") {
		t.Errorf("health %+v, %v", h, err)
	}
	if _, err := ParseMemberList([]byte("Error: context deadline exceeded")); err == nil {
		t.Error("garbage parsed")
	}
	if _, err := ParseMemberList([]byte(`{"members":[]}`)); err == nil {
		t.Error("an empty member list accepted")
	}
}

// etcdPod is a kubeadm etcd static Pod (its flags name the certificates).
func etcdPod(node, ip string, ready bool) corev1.Pod {
	p := mirrorPod("etcd", node, metav1.Now())
	p.Spec.Containers[0].Command = []string{"etcd", "--advertise-client-urls=https://" + ip + ":2379",
		"--cert-file=/etc/kubernetes/pki/etcd/server.crt", "--key-file=/etc/kubernetes/pki/etcd/server.key",
		"--listen-client-urls=https://127.0.0.1:2379,https://" + ip + ":2379", "--name=" + node,
		"--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt"}
	if !ready {
		p.Status.Conditions[0].Status = corev1.ConditionFalse
	}
	return *p
}

type execCall struct{ ns, pod, container, cmd string }

// fakeExec plays `kubectl exec` into etcd Pods: answers per Pod.
type fakeExec struct {
	calls  []execCall
	answer func(pod string, cmd []string) ([]byte, []byte, error)
}

func (f *fakeExec) exec(_ context.Context, ns, pod, container string, cmd []string) ([]byte, []byte, error) {
	f.calls = append(f.calls, execCall{ns, pod, container, strings.Join(cmd, " ")})
	return f.answer(pod, cmd)
}

func etcdctlAnswers(pod string, cmd []string) ([]byte, []byte, error) {
	sub := strings.Join(cmd[len(cmd)-4:], " ")
	switch {
	case pod == "etcd-cp-1":
		return nil, []byte("error dialing backend: dial tcp 10.0.0.11:10250: connect: connection refused\n"), errors.New("command terminated with exit code 1")
	case strings.HasSuffix(sub, "member list -w json"):
		return []byte(memberListJSON), nil, nil
	case strings.HasSuffix(sub, "health --cluster -w json"):
		return []byte(healthJSON), []byte("Error: unhealthy cluster\n"), errors.New("command terminated with exit code 1")
	}
	return nil, nil, fmt.Errorf("unexpected %v", cmd)
}

// The reader: etcdctl with the Pod's own certificate flags, the first etcd
// Pod that answers, health merged even though etcdctl exited 1.
func TestEtcdctlReader(t *testing.T) {
	f := &fakeExec{answer: etcdctlAnswers}
	pods := []corev1.Pod{etcdPod("cp-2", "10.0.0.12", true), etcdPod("cp-1", "10.0.0.11", true), etcdPod("cp-3", "10.0.0.13", false)}
	pods = append(pods, *mirrorPod("kube-apiserver", "cp-1", metav1.Now()))
	m, err := (&EtcdctlReader{Exec: f.exec}).ReadMembership(context.Background(), pods)
	if err != nil {
		t.Fatal(err)
	}
	wantBase := "etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/server.crt --key=/etc/kubernetes/pki/etcd/server.key --command-timeout=5s --dial-timeout=3s"
	want := []execCall{
		{"kube-system", "etcd-cp-1", "etcd", wantBase + " member list -w json"}, // Ready Pods first, by name
		{"kube-system", "etcd-cp-2", "etcd", wantBase + " member list -w json"},
		{"kube-system", "etcd-cp-2", "etcd", wantBase + " endpoint health --cluster -w json"},
	}
	if !slices.Equal(f.calls, want) {
		t.Errorf("calls\n%v\nwant\n%v", f.calls, want)
	}
	if m.Source != "etcdctl in kube-system/etcd-cp-2 (pods/exec)" || m.Pod != "etcd-cp-2" || len(m.Members) != 3 {
		t.Errorf("membership %+v", m)
	}
	if h := m.Members[2].Healthy; h == nil || *h || !strings.Contains(m.Members[2].HealthError, "deadline") || !*m.Members[0].Healthy {
		t.Errorf("health not merged: %+v", m.Members)
	}

	// Forbidden: not tried on every Pod; no etcd Pod at all: ErrNoEtcdPod.
	f = &fakeExec{answer: func(string, []string) ([]byte, []byte, error) {
		return nil, nil, errors.New(`pods "etcd-cp-1" is forbidden: User "jane" cannot create resource "pods/exec" in API group "" in the namespace "kube-system"`)
	}}
	if _, err := (&EtcdctlReader{Exec: f.exec}).ReadMembership(context.Background(), pods); err == nil || !forbidden(err) || len(f.calls) != 1 {
		t.Errorf("forbidden: %v after %d calls", err, len(f.calls))
	}
	if _, err := (&EtcdctlReader{Exec: f.exec}).ReadMembership(context.Background(), pods[3:]); !errors.Is(err, ErrNoEtcdPod) {
		t.Errorf("no etcd Pod: %v", err)
	}
}

// fakeEtcd is an EtcdReader with a canned answer.
type fakeEtcd struct {
	m   *EtcdMembership
	err error
}

func (f fakeEtcd) ReadMembership(context.Context, []corev1.Pod) (*EtcdMembership, error) {
	return f.m, f.err
}

func membership(t *testing.T) *EtcdMembership {
	t.Helper()
	ms, err := ParseMemberList([]byte(memberListJSON))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := ParseEndpointHealth([]byte(healthJSON))
	applyHealth(ms, h)
	return &EtcdMembership{Source: "etcdctl in kube-system/etcd-cp-1 (pods/exec)", Pod: "etcd-cp-1",
		Command: EtcdctlArgs(&[]corev1.Pod{etcdPod("cp-1", "10.0.0.11", true)}[0]), Members: ms}
}

// The case: cp-3 stopped, then `kubectl delete node cp-3`. The Pods
// show 2 members ("HA needs 3 or 5"); etcd has 3, one dead: tolerates 0 more,
// and the fix is `member remove`.
func TestEtcdStaleMemberFromEtcd(t *testing.T) {
	cs, src := fakeCluster(fakeShape{})
	ctx := context.Background()
	if err := cs.CoreV1().Nodes().Delete(ctx, "cp-3", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range Components { // the mirror Pods go with their Node
		_ = cs.CoreV1().Pods("kube-system").Delete(ctx, c+"-cp-3", metav1.DeleteOptions{})
	}
	src.Etcd = fakeEtcd{m: membership(t)}
	s := Collect(ctx, src)
	s.Now = fakeNow
	r := Analyze(s, AnalyzeOptions{})
	e := r.Etcd
	if e.Members != 3 || e.ReadyMembers != 2 || e.Quorum != 2 || e.ToleratesFailures != 0 || e.Source != "etcdctl in kube-system/etcd-cp-1 (pods/exec)" {
		t.Errorf("etcd %+v", e)
	}
	if len(e.MemberList) != 3 || !e.MemberList[2].Stale || e.MemberList[0].Stale || e.MemberList[0].Node != "cp-1" || e.MemberList[0].Pod != "etcd-cp-1" {
		t.Errorf("member list %+v", e.MemberList)
	}
	f := findingOf(r, "etcd.stale-member", "fd422379fda50e48")
	if f == nil || f.Severity != Error || !strings.Contains(f.Message, "kubectl -n kube-system exec etcd-cp-1 -- etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt") ||
		!strings.HasSuffix(f.Message, " member remove fd422379fda50e48") || !strings.Contains(f.Message, "cp-3") {
		t.Errorf("stale finding %+v", f)
	}
	for _, bad := range []string{"HA needs 3 or 5", "even number"} {
		for _, g := range nonOK(r) {
			if strings.Contains(g.Message, bad) {
				t.Errorf("still guessed from the Pods: %+v", g)
			}
		}
	}
	if !hasFinding(r, "etcd.quorum", Warning) || !hasFinding(r, "etcd.members", OK) {
		t.Errorf("findings %+v", r.Findings)
	}
	var buf bytes.Buffer
	if err := Render(&buf, r, RenderOptions{Now: fakeNow}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"members: 3 (2 healthy) on cp-1, cp-2, cp-3; quorum 2, tolerates 0 more failure(s) (1 with all members up)",
		"read from: etcdctl in kube-system/etcd-cp-1 (pods/exec)", "fd422379fda50e48   cp-3   https://10.0.0.13:2380   voter   STALE     -      -\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	// Right after `kubectl delete node`, the mirror Pods linger until the Pod
	// GC removes them: the member is stale already. Without the Nodes (RBAC),
	// a member with an etcd Pod is not called stale.
	_, src2 := fakeCluster(fakeShape{})
	src2.Etcd = fakeEtcd{m: membership(t)}
	s2 := Collect(ctx, src2)
	s2.Nodes = slices.DeleteFunc(s2.Nodes, func(n corev1.Node) bool { return n.Name == "cp-3" })
	if r2 := Analyze(s2, AnalyzeOptions{}); !r2.Etcd.MemberList[2].Stale || r2.Etcd.MemberList[2].Pod != "etcd-cp-3" {
		t.Errorf("lingering mirror Pod: %+v", r2.Etcd.MemberList[2])
	}
	s2.Nodes, s2.Errs[srcNodes] = nil, errors.New("forbidden")
	if r2 := Analyze(s2, AnalyzeOptions{}); r2.Etcd.MemberList[2].Stale {
		t.Errorf("nodes unreadable: %+v", r2.Etcd.MemberList[2])
	}

	// Without the reader, the old guess, and it says where it came from.
	src.Etcd = nil
	s = Collect(ctx, src)
	r = Analyze(s, AnalyzeOptions{})
	if r.Etcd.Members != 2 || r.Etcd.Source != "etcd static Pods" || r.Etcd.MemberList != nil {
		t.Errorf("from Pods: %+v", r.Etcd)
	}
}

// An etcd Pod whose node is not a member; an unhealthy member that still has its Node.
func TestEtcdOrphanPodAndUnhealthy(t *testing.T) {
	_, src := fakeCluster(fakeShape{EtcdMembers: 4}) // cp-4 runs etcd, but etcd does not list it
	src.Etcd = fakeEtcd{m: membership(t)}
	s := Collect(context.Background(), src)
	s.Now = fakeNow
	r := Analyze(s, AnalyzeOptions{})
	if f := findingOf(r, "etcd.stale-member", "etcd-cp-4"); f == nil || f.Severity != Warning || !strings.Contains(f.Message, "member list") {
		t.Errorf("orphan Pod: %+v; findings %+v", f, nonOK(r))
	}
	if f := findingOf(r, "etcd.member-unhealthy", "fd422379fda50e48"); f == nil || !strings.Contains(f.Message, "cp-3") {
		t.Errorf("unhealthy cp-3: %+v", f)
	}
	if r.Etcd.Members != 3 || r.Etcd.MemberList[2].Stale {
		t.Errorf("etcd %+v", r.Etcd)
	}
}

// A reader that fails: a note saying why, the Pods' count, the source named.
func TestEtcdReaderFails(t *testing.T) {
	for _, c := range []struct {
		err  error
		note string
	}{
		{errors.New(`pods "etcd-cp-1" is forbidden: User "jane" cannot create resource "pods/exec"`), "this user may not exec into the etcd Pods (create on pods/exec"},
		{errors.New("etcd-cp-1: error dialing backend: connection refused"), "could not be read with etcdctl in an etcd Pod (etcd-cp-1: error dialing backend"},
		{ErrNoEtcdPod, ""},
	} {
		_, src := fakeCluster(fakeShape{})
		src.Etcd = fakeEtcd{err: c.err}
		s := Collect(context.Background(), src)
		r := Analyze(s, AnalyzeOptions{})
		if r.Etcd.Members != 3 || r.Etcd.Source != "etcd static Pods" {
			t.Errorf("%v: etcd %+v", c.err, r.Etcd)
		}
		got := slices.ContainsFunc(r.Notes, func(n string) bool { return c.note != "" && strings.Contains(n, c.note) })
		if c.note != "" && !got || slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "forbidden") && strings.Contains(n, "etcd") }) {
			t.Errorf("%v: notes %q", c.err, r.Notes)
		}
	}
}

func TestShortURLs(t *testing.T) {
	in := `etcd-cp-1: error sending request: Post "https://127.0.0.11:10250/exec/kube-system/etcd-cp-1/etcd?command=etcdctl&command=--endpoints%3Dhttps": dial tcp 127.0.0.11:10250: connect: connection refused`
	want := `etcd-cp-1: error sending request: Post "https://127.0.0.11:10250/exec/kube-system/etcd-cp-1/etcd?...": dial tcp 127.0.0.11:10250: connect: connection refused`
	if got := shortURLs(in); got != want {
		t.Errorf("shortURLs:\n%s\nwant\n%s", got, want)
	}
}
