package bootstrap_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hacluster/hacluster/pkg/artifacts"
	"github.com/hacluster/hacluster/pkg/bootstrap"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/nodebed"
	"github.com/hacluster/hacluster/pkg/testbed"
)

// Three bare control planes and a bare worker, the upstream in a box for
// downloads and images; one artifact cache for the package.
var (
	bed   *nodebed.Bed
	cache string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if cache, err = os.MkdirTemp("", "hacluster-artifacts-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(cache)
	return nodebed.Main(m, nodebed.Options{Prefix: "bs", Upstream: true, Hosts: []nodebed.HostSpec{{Name: "cp-1"}, {Name: "cp-2"}, {Name: "cp-3"}, {Name: "worker-1"},
		// Joined by join_test.go: a worker, and a control plane that takes
		// cp-3's place (its name and hostname) when cp-3 dies.
		{Name: "worker-2", Spare: true}, {Name: "cp-3b", Hostname: "cp-3", Spare: true},
		// A cloned VM of worker-1 that join must refuse.
		{Name: "clone", SameProductUUIDAs: "worker-1", Spare: true}}}, func(b *nodebed.Bed) { bed = b })
}

// clusterHosts are the bed's hosts the cluster file lists (not the spares).
func clusterHosts() []*nodebed.Host {
	var hs []*nodebed.Host
	for _, h := range bed.Hosts {
		if !h.Spare {
			hs = append(hs, h)
		}
	}
	return hs
}

// clusterDoc is the bed's cluster file for an SSH user.
func clusterDoc(user string) string { return bed.ClusterFile("bed", user) }

// clusterFile writes clusterDoc to a file.
func clusterFile(t *testing.T, user string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(p, []byte(clusterDoc(user)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func cluster(t *testing.T, user string) *inventory.Cluster {
	t.Helper()
	c, err := inventory.Load(clusterFile(t, user))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func bootstrapRun(t *testing.T, c *inventory.Cluster, until string, opts ...func(*bootstrap.Options)) *bootstrap.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	o := bootstrap.Options{
		Artifacts: &artifacts.Store{Dir: cache},
		StateDir:  filepath.Join(cache, "state"),
		Until:     until,
		Logf:      t.Logf,
	}
	for _, f := range opts {
		f(&o)
	}
	res, err := bootstrap.Run(ctx, c, o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// From bare hosts through the runtime and the Kubernetes binaries, as a
// sudo user; then a re-run changes nothing.
func TestPrepareRuntimeAndBinaries(t *testing.T) {
	if bed == nil {
		t.Skip("no node bed")
	}
	c := cluster(t, nodebed.SudoUser)
	// A dry run on the bare hosts plans everything and changes nothing.
	plan := bootstrapRun(t, c, "", func(o *bootstrap.Options) { o.DryRun = true })
	if len(plan.Plan) != 4 {
		t.Fatalf("dry run: %d host plans", len(plan.Plan))
	}
	for _, hp := range plan.Plan {
		var acts, diffs []string
		for _, a := range hp.Actions {
			acts = append(acts, a.What)
		}
		for _, f := range hp.Files {
			if f.New && f.Diff != "" {
				diffs = append(diffs, f.Path)
			}
		}
		all := strings.Join(acts, "; ") + " | " + strings.Join(diffs, " ")
		for _, want := range []string{"install kubelet " + bed.Upstream.Versions.Kubernetes, "install containerd", "/etc/containerd/config.toml", "/usr/lib/systemd/system/kubelet.service"} {
			if !strings.Contains(all, want) {
				t.Errorf("%s: the dry run does not plan %q: %s", hp.Host, want, all)
			}
		}
		if hp.Host == "cp-1" && (!strings.Contains(all, "kubeadm init") || !strings.Contains(all, "/etc/keepalived/keepalived.conf")) {
			t.Errorf("cp-1's plan: %s", all)
		}
	}
	for _, h := range bed.Hosts {
		if out, _ := h.Exec(context.Background(), "sh", "-c", "ls /etc/containerd /var/lib/hacluster /usr/bin/kubelet 2>/dev/null; true"); strings.TrimSpace(out) != "" {
			t.Errorf("%s: the dry run changed the host: %s", h.Name, out)
		}
	}
	if _, err := os.Stat(filepath.Join(cache, "state", "journal.jsonl")); err == nil {
		t.Error("the dry run wrote a journal")
	}
	first := bootstrapRun(t, c, "kube-binaries")
	if !first.Changed() {
		t.Fatal("the first run changed nothing on bare hosts")
	}
	ctx := context.Background()
	for _, h := range clusterHosts() {
		out, err := h.Exec(ctx, "sh", "-c", `set -e
systemctl is-active containerd
crictl info >/dev/null && echo cri-ok
/usr/local/sbin/runc --version | head -1
ls /opt/cni/bin | grep -c .
kubelet --version; kubeadm version -o short; kubectl version --client | head -1
systemctl is-enabled kubelet
cat /proc/sys/net/bridge/bridge-nf-call-iptables /proc/sys/net/ipv4/ip_forward
command -v conntrack socat
grep -c "SystemdCgroup = true" /etc/containerd/config.toml
grep "sandbox = " /etc/containerd/config.toml
grep -c "restrict_oom_score_adj = true" /etc/containerd/config.toml
cat /etc/containerd/certs.d/registry.k8s.io/hosts.toml`)
		if err != nil {
			t.Fatalf("%s: %v\n%s", h.Name, err, out)
		}
		v := bed.Upstream.Versions
		for _, want := range []string{"active\ncri-ok", "runc version " + strings.TrimPrefix(v.Runc, "v"), "Kubernetes " + v.Kubernetes, "enabled\n1\n1",
			"bin/conntrack", "sandbox = 'registry.k8s.io/pause:3.10.2'", bed.Upstream.RegistryMirror("registry.k8s.io")} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: no %q in:\n%s", h.Name, want, out)
			}
		}
	}
	// The control plane also has the load balancer's packages.
	if out, err := bed.Host("cp-1").Exec(ctx, "sh", "-c", "command -v haproxy keepalived"); err != nil || strings.Count(out, "/") < 2 {
		t.Errorf("cp-1: haproxy/keepalived: %q %v", out, err)
	}
	// containerd pulls through the mirror: the registry.k8s.io name resolves
	// to the upstream in a box (no internet here).
	if out, err := bed.Host("worker-1").Exec(ctx, "crictl", "pull", "registry.k8s.io/pause:3.10.2"); err != nil || !strings.Contains(out, "Image is up to date") {
		t.Errorf("crictl pull through the mirror: %q %v", out, err)
	}

	t0 := time.Now()
	second := bootstrapRun(t, c, "kube-binaries")
	took := time.Since(t0)
	if second.Changed() {
		t.Errorf("a re-run changed something: %+v", second.Phases)
	}
	t.Logf("first run %s, converged re-run %s", first.Duration.Round(time.Millisecond), took.Round(time.Millisecond))
	for _, p := range first.Phases {
		t.Logf("  %-14s %-9s changed=%-5v %s (%s)", p.Phase, p.Host, p.Changed, p.Detail, p.Duration.Round(time.Millisecond))
	}
}

// The rest: the VIP, kubeadm init, two control-plane joins, a worker join;
// 3 voting etcd members, kubectl through the VIP from this machine; a re-run
// changes nothing.
// The CA the cluster got from the first (killed) run's kubeadm init.
var caAfterKill string

// A bootstrap killed (SIGKILL, as a lost laptop would) while kubeadm init
// runs on cp-1, and again while cp-2 joins, with cp-2's kubeadm killed too:
// the next run (TestHAControlPlane) finishes the cluster over what they
// left, with the same CA and no kubeadm reset.
func TestKilledRunsResume(t *testing.T) {
	if bed == nil {
		t.Skip("no node bed")
	}
	ctx := context.Background()
	file := clusterFile(t, nodebed.SudoUser)
	bin := haclusterBin(t)
	killAt(t, bin, file, "[init]", 8*time.Second, nil)
	// The SSH session died with the process; kubeadm init goes on and its
	// CA is the cluster's from now on.
	ca, err := bed.Host("cp-1").Exec(ctx, "sh", "-c", "for i in $(seq 60); do test -s /etc/kubernetes/pki/ca.crt && break; sleep 1; done; sha256sum /etc/kubernetes/pki/ca.crt")
	if err != nil {
		t.Fatalf("no CA after the killed init: %v %s", err, ca)
	}
	caAfterKill = strings.Fields(ca)[0]
	killAt(t, bin, file, "[join-control-planes]", 20*time.Second, func() {
		out, _ := bed.Host("cp-2").Exec(ctx, "sh", "-c", "pkill -9 -x kubeadm && echo killed kubeadm; ls /etc/kubernetes /etc/kubernetes/manifests")
		t.Logf("cp-2 after the kill:\n%s", out)
	})
	j, err := os.ReadFile(filepath.Join(cache, "state", "journal.jsonl"))
	if err != nil || !strings.Contains(string(j), `"phase":"load-balancer"`) || strings.Count(string(j), `"outcome":"started"`) < 2 {
		t.Errorf("the journal does not show the killed runs: %v\n%s", err, j)
	}
}

func TestHAControlPlane(t *testing.T) {
	if bed == nil {
		t.Skip("no node bed")
	}
	ctx := context.Background()
	c := cluster(t, nodebed.SudoUser)
	// The user's kubeconfig already has a cluster of theirs.
	userKubeconfig := filepath.Join(t.TempDir(), "config")
	theirs := "apiVersion: v1\nkind: Config\nclusters:\n- cluster: {server: 'https://work.example:6443'}\n  name: work\ncontexts:\n- context: {cluster: work, user: me}\n  name: work\ncurrent-context: work\nusers:\n- name: me\n  user: {token: abc}\n"
	if err := os.WriteFile(userKubeconfig, []byte(theirs), 0o600); err != nil {
		t.Fatal(err)
	}
	first := bootstrapRun(t, c, "", func(o *bootstrap.Options) { o.MergeKubeconfig = userKubeconfig })
	for _, p := range first.Phases {
		t.Logf("  %-20s %-9s changed=%-5v %s (%s)", p.Phase, p.Host, p.Changed, p.Detail, p.Duration.Round(time.Millisecond))
	}
	if first.Kubeconfig == "" {
		t.Fatal("no kubeconfig")
	}
	if first.Verdict != "Healthy" {
		t.Errorf("verdict %q: %v", first.Verdict, first.Reasons)
	}
	if caAfterKill != "" {
		for _, cp := range []string{"cp-1", "cp-2", "cp-3"} {
			if ca, err := bed.Host(cp).Exec(ctx, "sha256sum", "/etc/kubernetes/pki/ca.crt"); err != nil || strings.Fields(ca)[0] != caAfterKill {
				t.Errorf("%s: the CA changed after the killed runs: %v %s", cp, err, ca)
			}
		}
	}
	// Merged into the user's kubeconfig, theirs kept and backed up.
	if m := first.Merged; m == nil || !m.Changed || m.Previous != "work" || m.Backup == "" {
		t.Errorf("merge: %+v", first.Merged)
	}
	kubectl := kubectlBin(t)
	if out, err := exec.Command(kubectl, "--kubeconfig", userKubeconfig, "config", "get-contexts", "-o", "name").CombinedOutput(); err != nil || !strings.Contains(string(out), "hacluster-bed") || !strings.Contains(string(out), "work") {
		t.Errorf("contexts after the merge: %v %s", err, out)
	}
	out, err := exec.Command(kubectl, "--kubeconfig", userKubeconfig, "get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status} {end}").CombinedOutput()
	if err != nil || strings.Count(string(out), "=True") != 4 {
		t.Fatalf("kubectl get nodes through %s: 4 Ready nodes wanted: %v\n%s", c.Endpoint(), err, out)
	}
	// CoreDNS answers on more than one node, and resolves the API's Service.
	dns, err := exec.Command(kubectl, "--kubeconfig", first.Kubeconfig, "-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns",
		"-o", "jsonpath={range .items[*]}{.spec.nodeName}={.status.phase} {end}").CombinedOutput()
	running := map[string]bool{}
	for _, f := range strings.Fields(string(dns)) {
		if node, phase, _ := strings.Cut(f, "="); phase == "Running" {
			running[node] = true
		}
	}
	if err != nil || len(running) < 2 {
		t.Errorf("CoreDNS should run on 2 nodes: %v %s", err, dns)
	}
	if b, _ := os.ReadFile(first.Kubeconfig); !strings.Contains(string(b), "server: https://"+c.Endpoint()) {
		t.Errorf("the kubeconfig does not go through the VIP %s", c.Endpoint())
	}
	members, err := bed.Host("cp-1").Exec(ctx, "sh", "-c", "cd /etc/kubernetes/pki/etcd && curl -s --cacert ca.crt --cert healthcheck-client.crt --key healthcheck-client.key -X POST https://127.0.0.1:2379/v3/cluster/member/list -d '{}'")
	if err != nil || strings.Count(members, `"name"`) != 3 || strings.Contains(members, "isLearner") {
		t.Errorf("etcd members: %v\n%s", err, members)
	}
	// kubeadm's log holds no secret, and only root reads it.
	if out, err := bed.Host("cp-1").Exec(ctx, "sh", "-c", "stat -c %a /var/log/hacluster-kubeadm.log; grep -cE -- '--token [a-z0-9]{6}[.][a-z0-9]{16}|--certificate-key [0-9a-f]{64}' /var/log/hacluster-kubeadm.log || true"); err != nil || strings.Fields(out)[0] != "600" || strings.TrimSpace(strings.Fields(out)[1]) != "0" {
		t.Errorf("kubeadm log: mode and secret lines %q %v", out, err)
	}
	// The run's bootstrap token is gone; no token or certificate key is left on the hosts.
	if tokens, err := bed.Host("cp-1").Exec(ctx, "kubeadm", "token", "list", "--kubeconfig", "/etc/kubernetes/admin.conf"); err != nil || strings.Contains(tokens, "kubectl hacluster bootstrap") {
		t.Errorf("bootstrap tokens left: %v\n%s", err, tokens)
	}
	for _, h := range clusterHosts() {
		if out, err := h.Exec(ctx, "sh", "-c", "ls /etc/kubernetes/hacluster 2>/dev/null"); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("%s: kubeadm config files left: %q %v", h.Name, out, err)
		}
	}
	workload(t, kubectl, userKubeconfig)
	// A converged re-run, this time as root over SSH.
	second := bootstrapRun(t, cluster(t, nodebed.RootUser), "", func(o *bootstrap.Options) { o.MergeKubeconfig = userKubeconfig })
	if second.Changed() {
		for _, p := range second.Phases {
			if p.Changed {
				t.Errorf("re-run changed %s on %s: %s", p.Phase, p.Host, p.Detail)
			}
		}
	}
	// A dry run on the finished cluster has nothing to do.
	plan := bootstrapRun(t, c, "", func(o *bootstrap.Options) { o.DryRun = true })
	for _, hp := range plan.Plan {
		for _, a := range hp.Actions {
			t.Errorf("%s: the dry run on the finished cluster would %s (%s)", hp.Host, a.What, a.Phase)
		}
		for _, f := range hp.Files {
			if f.Diff != "" {
				t.Errorf("%s: the dry run on the finished cluster would change %s:\n%s", hp.Host, f.Path, f.Diff)
			}
		}
	}
	t.Logf("bare to HA control plane: %s; converged re-run: %s; dry run: %s", first.Duration.Round(time.Millisecond), second.Duration.Round(time.Millisecond), plan.Duration.Round(time.Millisecond))
}

func kubectlBin(t *testing.T) string {
	t.Helper()
	dir, err := testbed.BinDir()
	if err != nil {
		t.Skip(err)
	}
	return filepath.Join(dir, "kubectl")
}

// Phases, JoinPhases and RemovePhases list exactly what a full Run, Join
// and Remove run, in order.
func TestPhaseNames(t *testing.T) {
	for _, tc := range []struct {
		file   string
		phases []string
	}{{"bootstrap.go", bootstrap.Phases}, {"join.go", bootstrap.JoinPhases}, {"remove.go", bootstrap.RemovePhases}} {
		src, err := os.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		// The full run's sequence (a dry run's comes before it).
		_, full, ok := strings.Cut(string(src), "err = r.sequence(ctx,")
		if !ok {
			t.Fatalf("no full sequence in %s", tc.file)
		}
		full, _, _ = strings.Cut(full, "\n\t)\n")
		var got []string
		for _, l := range strings.Split(full, "\n") {
			if i := strings.Index(l, `step{"`); i >= 0 {
				rest := l[i+6:]
				got = append(got, rest[:strings.IndexByte(rest, '"')])
			}
		}
		if strings.Join(got, ",") != strings.Join(tc.phases, ",") {
			t.Errorf("%s: steps %v, phase list %v", tc.file, got, tc.phases)
		}
	}
}
