package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hacluster/hacluster/pkg/inventory"
)

// haproxyCfg is shaped like what bootstrap writes (pkg/bootstrap checks the
// parser against its real rendering).
func haproxyCfg(servers ...string) string {
	var b strings.Builder
	b.WriteString(`global
    log stdout format raw local0   # a comment
defaults
    mode tcp
    timeout connect 500ms
frontend kube-apiserver
    bind *:16443
    default_backend kube-apiservers

backend kube-apiservers
    balance roundrobin
    # server old 10.0.0.9:6443   (commented out: not a server)
    default-server inter 1s fall 2 rise 2 check
`)
	for i, s := range servers {
		fmt.Fprintf(&b, "    server cp-%d %s check\n", i+1, s)
	}
	return b.String()
}

var lbAll = []string{"10.0.0.11:6443", "10.0.0.12:6443", "10.0.0.13:6443"}

// healthyLB: cp-1 holds the VIP, both units active everywhere, every
// backend lists the three API servers.
func healthyLB() *LoadBalancerSnapshot {
	s := &LoadBalancerSnapshot{VIP: "10.0.0.100", Port: 16443}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("cp-%d", i)
		s.ControlPlanes = append(s.ControlPlanes, LBMember{Name: name, Address: fmt.Sprintf("10.0.0.1%d", i)})
		s.Hosts = append(s.Hosts, LBHostState{Name: name, HoldsVIP: i == 1, Keepalived: "active", HAProxy: "active", HAProxyConfig: haproxyCfg(lbAll...)})
	}
	return s
}

func lbProblems(fs []Finding) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Severity != OK {
			out = append(out, f)
		}
	}
	return out
}

func TestAnalyzeLoadBalancer(t *testing.T) {
	cases := []struct {
		name    string
		change  func(s *LoadBalancerSnapshot)
		want    []string // "severity check subject", one per problem
		message []string // in the messages, in order
		holders []string
	}{
		{name: "healthy", holders: []string{"cp-1"}},
		{name: "no holder", change: func(s *LoadBalancerSnapshot) { s.Hosts[0].HoldsVIP = false },
			want: []string{"error loadbalancer.vip 10.0.0.100"}, message: []string{"no control plane holds the VIP 10.0.0.100"}, holders: []string{}},
		{name: "two holders", change: func(s *LoadBalancerSnapshot) { s.Hosts[2].HoldsVIP = true },
			want: []string{"error loadbalancer.vip 10.0.0.100"}, message: []string{"on 2 control planes (cp-1, cp-3)"}, holders: []string{"cp-1", "cp-3"}},
		{name: "haproxy stopped on a backup", change: func(s *LoadBalancerSnapshot) { s.Hosts[1].HAProxy = "inactive" },
			want:    []string{"warning loadbalancer.haproxy cp-2"},
			message: []string{"haproxy is inactive on cp-2", "ssh cp-2 sudo systemctl start haproxy"}, holders: []string{"cp-1"}},
		{name: "keepalived failed on the holder", change: func(s *LoadBalancerSnapshot) { s.Hosts[0].Keepalived = "failed" },
			want:    []string{"error loadbalancer.keepalived cp-1"},
			message: []string{"keepalived is failed on cp-1: it holds the VIP", "sudo systemctl start keepalived"}, holders: []string{"cp-1"}},
		{name: "backend lacks cp-3, has a stranger", change: func(s *LoadBalancerSnapshot) {
			s.Hosts[1].HAProxyConfig = haproxyCfg("10.0.0.11:6443", "10.0.0.12:6443", "10.0.0.99:6443")
		},
			want: []string{"warning loadbalancer.backends cp-2", "warning loadbalancer.backends cp-2"},
			message: []string{"HAProxy on cp-2 does not send to the API server of cp-3 (10.0.0.13:6443)",
				"HAProxy on cp-2 sends to 10.0.0.99:6443, no control plane"}, holders: []string{"cp-1"}},
		{name: "empty backend", change: func(s *LoadBalancerSnapshot) { s.Hosts[2].HAProxyConfig = haproxyCfg() },
			want:    []string{"error loadbalancer.backends cp-3"},
			message: []string{"no server in backend kube-apiservers"}, holders: []string{"cp-1"}},
		{name: "no frontend on the port", change: func(s *LoadBalancerSnapshot) {
			s.Hosts[2].HAProxyConfig = strings.Replace(haproxyCfg(lbAll...), "*:16443", "*:8443", 1)
		},
			want: []string{"error loadbalancer.backends cp-3"}, message: []string{"no frontend bound to port 16443"}, holders: []string{"cp-1"}},
		{name: "no haproxy.cfg", change: func(s *LoadBalancerSnapshot) { s.Hosts[2].HAProxyConfig, s.Hosts[2].ConfigMissing = "", true },
			want: []string{"error loadbalancer.backends cp-3"}, message: []string{"cp-3 has no readable /etc/haproxy/haproxy.cfg"}, holders: []string{"cp-1"}},
		{name: "unreachable holder", change: func(s *LoadBalancerSnapshot) {
			s.Hosts[0] = LBHostState{Name: "cp-1", Err: errors.New("ssh: dial tcp 10.0.0.11:22: i/o timeout\nmore")}
		},
			want:    []string{"warning loadbalancer.unreachable cp-1", "error loadbalancer.vip 10.0.0.100"},
			message: []string{"cannot read keepalived and HAProxy on cp-1 over SSH: ssh: dial tcp 10.0.0.11:22: i/o timeout", "not read on cp-1"}, holders: []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := healthyLB()
			if tc.change != nil {
				tc.change(s)
			}
			info, fs := AnalyzeLoadBalancer(s)
			var got []string
			var msgs strings.Builder
			for _, f := range lbProblems(fs) {
				got = append(got, fmt.Sprintf("%s %s %s", f.Severity, f.Check, f.Subject))
				msgs.WriteString(f.Message + "\n")
			}
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("problems %q, want %q\n%s", got, want, msgs.String())
			}
			for _, m := range tc.message {
				if !strings.Contains(msgs.String(), m) {
					t.Errorf("no message with %q:\n%s", m, msgs.String())
				}
			}
			if !slices.Equal(info.Holders, tc.holders) {
				t.Errorf("holders %q, want %q", info.Holders, tc.holders)
			}
			if tc.name == "healthy" {
				// One ok per check and host, plus the VIP's.
				if len(fs) != 3*3+1 {
					t.Errorf("%d findings, want 10 ok: %+v", len(fs), fs)
				}
				for _, h := range info.Hosts {
					if !h.Reachable || !slices.Equal(h.Backends, lbAll) || len(h.Missing)+len(h.Extra) != 0 {
						t.Errorf("row %+v", h)
					}
				}
			}
		})
	}
}

func TestParseHAProxyServers(t *testing.T) {
	cfg := `frontend stats
    bind :8404
listen api
    bind 192.0.2.1:16443,[::]:16443
    server a [fd00::11]:6443 check
    server b 10.0.0.12 check
frontend other
    bind *:9000
    use_backend b2 if { path_beg /x }
backend b2
    server z 10.1.1.1:80
`
	servers, backend, found := ParseHAProxyServers(cfg, 16443)
	if !found || backend != "api" || len(servers) != 2 || servers[0].Address != "[fd00::11]:6443" {
		t.Fatalf("listen: %v %q %+v", found, backend, servers)
	}
	if normAddr(servers[0].Address, 16443) != "[fd00::11]:6443" || normAddr(servers[1].Address, 16443) != "10.0.0.12:16443" {
		t.Errorf("normAddr: %s %s", normAddr(servers[0].Address, 16443), normAddr(servers[1].Address, 16443))
	}
	if s, b, ok := ParseHAProxyServers(cfg, 9000); !ok || b != "b2" || len(s) != 1 {
		t.Errorf("use_backend: %v %q %+v", ok, b, s)
	}
	if _, _, ok := ParseHAProxyServers(cfg, 6443); ok {
		t.Error("found a frontend on 6443")
	}
}

func TestParseLBScript(t *testing.T) {
	var st LBHostState
	if err := parseLBScript("vip=1\nkeepalived=active\nhaproxy=inactive\n"+lbConfigMarker+"\n"+haproxyCfg(lbAll...), &st); err != nil {
		t.Fatal(err)
	}
	if !st.HoldsVIP || st.Keepalived != "active" || st.HAProxy != "inactive" || st.ConfigMissing || !strings.Contains(st.HAProxyConfig, "server cp-3 10.0.0.13:6443") {
		t.Errorf("%+v", st)
	}
	st = LBHostState{}
	if err := parseLBScript("vip=0\nkeepalived=\nhaproxy=active\n"+lbConfigMissing+"\n", &st); err != nil || st.HoldsVIP || !st.ConfigMissing || st.Keepalived != "" {
		t.Errorf("%+v %v", st, err)
	}
	if err := parseLBScript("sh: 1: ip: not found\n", &LBHostState{}); err == nil {
		t.Error("garbage accepted")
	}
}

// fakeRunner answers lbScript like a host would.
type fakeRunner struct {
	out    string
	err    error
	script *string
}

func (f fakeRunner) Output(_ context.Context, script string, sudo bool) (string, error) {
	if sudo {
		return "", errors.New("the load balancer is read without sudo")
	}
	if f.script != nil {
		*f.script = script
	}
	return f.out, f.err
}

// The whole path with fakes: a cluster file, per-host answers, Collect,
// Analyze, the JSON, the table and --node.
func TestLoadBalancerInReport(t *testing.T) {
	c := &inventory.Cluster{Spec: inventory.Spec{ControlPlaneEndpoint: inventory.Endpoint{VIP: "10.0.0.100", Port: 16443}}}
	for i := 1; i <= 3; i++ {
		c.Spec.Hosts = append(c.Spec.Hosts, inventory.Host{Name: fmt.Sprintf("cp-%d", i), Address: fmt.Sprintf("192.168.0.1%d", i),
			InternalAddress: fmt.Sprintf("10.0.0.1%d", i), Roles: []string{inventory.RoleControlPlane}})
	}
	c.Spec.Hosts = append(c.Spec.Hosts, inventory.Host{Name: "worker-1", Address: "10.0.0.21", InternalAddress: "10.0.0.21", Roles: []string{inventory.RoleWorker}})
	var script string
	answer := func(vip, haproxy string) string {
		return "vip=" + vip + "\nkeepalived=active\nhaproxy=" + haproxy + "\n" + lbConfigMarker + "\n" + haproxyCfg(lbAll...)
	}
	r := NewLoadBalancerReader(c, false)
	r.Conns = map[string]HostRunner{
		"cp-1": fakeRunner{out: answer("1", "active"), script: &script},
		"cp-2": fakeRunner{out: answer("0", "inactive")},
		"cp-3": fakeRunner{out: answer("0", "active")},
	}
	if NewLoadBalancerReader(&inventory.Cluster{Spec: inventory.Spec{ControlPlaneEndpoint: inventory.Endpoint{LoadBalancer: "lb:6443"}}}, false) != nil {
		t.Fatal("an external load balancer has a reader")
	}
	_, src := fakeCluster(fakeShape{})
	src.LoadBalancer = r
	s := Collect(context.Background(), src)
	s.Now = fakeNow
	if !strings.Contains(script, "' 10.0.0.100/'") || !strings.Contains(script, "systemctl is-active haproxy") {
		t.Errorf("script:\n%s", script)
	}
	rep := Analyze(s, AnalyzeOptions{})
	if rep.Verdict != Degraded || !hasFinding(rep, "loadbalancer.haproxy", Warning) {
		t.Errorf("verdict %s, findings %+v", rep.Verdict, nonOK(rep))
	}
	lb := rep.LoadBalancer
	if lb == nil || len(lb.Hosts) != 3 || !slices.Equal(lb.Holders, []string{"cp-1"}) || lb.Hosts[1].HAProxy != "inactive" {
		t.Fatalf("load balancer %+v", lb)
	}
	b, _ := json.Marshal(rep)
	for _, key := range []string{`"loadBalancer":{"vip":"10.0.0.100","port":16443,"holders":["cp-1"]`, `"haproxy":"inactive"`,
		`"backends":["10.0.0.11:6443","10.0.0.12:6443","10.0.0.13:6443"]`, `"check":"loadbalancer.haproxy","subject":"cp-2"`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("JSON lacks %s:\n%s", key, b)
		}
	}
	var table bytes.Buffer
	if err := Render(&table, rep, RenderOptions{Now: fakeNow}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"LOAD BALANCER", "VIP 10.0.0.100 (HAProxy on port 16443) held by: cp-1", "HOST", "KEEPALIVED", "3 of 3 API servers",
		"haproxy is inactive on cp-2"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	// --node keeps that host's row and findings.
	rep = Analyze(s, AnalyzeOptions{Node: "cp-3"})
	if len(rep.LoadBalancer.Hosts) != 1 || rep.LoadBalancer.Hosts[0].Name != "cp-3" || rep.Verdict != Healthy {
		t.Errorf("--node cp-3: %+v, %s %+v", rep.LoadBalancer.Hosts, rep.Verdict, nonOK(rep))
	}
	// Without a reader the report has no such section.
	_, src = fakeCluster(fakeShape{})
	if b, _ := json.Marshal(Analyze(Collect(context.Background(), src), AnalyzeOptions{})); bytes.Contains(b, []byte("loadBalancer")) {
		t.Error("loadBalancer without a cluster file")
	}
}
