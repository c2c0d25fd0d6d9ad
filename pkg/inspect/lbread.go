package inspect

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/hacluster/hacluster/pkg/fleet"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/remote"
)

// HostRunner runs a read-only script on one host (a *remote.Conn).
type HostRunner interface {
	Output(ctx context.Context, script string, sudo bool) (string, error)
}

// LoadBalancerSource reads the control planes' keepalived and HAProxy
// (Source.LoadBalancer; nil: the section is left out).
type LoadBalancerSource interface {
	ReadLoadBalancer(ctx context.Context) *LoadBalancerSnapshot
}

// LoadBalancerReader reads, over SSH and without root, each control plane
// of a cluster file whose endpoint is a VIP (keepalived + HAProxy, as
// bootstrap sets up): whether it holds the VIP (`ip -4 -o addr`), the
// state of both units (`systemctl is-active`) and /etc/haproxy/haproxy.cfg,
// one SSH session per host, all hosts at once.
type LoadBalancerReader struct {
	Cluster *inventory.Cluster
	// Conns are connections already open, by host name (drill's fleet);
	// the other control planes are dialled (fleet.Target, remote.Dial) and
	// closed after the read.
	Conns             map[string]HostRunner
	AcceptNewHostKeys bool
	// Timeout bounds each host's dial and read (default 10 s).
	Timeout time.Duration
}

// NewLoadBalancerReader returns the reader for c, or nil when c's endpoint
// is an external load balancer (nothing of it runs on the hosts).
func NewLoadBalancerReader(c *inventory.Cluster, acceptNewHostKeys bool) *LoadBalancerReader {
	if c == nil || c.Spec.ControlPlaneEndpoint.VIP == "" {
		return nil
	}
	return &LoadBalancerReader{Cluster: c, AcceptNewHostKeys: acceptNewHostKeys}
}

// The markers of lbScript's output.
const (
	lbConfigMarker  = "--- haproxy.cfg"
	lbConfigMissing = "config=missing"
)

// lbScript prints vip=N, keepalived=STATE, haproxy=STATE, then the
// HAProxy configuration after a marker line.
func lbScript(vip string) string {
	return `printf 'vip=%s\n' "$(ip -4 -o addr show | grep -cF -- ` + remote.Quote(" "+vip+"/") + `)"
printf 'keepalived=%s\n' "$(systemctl is-active keepalived 2>/dev/null)"
printf 'haproxy=%s\n' "$(systemctl is-active haproxy 2>/dev/null)"
if [ -r /etc/haproxy/haproxy.cfg ]; then echo '` + lbConfigMarker + `'; cat /etc/haproxy/haproxy.cfg; else echo ` + lbConfigMissing + `; fi
`
}

// parseLBScript reads lbScript's output into st.
func parseLBScript(out string, st *LBHostState) error {
	head, cfg, found := strings.Cut(out, lbConfigMarker+"\n")
	if found {
		st.HAProxyConfig = cfg
	}
	sawVIP := false
	for _, line := range strings.Split(head, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "vip":
			sawVIP = true
			st.HoldsVIP = v != "" && v != "0"
		case "keepalived":
			st.Keepalived = v
		case "haproxy":
			st.HAProxy = v
		case "config":
			st.ConfigMissing = v == "missing"
		}
	}
	if !sawVIP {
		return errors.New("unexpected output of the load balancer check: " + firstLine(out))
	}
	if !found && !st.ConfigMissing {
		st.ConfigMissing = true
	}
	return nil
}

// ReadLoadBalancer reads every control plane; a host that cannot be read
// has its Err set.
func (r *LoadBalancerReader) ReadLoadBalancer(ctx context.Context) *LoadBalancerSnapshot {
	e := r.Cluster.Spec.ControlPlaneEndpoint
	s := &LoadBalancerSnapshot{VIP: e.VIP, Port: e.Port}
	cps := r.Cluster.ControlPlanes()
	s.Hosts = make([]LBHostState, len(cps))
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	var wg sync.WaitGroup
	for i, h := range cps {
		s.ControlPlanes = append(s.ControlPlanes, LBMember{Name: h.Name, Address: h.InternalAddress})
		s.Hosts[i].Name = h.Name
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			st := &s.Hosts[i]
			run, ok := r.Conns[h.Name]
			if !ok {
				t, err := fleet.Target(r.Cluster, h, r.AcceptNewHostKeys)
				if err != nil {
					st.Err = err
					return
				}
				t.Timeout = timeout
				c, err := remote.Dial(ctx, t)
				if err != nil {
					st.Err = err
					return
				}
				defer c.Close()
				run = c
			}
			out, err := run.Output(ctx, lbScript(e.VIP), false)
			if err == nil {
				err = parseLBScript(out, st)
			}
			st.Err = err
		})
	}
	wg.Wait()
	return s
}
