package stack

import (
	"fmt"
	"io"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/hacluster/hacluster/pkg/cmd/cmdutil"
	"github.com/hacluster/hacluster/pkg/output"
	"github.com/hacluster/hacluster/pkg/stack"
)

// upOptions are the flags of compose-run; set flags override the stack file.
type upOptions struct {
	sel     selector
	flags   stackFlags
	output  string
	quiet   bool
	timeout time.Duration

	fromFile bool
	format   output.Format
	cmd      *cobra.Command
}

func newComposeRunCmd(dockerCLI command.Cli) *cobra.Command {
	return composeRunCmd(dockerCLI, &upOptions{})
}

func composeRunCmd(dockerCLI command.Cli, o *upOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "compose-run [flags]",
		Short: "Run the app and MySQL on a Docker network (creates or reconciles the stack)",
		Long: `compose-run creates a user-defined network and a named data volume, starts
MySQL with passwords read from files (generated with mode 0600 under
.k8sprep/<stack>/ when absent; never on a command line, never printed), waits
until MySQL accepts queries over TCP as the app's user, builds the app image,
writes a rewritten copy of the app's config.toml (database host = the MySQL
container, port 3306; your file is not modified) mounted read-only where the
image has the file (the Dockerfile's COPY of it, else its WORKDIR), starts
the app and waits until it answers. Running it again recreates only what changed
(image, environment, config). The stack comes from flags, a k8sprep.yaml or a
compose.yaml (an app service plus a mysql/mariadb service). A stack started
from flags alone is remembered for export k8s.`,
		Example: `  # The article's app: a Dockerfile and config.toml in the current folder
  docker k8sprep compose-run --mysql-image mysql:8.4 --port 8080:8080
  # From a stack file
  docker k8sprep compose-run -f k8sprep.yaml
  docker k8sprep compose-run -f compose.yaml -o json`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			o.cmd = cmd
			return o.validate()
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd, dockerCLI) },
	}
	fs := cmd.Flags()
	o.sel.addFlags(fs, true)
	registerFileCompletion(cmd)
	o.flags.add(cmd)
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "Do not show progress and notes on stderr")
	addTimeout(fs, &o.timeout)
	cmdutil.AddOutputFlag(cmd, &o.output, output.Table, output.JSON, output.YAML)
	return cmd
}

func (o *upOptions) validate() error {
	var err error
	if o.format, err = output.ParseFormat(o.output, output.Table, output.JSON, output.YAML); err != nil {
		return err
	}
	if err := o.flags.validate(); err != nil {
		return err
	}
	if o.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive")
	}
	return nil
}

// override applies the flags the user set on top of the stack file.
func (o *upOptions) override(s *stack.Stack) { o.flags.override(s, &o.sel, o.fromFile) }

func (o *upOptions) run(cmd *cobra.Command, dockerCLI command.Cli) error {
	path, err := o.sel.path()
	if err != nil {
		return err
	}
	o.fromFile = path != ""
	s, err := stack.Load(path, stack.LoadOptions{Override: o.override})
	if err != nil {
		return err
	}
	errOut := dockerCLI.Err()
	progress := output.NewProgress(errOut, o.quiet)
	r := &stack.Runner{API: dockerCLI.Client(), Progress: progress, Timeout: o.timeout}
	if !o.quiet && output.IsTerminal(errOut) {
		r.BuildLog = indent(errOut)
	}
	res, err := r.Up(cmd.Context(), s)
	if err != nil {
		return err
	}
	progress.Done()
	if !o.fromFile {
		// Started from flags alone: remember them for export k8s.
		flags := &stack.Stack{}
		o.override(flags)
		if _, err := s.RememberFlags(flags); err != nil {
			return fmt.Errorf("the stack runs, but remembering its flags for export k8s failed: %w", err)
		}
	}
	if o.format.Structured() {
		return output.Print(dockerCLI.Out(), o.format, res)
	}
	if err := printServices(dockerCLI, res.Services, true); err != nil {
		return err
	}
	if o.quiet {
		return nil
	}
	for _, g := range res.Generated {
		fmt.Fprintf(errOut, "generated password file %s (mode 0600)\n", g)
	}
	if res.Config != "" {
		where := ""
		if f := s.App.Config.MountPathFrom; f != "" {
			where = " (" + f + ")"
		}
		fmt.Fprintf(errOut, "app config: rewritten copy %s mounted read-only at %s%s\n", res.Config, s.App.Config.MountPath, where)
	}
	for _, n := range res.Notes {
		fmt.Fprintln(errOut, n)
	}
	return nil
}

// indent shows build output under the progress lines.
func indent(w io.Writer) io.Writer { return &output.PrefixWriter{W: w, Prefix: "   │ "} }
