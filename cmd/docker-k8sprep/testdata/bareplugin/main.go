// Command bareplugin is the start-up reference for docker-k8sprep: a Docker
// CLI plugin with plugin.Run and one cobra command, linked against the same
// docker/cli as the product. It lives under testdata so that `./...` never
// builds or ships it; TestInitAllocs and hack/bench/startup.sh build it by path.
package main

import (
	"fmt"

	"github.com/docker/cli/cli-plugins/metadata"
	"github.com/docker/cli/cli-plugins/plugin"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

func main() {
	plugin.Run(func(dockerCLI command.Cli) *cobra.Command {
		return &cobra.Command{
			Use:   "bareplugin",
			Short: "start-up reference",
			RunE: func(cmd *cobra.Command, _ []string) error {
				_, err := fmt.Fprintln(dockerCLI.Out(), "bareplugin")
				return err
			},
		}
	}, metadata.Metadata{
		SchemaVersion:    "0.1.0",
		Vendor:           "hacluster project",
		Version:          "v0.0.0",
		ShortDescription: "start-up reference",
	})
}
