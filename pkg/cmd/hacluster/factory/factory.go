// Package factory gives every `kubectl hacluster` subcommand what it shares:
// the kubeconfig flags (--kubeconfig, --context, -n, ...) and the IO streams.
package factory

import (
	"fmt"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Factory is created once by the root command and handed to subcommands.
type Factory struct {
	ConfigFlags *genericclioptions.ConfigFlags
	genericiooptions.IOStreams
}

// ForKubeconfig returns a Factory for one kubeconfig file and, when not
// empty, one namespace: what `--kubeconfig FILE -n NS` gives on the command
// line (tests, and tools that embed the commands).
func ForKubeconfig(kubeconfig, namespace string, streams genericiooptions.IOStreams) *Factory {
	flags := genericclioptions.NewConfigFlags(true)
	flags.KubeConfig = &kubeconfig
	if namespace != "" {
		flags.Namespace = &namespace
	}
	return &Factory{ConfigFlags: flags, IOStreams: streams}
}

// RESTConfig loads the client configuration selected by the flags, with
// a one-line error for a missing or broken kubeconfig.
func (f *Factory) RESTConfig() (*rest.Config, error) {
	cfg, err := f.ConfigFlags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("cannot load kubeconfig: %w", err)
	}
	cfg.UserAgent = "kubectl-hacluster"
	return cfg, nil
}

// Clientset returns a typed client for the selected cluster.
func (f *Factory) Clientset() (kubernetes.Interface, error) {
	cfg, err := f.RESTConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// Namespace returns the namespace from -n or the kubeconfig context, and
// whether it was given explicitly.
func (f *Factory) Namespace() (string, bool, error) {
	return f.ConfigFlags.ToRawKubeConfigLoader().Namespace()
}
