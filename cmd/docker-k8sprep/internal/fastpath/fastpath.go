// Package fastpath answers the calls the Docker CLI makes most often,
// `docker-k8sprep docker-cli-plugin-metadata` (for every `docker --help`,
// `docker info` and shell completion, and before each `docker k8sprep ...`)
// and `docker k8sprep version`, before the packages of the real commands are
// initialised.
//
// Those packages cost more at start-up than the whole Docker CLI plugin
// framework: github.com/santhosh-tekuri/jsonschema/v6 (compose.yaml
// validation, through compose-go) compiles every JSON Schema meta-schema in
// its init, k8s.io/api and k8s.io/apimachinery (`export k8s`) build their
// tables, three YAML libraries, tablewriter, ... None of that can be deferred
// from the outside: package initialisation runs before main. What can be
// chosen is the order. The Go spec (since Go 1.21) initialises packages
// sorted by import path, each as soon as all its imports are: this package
// imports only the standard library, docker/cli's metadata types (no imports)
// and two leaf packages of ours, so it is ready as soon as encoding/json is,
// and its path sorts before every heavy package (github.com/hacluster/... <
// github.com/santhosh-tekuri/..., k8s.io/..., go.yaml.in/...,
// github.com/olekukonko/..., github.com/moby/...). Its init therefore runs
// before theirs; when argv is one of the calls above, it writes the same
// bytes plugin.Run and the cobra command would, and exits. Any other argv
// (other commands, flags it does not know, --help, docker's global flags
// before the plugin name) falls through to main and plugin.Run, unchanged.
//
// The metadata answer is exactly plugin.Run's (which skips the Docker CLI
// set-up for it too). For `version`, what the fast path leaves out is the
// set-up the command does not use: loading the docker config and context,
// the connection to the Docker CLI's signal socket, and the OpenTelemetry
// usage metrics of the command.
//
// TestInitAllocs in cmd/docker-k8sprep guards both the order and the cost;
// TestFastPathSameOutput that the answers match the full path byte for byte.
// DOCKER_K8SPREP_NO_FASTPATH=1 turns it off (for those tests and the bench).
package fastpath

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/docker/cli/cli-plugins/metadata"

	"github.com/hacluster/hacluster/pkg/cmd/k8sprep/meta"
	"github.com/hacluster/hacluster/pkg/version"
)

// DisableEnv names the variable that turns the fast path off when set to 1.
const DisableEnv = "DOCKER_K8SPREP_NO_FASTPATH"

func init() {
	if os.Getenv(DisableEnv) == "1" {
		return
	}
	answer := Answer(os.Args[1:], os.Getenv(metadata.ReexecEnvvar) != "")
	if answer == nil {
		return
	}
	if err := answer(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Answer returns the writer of the answer to args (os.Args[1:]), or nil when
// the full command tree must handle them. fromDocker tells whether the Docker
// CLI started us (then the plugin name comes first, as docker passes it).
func Answer(args []string, fromDocker bool) func(io.Writer) error {
	if len(args) == 1 && args[0] == metadata.MetadataSubcommandName {
		return writeMetadata
	}
	if len(args) > 0 && args[0] == meta.Name {
		args = args[1:]
	} else if fromDocker {
		return nil // docker's global flags come first: leave them to plugin.Run
	}
	if len(args) == 0 || args[0] != "version" {
		return nil
	}
	switch format(args[1:]) {
	case "":
		return writeVersionLine
	case "json":
		return writeVersionJSON
	}
	return nil
}

// format is the -o/--output value of a `version` command line in the few
// spellings it accepts; "-" for anything else (left to cobra).
func format(flags []string) string {
	switch len(flags) {
	case 0:
		return ""
	case 1:
		for _, p := range []string{"--output=", "-o=", "-o"} {
			if v, ok := cut(flags[0], p); ok {
				return known(v)
			}
		}
	case 2:
		if flags[0] == "-o" || flags[0] == "--output" {
			return known(flags[1])
		}
	}
	return "-"
}

func cut(s, prefix string) (string, bool) {
	if len(s) > len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return "", false
}

func known(v string) string {
	switch v {
	case "json":
		return "json"
	case "table":
		return ""
	}
	return "-"
}

// writeMetadata is plugin.Run's docker-cli-plugin-metadata subcommand.
func writeMetadata(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "     ")
	return enc.Encode(meta.Metadata())
}

// writeVersionLine and writeVersionJSON are cmdutil.NewVersionCommand's
// outputs without -o and with -o json (output.Print's JSON).
func writeVersionLine(w io.Writer) error {
	_, err := fmt.Fprintln(w, version.Get().Line(meta.Binary))
	return err
}

func writeVersionJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(version.Get())
}
