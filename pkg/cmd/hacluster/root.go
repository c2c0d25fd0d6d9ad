// Package hacluster is the cobra layer of `kubectl hacluster`. Each
// subcommand lives in its own sub-package with an Options struct
// (Complete / Validate / Run); the work itself is done by the core packages
// under pkg/, which know nothing of cobra.
package hacluster

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/hacluster/hacluster/pkg/cmd/cmdutil"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/addons"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/bootstrap"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/bundle"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/drill"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/explain"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/factory"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/inspect"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/join"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/preflight"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/proxymode"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/remove"
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

	f := &factory.Factory{ConfigFlags: flags, IOStreams: streams}
	root.AddCommand(
		cmdutil.NewVersionCommand("kubectl-hacluster", streams.Out),
		cmdutil.NewCompletionCommand(streams.Out, "  source <(kubectl hacluster completion bash)"),
	)
	root.AddCommand(inspect.NewCmd(f))
	root.AddCommand(addons.NewCmd(f))
	root.AddCommand(explain.NewCmd(f))
	root.AddCommand(proxymode.NewCmd(f))
	root.AddCommand(preflight.NewCmd(f))
	root.AddCommand(bootstrap.NewCmd(f))
	root.AddCommand(join.NewCmd(f))
	root.AddCommand(remove.NewCmd(f))
	root.AddCommand(bundle.NewCmd(f))
	root.AddCommand(drill.NewCmd(f))
	_ = f // subcommands: root.AddCommand(<pkg>.NewCmd(f)), one line each
	return root
}
