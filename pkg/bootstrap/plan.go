package bootstrap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/hacluster/hacluster/pkg/facts"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/remote"
)

// HostPlan is what a run would do on one host (Options.DryRun).
type HostPlan struct {
	Host    string     `json:"host"`
	Actions []Action   `json:"actions"`
	Files   []FileDiff `json:"files"`
}

// Action is one change a phase would make ("" Phase: none).
type Action struct {
	Phase string `json:"phase"`
	What  string `json:"what"`
}

// FileDiff is a file a phase would write, as a unified diff against what
// the host has ("" Diff: the host already has it).
type FileDiff struct {
	Phase string `json:"phase"`
	Path  string `json:"path"`
	New   bool   `json:"new"`
	Diff  string `json:"diff,omitempty"`
}

// plan is the dry run's last phase: per host, read-only, the files each
// phase would write (rendered by the same functions the phases use) as
// diffs against the host's, and the other changes it would make, judged
// from the facts and the same state checks the phases make. An older
// keepalived.conf's VRRP password is masked in its diff.
func (r *run) plan(ctx context.Context) (err error) {
	r.res.Plan, err = r.planHosts(ctx, r.c.Spec.Hosts)
	return err
}

func (r *run) planHosts(ctx context.Context, hosts []inventory.Host) ([]HostPlan, error) {
	plans := make([]HostPlan, len(hosts))
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() { plans[i], errs[i] = r.planHost(ctx, h, r.fleet.Conns[h.Name], r.facts[h.Name]) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("%s: %w", hosts[i].Name, err)
		}
	}
	return plans, nil
}

func (r *run) planHost(ctx context.Context, h inventory.Host, c *remote.Conn, f *facts.Facts) (HostPlan, error) {
	p := HostPlan{Host: h.Name}
	act := func(phase, format string, args ...any) {
		p.Actions = append(p.Actions, Action{Phase: phase, What: fmt.Sprintf(format, args...)})
	}
	file := func(phase, path, data string) error {
		// The snapshot already has the host's sha256: only a file that
		// differs is read, for its diff.
		sum := sha256.Sum256([]byte(data))
		if have, err := r.remoteSHA256(ctx, c, path); err != nil {
			return err
		} else if have == hex.EncodeToString(sum[:]) {
			p.Files = append(p.Files, FileDiff{Phase: phase, Path: path})
			return nil
		}
		have, err := c.ReadFile(ctx, path, true)
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		fd := FileDiff{Phase: phase, Path: path, New: os.IsNotExist(err)}
		if string(have) != data {
			fd.Diff, err = difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
				A: difflib.SplitLines(maskSecrets(string(have))), B: difflib.SplitLines(maskSecrets(data)),
				FromFile: path + " (now)", ToFile: path + " (bootstrap)", Context: 2,
			})
			if err != nil {
				return err
			}
		}
		p.Files = append(p.Files, fd)
		return nil
	}
	// prepare
	if f.SwapKiB > 0 {
		act("prepare", "swapoff -a and comment out the swap lines of /etc/fstab (%d KiB of swap)", f.SwapKiB)
	}
	if !f.BrNetfilter || !f.Overlay {
		act("prepare", "load overlay and br_netfilter")
	}
	if f.Sysctls["net.ipv4.ip_forward"] != "1" || f.Sysctls["net.bridge.bridge-nf-call-iptables"] != "1" {
		act("prepare", "set net.ipv4.ip_forward and net.bridge.bridge-nf-call-iptables to 1")
	}
	if f.SELinux == "enforcing" {
		act("prepare", "setenforce 0 and SELINUX=permissive")
	}
	if pkgs := missingPackages(r.c, h, f); len(pkgs) > 0 {
		act("prepare", "%s install %s", f.PackageManager, strings.Join(pkgs, " "))
	}
	files := []struct{ phase, path, data string }{
		{"prepare", facts.ClusterMarker, r.c.Metadata.Name + "\n"},
		{"prepare", modulesFile, modules},
		{"prepare", sysctlFile, sysctls},
		{"runtime", containerdConf, containerdConfig(r.c, f)},
		{"runtime", containerdUnit, containerdService(f)},
		{"runtime", crictlConf, "runtime-endpoint: " + containerdSock + "\nimage-endpoint: " + containerdSock + "\ntimeout: 10\n"},
	}
	regs := make([]string, 0, len(r.c.Spec.Registries.Mirrors))
	for reg := range r.c.Spec.Registries.Mirrors {
		regs = append(regs, reg)
	}
	slices.Sort(regs)
	for _, reg := range regs {
		files = append(files, struct{ phase, path, data string }{"runtime", registryCertsD + "/" + reg + "/hosts.toml", hostsTOML(reg, r.c.Spec.Registries.Mirrors[reg])})
	}
	files = append(files,
		struct{ phase, path, data string }{"kube-binaries", kubeletUnit, kubeletService},
		struct{ phase, path, data string }{"kube-binaries", kubeletDropIn, kubeadmDropIn})
	if r.c.Spec.ControlPlaneEndpoint.VIP != "" && h.HasRole(inventory.RoleControlPlane) {
		kconf, err := r.keepalivedConfig(h, f, r.c.ControlPlanes()) // VRRPv3 takes no password (maskSecrets still hides an older file's auth_pass in its diff)
		if err != nil {
			return p, err
		}
		files = append(files,
			struct{ phase, path, data string }{"load-balancer", haproxyConf, haproxyConfig(r.c, r.c.ControlPlanes())},
			struct{ phase, path, data string }{"load-balancer", keepalivedCheck, checkHAProxyScript},
			struct{ phase, path, data string }{"load-balancer", keepalivedConf, kconf})
	}
	for _, fl := range files {
		if err := file(fl.phase, fl.path, fl.data); err != nil {
			return p, err
		}
	}
	// The binaries: installed at the cluster file's versions or not.
	a := r.c.Spec.Artifacts
	out, _ := c.Output(ctx, `for b in containerd runc crictl kubelet kubeadm kubectl; do printf '%s=' $b; case $b in
  kubeadm) kubeadm version -o short 2>/dev/null;; kubectl) kubectl version --client 2>/dev/null | head -1;;
  *) $b --version 2>/dev/null | head -1;; esac; echo; done`, true)
	have := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && have[k] == "" {
			have[k] = v
		}
	}
	for _, b := range []struct{ name, phase, version string }{
		{"containerd", "runtime", a.Containerd}, {"runc", "runtime", a.Runc}, {"crictl", "runtime", a.Crictl},
		{"kubelet", "kube-binaries", r.c.Spec.Kubernetes.Version}, {"kubeadm", "kube-binaries", r.c.Spec.Kubernetes.Version}, {"kubectl", "kube-binaries", r.c.Spec.Kubernetes.Version},
	} {
		switch v := have[b.name]; {
		case strings.TrimSpace(v) == "":
			act(b.phase, "install %s %s", b.name, b.version)
		case !versionIn(v, b.version):
			act(b.phase, "replace %s (%s) with %s", b.name, strings.TrimSpace(v), b.version)
		}
	}
	if _, err := c.Output(ctx, "test -x /opt/cni/bin/bridge -a -x /opt/cni/bin/host-local", true); err != nil {
		act("runtime", "install the CNI plugins %s into /opt/cni/bin", a.CNIPlugins)
	}
	// kubeadm.
	switch {
	case h.Name == r.first:
		switch r.initState(ctx, c) {
		case absent:
			act("init", "kubeadm init --upload-certs (controlPlaneEndpoint %s)", r.c.Endpoint())
		case partial:
			act("init", "resume the kubeadm init an interrupted run left")
		}
		// Cluster-wide work is listed with the first control plane.
		if wantsServingCerts(r.c) {
			act("nodes-ready", "approve each kubelet's serving certificate request for its own name and addresses (serverTLSBootstrap: metrics-server verifies them)")
		}
		if len(r.c.Spec.Addons) > 0 {
			act("addons", "apply %s (server-side; objects applied already stay unchanged) and wait until Ready", strings.Join(r.c.Spec.Addons, ", "))
		}
	default:
		cp := h.HasRole(inventory.RoleControlPlane)
		phase := "join-workers"
		if cp {
			phase = "join-control-planes"
		}
		switch r.joinState(ctx, h, c, cp) {
		case absent:
			act(phase, "kubeadm join %s", map[bool]string{true: "--control-plane", false: "(worker)"}[cp])
		case partial:
			act(phase, "resume the kubeadm join an interrupted run left")
		}
	}
	return p, nil
}

// versionIn: "runc version 1.5.3" holds v1.5.3.
func versionIn(out, version string) bool {
	return strings.Contains(out, version) || strings.Contains(out, strings.TrimPrefix(version, "v"))
}

var secretLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^(\s*auth_pass\s+)\S+`) })

// maskSecrets hides keepalived's VRRP password in a diff.
func maskSecrets(s string) string { return secretLine().ReplaceAllString(s, "${1}<masked>") }
