// Package proxymode is the cobra layer of `kubectl hacluster proxymode`
// and `proxymode set`.
package proxymode

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/hacluster/hacluster/pkg/cmd/cmdutil"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/factory"
	"github.com/hacluster/hacluster/pkg/output"
	core "github.com/hacluster/hacluster/pkg/proxymode"
)

// Options is `kubectl hacluster proxymode`.
type Options struct {
	f               *factory.Factory
	Output          string
	Probe           bool
	Image           string
	ProbeNamespace  string
	ProbeTimeout    time.Duration
	EndpointTimeout time.Duration
	NoEndpoint      bool

	format output.Format
	client kubernetes.Interface
}

// NewCmd builds `kubectl hacluster proxymode`.
func NewCmd(f *factory.Factory) *cobra.Command {
	o := &Options{f: f}
	cmd := &cobra.Command{
		Use:   "proxymode",
		Short: "Show the kube-proxy mode per node: configured, effective, mismatches",
		Long: `Show, per node, the kube-proxy mode configured in the kube-system/kube-proxy
ConfigMap (an empty mode means iptables on Linux) and the mode the node's
kube-proxy Pod really runs: from its log ("Using ipvs Proxier", for every
supported Kubernetes version) and from its /proxyMode endpoint through the API
server's node proxy when metricsBindAddress allows it. A ConfigMap that says
one mode while the Pod runs another is flagged: the Pods need a restart.
A kube-proxy replacement (Cilium, kube-router) is detected.

--probe runs a short-lived host-network Pod per node, with an image you name
(for air-gapped clusters), that reads 127.0.0.1:10249/proxyMode the way the
article's "curl 127.0.0.1:10249/proxyMode" does; the Pods are always deleted.`,
		Example: `  kubectl hacluster proxymode
  kubectl hacluster proxymode -o json
  kubectl hacluster proxymode --probe --image registry.example.com/busybox:1.36
  kubectl hacluster proxymode set ipvs --dry-run`,
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
	cmd.Flags().BoolVar(&o.Probe, "probe", false, "Also run a host-network Pod per node that reads 127.0.0.1:10249/proxyMode (needs --image)")
	cmd.Flags().StringVar(&o.Image, "image", "", "Image for --probe: anything with sh and wget or curl that the nodes can pull (e.g. busybox)")
	cmd.Flags().StringVar(&o.ProbeNamespace, "probe-namespace", core.Namespace, "Namespace for the probe Pods")
	cmd.Flags().DurationVar(&o.ProbeTimeout, "probe-timeout", 90*time.Second, "How long to wait for the probe Pods")
	cmd.Flags().DurationVar(&o.EndpointTimeout, "endpoint-timeout", 2*time.Second, "Timeout of each /proxyMode request through the API server")
	cmd.Flags().BoolVar(&o.NoEndpoint, "no-endpoint", false, "Do not query /proxyMode through the API server's node proxy")
	cmdutil.AddOutputFlag(cmd, &o.Output, output.Table, output.JSON, output.YAML)
	cmd.AddCommand(newSetCmd(f))
	return cmd
}

// Complete parses flags and builds the client.
func (o *Options) Complete() error {
	var err error
	if o.format, err = output.ParseFormat(o.Output, output.Table, output.JSON, output.YAML); err != nil {
		return err
	}
	o.client, err = o.f.Clientset()
	return err
}

// Validate checks flag combinations.
func (o *Options) Validate() error {
	if o.Probe && o.Image == "" {
		return fmt.Errorf("--probe needs --image: an image with sh and wget or curl that your nodes can pull")
	}
	if !o.Probe && o.Image != "" {
		return fmt.Errorf("--image is only used with --probe")
	}
	return nil
}

// Run inspects the cluster and prints the report.
func (o *Options) Run(ctx context.Context) error {
	opts := core.InspectOptions{}
	if !o.NoEndpoint {
		opts.Endpoint = core.NodeProxyEndpoint(o.client, o.EndpointTimeout)
	}
	rep, err := core.Inspect(ctx, o.client, opts)
	if err != nil {
		return err
	}
	if o.Probe {
		nodes := make([]string, len(rep.Nodes))
		for i, n := range rep.Nodes {
			nodes[i] = n.Node
		}
		prog := output.NewProgress(o.f.ErrOut, false)
		prog.Start("probing %d node(s) with a host-network Pod (%s)", len(nodes), o.Image)
		res, err := core.Probe(ctx, o.client, nodes, core.ProbeOptions{Image: o.Image, Namespace: o.ProbeNamespace, Timeout: o.ProbeTimeout})
		if err != nil {
			prog.Fail()
			return err
		}
		core.MergeProbe(rep, res)
		// A probe that got no answer is never a success: print what is
		// known, then fail with the reasons.
		if n, why := core.Unanswered(res); n > 0 {
			prog.Fail()
			if err := PrintReport(o.f.Out, o.format, rep); err != nil {
				return err
			}
			return fmt.Errorf("--probe got no answer from %d of %d node(s): %s", n, len(nodes), strings.Join(why, "; "))
		}
		prog.Done()
	}
	return PrintReport(o.f.Out, o.format, rep)
}

// PrintReport renders the proxymode report.
func PrintReport(w io.Writer, format output.Format, rep *core.Report) error {
	if format.Structured() {
		return output.Print(w, format, rep)
	}
	c := output.NewColorer(w)
	if rep.ConfigMapFound {
		val := fmt.Sprintf("%q", rep.ConfiguredValue)
		if rep.Defaulted {
			val += " (empty: iptables on Linux)"
		}
		fmt.Fprintf(w, "ConfigMap %s: mode %s\n", rep.ConfigMap, val)
		fmt.Fprintf(w, "/proxyMode from outside: %s\n", rep.Metrics.Reason)
	}
	if rep.ServerVersion != "" {
		nft := "no (needs 1.31+)"
		if rep.NFTablesSupported {
			nft = "yes"
		}
		fmt.Fprintf(w, "Kubernetes %s, nftables mode available: %s\n", rep.ServerVersion, nft)
	}
	if rep.Replacement != "" {
		fmt.Fprintf(w, "%s kube-proxy is replaced by %s\n", c.Yellow("!"), rep.Replacement)
	}
	for _, warn := range rep.Warnings {
		fmt.Fprintf(w, "%s %s\n", c.Yellow("!"), warn)
	}
	fmt.Fprintln(w)
	rows := [][]string{}
	dash := func(m core.Mode) string {
		if m == "" {
			return "-"
		}
		return string(m)
	}
	for _, n := range rep.Nodes {
		status := c.Green("ok")
		switch {
		case n.Mismatch:
			status = c.Red("MISMATCH: restart needed")
		case n.Effective == "" && rep.Replacement != "":
			status = "replaced"
		case n.Effective == "":
			status = c.Yellow("unknown")
		}
		ep := dash(n.FromEndpoint)
		if n.FromEndpoint == "" && n.EndpointError != "" && !strings.HasPrefix(n.EndpointError, "not tried") {
			ep = "error"
		}
		rows = append(rows, []string{n.Node, dash(n.Configured), dash(n.FromLogs), ep, dash(n.FromProbe), dash(n.Effective), status})
	}
	if err := output.RenderTable(w, []string{"NODE", "CONFIGURED", "LOGS", "ENDPOINT", "PROBE", "EFFECTIVE", "STATUS"}, rows); err != nil {
		return err
	}
	for _, n := range rep.Nodes {
		for _, note := range n.Notes {
			fmt.Fprintf(w, "  %s: %s\n", n.Node, note)
		}
		if n.EndpointError != "" && !strings.HasPrefix(n.EndpointError, "not tried") {
			fmt.Fprintf(w, "  %s: /proxyMode: %s\n", n.Node, n.EndpointError)
		}
		if n.ProbeError != "" {
			fmt.Fprintf(w, "  %s: probe: %s\n", n.Node, n.ProbeError)
		}
	}
	if rep.Mismatches > 0 {
		fmt.Fprintf(w, "\n%d node(s) run another mode than configured: `kubectl hacluster proxymode set %s` restarts kube-proxy Pod by Pod.\n", rep.Mismatches, rep.Configured)
	}
	return nil
}

// SetOptions is `kubectl hacluster proxymode set`.
type SetOptions struct {
	f        *factory.Factory
	Mode     core.Mode
	Rollback bool
	DryRun   bool
	Timeout  time.Duration
	Output   string
	Quiet    bool

	format output.Format
	client kubernetes.Interface
}

func newSetCmd(f *factory.Factory) *cobra.Command {
	o := &SetOptions{f: f}
	cmd := &cobra.Command{
		Use:   "set iptables|ipvs|nftables | --rollback",
		Short: "Switch kube-proxy's mode: checks, ConfigMap diff, rolling restart, wait",
		Long: `Switch kube-proxy to another mode, the way you would by hand:

 1. check what can be checked (Kubernetes 1.31+ and Linux 5.13+ for nftables,
    ipvs kernel modules and strictARP for ipvs, a kube-proxy replacement);
 2. show the diff of config.conf in the kube-system/kube-proxy ConfigMap
    (--dry-run stops here);
 3. write it, recording the previous mode in the ConfigMap annotation
    hacluster.io/previous-proxy-mode;
 4. restart the kube-proxy DaemonSet Pod by Pod (like kubectl rollout restart);
 5. wait until every new kube-proxy Pod reports the new mode.

--rollback switches back to the recorded previous mode.
See 'kubectl hacluster explain proxy-modes' for the trade-offs.`,
		Example: `  kubectl hacluster proxymode set ipvs --dry-run
  kubectl hacluster proxymode set nftables --timeout 10m
  kubectl hacluster proxymode set --rollback`,
		ValidArgs: []string{"iptables", "ipvs", "nftables"},
		Args:      cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return o.Run(ctx)
		},
	}
	cmd.Flags().BoolVar(&o.Rollback, "rollback", false, "Switch back to the mode recorded by the last `proxymode set`")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "Only run the checks and print the ConfigMap diff")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 5*time.Minute, "How long to wait for every kube-proxy Pod to report the new mode")
	cmd.Flags().BoolVarP(&o.Quiet, "quiet", "q", false, "No progress on stderr")
	cmdutil.AddOutputFlag(cmd, &o.Output, output.Table, output.JSON, output.YAML)
	return cmd
}

// Complete parses the mode and flags.
func (o *SetOptions) Complete(args []string) error {
	var err error
	if o.format, err = output.ParseFormat(o.Output, output.Table, output.JSON, output.YAML); err != nil {
		return err
	}
	switch {
	case o.Rollback && len(args) > 0:
		return fmt.Errorf("give a mode or --rollback, not both")
	case !o.Rollback && len(args) == 0:
		return fmt.Errorf("name the mode: iptables, ipvs or nftables (or use --rollback)")
	case len(args) == 1:
		if o.Mode, err = core.ParseMode(args[0]); err != nil {
			return err
		}
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive")
	}
	o.client, err = o.f.Clientset()
	return err
}

// Run plans, prints and (without --dry-run) applies the change.
func (o *SetOptions) Run(ctx context.Context) error {
	plan, err := core.PlanSet(ctx, o.client, o.Mode, o.Rollback)
	if err != nil {
		return err
	}
	plan.DryRun = o.DryRun
	out, errOut := o.f.Out, o.f.ErrOut
	if !o.format.Structured() {
		printPlan(out, plan)
	}
	if o.DryRun {
		if o.format.Structured() {
			return output.Print(out, o.format, plan)
		}
		if bl := plan.Blocked(); len(bl) > 0 {
			return fmt.Errorf("checks failed: %s", strings.Join(bl, "; "))
		}
		fmt.Fprintln(out, "dry run: nothing changed")
		return nil
	}
	prog := output.NewProgress(errOut, o.Quiet)
	prog.Start("switching kube-proxy to %s", plan.To)
	applyErr := core.Apply(ctx, o.client, plan, core.ApplyOptions{
		Timeout: o.Timeout,
		Progress: func(msg string) {
			if !o.Quiet {
				fmt.Fprintf(errOut, "   %s\n", msg)
			}
		},
	})
	if applyErr != nil {
		prog.Fail()
	} else {
		prog.Done()
	}
	if o.format.Structured() {
		if err := output.Print(out, o.format, plan); err != nil {
			return err
		}
	} else if applyErr == nil {
		fmt.Fprintf(out, "kube-proxy runs %s on all %d node(s). Undo with: kubectl hacluster proxymode set --rollback\n", plan.To, len(plan.Pods))
	}
	return applyErr
}

func printPlan(w io.Writer, p *core.Plan) {
	c := output.NewColorer(w)
	from := p.FromValue
	if from == "" {
		from = `"" (iptables)`
	}
	fmt.Fprintf(w, "kube-proxy mode: %s -> %s\n", from, p.To)
	for _, ch := range p.Checks {
		mark := c.Green("✓")
		switch ch.Status {
		case core.CheckWarning:
			mark = c.Yellow("!")
		case core.CheckError:
			mark = c.Red("✗")
		}
		fmt.Fprintf(w, "  %s %s\n", mark, ch.Message)
	}
	for _, t := range core.TradeOffs() {
		if t.Mode == p.To {
			fmt.Fprintf(w, "  %s: good: %s\n  %s: bad: %s\n", t.Mode, t.Good, t.Mode, t.Bad)
		}
	}
	if p.Diff == "" {
		fmt.Fprintln(w, "ConfigMap already says so: no change (the Pods are still restarted so that they pick it up)")
	} else {
		fmt.Fprintln(w, p.Diff)
	}
}
