// Package addons is the cobra layer of `kubectl hacluster addons`.
package addons

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"

	core "github.com/hacluster/hacluster/pkg/addons"
	"github.com/hacluster/hacluster/pkg/cmd/cmdutil"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/factory"
	"github.com/hacluster/hacluster/pkg/output"
)

// common holds what every subcommand shares.
type common struct {
	f           *factory.Factory
	catalogFile string
	// HTTP is used for downloads (tests may replace it).
	HTTP *http.Client
}

func (c *common) catalog() (*core.Catalog, error) {
	if c.catalogFile == "" {
		return core.Builtin(), nil
	}
	return core.LoadCatalog(c.catalogFile)
}

func (c *common) cluster() (*core.Cluster, error) {
	cfg, err := c.f.RESTConfig()
	if err != nil {
		return nil, err
	}
	return core.NewCluster(cfg)
}

func (c *common) progress() *output.Progress { return output.NewProgress(c.f.ErrOut, false) }

// CatalogEnv names a catalog file used when --catalog is not given.
const CatalogEnv = "HACLUSTER_ADDONS_CATALOG"

// NewCmd builds `kubectl hacluster addons`.
func NewCmd(f *factory.Factory) *cobra.Command {
	c := &common{f: f, HTTP: &http.Client{Timeout: 2 * time.Minute}}
	cmd := &cobra.Command{
		Use:   "addons",
		Short: "Install, check and remove Calico, metrics-server and a web UI",
		Long: `Install the add-ons a new kubeadm cluster needs from pinned, checksummed
manifests with server-side apply, fitted to the cluster: Calico's IP pool from
the cluster's podSubnet, metrics-server verifying kubelet certificates, a web UI
with a read-only login and short-lived tokens.

Add-ons: calico, metrics-server, headlamp (recommended UI) and dashboard
(archived upstream in January 2026; kept for readers of older guides).`,
	}
	cmd.PersistentFlags().StringVar(&c.catalogFile, "catalog", os.Getenv(CatalogEnv), "Catalog file (the YAML `addons list -o yaml` prints) with your own versions, mirrors and sha256 pins (default $"+CatalogEnv+", else the built-in one)")
	_ = cmd.MarkPersistentFlagFilename("catalog", "yaml", "yml", "json")
	cmd.AddCommand(newList(c), newInstall(c), newStatus(c), newUninstall(c), newFetch(c), newToken(c))
	return cmd
}

// completeNames completes add-on names from the catalog, skipping those
// already on the command line; onlyUI limits them to web UIs.
func completeNames(c *common, max int, onlyUI bool) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if max > 0 && len(args) >= max {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		cat, err := c.catalog()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		used := map[string]bool{}
		for _, a := range args {
			used[a] = true
		}
		var out []cobra.Completion
		for _, a := range cat.Addons {
			if used[a.Name] || (onlyUI && a.UI == nil) {
				continue
			}
			out = append(out, cobra.CompletionWithDesc(a.Name, a.Version+" "+a.Status))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// selected returns the named add-ons in catalog order (all when none).
func selected(cat *core.Catalog, names []string) ([]core.Addon, error) {
	want := map[string]bool{}
	for _, n := range names {
		if _, err := cat.Get(n); err != nil {
			return nil, err
		}
		want[n] = true
	}
	var out []core.Addon
	for _, a := range cat.Addons {
		if len(names) == 0 || want[a.Name] {
			out = append(out, a)
		}
	}
	return out, nil
}

func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt)
}

// ---- list

func newList(c *common) *cobra.Command {
	var o string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the add-ons of the catalog with their pinned versions",
		Example: `  kubectl hacluster addons list
  kubectl hacluster addons list -o yaml > my-catalog.yaml   # edit, then use with --catalog`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := output.ParseFormat(o, output.Table, output.JSON, output.YAML)
			if err != nil {
				return err
			}
			cat, err := c.catalog()
			if err != nil {
				return err
			}
			out := c.f.Out
			if f.Structured() {
				return output.Print(out, f, cat)
			}
			rows := [][]string{}
			for _, a := range cat.Addons {
				sha := "not pinned"
				if a.Pinned() {
					sha = "pinned"
				}
				rows = append(rows, []string{a.Name, a.Version, a.Status, sha, a.Description})
			}
			if err := output.RenderTable(out, []string{"NAME", "VERSION", "STATUS", "CHECKSUM", "DESCRIPTION"}, rows); err != nil {
				return err
			}
			for _, a := range cat.Addons {
				if a.Note != "" {
					fmt.Fprintf(out, "\n%s: %s\n", a.Name, a.Note)
				}
			}
			if !allPinned(cat) {
				fmt.Fprintln(out, "\nNot pinned: no checksum was computed from the upstream file for this release. Install with --sha256 HASH, or `addons fetch NAME --to DIR`, review, and `addons install NAME --from DIR`.")
			}
			return nil
		},
	}
	cmdutil.AddOutputFlag(cmd, &o, output.Table, output.JSON, output.YAML)
	return cmd
}

func allPinned(cat *core.Catalog) bool {
	for _, a := range cat.Addons {
		if !a.Pinned() {
			return false
		}
	}
	return true
}

// ---- install

// InstallOptions are the flags of `addons install`.
type InstallOptions struct {
	*common
	Names   []string
	From    string
	SHA256  string
	DryRun  string
	Output  string
	Timeout time.Duration
	Wait    bool
	core.FitOptions
	ForceConflicts bool

	format  output.Format
	catalog *core.Catalog
	addons  []core.Addon
	ns      string
}

func newInstall(c *common) *cobra.Command {
	o := &InstallOptions{common: c}
	cmd := &cobra.Command{
		Use:   "install NAME...",
		Short: "Install or upgrade add-ons with server-side apply (CRDs first), fitted to the cluster",
		Example: `  kubectl hacluster addons install calico metrics-server headlamp --sha256 ...   # one add-on per --sha256
  kubectl hacluster addons install calico --from ./bundle --dry-run=server
  kubectl hacluster addons install metrics-server --from ./bundle --kubelet-insecure-tls   # only if kubelets lack CA-signed serving certs
  kubectl hacluster addons install headlamp --from ./bundle`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: completeNames(c, 0, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Names = args
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			return o.Run(ctx)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.From, "from", "", "Install from a local copy: a manifest FILE, a bundle DIR written by `addons fetch`, or a URL")
	fl.StringVar(&o.SHA256, "sha256", "", "Expected sha256 of the manifest (one add-on); needed for a URL the catalog does not pin")
	fl.StringVar(&o.DryRun, "dry-run", "none", `"server" to have the API server check everything and report what would change, without changing anything`)
	fl.StringVar(&o.PodCIDR, "pod-cidr", "", "calico: IPv4 pool to use instead of the cluster's podSubnet (kubeadm-config); overrides a mismatch check")
	fl.BoolVar(&o.KubeletInsecureTLS, "kubelet-insecure-tls", false, "metrics-server: do not verify kubelet serving certificates (insecure; prefer serverTLSBootstrap)")
	fl.BoolVar(&o.Admin, "admin", false, "headlamp/dashboard: also create a cluster-admin login ServiceAccount (default: read-only only)")
	fl.BoolVar(&o.ForceConflicts, "force-conflicts", false, "Take over fields another field manager (for example an earlier kubectl apply) owns")
	fl.BoolVar(&o.Wait, "wait", true, "Wait until Deployments are available and DaemonSets ready on every node")
	fl.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "How long to wait for CRDs and workloads")
	cmdutil.AddOutputFlag(cmd, &o.Output, output.Table, output.JSON, output.YAML)
	_ = cmd.RegisterFlagCompletionFunc("dry-run", cobra.FixedCompletions([]string{"none", "server"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("pod-cidr", cobra.NoFileCompletions)
	_ = cmd.RegisterFlagCompletionFunc("sha256", cobra.NoFileCompletions)
	return cmd
}

// Complete loads the catalog and the default namespace.
func (o *InstallOptions) Complete() error {
	var err error
	if o.format, err = output.ParseFormat(o.Output, output.Table, output.JSON, output.YAML); err != nil {
		return err
	}
	if o.catalog, err = o.common.catalog(); err != nil {
		return err
	}
	if o.addons, err = selected(o.catalog, o.Names); err != nil {
		return err
	}
	if o.f.ConfigFlags != nil {
		o.ns, _, _ = o.f.Namespace()
	}
	return nil
}

// Validate checks flag combinations.
func (o *InstallOptions) Validate() error {
	switch o.DryRun {
	case "none", "server", "":
	case "client":
		return errors.New(`--dry-run=client is not supported: use --dry-run=server, which lets the API server check the objects`)
	default:
		return fmt.Errorf(`--dry-run must be "none" or "server", not %q`, o.DryRun)
	}
	if o.SHA256 != "" && len(o.addons) != 1 {
		return errors.New("--sha256 applies to one add-on: install them one at a time")
	}
	if o.From != "" && len(o.addons) > 1 {
		if fi, err := os.Stat(o.From); err != nil || !fi.IsDir() {
			return errors.New("--from FILE or URL holds one add-on: install them one at a time, or use a bundle directory")
		}
	}
	if o.Timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	return nil
}

// InstallReport is the -o json|yaml output of install.
type InstallReport struct {
	Results []*core.InstallResult `json:"results"`
}

// Run installs the add-ons in catalog order (the CNI first).
func (o *InstallOptions) Run(ctx context.Context) error {
	cl, err := o.cluster()
	if err != nil {
		return err
	}
	p := o.progress()
	rep := InstallReport{Results: []*core.InstallResult{}}
	// Read and verify every manifest before applying any, so a bad
	// checksum of the last add-on leaves the first one untouched too.
	manifests := make([][]core.Manifest, len(o.addons))
	for i, a := range o.addons {
		p.Start("reading the %s %s manifests", a.Name, a.Version)
		ms, err := core.Load(ctx, a, core.SourceOptions{From: o.From, SHA256: o.SHA256, HTTP: o.HTTP})
		if err != nil {
			p.Fail()
			return err
		}
		p.Done()
		for _, m := range ms {
			if len(m.VerifiedBy) == 0 {
				fmt.Fprintf(o.f.ErrOut, "warning: %s has no checksum to compare with (sha256 %s); applying your local copy as it is\n", m.Origin, m.SHA256)
			}
		}
		manifests[i] = ms
	}
	for i, a := range o.addons {
		ms := manifests[i]
		res, err := cl.Install(ctx, a, ms, core.InstallOptions{
			FitOptions: o.FitOptions, DryRun: o.DryRun == "server", ForceConflicts: o.ForceConflicts,
			Wait: o.Wait, Timeout: o.Timeout, DefaultNamespace: o.ns, Progress: p,
		})
		if res != nil {
			rep.Results = append(rep.Results, res)
		}
		if err != nil {
			if o.format.Structured() {
				_ = output.Print(o.f.Out, o.format, rep)
			} else if res != nil {
				printInstall(o.f.Out, res)
			}
			return err
		}
		if !o.format.Structured() {
			printInstall(o.f.Out, res)
		}
	}
	if o.format.Structured() {
		return output.Print(o.f.Out, o.format, rep)
	}
	return nil
}

func printInstall(w io.Writer, r *core.InstallResult) {
	suffix := ""
	if r.DryRun {
		suffix = " (server dry run)"
	}
	for _, ob := range r.Objects {
		fmt.Fprintf(w, "%s %s%s\n", strings.Replace(ob.Ref.String(), " ", "/", 1), ob.Action, suffix)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if r.Access != "" {
		fmt.Fprintf(w, "reach %s: %s\n", r.Addon, r.Access)
		fmt.Fprintf(w, "log in with a short-lived token: kubectl hacluster addons token %s\n", r.Addon)
	}
}

// ---- status

func newStatus(c *common) *cobra.Command {
	var o string
	cmd := &cobra.Command{
		Use:   "status [NAME...]",
		Short: "Show per add-on the installed version, workload readiness and the metrics API",
		Example: `  kubectl hacluster addons status
  kubectl hacluster addons status metrics-server -o json`,
		ValidArgsFunction: completeNames(c, 0, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := output.ParseFormat(o, output.Table, output.JSON, output.YAML)
			if err != nil {
				return err
			}
			cat, err := c.catalog()
			if err != nil {
				return err
			}
			for _, n := range args {
				if _, err := cat.Get(n); err != nil {
					return err
				}
			}
			cl, err := c.cluster()
			if err != nil {
				return err
			}
			st, err := cl.Status(cmd.Context(), cat, args)
			if err != nil {
				return err
			}
			if f.Structured() {
				return output.Print(c.f.Out, f, StatusReport{Addons: st})
			}
			return printStatus(c.f.Out, st)
		},
	}
	cmdutil.AddOutputFlag(cmd, &o, output.Table, output.JSON, output.YAML)
	return cmd
}

// StatusReport is the -o json|yaml output of status.
type StatusReport struct {
	Addons []core.AddonStatus `json:"addons"`
}

func printStatus(w io.Writer, st []core.AddonStatus) error {
	col := output.NewColorer(w)
	rows := [][]string{}
	for _, s := range st {
		state := s.State
		switch state {
		case "Ready":
			state = col.Green(state)
		case "NotReady":
			state = col.Red(state)
		}
		version := s.Version
		if !s.Installed {
			version = "-"
		}
		var details []string
		for _, wl := range s.Workloads {
			details = append(details, fmt.Sprintf("%s/%s %s", strings.ToLower(wl.Kind), wl.Name, wl.Message))
		}
		for _, a := range s.APIServices {
			av := "Available"
			if !a.Available {
				av = "not Available (" + a.Reason + ")"
			}
			details = append(details, fmt.Sprintf("apiservice/%s %s", a.Name, av))
		}
		if len(s.Missing) > 0 {
			details = append(details, fmt.Sprintf("%d objects missing", len(s.Missing)))
		}
		if len(details) == 0 {
			details = []string{"-"}
		}
		for i, d := range details {
			if i == 0 {
				rows = append(rows, []string{s.Name, version, s.CatalogVersion, state, d})
			} else {
				rows = append(rows, []string{"", "", "", "", d})
			}
		}
	}
	if err := output.RenderTable(w, []string{"ADDON", "INSTALLED", "CATALOG", "STATE", "DETAILS"}, rows); err != nil {
		return err
	}
	for _, s := range st {
		for _, a := range s.APIServices {
			if !a.Available && a.Message != "" {
				fmt.Fprintf(w, "\n%s: apiservice %s: %s\n", s.Name, a.Name, a.Message)
			}
			if !a.Available && s.Name == "metrics-server" {
				fmt.Fprintf(w, "%s: check `kubectl -n kube-system logs deploy/metrics-server`; x509 errors mean the kubelets serve self-signed certificates: set serverTLSBootstrap: true and approve the kubelet-serving CSRs (or, insecurely, install with --kubelet-insecure-tls)\n", s.Name)
			}
		}
		if s.Installed && s.Access != "" {
			fmt.Fprintf(w, "\n%s: %s\n", s.Name, s.Access)
		}
		if s.Installed && s.Note != "" {
			fmt.Fprintf(w, "\n%s: %s\n", s.Name, s.Note)
		}
	}
	return nil
}

// ---- uninstall

func newUninstall(c *common) *cobra.Command {
	var o string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:               "uninstall NAME",
		Short:             "Remove everything an add-on install created, in reverse order",
		Example:           `  kubectl hacluster addons uninstall dashboard`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeNames(c, 1, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := output.ParseFormat(o, output.Table, output.JSON, output.YAML)
			if err != nil {
				return err
			}
			cat, err := c.catalog()
			if err != nil {
				return err
			}
			if _, err := cat.Get(args[0]); err != nil {
				return err
			}
			cl, err := c.cluster()
			if err != nil {
				return err
			}
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			res, err := cl.Uninstall(ctx, args[0], timeout, c.progress())
			if res != nil {
				if f.Structured() {
					if perr := output.Print(c.f.Out, f, res); perr != nil && err == nil {
						err = perr
					}
				} else {
					for _, ob := range res.Objects {
						fmt.Fprintf(c.f.Out, "%s %s\n", strings.Replace(ob.Ref.String(), " ", "/", 1), ob.Action)
					}
				}
			}
			return err
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "How long to wait for the objects to be gone")
	cmdutil.AddOutputFlag(cmd, &o, output.Table, output.JSON, output.YAML)
	return cmd
}

// ---- fetch

func newFetch(c *common) *cobra.Command {
	var o, dir string
	var overwrite bool
	cmd := &cobra.Command{
		Use:   "fetch [NAME...] --to DIR",
		Short: "Download add-on manifests into a bundle directory for air-gapped installs",
		Long: `Download the catalog's manifests (all add-ons, or those named) into
DIR/<addon>/<file> and record their sha256 in DIR/SHA256SUMS. A pinned
checksum that does not match stops before the file is written. Copy DIR to
the air-gapped side and run ` + "`kubectl hacluster addons install NAME --from DIR`" + `.`,
		Example:           `  kubectl hacluster addons fetch --to ./bundle && (cd bundle && sha256sum -c SHA256SUMS)`,
		ValidArgsFunction: completeNames(c, 0, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := output.ParseFormat(o, output.Table, output.JSON, output.YAML)
			if err != nil {
				return err
			}
			if dir == "" {
				return errors.New("--to DIR is required")
			}
			cat, err := c.catalog()
			if err != nil {
				return err
			}
			list, err := selected(cat, args)
			if err != nil {
				return err
			}
			p := c.progress()
			p.Start("downloading %d add-ons into %s", len(list), dir)
			res, err := core.Fetch(cmd.Context(), c.HTTP, list, dir, overwrite)
			if err != nil {
				p.Fail()
				return err
			}
			p.Done()
			if f.Structured() {
				return output.Print(c.f.Out, f, FetchReport{Dir: dir, Files: res})
			}
			rows := [][]string{}
			unpinned := false
			for _, r := range res {
				pin := "pinned, matches"
				if !r.Pinned {
					pin = "NOT PINNED: compare with upstream"
					unpinned = true
				}
				rows = append(rows, []string{r.Addon, r.Version, r.File, r.SHA256, pin})
			}
			if err := output.RenderTable(c.f.Out, []string{"ADDON", "VERSION", "FILE", "CHECKSUM", "PIN"}, rows); err != nil {
				return err
			}
			if unpinned {
				fmt.Fprintf(c.f.Out, "\nThe catalog pins no checksum for some files: compare the sha256 above with the one upstream publishes before `addons install --from %s`.\n", dir)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "to", "", "Bundle directory to write (created if missing)")
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "Replace files in DIR whose content differs")
	_ = cmd.MarkFlagDirname("to")
	cmdutil.AddOutputFlag(cmd, &o, output.Table, output.JSON, output.YAML)
	return cmd
}

// FetchReport is the -o json|yaml output of fetch.
type FetchReport struct {
	Dir   string             `json:"dir"`
	Files []core.FetchResult `json:"files"`
}

// ---- token

func newToken(c *common) *cobra.Command {
	var o string
	var admin bool
	var d time.Duration
	cmd := &cobra.Command{
		Use:   "token NAME",
		Short: "Print a short-lived login token for headlamp or dashboard (TokenRequest API)",
		Long: `Print a login token for a web UI add-on, made by the TokenRequest API for
the read-only ServiceAccount hacluster created (--admin: the cluster-admin one,
which exists only after ` + "`install NAME --admin`" + `). Nothing is stored in the
cluster; the token expires after --duration.`,
		Example:           `  kubectl hacluster addons token headlamp --duration 30m`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeNames(c, 1, true),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := output.ParseFormat(o, output.Table, output.JSON, output.YAML)
			if err != nil {
				return err
			}
			cat, err := c.catalog()
			if err != nil {
				return err
			}
			a, err := cat.Get(args[0])
			if err != nil {
				return err
			}
			cl, err := c.cluster()
			if err != nil {
				return err
			}
			tok, err := cl.LoginToken(cmd.Context(), a, admin, d)
			if err != nil {
				return err
			}
			if f.Structured() {
				return output.Print(c.f.Out, f, tok)
			}
			fmt.Fprintln(c.f.Out, tok.Token)
			fmt.Fprintf(c.f.ErrOut, "token of %s/%s, valid until %s; reach the UI with: %s\n", tok.Namespace, tok.ServiceAccount, tok.Expires.UTC().Format(time.RFC3339), a.AccessCommand())
			return nil
		},
	}
	cmd.Flags().BoolVar(&admin, "admin", false, "Token of the cluster-admin ServiceAccount (installed with --admin)")
	cmd.Flags().DurationVar(&d, "duration", time.Hour, "How long the token is valid (10m or more)")
	cmdutil.AddOutputFlag(cmd, &o, output.Table, output.JSON, output.YAML)
	return cmd
}
