package inspect

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// The load balancer bootstrap sets up on every control plane: keepalived
// holds the VIP and HAProxy on the endpoint port balances to every API
// server. The API cannot show it; with a cluster file (inspect components
// -f) it is read over SSH (LoadBalancerReader) into a LoadBalancerSnapshot,
// which AnalyzeLoadBalancer judges without any I/O.

// APIServerPort is the port of the API servers behind HAProxy (bootstrap
// leaves kubeadm's default).
const APIServerPort = 6443

// LoadBalancerSnapshot is what was read on the control planes.
type LoadBalancerSnapshot struct {
	// VIP and Port are the cluster file's controlPlaneEndpoint.
	VIP  string
	Port int
	// ControlPlanes are the cluster file's control planes, in its order.
	ControlPlanes []LBMember
	// Hosts are what each control plane said, in the same order.
	Hosts []LBHostState
}

// LBMember is a control plane of the cluster file.
type LBMember struct {
	Name string
	// Address is the host's internal address (what HAProxy must dial).
	Address string
}

// LBHostState is one control plane as read over SSH.
type LBHostState struct {
	Name string
	// Err: the host could not be reached or the script failed; nothing
	// else is set then.
	Err error
	// HoldsVIP: one of the host's addresses is the VIP.
	HoldsVIP bool
	// Keepalived and HAProxy are `systemctl is-active` of the units
	// (active, inactive, failed, activating, ...).
	Keepalived string
	HAProxy    string
	// HAProxyConfig is /etc/haproxy/haproxy.cfg; ConfigMissing: the file
	// does not exist or is not readable.
	HAProxyConfig string
	ConfigMissing bool
}

// LoadBalancerInfo is the "LOAD BALANCER" section of the report.
type LoadBalancerInfo struct {
	VIP  string `json:"vip"`
	Port int    `json:"port"`
	// Holders are the control planes holding the VIP: exactly one must.
	Holders []string `json:"holders"`
	Hosts   []LBHost `json:"hosts"`
}

// LBHost is one control plane's keepalived and HAProxy.
type LBHost struct {
	Name      string `json:"name"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	HoldsVIP  bool   `json:"holdsVIP"`
	// Keepalived and HAProxy are the units' states (systemctl is-active).
	Keepalived string `json:"keepalived,omitempty"`
	HAProxy    string `json:"haproxy,omitempty"`
	// Backends are the server addresses of the HAProxy backend the
	// frontend on the endpoint port sends to (haproxy.cfg).
	Backends []string `json:"backends"`
	// Missing are control planes' API servers the backend lacks; Extra
	// are its servers that are no control plane of the cluster file.
	Missing []string `json:"missing"`
	Extra   []string `json:"extra"`
}

// HAProxyServer is one `server` line of a backend.
type HAProxyServer struct {
	Name    string
	Address string // as written: host:port (port may be missing)
}

// ParseHAProxyServers returns the servers of the backend that the
// frontend (or listen section) bound to port sends to: its servers
// (listen), or those of its default_backend. found is false when no
// frontend binds port. Only what bootstrap writes and what people
// usually write is understood: `bind *:PORT` / `bind ADDR:PORT`,
// `default_backend NAME`, `server NAME ADDR[:PORT] ...`.
func ParseHAProxyServers(cfg string, port int) (servers []HAProxyServer, backend string, found bool) {
	type section struct {
		kind, name string
		binds      []string
		defBackend string
		servers    []HAProxyServer
	}
	var secs []*section
	var cur *section
	sc := bufio.NewScanner(strings.NewReader(cfg))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "global", "defaults", "frontend", "backend", "listen", "resolvers", "peers", "userlist", "program", "mailers", "http-errors", "ring", "cache":
			cur = &section{kind: f[0]}
			if len(f) > 1 {
				cur.name = f[1]
			}
			secs = append(secs, cur)
			continue
		}
		if cur == nil {
			continue
		}
		switch {
		case f[0] == "bind" && len(f) > 1:
			cur.binds = append(cur.binds, strings.Split(f[1], ",")...)
		case f[0] == "default_backend" && len(f) > 1:
			cur.defBackend = f[1]
		case f[0] == "use_backend" && len(f) > 1 && cur.defBackend == "":
			// A frontend with only use_backend rules: take the first.
			cur.defBackend = f[1]
		case f[0] == "server" && len(f) > 2:
			cur.servers = append(cur.servers, HAProxyServer{Name: f[1], Address: f[2]})
		}
	}
	want := ":" + strconv.Itoa(port)
	for _, s := range secs {
		if s.kind != "frontend" && s.kind != "listen" {
			continue
		}
		if !slices.ContainsFunc(s.binds, func(b string) bool { return strings.HasSuffix(b, want) }) {
			continue
		}
		if s.kind == "listen" && len(s.servers) > 0 {
			return s.servers, s.name, true
		}
		for _, b := range secs {
			if (b.kind == "backend" || b.kind == "listen") && b.name == s.defBackend {
				return b.servers, b.name, true
			}
		}
		return nil, s.defBackend, true
	}
	return nil, "", false
}

// normAddr makes host:port comparable (IPv6 forms, a missing port).
func normAddr(a string, defPort int) string {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		host, port = strings.Trim(a, "[]"), strconv.Itoa(defPort)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.Unmap().String()
	}
	return net.JoinHostPort(host, port)
}

// AnalyzeLoadBalancer judges what was read on the control planes: exactly
// one holds the VIP, keepalived and HAProxy are active on every one, and
// every HAProxy's backend lists every control plane's API server and
// nothing else. It does no I/O.
func AnalyzeLoadBalancer(s *LoadBalancerSnapshot) (*LoadBalancerInfo, []Finding) {
	info := &LoadBalancerInfo{VIP: s.VIP, Port: s.Port, Holders: []string{}, Hosts: []LBHost{}}
	var fs []Finding
	add := func(sev Severity, check, subject, format string, args ...any) {
		fs = append(fs, Finding{Severity: sev, Check: check, Subject: subject, Message: fmt.Sprintf(format, args...)})
	}
	want := map[string]string{} // normalized address -> control plane
	var wantOrder []string
	for _, m := range s.ControlPlanes {
		a := normAddr(net.JoinHostPort(m.Address, strconv.Itoa(APIServerPort)), APIServerPort)
		want[a] = m.Name
		wantOrder = append(wantOrder, a)
	}
	var unreachable []string
	for _, h := range s.Hosts {
		row := LBHost{Name: h.Name, Backends: []string{}, Missing: []string{}, Extra: []string{}}
		if h.Err != nil {
			row.Error = firstLine(h.Err.Error())
			unreachable = append(unreachable, h.Name)
			info.Hosts = append(info.Hosts, row)
			add(Warning, "loadbalancer.unreachable", h.Name, "cannot read keepalived and HAProxy on %s over SSH: %s", h.Name, row.Error)
			continue
		}
		row.Reachable = true
		row.HoldsVIP = h.HoldsVIP
		row.Keepalived, row.HAProxy = orUnknown(h.Keepalived), orUnknown(h.HAProxy)
		if h.HoldsVIP {
			info.Holders = append(info.Holders, h.Name)
		}
		for _, u := range []struct{ unit, state, why string }{
			{"keepalived", row.Keepalived, "it cannot take the VIP over"},
			{"haproxy", row.HAProxy, "keepalived gives up the VIP here (its check_haproxy fails), so this host cannot take it over"},
		} {
			if u.state == "active" {
				add(OK, "loadbalancer."+u.unit, h.Name, "%s is active on %s", u.unit, h.Name)
				continue
			}
			sev, why := Warning, u.why
			if h.HoldsVIP {
				sev = Error
				why = "it holds the VIP: requests through the VIP fail until it moves"
			}
			add(sev, "loadbalancer."+u.unit, h.Name, "%s is %s on %s: %s; start it: ssh %s sudo systemctl start %s", u.unit, u.state, h.Name, why, h.Name, u.unit)
		}
		switch servers, backend, found := ParseHAProxyServers(h.HAProxyConfig, s.Port); {
		case h.ConfigMissing:
			add(Error, "loadbalancer.backends", h.Name, "%s has no readable /etc/haproxy/haproxy.cfg; write it again: kubectl hacluster bootstrap -f cluster.yaml", h.Name)
		case !found:
			add(Error, "loadbalancer.backends", h.Name, "/etc/haproxy/haproxy.cfg on %s has no frontend bound to port %d (the endpoint's); write it again: kubectl hacluster bootstrap -f cluster.yaml", h.Name, s.Port)
		default:
			seen := map[string]bool{}
			for _, sv := range servers {
				a := normAddr(sv.Address, s.Port)
				row.Backends = append(row.Backends, a)
				seen[a] = true
				if _, ok := want[a]; !ok {
					row.Extra = append(row.Extra, a)
				}
			}
			for _, a := range wantOrder {
				if !seen[a] {
					row.Missing = append(row.Missing, a)
				}
			}
			fix := "write it again: kubectl hacluster bootstrap -f cluster.yaml (it rewrites haproxy.cfg and reloads HAProxy)"
			if len(row.Backends) == 0 {
				add(Error, "loadbalancer.backends", h.Name, "HAProxy on %s has no server in backend %s: nothing answers through it; %s", h.Name, orDash(backend), fix)
				break
			}
			for _, a := range row.Missing {
				add(Warning, "loadbalancer.backends", h.Name, "HAProxy on %s does not send to the API server of %s (%s): backend %s lacks it; %s", h.Name, want[a], a, orDash(backend), fix)
			}
			for _, a := range row.Extra {
				add(Warning, "loadbalancer.backends", h.Name, "HAProxy on %s sends to %s, no control plane of the cluster file (backend %s); %s", h.Name, a, orDash(backend), fix)
			}
			if len(row.Missing) == 0 && len(row.Extra) == 0 {
				add(OK, "loadbalancer.backends", h.Name, "HAProxy on %s sends to every control plane's API server (%d)", h.Name, len(row.Backends))
			}
		}
		info.Hosts = append(info.Hosts, row)
	}
	switch n := len(info.Holders); {
	case n == 1:
		add(OK, "loadbalancer.vip", s.VIP, "the VIP %s is on %s", s.VIP, info.Holders[0])
	case n == 0 && len(unreachable) > 0:
		add(Error, "loadbalancer.vip", s.VIP, "no reachable control plane holds the VIP %s (not read on %s)", s.VIP, strings.Join(unreachable, ", "))
	case n == 0:
		add(Error, "loadbalancer.vip", s.VIP, "no control plane holds the VIP %s: nothing answers at the endpoint; see journalctl -u keepalived on the control planes", s.VIP)
	default:
		add(Error, "loadbalancer.vip", s.VIP, "the VIP %s is on %d control planes (%s): keepalived's VRRP adverts do not reach each other (firewall, virtual_router_id); see journalctl -u keepalived",
			s.VIP, n, strings.Join(info.Holders, ", "))
	}
	return info, fs
}

func orUnknown(s string) string {
	if s = strings.TrimSpace(s); s == "" {
		return "unknown"
	}
	return s
}
