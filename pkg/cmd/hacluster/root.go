// Package hacluster is the cobra layer of `kubectl hacluster`. Each
// subcommand lives in its own file or sub-package with an Options struct
// (Complete / Validate / Run); the work itself is done by the core packages
// under pkg/, which know nothing of cobra.
package hacluster

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/hacluster/hacluster/pkg/cmd/cmdutil"
)

// NewCmdRoot builds the `kubectl hacluster` command tree.
func NewCmdRoot(streams genericiooptions.IOStreams) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	root := &cobra.Command{
		Use:   "kubectl-hacluster",
		Short: "Stand up, inspect and explain highly-available Kubernetes clusters",
		Long: `kubectl hacluster helps you run a highly-available kubeadm cluster by hand:
three control planes behind a VIP, the add-ons a new cluster needs, and
explanations of Service types and kube-proxy modes taken from your own cluster.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl hacluster"},
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	flags.AddFlags(root.PersistentFlags())

	f := &Factory{ConfigFlags: flags, IOStreams: streams}
	root.AddCommand(
		cmdutil.NewVersionCommand("kubectl-hacluster", streams.Out),
		cmdutil.NewCompletionCommand(streams.Out, "  source <(kubectl hacluster completion bash)"),
	)
	for _, add := range subcommands {
		root.AddCommand(add(f))
	}
	return root
}

// Factory gives subcommands what they share: the kubeconfig flags and streams.
type Factory struct {
	ConfigFlags *genericclioptions.ConfigFlags
	genericiooptions.IOStreams
}

// subcommands is filled by the init functions of the files that define them,
// so that adding a subcommand touches only its own file.
var subcommands []func(*Factory) *cobra.Command

func register(fn func(*Factory) *cobra.Command) { subcommands = append(subcommands, fn) }
