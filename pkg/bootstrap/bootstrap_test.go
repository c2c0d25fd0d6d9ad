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
	return nodebed.Main(m, nodebed.Options{Prefix: "bs", Upstream: true, Hosts: []nodebed.HostSpec{{Name: "cp-1"}, {Name: "cp-2"}, {Name: "cp-3"}, {Name: "worker-1"}}}, func(b *nodebed.Bed) { bed = b })
}

func cluster(t *testing.T, user string) *inventory.Cluster {
	t.Helper()
	u := bed.Upstream
	v := u.Versions
	doc := fmt.Sprintf(`apiVersion: hacluster.io/v1alpha1
kind: Cluster
metadata: {name: bed}
spec:
  ssh: {user: %s, keyFile: %s, knownHostsFile: %s}
  hosts:
    - {name: cp-1, address: %s, roles: [control-plane]}
    - {name: cp-2, address: %s, roles: [control-plane]}
    - {name: cp-3, address: %s, roles: [control-plane]}
    - {name: worker-1, address: %s, roles: [worker]}
  controlPlaneEndpoint: {vip: %s}
  kubernetes:
    version: %s
    # The hosts' resolv.conf is Docker's loopback resolver; the test writes this one.
    kubelet: {resolvConf: /etc/hacluster-test-resolv.conf}
  artifacts:
    containerd: %s
    runc: %s
    cniPlugins: %s
    crictl: %s
    mirrors:
      https://dl.k8s.io: %s
      https://github.com: %s
  registries:
    mirrors:
      registry.k8s.io: [%s]
      ghcr.io: [%s]
`, user, bed.KeyFile, bed.KnownHostsFile, bed.Host("cp-1").Address, bed.Host("cp-2").Address, bed.Host("cp-3").Address, bed.Host("worker-1").Address, bed.VIP,
		v.Kubernetes, v.Containerd, v.Runc, v.CNIPlugins, v.Crictl,
		u.MirrorURL("dl.k8s.io"), u.MirrorURL("github.com"), u.RegistryMirror("registry.k8s.io"), u.RegistryMirror("ghcr.io"))
	c, err := inventory.Parse(filepath.Join(t.TempDir(), "cluster.yaml"), []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func bootstrapRun(t *testing.T, c *inventory.Cluster, until string) *bootstrap.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	res, err := bootstrap.Run(ctx, c, bootstrap.Options{
		Artifacts: &artifacts.Store{Dir: cache},
		StateDir:  filepath.Join(cache, "state"),
		Until:     until,
		Logf:      t.Logf,
	})
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
	first := bootstrapRun(t, c, "kube-binaries")
	if !first.Changed() {
		t.Fatal("the first run changed nothing on bare hosts")
	}
	ctx := context.Background()
	for _, h := range bed.Hosts {
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
func TestHAControlPlane(t *testing.T) {
	if bed == nil {
		t.Skip("no node bed")
	}
	ctx := context.Background()
	for _, h := range bed.Hosts {
		if _, err := h.Exec(ctx, "sh", "-c", fmt.Sprintf("echo nameserver %s >/etc/hacluster-test-resolv.conf", bed.UpstreamDNS)); err != nil {
			t.Fatal(err)
		}
	}
	c := cluster(t, nodebed.SudoUser)
	first := bootstrapRun(t, c, "")
	for _, p := range first.Phases {
		t.Logf("  %-20s %-9s changed=%-5v %s (%s)", p.Phase, p.Host, p.Changed, p.Detail, p.Duration.Round(time.Millisecond))
	}
	if first.Kubeconfig == "" {
		t.Fatal("no kubeconfig")
	}
	kubectl := kubectlBin(t)
	out, err := exec.Command(kubectl, "--kubeconfig", first.Kubeconfig, "get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status} {end}").CombinedOutput()
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
	for _, h := range bed.Hosts {
		if out, err := h.Exec(ctx, "sh", "-c", "ls /etc/kubernetes/hacluster 2>/dev/null"); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("%s: kubeadm config files left: %q %v", h.Name, out, err)
		}
	}
	second := bootstrapRun(t, c, "")
	if second.Changed() {
		for _, p := range second.Phases {
			if p.Changed {
				t.Errorf("re-run changed %s on %s: %s", p.Phase, p.Host, p.Detail)
			}
		}
	}
	t.Logf("bare to HA control plane: %s; converged re-run: %s", first.Duration.Round(time.Millisecond), second.Duration.Round(time.Millisecond))
}

func kubectlBin(t *testing.T) string {
	t.Helper()
	dir, err := testbed.BinDir()
	if err != nil {
		t.Skip(err)
	}
	return filepath.Join(dir, "kubectl")
}

// Phases lists exactly what Run runs, in order.
func TestPhaseNames(t *testing.T) {
	src, err := os.ReadFile("bootstrap.go")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(string(src), "\n") {
		if i := strings.Index(l, `step{"`); i >= 0 {
			rest := l[i+6:]
			got = append(got, rest[:strings.IndexByte(rest, '"')])
		}
	}
	if strings.Join(got, ",") != strings.Join(bootstrap.Phases, ",") {
		t.Errorf("Run's steps %v, Phases %v", got, bootstrap.Phases)
	}
}
