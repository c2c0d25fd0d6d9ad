package bootstrap

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hacluster/hacluster/pkg/facts"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/remote"
)

const (
	haproxyConf     = "/etc/haproxy/haproxy.cfg"
	keepalivedConf  = "/etc/keepalived/keepalived.conf"
	keepalivedCheck = "/etc/keepalived/check_haproxy.sh"
)

func isControlPlane(h inventory.Host) bool {
	return slices.Contains(h.Roles, inventory.RoleControlPlane)
}

// loadBalancer: on every control plane, HAProxy on the endpoint port in
// front of all API servers, and keepalived holding the VIP where HAProxy
// runs. Skipped for an external load balancer.
func (r *run) loadBalancer(ctx context.Context) error {
	if r.c.Spec.ControlPlaneEndpoint.VIP == "" {
		r.record(PhaseResult{Phase: "load-balancer", Detail: "external load balancer " + r.c.Spec.ControlPlaneEndpoint.LoadBalancer})
		return nil
	}
	if err := r.onEveryHost("load-balancer", r.lbHost)(ctx); err != nil {
		return err
	}
	return r.waitVIP(ctx)
}

// waitVIP: the VIP must be up somewhere before kubeadm uses it.
func (r *run) waitVIP(ctx context.Context) error {
	cps := r.c.ControlPlanes()
	vip := r.c.Spec.ControlPlaneEndpoint.VIP
	for t0 := time.Now(); time.Since(t0) < 30*time.Second; time.Sleep(300 * time.Millisecond) {
		for _, h := range cps {
			out, err := r.fleet.Conns[h.Name].Output(ctx, "ip -4 -o addr show | grep -F ' "+vip+"/' || true", false)
			if err == nil && strings.TrimSpace(out) != "" {
				r.o.Logf("  VIP %s is on %s", vip, h.Name)
				return nil
			}
		}
	}
	return fmt.Errorf("no control plane took the VIP %s within 30 s (see `journalctl -u keepalived` on them)", vip)
}

// lbHost writes and (re)starts HAProxy and keepalived on one control plane
// for the control planes of the file; workers are left alone.
func (r *run) lbHost(ctx context.Context, h inventory.Host, c *remote.Conn, f *facts.Facts) (bool, string, error) {
	cps := r.c.ControlPlanes()
	if !h.HasRole(inventory.RoleControlPlane) {
		return false, "not a control plane", nil
	}
	kconf, err := r.keepalivedConfig(h, f, cps)
	if err != nil {
		return false, "", err
	}
	var did []string
	for _, file := range []struct {
		path, data string
		mode       os.FileMode
		unit       string
	}{
		{haproxyConf, haproxyConfig(r.c, cps), 0o644, "haproxy"},
		{keepalivedCheck, checkHAProxyScript, 0o755, "keepalived"},
		{keepalivedConf, kconf, 0o600, "keepalived"},
	} {
		changed, err := r.ensureContent(ctx, c, file.path, []byte(file.data), file.mode)
		if err != nil {
			return false, "", err
		}
		if changed && !slices.Contains(did, file.unit) {
			did = append(did, file.unit)
		}
	}
	configured := did
	did = nil
	for _, unit := range []string{"haproxy", "keepalived"} {
		active, _ := c.Output(ctx, "systemctl is-active "+unit+" || true", false)
		switch {
		case strings.TrimSpace(active) != "active":
			if _, err := c.Output(ctx, "systemctl enable -q --now "+unit+" && systemctl restart "+unit, true); err != nil {
				return false, "", err
			}
			did = append(did, unit+" configured and started")
		case slices.Contains(configured, unit):
			// HAProxy reloads without dropping connections.
			if _, err := c.Output(ctx, "systemctl reload-or-restart "+unit, true); err != nil {
				return false, "", err
			}
			did = append(did, unit+" configured and reloaded")
		}
	}
	if len(did) == 0 {
		return false, "HAProxy and keepalived already configured and running", nil
	}
	return true, strings.Join(did, ", "), nil
}

// haproxyConfig balances TCP to every API server. The settings, tuned with
// `kubectl hacluster drill failover` (pkg/drill) and explained in the file
// itself, aim at under 1 s of unavailability when one API server stops and
// under 3 s (with keepalived) when the VIP holder dies.
func haproxyConfig(c *inventory.Cluster, cps []inventory.Host) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by kubectl hacluster bootstrap; a re-run rewrites it.
# Tuned with kubectl hacluster drill failover: under 1 s of API unavailability
# through the VIP when one API server stops, under 3 s when the VIP holder dies.
global
    log stdout format raw local0
    daemon

defaults
    mode tcp
    log global
    option tcplog
    option dontlognull
    # A new connection that fails (refused, or no answer within timeout
    # connect) is tried again up to 3 times, each time on another server
    # (redispatch 1): a client connecting while an API server goes away waits
    # one connect timeout at worst, it does not see the error.
    option redispatch 1
    retries 3
    # The API servers are on the same network: a TCP handshake takes
    # milliseconds, even when the server is loaded (the kernel answers it).
    # 500 ms without an answer means the host is gone.
    timeout connect 500ms
    # Watches and exec sessions stay open for long.
    timeout client 1h
    timeout server 1h
    # A slow /readyz is given 2 s before the check counts as failed, so that
    # a loaded API server is not taken out of the pool for being slow.
    timeout check 2s

frontend kube-apiserver
    bind *:%d
    default_backend kube-apiservers

backend kube-apiservers
    balance roundrobin
    option httpchk
    http-check connect ssl
    http-check send meth GET uri /readyz
    http-check expect status 200
    # Checks: every second (inter 1s); after a first failure every 250 ms
    # (fastinter) so that a stopping server is out 250 ms after its second
    # failed check (fall 2); back after 2 good checks (rise 2), every second
    # while down (downinter). An API server fails /readyz as soon as it is
    # asked to stop, while it still serves: it leaves the pool before it
    # closes its port.
    # observe layer4: a real connection that fails at the TCP level marks the
    # server down at once (on-error mark-down), without waiting for the
    # checks; that is a dead host, never a slow one.
    # on-marked-down shutdown-sessions: the connections (watches) to a server
    # marked down are cut, so that clients reconnect to a live one instead of
    # waiting on a dead one.
    default-server inter 1s fastinter 250ms downinter 1s fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down on-marked-down shutdown-sessions check check-ssl verify none
`, c.Spec.ControlPlaneEndpoint.Port)
	for _, h := range cps {
		fmt.Fprintf(&b, "    server %s %s\n", h.Name, net.JoinHostPort(h.InternalAddress, "6443"))
	}
	return b.String()
}

// checkHAProxyScript: keepalived keeps the VIP where HAProxy runs. It checks
// the local HAProxy, not the API servers behind it, so that an API server
// restart does not move the VIP; and it asks the kernel (pidof), not
// systemd, so that it answers at once on a loaded host.
const checkHAProxyScript = `#!/bin/sh
# Written by kubectl hacluster bootstrap: keepalived's health check of the local HAProxy.
# Only HAProxy itself: an API server that restarts or is slow must not move the
# VIP (HAProxy sends its clients to the other API servers). pidof reads /proc:
# no D-Bus round trip to time out on a loaded host.
exec pidof haproxy >/dev/null
`

// keepalivedConfig: unicast VRRP between the control planes (multicast is
// often filtered), every host a BACKUP with nopreempt: the first to come up
// (the highest priority when they start together) keeps the VIP until it
// fails.
func (r *run) keepalivedConfig(h inventory.Host, f *facts.Facts, cps []inventory.Host) (string, error) {
	e := r.c.Spec.ControlPlaneEndpoint
	self, err := netip.ParseAddr(h.InternalAddress)
	if err != nil {
		return "", err
	}
	iface, prefix := f.InterfaceFor(self)
	if iface == nil {
		return "", fmt.Errorf("no interface holds %s", self)
	}
	dev := iface.Name
	if e.Interface != "" {
		dev = e.Interface
	}
	prio := 100
	var peers []string
	for i, cp := range cps {
		if cp.Name == h.Name {
			prio = 150 - i
			continue
		}
		peers = append(peers, "        "+cp.InternalAddress)
	}
	return fmt.Sprintf(`# Written by kubectl hacluster bootstrap; a re-run rewrites it.
# Tuned with kubectl hacluster drill failover: the VIP moves within 2 s of its
# holder's death, and stays where it is while an API server is slow or restarts.
global_defs {
    router_id %[1]s
    enable_script_security
    script_user root
    # VRRP version 3: advertisements under a second (version 2 counts in whole
    # seconds, and its 3 missed adverts make 3.4 s before a backup takes over).
    # Version 3 has no password: check_unicast_src below accepts adverts from
    # the other control planes only.
    vrrp_version 3
    # keepalived runs before the rest when the host is starved of CPU, so that
    # a busy host does not miss its adverts and lose the VIP for nothing.
    vrrp_priority -10
}

vrrp_script check_haproxy {
    script "%[2]s"
    # Every second, 2 s to answer; 2 failures in a row take the VIP away, 2
    # successes give this host back its place.
    interval 1
    timeout 2
    fall 2
    rise 2
    # No weight: a failed check puts the instance in FAULT, which gives the
    # VIP up at once (an advert with priority 0) whatever the others'
    # nopreempt.
}

vrrp_instance kube_apiserver {
    # All BACKUP with nopreempt: a host that comes back (rebooted, keepalived
    # restarted) does not take the VIP back, which would cut the clients'
    # connections a second time.
    state BACKUP
    nopreempt
    interface %[3]s
    virtual_router_id %[4]d
    priority %[5]d
    # An advert every 0.5 s: the backups take over after 3 missed adverts
    # plus a skew of (256 - priority) / 256 of an advert, 1.7 s. Lower would
    # risk moving the VIP off a host that is only busy.
    advert_int 0.5
    unicast_src_ip %[6]s
    unicast_peer {
%[7]s
    }
    check_unicast_src
    virtual_ipaddress {
        %[8]s/%[9]d dev %[3]s
    }
    track_script {
        check_haproxy
    }
}
`, h.Name, keepalivedCheck, dev, e.VirtualRouterID, prio, self, strings.Join(peers, "\n"), e.VIP, prefix.Bits()), nil
}
