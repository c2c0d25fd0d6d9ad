package stack

import (
	"fmt"
	"io"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/hacluster/hacluster/pkg/cmd/cmdutil"
	"github.com/hacluster/hacluster/pkg/output"
	"github.com/hacluster/hacluster/pkg/stack"
)

// upOptions are the flags of compose-run; set flags override the stack file.
type upOptions struct {
	sel     selector
	output  string
	quiet   bool
	timeout time.Duration

	build, dockerfile, image, config, hostKey, portKey, healthPath string
	ports, env                                                     []string
	mysqlImage, database, user, passwordFile, rootPasswordFile     string
	volume, network                                                string
	mysqlPort                                                      int
	passwordEnv                                                    bool

	fromFile  bool
	format    output.Format
	parsedPts []stack.Port
	parsedEnv map[string]string
	cmd       *cobra.Command
}

func newComposeRunCmd(dockerCLI command.Cli) *cobra.Command {
	return composeRunCmd(dockerCLI, &upOptions{})
}

func composeRunCmd(dockerCLI command.Cli, o *upOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "compose-run [flags]",
		Short: "Run the app and MySQL on a Docker network (creates or reconciles the stack)",
		Long: `compose-run creates a user-defined network and a named data volume, starts
MySQL with passwords read from files (generated with mode 0600 under
.k8sprep/<stack>/ when absent; never on a command line, never printed), waits
until MySQL accepts queries over TCP as the app's user, builds the app image,
writes a rewritten copy of the app's config.toml (database host = the MySQL
container, port 3306; your file is not modified) mounted read-only, starts the
app and waits until it answers. Running it again recreates only what changed
(image, environment, config). The stack comes from flags, a k8sprep.yaml or a
compose.yaml (an app service plus a mysql/mariadb service).`,
		Example: `  # The article's app: a Dockerfile and config.toml in the current folder
  docker k8sprep compose-run --mysql-image mysql:8.4 --port 8080:8080
  # From a stack file
  docker k8sprep compose-run -f k8sprep.yaml
  docker k8sprep compose-run -f compose.yaml -o json`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			o.cmd = cmd
			return o.validate()
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd, dockerCLI) },
	}
	fs := cmd.Flags()
	o.sel.addFlags(fs, true)
	registerFileCompletion(cmd)
	fs.StringVar(&o.build, "build", "", "App build context: a folder with a Dockerfile (default \".\")")
	fs.StringVar(&o.dockerfile, "dockerfile", "", "Dockerfile, relative to the build context (default \"Dockerfile\")")
	fs.StringVar(&o.image, "image", "", "Tag for the built app image, or the image to run when --build is not given")
	fs.StringArrayVarP(&o.ports, "port", "p", nil, "Publish an app port HOST:CONTAINER (repeatable; default 8080:8080)")
	fs.StringArrayVarP(&o.env, "env", "e", nil, "Set an app environment variable KEY=VALUE (repeatable)")
	fs.StringVar(&o.config, "config", "", "App config file (TOML) to rewrite and mount (default: config.toml in the build context, if any)")
	fs.StringVar(&o.hostKey, "config-host-key", "", "Config key holding the database host (default mysql.ip)")
	fs.StringVar(&o.portKey, "config-port-key", "", "Config key holding the database port (default mysql.port)")
	fs.StringVar(&o.healthPath, "health-path", "", "HTTP path that answers when the app is up (default /healthz)")
	fs.StringVar(&o.mysqlImage, "mysql-image", "", "MySQL image (default "+stack.DefaultMySQLImage+"); must be on the engine")
	fs.StringVar(&o.database, "database", "", "Database to create (default app)")
	fs.StringVar(&o.user, "db-user", "", "Database user for the app (default app)")
	fs.StringVar(&o.passwordFile, "password-file", "", "File with the app user's password (generated when absent)")
	fs.StringVar(&o.rootPasswordFile, "root-password-file", "", "File with MySQL's root password (generated when absent)")
	fs.StringVar(&o.volume, "volume", "", "Data volume name (default <stack>-mysql-data)")
	fs.StringVar(&o.network, "network", "", "Network name (default <stack>-net)")
	fs.IntVar(&o.mysqlPort, "mysql-port", 0, "Publish MySQL on 127.0.0.1:PORT (default: a free port)")
	fs.BoolVar(&o.passwordEnv, "password-env", false, "Without a config file, also put the password in DB_PASSWORD (visible to docker inspect; it is always in the file DB_PASSWORD_FILE names)")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "Do not show progress and notes on stderr")
	addTimeout(fs, &o.timeout)
	cmdutil.AddOutputFlag(cmd, &o.output, output.Table, output.JSON, output.YAML)
	for _, f := range []string{"build"} {
		_ = cmd.MarkFlagDirname(f)
	}
	for _, f := range []string{"config", "password-file", "root-password-file", "dockerfile"} {
		_ = cmd.MarkFlagFilename(f)
	}
	return cmd
}

func (o *upOptions) validate() error {
	var err error
	if o.format, err = output.ParseFormat(o.output, output.Table, output.JSON, output.YAML); err != nil {
		return err
	}
	for _, p := range o.ports {
		pp, err := stack.ParsePort(p)
		if err != nil {
			return fmt.Errorf("--port: %w", err)
		}
		o.parsedPts = append(o.parsedPts, pp)
	}
	if o.parsedEnv, err = cmdutil.ParseKeyValues("env", o.env); err != nil {
		return err
	}
	if o.mysqlPort < 0 || o.mysqlPort > 65535 {
		return fmt.Errorf("--mysql-port %d: not a port", o.mysqlPort)
	}
	if o.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive")
	}
	return nil
}

// override applies the flags the user set on top of the stack file.
func (o *upOptions) override(s *stack.Stack) {
	changed := o.cmd.Flags().Changed
	set := func(flag string, dst *string, v string) {
		if changed(flag) {
			*dst = v
		}
	}
	set("name", &s.Name, o.sel.name)
	set("build", &s.App.Build, o.build)
	set("dockerfile", &s.App.Dockerfile, o.dockerfile)
	set("image", &s.App.Image, o.image)
	if changed("image") && !changed("build") && !o.fromFile {
		s.App.Build = "" // run the given image
	}
	if len(o.parsedPts) > 0 {
		s.App.Ports = o.parsedPts
	}
	for k, v := range o.parsedEnv {
		if s.App.Env == nil {
			s.App.Env = map[string]string{}
		}
		s.App.Env[k] = v
	}
	if changed("config") {
		if s.App.Config == nil {
			s.App.Config = &stack.ConfigFile{}
		}
		s.App.Config.File = o.config
	}
	if s.App.Config != nil {
		set("config-host-key", &s.App.Config.HostKey, o.hostKey)
		set("config-port-key", &s.App.Config.PortKey, o.portKey)
	}
	set("health-path", &s.App.HealthPath, o.healthPath)
	set("mysql-image", &s.MySQL.Image, o.mysqlImage)
	set("database", &s.MySQL.Database, o.database)
	set("db-user", &s.MySQL.User, o.user)
	set("password-file", &s.MySQL.PasswordFile, o.passwordFile)
	set("root-password-file", &s.MySQL.RootPasswordFile, o.rootPasswordFile)
	set("volume", &s.MySQL.Volume, o.volume)
	set("network", &s.Network, o.network)
	if changed("password-env") {
		s.App.PasswordEnv = o.passwordEnv
	}
	if changed("mysql-port") {
		s.MySQL.HostPort = o.mysqlPort
	}
}

func (o *upOptions) run(cmd *cobra.Command, dockerCLI command.Cli) error {
	path, err := o.sel.path()
	if err != nil {
		return err
	}
	o.fromFile = path != ""
	s, err := stack.Load(path, stack.LoadOptions{Override: o.override})
	if err != nil {
		return err
	}
	errOut := dockerCLI.Err()
	progress := output.NewProgress(errOut, o.quiet)
	r := &stack.Runner{API: dockerCLI.Client(), Progress: progress, Timeout: o.timeout}
	if !o.quiet && output.IsTerminal(errOut) {
		r.BuildLog = indent(errOut)
	}
	res, err := r.Up(cmd.Context(), s)
	if err != nil {
		return err
	}
	progress.Done()
	if o.format.Structured() {
		return output.Print(dockerCLI.Out(), o.format, res)
	}
	if err := printServices(dockerCLI, res.Services, true); err != nil {
		return err
	}
	if o.quiet {
		return nil
	}
	for _, g := range res.Generated {
		fmt.Fprintf(errOut, "generated password file %s (mode 0600)\n", g)
	}
	if res.Config != "" {
		where := ""
		if f := s.App.Config.MountPathFrom; f != "" {
			where = " (" + f + ")"
		}
		fmt.Fprintf(errOut, "app config: rewritten copy %s mounted read-only at %s%s\n", res.Config, s.App.Config.MountPath, where)
	}
	for _, n := range res.Notes {
		fmt.Fprintln(errOut, n)
	}
	return nil
}

// indent shows build output under the progress lines.
func indent(w io.Writer) io.Writer { return &output.PrefixWriter{W: w, Prefix: "   │ "} }
