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
	"github.com/hacluster/hacluster/pkg/output"
)

// Options of `kubectl hacluster bootstrap`.
type Options struct {
	genericiooptions.IOStreams
	clusterfile.Flags
	StateDir string
	CacheDir string
	Until    string
}

// NewCmd builds `kubectl hacluster bootstrap`.
func NewCmd(f *factory.Factory) *cobra.Command {
	o := &Options{IOStreams: f.IOStreams}
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
  plane), join-control-planes (one at a time), join-workers (in parallel),
  cni (flannel; every node Ready), coredns (spread over the nodes), kubeconfig
  (admin.conf through the endpoint, 0600, in --state-dir).

Not done yet by bootstrap: add-ons (kubectl hacluster addons install
metrics-server after it), calico as the CNI, and the merge into your
kubeconfig. Bootstrap tokens and certificate keys reach
kubeadm in 0600 files that are removed after use, never on a command line.`,
		Example: `  kubectl hacluster bootstrap --example > cluster.yaml
  kubectl hacluster preflight -f cluster.yaml --accept-new-host-keys
  kubectl hacluster bootstrap -f cluster.yaml
  KUBECONFIG=~/.local/state/hacluster/demo/admin.conf kubectl get nodes`,
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
	cmd.Flags().StringVar(&o.StateDir, "state-dir", "", "Where the cluster's generated files go (admin.conf, the VRRP password; default ~/.local/state/hacluster/<name>)")
	cmd.Flags().StringVar(&o.CacheDir, "cache-dir", "", "Download cache (default ~/.cache/hacluster/artifacts)")
	cmd.Flags().StringVar(&o.Until, "until", "", "Stop after this phase")
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
	cache := o.CacheDir
	if cache == "" {
		var err error
		if cache, err = artifacts.DefaultDir(); err != nil {
			return err
		}
	}
	res, err := core.Run(ctx, o.Cluster, core.Options{
		AcceptNewHostKeys:     o.AcceptNewHostKeys,
		IgnorePreflightErrors: o.Ignore,
		Artifacts:             &artifacts.Store{Dir: cache},
		StateDir:              o.StateDir,
		Until:                 o.Until,
		Logf:                  func(f string, a ...any) { fmt.Fprintf(o.ErrOut, time.Now().Format("15:04:05 ")+f+"\n", a...) },
	})
	if res != nil && o.Format.Structured() {
		if perr := output.Print(o.Out, o.Format, res); perr != nil && err == nil {
			err = perr
		}
	} else if res != nil {
		o.summary(res)
	}
	return err
}

func (o *Options) summary(res *core.Result) {
	var rows [][]string
	for _, p := range res.Phases {
		state := "unchanged"
		if p.Changed {
			state = "changed"
		}
		if p.Error != "" {
			state = "FAILED"
		}
		host := p.Host
		if host == "" {
			host = "-"
		}
		rows = append(rows, []string{p.Phase, host, state, p.Duration.Round(time.Millisecond).String(), p.Detail})
	}
	_ = output.RenderTable(o.Out, []string{"PHASE", "HOST", "RESULT", "TOOK", "DETAIL"}, rows)
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
	if res.Kubeconfig != "" {
		fmt.Fprintf(o.Out, "Admin kubeconfig (through %s): export KUBECONFIG=%s\n", o.Cluster.Endpoint(), res.Kubeconfig)
	}
}
