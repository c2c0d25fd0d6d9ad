// Package bootstrap is the cobra layer of `kubectl hacluster bootstrap`.
package bootstrap

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/hacluster/hacluster/pkg/artifacts"
	core "github.com/hacluster/hacluster/pkg/bootstrap"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/clusterfile"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/factory"
	"github.com/hacluster/hacluster/pkg/kubeconfig"
	"github.com/hacluster/hacluster/pkg/output"
)

// Options of `kubectl hacluster bootstrap`.
type Options struct {
	genericiooptions.IOStreams
	clusterfile.Flags
	StateDir string
	CacheDir string
	Until    string
	// Merge the cluster's context into Kubeconfig (--kubeconfig, else
	// $KUBECONFIG's first file or ~/.kube/config).
	Merge      bool
	Kubeconfig *string
	DryRun     bool
	Bundle     string
}

// NewCmd builds `kubectl hacluster bootstrap`.
func NewCmd(f *factory.Factory) *cobra.Command {
	o := &Options{IOStreams: f.IOStreams, Kubeconfig: f.ConfigFlags.KubeConfig}
	cmd := &cobra.Command{
		Use:   "bootstrap -f cluster.yaml",
		Short: "Turn bare hosts into an HA kubeadm control plane over SSH (resumable)",
		Long: `Install Kubernetes on the hosts of a cluster file over SSH, as the kubeadm HA
guide does by hand, in phases that each look at the hosts first and change only
what is missing, so that running it again finishes an interrupted run and a
re-run on a built cluster changes nothing:

  connect, facts, preflight (nothing changes if a check fails), download (once,
  checksums verified, cached), prepare (swap, modules, sysctls, packages),
  runtime (containerd, runc, CNI plugins, crictl), kube-binaries, load-balancer
  (HAProxy + keepalived with the VIP), init (kubeadm init on the first control
  plane), cni (flannel, before the joins), join-control-planes (one at a
  time), join-workers (in parallel), nodes-ready, coredns (spread over the
  nodes), kubeconfig
  (admin.conf through the endpoint, 0600, in --state-dir, and merged into your
  kubeconfig as context hacluster-<name>, the old file kept as a backup),
  verify (inspect components must say Healthy).

A run killed at any point (Ctrl-C, SIGKILL, a lost laptop) is finished by
running it again: kubeadm left running on a host is waited for, one that died
half-way is resumed over what it left (same CA, same etcd). Every phase's
outcome goes to journal.jsonl in --state-dir as it ends.

--dry-run changes nothing: it prints per host what each phase would do and
every file it would write as a diff (secrets masked).

Not done yet by bootstrap: add-ons (kubectl hacluster addons install
metrics-server after it) and calico as the CNI. Bootstrap tokens and
certificate keys reach kubeadm in 0600 files that are removed after use, never
on a command line.`,
		Example: `  kubectl hacluster bootstrap --example > cluster.yaml
  kubectl hacluster preflight -f cluster.yaml --accept-new-host-keys
  kubectl hacluster bootstrap -f cluster.yaml --dry-run
  kubectl hacluster bootstrap -f cluster.yaml
  kubectl --context hacluster-demo get nodes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
	cmd.Flags().StringVar(&o.StateDir, "state-dir", "", "Where the cluster's generated files go (admin.conf, the journal; default ~/.local/state/hacluster/<name>)")
	cmd.Flags().StringVar(&o.CacheDir, "cache-dir", "", "Download cache (default ~/.cache/hacluster/artifacts)")
	cmd.Flags().StringVar(&o.Until, "until", "", "Stop after this phase")
	cmd.Flags().StringVar(&o.Bundle, "bundle", "", "Install offline from this bundle (kubectl hacluster bundle build; else spec.artifacts.bundle): verified, uploaded once per host, images imported; no host reaches a release site or registry")
	_ = cmd.MarkFlagFilename("bundle", "tar", "zst", "gz")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "Connect read-only, run facts and preflight, and print per host what each phase would change, with every file it would write as a diff against the host's; change nothing")
	cmd.Flags().BoolVar(&o.Merge, "merge-kubeconfig", true, "Merge the cluster into your kubeconfig (--kubeconfig, $KUBECONFIG or ~/.kube/config) as context hacluster-<name> and switch to it; false: only --state-dir/admin.conf")
	_ = cmd.RegisterFlagCompletionFunc("until", cobra.FixedCompletions(core.Phases, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Complete reads the cluster file.
func (o *Options) Complete() error { return o.Flags.Complete("bootstrap") }

// Validate checks the flags.
func (o *Options) Validate() error {
	if o.Until == "" {
		return nil
	}
	for _, p := range core.Phases {
		if p == o.Until {
			return nil
		}
	}
	return fmt.Errorf("--until %q: not a phase (phases: %s)", o.Until, strings.Join(core.Phases, ", "))
}

// Run bootstraps and prints the result.
func (o *Options) Run(ctx context.Context) error {
	if o.Example {
		return clusterfile.PrintExample(o.Out)
	}
	o.Note(o.ErrOut)
	cache := o.CacheDir
	if cache == "" {
		var err error
		if cache, err = artifacts.DefaultDir(); err != nil {
			return err
		}
	}
	merge := ""
	if o.Merge {
		merge = kubeconfig.DefaultPath()
		if o.Kubeconfig != nil && *o.Kubeconfig != "" {
			merge = *o.Kubeconfig
		}
	}
	res, err := core.Run(ctx, o.Cluster, core.Options{
		MergeKubeconfig:       merge,
		DryRun:                o.DryRun,
		Bundle:                o.Bundle,
		AcceptNewHostKeys:     o.AcceptNewHostKeys,
		IgnorePreflightErrors: o.Ignore,
		Artifacts:             &artifacts.Store{Dir: cache},
		StateDir:              o.StateDir,
		ClusterFile:           o.File,
		Until:                 o.Until,
		Logf:                  clusterfile.Logf(o.ErrOut),
	})
	if res != nil && o.Format.Structured() {
		if perr := output.Print(o.Out, o.Format, res); perr != nil && err == nil {
			err = perr
		}
	} else if res != nil && o.DryRun {
		clusterfile.PrintPlan(o.Out, res)
	} else if res != nil {
		o.summary(res)
	}
	return err
}

func (o *Options) summary(res *core.Result) {
	clusterfile.PrintPhases(o.Out, res.Phases)
	verb := "changed nothing (the cluster was already as the file says)"
	switch {
	case o.Until != "":
		verb = "stopped after " + o.Until
		if res.Changed() {
			verb += " (hosts changed)"
		}
	case res.Changed():
		verb = "done"
	}
	fmt.Fprintf(o.Out, "\nBootstrap %s in %s.\n", verb, res.Duration.Round(time.Millisecond))
	if res.Verdict != "" {
		fmt.Fprintf(o.Out, "inspect components: %s\n", res.Verdict)
	}
	if m := res.Merged; m != nil {
		fmt.Fprintf(o.Out, "kubectl now uses context %s in %s (through %s)", m.Context, m.Path, o.Cluster.Endpoint())
		if m.Previous != "" && m.Previous != m.Context {
			fmt.Fprintf(o.Out, "; back with: kubectl config use-context %s", m.Previous)
		}
		fmt.Fprintln(o.Out)
	} else if res.Kubeconfig != "" {
		fmt.Fprintf(o.Out, "Admin kubeconfig (through %s): export KUBECONFIG=%s\n", o.Cluster.Endpoint(), res.Kubeconfig)
	}
}
