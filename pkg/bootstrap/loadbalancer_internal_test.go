package bootstrap

import (
	"fmt"
	"slices"
	"testing"

	"github.com/hacluster/hacluster/pkg/inspect"
	"github.com/hacluster/hacluster/pkg/inventory"
)

// inspect components -f reads the haproxy.cfg this package writes: its
// parser finds every control plane's API server in the real rendering, and
// the analysis finds nothing to say about it.
func TestInspectReadsRenderedHAProxyConfig(t *testing.T) {
	c := &inventory.Cluster{Spec: inventory.Spec{ControlPlaneEndpoint: inventory.Endpoint{VIP: "10.0.0.100", Port: 16443}}}
	for i := 1; i <= 3; i++ {
		c.Spec.Hosts = append(c.Spec.Hosts, inventory.Host{Name: fmt.Sprintf("cp-%d", i), InternalAddress: fmt.Sprintf("10.0.0.1%d", i),
			Roles: []string{inventory.RoleControlPlane}})
	}
	cfg := haproxyConfig(c, c.ControlPlanes())
	servers, backend, found := inspect.ParseHAProxyServers(cfg, 16443)
	var addrs []string
	for _, s := range servers {
		addrs = append(addrs, s.Address)
	}
	if !found || backend != "kube-apiservers" || !slices.Equal(addrs, []string{"10.0.0.11:6443", "10.0.0.12:6443", "10.0.0.13:6443"}) {
		t.Fatalf("found %v, backend %q, servers %q in:\n%s", found, backend, addrs, cfg)
	}
	s := &inspect.LoadBalancerSnapshot{VIP: "10.0.0.100", Port: 16443}
	for i, h := range c.ControlPlanes() {
		s.ControlPlanes = append(s.ControlPlanes, inspect.LBMember{Name: h.Name, Address: h.InternalAddress})
		// cp-3's file was written before cp-3 joined.
		hc := cfg
		if i == 2 {
			hc = haproxyConfig(c, c.ControlPlanes()[:2])
		}
		s.Hosts = append(s.Hosts, inspect.LBHostState{Name: h.Name, HoldsVIP: i == 0, Keepalived: "active", HAProxy: "active", HAProxyConfig: hc})
	}
	_, fs := inspect.AnalyzeLoadBalancer(s)
	var problems []inspect.Finding
	for _, f := range fs {
		if f.Severity != inspect.OK {
			problems = append(problems, f)
		}
	}
	if len(problems) != 1 || problems[0].Subject != "cp-3" || problems[0].Check != "loadbalancer.backends" {
		t.Errorf("problems %+v, want cp-3's backend lacking 10.0.0.13:6443", problems)
	}
}
