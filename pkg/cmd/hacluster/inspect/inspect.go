// Package inspect is the cobra layer of `kubectl hacluster inspect`; the
// work is done by pkg/inspect.
package inspect

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hacluster/hacluster/pkg/cmd/cmdutil"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/factory"
	core "github.com/hacluster/hacluster/pkg/inspect"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/output"
)

// Exit codes for --fail-on (documented in the README).
const (
	ExitDegraded = 2 // --fail-on warning and the verdict is Degraded
	ExitFailing  = 3 // --fail-on warning|error and the verdict is Failing
)

// Timeout bounds a whole inspection.
const Timeout = time.Minute

// Options of `inspect components`.
type Options struct {
	f      *factory.Factory
	Node   string
	Output string
	FailOn string
	// EtcdExec reads etcd's member list with etcdctl in an etcd Pod (pods/exec).
	EtcdExec bool
	// File is a cluster file (optional): its control planes' keepalived and
	// HAProxy are read over SSH too.
	File              string
	AcceptNewHostKeys bool

	format  output.Format
	source  *core.Source
	cluster *inventory.Cluster
}

const example = `  # The health of the control plane at a glance
  kubectl hacluster inspect components

  # Every node and every health check, for one node only
  kubectl hacluster inspect components -o wide --node cp-1

  # For scripts and monitoring: JSON, exit code 2 on warnings, 3 on errors
  kubectl hacluster inspect components -o json --fail-on warning

  # Also the VIP, keepalived and HAProxy on the control planes of a cluster file (over SSH)
  kubectl hacluster inspect components -f cluster.yaml`

// NewCmd returns `inspect`; `inspect` alone prints the same report as `inspect components`.
func NewCmd(f *factory.Factory) *cobra.Command {
	o := &Options{f: f}
	run := func(cmd *cobra.Command, _ []string) error {
		if err := o.Complete(); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
	cmd := &cobra.Command{
		Use:     "inspect",
		Short:   "Inspect the health of a highly-available control plane (same as `inspect components`)",
		Example: example,
		Args:    cobra.NoArgs,
		RunE:    run,
		// The report already said it all: no usage text after a --fail-on exit code.
		SilenceUsage: true,
	}
	components := &cobra.Command{
		Use:   "components",
		Short: "Report control-plane components, leaders, etcd quorum, the HA endpoint, nodes and add-ons",
		Long: `Reads the cluster through the API (read-only, a fixed number of requests whatever
the node count) and reports, per control-plane node, kube-apiserver,
kube-controller-manager, kube-scheduler and etcd; the leader Leases; /readyz and
/livez; the serving certificate of each API server; etcd's members (read from etcd
with etcdctl in an etcd Pod where pods/exec is allowed, else counted from the
etcd Pods), quorum and stale members; the controlPlaneEndpoint;
node versions against the skew policy; kube-proxy, the CNI, CoreDNS and
metrics-server. With -f cluster.yaml (a VIP endpoint, as bootstrap sets up) it
also reads each control plane over SSH, read-only and without sudo: which one
holds the VIP (exactly one must), whether keepalived and HAProxy are active, and
whether every HAProxy backend lists every control plane's API server. It ends
with a verdict: Healthy, Degraded (warnings) or Failing (errors).

Exit codes: 0 report printed (threshold of --fail-on not reached); 1 the command
failed; 2 --fail-on warning and the verdict is Degraded; 3 --fail-on warning|error
and the verdict is Failing.`,
		Example: example,
		Args:    cobra.NoArgs,
		RunE:    run,
		// The report already said it all: no usage text after a --fail-on exit code.
		SilenceUsage: true,
	}
	cmd.AddCommand(components)
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.Node, "node", "", "Show only this node's rows and findings (cluster-wide checks stay)")
	pf.BoolVar(&o.EtcdExec, "etcd-exec", true, "Read etcd's member list and health with etcdctl in an etcd Pod (needs create on pods/exec in kube-system); false: count the etcd Pods only")
	pf.StringVarP(&o.File, "filename", "f", "", "Cluster file bootstrap used (cluster.yaml): also read the VIP, keepalived and HAProxy on its control planes over SSH")
	_ = cmd.MarkPersistentFlagFilename("filename", "yaml", "yml")
	pf.BoolVar(&o.AcceptNewHostKeys, "accept-new-host-keys", false, "With -f: trust host keys known_hosts does not list yet, and record them (a changed key is always refused)")
	pf.StringVar(&o.FailOn, "fail-on", "", "Exit non-zero when the verdict reaches this level: warning (exit 2 or 3) or error (exit 3)")
	names := []string{string(output.Wide), string(output.JSON), string(output.YAML)}
	pf.StringVarP(&o.Output, "output", "o", "", "Output format: "+strings.Join(names, "|")+" (default: tables for people)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(names, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("fail-on", cobra.FixedCompletions([]string{"warning", "error"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("node", func(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		cs, err := f.Clientset()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		nodes, err := cs.CoreV1().Nodes().List(cmd.Context(), metav1.ListOptions{Limit: 500})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, n := range nodes.Items {
			if strings.HasPrefix(n.Name, prefix) {
				out = append(out, n.Name)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// Complete builds the client from the kubeconfig flags and reads the
// cluster file of -f.
func (o *Options) Complete() error {
	if o.File != "" {
		var err error
		o.cluster, err = inventory.Load(o.File)
		if os.IsNotExist(err) {
			return fmt.Errorf("-f %s: no such file: pass the cluster file bootstrap used", o.File)
		}
		if err != nil {
			return err
		}
	}
	cfg, err := o.f.RESTConfig()
	if err != nil {
		return err
	}
	o.source, err = core.NewSource(cfg)
	if err != nil {
		return err
	}
	if !o.EtcdExec {
		o.source.Etcd = nil
	}
	if r := core.NewLoadBalancerReader(o.cluster, o.AcceptNewHostKeys); r != nil {
		o.source.LoadBalancer = r
	}
	return nil
}

// Validate checks the flags.
func (o *Options) Validate() error {
	var err error
	o.format, err = output.ParseFormat(o.Output, output.Table, output.Wide, output.JSON, output.YAML)
	if err != nil {
		return err
	}
	switch o.FailOn {
	case "", "warning", "error":
	default:
		return fmt.Errorf("--fail-on must be warning or error, got %q", o.FailOn)
	}
	return nil
}

// Run inspects, prints and turns the verdict into the exit code.
func (o *Options) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	// Never hang on a dead API server: reads still pending then become findings.
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	r, err := core.Inspect(ctx, o.source, core.AnalyzeOptions{Node: o.Node})
	if err != nil {
		return err
	}
	if o.cluster != nil && o.source.LoadBalancer == nil {
		r.Notes = append(r.Notes, fmt.Sprintf("%s: the endpoint is an external load balancer (%s): nothing of it runs on the hosts to read over SSH",
			o.File, o.cluster.Spec.ControlPlaneEndpoint.LoadBalancer))
	}
	if o.format.Structured() {
		err = output.Print(o.f.Out, o.format, r)
	} else {
		err = core.Render(o.f.Out, r, core.RenderOptions{Wide: o.format == output.Wide})
	}
	if err != nil {
		return err
	}
	return ExitCode(r, o.FailOn)
}

// ExitCode maps the verdict and --fail-on to an *cmdutil.ExitError (nil: exit 0).
func ExitCode(r *core.Report, failOn string) error {
	if failOn == "" {
		return nil
	}
	worst := r.Worst()
	if !worst.AtLeast(core.Severity(failOn)) {
		return nil
	}
	if worst == core.Error {
		return &cmdutil.ExitError{Code: ExitFailing}
	}
	return &cmdutil.ExitError{Code: ExitDegraded}
}
