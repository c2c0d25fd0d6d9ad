// Package build is the cobra layer of `docker k8sprep build`: lint the
// Dockerfile, build it on the engine of the current docker context
// (pkg/imagebuild) and report the image size and layer count.
package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli/command"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/hacluster/hacluster/pkg/cmd/cmdutil"
	dfcmd "github.com/hacluster/hacluster/pkg/cmd/k8sprep/dockerfile"
	df "github.com/hacluster/hacluster/pkg/dockerfile"
	"github.com/hacluster/hacluster/pkg/imagebuild"
	"github.com/hacluster/hacluster/pkg/output"
)

// Options are the flags of `build`.
type Options struct {
	Dir              string
	Dockerfile       string
	Tags             []string
	BuildArgs        []string
	Labels           []string
	Target           string
	NoCache          bool
	NoLint           bool
	FailureThreshold string
	Progress         string
	Quiet            bool
	Output           string

	threshold df.Severity
	format    output.Format
	args      map[string]string
	labels    map[string]string
	API       imagebuild.API
	Out, Err  io.Writer
}

// Result is what `build -o json` prints.
type Result struct {
	imagebuild.Result
	Lint *df.Report `json:"lint,omitempty"`
}

// NewCmd returns `docker k8sprep build`.
func NewCmd(dockerCLI command.Cli) *cobra.Command {
	o := &Options{Out: dockerCLI.Out(), Err: dockerCLI.Err()}
	cmd := &cobra.Command{
		Use:   "build [DIR] -t TAG",
		Short: "Lint the Dockerfile, then build it on the current docker context's engine",
		Long: `build lints DIR/Dockerfile first (findings at --failure-threshold, default
error, stop the build unless --no-lint), sends DIR as the build context
(honouring .dockerignore) to the engine of the current docker context
(DOCKER_HOST, docker context use ...), and reports the image size and number of
layers. It uses the engine's classic builder, so Dockerfiles with RUN --mount
need "docker buildx build" instead.`,
		Example: `  docker k8sprep build -t goapp:dev
  docker k8sprep build ./myapp -t myapp:1.0 --build-arg GO_IMAGE=hacluster.local/golang:1.26
  docker k8sprep build -t goapp:dev -o json`,
		Args: cobra.MaximumNArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveFilterDirs
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			if o.API == nil {
				o.API = dockerCLI.Client()
			}
			return o.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&o.Tags, "tag", "t", nil, "Name and tag of the image (repeatable)")
	f.StringVarP(&o.Dockerfile, "file", "f", "Dockerfile", "Dockerfile, relative to DIR")
	f.StringArrayVar(&o.BuildArgs, "build-arg", nil, "Build argument NAME=value (repeatable)")
	f.StringArrayVar(&o.Labels, "label", nil, "Image label KEY=value (repeatable)")
	f.StringVar(&o.Target, "target", "", "Build stage to stop at")
	f.BoolVar(&o.NoCache, "no-cache", false, "Do not use the build cache")
	f.BoolVar(&o.NoLint, "no-lint", false, "Build even if the linter finds errors")
	f.StringVar(&o.FailureThreshold, "failure-threshold", "error", "Lint severity that stops the build: "+strings.Join(df.SeverityNames(), "|"))
	f.StringVar(&o.Progress, "progress", "auto", "Builder output on stderr: auto (when stderr is a terminal)|plain|quiet")
	f.BoolVarP(&o.Quiet, "quiet", "q", false, "Print only the image ID")
	cmdutil.AddOutputFlag(cmd, &o.Output, output.Table, output.JSON, output.YAML)
	_ = cmd.RegisterFlagCompletionFunc("progress", cobra.FixedCompletions([]string{"auto", "plain", "quiet"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("failure-threshold", cobra.FixedCompletions(df.SeverityNames(), cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Complete reads arguments and flags.
func (o *Options) Complete(args []string) error {
	o.Dir = "."
	if len(args) == 1 {
		o.Dir = args[0]
	}
	var err error
	if o.threshold, err = df.ParseSeverity(o.FailureThreshold); err != nil {
		return fmt.Errorf("--failure-threshold: %w", err)
	}
	if o.format, err = output.ParseFormat(o.Output, output.Table, output.JSON, output.YAML); err != nil {
		return err
	}
	if o.args, err = cmdutil.ParseKeyValues("build-arg", o.BuildArgs); err != nil {
		return err
	}
	if o.labels, err = cmdutil.ParseKeyValues("label", o.Labels); err != nil {
		return err
	}
	return nil
}

// Validate checks the flags.
func (o *Options) Validate() error {
	if len(o.Tags) == 0 {
		return errors.New("name the image with -t NAME:TAG")
	}
	switch o.Progress {
	case "auto", "plain", "quiet":
	default:
		return fmt.Errorf("--progress %q: use auto|plain|quiet", o.Progress)
	}
	if o.Quiet && o.format.Structured() {
		return errors.New("--quiet and -o cannot be used together")
	}
	return nil
}

// Run lints, builds and reports.
func (o *Options) Run(ctx context.Context) error {
	res := Result{}
	stepsQuiet := o.Progress == "quiet"
	prog := output.NewProgress(o.Err, stepsQuiet)
	dfPath := filepath.Join(o.Dir, o.Dockerfile)
	if !o.NoLint {
		prog.Start("lint %s", dfPath)
		rep, err := df.LintFile(dfPath, df.LintOptions{ContextDir: o.Dir, ContextKnown: true, BuildArgs: o.args})
		if err != nil {
			prog.Fail()
			return err
		}
		res.Lint = rep
		if rep.Fails(o.threshold) {
			prog.Fail()
			_ = dfcmd.PrintReport(o.Err, output.Table, rep)
			return fmt.Errorf("%s: %d lint finding(s) at or above %s: fix them, or build anyway with --no-lint", dfPath, rep.Count(o.threshold), o.threshold)
		}
		prog.Done()
		if n := len(rep.Findings); n > 0 && !stepsQuiet {
			_ = dfcmd.PrintReport(o.Err, output.Table, rep)
		}
	}
	var stream io.Writer
	if o.Progress == "plain" || o.Progress == "auto" && output.IsTerminal(o.Err) {
		stream = o.Err
	}
	prog.Start("build %s (context %s)", strings.Join(o.Tags, ", "), o.Dir)
	br, err := imagebuild.Build(ctx, o.API, imagebuild.Options{
		Dir: o.Dir, Dockerfile: o.Dockerfile, Tags: o.Tags, BuildArgs: o.args, Labels: o.labels,
		Target: o.Target, NoCache: o.NoCache, Output: stream,
	})
	if err != nil {
		prog.Fail()
		var be *imagebuild.Error
		if errors.As(err, &be) && strings.Contains(strings.ToLower(be.Message), "buildkit") {
			return fmt.Errorf("%w (this command uses the engine's classic builder: run \"docker buildx build\", or regenerate with \"docker k8sprep dockerfile init --buildkit=false --force\")", err)
		}
		return err
	}
	prog.Done()
	res.Result = br
	switch {
	case o.Quiet:
		_, err = fmt.Fprintln(o.Out, br.ImageID)
	case o.format.Structured():
		err = output.Print(o.Out, o.format, res)
	default:
		_, err = fmt.Fprintf(o.Out, "built %s (%s): %s, %d layers, context %d files / %s, %.1fs\n",
			strings.Join(br.Tags, ", "), shortID(br.ImageID), units.HumanSizeWithPrecision(float64(br.Size), 3),
			br.Layers, br.Context.Files, units.HumanSize(float64(br.Context.Bytes)), br.Seconds)
	}
	return err
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
