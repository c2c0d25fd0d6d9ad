package stack

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hacluster/hacluster/pkg/cmd/cmdutil"
	"github.com/hacluster/hacluster/pkg/stack"
)

// stackFlags describe the stack on the command line; compose-run and export
// k8s take the same ones, and set flags override the stack file.
type stackFlags struct {
	build, dockerfile, image, config, hostKey, portKey, healthPath string
	ports, env                                                     []string
	mysqlImage, database, user, passwordFile, rootPasswordFile     string
	volume, network                                                string
	mysqlPort                                                      int
	passwordEnv                                                    bool

	parsedPts []stack.Port
	parsedEnv map[string]string
	cmd       *cobra.Command
}

func (f *stackFlags) add(cmd *cobra.Command) {
	f.cmd = cmd
	fs := cmd.Flags()
	fs.StringVar(&f.build, "build", "", "App build context: a folder with a Dockerfile (default \".\")")
	fs.StringVar(&f.dockerfile, "dockerfile", "", "Dockerfile, relative to the build context (default \"Dockerfile\")")
	fs.StringVar(&f.image, "image", "", "Tag for the built app image, or the image to run when --build is not given")
	fs.StringArrayVarP(&f.ports, "port", "p", nil, "Publish an app port HOST:CONTAINER (repeatable; default 8080:8080)")
	fs.StringArrayVarP(&f.env, "env", "e", nil, "Set an app environment variable KEY=VALUE (repeatable)")
	fs.StringVar(&f.config, "config", "", "App config file (TOML) to rewrite and mount (default: config.toml in the build context, if any)")
	fs.StringVar(&f.hostKey, "config-host-key", "", "Config key holding the database host (default mysql.ip)")
	fs.StringVar(&f.portKey, "config-port-key", "", "Config key holding the database port (default mysql.port)")
	fs.StringVar(&f.healthPath, "health-path", "", "HTTP path that answers when the app is up (default /healthz)")
	fs.StringVar(&f.mysqlImage, "mysql-image", "", "MySQL image (default "+stack.DefaultMySQLImage+"); must be on the engine")
	fs.StringVar(&f.database, "database", "", "Database to create (default app)")
	fs.StringVar(&f.user, "db-user", "", "Database user for the app (default app)")
	fs.StringVar(&f.passwordFile, "password-file", "", "File with the app user's password (generated when absent)")
	fs.StringVar(&f.rootPasswordFile, "root-password-file", "", "File with MySQL's root password (generated when absent)")
	fs.StringVar(&f.volume, "volume", "", "Data volume name (default <stack>-mysql-data)")
	fs.StringVar(&f.network, "network", "", "Network name (default <stack>-net)")
	fs.IntVar(&f.mysqlPort, "mysql-port", 0, "Publish MySQL on 127.0.0.1:PORT (default: a free port)")
	fs.BoolVar(&f.passwordEnv, "password-env", false, "Without a config file, also put the password in DB_PASSWORD (visible to docker inspect; it is always in the file DB_PASSWORD_FILE names)")
	_ = cmd.MarkFlagDirname("build")
	for _, n := range []string{"config", "password-file", "root-password-file", "dockerfile"} {
		_ = cmd.MarkFlagFilename(n)
	}
}

func (f *stackFlags) validate() error {
	for _, p := range f.ports {
		pp, err := stack.ParsePort(p)
		if err != nil {
			return fmt.Errorf("--port: %w", err)
		}
		f.parsedPts = append(f.parsedPts, pp)
	}
	var err error
	if f.parsedEnv, err = cmdutil.ParseKeyValues("env", f.env); err != nil {
		return err
	}
	if f.mysqlPort < 0 || f.mysqlPort > 65535 {
		return fmt.Errorf("--mysql-port %d: not a port", f.mysqlPort)
	}
	return nil
}

// override applies the set flags to s (and --name, from sel); fromFile says
// whether s came from a stack file, where --image alone keeps the build.
func (f *stackFlags) override(s *stack.Stack, sel *selector, fromFile bool) {
	changed := f.cmd.Flags().Changed
	set := func(flag string, dst *string, v string) {
		if changed(flag) {
			*dst = v
		}
	}
	set("name", &s.Name, sel.name)
	set("build", &s.App.Build, f.build)
	set("dockerfile", &s.App.Dockerfile, f.dockerfile)
	set("image", &s.App.Image, f.image)
	if changed("image") && !changed("build") && !fromFile {
		s.App.Build = "" // run the given image
	}
	if len(f.parsedPts) > 0 {
		s.App.Ports = f.parsedPts
	}
	for k, v := range f.parsedEnv {
		if s.App.Env == nil {
			s.App.Env = map[string]string{}
		}
		s.App.Env[k] = v
	}
	if changed("config") {
		if s.App.Config == nil {
			s.App.Config = &stack.ConfigFile{}
		}
		s.App.Config.File = f.config
	}
	if s.App.Config != nil {
		set("config-host-key", &s.App.Config.HostKey, f.hostKey)
		set("config-port-key", &s.App.Config.PortKey, f.portKey)
	}
	set("health-path", &s.App.HealthPath, f.healthPath)
	set("mysql-image", &s.MySQL.Image, f.mysqlImage)
	set("database", &s.MySQL.Database, f.database)
	set("db-user", &s.MySQL.User, f.user)
	set("password-file", &s.MySQL.PasswordFile, f.passwordFile)
	set("root-password-file", &s.MySQL.RootPasswordFile, f.rootPasswordFile)
	set("volume", &s.MySQL.Volume, f.volume)
	set("network", &s.Network, f.network)
	if changed("password-env") {
		s.App.PasswordEnv = f.passwordEnv
	}
	if changed("mysql-port") {
		s.MySQL.HostPort = f.mysqlPort
	}
}
