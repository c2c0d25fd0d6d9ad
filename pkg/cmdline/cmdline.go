// Package cmdline reads the command lines of cluster components (kube-proxy,
// kube-apiserver, ...) as they appear in Pod specs.
package cmdline

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// FlagValue finds --flag=value or --flag value in args; "" when absent.
func FlagValue(args []string, flag string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// PodFlag looks for flag in the command and args of each container of spec.
func PodFlag(spec *corev1.PodSpec, flag string) string {
	for _, ctr := range spec.Containers {
		if v := FlagValue(append(append([]string{}, ctr.Command...), ctr.Args...), flag); v != "" {
			return v
		}
	}
	return ""
}
