// Package offline_test bootstraps the node bed's hosts from an offline
// bundle while they are cut off from the release sites, the registry and
// the Debian mirror (issue 16); pkg/bootstrap's own tests install online.
package offline_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hacluster/hacluster/pkg/artifacts"
	"github.com/hacluster/hacluster/pkg/bootstrap"
	"github.com/hacluster/hacluster/pkg/bundle"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/nodebed"
)

var bed *nodebed.Bed

func TestMain(m *testing.M) {
	os.Exit(nodebed.Main(m, nodebed.Options{Prefix: "bo", Upstream: true, Hosts: []nodebed.HostSpec{{Name: "cp-1"}, {Name: "cp-2"}, {Name: "cp-3"}, {Name: "worker-1"}}}, func(b *nodebed.Bed) { bed = b }))
}

func TestBootstrapFromABundleCutOff(t *testing.T) {
	if bed == nil {
		t.Skip("no node bed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	dir := t.TempDir()
	file := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(file, []byte(bed.ClusterFile("offline", nodebed.SudoUser)), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := inventory.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	a := c.Spec.Artifacts

	// The bundle, built on this machine from the upstream in a box.
	b := filepath.Join(dir, "cluster.tar")
	t0 := time.Now()
	if _, err := bundle.Build(ctx, bundle.Options{Output: b, CNI: "flannel", CacheDir: filepath.Join(dir, "build-cache"),
		Versions: bundle.Versions{Kubernetes: c.Spec.Kubernetes.Version, Containerd: a.Containerd, Runc: a.Runc, CNIPlugins: a.CNIPlugins, Crictl: a.Crictl, Flannel: a.Flannel},
		Mirrors:  a.Mirrors, RegistryMirrors: c.Spec.Registries.Mirrors}); err != nil {
		t.Fatal(err)
	}
	t.Logf("bundle built in %s", time.Since(t0).Round(time.Millisecond))

	// What a bundle does not carry: the OS packages (conntrack, socat,
	// ethtool, ebtables; HAProxy and keepalived on the control planes)
	// are installed before the hosts are cut off, as a site would from
	// its own OS mirror.
	for _, h := range bed.Hosts {
		pkgs := "conntrack socat ethtool ebtables"
		if h.Name != "worker-1" {
			pkgs += " haproxy keepalived"
		}
		if out, err := h.Exec(ctx, "sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "+pkgs+" >/dev/null"); err != nil {
			t.Fatalf("%s: %v\n%s", h.Name, err, out)
		}
	}
	// Cut off: the upstream in a box (release files and registry) and any
	// http(s) site outside the bed network (the Debian mirror) are dropped
	// by each host's own firewall.
	boxHost, boxPort, _ := net.SplitHostPort(bed.Upstream.Addr)
	for _, h := range bed.Hosts {
		script := fmt.Sprintf("iptables -w -I OUTPUT -d %s -p tcp --dport %s -j DROP && iptables -w -I OUTPUT ! -d %s -p tcp -m multiport --dports 80,443 -j DROP", boxHost, boxPort, bed.Subnet)
		if out, err := h.Exec(ctx, "sh", "-c", script); err != nil {
			t.Fatalf("%s: %v\n%s", h.Name, err, out)
		}
	}
	if out, err := bed.Host("cp-1").Exec(ctx, "sh", "-c", "curl -sS -m 3 -o /dev/null "+bed.Upstream.URL+"/v2/ && echo reached"); err == nil || strings.Contains(out, "reached") {
		t.Fatalf("the hosts still reach the upstream in a box: %q %v", out, err)
	}

	run := func(bundleFile string) (*bootstrap.Result, error) {
		return bootstrap.Run(ctx, c, bootstrap.Options{Bundle: bundleFile, Artifacts: &artifacts.Store{Dir: filepath.Join(dir, "cache")},
			StateDir: filepath.Join(dir, "state"), Logf: t.Logf})
	}
	// A bundle with one byte changed is refused before anything changes.
	bad := filepath.Join(dir, "tampered.tar")
	data, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(bad, data, 0o600); err != nil {
		t.Fatal(err)
	}
	data = nil
	if _, err := run(bad); err == nil || !strings.Contains(err.Error(), "download") {
		t.Fatalf("a tampered bundle was not refused: %v", err)
	} else {
		t.Logf("tampered bundle: %v", err)
	}
	if out, _ := bed.Host("cp-1").Exec(ctx, "sh", "-c", "ls /usr/bin/kubelet /etc/containerd 2>/dev/null; true"); strings.TrimSpace(out) != "" {
		t.Errorf("the refused run installed %s", out)
	}

	before := bed.Upstream.Requests()
	t0 = time.Now()
	res, err := run(b)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != "Healthy" {
		t.Errorf("verdict %s: %v", res.Verdict, res.Reasons)
	}
	if after := bed.Upstream.Requests(); !maps.Equal(before, after) {
		t.Errorf("the hosts or bootstrap reached the upstream in a box: %v -> %v", before, after)
	}
	t.Logf("bootstrap from the bundle, cut off: %s", time.Since(t0).Round(time.Millisecond))
	// Every image came from the bundle: pause under its kubeadm name.
	if out, err := bed.Host("worker-1").Exec(ctx, "sh", "-c", "ctr -n k8s.io images ls -q | grep -c ."); err != nil || strings.TrimSpace(out) == "0" {
		t.Errorf("images on worker-1: %q %v", out, err)
	}
}
