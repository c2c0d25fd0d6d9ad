// Package join is the cobra layer of `kubectl hacluster join`.
package join

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/hacluster/hacluster/pkg/artifacts"
	core "github.com/hacluster/hacluster/pkg/bootstrap"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/clusterfile"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/factory"
	"github.com/hacluster/hacluster/pkg/fileutil"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/output"
)

// Options of `kubectl hacluster join`.
type Options struct {
	genericiooptions.IOStreams
	clusterfile.Flags
	Hosts        []string
	ControlPlane bool
	Replace      bool
	Print        bool
	DryRun       bool
	TTL          time.Duration
	StateDir     string
	CacheDir     string
	// SSH is how to log in to the new hosts given as NAME=ADDRESS, when
	// it is not the file's spec.ssh.
	SSH inventory.SSH

	// Set by Complete: the hosts as the file will list them, and the file's
	// new content ("" when it lists them already).
	hosts   []inventory.Host
	names   []string
	newFile []byte
	cluster *inventory.Cluster
}

// NewCmd builds `kubectl hacluster join`.
func NewCmd(f *factory.Factory) *cobra.Command {
	o := &Options{IOStreams: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "join HOST... [--control-plane] [-f cluster.yaml]",
		Short: "Add workers or control planes to a cluster bootstrap built (or print kubeadm's join commands)",
		Long: `Join hosts to the running cluster of a cluster file, with bootstrap's own phases
run on the new hosts only: facts and preflight (against every host of the
cluster: unique hostname, MAC, product_uuid and machine-id, ports reachable),
host preparation, runtime, binaries, then kubeadm join from a 0600 config file
with a fresh bootstrap token made through the API (and for a control plane a
fresh certificate key, the certificates uploaded again), and a wait until the
nodes are Ready and inspect components says Healthy.

HOST is NAME=ADDRESS (a new host, added to the file, or a new address for a
host the file lists) or NAME (a host the file lists that is not a node yet).
The cluster file is rewritten (atomically, the old one kept as
<file>.hacluster-<time>.bak) once the checks have passed, before any host
changes. A new control plane is added to HAProxy and keepalived on every
control plane, one at a time, the running ones first.

A Node or etcd member that already has a new host's name or address (a dead
control plane being replaced) stops the join before anything changes;
--replace removes the stale etcd member and Node first.

--dry-run connects read-only, runs facts, preflight and the stale-state check,
and prints what each new host would get (files as diffs against the host's),
what the running control planes' load balancers would get, and the cluster
file's diff; it writes nothing.

--print changes no host: it prints the kubeadm join command (and with
--control-plane the variant with a fresh certificate key) for people who run
kubeadm themselves, with the expiry of each secret. It prints secrets: it is
the one place that does.`,
		Example: `  kubectl hacluster join worker-2=192.168.1.22 -f cluster.yaml
  kubectl hacluster join cp-4=192.168.1.14 --control-plane -f cluster.yaml
  kubectl hacluster join worker-3=192.168.1.23 --ssh-user admin --ssh-key ~/.ssh/worker3   # no -f: the file of the current hacluster-<name> context
  kubectl hacluster join cp-3=192.168.1.23 --control-plane --replace -f cluster.yaml   # cp-3 died
  kubectl hacluster join worker-3=192.168.1.23 --dry-run -f cluster.yaml   # the plan; nothing changes
  kubectl hacluster join --print --control-plane -f cluster.yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Hosts = args
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return o.Run(ctx)
		},
	}
	o.Flags.Add(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&o.ControlPlane, "control-plane", false, "Join the new hosts as control planes (one at a time; HAProxy and keepalived updated on every control plane)")
	fl.BoolVar(&o.Replace, "replace", false, "Remove a stale etcd member or Node with a new host's name or address first (a dead host replaced), instead of refusing")
	fl.BoolVar(&o.Print, "print", false, "Change no host: print the kubeadm join command(s) with a fresh token (and, with --control-plane, a fresh certificate key)")
	fl.BoolVar(&o.DryRun, "dry-run", false, "Connect read-only, run facts, preflight and the stale-state check, and print what join would change on each host (files as diffs) and in the cluster file; change nothing")
	fl.DurationVar(&o.TTL, "ttl", time.Hour, "With --print: how long the printed token lives")
	fl.StringVar(&o.SSH.User, "ssh-user", "", "SSH user of the new hosts given as NAME=ADDRESS (default: the file's spec.ssh)")
	fl.IntVar(&o.SSH.Port, "ssh-port", 0, "SSH port of the new hosts given as NAME=ADDRESS (default: the file's spec.ssh)")
	fl.StringVar(&o.SSH.KeyFile, "ssh-key", "", "SSH private key file of the new hosts given as NAME=ADDRESS (default: the file's spec.ssh)")
	_ = cmd.MarkFlagFilename("ssh-key")
	fl.StringVar(&o.StateDir, "state-dir", "", "Where the journal goes (default ~/.local/state/hacluster/<name>)")
	fl.StringVar(&o.CacheDir, "cache-dir", "", "Download cache (default ~/.cache/hacluster/artifacts)")
	return cmd
}

// Complete reads the cluster file and works out the hosts.
func (o *Options) Complete() error {
	if err := o.Flags.Complete("join"); err != nil || o.Example {
		return err
	}
	o.cluster = o.Cluster
	role := inventory.RoleWorker
	if o.ControlPlane {
		role = inventory.RoleControlPlane
	}
	var changed []inventory.Host
	for _, arg := range o.Hosts {
		name, addr, hasAddr := strings.Cut(arg, "=")
		i := slices.IndexFunc(o.Cluster.Spec.Hosts, func(h inventory.Host) bool { return h.Name == name })
		if slices.Contains(o.names, name) {
			return fmt.Errorf("%s: named twice", name)
		}
		o.names = append(o.names, name)
		if !hasAddr {
			if o.SSH != (inventory.SSH{}) {
				return fmt.Errorf("%s: --ssh-user, --ssh-port and --ssh-key are for new hosts given as NAME=ADDRESS; %s lists %s with its own", name, o.File, name)
			}
			if i < 0 {
				return fmt.Errorf("%s is not a host of %s: give its address as %s=ADDRESS", name, o.File, name)
			}
			h := o.Cluster.Spec.Hosts[i]
			if o.ControlPlane && !h.HasRole(inventory.RoleControlPlane) {
				return fmt.Errorf("%s is a worker in %s: --control-plane would make it a control plane; give %s=%s --control-plane to change it", name, o.File, name, h.Address)
			}
			o.hosts = append(o.hosts, h)
			continue
		}
		h := inventory.Host{Name: name, Address: addr, Roles: []string{role}}
		if o.SSH != (inventory.SSH{}) {
			ssh := o.SSH
			h.SSH = &ssh
		}
		changed = append(changed, h)
		o.hosts = append(o.hosts, h)
	}
	if len(changed) == 0 {
		return nil
	}
	data, err := os.ReadFile(o.File)
	if err != nil {
		return err
	}
	if o.newFile, err = inventory.SetHosts(o.File, data, changed); err != nil {
		return err
	}
	if string(o.newFile) == string(data) {
		o.newFile = nil
		return nil
	}
	o.cluster, err = inventory.Parse(o.File, o.newFile)
	return err
}

// Validate checks the arguments.
func (o *Options) Validate() error {
	switch {
	case o.Example:
		return nil
	case o.Print && len(o.Hosts) > 0:
		return fmt.Errorf("--print joins no host: give no HOST with it")
	case !o.Print && len(o.Hosts) == 0:
		return fmt.Errorf("no HOST given: kubectl hacluster join NAME=ADDRESS... (or --print)")
	case o.Print && o.TTL < time.Minute:
		return fmt.Errorf("--ttl %s: at least 1m", o.TTL)
	case o.Replace && o.Print:
		return fmt.Errorf("--replace joins hosts: it does nothing with --print")
	case o.DryRun && o.Print:
		return fmt.Errorf("--print already changes no host: give one of --print and --dry-run")
	}
	return nil
}

// Run joins the hosts, or prints the join commands.
func (o *Options) Run(ctx context.Context) error {
	if o.Example {
		return clusterfile.PrintExample(o.Out)
	}
	o.Note(o.ErrOut)
	opts := core.Options{AcceptNewHostKeys: o.AcceptNewHostKeys, IgnorePreflightErrors: o.Ignore, StateDir: o.StateDir, Logf: clusterfile.Logf(o.ErrOut)}
	if o.Print {
		cmds, err := core.PrintJoin(ctx, o.cluster, opts, o.ControlPlane, o.TTL)
		if err != nil {
			return err
		}
		if o.Format.Structured() {
			return output.Print(o.Out, o.Format, cmds)
		}
		fmt.Fprintf(o.Out, "# A worker (the token expires %s):\n%s\n", cmds.TokenExpires.Local().Format(time.RFC3339), cmds.Worker)
		if cmds.ControlPlane != "" {
			fmt.Fprintf(o.Out, "\n# A control plane (the certificate key expires %s, with the kubeadm-certs Secret):\n%s\n", cmds.CertificateKeyExpires.Local().Format(time.RFC3339), cmds.ControlPlane)
			fmt.Fprintf(o.Out, "\n# Then add the new control plane to HAProxy's backends and keepalived's peers on every control plane.\n")
		}
		return nil
	}
	cache := o.CacheDir
	if cache == "" {
		var err error
		if cache, err = artifacts.DefaultDir(); err != nil {
			return err
		}
	}
	opts.Artifacts = &artifacts.Store{Dir: cache}
	opts.DryRun = o.DryRun
	if o.DryRun {
		res, err := core.Join(ctx, o.cluster, core.JoinOptions{Options: opts, Hosts: o.names, Replace: o.Replace})
		if res != nil && o.Format.Structured() {
			if perr := output.Print(o.Out, o.Format, res); perr != nil && err == nil {
				err = perr
			}
		} else if res != nil && err == nil {
			if o.newFile != nil {
				if err := o.printFileDiff(); err != nil {
					return err
				}
			}
			clusterfile.PrintPlan(o.Out, res)
			for _, w := range res.Warnings {
				fmt.Fprintf(o.Out, "Warning: %s\n", w)
			}
		}
		return err
	}
	backup := ""
	res, err := core.Join(ctx, o.cluster, core.JoinOptions{Options: opts, Hosts: o.names, Replace: o.Replace,
		Commit: func() error {
			if o.newFile == nil {
				return nil
			}
			var err error
			if backup, err = fileutil.ReplaceWithBackup(o.File, o.newFile); err != nil {
				return err
			}
			opts.Logf("  %s now lists %s (backup %s)", o.File, strings.Join(o.names, ", "), backup)
			return nil
		}})
	if res != nil && o.Format.Structured() {
		if perr := output.Print(o.Out, o.Format, res); perr != nil && err == nil {
			err = perr
		}
	} else if res != nil {
		clusterfile.PrintPhases(o.Out, res.Phases)
		if err == nil {
			fmt.Fprintf(o.Out, "\nJoined %s in %s; inspect components: %s\n", strings.Join(o.names, ", "), res.Duration.Round(time.Millisecond), res.Verdict)
		}
		if backup != "" {
			fmt.Fprintf(o.Out, "%s lists the new hosts (the old file: %s)\n", o.File, backup)
		}
		for _, w := range res.Warnings {
			fmt.Fprintf(o.Out, "Warning: %s\n", w)
		}
	}
	return err
}

// printFileDiff shows what the join would write into the cluster file.
func (o *Options) printFileDiff() error {
	old, err := os.ReadFile(o.File)
	if err != nil {
		return err
	}
	d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{A: difflib.SplitLines(string(old)), B: difflib.SplitLines(string(o.newFile)),
		FromFile: o.File + " (now)", ToFile: o.File + " (after the join)", Context: 2})
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "# %s would be rewritten (the old one kept as a backup):\n%s\n", o.File, d)
	return nil
}
