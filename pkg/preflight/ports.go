package preflight

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/remote"
)

// A port another host must reach, and who uses it.
type port struct {
	n    int
	what string
}

// The TCP ports kubeadm's HA topology needs between hosts (kubeadm's
// "Ports and Protocols" page), plus HAProxy's port on every control plane.
func controlPlanePorts(lb int) []port {
	ps := []port{{6443, "kube-apiserver"}, {2379, "etcd client"}, {2380, "etcd peer"}, {10250, "kubelet API"}, {10257, "kube-controller-manager"}, {10259, "kube-scheduler"}}
	if lb > 0 {
		ps = append(ps, port{lb, "HAProxy (the endpoint)"})
	}
	return ps
}

// portProbeScript connects from the host to every addr:port given, in
// parallel, with bash's /dev/tcp (no tool to install, nothing needs to
// listen): "refused" means the packets arrive and the host's TCP stack
// answers (nothing listens yet: fine before bootstrap), "open" that
// something listens, "timeout" that a firewall drops them, "unreachable"
// that one rejects them (or the host is down).
func portProbeScript(targets [][2]string) string {
	var b strings.Builder
	b.WriteString(`command -v bash >/dev/null || { echo nobash; exit 0; }
p() { out=$(timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>&1); rc=$?
  case "$rc" in 0) r=open;; 124) r=timeout;; *) case "$out" in *refused*) r=refused;; *) r=unreachable;; esac;; esac
  echo "$1 $2 $r"; }
`)
	for _, t := range targets {
		fmt.Fprintf(&b, "p %s %s &\n", t[0], t[1])
	}
	b.WriteString("wait\n")
	return b.String()
}

// checkPorts is the reachability matrix: every control plane reaches the
// others on the control-plane ports, every worker reaches the control
// planes' API server and HAProxy ports, and the control planes reach every
// worker's kubelet. A dropped or rejected connection is an error naming
// both hosts, the port and its user.
func checkPorts(ctx context.Context, c *inventory.Cluster, hosts []Host, probe Prober) []Finding {
	lb := 0
	if c.Spec.ControlPlaneEndpoint.VIP != "" {
		lb = c.Spec.ControlPlaneEndpoint.Port
	}
	byAddr, addrOf := map[string]inventory.Host{}, map[string]string{}
	for _, h := range hosts {
		byAddr[h.InternalAddress], addrOf[h.Name] = h.Host, h.InternalAddress
	}
	type edge struct {
		to   inventory.Host
		port port
	}
	plan := map[string][]edge{}
	for _, from := range hosts {
		for _, to := range hosts {
			if from.Name == to.Name {
				continue
			}
			switch {
			case to.HasRole(inventory.RoleControlPlane) && from.HasRole(inventory.RoleControlPlane):
				for _, p := range controlPlanePorts(lb) {
					plan[from.Name] = append(plan[from.Name], edge{to.Host, p})
				}
			case to.HasRole(inventory.RoleControlPlane):
				plan[from.Name] = append(plan[from.Name], edge{to.Host, port{6443, "kube-apiserver"}})
				if lb > 0 {
					plan[from.Name] = append(plan[from.Name], edge{to.Host, port{lb, "HAProxy (the endpoint)"}})
				}
			case from.HasRole(inventory.RoleControlPlane):
				plan[from.Name] = append(plan[from.Name], edge{to.Host, port{10250, "kubelet API"}})
			}
		}
	}
	var sources []string
	for from := range plan {
		sources = append(sources, from)
	}
	out := onHosts(sources, func(from string) []Finding {
		edges := plan[from]
		fromAddr := addrOf[from]
		users := map[string]string{}
		var targets [][2]string
		for _, e := range edges {
			targets = append(targets, [2]string{e.to.InternalAddress, strconv.Itoa(e.port.n)})
			users[e.to.InternalAddress+" "+strconv.Itoa(e.port.n)] = e.port.what
		}
		res, err := probe(ctx, from, portProbeScript(targets))
		var fs []Finding
		switch {
		case err != nil:
			fs = append(fs, Finding{Host: from, Check: "PortReachability", Severity: Warning, Message: "could not probe the other hosts' ports: " + err.Error()})
		case strings.TrimSpace(res) == "nobash":
			fs = append(fs, Finding{Host: from, Check: "PortReachability", Severity: Warning, Message: "no bash to probe the other hosts' ports with: not checked"})
		default:
			for _, l := range strings.Split(strings.TrimSpace(res), "\n") {
				f := strings.Fields(l)
				if len(f) != 3 || f[2] == "open" || f[2] == "refused" {
					continue
				}
				to := byAddr[f[0]]
				how := "the packets are dropped (no answer in 2 s)"
				if f[2] == "unreachable" {
					how = "the connection is rejected"
				}
				fs = append(fs, Finding{Host: from, Check: "PortReachability", Severity: Error,
					Message: fmt.Sprintf("cannot reach %s (%s) on %s/tcp (%s): %s", to.Name, f[0], f[1], users[f[0]+" "+f[1]], how),
					Fix:     fmt.Sprintf("allow %s/tcp from %s in %s's firewall (and in between)", f[1], fromAddr, to.Name)})
			}
		}
		return fs
	})
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Host != out[j].Host {
			return out[i].Host < out[j].Host
		}
		return out[i].Message < out[j].Message
	})
	return out
}

// checkMirrors asks each host whether every registry mirror of
// spec.registries.mirrors answers HTTP (any status: a registry answers its
// API root with 200 or 401, an override_path endpoint often with 404);
// containerd falls back to the registry itself, so a dead mirror is a
// warning, unless an offline bundle is used (then nothing is pulled and the
// mirrors are not probed).
func checkMirrors(ctx context.Context, c *inventory.Cluster, hosts []Host, probe Prober) []Finding {
	if c.Spec.Artifacts.Bundle != "" || len(c.Spec.Registries.Mirrors) == 0 {
		return nil
	}
	var urls []string
	for _, eps := range c.Spec.Registries.Mirrors {
		for _, ep := range eps {
			if !slices.Contains(urls, ep) {
				urls = append(urls, ep)
			}
		}
	}
	slices.Sort(urls)
	var script strings.Builder
	script.WriteString("command -v curl >/dev/null || { echo nocurl; exit 0; }\n")
	for _, u := range urls {
		fmt.Fprintf(&script, "echo \"$(curl -s -m 3 -o /dev/null -w '%%{http_code}' %s/ 2>/dev/null) %s\" &\n", remote.Quote(u), u)
	}
	script.WriteString("wait\n")
	var names []string
	for _, h := range hosts {
		names = append(names, h.Name)
	}
	out := onHosts(names, func(host string) []Finding {
		res, err := probe(ctx, host, script.String())
		var fs []Finding
		switch {
		case err != nil || strings.TrimSpace(res) == "nocurl":
			return nil
		default:
			for _, l := range strings.Split(strings.TrimSpace(res), "\n") {
				code, u, _ := strings.Cut(l, " ")
				if code == "000" || code == "" {
					fs = append(fs, Finding{Host: host, Check: "RegistryMirror", Severity: Warning,
						Message: fmt.Sprintf("the registry mirror %s does not answer from here: containerd will go to the registry itself", u),
						Fix:     "check the endpoint in spec.registries.mirrors and the way from this host to it"})
				}
			}
		}
		return fs
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Host+out[i].Message < out[j].Host+out[j].Message })
	return out
}

// onHosts runs fn for every host at once and gathers the findings.
func onHosts(hosts []string, fn func(host string) []Finding) []Finding {
	var (
		mu  sync.Mutex
		out []Finding
		wg  sync.WaitGroup
	)
	for _, h := range hosts {
		wg.Go(func() {
			fs := fn(h)
			mu.Lock()
			out = append(out, fs...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}
