// Package drill is the cobra layer of `kubectl hacluster drill failover`.
package drill

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hacluster/hacluster/pkg/cmd/hacluster/factory"
	core "github.com/hacluster/hacluster/pkg/drill"
	"github.com/hacluster/hacluster/pkg/fleet"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/output"
)

// Options of `kubectl hacluster drill failover`.
type Options struct {
	genericiooptions.IOStreams
	File              string
	AcceptNewHostKeys bool
	Output            string
	Target            string
	Fault             string
	ProbeInterval     time.Duration
	RequestTimeout    time.Duration
	Hold              time.Duration
	RecoverTimeout    time.Duration
	Settle            time.Duration
	StateDir          string
	Kubeconfig        *string

	format  output.Format
	cluster *inventory.Cluster
	config  *rest.Config
	factory *factory.Factory
}

// NewCmd builds `kubectl hacluster drill`.
func NewCmd(f *factory.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Break a bootstrapped cluster on purpose and measure how it copes",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newCmdFailover(f))
	return cmd
}

func newCmdFailover(f *factory.Factory) *cobra.Command {
	o := &Options{IOStreams: f.IOStreams, Kubeconfig: f.ConfigFlags.KubeConfig, factory: f}
	cmd := &cobra.Command{
		Use:   "failover -f cluster.yaml",
		Short: "Inject a fault on a control plane and measure the API's unavailability through the VIP",
		Long: `Prove that the control-plane endpoint of a cluster bootstrap built fails over,
and measure it. The drill refuses to start unless inspect components says
Healthy and the fault leaves etcd its quorum. It finds the VIP holder over SSH,
then probes through the VIP: a read (GET of the default Namespace) every
--probe-interval, each on a new connection and timing out after
--request-timeout; a write of the ConfigMap default/hacluster-drill every
500 ms; and a watch of that ConfigMap, which must resume after the fault.
Then it injects the fault over SSH on --target, holds it (--hold, and until
the reads have answered for 3 s), undoes it, and waits until inspect says
Healthy again. It reports when the VIP moved, the first failed read and the
first good one after it, every outage, and the errors seen.

Faults:
  stop-apiserver   move /etc/kubernetes/manifests/kube-apiserver.yaml out of
                   the kubelet's sight (to /etc/kubernetes/kube-apiserver.yaml.drill)
                   and back
  stop-haproxy     systemctl stop haproxy, then start
  stop-keepalived  systemctl stop keepalived, then start
  stop-kubelet     systemctl stop kubelet, then start (the static pods keep running)
  reboot           systemctl reboot; undone when the host answers SSH again

The API is reached with --kubeconfig when given, else with the admin.conf
bootstrap wrote in --state-dir; its server is replaced by the cluster file's
endpoint. Exit status: 0 when the drill ran and the cluster is Healthy again,
1 when it was refused (nothing changed) or the cluster did not recover.`,
		Example: `  kubectl hacluster drill failover -f cluster.yaml
  kubectl hacluster drill failover -f cluster.yaml --fault stop-apiserver --target cp-2
  kubectl hacluster drill failover -f cluster.yaml --fault reboot -o json`,
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
	fl := cmd.Flags()
	fl.StringVarP(&o.File, "filename", "f", "cluster.yaml", "Cluster file (apiVersion hacluster.io/v1alpha1, kind Cluster)")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml")
	fl.BoolVar(&o.AcceptNewHostKeys, "accept-new-host-keys", false, "Trust host keys known_hosts does not list yet, and record them (a changed key is always refused)")
	fl.StringVarP(&o.Output, "output", "o", "", "Output format: json or yaml (default: a table for people; progress goes to stderr)")
	fl.StringVar(&o.Target, "target", core.TargetVIPHolder, "Host the fault hits: vip-holder (the control plane holding the VIP) or a host name of the cluster file")
	fl.StringVar(&o.Fault, "fault", core.StopAPIServer, "Fault: "+strings.Join(core.Faults, ", "))
	fl.DurationVar(&o.ProbeInterval, "probe-interval", 100*time.Millisecond, "Time between two reads through the VIP")
	fl.DurationVar(&o.RequestTimeout, "request-timeout", time.Second, "Timeout of each probe request")
	fl.DurationVar(&o.Hold, "hold", 10*time.Second, "Least time the fault stays on (longer until the reads answer for 3 s)")
	fl.DurationVar(&o.RecoverTimeout, "recover-timeout", 5*time.Minute, "How long to wait for Healthy (and for a rebooted host) after the undo")
	fl.DurationVar(&o.Settle, "settle", 30*time.Second, "How long a cluster that is not Healthy at the start may take to settle before the drill is refused (0: refuse at once)")
	fl.StringVar(&o.StateDir, "state-dir", "", "Where bootstrap wrote admin.conf (default ~/.local/state/hacluster/<name>)")
	_ = cmd.RegisterFlagCompletionFunc("fault", cobra.FixedCompletions(core.Faults, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Complete reads the cluster file and the admin kubeconfig.
func (o *Options) Complete() error {
	if err := o.checkFault(); err != nil {
		return err
	}
	var err error
	if o.format, err = output.ParseFormat(o.Output, output.Table, output.JSON, output.YAML); err != nil {
		return err
	}
	o.cluster, err = inventory.Load(o.File)
	if os.IsNotExist(err) {
		return fmt.Errorf("%s does not exist: pass the cluster file bootstrap used with -f", o.File)
	}
	if err != nil {
		return err
	}
	if o.Kubeconfig != nil && *o.Kubeconfig != "" {
		o.config, err = o.factory.RESTConfig()
		return err
	}
	dir := o.StateDir
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".local", "state", "hacluster", o.cluster.Metadata.Name)
	}
	p := filepath.Join(dir, "admin.conf")
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return fmt.Errorf("no admin kubeconfig at %s: pass --kubeconfig, or --state-dir where bootstrap wrote admin.conf", p)
	}
	if err != nil {
		return err
	}
	if o.config, err = clientcmd.RESTConfigFromKubeConfig(b); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// Validate checks the flags.
func (o *Options) Validate() error {
	switch {
	case o.ProbeInterval < 10*time.Millisecond:
		return fmt.Errorf("--probe-interval %s: at least 10ms", o.ProbeInterval)
	case o.RequestTimeout < 50*time.Millisecond:
		return fmt.Errorf("--request-timeout %s: at least 50ms", o.RequestTimeout)
	case o.Hold <= 0 || o.RecoverTimeout <= 0 || o.Settle < 0:
		return fmt.Errorf("--hold and --recover-timeout must be positive, --settle not negative")
	case o.cluster.Spec.ControlPlaneEndpoint.VIP == "":
		return fmt.Errorf("%s has no controlPlaneEndpoint.vip: drill failover moves the VIP bootstrap's keepalived holds", o.File)
	}
	return nil
}

func (o *Options) checkFault() error {
	for _, f := range core.Faults {
		if f == o.Fault {
			return nil
		}
	}
	return fmt.Errorf("--fault %q: not a fault (faults: %s)", o.Fault, strings.Join(core.Faults, ", "))
}

// Run connects, drills and prints the report.
func (o *Options) Run(ctx context.Context) error {
	logf := func(f string, a ...any) { fmt.Fprintf(o.ErrOut, time.Now().Format("15:04:05.000 ")+f+"\n", a...) }
	fl, err := fleet.Connect(ctx, o.cluster, fleet.Options{AcceptNewHostKeys: o.AcceptNewHostKeys, Logf: func(f string, a ...any) { logf("  "+f, a...) }})
	if err != nil {
		return err
	}
	defer fl.Close()
	rep, err := core.Run(ctx, o.cluster, core.Options{
		Fault: o.Fault, Target: o.Target, ProbeInterval: o.ProbeInterval, RequestTimeout: o.RequestTimeout,
		Hold: o.Hold, RecoverTimeout: o.RecoverTimeout, Settle: settle(o.Settle), RESTConfig: o.config, Fleet: fl,
		AcceptNewHostKeys: o.AcceptNewHostKeys, Logf: logf,
	})
	if rep != nil {
		var perr error
		if o.format.Structured() {
			perr = output.Print(o.Out, o.format, rep)
		} else {
			perr = Render(o.Out, rep)
		}
		if err == nil {
			err = perr
		}
	}
	return err
}

func ms(v int64) string { return (time.Duration(v) * time.Millisecond).String() }

func at(v *int64) string {
	if v == nil {
		return "-"
	}
	return "+" + ms(*v)
}

// Render prints a report for people: the measures, then the outages.
func Render(w io.Writer, r *core.Report) error {
	vip := r.VIPHolderBefore
	if r.VIPMovedTo != "" {
		vip += " -> " + r.VIPMovedTo + " at " + at(r.VIPMovedMillis)
	} else {
		vip += " (did not move)"
	}
	rows := [][]string{
		{"fault", r.Fault + " on " + r.Target},
		{"VIP", vip},
		{"VIP holder at the end", r.VIPHolderAfter},
		{"first failed read", at(r.FirstFailureMillis)},
		{"first good read after it", at(r.FirstSuccessAfterMillis)},
		{"downtime (reads)", ms(r.DowntimeMillis)},
		{"downtime (writes)", ms(r.Writes.DowntimeMillis)},
		{"downtime after the undo", ms(r.UndoDowntimeMillis)},
		{"reads failed", fmt.Sprintf("%d of %d", r.Reads.Errors, r.Reads.Requests)},
		{"writes failed", fmt.Sprintf("%d of %d", r.Writes.Errors, r.Writes.Requests)},
		{"watch", fmt.Sprintf("%d events, %d restarts, longest gap %s, resumed: %v", r.Watch.Events, r.Watch.Restarts, ms(r.Watch.LongestGapMillis), r.Watch.Resumed)},
		{"undone at", "+" + ms(r.UndoAtMillis)},
		{"Healthy after the undo", ms(r.HealthyAfterUndoMillis) + " (" + r.Verdict + ")"},
	}
	if err := output.RenderTable(w, []string{"MEASURE", "VALUE"}, rows); err != nil {
		return err
	}
	if len(r.Outages) > 0 {
		fmt.Fprintln(w)
		var orows [][]string
		for _, o := range r.Outages {
			d := ms(o.DurationMillis())
			if o.Open {
				d += " (still failing)"
			}
			orows = append(orows, []string{o.Phase, "+" + ms(o.StartMillis), d, fmt.Sprint(o.Errors), o.FirstError})
		}
		if err := output.RenderTable(w, []string{"OUTAGE", "FROM", "LASTED", "ERRORS", "FIRST ERROR"}, orows); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\nTimes are since the fault; reads every %s, each timing out after %s.\n", ms(r.ProbeIntervalMillis), ms(r.RequestTimeoutMillis))
	return nil
}

// settle maps the flag's 0 (refuse at once) to drill.Options' negative.
func settle(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
