package stack

import (
	"context"
	"fmt"
	"os/signal"
	"strings"
	"syscall"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/hacluster/hacluster/pkg/cmd/cmdutil"
	"github.com/hacluster/hacluster/pkg/output"
	"github.com/hacluster/hacluster/pkg/stack"
)

func newPsCmd(dockerCLI command.Cli) *cobra.Command {
	var (
		sel selector
		out string
		all bool
	)
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List the containers of a stack (the current folder's by default, every stack with --all)",
		Example: `  docker k8sprep ps
  docker k8sprep ps --all -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := output.ParseFormat(out, output.Table, output.JSON, output.YAML)
			if err != nil {
				return err
			}
			name := ""
			if !all {
				if name, err = sel.requireName(); err != nil {
					return err
				}
			}
			r := &stack.Runner{API: dockerCLI.Client()}
			svcs, err := r.List(cmd.Context(), name)
			if err != nil {
				return err
			}
			if f.Structured() {
				return output.Print(dockerCLI.Out(), f, svcs)
			}
			if len(svcs) == 0 {
				if name != "" {
					fmt.Fprintf(dockerCLI.Err(), "stack %q has no containers\n", name)
				} else {
					fmt.Fprintln(dockerCLI.Err(), "no k8sprep stacks")
				}
				return nil
			}
			return printServices(dockerCLI, svcs, false)
		},
	}
	sel.addFlags(cmd.Flags(), true)
	registerFileCompletion(cmd)
	cmd.Flags().BoolVarP(&all, "all", "a", false, "List the containers of every stack")
	cmdutil.AddOutputFlag(cmd, &out, output.Table, output.JSON, output.YAML)
	return cmd
}

func newLogsCmd(dockerCLI command.Cli) *cobra.Command {
	var (
		sel    selector
		follow bool
		tail   string
	)
	cmd := &cobra.Command{
		Use:               "logs [SERVICE]",
		Short:             "Show the logs of a stack's app and/or mysql container",
		Example:           "  docker k8sprep logs\n  docker k8sprep logs mysql --tail 20\n  docker k8sprep logs app -f",
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			svc := ""
			if len(args) == 1 {
				svc = args[0]
				if svc != stack.ServiceApp && svc != stack.ServiceMySQL {
					return fmt.Errorf("unknown service %q: use %s or %s", svc, stack.ServiceApp, stack.ServiceMySQL)
				}
			}
			name, err := sel.requireName()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			r := &stack.Runner{API: dockerCLI.Client()}
			err = r.Logs(ctx, name, svc, follow, tail, dockerCLI.Out(), dockerCLI.Err())
			if ctx.Err() != nil && (err == nil || strings.Contains(err.Error(), context.Canceled.Error())) {
				return nil
			}
			return err
		},
	}
	// -f is --follow here, as in `docker logs`; the stack file is --file.
	sel.addFlags(cmd.Flags(), false)
	registerFileCompletion(cmd)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "Follow the log output")
	cmd.Flags().StringVarP(&tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	return cmd
}

func newDownCmd(dockerCLI command.Cli) *cobra.Command {
	var (
		sel     selector
		volumes bool
		out     string
	)
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Remove a stack's containers and network (and its data volume with --volumes)",
		Long: `down removes only what carries the stack's label: its containers and network.
The MySQL data volume is kept unless --volumes is given, so the next
compose-run finds the data again. Containers, networks and volumes that the
stack did not create are never touched.`,
		Example: "  docker k8sprep down\n  docker k8sprep down --volumes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := output.ParseFormat(out, output.Table, output.JSON, output.YAML)
			if err != nil {
				return err
			}
			name, err := sel.requireName()
			if err != nil {
				return err
			}
			r := &stack.Runner{API: dockerCLI.Client()}
			res, err := r.Down(cmd.Context(), name, volumes)
			if err != nil {
				return err
			}
			if f.Structured() {
				return output.Print(dockerCLI.Out(), f, res)
			}
			w := dockerCLI.Out()
			if len(res.Containers)+len(res.Networks)+len(res.Volumes)+len(res.KeptVolume) == 0 {
				fmt.Fprintf(w, "stack %q: nothing to remove\n", name)
				return nil
			}
			for _, c := range res.Containers {
				fmt.Fprintf(w, "removed container %s\n", c)
			}
			for _, n := range res.Networks {
				fmt.Fprintf(w, "removed network %s\n", n)
			}
			for _, v := range res.Volumes {
				fmt.Fprintf(w, "removed volume %s\n", v)
			}
			for _, v := range res.KeptVolume {
				fmt.Fprintf(w, "kept volume %s (its data survives; remove it with --volumes)\n", v)
			}
			return nil
		},
	}
	sel.addFlags(cmd.Flags(), true)
	registerFileCompletion(cmd)
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "Also remove the stack's data volume (deletes the database)")
	cmdutil.AddOutputFlag(cmd, &out, output.Table, output.JSON, output.YAML)
	return cmd
}
