package bootstrap

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hacluster/hacluster/pkg/facts"
	"github.com/hacluster/hacluster/pkg/fileutil"
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
	pass, err := r.vrrpPassword()
	if err != nil {
		return err
	}
	cps := r.c.ControlPlanes()
	onCP := func(ctx context.Context, h inventory.Host, c *remote.Conn, f *facts.Facts) (bool, string, error) {
		if !h.HasRole(inventory.RoleControlPlane) {
			return false, "not a control plane", nil
		}
		kconf, err := r.keepalivedConfig(h, f, cps, pass)
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
			{keepalivedConf, kconf, 0o600, "keepalived"}, // holds the VRRP password
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
	if err := r.onEveryHost("load-balancer", onCP)(ctx); err != nil {
		return err
	}
	// The VIP must be up somewhere before kubeadm uses it.
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

// vrrpPassword is keepalived's VRRP password: generated once, kept 0600 in
// the state directory, the same on every control plane.
func (r *run) vrrpPassword() (string, error) {
	p := filepath.Join(r.stateDir(), "keepalived-auth")
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	const letters = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 8) // VRRP PASS authentication takes 8 characters
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", err
	}
	return string(b), fileutil.WriteAtomic(p, append(b, '\n'), 0o600)
}

// haproxyConfig balances TCP to every API server, checking each with
// GET /readyz over TLS; a server that fails twice in a row leaves the pool,
// and its open connections are cut so clients reconnect to a live one.
func haproxyConfig(c *inventory.Cluster, cps []inventory.Host) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by kubectl hacluster bootstrap; a re-run rewrites it.
global
    log stdout format raw local0
    daemon

defaults
    mode tcp
    log global
    option tcplog
    option dontlognull
    # A new connection that fails goes to another server.
    option redispatch
    retries 1
    timeout connect 2s
    timeout client 1h
    timeout server 1h
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
    # Checked every second; down after 2 failures, up after 2 successes.
    default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions check check-ssl verify none
`, c.Spec.ControlPlaneEndpoint.Port)
	for _, h := range cps {
		fmt.Fprintf(&b, "    server %s %s\n", h.Name, net.JoinHostPort(h.InternalAddress, "6443"))
	}
	return b.String()
}

// checkHAProxyScript: keepalived keeps the VIP where HAProxy runs. It checks
// the local HAProxy, not the API servers behind it, so that an API server
// restart does not move the VIP.
const checkHAProxyScript = `#!/bin/sh
# Written by kubectl hacluster bootstrap: keepalived's health check of the local HAProxy.
exec systemctl is-active --quiet haproxy
`

// keepalivedConfig: unicast VRRP between the control planes (multicast is
// often filtered), the first one preferred.
func (r *run) keepalivedConfig(h inventory.Host, f *facts.Facts, cps []inventory.Host, pass string) (string, error) {
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
	state := "BACKUP"
	var peers []string
	for i, cp := range cps {
		if cp.Name == h.Name {
			prio = 150 - i
			if i == 0 {
				state = "MASTER"
			}
			continue
		}
		peers = append(peers, "        "+cp.InternalAddress)
	}
	return fmt.Sprintf(`# Written by kubectl hacluster bootstrap; a re-run rewrites it. 0600: it holds the VRRP password.
global_defs {
    router_id %[1]s
    enable_script_security
    script_user root
}

vrrp_script check_haproxy {
    script "%[2]s"
    interval 1
    fall 2
    rise 2
    weight -60
}

vrrp_instance kube_apiserver {
    state %[3]s
    interface %[4]s
    virtual_router_id %[5]d
    priority %[6]d
    advert_int 1
    unicast_src_ip %[7]s
    unicast_peer {
%[8]s
    }
    authentication {
        auth_type PASS
        auth_pass %[9]s
    }
    virtual_ipaddress {
        %[10]s/%[11]d dev %[4]s
    }
    track_script {
        check_haproxy
    }
}
`, h.Name, keepalivedCheck, state, dev, e.VirtualRouterID, prio, self, strings.Join(peers, "\n"), pass, e.VIP, prefix.Bits()), nil
}
