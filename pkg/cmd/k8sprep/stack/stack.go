// Package stack is the cobra layer of `docker k8sprep compose-run`, `ps`,
// `logs`, `down` and `export k8s`. The work is done by pkg/stack (the Docker
// side) and pkg/k8sexport (the manifests).
package stack

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hacluster/hacluster/pkg/output"
	"github.com/hacluster/hacluster/pkg/stack"
)

// NewCmd returns compose-run, ps, logs, down and export.
func NewCmd(dockerCLI command.Cli) []*cobra.Command {
	return []*cobra.Command{
		newComposeRunCmd(dockerCLI),
		newPsCmd(dockerCLI),
		newLogsCmd(dockerCLI),
		newDownCmd(dockerCLI),
		newExportCmd(dockerCLI),
	}
}

// selector finds the stack a command works on: -f/--file, --name, or the
// stack file in the current folder.
type selector struct {
	file string
	name string
}

func (s *selector) addFlags(fs *pflag.FlagSet, fileShort bool) {
	if fileShort {
		fs.StringVarP(&s.file, "file", "f", "", "Stack file: k8sprep.yaml or compose.yaml (default: the one in the current folder)")
	} else {
		fs.StringVar(&s.file, "file", "", "Stack file: k8sprep.yaml or compose.yaml (default: the one in the current folder)")
	}
	fs.StringVar(&s.name, "name", "", "Stack name (default: from the stack file, else the current folder's name)")
}

func registerFileCompletion(cmd *cobra.Command) {
	_ = cmd.RegisterFlagCompletionFunc("file", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	})
}

// path returns the stack file to read ("" for none).
func (s *selector) path() (string, error) {
	if s.file != "" {
		if _, err := os.Stat(s.file); err != nil {
			return "", fmt.Errorf("stack file: %w", err)
		}
		return s.file, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return stack.Find(wd), nil
}

// stackName resolves the name only (for ps, logs and down); "" when nothing
// names a stack.
func (s *selector) stackName() (string, error) {
	if s.name != "" {
		return s.name, nil
	}
	p, err := s.path()
	if err != nil || p == "" {
		return "", err
	}
	st, err := stack.Load(p, stack.LoadOptions{SkipCheck: true})
	if err != nil {
		return "", err
	}
	return st.Name, nil
}

func (s *selector) requireName() (string, error) {
	n, err := s.stackName()
	if err != nil {
		return "", err
	}
	if n == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		n = stack.SanitizeName(baseName(wd))
	}
	return n, nil
}

func baseName(p string) string {
	p = strings.TrimRight(p, string(os.PathSeparator))
	if i := strings.LastIndexByte(p, os.PathSeparator); i >= 0 {
		return p[i+1:]
	}
	return p
}

// completeServices completes SERVICE arguments.
func completeServices(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return []string{stack.ServiceApp, stack.ServiceMySQL}, cobra.ShellCompDirectiveNoFileComp
}

// printServices renders the table of what runs and where.
func printServices(dockerCLI command.Cli, svcs []stack.Service, withAction bool) error {
	header := []string{"STACK", "SERVICE", "CONTAINER", "IMAGE", "STATE", "IN NETWORK", "PUBLISHED"}
	if withAction {
		header = append(header, "ACTION")
	}
	rows := make([][]string, 0, len(svcs))
	for _, s := range svcs {
		pub := strings.Join(s.Published, ",")
		if s.URL != "" {
			pub = s.URL
		}
		if pub == "" {
			pub = "-"
		}
		row := []string{s.Stack, s.Service, s.Container, s.Image, s.State, orDash(s.Internal), pub}
		if withAction {
			row = append(row, s.Action)
		}
		rows = append(rows, row)
	}
	return output.RenderTable(dockerCLI.Out(), header, rows)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func addTimeout(fs *pflag.FlagSet, d *time.Duration) {
	fs.DurationVar(d, "timeout", 3*time.Minute, "How long to wait for MySQL and the app to become ready")
}
