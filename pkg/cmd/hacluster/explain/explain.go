// Package explain is the cobra layer of `kubectl hacluster explain`:
// service-types, service NAME and proxy-modes.
package explain

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hacluster/hacluster/pkg/cmd/cmdutil"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/factory"
	"github.com/hacluster/hacluster/pkg/output"
	"github.com/hacluster/hacluster/pkg/proxymode"
	"github.com/hacluster/hacluster/pkg/svcexplain"
)

// NewCmd builds `kubectl hacluster explain`. The listing flags of `explain
// service` (--all, -A, -o, --node-port-range) also work on `explain` itself:
// `explain --all -A` is `explain service --all -A`.
func NewCmd(f *factory.Factory) *cobra.Command {
	o := &ServiceOptions{f: f, Out: f.Out}
	cmd := &cobra.Command{
		Use:   "explain [--all | -A]",
		Short: "Explain Service types, live Services and kube-proxy modes",
		Long: `Explain how Kubernetes networking works, answered for your own cluster.

  service-types   ClusterIP, headless, NodePort, LoadBalancer, ExternalName
  service NAME    how traffic reaches a live Service, and its mistakes
  proxy-modes     kube-proxy iptables vs IPVS vs nftables

explain --all (every Service in the namespace) and explain -A (in every
namespace) are short for explain service --all and explain service -A.`,
		Example: `  kubectl hacluster explain service web -n shop
  kubectl hacluster explain -A
  kubectl hacluster explain --all -n kube-system -o json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			return fmt.Errorf("unknown topic %q for %q: the topics are service-types, service NAME and proxy-modes; for a Service type `%s service %s`",
				args[0], cmd.CommandPath(), cmd.CommandPath(), args[0])
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !o.All && !o.AllNamespaces {
				if cmd.Flags().Changed("output") || cmd.Flags().Changed("node-port-range") {
					return fmt.Errorf("-o and --node-port-range on %q need --all or -A (or use `%s service NAME`)", cmd.CommandPath(), cmd.CommandPath())
				}
				return cmd.Help()
			}
			if err := o.Complete(nil); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	addServiceFlags(cmd, o)
	cmd.AddCommand(newTypesCmd(f), newServiceCmd(f), newProxyModesCmd(f))
	return cmd
}

// TypesOptions is `explain service-types`.
type TypesOptions struct {
	Output string
	format output.Format
	Out    io.Writer
}

func newTypesCmd(f *factory.Factory) *cobra.Command {
	o := &TypesOptions{Out: f.Out}
	cmd := &cobra.Command{
		Use:     "service-types",
		Aliases: []string{"types", "servicetypes"},
		Short:   "What each Service type creates, who can reach it, when to use it, what it costs",
		Args:    cobra.NoArgs,
		Example: "  kubectl hacluster explain service-types\n  kubectl hacluster explain service-types -o json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if o.format, err = output.ParseFormat(o.Output, output.Table, output.JSON, output.YAML); err != nil {
				return err
			}
			return o.Run()
		},
	}
	cmdutil.AddOutputFlag(cmd, &o.Output, output.Table, output.JSON, output.YAML)
	return cmd
}

// Run prints the catalogue.
func (o *TypesOptions) Run() error {
	types := svcexplain.Types()
	if o.format.Structured() {
		return output.Print(o.Out, o.format, map[string]any{"types": types})
	}
	c := output.NewColorer(o.Out)
	w := o.Out
	fmt.Fprintln(w, "LoadBalancer builds on NodePort, which builds on ClusterIP; ExternalName is only a DNS alias.")
	for _, t := range types {
		fmt.Fprintln(w)
		title := t.Type
		if t.BuildsOn != "" {
			title += "  (builds on " + t.BuildsOn + ")"
		}
		fmt.Fprintln(w, c.Bold(title))
		for i, cr := range t.Creates {
			label := ""
			if i == 0 {
				label = "creates:"
			}
			fmt.Fprintf(w, "  %-10s %s\n", label, cr)
		}
		fmt.Fprintf(w, "  %-10s %s\n", "reach:", t.ReachableBy)
		fmt.Fprintf(w, "  %-10s %s\n", "use when:", t.UseWhen)
		fmt.Fprintf(w, "  %-10s %s\n", "cost:", t.Cost)
		fmt.Fprintf(w, "  %-10s %s\n", "try:", t.Example)
	}
	return nil
}

// ServiceOptions is `explain service`.
type ServiceOptions struct {
	f             *factory.Factory
	Names         []string
	All           bool
	AllNamespaces bool
	NodePortRange string
	Output        string

	format output.Format
	core   svcexplain.Options
	Out    io.Writer
}

func newServiceCmd(f *factory.Factory) *cobra.Command {
	o := &ServiceOptions{f: f, Out: f.Out}
	cmd := &cobra.Command{
		Use:     "service (NAME | svc/NAME)... | --all | -A",
		Aliases: []string{"svc", "services"},
		Short:   "How traffic reaches live Services, and the mistakes in them",
		Long: `For each Service: its in-cluster DNS name and ports, cluster IP, every node
address with its nodePort, the load balancer's address (or why it is pending),
the ExternalName target, ready and not-ready endpoints from EndpointSlices, and
mistakes: a selector that matches no Pod, a targetPort no container exposes,
externalTrafficPolicy Local without local endpoints, a nodePort outside the
cluster's range.`,
		Example: `  kubectl hacluster explain service web
  kubectl hacluster explain svc/web -n shop -o json
  kubectl hacluster explain service --all -n kube-system
  kubectl hacluster explain service -A`,
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			return completeServices(f, toComplete), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	addServiceFlags(cmd, o)
	return cmd
}

// addServiceFlags adds the flags that choose and print Services.
func addServiceFlags(cmd *cobra.Command, o *ServiceOptions) {
	cmd.Flags().BoolVar(&o.All, "all", false, "Explain every Service in the namespace")
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "Explain every Service in every namespace")
	cmd.Flags().StringVar(&o.NodePortRange, "node-port-range", "", "The cluster's node-port range FROM-TO (default: read from the kube-apiserver Pods, else 30000-32767)")
	cmdutil.AddOutputFlag(cmd, &o.Output, output.Table, output.JSON, output.YAML)
}

func completeServices(f *factory.Factory, prefix string) []string {
	cs, err := f.Clientset()
	if err != nil {
		return nil
	}
	ns, _, err := f.Namespace()
	if err != nil {
		return nil
	}
	list, err := cs.CoreV1().Services(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range list.Items {
		if strings.HasPrefix(s.Name, prefix) {
			out = append(out, s.Name)
		}
	}
	return out
}

// Complete fills in the namespace and parses flags.
func (o *ServiceOptions) Complete(args []string) error {
	var err error
	if o.format, err = output.ParseFormat(o.Output, output.Table, output.JSON, output.YAML); err != nil {
		return err
	}
	o.Names = args
	ns, _, err := o.f.Namespace()
	if err != nil {
		return err
	}
	o.core = svcexplain.Options{Namespace: ns, Names: o.Names, All: o.All, AllNamespaces: o.AllNamespaces}
	if o.NodePortRange != "" {
		r, err := svcexplain.ParsePortRange(o.NodePortRange)
		if err != nil {
			return err
		}
		o.core.NodePortRange = &r
	}
	for _, n := range o.Names {
		if _, err := svcexplain.NormalizeName(n); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks that exactly one way of choosing Services was used.
func (o *ServiceOptions) Validate() error {
	switch {
	case len(o.Names) == 0 && !o.All && !o.AllNamespaces:
		return fmt.Errorf("name a Service (NAME or svc/NAME), or use --all or -A")
	case len(o.Names) > 0 && (o.All || o.AllNamespaces):
		return fmt.Errorf("give Service names or --all/-A, not both")
	}
	return nil
}

// Run explains the Services.
func (o *ServiceOptions) Run(ctx context.Context) error {
	cs, err := o.f.Clientset()
	if err != nil {
		return err
	}
	reports, err := svcexplain.Explain(ctx, cs, o.core)
	if err != nil {
		return err
	}
	if o.format.Structured() {
		return output.Print(o.Out, o.format, map[string]any{"services": reports})
	}
	if len(reports) == 0 {
		fmt.Fprintln(o.Out, "No Services found.")
		return nil
	}
	for i := range reports {
		if i > 0 {
			fmt.Fprintln(o.Out)
		}
		if err := PrintService(o.Out, &reports[i]); err != nil {
			return err
		}
	}
	return nil
}

// PrintService renders one report for people.
func PrintService(w io.Writer, r *svcexplain.Report) error {
	c := output.NewColorer(w)
	head := fmt.Sprintf("Service %s/%s  type %s", r.Namespace, r.Name, r.Type)
	if r.Headless {
		head += " (headless)"
	}
	fmt.Fprintln(w, c.Bold(head))
	for _, p := range r.Paths {
		fmt.Fprintf(w, "  %s\n", p)
	}
	if len(r.NodeAccess) > 0 {
		fmt.Fprintf(w, "  node ports (range %s):\n", r.NodePortRange)
		rows := [][]string{}
		for _, a := range r.NodeAccess {
			local := ""
			if a.LocalEndpoint != nil {
				local = "no (dropped)"
				if *a.LocalEndpoint {
					local = "yes"
				}
			}
			rows = append(rows, []string{a.Node, a.Address + ":" + strconv.Itoa(int(a.NodePort)), a.Type, local})
		}
		header := []string{"NODE", "ADDRESS", "TYPE"}
		if r.ExternalTrafficPolicy == "Local" {
			header = append(header, "LOCAL ENDPOINT")
		} else {
			for i := range rows {
				rows[i] = rows[i][:3]
			}
		}
		var tb strings.Builder
		if err := output.RenderTable(&tb, header, rows); err != nil {
			return err
		}
		for _, line := range strings.Split(strings.TrimRight(tb.String(), "\n"), "\n") {
			fmt.Fprintf(w, "    %s\n", strings.TrimRight(line, " "))
		}
	}
	if lb := r.LoadBalancer; lb != nil && lb.Pending {
		fmt.Fprintln(w, "  usual fixes for the pending load balancer:")
		for _, f := range lb.Fixes {
			fmt.Fprintf(w, "    - %s\n", f)
		}
	}
	if r.Type != "ExternalName" {
		from := fmt.Sprintf("%d Pod(s) match the selector", r.MatchingPods)
		switch {
		case r.APIServers != nil && r.APIServers.Pods >= 0:
			from = fmt.Sprintf("registered by the API servers themselves: %d registered, %d kube-apiserver Pod(s)", r.APIServers.Registered, r.APIServers.Pods)
		case r.APIServers != nil:
			from = fmt.Sprintf("registered by the API servers themselves: %d registered", r.APIServers.Registered)
		case len(r.Selector) == 0:
			from = "no selector: from EndpointSlices you manage"
		}
		fmt.Fprintf(w, "  endpoints: %d ready, %d not ready (%s)\n", len(r.Endpoints.Ready), len(r.Endpoints.NotReady), from)
		for _, e := range r.Endpoints.Ready {
			fmt.Fprintf(w, "    %s %s\n", c.Green("ready    "), describeEndpoint(e))
		}
		for _, e := range r.Endpoints.NotReady {
			fmt.Fprintf(w, "    %s %s\n", c.Yellow("not ready"), describeEndpoint(e))
		}
	}
	if len(r.Findings) == 0 {
		fmt.Fprintf(w, "  %s no mistakes found\n", c.Green("✓"))
	}
	for _, f := range r.Findings {
		mark := c.Yellow("!")
		switch f.Severity {
		case svcexplain.SeverityError:
			mark = c.Red("✗")
		case svcexplain.SeverityInfo:
			mark = "i"
		}
		fmt.Fprintf(w, "  %s %s [%s]\n", mark, f.Message, f.Code)
	}
	return nil
}

func describeEndpoint(e svcexplain.Endpoint) string {
	s := e.Address
	if len(e.Ports) > 0 {
		ps := make([]string, len(e.Ports))
		for i, p := range e.Ports {
			ps[i] = strconv.Itoa(int(p))
		}
		s += ":" + strings.Join(ps, ",")
	}
	if e.Pod != "" {
		s += "  pod " + e.Pod
	}
	if e.Node != "" {
		s += " on " + e.Node
	}
	return s
}

func newProxyModesCmd(f *factory.Factory) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:     "proxy-modes",
		Aliases: []string{"proxymodes", "kube-proxy"},
		Short:   "kube-proxy iptables vs IPVS vs nftables: how each works, its trade-offs and requirements",
		Args:    cobra.NoArgs,
		Example: "  kubectl hacluster explain proxy-modes\n  kubectl hacluster proxymode        # what your nodes run",
		RunE: func(cmd *cobra.Command, _ []string) error {
			format, err := output.ParseFormat(out, output.Table, output.JSON, output.YAML)
			if err != nil {
				return err
			}
			return PrintTradeOffs(f.Out, format)
		},
	}
	cmdutil.AddOutputFlag(cmd, &out, output.Table, output.JSON, output.YAML)
	return cmd
}

// PrintTradeOffs prints the comparison of the kube-proxy modes.
func PrintTradeOffs(w io.Writer, format output.Format) error {
	t := proxymode.TradeOffs()
	if format.Structured() {
		return output.Print(w, format, map[string]any{"modes": t, "logWording": proxymode.LogWording})
	}
	c := output.NewColorer(w)
	for i, m := range t {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, c.Bold(string(m.Mode)))
		fmt.Fprintf(w, "  %-9s %s\n", "how:", m.How)
		fmt.Fprintf(w, "  %-9s %s\n", "good:", m.Good)
		fmt.Fprintf(w, "  %-9s %s\n", "bad:", m.Bad)
		fmt.Fprintf(w, "  %-9s %s\n", "requires:", m.Requires)
	}
	fmt.Fprintln(w, "\nCheck a node: curl 127.0.0.1:10249/proxyMode on it, or `kubectl hacluster proxymode` for all nodes.")
	return nil
}
