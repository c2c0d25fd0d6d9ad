package dockerfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	df "github.com/hacluster/hacluster/pkg/dockerfile"
	"github.com/hacluster/hacluster/pkg/output"
	"github.com/hacluster/hacluster/pkg/version"
)

// Formats `lint -o` accepts besides the human list.
const formatSARIF output.Format = "sarif"

// LintOptions are the flags of `dockerfile lint`.
type LintOptions struct {
	File             string
	Context          string
	NoContext        bool
	Port             int
	Ignore           []string
	FailureThreshold string
	ListRules        bool
	Output           string

	contextKnown bool
	threshold    df.Severity
	format       output.Format
	In           io.Reader
	Out          io.Writer
}

func newLintCmd(dockerCLI command.Cli) *cobra.Command {
	o := &LintOptions{In: dockerCLI.In(), Out: dockerCLI.Out()}
	cmd := &cobra.Command{
		Use:   "lint [FILE|-]",
		Short: "Check a Dockerfile: BuildKit checks, hadolint rules and Go/scratch rules",
		Long: `lint parses FILE (default ./Dockerfile, - for stdin) with BuildKit's own parser
and reports BuildKit check names (JSONArgsRecommended, SecretsUsedInArgOrEnv ...),
hadolint rules (DL3006, DL3007 ...) and Go/scratch rules (ScratchRun,
CgoNotDisabled, MissingCABundle, CopyBeforeModDownload, ExposeMismatch,
NoDockerignore ...). The file's directory is taken as the build context unless
--context or --no-context; NoDockerignore needs --context, or that directory
to be a project root (go.mod, package.json ...), and a large context.

Ignore a rule on one instruction with a comment right above it:
  # k8sprep-ignore=DL3008        (hadolint's "# hadolint ignore=DL3008" works too)
or for the whole file:
  # k8sprep-ignore-file=DL3059   ("# hadolint global ignore=" and BuildKit's "# check=skip=" too)

Exit status 1 when a finding reaches --failure-threshold, 2 when FILE cannot be
read, 125 for a usage error (an unknown flag or severity).`,
		Example: `  docker k8sprep dockerfile lint
  docker k8sprep dockerfile lint path/to/Dockerfile --failure-threshold error
  docker k8sprep dockerfile lint -o sarif > lint.sarif
  docker k8sprep dockerfile lint --list-rules`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return usageError(err)
			}
			return o.Run()
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Context, "context", "", "Build context directory for the context checks (default: the Dockerfile's directory, when it is a project root)")
	f.BoolVar(&o.NoContext, "no-context", false, "Skip the checks that read the build context (.dockerignore, app port)")
	f.IntVar(&o.Port, "port", 0, "Port the app listens on, for ExposeMismatch (default: found in the context's Go sources)")
	f.StringSliceVar(&o.Ignore, "ignore", nil, "Rules to skip (IDs or hadolint codes), repeatable or comma-separated")
	f.StringVar(&o.FailureThreshold, "failure-threshold", "warning", "Exit 1 when a finding is at least this severe: "+strings.Join(df.SeverityNames(), "|"))
	f.BoolVar(&o.ListRules, "list-rules", false, "Print the rule catalogue and exit")
	f.StringVarP(&o.Output, "output", "o", "", "Output format: json|sarif (default: one line per finding)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "sarif"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("failure-threshold", cobra.FixedCompletions(df.SeverityNames(), cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("context", dirCompletion)
	_ = cmd.RegisterFlagCompletionFunc("ignore", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		var ids []string
		for _, r := range df.Rules() {
			ids = append(ids, r.ID+"\t"+r.Description)
		}
		return ids, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// Complete reads the arguments and flags.
func (o *LintOptions) Complete(args []string) error {
	o.File = "Dockerfile"
	if len(args) == 1 {
		o.File = args[0]
	}
	var err error
	if o.threshold, err = df.ParseSeverity(o.FailureThreshold); err != nil {
		return fmt.Errorf("--failure-threshold: %w", err)
	}
	if o.format, err = output.ParseFormat(o.Output, output.Table, output.JSON, formatSARIF); err != nil {
		return err
	}
	o.contextKnown = o.Context != ""
	if o.Context == "" && !o.NoContext && o.File != "-" {
		o.Context = filepath.Dir(o.File)
	}
	if o.NoContext {
		o.Context = ""
	}
	return nil
}

// Run lints and prints; a finding at the threshold gives exit status 1.
func (o *LintOptions) Run() error {
	if o.ListRules {
		return printRules(o.Out, o.format)
	}
	var src []byte
	var err error
	if o.File == "-" {
		src, err = io.ReadAll(o.In)
	} else {
		src, err = os.ReadFile(o.File)
	}
	if err != nil {
		return fileError(err)
	}
	name := o.File
	if name == "-" {
		name = "<stdin>"
	}
	rep, err := df.Lint(name, src, df.LintOptions{ContextDir: o.Context, ContextKnown: o.contextKnown, Port: o.Port, Ignore: o.Ignore})
	if err != nil {
		return err
	}
	if err := PrintReport(o.Out, o.format, rep); err != nil {
		return err
	}
	return ThresholdError(rep, o.threshold)
}

// ThresholdError is nil unless a finding reaches threshold.
func ThresholdError(rep *df.Report, threshold df.Severity) error {
	if !rep.Fails(threshold) {
		return nil
	}
	n := rep.Count(threshold)
	return cli.StatusError{StatusCode: ExitFindings, Status: fmt.Sprintf("%s: %d finding(s) at or above %s", rep.File, n, threshold)}
}

// PrintReport writes the findings as lines for people, JSON or SARIF.
func PrintReport(w io.Writer, f output.Format, rep *df.Report) error {
	switch f {
	case output.JSON:
		return output.Print(w, f, rep)
	case formatSARIF:
		return df.WriteSARIF(w, version.Version, rep)
	}
	c := output.NewColorer(w)
	for _, x := range rep.Findings {
		sev := x.Severity.String()
		switch x.Severity {
		case df.SeverityError:
			sev = c.Red(sev)
		case df.SeverityWarning:
			sev = c.Yellow(sev)
		}
		if _, err := fmt.Fprintf(w, "%s:%d %s %s: %s\n", rep.File, x.Line, c.Bold(x.Rule), sev, x.Message); err != nil {
			return err
		}
	}
	return nil
}

func printRules(w io.Writer, f output.Format) error {
	rules := df.Rules()
	if f == output.JSON {
		return output.Print(w, f, rules)
	}
	rows := make([][]string, 0, len(rules))
	for _, r := range rules {
		rows = append(rows, []string{r.ID, r.Severity.String(), r.Source, strings.Join(r.Aliases, ","), r.Description})
	}
	return output.RenderTable(w, []string{"rule", "severity", "source", "aliases", "description"}, rows)
}
