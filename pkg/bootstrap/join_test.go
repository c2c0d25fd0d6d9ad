package bootstrap_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/hacluster/hacluster/pkg/bootstrap"
	"github.com/hacluster/hacluster/pkg/inspect"
	"github.com/hacluster/hacluster/pkg/nodebed"
)

// The cluster TestHAControlPlane built grows by a worker and has a dead
// control plane replaced, through `kubectl hacluster join` as a user runs it.

// joinCLI runs `kubectl hacluster join args... -f file -o json` while
// watching every process's argv on hosts; it returns the result, stderr,
// the command lines that held a secret, and the error.
func joinCLI(t *testing.T, file string, hosts []*nodebed.Host, args ...string) (*bootstrap.Result, string, []string, error) {
	t.Helper()
	stop := watchArgv(t, hosts)
	cmd := exec.Command(haclusterBin(t), append(append([]string{"join"}, args...), "-f", file, "--cache-dir", cache, "--state-dir", filepath.Join(cache, "state"), "-o", "json")...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t0 := time.Now()
	out, err := cmd.Output()
	leaks := stop()
	t.Logf("join %s: %v in %s\n%s", strings.Join(args, " "), err, time.Since(t0).Round(time.Millisecond), stderr.String())
	var res bootstrap.Result
	if len(out) > 0 {
		if jerr := json.Unmarshal(out, &res); jerr != nil {
			t.Fatalf("join -o json: %v\n%s", jerr, out)
		}
	}
	return &res, stderr.String(), leaks, err
}

// A bootstrap token (id.secret) or a certificate key flag.
var secretArg = regexp.MustCompile(`\b[a-z0-9]{6}\.[a-z0-9]{16}\b|--certificate-key|--token[ =]`)

// watchArgv reads /proc/*/cmdline on the hosts (through the engine, not
// SSH) every 200 ms until the returned function is called, which returns the
// command lines that held a secret.
func watchArgv(t *testing.T, hosts []*nodebed.Host) func() []string {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var leaks []string
	reads := 0
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Go(func() {
			for ctx.Err() == nil {
				out, err := h.Exec(ctx, "sh", "-c", `for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' < $f 2>/dev/null; echo; done`)
				if err == nil {
					mu.Lock()
					reads++
					for _, l := range strings.Split(out, "\n") {
						if secretArg.MatchString(l) {
							leaks = append(leaks, h.Name+": "+l)
						}
					}
					mu.Unlock()
				}
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
	return func() []string {
		cancel()
		wg.Wait()
		t.Logf("argv read %d times on %d hosts", reads, len(hosts))
		if reads == 0 && len(hosts) > 0 {
			t.Error("the argv watcher never read a host")
		}
		return leaks
	}
}

func hasAction(p bootstrap.HostPlan, phase, what string) bool {
	return slices.ContainsFunc(p.Actions, func(a bootstrap.Action) bool { return a.Phase == phase && a.What == what })
}

// grown is the cluster file the joins rewrite, shared by the tests below.
var grown string

func TestJoinWorker(t *testing.T) {
	if bed == nil {
		t.Skip("no node bed")
	}
	grown = filepath.Join(cache, "grown", "cluster.yaml")
	if err := os.MkdirAll(filepath.Dir(grown), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(grown, []byte(clusterDoc(nodebed.SudoUser)), 0o600); err != nil {
		t.Fatal(err)
	}
	file := grown
	w := bed.Host("worker-2")
	ctx := context.Background()
	// --print: the lines for doing it by hand, with a token the cluster knows.
	pr := exec.Command(haclusterBin(t), "join", "--print", "--control-plane", "-f", file, "-o", "json")
	out, err := pr.Output()
	var cmds bootstrap.JoinCommands
	if err != nil || json.Unmarshal(out, &cmds) != nil {
		t.Fatalf("join --print: %v\n%s", err, out)
	}
	tokenID := "none"
	if f := strings.Fields(cmds.Worker); len(f) > 4 && len(f[4]) == 23 {
		tokenID = f[4][:6]
	}
	if !strings.HasPrefix(cmds.Worker, "kubeadm join "+bed.VIP.String()+":16443 --token ") || !strings.Contains(cmds.Worker, "--discovery-token-ca-cert-hash sha256:") ||
		!strings.HasPrefix(cmds.ControlPlane, cmds.Worker+" --control-plane --certificate-key ") || time.Until(cmds.TokenExpires) < 50*time.Minute || cmds.CertificateKeyExpires == nil {
		t.Errorf("join --print: %+v", cmds)
	}
	if tokens, err := bed.Host("cp-1").Exec(ctx, "kubeadm", "token", "list", "--kubeconfig", "/etc/kubernetes/admin.conf"); err != nil || !strings.Contains(tokens, tokenID) || !strings.Contains(tokens, "kubectl hacluster join --print") {
		t.Errorf("the printed token %s is not in the cluster: %v\n%s", tokenID, err, tokens)
	}
	_, _ = bed.Host("cp-1").Exec(ctx, "kubeadm", "token", "delete", tokenID, "--kubeconfig", "/etc/kubernetes/admin.conf")
	// Refusals change nothing: a clone of worker-1 (its product_uuid), and
	// a new host under the name of worker-1, a Node in use.
	clone := bed.Host("clone")
	if _, stderr, _, err := joinCLI(t, file, nil, "clone="+clone.Address.String()); err == nil || !strings.Contains(stderr, "DuplicateProductUUID") {
		t.Errorf("a clone of worker-1 joined, or the refusal does not say why: %v", err)
	}
	if _, stderr, _, err := joinCLI(t, file, nil, "worker-1="+w.Address.String()); err == nil || !strings.Contains(stderr, "Node worker-1 already exists") {
		t.Errorf("want a refusal for the Node worker-1 in use: %v", err)
	}
	// --dry-run: the plan for the new host, the stale Node named; nothing
	// written (the checks below cover the file and the hosts).
	res, _, _, err := joinCLI(t, file, nil, "worker-2="+w.Address.String(), "--dry-run")
	if err != nil || len(res.Plan) != 1 || res.Plan[0].Host != "worker-2" || !hasAction(res.Plan[0], "join-workers", "kubeadm join (worker)") ||
		!slices.ContainsFunc(res.Plan[0].Files, func(f bootstrap.FileDiff) bool { return f.Path == "/etc/containerd/config.toml" && f.New }) {
		t.Errorf("join --dry-run of worker-2: %v, plan %+v", err, res.Plan)
	}
	if res, _, _, err := joinCLI(t, file, nil, "worker-1="+w.Address.String(), "--dry-run"); err != nil || len(res.Plan) != 1 ||
		!hasAction(res.Plan[0], "replace", "REFUSED without --replace: Node worker-1 already exists") || len(res.Warnings) != 1 {
		t.Errorf("join --dry-run under worker-1's name: %v, plan %+v, warnings %q", err, res.Plan, res.Warnings)
	}
	if b, _ := os.ReadFile(file); string(b) != clusterDoc(nodebed.SudoUser) {
		t.Errorf("a refused join or a dry run changed the cluster file:\n%s", b)
	}
	for _, h := range []*nodebed.Host{clone, w} {
		if out, _ := h.Exec(ctx, "sh", "-c", "ls /etc/containerd /usr/bin/kubelet 2>/dev/null; true"); strings.TrimSpace(out) != "" {
			t.Errorf("a refused join or a dry run changed %s: %s", h.Name, out)
		}
	}
	res, stderr, leaks, err := joinCLI(t, file, []*nodebed.Host{w, bed.Host("cp-1")}, "worker-2="+w.Address.String())
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	if len(leaks) > 0 {
		t.Errorf("secrets on command lines while join ran:\n%s", strings.Join(leaks, "\n"))
	}
	if res.Verdict != "Healthy" {
		t.Errorf("verdict %q %v", res.Verdict, res.Reasons)
	}
	for _, p := range res.Phases {
		if (p.Phase == "prepare" || p.Phase == "runtime" || p.Phase == "join-workers") && p.Host != "worker-2" {
			t.Errorf("join touched %s in %s: %s", p.Host, p.Phase, p.Detail)
		}
	}
	// The file lists worker-2 now; the old one is kept.
	b, _ := os.ReadFile(file)
	if !strings.Contains(string(b), "name: worker-2, address: "+w.Address.String()) {
		t.Errorf("the cluster file does not list worker-2:\n%s", b)
	}
	if j, _ := os.ReadFile(filepath.Join(cache, "state", "journal.jsonl")); secretArg.Match(j) || strings.Contains(stderr, "--token") {
		t.Error("a token in the journal or on stderr")
	}
	// worker-2 runs a Pod.
	kubectl := kubectlBin(t)
	kc := filepath.Join(cache, "state", "admin.conf")
	pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"on-worker-2"},"spec":{"nodeName":"worker-2","containers":[{"name":"pause","image":"registry.k8s.io/pause:3.10.2"}]}}`
	apply := exec.Command(kubectl, "--kubeconfig", kc, "apply", "-f", "-")
	apply.Stdin = strings.NewReader(pod)
	if out, err := apply.CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if out, err := exec.Command(kubectl, "--kubeconfig", kc, "wait", "--for=condition=Ready", "pod/on-worker-2", "--timeout=2m").CombinedOutput(); err != nil {
		t.Errorf("a Pod on worker-2: %v %s", err, out)
	}
	_ = exec.Command(kubectl, "--kubeconfig", kc, "delete", "pod", "on-worker-2", "--wait=false").Run()
	if m, _ := filepath.Glob(file + ".hacluster-*.bak"); len(m) != 1 {
		t.Errorf("backups: %v", m)
	}
	// A second join of the same host changes nothing.
	again, _, _, err := joinCLI(t, file, nil, "worker-2")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range again.Phases {
		if p.Changed {
			t.Errorf("the second join changed %s on %s: %s", p.Phase, p.Host, p.Detail)
		}
	}
}

// cp-3 dies; a new host takes its name. Without --replace the join is
// refused and nothing changes; with it, the stale etcd member and Node go
// and the new host joins, with the kubeadm-certs Secret deleted beforehand
// (the certificates are uploaded again).
func TestJoinControlPlaneReplace(t *testing.T) {
	if bed == nil {
		t.Skip("no node bed")
	}
	if grown == "" {
		t.Skip("TestJoinWorker did not run")
	}
	ctx := context.Background()
	file := grown
	b, _ := os.ReadFile(file)
	cp1, nu := bed.Host("cp-1"), bed.Host("cp-3b")
	if out, err := cp1.Exec(ctx, "kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "-n", "kube-system", "delete", "secret", "kubeadm-certs", "--ignore-not-found"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if err := bed.Host("cp-3").Kill(ctx); err != nil {
		t.Fatal(err)
	}
	// What inspect says now, read from etcd (issue 18): 1 of 3 members
	// down tolerates no more failure; after `kubectl delete node cp-3` the
	// member is stale, with the command that removes it.
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(cache, "state", "admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := inspect.NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var rep *inspect.Report
	for t0 := time.Now(); time.Since(t0) < 2*time.Minute; time.Sleep(2 * time.Second) {
		if rep, err = inspect.Inspect(ctx, src, inspect.AnalyzeOptions{}); err == nil && rep.Etcd.ReadyMembers == 2 {
			break
		}
	}
	if err != nil || !strings.Contains(rep.Etcd.Source, "etcdctl") || rep.Etcd.Members != 3 || rep.Etcd.ReadyMembers != 2 || rep.Etcd.ToleratesFailures != 0 {
		t.Errorf("inspect with cp-3 dead: %v %+v", err, rep.Etcd)
	}
	// A join goes on without a dead host it does not need (worker-2 is a
	// node already: nothing to change), and says so.
	if res, _, _, err := joinCLI(t, file, nil, "worker-2"); err != nil || res.Changed() ||
		!slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "not answering SSH: cp-3") }) {
		t.Errorf("join worker-2 with cp-3 dead: %v, changed %v, warnings %q", err, res.Changed(), res.Warnings)
	}
	if out, err := cp1.Exec(ctx, "kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "delete", "node", "cp-3"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if rep, err = inspect.Inspect(ctx, src, inspect.AnalyzeOptions{}); err != nil {
		t.Fatal(err)
	}
	stale := false
	for _, m := range rep.Etcd.MemberList {
		stale = stale || (m.Name == "cp-3" && m.Stale)
	}
	if !stale || !strings.Contains(strings.Join(rep.Reasons, " "), "member remove") {
		t.Errorf("inspect after kubectl delete node cp-3: no stale member cp-3 with its remove command: %+v %q", rep.Etcd.MemberList, rep.Reasons)
	}
	_, stderr, _, err := joinCLI(t, file, nil, "cp-3="+nu.Address.String(), "--control-plane")
	if err == nil || !strings.Contains(stderr, "etcd member cp-3") || !strings.Contains(stderr, "--replace") {
		t.Fatalf("want a refusal naming the stale etcd member: %v", err)
	}
	if after, _ := os.ReadFile(file); string(after) != string(b) {
		t.Errorf("the refused join changed the cluster file")
	}
	if out, _ := nu.Exec(ctx, "sh", "-c", "ls /etc/containerd /usr/bin/kubelet 2>/dev/null; true"); strings.TrimSpace(out) != "" {
		t.Errorf("the refused join changed %s: %s", nu.Name, out)
	}
	res, _, leaks, err := joinCLI(t, file, []*nodebed.Host{nu, cp1}, "cp-3="+nu.Address.String(), "--control-plane", "--replace")
	if err != nil {
		t.Fatalf("join --replace: %v", err)
	}
	if len(leaks) > 0 {
		t.Errorf("secrets on command lines while join ran:\n%s", strings.Join(leaks, "\n"))
	}
	if res.Verdict != "Healthy" {
		t.Errorf("verdict %q %v", res.Verdict, res.Reasons)
	}
	var did []string
	for _, p := range res.Phases {
		if p.Phase == "replace" {
			did = append(did, p.Detail)
		}
	}
	if len(did) != 1 || !strings.Contains(did[0], "etcd member cp-3") {
		t.Errorf("replace: %q", did)
	}
	members, err := cp1.Exec(ctx, "sh", "-c", "cd /etc/kubernetes/pki/etcd && curl -s --cacert ca.crt --cert healthcheck-client.crt --key healthcheck-client.key -X POST https://127.0.0.1:2379/v3/cluster/member/list -d '{}'")
	if err != nil || strings.Count(members, `"name"`) != 3 || strings.Contains(members, "isLearner") || !strings.Contains(members, nu.Address.String()+":2380") {
		t.Errorf("etcd members: want 3 voting, cp-3 at %s: %v\n%s", nu.Address, err, members)
	}
	for _, cp := range []string{"cp-1", "cp-2"} {
		if cfg, err := bed.Host(cp).Exec(ctx, "cat", "/etc/haproxy/haproxy.cfg"); err != nil || !strings.Contains(cfg, "server cp-3 "+nu.Address.String()+":6443") {
			t.Errorf("%s: HAProxy does not send to the new cp-3: %v\n%s", cp, err, cfg)
		}
	}
}

// removeCLI runs `kubectl hacluster remove args... -f file`.
func removeCLI(t *testing.T, file string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(haclusterBin(t), append(append([]string{"remove"}, args...), "-f", file, "--state-dir", filepath.Join(cache, "state"))...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0 := time.Now()
	err := cmd.Run()
	t.Logf("remove %s: %v in %s\n%s%s", strings.Join(args, " "), err, time.Since(t0).Round(time.Millisecond), stderr.String(), stdout.String())
	return stdout.String(), stderr.String(), err
}

// Take out a worker and a control plane; a removal that would cost etcd
// its quorum is refused and changes nothing.
func TestRemove(t *testing.T) {
	if grown == "" {
		t.Skip("the joins did not run")
	}
	ctx := context.Background()
	file := grown
	before, _ := os.ReadFile(file)
	cp1, cp2 := bed.Host("cp-1"), bed.Host("cp-2")
	kubectl := func(args ...string) (string, error) {
		return cp1.Exec(ctx, append([]string{"kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf"}, args...)...)
	}
	// etcd freezes on cp-2 (SIGSTOP): removing cp-3 would leave 2 members
	// with 1 healthy. Frozen, not removed: a static pod whose manifest goes
	// away and comes back waits for the kubelet to delete its mirror Pod
	// through cp-2's own API server, which has no etcd then (seen for
	// minutes in CI); SIGCONT brings it back at once.
	signal := func(sig string) {
		t.Helper()
		script := `n=0; for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = etcd ] && kill -` + sig + ` ${p#/proc/} && n=$((n+1)); done; [ $n -gt 0 ]`
		if out, err := cp2.Exec(ctx, "sh", "-c", script); err != nil {
			t.Fatalf("kill -%s etcd on cp-2: %v %s", sig, err, out)
		}
	}
	signal("STOP")
	restored := false
	restore := func() {
		if !restored {
			restored = true
			signal("CONT")
		}
	}
	defer restore()
	_, stderr, err := removeCLI(t, file, "cp-3")
	if err == nil || !strings.Contains(stderr, "quorum") {
		t.Errorf("want a refusal for quorum: %v", err)
	}
	if out, err := kubectl("get", "node", "cp-3", "-o", "name"); err != nil || !strings.Contains(out, "cp-3") {
		t.Errorf("the refused removal deleted the Node: %v %s", err, out)
	}
	restore()
	if out, err := cp2.Exec(ctx, "sh", "-c", "cd /etc/kubernetes/pki/etcd && for i in $(seq 120); do curl -s -m 2 --cacert ca.crt --cert healthcheck-client.crt --key healthcheck-client.key https://127.0.0.1:2379/health | grep -q '\"health\":\"true\"' && exit 0; sleep 1; done; exit 1"); err != nil {
		t.Fatalf("etcd on cp-2 does not come back: %v %s", err, out)
	}
	// Kubelets whose requests went to cp-2's API server (no etcd behind it)
	// missed their status updates: Ready again before the next removals.
	if out, err := kubectl("wait", "--for=condition=Ready", "node", "--all", "--timeout=3m"); err != nil {
		t.Fatalf("nodes after etcd came back on cp-2: %v %s", err, out)
	}
	if after, _ := os.ReadFile(file); string(after) != string(before) {
		t.Error("the refused removal changed the cluster file")
	}

	// A dry run plans and changes nothing.
	out, _, err := removeCLI(t, file, "worker-2", "--dry-run")
	if err != nil || !strings.Contains(out, "cordon and drain") || !strings.Contains(out, "kubeadm reset -f") {
		t.Errorf("dry run: %v\n%s", err, out)
	}
	if out, err := bed.Host("worker-2").Exec(ctx, "test", "-e", "/etc/kubernetes/kubelet.conf"); err != nil {
		t.Errorf("the dry run reset worker-2: %v %s", err, out)
	}

	// The worker, then the control plane.
	if _, _, err := removeCLI(t, file, "worker-2"); err != nil {
		t.Fatalf("remove worker-2: %v", err)
	}
	if out, _ := kubectl("get", "node", "worker-2", "--ignore-not-found", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("Node worker-2 is still there: %s", out)
	}
	if out, err := bed.Host("worker-2").Exec(ctx, "sh", "-c", "ls /etc/kubernetes/kubelet.conf 2>/dev/null; systemctl is-active kubelet; true"); strings.Contains(out, "kubelet.conf") || strings.HasPrefix(out, "active") {
		t.Errorf("worker-2 was not reset: %v %s", err, out)
	}
	out, _, err = removeCLI(t, file, "cp-3")
	if err != nil {
		t.Fatalf("remove cp-3: %v", err)
	}
	if !strings.Contains(out, "not HA") || strings.Contains(out, "FAILED") {
		t.Errorf("want a warning that 2 control planes are not HA, and no failed phase:\n%s", out)
	}
	members, err := cp1.Exec(ctx, "sh", "-c", "cd /etc/kubernetes/pki/etcd && curl -s --cacert ca.crt --cert healthcheck-client.crt --key healthcheck-client.key -X POST https://127.0.0.1:2379/v3/cluster/member/list -d '{}'")
	if err != nil || strings.Count(members, `"name"`) != 2 || strings.Contains(members, `"cp-3"`) {
		t.Errorf("etcd members: want cp-1 and cp-2: %v\n%s", err, members)
	}
	if cfg, err := cp1.Exec(ctx, "cat", "/etc/haproxy/haproxy.cfg"); err != nil || strings.Contains(cfg, "server cp-3") {
		t.Errorf("cp-1's HAProxy still lists cp-3: %v\n%s", err, cfg)
	}
	if b, _ := os.ReadFile(file); strings.Contains(string(b), "cp-3") || strings.Contains(string(b), "worker-2") {
		t.Errorf("the cluster file still lists the removed hosts:\n%s", b)
	}
	if out, err := kubectl("get", "--raw", "/readyz"); err != nil || strings.TrimSpace(out) != "ok" {
		t.Errorf("the API after the removals: %v %s", err, out)
	}
}
