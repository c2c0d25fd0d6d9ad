// Package remove is the cobra layer of `kubectl hacluster remove`.
package remove

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	core "github.com/hacluster/hacluster/pkg/bootstrap"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/clusterfile"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/factory"
	"github.com/hacluster/hacluster/pkg/fileutil"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/output"
)

// Options of `kubectl hacluster remove`.
type Options struct {
	genericiooptions.IOStreams
	clusterfile.Flags
	Nodes    []string
	Force    bool
	DryRun   bool
	Timeout  time.Duration
	StateDir string

	newFile []byte
}

// NewCmd builds `kubectl hacluster remove`.
func NewCmd(f *factory.Factory) *cobra.Command {
	o := &Options{IOStreams: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "remove NODE... [-f cluster.yaml]",
		Short: "Take nodes out of a cluster bootstrap built: drain, kubeadm reset, etcd member, Node, load balancer",
		Long: `Remove hosts of a cluster file from its cluster, in this order: cordon and
drain (evictions, so PodDisruptionBudgets hold; --timeout), keepalived and
HAProxy stopped on a control plane (the VIP moves to one that stays), kubeadm
reset over SSH (it removes a control plane's own etcd member), the etcd member
of a host that does not answer removed through a live one, the Node deleted,
HAProxy and keepalived of the control planes that stay rewritten one at a
time, the cluster file rewritten without the hosts (atomically, the old one
kept as <file>.hacluster-<time>.bak), and inspect components must say Healthy.

A removal that would leave etcd without quorum (fewer healthy members than
half the members left, plus one) is refused before anything changes, unless
--force: then etcd stops answering and the cluster with it, until you restore
it from a snapshot. The last control plane is never removed. --dry-run prints
the plan and changes nothing.`,
		Example: `  kubectl hacluster remove worker-2 -f cluster.yaml --dry-run
  kubectl hacluster remove worker-2 -f cluster.yaml
  kubectl hacluster remove cp-3 -f cluster.yaml           # cp-3 dead or alive`,
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			// The hosts of the cluster file not named yet.
			f, _ := cmd.Flags().GetString("filename")
			c, err := inventory.Load(f)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []string
			for _, h := range c.Spec.Hosts {
				if !slices.Contains(args, h.Name) {
					names = append(names, h.Name)
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Nodes = args
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
	fl.BoolVar(&o.Force, "force", false, "Remove control planes even when etcd would lose its quorum (the cluster stops answering until etcd is restored)")
	fl.BoolVar(&o.DryRun, "dry-run", false, "Print what would be done per host, change nothing")
	fl.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "How long the drain of each node may take")
	fl.StringVar(&o.StateDir, "state-dir", "", "Where the journal goes (default ~/.local/state/hacluster/<name>)")
	return cmd
}

// Complete reads the cluster file and renders it without the nodes.
func (o *Options) Complete() error {
	if err := o.Flags.Complete("remove"); err != nil || o.Example {
		return err
	}
	for _, n := range o.Nodes {
		if !slices.ContainsFunc(o.Cluster.Spec.Hosts, func(h inventory.Host) bool { return h.Name == n }) {
			return fmt.Errorf("%s is not a host of %s", n, o.File)
		}
	}
	if !slices.ContainsFunc(o.Cluster.ControlPlanes(), func(h inventory.Host) bool { return !slices.Contains(o.Nodes, h.Name) }) {
		return fmt.Errorf("removing %s leaves no control plane: that ends the cluster (kubeadm reset each host), it is not a removal", strings.Join(o.Nodes, ", "))
	}
	data, err := os.ReadFile(o.File)
	if err != nil {
		return err
	}
	o.newFile, err = inventory.RemoveHosts(o.File, data, o.Nodes)
	return err
}

// Validate checks the arguments.
func (o *Options) Validate() error {
	switch {
	case o.Example:
	case len(o.Nodes) == 0:
		return fmt.Errorf("no NODE given: kubectl hacluster remove NODE... -f %s", o.File)
	case o.Timeout <= 0:
		return fmt.Errorf("--timeout %s: must be positive", o.Timeout)
	}
	return nil
}

// Run removes the nodes.
func (o *Options) Run(ctx context.Context) error {
	if o.Example {
		return clusterfile.PrintExample(o.Out)
	}
	o.Note(o.ErrOut)
	backup := ""
	res, err := core.Remove(ctx, o.Cluster, core.RemoveOptions{
		Options: core.Options{AcceptNewHostKeys: o.AcceptNewHostKeys, StateDir: o.StateDir, DryRun: o.DryRun, Logf: clusterfile.Logf(o.ErrOut)},
		Hosts:   o.Nodes, Force: o.Force, DrainTimeout: o.Timeout,
		Commit: func() error {
			var err error
			backup, err = fileutil.ReplaceWithBackup(o.File, o.newFile)
			return err
		}})
	switch {
	case res == nil:
	case o.Format.Structured():
		if perr := output.Print(o.Out, o.Format, res); perr != nil && err == nil {
			err = perr
		}
	case o.DryRun:
		var rows [][]string
		for _, hp := range res.Plan {
			for _, a := range hp.Actions {
				rows = append(rows, []string{hp.Host, a.Phase, a.What})
			}
		}
		_ = output.RenderTable(o.Out, []string{"HOST", "PHASE", "WOULD"}, rows)
		if err == nil {
			fmt.Fprintf(o.Out, "\nDry run: nothing was changed. Run without --dry-run to remove %s.\n", strings.Join(o.Nodes, ", "))
		}
	default:
		clusterfile.PrintPhases(o.Out, res.Phases)
		if err == nil {
			fmt.Fprintf(o.Out, "\nRemoved %s in %s; inspect components: %s\n", strings.Join(o.Nodes, ", "), res.Duration.Round(time.Millisecond), res.Verdict)
		}
		if backup != "" {
			fmt.Fprintf(o.Out, "%s no longer lists them (the old file: %s)\n", o.File, backup)
		}
		for _, w := range res.Warnings {
			fmt.Fprintf(o.Out, "Warning: %s\n", w)
		}
	}
	return err
}
