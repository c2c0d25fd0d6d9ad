// Command kubectl-hacluster is the `kubectl hacluster` plugin.
package main

import (
	"os"

	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	_ "k8s.io/client-go/plugin/pkg/client/auth" // cloud auth providers (exec, oidc, ...)

	"github.com/hacluster/hacluster/pkg/cmd/cmdutil"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster"
)

func main() {
	pflag.CommandLine = pflag.NewFlagSet("kubectl-hacluster", pflag.ExitOnError)
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	cmdutil.Exit(hacluster.NewCmdRoot(streams).Execute(), os.Stderr)
}
