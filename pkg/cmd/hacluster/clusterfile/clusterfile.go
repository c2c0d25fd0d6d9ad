// Package clusterfile holds the flags every command that acts on a cluster
// file's hosts shares (bootstrap, preflight): -f, --accept-new-host-keys,
// --ignore-preflight-errors, -o and --example.
package clusterfile

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

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
}

// Add registers the flags on cmd.
func (f *Flags) Add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&f.File, "filename", "f", "cluster.yaml", "Cluster file (apiVersion hacluster.io/v1alpha1, kind Cluster)")
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
	f.Cluster, err = inventory.Load(f.File)
	if os.IsNotExist(err) {
		return fmt.Errorf("%s does not exist: write one (kubectl hacluster %s --example > %s) or pass -f", f.File, command, f.File)
	}
	return err
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

// Logf is the progress line printer of the commands: a time, then the line.
func Logf(w io.Writer) func(string, ...any) {
	return func(f string, a ...any) { fmt.Fprintf(w, time.Now().Format("15:04:05 ")+f+"\n", a...) }
}
