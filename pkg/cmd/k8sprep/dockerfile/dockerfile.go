// Package dockerfile is the cobra layer of `docker k8sprep dockerfile
// init|lint|explain`; the work is done by pkg/dockerfile.
package dockerfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/hacluster/hacluster/pkg/cmd/cmdutil"
	df "github.com/hacluster/hacluster/pkg/dockerfile"
	"github.com/hacluster/hacluster/pkg/output"
)

// NewCmd returns `docker k8sprep dockerfile`.
func NewCmd(dockerCLI command.Cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dockerfile",
		Short: "Write, lint and explain Dockerfiles for Go services",
		Args:  cli.NoArgs,
		RunE:  command.ShowHelp(dockerCLI.Err()),
	}
	cmd.AddCommand(newInitCmd(dockerCLI), newLintCmd(dockerCLI), newExplainCmd(dockerCLI))
	return cmd
}

// Exit statuses of init and lint: 1 is "findings at the threshold" (lint),
// a usage error is 125 as for the docker CLI's own flag errors, and a file
// or directory that cannot be read is 2.
const (
	ExitFindings = 1
	ExitNoFile   = 2
	ExitUsage    = 125
)

func usageError(err error) error {
	return cli.StatusError{StatusCode: ExitUsage, Status: err.Error()}
}

func fileError(err error) error {
	return cli.StatusError{StatusCode: ExitNoFile, Status: err.Error()}
}

func usageArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return usageError(err)
		}
		return nil
	}
}

func dirCompletion(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveFilterDirs
}

// InitOptions are the flags of `dockerfile init`.
type InitOptions struct {
	Dir          string
	Main         string
	Port         int
	Base         string
	BuilderImage string
	BuildKit     bool
	buildKitSet  bool
	Force        bool
	Stdout       bool
	Output       string
	format       output.Format

	// DetectBuildKit reports whether the engine builds with BuildKit by
	// default; replaced in tests.
	DetectBuildKit func(context.Context) bool
	Out, Err       io.Writer
}

// InitResult is what `init -o json` prints.
type InitResult struct {
	*df.Generated
	Module    string           `json:"module"`
	GoVersion string           `json:"goVersion"`
	Files     []df.WriteResult `json:"files"`
}

func newInitCmd(dockerCLI command.Cli) *cobra.Command {
	o := &InitOptions{Out: dockerCLI.Out(), Err: dockerCLI.Err()}
	o.DetectBuildKit = func(ctx context.Context) bool {
		if v, err := strconv.ParseBool(os.Getenv("DOCKER_BUILDKIT")); err == nil {
			return v
		}
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		p, err := dockerCLI.Client().Ping(ctx, client.PingOptions{})
		return err == nil && p.BuilderVersion == build.BuilderBuildKit
	}
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Write a multi-stage Dockerfile and .dockerignore for the Go module in DIR",
		Long: `init reads DIR/go.mod (module path, Go version), finds the main package, config
files (config.toml ...) and the listen port, and writes a multi-stage Dockerfile:
a golang builder pinned to the module's Go version, go mod download in its own
layer, a static build (CGO_ENABLED=0 -trimpath -ldflags "-s -w"), and a scratch
final stage with CA certificates, time zone data, the config file, a numeric
non-root USER, EXPOSE and a JSON-form ENTRYPOINT. The port is read from the Go
sources (listen addresses, -port/-addr flag defaults, PORT fallbacks); a program
that listens on nothing gets no EXPOSE ("no server found"). Existing files are kept
unless --force (then a .bak copy is made).`,
		Example: `  docker k8sprep dockerfile init
  docker k8sprep dockerfile init ./myapp --main ./cmd/server --port 9090
  docker k8sprep dockerfile init --builder-image hacluster.local/golang:1.26 --force
  docker k8sprep dockerfile init --base distroless --stdout`,
		Args:              usageArgs(cobra.MaximumNArgs(1)),
		ValidArgsFunction: dirCompletion,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(cmd, args); err != nil {
				return usageError(err)
			}
			if err := o.Validate(); err != nil {
				return usageError(err)
			}
			return o.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Main, "main", "", "Main package to build (\".\" or \"./cmd/name\"), needed when there are several")
	f.IntVar(&o.Port, "port", 0, "Port the app listens on (default: found in the sources, else 8080)")
	f.StringVar(&o.Base, "base", df.BaseScratch, "Final stage: "+strings.Join(df.Bases, "|"))
	f.StringVar(&o.BuilderImage, "builder-image", "", "Builder image instead of golang:<go.mod version> (a mirror, e.g. hacluster.local/golang:1.26)")
	f.BoolVar(&o.BuildKit, "buildkit", false, "Use BuildKit cache mounts (default: when DOCKER_BUILDKIT=1 or the engine builds with BuildKit)")
	f.BoolVar(&o.Force, "force", false, "Replace existing Dockerfile/.dockerignore (keeps a .bak copy)")
	f.BoolVar(&o.Stdout, "stdout", false, "Print the Dockerfile instead of writing files")
	cmdutil.AddOutputFlag(cmd, &o.Output, output.Table, output.JSON, output.YAML)
	_ = cmd.RegisterFlagCompletionFunc("base", cobra.FixedCompletions(df.Bases, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("main", func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		dir := "."
		if len(args) > 0 {
			dir = args[0]
		}
		p, err := df.Inspect(dir)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return p.Mains, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// Complete fills in defaults from the arguments.
func (o *InitOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Dir = "."
	if len(args) == 1 {
		o.Dir = args[0]
	}
	o.buildKitSet = cmd.Flags().Changed("buildkit")
	var err error
	o.format, err = output.ParseFormat(o.Output, output.Table, output.JSON, output.YAML)
	return err
}

// Validate checks the flags.
func (o *InitOptions) Validate() error {
	if o.Port < 0 || o.Port > 65535 {
		return fmt.Errorf("--port %d: not a port number", o.Port)
	}
	if o.Stdout && o.format.Structured() {
		return errors.New("--stdout and -o cannot be used together")
	}
	return nil
}

// Run generates and writes the files.
func (o *InitOptions) Run(ctx context.Context) error {
	p, err := df.Inspect(o.Dir)
	if err != nil {
		return fileError(err)
	}
	bk := o.BuildKit
	if !o.buildKitSet && o.DetectBuildKit != nil {
		bk = o.DetectBuildKit(ctx)
	}
	g, err := df.Generate(p, df.GenerateOptions{Main: o.Main, Port: o.Port, Base: o.Base, BuilderImage: o.BuilderImage, BuildKit: bk})
	if err != nil {
		return err
	}
	if o.Stdout {
		_, err := io.WriteString(o.Out, g.Dockerfile)
		return err
	}
	res := InitResult{Generated: g, Module: p.Module, GoVersion: p.GoVersion}
	// Check both first so that a refusal writes nothing.
	files := []struct{ name, body string }{{"Dockerfile", g.Dockerfile}, {".dockerignore", g.Dockerignore}}
	if !o.Force {
		for _, f := range files {
			if _, err := os.Stat(filepath.Join(o.Dir, f.name)); err == nil {
				return fmt.Errorf("%s already exists (use --force to replace it; a .bak copy is kept, or --stdout to print)", filepath.Join(o.Dir, f.name))
			}
		}
	}
	for _, f := range files {
		w, err := df.WriteFile(filepath.Join(o.Dir, f.name), []byte(f.body), o.Force)
		if err != nil {
			return err
		}
		res.Files = append(res.Files, w)
	}
	if o.format.Structured() {
		return output.Print(o.Out, o.format, res)
	}
	for _, w := range res.Files {
		if w.Backup != "" {
			fmt.Fprintf(o.Out, "wrote %s (previous version saved as %s)\n", w.Path, w.Backup)
		} else {
			fmt.Fprintf(o.Out, "wrote %s\n", w.Path)
		}
	}
	port := fmt.Sprintf("port %d", g.Port)
	if !g.Server {
		port = "no server found (no EXPOSE; --port N adds one)"
	}
	fmt.Fprintf(o.Out, "%s (Go %s): main %s, builder %s, final stage %s, %s, buildkit cache mounts %v\n",
		p.Module, p.GoVersion, g.Main, g.BuilderImage, g.Base, port, g.BuildKit)
	if len(g.Configs) > 0 {
		fmt.Fprintf(o.Out, "config files copied next to the binary: %s\n", strings.Join(g.Configs, ", "))
	}
	return nil
}
