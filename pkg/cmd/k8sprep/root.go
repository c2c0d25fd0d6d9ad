// Package k8sprep is the cobra layer of `docker k8sprep`. It must not import
// client-go (see the isolation test): the Docker CLI runs this binary for its
// metadata on every `docker --help`. Subcommands live in sub-packages.
package k8sprep

import (
	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/hacluster/hacluster/pkg/cmd/cmdutil"
	buildcmd "github.com/hacluster/hacluster/pkg/cmd/k8sprep/build"
	dockerfilecmd "github.com/hacluster/hacluster/pkg/cmd/k8sprep/dockerfile"
	"github.com/hacluster/hacluster/pkg/cmd/k8sprep/meta"
	stackcmd "github.com/hacluster/hacluster/pkg/cmd/k8sprep/stack"
)

// NewCmd builds the `docker k8sprep` command tree on top of the Docker CLI,
// which carries the docker context, DOCKER_HOST and TLS settings.
func NewCmd(dockerCLI command.Cli) *cobra.Command {
	root := &cobra.Command{
		Use:   meta.Name,
		Short: meta.Metadata().ShortDescription,
		Long: `docker k8sprep writes, lints and builds Dockerfiles for Go apps (a golang
builder stage and a scratch final stage), runs the app with MySQL on a Docker
network, and exports the same stack as Kubernetes manifests.`,
		Args:          cli.NoArgs,
		RunE:          command.ShowHelp(dockerCLI.Err()),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		cmdutil.NewVersionCommand(meta.Binary, dockerCLI.Out()),
		cmdutil.NewCompletionCommand(dockerCLI.Out(), "  source <(docker k8sprep completion bash)"),
	)
	// subcommands: root.AddCommand(<pkg>.NewCmd(dockerCLI)...), one line each
	root.AddCommand(stackcmd.NewCmd(dockerCLI)...)
	root.AddCommand(dockerfilecmd.NewCmd(dockerCLI))
	root.AddCommand(buildcmd.NewCmd(dockerCLI))
	return root
}
