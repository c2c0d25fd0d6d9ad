package preflight_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hacluster/hacluster/pkg/facts"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/nodebed"
	"github.com/hacluster/hacluster/pkg/preflight"
	"github.com/hacluster/hacluster/pkg/remote"
)

// Three control planes and a worker cloned from cp-1 (same hostname,
// machine-id and product_uuid), as a copied VM image gives.
var bed *nodebed.Bed

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	return nodebed.Main(m, nodebed.Options{Prefix: "pf", Hosts: []nodebed.HostSpec{
		{Name: "cp-1"}, {Name: "cp-2"}, {Name: "cp-3"},
		{Name: "clone", Hostname: "cp-1", SameMachineIDAs: "cp-1", SameProductUUIDAs: "cp-1"},
	}}, func(b *nodebed.Bed) { bed = b })
}

func need(t *testing.T) *nodebed.Bed {
	t.Helper()
	if bed == nil {
		t.Skip("no node bed")
	}
	return bed
}

func cluster(t *testing.T, b *nodebed.Bed) *inventory.Cluster {
	t.Helper()
	var sb strings.Builder
	fmt.Fprintf(&sb, "apiVersion: hacluster.io/v1alpha1\nkind: Cluster\nmetadata: {name: bed}\nspec:\n  hosts:\n")
	for _, h := range b.Hosts {
		role := "control-plane"
		if h.Name == "clone" {
			role = "worker"
		}
		fmt.Fprintf(&sb, "    - {name: %s, address: %s, roles: [%s]}\n", h.Name, h.Address, role)
	}
	fmt.Fprintf(&sb, "  controlPlaneEndpoint: {vip: %s}\n", b.VIP)
	c, err := inventory.Parse("cluster.yaml", []byte(sb.String()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type conns map[string]*remote.Conn

func connect(t *testing.T, b *nodebed.Bed) conns {
	t.Helper()
	out := conns{}
	for _, h := range b.Hosts {
		c, err := remote.Dial(context.Background(), remote.Target{Name: h.Name, Address: h.Address.String(), User: nodebed.SudoUser, Sudo: true,
			KeyFile: b.KeyFile, KnownHostsFiles: []string{b.KnownHostsFile}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		out[h.Name] = c
	}
	return out
}

func gather(t *testing.T, c *inventory.Cluster, cs conns) []preflight.Host {
	t.Helper()
	hosts := make([]preflight.Host, len(c.Spec.Hosts))
	var wg sync.WaitGroup
	errs := make([]error, len(hosts))
	for i, h := range c.Spec.Hosts {
		wg.Go(func() {
			f, err := facts.Gather(context.Background(), cs[h.Name])
			hosts[i], errs[i] = preflight.Host{Host: h, Facts: f}, err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return hosts
}

func (cs conns) probe(ctx context.Context, host, script string) (string, error) {
	return cs[host].Output(ctx, script, false)
}

func find(fs []preflight.Finding, host, check string) *preflight.Finding {
	for i := range fs {
		if fs[i].Host == host && fs[i].Check == check {
			return &fs[i]
		}
	}
	return nil
}

func TestFactsOfABareHost(t *testing.T) {
	b := need(t)
	cs := connect(t, b)
	h := b.Hosts[0]
	f, err := facts.Gather(context.Background(), cs[h.Name])
	if err != nil {
		t.Fatal(err)
	}
	if f.Hostname != h.Hostname || f.MachineID != h.MachineID || f.ProductUUID != h.ProductUUID {
		t.Errorf("identity: %q %q %q, bed says %q %q %q", f.Hostname, f.MachineID, f.ProductUUID, h.Hostname, h.MachineID, h.ProductUUID)
	}
	if i, p := f.InterfaceFor(h.Address); i == nil || i.MAC != h.MAC || p != b.Subnet {
		t.Errorf("interface of %s: %+v %s", h.Address, i, p)
	}
	if f.Init != "systemd" || f.PackageManager != "apt-get" || f.OS != "debian 12" || f.CPUs < 1 || f.MemoryMiB < 100 {
		t.Errorf("system: %+v", f)
	}
	if !f.Listens(22) || f.Listens(6443) {
		t.Errorf("listening: %v", f.Listening)
	}
	if f.Installed["kubeadm"] != "" || f.Installed["containerd"] != "" || f.Installed["iptables"] == "" {
		t.Errorf("installed: %v", f.Installed)
	}
	if f.Offset > time.Second || f.Offset < -time.Second {
		t.Errorf("clock offset %s (same kernel clock: should be ~0)", f.Offset)
	}
	t.Logf("facts: %s, kernel %s, cgroup v2 %v, %d CPUs, %d MiB, resolvers %v, offset %s",
		f.OSPretty, f.Kernel, f.CgroupV2, f.CPUs, f.MemoryMiB, f.Nameservers, f.Offset)
}

func TestClonedHostIsRefused(t *testing.T) {
	b := need(t)
	cs := connect(t, b)
	c := cluster(t, b)
	fs := preflight.Run(context.Background(), c, gather(t, c, cs), cs.probe)
	for _, check := range []string{"DuplicateHostname", "DuplicateMachineID", "DuplicateProductUUID"} {
		f := find(fs, "clone", check)
		if f == nil || f.Severity != preflight.Error || !strings.Contains(f.Message, "cp-1") || f.Fix == "" {
			t.Errorf("%s: %+v", check, f)
		}
	}
	if f := find(fs, "clone", "DuplicateMAC"); f != nil {
		t.Errorf("the clone has its own MAC: %+v", f)
	}
	if f := find(fs, "clone", "Hostname"); f == nil || f.Severity != preflight.Warning {
		t.Errorf("hostname mismatch: %+v", f)
	}
	// What this machine is, reported as it is.
	if f := find(fs, "cp-1", "Resolver"); f == nil || !strings.Contains(f.Message, "127.0.0.11") {
		t.Errorf("loopback resolver: %+v", f)
	}
	if failed := preflight.Failed(fs, nil); len(failed) != 3 {
		t.Errorf("%d errors, want the 3 duplicates:\n%v", len(failed), failed)
	}
	if failed := preflight.Failed(fs, []string{"duplicatehostname", "DuplicateMachineID", "DuplicateProductUUID"}); len(failed) != 0 {
		t.Errorf("ignored checks still fail: %v", failed)
	}
	for _, f := range fs {
		t.Logf("%-8s %s", f.Severity, f)
	}
}

// The VIP answering, a port taken and a host network inside the pod subnet
// are each refused, naming the host.
func TestTakenVIPPortAndSubnet(t *testing.T) {
	b := need(t)
	cs := connect(t, b)
	c := cluster(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cp2, cp3 := b.Host("cp-2"), b.Host("cp-3")
	vip := fmt.Sprintf("%s/%d", b.VIP, b.Subnet.Bits())
	setup := []struct {
		h        *nodebed.Host
		do, undo []string
	}{
		{cp2, []string{"ip", "addr", "add", vip, "dev", "eth0"}, []string{"ip", "addr", "del", vip, "dev", "eth0"}},
		{cp3, []string{"ip", "addr", "add", "10.244.3.1/24", "dev", "lo"}, []string{"ip", "addr", "del", "10.244.3.1/24", "dev", "lo"}},
		{cp3, []string{"/usr/sbin/sshd", "-p", "10259", "-o", "PidFile=/run/sshd-10259.pid"}, []string{"sh", "-c", "kill $(cat /run/sshd-10259.pid)"}},
	}
	for _, s := range setup {
		if _, err := s.h.Exec(ctx, s.do...); err != nil {
			t.Fatal(err)
		}
		defer s.h.Exec(context.Background(), s.undo...)
	}
	fs := preflight.Run(ctx, c, gather(t, c, cs), cs.probe)
	// cp-1 sees the VIP answer; cp-2 has it as its own address: either way the VIP is taken.
	vipTaken := find(fs, "cp-1", "VIPInUse")
	if vipTaken == nil {
		vipTaken = find(fs, "cp-2", "VIPInUse")
	}
	if vipTaken == nil || vipTaken.Severity != preflight.Error {
		t.Errorf("VIP in use: %+v", vipTaken)
	}
	if f := find(fs, "cp-3", "SubnetOverlap"); f == nil || !strings.Contains(f.Message, "10.244.0.0/16") {
		t.Errorf("subnet overlap: %+v", f)
	}
	if f := find(fs, "cp-3", "Port-10259"); f == nil || f.Severity != preflight.Error {
		t.Errorf("port taken: %+v", f)
	}
	if f := find(fs, "cp-1", "Port-10259"); f != nil {
		t.Errorf("a port taken on cp-3 reported on cp-1: %+v", f)
	}
}

// A firewall on cp-2 that drops etcd's client port from cp-1 (and nothing
// else) is found before anything is installed; the bare hosts otherwise
// reach each other on every port (nothing listens: the connections are
// refused, which proves the path).
func TestBlockedPortBetweenHosts(t *testing.T) {
	b := need(t)
	cs := connect(t, b)
	c := cluster(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cp1, cp2 := b.Host("cp-1"), b.Host("cp-2")
	if err := b.BlockPort(ctx, cp1, cp2, 2379); err != nil {
		t.Fatal(err)
	}
	defer b.UnblockPort(context.Background(), cp1, cp2, 2379)
	t0 := time.Now()
	fs := preflight.Run(ctx, c, gather(t, c, cs), cs.probe)
	took := time.Since(t0)
	var port []preflight.Finding
	for _, f := range fs {
		if f.Check == "PortReachability" {
			port = append(port, f)
		}
	}
	if len(port) != 1 {
		t.Fatalf("want exactly the blocked port, got %v", port)
	}
	f := port[0]
	if f.Host != "cp-1" || f.Severity != preflight.Error || !strings.Contains(f.Message, "cp-2 ("+cp2.Address.String()+") on 2379/tcp (etcd client)") ||
		!strings.Contains(f.Message, "dropped") || !strings.Contains(f.Fix, "allow 2379/tcp from "+cp1.Address.String()) {
		t.Errorf("finding: %s", f)
	}
	t.Logf("preflight with the port matrix: %s (%s)", took.Round(time.Millisecond), f)
}

// A registry mirror that does not answer from the hosts is a warning on
// each (containerd falls back to the registry); with a bundle it is not
// probed at all.
func TestDeadRegistryMirror(t *testing.T) {
	b := need(t)
	cs := connect(t, b)
	c := cluster(t, b)
	dead := fmt.Sprintf("http://%s:1/v2/registry.k8s.io", b.Gateway)
	c.Spec.Registries.Mirrors = map[string][]string{"registry.k8s.io": {dead}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hosts := gather(t, c, cs)
	fs := preflight.Run(ctx, c, hosts, cs.probe)
	for _, h := range b.Hosts {
		f := find(fs, h.Name, "RegistryMirror")
		if f == nil || f.Severity != preflight.Warning || !strings.Contains(f.Message, dead) {
			t.Errorf("%s: dead mirror: %+v", h.Name, f)
		}
	}
	c.Spec.Artifacts.Bundle = "offline.tar"
	if f := find(preflight.Run(ctx, c, hosts, cs.probe), "cp-1", "RegistryMirror"); f != nil {
		t.Errorf("probed the mirrors with a bundle: %s", f)
	}
}
