// Command docker-k8sprep is the `docker k8sprep` Docker CLI plugin. It also
// runs standalone (`docker-k8sprep version`).
package main

import (
	"os"

	"github.com/docker/cli/cli-plugins/metadata"
	"github.com/docker/cli/cli-plugins/plugin"
	"github.com/spf13/cobra"

	// Imported for its init, which Go's initialisation order runs before
	// the packages of the commands (see its doc): it answers
	// docker-cli-plugin-metadata and `version` there and exits.
	_ "github.com/hacluster/hacluster/cmd/docker-k8sprep/internal/fastpath"
	"github.com/hacluster/hacluster/pkg/cmd/k8sprep"
	"github.com/hacluster/hacluster/pkg/cmd/k8sprep/meta"
)

func main() {
	os.Args = standaloneArgs(os.Args, os.Getenv("DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND") != "")
	plugin.Run(k8sprep.NewCmd, meta.Metadata())
}

// standaloneArgs makes `docker-k8sprep version` work outside the Docker CLI:
// plugin.Run expects the argv docker passes (`[path, global flags..., k8sprep,
// args...]`), so the plugin name is inserted when docker did not start us.
func standaloneArgs(args []string, fromDocker bool) []string {
	if fromDocker || len(args) < 2 || args[1] == metadata.MetadataSubcommandName || args[1] == meta.Name {
		return args
	}
	// Shell completion asks cobra's hidden __complete command, which docker
	// places before the plugin name: `__complete k8sprep <args>`.
	if args[1] == cobra.ShellCompRequestCmd || args[1] == cobra.ShellCompNoDescRequestCmd {
		return append([]string{args[0], args[1], meta.Name}, args[2:]...)
	}
	return append([]string{args[0], meta.Name}, args[1:]...)
}
