package inspect

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hacluster/hacluster/pkg/output"
)

// RenderOptions control the table output for people.
type RenderOptions struct {
	Wide bool      // more columns, every node and every health check
	Now  time.Time // for ages; zero means time.Now()
}

// Render writes r as sections of kubectl-like tables, colour on a terminal.
func Render(w io.Writer, r *Report, o RenderOptions) error {
	c := output.NewColorer(w)
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	sev := func(s Severity) string {
		switch s {
		case Error:
			return c.Red("error")
		case Warning:
			return c.Yellow("warning")
		}
		return c.Green("ok")
	}
	yes := func(b bool, t, f string) string {
		if b {
			return c.Green(t)
		}
		return c.Red(f)
	}
	var err error
	p := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, args...)
		}
	}
	section := func(title string) { p("\n%s\n", c.Bold(title)) }
	table := func(header []string, rows [][]string) {
		if err == nil {
			err = output.RenderTable(w, header, rows)
		}
	}
	indented := func(header []string, rows [][]string) { // a table under a line, two spaces in
		var b strings.Builder
		if err == nil {
			err = output.RenderTable(&b, header, rows)
		}
		for _, line := range strings.SplitAfter(b.String(), "\n") {
			if line != "" {
				p("  %s", line)
			}
		}
	}

	ver := r.Cluster.KubernetesVersion
	if ver == "" {
		ver = "unknown version"
	}
	p("Kubernetes control plane is running at %s (%s)\n", c.Bold(r.Cluster.Server), ver)
	if r.Cluster.CoreDNS != "" {
		p("CoreDNS: %s\n", r.Cluster.CoreDNS)
	}
	if ep := r.Endpoint.ControlPlaneEndpoint; ep != "" {
		p("controlPlaneEndpoint: %s\n", ep)
	}

	if len(r.ControlPlane) > 0 {
		section("CONTROL PLANE")
		h := []string{"NODE", "COMPONENT", "READY", "RESTARTS", "VERSION", "AGE"}
		if o.Wide {
			h = append(h, "POD", "IMAGE")
		}
		var rows [][]string
		for _, cp := range r.ControlPlane {
			if !cp.Present {
				row := []string{cp.Node, cp.Name, c.Red("MISSING"), "-", "-", "-"}
				if o.Wide {
					row = append(row, "-", "-")
				}
				rows = append(rows, row)
				continue
			}
			age := "-"
			if cp.CreatedAt != nil {
				age = humanDuration(now.Sub(*cp.CreatedAt))
			}
			row := []string{cp.Node, cp.Name, yes(cp.Ready, "true", "false"), fmt.Sprint(cp.Restarts), orDash(cp.Version), age}
			if o.Wide {
				row = append(row, cp.Pod, cp.Image)
			}
			rows = append(rows, row)
		}
		table(h, rows)
	}

	if len(r.Leaders) > 0 {
		section("LEADERS")
		var rows [][]string
		for _, l := range r.Leaders {
			if !l.Found {
				rows = append(rows, []string{l.Lease, "-", "-", "-", c.Yellow("no lease")})
				continue
			}
			holder := l.Holder
			if !o.Wide && l.Node != "" {
				holder = l.Node
			}
			rows = append(rows, []string{l.Lease, orDash(holder), fmt.Sprintf("%ds ago", l.SecondsSinceRenewal),
				fmt.Sprintf("%ds", l.LeaseDurationSeconds), yes(l.Fresh, "fresh", "STALE")})
		}
		table([]string{"LEASE", "HOLDER", "RENEWED", "DURATION", "STATUS"}, rows)
	}

	section("API SERVER")
	for _, h := range []struct {
		name   string
		checks []HealthCheck
	}{{"readyz", r.APIServer.Readyz}, {"livez", r.APIServer.Livez}} {
		if len(h.checks) == 0 {
			p("/%s: not read\n", h.name)
			continue
		}
		var failed []string
		for _, ck := range h.checks {
			if !ck.OK {
				failed = append(failed, ck.Name)
			}
		}
		if len(failed) == 0 {
			p("/%s: %s (%d checks, etcd included)\n", h.name, c.Green("all pass"), len(h.checks))
		} else {
			p("/%s: %s: %s\n", h.name, c.Red("failing"), strings.Join(failed, ", "))
		}
		if o.Wide {
			var rows [][]string
			for _, ck := range h.checks {
				rows = append(rows, []string{ck.Name, yes(ck.OK, "ok", "failed"), ck.Message})
			}
			indented([]string{"CHECK", "STATUS", "MESSAGE"}, rows)
		}
	}
	if r.APIServer.Registered == 0 {
		p("registered in EndpointSlice kubernetes: none\n")
	} else {
		p("registered in EndpointSlice kubernetes: %d (%s)\n", r.APIServer.Registered, strings.Join(r.APIServer.Addresses, ", "))
	}
	if len(r.APIServer.Certificates) > 0 {
		p("serving certificates:\n")
		var rows [][]string
		for _, ct := range r.APIServer.Certificates {
			server := orDash(ct.Server)
			if ct.AnsweredBy != "" && ct.Server == "" {
				server = "answered by " + ct.AnsweredBy
			}
			row := []string{ct.Via, ct.Target, server}
			if ct.Subject == "" && ct.Error != "" {
				row = append(row, "-", "-", "-", "-", c.Yellow("not read: "+firstLine(ct.Error)))
			} else {
				node := "-"
				if ct.CoversNode != nil {
					node = yes(*ct.CoversNode, "yes", "NO")
				}
				days := fmt.Sprint(ct.DaysLeft)
				switch {
				case ct.DaysLeft < 0 || ct.NotAfter.Before(now):
					days = c.Red(days)
				case ct.DaysLeft < CertWarnDays:
					days = c.Yellow(days)
				}
				row = append(row, days, ct.NotAfter.Format(time.DateOnly), yes(ct.CoversEndpoint, "yes", "NO"), node, "")
			}
			if o.Wide && len(ct.DNSNames)+len(ct.IPAddresses) > 0 {
				row[len(row)-1] = "DNS " + strings.Join(ct.DNSNames, ",") + "; IP " + strings.Join(ct.IPAddresses, ",")
			}
			rows = append(rows, row)
		}
		last := "NOTE"
		if o.Wide {
			last = "SANS"
		}
		indented([]string{"VIA", "ADDRESS", "SERVER", "DAYS LEFT", "EXPIRES", "ENDPOINT IN SANS", "OWN ADDRESS IN SANS", last}, rows)
	}

	section("ETCD")
	switch e := r.Etcd; {
	case e.External:
		p("external: %s\n", strings.Join(e.ExternalEndpoints, ", "))
	case e.Members == 0:
		p("members: not visible\n")
	default:
		more, ready := "", "ready"
		if e.ReadyMembers < e.Members {
			more = " more"
		}
		if e.MemberList != nil {
			ready = "healthy"
		}
		p("members: %d (%d %s) on %s; quorum %d, tolerates %d%s failure(s)", e.Members, e.ReadyMembers, ready,
			strings.Join(e.MemberNodes, ", "), e.Quorum, e.ToleratesFailures, more)
		if e.ToleratesFailuresAllUp != e.ToleratesFailures {
			p(" (%d with all members up)", e.ToleratesFailuresAllUp)
		}
		p("\n")
		if e.Source != "" {
			p("read from: %s\n", e.Source)
		}
		if len(e.MemberList) > 0 {
			var rows [][]string
			for _, m := range e.MemberList {
				health := "-"
				if m.Healthy != nil {
					health = yes(*m.Healthy, "healthy", "UNHEALTHY")
				}
				if m.Stale {
					health = c.Red("STALE")
				}
				role := "voter"
				if m.Learner {
					role = "learner"
				}
				rows = append(rows, []string{m.ID, orDash(m.Name), strings.Join(m.PeerURLs, ","), role, health, orDash(m.Node), orDash(m.Pod)})
			}
			indented([]string{"ID", "NAME", "PEER URLS", "ROLE", "HEALTH", "NODE", "POD"}, rows)
		}
	}

	section("HA ENDPOINT")
	e := r.Endpoint
	if e.ControlPlaneEndpoint == "" {
		p("controlPlaneEndpoint: %s\n", c.Red("not set"))
	} else {
		where := c.Green("not a node address")
		if e.OnNode != "" {
			where = c.Red("the address of node " + e.OnNode)
		}
		p("controlPlaneEndpoint: %s (%s)\n", e.ControlPlaneEndpoint, where)
		if e.Reachable != nil {
			p("reachable (TCP): %s\n", yes(*e.Reachable, "yes", "no: "+e.ReachError))
		}
	}
	if e.ClusterInfoServer != "" {
		m := ""
		if e.MatchesClusterInfo != nil {
			m = " " + yes(*e.MatchesClusterInfo, "(matches)", "(DIFFERS)")
		}
		p("cluster-info server: %s%s\n", e.ClusterInfoServer, m)
	}

	if lb := r.LoadBalancer; lb != nil {
		section("LOAD BALANCER")
		holders := c.Red("none")
		switch len(lb.Holders) {
		case 0:
		case 1:
			holders = c.Green(lb.Holders[0])
		default:
			holders = c.Red(strings.Join(lb.Holders, ", ") + " (more than one)")
		}
		p("VIP %s (HAProxy on port %d) held by: %s\n", lb.VIP, lb.Port, holders)
		var rows [][]string
		for _, h := range lb.Hosts {
			if !h.Reachable {
				rows = append(rows, []string{h.Name, "-", "-", "-", c.Red("unreachable: " + h.Error)})
				continue
			}
			vip := "-"
			if h.HoldsVIP {
				vip = c.Green("yes")
			}
			listed := len(h.Backends) - len(h.Extra)
			backends := c.Green(fmt.Sprintf("%d of %d API servers", listed, listed+len(h.Missing)))
			if len(h.Missing) > 0 || len(h.Extra) > 0 || len(h.Backends) == 0 {
				var parts []string
				if len(h.Missing) > 0 {
					parts = append(parts, "missing "+strings.Join(h.Missing, ","))
				}
				if len(h.Extra) > 0 {
					parts = append(parts, "extra "+strings.Join(h.Extra, ","))
				}
				if len(h.Backends) == 0 {
					parts = append(parts, "no server")
				}
				backends = c.Red(strings.Join(parts, "; "))
			}
			if o.Wide && len(h.Backends) > 0 {
				backends += " (" + strings.Join(h.Backends, ",") + ")"
			}
			rows = append(rows, []string{h.Name, vip, yes(h.Keepalived == "active", h.Keepalived, h.Keepalived), yes(h.HAProxy == "active", h.HAProxy, h.HAProxy), backends})
		}
		table([]string{"HOST", "VIP", "KEEPALIVED", "HAPROXY", "BACKENDS"}, rows)
	}

	section("NODES")
	ns := r.NodeSummary
	p("%d nodes, %d Ready: %d control planes, %d workers\n", ns.Total, ns.Ready, ns.ControlPlanes, ns.Workers)
	h := []string{"NAME", "ROLES", "READY", "KUBELET", "RUNTIME", "SKEW", "TAINTS"}
	if o.Wide {
		h = append(h, "INTERNAL-IP")
	}
	var rows [][]string
	hidden := 0
	for _, n := range r.Nodes {
		isCP := contains(n.Roles, "control-plane") || contains(n.Roles, "master")
		if !o.Wide && !isCP && n.Ready && n.SkewOK {
			hidden++ // healthy workers: only with -o wide
			continue
		}
		roles := strings.Join(n.Roles, ",")
		row := []string{n.Name, orDash(roles), yes(n.Ready, "true", "false"), n.KubeletVersion, n.ContainerRuntime,
			yes(n.SkewOK, n.Skew, n.Skew), orDash(strings.Join(n.Taints, ","))}
		if o.Wide {
			row = append(row, orDash(n.InternalIP))
		}
		rows = append(rows, row)
	}
	if len(rows) > 0 {
		table(h, rows)
	}
	if hidden > 0 {
		p("(%d Ready workers within the skew policy not listed; -o wide lists every node)\n", hidden)
	}

	section("NETWORKING AND ADD-ONS")
	nw := r.Network
	kp := "not deployed"
	if nw.KubeProxyDeployed {
		kp = fmt.Sprintf("mode %s, %s ready", orDash(nw.KubeProxyMode), nw.KubeProxyReady)
	}
	p("kube-proxy: %s\n", kp)
	cni := "none detected"
	if len(nw.CNI) > 0 {
		cni = strings.Join(nw.CNI, ", ")
	}
	p("CNI: %s\n", cni)
	dns := "not found"
	if nw.CoreDNS.Present {
		dns = strings.TrimSpace(nw.CoreDNS.Version + " " + nw.CoreDNS.Status)
	}
	for _, sp := range nw.CriticalDeployments {
		if sp.Role == "CoreDNS" && len(sp.Nodes) > 0 {
			dns += ", on " + spreadNodes(c, sp.Nodes)
		}
	}
	p("CoreDNS: %s\n", dns)
	p("metrics-server: %s\n", orDash(nw.MetricsServer.Status))
	for _, sp := range nw.CriticalDeployments {
		if sp.Role != "CoreDNS" && (o.Wide || len(sp.Nodes) == 1) {
			p("%s %s/%s: %d/%d ready, on %s\n", sp.Role, sp.Namespace, sp.Name, sp.Ready, sp.Desired, spreadNodes(c, sp.Nodes))
		}
	}

	section("FINDINGS")
	var frows [][]string
	for _, f := range r.Findings {
		if f.Severity == OK && !o.Wide {
			continue
		}
		frows = append(frows, []string{sev(f.Severity), f.Check, f.Message})
	}
	if len(frows) == 0 {
		p("no problems found (-o wide lists the checks that passed)\n")
	} else {
		table([]string{"SEVERITY", "CHECK", "MESSAGE"}, frows)
	}
	for _, n := range r.Notes {
		p("note: %s\n", n)
	}
	if o.Wide {
		p("(%d API requests, %d ms)\n", r.Stats.APIRequests, r.Stats.DurationMillis)
	}
	verdict := r.Verdict
	switch verdict {
	case Healthy:
		verdict = c.Green(verdict)
	case Degraded:
		verdict = c.Yellow(verdict)
	default:
		verdict = c.Red(verdict)
	}
	p("\nVerdict: %s", c.Bold(verdict))
	if n := len(r.Reasons); n > 0 {
		p(": %s", r.Reasons[0])
		if n > 1 {
			p(" (and %d more)", n-1)
		}
	}
	p("\n")
	return err
}

// spreadNodes lists the nodes replicas run on; one node is a warning.
func spreadNodes(c output.Colorer, nodes []string) string {
	if len(nodes) == 1 {
		return c.Yellow(nodes[0] + " only")
	}
	return strings.Join(nodes, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// humanDuration is kubectl-like: 45s, 12m, 5h, 3d.
func humanDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
