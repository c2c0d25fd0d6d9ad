package stack

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/hacluster/hacluster/pkg/k8sexport"
	"github.com/hacluster/hacluster/pkg/output"
	"github.com/hacluster/hacluster/pkg/stack"
)

func newExportCmd(dockerCLI command.Cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export the stack for another platform",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newExportK8sCmd(dockerCLI))
	return cmd
}

type exportOptions struct {
	sel          selector
	flags        stackFlags
	dir          string
	serviceType  string
	replicas     int32
	storage      string
	storageClass string
	force        bool
	format       string
}

// exportReport is the -o json|yaml result of export k8s.
type exportReport struct {
	Stack       string                  `json:"stack"`
	Dir         string                  `json:"dir"`
	ServiceType string                  `json:"serviceType"`
	Files       []k8sexport.WriteResult `json:"files"`
	Notes       []string                `json:"notes"`
}

func newExportK8sCmd(dockerCLI command.Cli) *cobra.Command {
	return exportK8sCmd(dockerCLI, &exportOptions{})
}

func exportK8sCmd(dockerCLI command.Cli, o *exportOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "k8s",
		Short: "Write the stack as Kubernetes manifests",
		Long: `export k8s writes the stack as Kubernetes manifests into a folder (k8s/ by
default): a Secret with the MySQL passwords (file mode 0600), MySQL as a
StatefulSet with a PVC template and a headless Service on 3306, the rewritten
app config (that Service's DNS name, the stack's user and password) as a
Secret (mode 0600) mounted where the app reads it, the app as a Deployment
(readiness and liveness probes, resources, non-root security context) and
the app's Service (--service-type, ClusterIP by default).
Existing files that changed are only replaced with --force. Apply them with
kubectl apply -f DIR.

The stack comes from the stack file (-f, or the one in the current folder);
without one, from the flags the last compose-run of the stack (--name, or the
folder's name) was given. The stack flags of compose-run (--mysql-image,
--database, -e, --config ...) work here too and override both.`,
		Example: `  docker k8sprep export k8s -o k8s
  docker k8sprep export k8s -f k8sprep.yaml --service-type NodePort -o deploy/k8s --force
  # The stack flags of compose-run: after compose-run from flags alone, the
  # same stack is exported with them; given here, they override them
  docker k8sprep export k8s --mysql-image mysql:8.4 --database shop -e GREETING=hi`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(dockerCLI) },
	}
	fs := cmd.Flags()
	o.sel.addFlags(fs, true)
	registerFileCompletion(cmd)
	o.flags.add(cmd)
	fs.StringVarP(&o.dir, "output-dir", "o", "k8s", "Folder for the manifests")
	_ = cmd.MarkFlagDirname("output-dir")
	fs.StringVar(&o.serviceType, "service-type", "ClusterIP", "Type of the app's Service: ClusterIP, NodePort or LoadBalancer")
	_ = cmd.RegisterFlagCompletionFunc("service-type", cobra.FixedCompletions(k8sexport.ServiceTypes, cobra.ShellCompDirectiveNoFileComp))
	fs.Int32Var(&o.replicas, "replicas", 1, "Replicas of the app Deployment")
	fs.StringVar(&o.storage, "storage", "1Gi", "Size of MySQL's PersistentVolumeClaim")
	fs.StringVar(&o.storageClass, "storage-class", "", "StorageClass of MySQL's PersistentVolumeClaim (default: the cluster's default)")
	fs.BoolVar(&o.force, "force", false, "Replace manifest files that changed since the last export")
	fs.StringVar(&o.format, "format", "", "Report format: json|yaml (default: a table for people)")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (o *exportOptions) run(dockerCLI command.Cli) error {
	f, err := output.ParseFormat(o.format, output.Table, output.JSON, output.YAML)
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	st, err := k8sexport.ParseServiceType(o.serviceType)
	if err != nil {
		return err
	}
	if o.replicas < 1 {
		return fmt.Errorf("--replicas must be at least 1")
	}
	if err := o.flags.validate(); err != nil {
		return err
	}
	s, remembered, err := o.load()
	if err != nil {
		return err
	}
	opts := k8sexport.Options{ServiceType: st, Replicas: o.replicas, Storage: o.storage, StorageClass: o.storageClass}
	ms, sec, err := k8sexport.FromStack(s, opts)
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	res, err := k8sexport.Write(dir, ms, o.force)
	if err != nil {
		return err
	}
	notes := k8sexport.Explain(s, opts)
	if remembered != "" {
		notes = append([]string{fmt.Sprintf("settings: the flags of the last compose-run of this stack (%s), then the flags given here", remembered)}, notes...)
	}
	if f.Structured() {
		return output.Print(dockerCLI.Out(), f, exportReport{Stack: s.Name, Dir: dir, ServiceType: string(st), Files: res, Notes: notes})
	}
	rows := make([][]string, 0, len(res))
	for _, r := range res {
		rows = append(rows, []string{r.Path, r.Kind, r.Name, r.Action})
	}
	if err := output.RenderTable(dockerCLI.Out(), []string{"FILE", "KIND", "NAME", "ACTION"}, rows); err != nil {
		return err
	}
	w := dockerCLI.Err()
	for _, g := range sec.Generated {
		fmt.Fprintf(w, "generated password file %s (mode 0600)\n", g)
	}
	fmt.Fprintln(w)
	for _, n := range notes {
		fmt.Fprintf(w, "• %s\n", n)
	}
	fmt.Fprintf(w, "\nApply with: kubectl apply -f %s\n", o.dir)
	return nil
}

// load reads the stack: the stack file, else the flags the last compose-run
// of the stack was given (and their file); the flags given here on top.
func (o *exportOptions) load() (*stack.Stack, string, error) {
	path, err := o.sel.path()
	if err != nil {
		return nil, "", err
	}
	// Without a stack file, start from the flags the last compose-run of
	// this stack was given; flags given here override them.
	var base *stack.Stack
	remembered := ""
	if path == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, "", err
		}
		name := o.sel.name
		if name == "" {
			name = stack.SanitizeName(baseName(wd))
		}
		if base, remembered, err = stack.LoadFlags(wd, name); err != nil {
			return nil, "", err
		}
	}
	s, err := stack.Load(path, stack.LoadOptions{
		SkipCheck: true,
		Base:      base,
		Override:  func(s *stack.Stack) { o.flags.override(s, &o.sel, path != "") },
	})
	if err != nil {
		return nil, "", err
	}
	return s, remembered, nil
}
