// Package preflight is the cobra layer of `kubectl hacluster preflight`: the
// checks bootstrap runs before it changes anything, on their own, read-only.
package preflight

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/hacluster/hacluster/pkg/cmd/hacluster/clusterfile"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/factory"
	"github.com/hacluster/hacluster/pkg/fleet"
	"github.com/hacluster/hacluster/pkg/output"
	core "github.com/hacluster/hacluster/pkg/preflight"
)

// Options of `kubectl hacluster preflight`.
type Options struct {
	genericiooptions.IOStreams
	clusterfile.Flags
}

// Report is what -o json|yaml prints.
type Report struct {
	Cluster  string         `json:"cluster"`
	Hosts    []HostSummary  `json:"hosts"`
	Findings []core.Finding `json:"findings"`
	Errors   int            `json:"errors"`
	Passed   bool           `json:"passed"`
	Took     string         `json:"took"`
	Ignored  []string       `json:"ignored,omitempty"`
}

// HostSummary is one host's line of the report.
type HostSummary struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Roles   string `json:"roles"`
	OS      string `json:"os"`
	Kernel  string `json:"kernel"`
	CPUs    int    `json:"cpus"`
	MemMiB  int    `json:"memoryMiB"`
}

// NewCmd builds `kubectl hacluster preflight`.
func NewCmd(f *factory.Factory) *cobra.Command {
	o := &Options{IOStreams: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "preflight -f cluster.yaml",
		Short: "Check the hosts of a cluster file before bootstrap (read-only, over SSH)",
		Long: `Connect to every host of the cluster file over SSH (host keys checked against
known_hosts), read its facts and run the checks bootstrap runs before it
changes anything: kubeadm's per-host checks under kubeadm's names (NumCPU,
Mem, Port-6443, ...) and the ones across hosts that kubeadm cannot make:
unique hostname, MAC, product_uuid and machine-id, clock skew, the VIP free
and in the control planes' subnet, the cluster's networks clear of the hosts'.
Nothing is changed on any host.

Exit status: 0 when no check failed (warnings and planned changes are
reported), 1 when one did or the command could not run.`,
		Example: `  kubectl hacluster preflight --example > cluster.yaml   # a commented cluster file to edit
  kubectl hacluster preflight -f cluster.yaml
  kubectl hacluster preflight -f cluster.yaml --accept-new-host-keys       # first contact: trust and record the keys
  kubectl hacluster preflight -f cluster.yaml --ignore-preflight-errors=SystemVerification -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return o.Run(ctx)
		},
	}
	o.Flags.Add(cmd)
	return cmd
}

// Complete reads the cluster file.
func (o *Options) Complete() error { return o.Flags.Complete("preflight") }

// Validate checks the flags (Complete did).
func (o *Options) Validate() error { return nil }

// ErrFailed is returned when a check failed (the report says which).
var ErrFailed = fmt.Errorf("preflight failed")

// Run connects, gathers the facts, checks and prints.
func (o *Options) Run(ctx context.Context) error {
	if o.Example {
		return clusterfile.PrintExample(o.Out)
	}
	o.Note(o.ErrOut)
	t0 := time.Now()
	logf := func(format string, args ...any) { fmt.Fprintf(o.ErrOut, format+"\n", args...) }
	fl, err := fleet.Connect(ctx, o.Cluster, fleet.Options{AcceptNewHostKeys: o.AcceptNewHostKeys, Logf: logf})
	if err != nil {
		return err
	}
	defer fl.Close()
	fs, err := fl.Facts(ctx)
	if err != nil {
		return err
	}
	var hosts []core.Host
	rep := Report{Cluster: o.Cluster.Metadata.Name, Ignored: o.Ignore}
	for _, h := range o.Cluster.Spec.Hosts {
		f := fs[h.Name]
		hosts = append(hosts, core.Host{Host: h, Facts: f})
		rep.Hosts = append(rep.Hosts, HostSummary{Name: h.Name, Address: h.Address, Roles: strings.Join(h.Roles, ","),
			OS: f.OSPretty, Kernel: f.Kernel, CPUs: f.CPUs, MemMiB: f.MemoryMiB})
	}
	findings := core.Run(ctx, o.Cluster, hosts, fl.Probe)
	failed := core.Failed(findings, o.Ignore)
	rep.Findings, rep.Errors, rep.Passed = findings, len(failed), len(failed) == 0
	if rep.Findings == nil {
		rep.Findings = []core.Finding{}
	}
	rep.Took = time.Since(t0).Round(time.Millisecond).String()
	if o.Format.Structured() {
		if err := output.Print(o.Out, o.Format, rep); err != nil {
			return err
		}
	} else if err := o.printTable(rep); err != nil {
		return err
	}
	if !rep.Passed {
		return fmt.Errorf("%w: %d error(s); fix them, or pass --ignore-preflight-errors=%s", ErrFailed, len(failed), checkNames(failed))
	}
	return nil
}

func checkNames(fs []core.Finding) string {
	seen := map[string]bool{}
	var out []string
	for _, f := range fs {
		if !seen[f.Check] {
			seen[f.Check] = true
			out = append(out, f.Check)
		}
	}
	return strings.Join(out, ",")
}

func (o *Options) printTable(rep Report) error {
	var rows [][]string
	for _, h := range rep.Hosts {
		rows = append(rows, []string{h.Name, h.Address, h.Roles, h.OS, h.Kernel, fmt.Sprint(h.CPUs), fmt.Sprintf("%d MiB", h.MemMiB)})
	}
	if err := output.RenderTable(o.Out, []string{"HOST", "ADDRESS", "ROLES", "OS", "KERNEL", "CPUS", "MEMORY"}, rows); err != nil {
		return err
	}
	fmt.Fprintln(o.Out)
	if len(rep.Findings) == 0 {
		fmt.Fprintf(o.Out, "All checks passed on %d hosts (%s).\n", len(rep.Hosts), rep.Took)
		return nil
	}
	c := output.NewColorer(o.Out)
	rows = nil
	for _, f := range rep.Findings {
		sev := string(f.Severity)
		switch f.Severity {
		case core.Error:
			sev = c.Red(sev)
		case core.Warning:
			sev = c.Yellow(sev)
		}
		host := f.Host
		if host == "" {
			host = "(all)"
		}
		msg := f.Message
		if f.Fix != "" {
			msg += "; fix: " + f.Fix
		}
		rows = append(rows, []string{sev, host, f.Check, msg})
	}
	if err := output.RenderTable(o.Out, []string{"SEVERITY", "HOST", "CHECK", "FINDING"}, rows); err != nil {
		return err
	}
	verdict := "passed"
	if !rep.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(o.Out, "\nPreflight %s: %d error(s), %d finding(s) on %d hosts (%s).\n", verdict, rep.Errors, len(rep.Findings), len(rep.Hosts), rep.Took)
	return nil
}
