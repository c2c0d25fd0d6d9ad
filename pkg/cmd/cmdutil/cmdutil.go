// Package cmdutil holds the small pieces shared by the cobra layers of both
// plugins: exit codes, -o flag handling and version/completion commands.
package cmdutil

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hacluster/hacluster/pkg/output"
	"github.com/hacluster/hacluster/pkg/version"
)

// ExitError carries an exit code for results that are not failures of the
// command itself (for example `--fail-on warning` finding a warning). Message
// may be empty when the report already said everything.
type ExitError struct {
	Code    int
	Message string
}

func (e *ExitError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Message
}

// Exit prints err the way kubectl does ("error: ...", one line) and exits.
// It returns only when err is nil.
func Exit(err error, errOut io.Writer) {
	if err == nil {
		return
	}
	code := 1
	var ee *ExitError
	if errors.As(err, &ee) {
		code = ee.Code
		if ee.Message == "" {
			os.Exit(code)
		}
	}
	msg := strings.TrimSpace(err.Error())
	fmt.Fprintf(errOut, "error: %s\n", msg)
	os.Exit(code)
}

// ParseKeyValues turns repeated `--flag KEY=VALUE` values into a map, with
// a clear error naming the flag for a value without "=" or with an empty key.
func ParseKeyValues(flag string, values []string) (map[string]string, error) {
	m := make(map[string]string, len(values))
	for _, kv := range values {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q: want KEY=VALUE", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

// AddOutputFlag registers -o/--output with completion of the allowed values.
func AddOutputFlag(cmd *cobra.Command, target *string, allowed ...output.Format) {
	names := []string{}
	for _, a := range allowed {
		if a != output.Table {
			names = append(names, string(a))
		}
	}
	cmd.Flags().StringVarP(target, "output", "o", "", "Output format: "+strings.Join(names, "|")+" (default: a table for people)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(names, cobra.ShellCompDirectiveNoFileComp))
}

// NewVersionCommand prints the build version; -o json|yaml for scripts.
func NewVersionCommand(name string, out io.Writer) *cobra.Command {
	var o string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of " + name,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := output.ParseFormat(o, output.Table, output.JSON, output.YAML)
			if err != nil {
				return err
			}
			info := version.Get()
			if f.Structured() {
				return output.Print(out, f, info)
			}
			_, err = fmt.Fprintln(out, info.Line(name))
			return err
		},
	}
	AddOutputFlag(cmd, &o, output.Table, output.JSON, output.YAML)
	return cmd
}

// NewCompletionCommand writes a shell completion script for root.
func NewCompletionCommand(out io.Writer, example string) *cobra.Command {
	return &cobra.Command{
		Use:                   "completion bash|zsh|fish|powershell",
		Short:                 "Print a shell completion script",
		Example:               example,
		DisableFlagsInUseLine: true,
		ValidArgs:             []string{"bash", "zsh", "fish", "powershell"},
		Args:                  cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			default:
				return root.GenPowerShellCompletionWithDesc(out)
			}
		},
	}
}
