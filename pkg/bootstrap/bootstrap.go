// Package bootstrap turns the bare hosts of a cluster file into an HA
// Kubernetes cluster over SSH, as a list of phases that each look at the
// hosts' real state before changing anything, so that a re-run converges
// instead of starting over. The phases, in order (Run below reads the same):
//
//	connect        SSH to every host, host keys checked
//	facts          what each host is (pkg/facts)
//	preflight      per-host and cross-host checks; stops on an error (pkg/preflight)
//	download       the release files, once, on this machine, checksums verified (pkg/artifacts),
//	               or an offline bundle verified and unpacked (pkg/bundle, bundle.go);
//	               spec.addons' manifests, checked against their catalog's sha256 (addons.go)
//	prepare        swap off, br_netfilter + overlay, sysctls, conntrack/socat/ebtables (+ LB packages on control planes)
//	runtime        containerd, runc, CNI plugins, crictl; containerd's config and registry mirrors;
//	               a bundle's images imported into containerd, else the node's first
//	               images (sandbox, kube-proxy, flannel, static pods) pulled in the background
//	kube-binaries  kubelet, kubeadm, kubectl and the kubelet's systemd unit
//	load-balancer  HAProxy + keepalived (the VIP) on the control planes
//	init           kubeadm init on the first control plane, from a config file
//	cni            flannel's release manifest with the pod subnet, or calico through pkg/addons
//	               (the joining nodes get it as they come)
//	join-control-planes  kubeadm join --control-plane, one at a time
//	join-workers   kubeadm join, in parallel
//	nodes-ready    every node Ready, and the kubelets' serving certificates approved
//	               when they ask for them (serverTLSBootstrap, with metrics-server)
//	coredns        CoreDNS spread over the nodes (kubeadm starts both on the first)
//	addons         spec.addons through pkg/addons, each waited until Ready
//	kubeconfig     admin.conf (through the endpoint) into the state directory, 0600,
//	               and merged into the user's kubeconfig as context hacluster-<name>
//	verify         pkg/inspect's verdict through the endpoint: the run fails unless Healthy
//
// Each phase's outcome is appended to the journal in the state directory as
// it ends (journal.go), so an interrupted run leaves a record of what it did.
// With Options.DryRun only connect, facts and preflight run, and then plan
// (plan.go): what each phase would change, with file diffs; nothing is
// written.
package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/hacluster/hacluster/pkg/artifacts"
	"github.com/hacluster/hacluster/pkg/facts"
	"github.com/hacluster/hacluster/pkg/fleet"
	"github.com/hacluster/hacluster/pkg/inspect"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/kubeconfig"
	"github.com/hacluster/hacluster/pkg/preflight"
	"github.com/hacluster/hacluster/pkg/remote"
)

// Options of Run.
type Options struct {
	AcceptNewHostKeys     bool
	IgnorePreflightErrors []string
	// Artifacts is the download cache (its Mirrors come from the cluster
	// file's spec.artifacts.mirrors when empty).
	Artifacts *artifacts.Store
	// Logf reports progress per phase and host (stderr).
	Logf func(format string, args ...any)
	// StateDir keeps what bootstrap generates for the cluster (the VRRP
	// password, admin.conf), 0700; default ~/.local/state/hacluster/<name>.
	StateDir string
	// Until stops after the named phase ("" runs them all).
	Until string
	// MergeKubeconfig, when set, is the user's kubeconfig file that gets the
	// cluster as context hacluster-<name> (backup first, atomic write).
	MergeKubeconfig string
	// Bundle is an offline bundle to install from (else spec.artifacts.bundle):
	// nothing is downloaded and the images are imported, never pulled.
	Bundle string
	// DryRun connects, gathers facts, runs preflight and returns the Plan:
	// per host the files each phase would write as diffs against the
	// host's, and the other changes; nothing is changed or written.
	DryRun bool
	// ClusterFile is the path of the cluster file, recorded in the state
	// directory by the kubeconfig phase (ClusterFilePointer).
	ClusterFile string
	// VerifyTimeout bounds the wait for inspect's Healthy verdict (default 5m).
	VerifyTimeout time.Duration
}

// PhaseResult is what one phase did on one host ("" for the operator's
// machine or the whole cluster).
type PhaseResult struct {
	Phase    string        `json:"phase"`
	Host     string        `json:"host,omitempty"`
	Changed  bool          `json:"changed"`
	Detail   string        `json:"detail,omitempty"`
	Duration time.Duration `json:"duration"`
	Error    string        `json:"error,omitempty"`
}

// Result of a run.
type Result struct {
	Phases   []PhaseResult       `json:"phases"`
	Findings []preflight.Finding `json:"findings"`
	Duration time.Duration       `json:"duration"`
	// Kubeconfig is the admin kubeconfig written to the state directory.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// Merged is what the merge into the user's kubeconfig did.
	Merged *kubeconfig.Result `json:"merged,omitempty"`
	// Verdict is pkg/inspect's on the finished cluster, Reasons its findings.
	Verdict string   `json:"verdict,omitempty"`
	Reasons []string `json:"reasons,omitempty"`
	// Plan is what a dry run found to do, per host.
	Plan []HostPlan `json:"plan,omitempty"`
	// Journal is the file each phase's outcome was appended to.
	Journal string `json:"journal,omitempty"`
	// Warnings are what the run found worth knowing that did not fail it.
	Warnings []string `json:"warnings,omitempty"`
}

// Changed reports whether any phase changed a host.
func (r *Result) Changed() bool {
	for _, p := range r.Phases {
		if p.Changed {
			return true
		}
	}
	return false
}

// run is one bootstrap: the cluster file, the connected hosts and what the
// phases learnt.
type run struct {
	c     *inventory.Cluster
	o     Options
	fleet *fleet.Fleet
	facts map[string]*facts.Facts
	files map[string]artifacts.Fetched // by artifact name
	// layouts are the bundle's image layouts by architecture (Options.Bundle).
	layouts map[string]artifacts.Fetched
	// addons are spec.addons with their verified manifests, calico the CNI's
	// when spec.network.cni is calico (addons.go).
	addons []addonSet
	calico *addonSet
	// snaps are the hosts' copies of bootstrap's own files (files.go).
	snaps map[string]*snapshot
	res   Result
	mu    sync.Mutex

	stopped        bool
	adminConf      []byte // from the kubeconfig phase
	journal        *journal
	credsMu        sync.Mutex
	creds          joinCreds
	certificateKey string // from init, while its upload is fresh

	// first is the control plane that cluster-wide commands run on (the
	// first of the file; for join and remove the first one that is
	// reachable and already in the cluster).
	first      string
	kubeMu     sync.Mutex
	kubeClient kubernetes.Interface
	kubeConfig *rest.Config
	// joining are the hosts Join adds (nil for bootstrap).
	joining []inventory.Host
	// dead are the running hosts a join goes on without (they do not answer SSH).
	dead []string
	// etcdMembers is what verify's inspect counted.
	etcdMembers int
	// tolerate are the inspect checks verify accepts findings of, up to a
	// severity (see tolerance).
	tolerate map[string]inspect.Severity
}

func (r *run) stateDir() string {
	if r.o.StateDir != "" {
		return r.o.StateDir
	}
	return DefaultStateDir(r.c.Metadata.Name)
}

// DefaultStateDir is where a cluster's state goes without Options.StateDir:
// ~/.local/state/hacluster/<name>.
func DefaultStateDir(name string) string {
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "hacluster", name)
}

// ClusterFilePointer, in the state directory, holds the absolute path of the
// cluster file bootstrap ran on (Options.ClusterFile): the commands that take
// -f find it from the kubeconfig context hacluster-<name> when no file is given.
const ClusterFilePointer = "cluster-file"

// Phases are the phase names, in order (Options.Until takes one).
var Phases = []string{"connect", "facts", "preflight", "download", "prepare", "runtime", "kube-binaries", "load-balancer", "init", "cni", "join-control-planes", "join-workers", "nodes-ready", "coredns", "addons", "kubeconfig", "verify"}

// Run executes the phases in order and stops at the first that fails.
func Run(ctx context.Context, c *inventory.Cluster, o Options) (*Result, error) {
	if o.Bundle != "" {
		// The flag stands for spec.artifacts.bundle (preflight reads it).
		cc := *c
		cc.Spec.Artifacts.Bundle = o.Bundle
		c = &cc
	}
	r := &run{c: c, o: o, first: c.ControlPlanes()[0].Name, tolerate: tolerance(c, false)}
	if r.o.Logf == nil {
		r.o.Logf = func(string, ...any) {}
	}
	t0 := time.Now()
	defer func() { r.res.Duration = time.Since(t0) }()
	defer func() {
		if r.fleet != nil {
			r.fleet.Close()
		}
	}()
	if r.o.DryRun {
		// Read-only: no journal, no download, nothing written anywhere.
		err := r.sequence(ctx,
			step{"connect", r.connect},
			step{"facts", r.gatherFacts},
			step{"preflight", r.preflight},
			step{"plan", r.plan},
		)
		return &r.res, err
	}
	var err error
	if r.journal, err = openJournal(r.stateDir(), t0); err != nil {
		return nil, err
	}
	defer r.journal.close()
	r.res.Journal = r.journal.path
	err = r.sequence(ctx,
		step{"connect", r.connect},
		step{"facts", r.gatherFacts},
		step{"preflight", r.preflight},
		step{"download", r.download},
		step{"prepare", r.onEveryHost("prepare", r.prepare)},
		step{"runtime", r.onEveryHost("runtime", r.runtime)},
		step{"kube-binaries", r.onEveryHost("kube-binaries", r.kubeBinaries)},
		step{"load-balancer", r.loadBalancer},
		step{"init", r.initFirst},
		step{"cni", r.cni},
		step{"join-control-planes", r.joinControlPlanes},
		step{"join-workers", r.joinWorkers},
		step{"nodes-ready", r.nodesReady},
		step{"coredns", r.spreadCoreDNS},
		step{"addons", r.installAddons},
		step{"kubeconfig", r.kubeconfig},
		step{"verify", r.verify},
	)
	r.journal.finish(err, r.stopped)
	return &r.res, err
}

type step struct {
	name string
	fn   func(context.Context) error
}

func (r *run) sequence(ctx context.Context, steps ...step) error {
	for _, s := range steps {
		if r.stopped {
			return nil
		}
		if s.name == r.o.Until {
			r.stopped = true
		}
		t0 := time.Now()
		r.o.Logf("[%s]", s.name)
		if err := s.fn(ctx); err != nil {
			r.o.Logf("[%s] failed after %s", s.name, time.Since(t0).Round(time.Millisecond))
			return fmt.Errorf("%s: %w", s.name, err)
		}
		r.o.Logf("[%s] done in %s", s.name, time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

func (r *run) record(p PhaseResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Phases = append(r.res.Phases, p)
	r.journal.phase(p)
}

// hostStep is a phase's work on one host: it returns whether it changed the
// host and a short note of what it found or did.
type hostStep func(ctx context.Context, h inventory.Host, c *remote.Conn, f *facts.Facts) (changed bool, detail string, err error)

// onEveryHost runs fn on all hosts in parallel and records each outcome.
func (r *run) onEveryHost(phase string, fn hostStep) func(context.Context) error {
	return r.onHosts(phase, r.c.Spec.Hosts, fn)
}

// onHosts runs fn on hosts in parallel and records each outcome.
func (r *run) onHosts(phase string, hosts []inventory.Host, fn hostStep) func(context.Context) error {
	return func(ctx context.Context) error {
		errs := make([]error, len(hosts))
		var wg sync.WaitGroup
		for i, h := range hosts {
			wg.Go(func() {
				t0 := time.Now()
				changed, detail, err := fn(ctx, h, r.fleet.Conns[h.Name], r.facts[h.Name])
				p := PhaseResult{Phase: phase, Host: h.Name, Changed: changed, Detail: detail, Duration: time.Since(t0)}
				state := "unchanged"
				if changed {
					state = "changed"
				}
				if err != nil {
					p.Error, state = err.Error(), "FAILED"
					errs[i] = fmt.Errorf("%s: %w", h.Name, err)
				}
				r.record(p)
				r.o.Logf("  %-12s %-9s %s (%s)", h.Name, state, detail, p.Duration.Round(time.Millisecond))
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	}
}

func (r *run) connect(ctx context.Context) error {
	fl, err := fleet.Connect(ctx, r.c, fleet.Options{AcceptNewHostKeys: r.o.AcceptNewHostKeys, Logf: func(f string, a ...any) { r.o.Logf("  "+f, a...) }})
	if err != nil {
		return err
	}
	r.fleet = fl
	return nil
}

func (r *run) gatherFacts(ctx context.Context) error {
	fs, err := r.fleet.Facts(ctx)
	r.facts = fs
	if err != nil {
		return err
	}
	return r.readSnapshots(ctx)
}

func (r *run) preflight(ctx context.Context) error {
	var hosts []preflight.Host
	for _, h := range r.c.Spec.Hosts {
		hosts = append(hosts, preflight.Host{Host: h, Facts: r.facts[h.Name]})
	}
	r.res.Findings = preflight.Run(ctx, r.c, hosts, r.fleet.Probe)
	failed := preflight.Failed(r.res.Findings, r.o.IgnorePreflightErrors)
	for _, f := range r.res.Findings {
		if f.Severity != preflight.Change {
			r.o.Logf("  %-7s %s", f.Severity, f)
		}
	}
	if len(failed) > 0 {
		var lines []string
		for _, f := range failed {
			lines = append(lines, f.String())
		}
		return fmt.Errorf("%d check(s) failed, nothing was changed:\n  %s", len(failed), strings.Join(lines, "\n  "))
	}
	return nil
}

func (r *run) download(ctx context.Context) error {
	s := r.o.Artifacts
	if s == nil {
		dir, err := artifacts.DefaultDir()
		if err != nil {
			return err
		}
		s = &artifacts.Store{Dir: dir}
	}
	if s.Mirrors == nil {
		s.Mirrors = r.c.Spec.Artifacts.Mirrors
	}
	if s.Logf == nil {
		s.Logf = func(f string, a ...any) { r.o.Logf("  "+f, a...) }
	}
	if b := r.bundlePath(); b != "" {
		if err := r.fromBundle(ctx, b, s); err != nil {
			return err
		}
		return r.loadAddons(ctx, s)
	}
	a := r.c.Spec.Artifacts
	v := artifacts.Versions{Kubernetes: r.c.Spec.Kubernetes.Version, Containerd: a.Containerd, Runc: a.Runc, CNIPlugins: a.CNIPlugins, Crictl: a.Crictl}
	arches := map[string]bool{}
	for _, f := range r.facts {
		arches[archOf(f)] = true
	}
	t0 := time.Now()
	r.files = map[string]artifacts.Fetched{}
	total, cached := 0, 0
	for arch := range arches {
		got, err := s.FetchAll(ctx, artifacts.List(v, arch))
		if err != nil {
			return err
		}
		for _, f := range got {
			r.files[arch+"/"+f.Name] = f
			total++
			if f.Cached {
				cached++
			}
		}
	}
	if r.c.Spec.Network.CNI == "flannel" {
		fa, err := artifacts.Flannel(a.Flannel)
		if err != nil {
			return err
		}
		got, err := s.Fetch(ctx, fa)
		if err != nil {
			return err
		}
		r.files["manifest/"+got.Name] = got
		total++
		if got.Cached {
			cached++
		}
	}
	r.record(PhaseResult{Phase: "download", Detail: fmt.Sprintf("%d files, %d from the cache", total, cached), Duration: time.Since(t0), Changed: cached < total})
	return r.loadAddons(ctx, s)
}
