// Package clusterfile holds the flags every command that acts on a cluster
// file's hosts shares (bootstrap, preflight): -f, --accept-new-host-keys,
// --ignore-preflight-errors, -o and --example.
package clusterfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hacluster/hacluster/pkg/bootstrap"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/output"
)

// Flags are the shared flags.
type Flags struct {
	File              string
	AcceptNewHostKeys bool
	Ignore            []string
	Output            string
	Example           bool

	// Set by Complete.
	Format  output.Format
	Cluster *inventory.Cluster
	// FromContext is the kubeconfig context the file was found from (no
	// -f given and no cluster.yaml here), "" otherwise.
	FromContext string

	flags *pflag.FlagSet
}

// Add registers the flags on cmd.
func (f *Flags) Add(cmd *cobra.Command) {
	f.flags = cmd.Flags()
	cmd.Flags().StringVarP(&f.File, "filename", "f", DefaultFile, "Cluster file (apiVersion hacluster.io/v1alpha1, kind Cluster); without -f and without ./cluster.yaml, the file bootstrap ran on for the current kubeconfig context")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml")
	cmd.Flags().BoolVar(&f.AcceptNewHostKeys, "accept-new-host-keys", false, "Trust host keys known_hosts does not list yet, and record them (a changed key is always refused)")
	cmd.Flags().StringSliceVar(&f.Ignore, "ignore-preflight-errors", nil, "Preflight checks whose errors are reported as warnings (names as printed, or all)")
	cmd.Flags().StringVarP(&f.Output, "output", "o", "", "Output format: json or yaml (default: a table for people; progress goes to stderr)")
	cmd.Flags().BoolVar(&f.Example, "example", false, "Print a commented cluster file and exit")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
}

// Complete parses -o and, unless --example, reads the cluster file. command
// names the command in the hint for a missing file.
func (f *Flags) Complete(command string) error {
	var err error
	if f.Format, err = output.ParseFormat(f.Output, output.Table, output.JSON, output.YAML); err != nil {
		return err
	}
	for _, i := range f.Ignore {
		if strings.TrimSpace(i) == "" {
			return fmt.Errorf("--ignore-preflight-errors: empty check name")
		}
	}
	if f.Example {
		return nil
	}
	hint := ""
	if f.File == DefaultFile && (f.flags == nil || !f.flags.Changed("filename")) {
		if _, err := os.Stat(f.File); os.IsNotExist(err) {
			file, context, why := FromKubeconfig()
			if file != "" {
				f.File, f.FromContext = file, context
			} else {
				hint = " (" + why + ")"
			}
		}
	}
	f.Cluster, err = inventory.Load(f.File)
	if os.IsNotExist(err) {
		return fmt.Errorf("%s does not exist%s: write one (kubectl hacluster %s --example > %s) or pass -f", f.File, hint, command, f.File)
	}
	return err
}

// Note says on w which file Complete took, when it came from the context.
func (f *Flags) Note(w io.Writer) {
	if f.FromContext != "" {
		fmt.Fprintf(w, "Using %s, the cluster file bootstrap ran on for kubeconfig context %s (-f to choose another).\n", f.File, f.FromContext)
	}
}

// DefaultFile is -f's default.
const DefaultFile = "cluster.yaml"

// FromKubeconfig finds the cluster file of the current kubeconfig context
// when bootstrap wrote that context (hacluster-<name>) and recorded the file
// in the default state directory; else it says why not.
func FromKubeconfig() (file, context, why string) {
	cfg, err := clientcmd.NewDefaultClientConfigLoadingRules().Load()
	if err != nil {
		return "", "", "the kubeconfig: " + err.Error()
	}
	context = cfg.CurrentContext
	name, ok := strings.CutPrefix(context, "hacluster-")
	if !ok || name == "" {
		if context == "" {
			return "", "", "and the kubeconfig has no current context"
		}
		return "", "", "and the current kubeconfig context " + context + " is not one bootstrap wrote"
	}
	ptr := filepath.Join(bootstrap.DefaultStateDir(name), bootstrap.ClusterFilePointer)
	b, err := os.ReadFile(ptr)
	if err != nil {
		return "", "", "and " + ptr + " of context " + context + " is not readable: " + err.Error()
	}
	return strings.TrimSpace(string(b)), context, ""
}

// PrintExample writes the commented cluster file.
func PrintExample(w io.Writer) error {
	_, err := io.WriteString(w, inventory.Example())
	return err
}

// PrintPhases prints what each phase did on each host, as a table.
func PrintPhases(w io.Writer, phases []bootstrap.PhaseResult) {
	var rows [][]string
	for _, p := range phases {
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
	_ = output.RenderTable(w, []string{"PHASE", "HOST", "RESULT", "TOOK", "DETAIL"}, rows)
}

// PrintPlan prints a dry run: what each host would get, then the diffs.
func PrintPlan(w io.Writer, res *bootstrap.Result) {
	var rows [][]string
	for _, hp := range res.Plan {
		for _, a := range hp.Actions {
			rows = append(rows, []string{hp.Host, a.Phase, a.What})
		}
		for _, f := range hp.Files {
			if f.Diff == "" {
				continue
			}
			what := "change " + f.Path
			if f.New {
				what = "write " + f.Path
			}
			rows = append(rows, []string{hp.Host, f.Phase, what})
		}
	}
	if len(rows) == 0 {
		fmt.Fprintf(w, "Nothing to do: every host is as the cluster file says (dry run, %s).\n", res.Duration.Round(time.Millisecond))
		return
	}
	_ = output.RenderTable(w, []string{"HOST", "PHASE", "WOULD"}, rows)
	for _, hp := range res.Plan {
		for _, f := range hp.Files {
			if f.Diff != "" {
				fmt.Fprintf(w, "\n# %s: %s\n%s", hp.Host, f.Path, f.Diff)
			}
		}
	}
	fmt.Fprintf(w, "\nDry run: nothing was changed (%s). Run without --dry-run to apply.\n", res.Duration.Round(time.Millisecond))
}

// Logf is the progress line printer of the commands: a time, then the line.
func Logf(w io.Writer) func(string, ...any) {
	return func(f string, a ...any) { fmt.Fprintf(w, time.Now().Format("15:04:05 ")+f+"\n", a...) }
}
