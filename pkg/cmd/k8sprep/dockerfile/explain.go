package dockerfile

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/hacluster/hacluster/pkg/cmd/cmdutil"
	df "github.com/hacluster/hacluster/pkg/dockerfile"
	"github.com/hacluster/hacluster/pkg/output"
)

func newExplainCmd(dockerCLI command.Cli) *cobra.Command {
	var outFlag string
	cmd := &cobra.Command{
		Use:   "explain [FILE|-]",
		Short: "Annotate each instruction of a Dockerfile with what it does and why",
		Example: `  docker k8sprep dockerfile explain
  docker k8sprep dockerfile explain examples/goapp/Dockerfile -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := output.ParseFormat(outFlag, output.Table, output.JSON, output.YAML)
			if err != nil {
				return err
			}
			file := "Dockerfile"
			if len(args) == 1 {
				file = args[0]
			}
			var src []byte
			if file == "-" {
				src, err = io.ReadAll(dockerCLI.In())
			} else {
				src, err = os.ReadFile(file)
			}
			if err != nil {
				return err
			}
			ex, err := df.Explain(src)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			if f.Structured() {
				return output.Print(dockerCLI.Out(), f, ex)
			}
			return printExplanations(dockerCLI.Out(), ex)
		},
	}
	cmdutil.AddOutputFlag(cmd, &outFlag, output.Table, output.JSON, output.YAML)
	return cmd
}

func printExplanations(w io.Writer, ex []df.Explanation) error {
	c := output.NewColorer(w)
	for _, e := range ex {
		src := strings.ReplaceAll(e.Source, "\n", "\n      ")
		if _, err := fmt.Fprintf(w, "%4d  %s\n      %s\n", e.Line, c.Bold(src), e.What); err != nil {
			return err
		}
		if e.Here != "" {
			if _, err := fmt.Fprintf(w, "      → %s\n", e.Here); err != nil {
				return err
			}
		}
		fmt.Fprintln(w)
	}
	return nil
}
