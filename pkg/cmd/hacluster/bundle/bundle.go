// Package bundle is the cobra layer of `kubectl hacluster bundle`: build,
// inspect and verify offline bundles (pkg/bundle).
package bundle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	core "github.com/hacluster/hacluster/pkg/bundle"
	"github.com/hacluster/hacluster/pkg/cmd/cmdutil"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/factory"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/output"
)

// NewCmd builds `kubectl hacluster bundle`.
func NewCmd(f *factory.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bundle",
		Short: "Build, inspect and verify offline bundles (binaries and images in one archive)",
		Long: `An offline bundle is one archive with everything a cluster of one Kubernetes
version downloads from the internet: kubelet, kubeadm, kubectl, containerd,
runc, the CNI plugins, crictl and the CNI's manifest (published checksums
verified), and every image kubeadm and the CNI ask for, as an OCI image layout
per architecture that ctr images import accepts. Build it where the internet
is, carry it to where it is not, and check it there with bundle verify.

Layout: manifest.json first (versions, every entry's size and sha256, every
image's digests), then files/linux/<arch>/..., manifests/kube-flannel.yml and
images/linux-<arch>.tar.`,
	}
	cmd.AddCommand(newBuild(f), newInspect(f), newVerify(f))
	return cmd
}

func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// ---- build

// BuildOptions of `bundle build`.
type BuildOptions struct {
	genericiooptions.IOStreams
	Output          string
	Force           bool
	ClusterFile     string
	Kubernetes      string
	CNI             string
	Arches          []string
	Containerd      string
	Runc            string
	CNIPlugins      string
	Crictl          string
	Flannel         string
	ImageRepository string
	Images          []string
	Mirrors         []string
	RegistryMirrors []string
	CacheDir        string

	// Set by Complete.
	opts core.Options
	// changed reports whether a flag was given on the command line.
	changed func(string) bool
}

func newBuild(f *factory.Factory) *cobra.Command {
	o := &BuildOptions{IOStreams: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "build -o FILE",
		Short: "Download every binary and image a cluster needs into one archive",
		Long: `Download what bootstrap installs (from dl.k8s.io and GitHub, or their mirrors,
with the published checksums verified) and pull every image kubeadm asks for
(kubeadm config images list of that version) plus the CNI's, through registry
mirrors when given, with no Docker daemon; write them into one archive.

Everything goes through the download cache bootstrap uses (--cache-dir): a
second bundle of the same versions downloads nothing, and a build that was
interrupted resumes where it stopped. Versions and mirrors come from the
flags, else from the cluster file (-f), else the defaults.

The archive is written next to FILE and renamed into place when complete; an
existing FILE is only replaced with --force. FILE ending in .tar.gz or .tgz is
gzipped, .tar.zst zstd-compressed; plain .tar is the default: the images and
most release files are compressed already.`,
		Example: `  kubectl hacluster bundle build -o k8s-v1.37.2.tar
  kubectl hacluster bundle build -f cluster.yaml --arch amd64,arm64 -o site.tar.zst
  kubectl hacluster bundle build -o k8s.tar \
      --mirror https://dl.k8s.io=http://mirror.local/dl.k8s.io \
      --registry-mirror registry.k8s.io=http://mirror.local:5000/v2/registry.k8s.io`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.changed = cmd.Flags().Changed
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			return o.Run(ctx)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Output, "output", "o", "", "The archive to write (.tar, .tar.gz, .tgz or .tar.zst)")
	fl.BoolVar(&o.Force, "force", false, "Replace FILE if it exists")
	fl.StringVarP(&o.ClusterFile, "filename", "f", "", "Cluster file to take versions, the CNI, imageRepository and mirrors from")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml")
	fl.StringVar(&o.Kubernetes, "kubernetes-version", inventory.DefaultKubernetesVersion, "Kubernetes version")
	fl.StringVar(&o.CNI, "cni", inventory.DefaultCNI, "CNI whose manifest and images go in: flannel or none")
	fl.StringSliceVar(&o.Arches, "arch", []string{"amd64"}, "Architectures of the hosts (amd64, arm64; comma-separated)")
	fl.StringVar(&o.Containerd, "containerd", inventory.DefaultContainerd, "containerd version")
	fl.StringVar(&o.Runc, "runc", inventory.DefaultRunc, "runc version")
	fl.StringVar(&o.CNIPlugins, "cni-plugins", inventory.DefaultCNIPlugins, "CNI plugins version")
	fl.StringVar(&o.Crictl, "crictl", inventory.DefaultCrictl, "crictl version")
	fl.StringVar(&o.Flannel, "flannel", inventory.DefaultFlannel, "flannel version (with --cni flannel)")
	fl.StringVar(&o.ImageRepository, "image-repository", inventory.DefaultImageRepository, "kubeadm's imageRepository: the registry the images are named for")
	fl.StringArrayVar(&o.Images, "image", nil, "Another image to carry (repeatable), e.g. docker.io/library/busybox:1.37")
	fl.StringArrayVar(&o.Mirrors, "mirror", nil, "SITE=URL: download SITE's files from URL, which serves the same paths (repeatable), e.g. https://github.com=http://mirror.local/github.com")
	fl.StringArrayVar(&o.RegistryMirrors, "registry-mirror", nil, "REGISTRY=URL: pull REGISTRY's images from URL first (repeatable; containerd's hosts.toml form), e.g. registry.k8s.io=http://10.0.0.1:5000/v2/registry.k8s.io")
	fl.StringVar(&o.CacheDir, "cache-dir", "", "Download cache shared with bootstrap (default ~/.cache/hacluster/artifacts)")
	_ = cmd.RegisterFlagCompletionFunc("cni", cobra.FixedCompletions([]string{"flannel", "none"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("arch", cobra.FixedCompletions(core.Arches, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Complete merges the flags, the cluster file and the defaults.
func (o *BuildOptions) Complete() error {
	if o.changed == nil {
		o.changed = func(string) bool { return true }
	}
	v := core.Versions{Kubernetes: o.Kubernetes, Containerd: o.Containerd, Runc: o.Runc, CNIPlugins: o.CNIPlugins, Crictl: o.Crictl, Flannel: o.Flannel}
	cni, repo := o.CNI, o.ImageRepository
	mirrors := map[string]string{}
	regMirrors := map[string][]string{}
	if o.ClusterFile != "" {
		c, err := inventory.Load(o.ClusterFile)
		if os.IsNotExist(err) {
			return fmt.Errorf("-f %s: no such file", o.ClusterFile)
		}
		if err != nil {
			return err
		}
		s := c.Spec
		pick := func(dst *string, flag, fromFile string) {
			if !o.changed(flag) && fromFile != "" {
				*dst = fromFile
			}
		}
		pick(&v.Kubernetes, "kubernetes-version", s.Kubernetes.Version)
		pick(&v.Containerd, "containerd", s.Artifacts.Containerd)
		pick(&v.Runc, "runc", s.Artifacts.Runc)
		pick(&v.CNIPlugins, "cni-plugins", s.Artifacts.CNIPlugins)
		pick(&v.Crictl, "crictl", s.Artifacts.Crictl)
		pick(&v.Flannel, "flannel", s.Artifacts.Flannel)
		pick(&cni, "cni", s.Network.CNI)
		pick(&repo, "image-repository", s.Kubernetes.ImageRepository)
		for k, u := range s.Artifacts.Mirrors {
			mirrors[k] = u
		}
		for k, eps := range s.Registries.Mirrors {
			regMirrors[k] = append([]string(nil), eps...)
		}
		if len(s.Addons) > 0 {
			fmt.Fprintf(o.ErrOut, "note: %s: spec.addons (%s): bundles do not carry add-on images yet; pass them with --image\n", o.ClusterFile, strings.Join(s.Addons, ", "))
		}
	}
	m, err := cmdutil.ParseKeyValues("mirror", o.Mirrors)
	if err != nil {
		return err
	}
	for k, u := range m {
		mirrors[strings.TrimRight(k, "/")] = u
	}
	if _, err := cmdutil.ParseKeyValues("registry-mirror", o.RegistryMirrors); err != nil {
		return err
	}
	flagged := map[string]bool{}
	for _, kv := range o.RegistryMirrors {
		k, u, _ := strings.Cut(kv, "=")
		if !flagged[k] { // the flags replace the file's endpoints for that registry
			regMirrors[k] = nil
			flagged[k] = true
		}
		regMirrors[k] = append(regMirrors[k], u)
	}
	o.opts = core.Options{
		Output: o.Output, Force: o.Force, Versions: v, CNI: cni, ImageRepository: repo,
		Arches: o.Arches, ExtraImages: o.Images, CacheDir: o.CacheDir,
		Mirrors: mirrors, RegistryMirrors: regMirrors,
	}
	return nil
}

// Validate checks what pkg/bundle does not.
func (o *BuildOptions) Validate() error {
	if o.Output == "" {
		return fmt.Errorf("-o FILE is required: the archive to write (e.g. -o k8s-%s.tar)", o.opts.Versions.Kubernetes)
	}
	for site := range o.opts.Mirrors {
		if !strings.HasPrefix(site, "https://") && !strings.HasPrefix(site, "http://") {
			return fmt.Errorf("--mirror %q: SITE is a URL like https://dl.k8s.io", site)
		}
	}
	return nil
}

// Run builds the bundle and prints what it wrote.
func (o *BuildOptions) Run(ctx context.Context) error {
	p := newProgressLine(o.ErrOut)
	o.opts.Logf = p.Logf
	o.opts.OnBytes = p.Bytes
	res, err := core.Build(ctx, o.opts)
	p.Clear()
	if err != nil {
		return err
	}
	m := res.Manifest
	var bins, imgs int64
	for _, f := range m.Files {
		if f.Kind == core.KindImages {
			imgs += f.Size
		} else {
			bins += f.Size
		}
	}
	fmt.Fprintf(o.Out, "Wrote %s: %s, Kubernetes %s for linux/%s\n", res.Path, size(res.Size), m.Versions.Kubernetes, strings.Join(m.Arches, ", linux/"))
	fmt.Fprintf(o.Out, "  %d files (%s), %d images (%s of layouts; images from %s)\n", len(m.Files)-len(m.Arches), size(bins), len(m.Images), size(imgs), m.ImagesFrom)
	dl := "nothing downloaded (all from the cache)"
	if res.Downloaded > 0 {
		dl = size(res.Downloaded) + " downloaded"
	}
	fmt.Fprintf(o.Out, "  %s, built in %s\n", dl, res.Took.Round(10*time.Millisecond))
	fmt.Fprintf(o.Out, "%s  %s\n", res.SHA256, res.Path)
	return nil
}

func size(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

// progressLine prints each step as a line; on a terminal it also keeps a
// last line with the bytes downloaded so far, redrawn in place.
type progressLine struct {
	w    io.Writer
	tty  bool
	mu   sync.Mutex
	last time.Time
	live bool
}

func newProgressLine(w io.Writer) *progressLine {
	return &progressLine{w: w, tty: output.IsTerminal(w) && os.Getenv("TERM") != "dumb"}
}

func (p *progressLine) Logf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintf(p.w, format+"\n", args...)
}

func (p *progressLine) Bytes(total int64) {
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\r\x1b[K  pulling images: %s downloaded", size(total))
	p.live = true
}

func (p *progressLine) clear() {
	if p.live {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.live = false
	}
}

func (p *progressLine) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
}

// ---- inspect

func newInspect(f *factory.Factory) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Show what a bundle holds: versions, files, images and sizes (reads its manifest only)",
		Example: `  kubectl hacluster bundle inspect k8s-v1.37.2.tar
  kubectl hacluster bundle inspect k8s-v1.37.2.tar -o json | jq -r '.manifest.images[].ref'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := output.ParseFormat(out, output.Table, output.JSON, output.YAML)
			if err != nil {
				return err
			}
			c, err := core.Inspect(args[0])
			if err != nil {
				return err
			}
			if format.Structured() {
				return output.Print(f.Out, format, c)
			}
			return printContents(f.Out, c)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "Output format: json or yaml (default: tables)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func short(d string, n int) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > n {
		return d[:n]
	}
	return d
}

func printContents(w io.Writer, c *core.Contents) error {
	m := c.Manifest
	v := m.Versions
	fmt.Fprintf(w, "Bundle %s (%s), built %s by hacluster %s\n", c.Path, size(c.Size), m.Created.Format(time.RFC3339), m.BuiltBy)
	fmt.Fprintf(w, "Kubernetes %s, containerd %s, runc %s, CNI plugins %s, crictl %s", v.Kubernetes, v.Containerd, v.Runc, v.CNIPlugins, v.Crictl)
	if m.CNI == "flannel" {
		fmt.Fprintf(w, ", flannel %s", v.Flannel)
	}
	fmt.Fprintf(w, "\nArchitectures: linux/%s; images named for %s (list from %s)\n\n", strings.Join(m.Arches, ", linux/"), m.ImageRepository, m.ImagesFrom)
	var rows [][]string
	for _, f := range m.Files {
		arch := f.Arch
		if arch == "" {
			arch = "-"
		}
		rows = append(rows, []string{f.Path, f.Kind, arch, size(f.Size), short(f.SHA256, 16)})
	}
	if err := output.RenderTable(w, []string{"PATH", "KIND", "ARCH", "SIZE", "SHA256"}, rows); err != nil {
		return err
	}
	fmt.Fprintln(w)
	rows = nil
	for _, im := range m.Images {
		rows = append(rows, []string{im.Ref, im.Arch, short(im.Digest, 16), fmt.Sprint(len(im.Layers)), size(im.Size)})
	}
	if err := output.RenderTable(w, []string{"IMAGE", "ARCH", "DIGEST", "LAYERS", "SIZE"}, rows); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d files and %d images; run `kubectl hacluster bundle verify %s` to check every checksum.\n", len(m.Files), len(m.Images), c.Path)
	return nil
}

// ---- verify

// VerifyReport is what verify -o json|yaml prints.
type VerifyReport struct {
	Path     string   `json:"path"`
	OK       bool     `json:"ok"`
	Files    int      `json:"files"`
	Images   int      `json:"images"`
	Blobs    int      `json:"blobs"`
	Bytes    int64    `json:"bytes"`
	Took     string   `json:"took"`
	Problems []string `json:"problems,omitempty"`
}

func newVerify(f *factory.Factory) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "verify FILE",
		Short: "Re-hash every file and every image blob of a bundle against its manifest",
		Long: `Read the whole bundle once: every entry's size and sha256 against manifest.json,
and in each image layout every blob against its digest, index.json against the
images the manifest lists, and each image's manifest, config and layers
against the digests recorded at build time. A changed byte or a swapped layer
is named. Exit status 1 when anything differs.`,
		Example: `  kubectl hacluster bundle verify k8s-v1.37.2.tar`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := output.ParseFormat(out, output.Table, output.JSON, output.YAML)
			if err != nil {
				return err
			}
			t0 := time.Now()
			v, err := core.Verify(args[0])
			rep := VerifyReport{Path: args[0], OK: err == nil, Took: time.Since(t0).Round(time.Millisecond).String()}
			if v != nil {
				rep.Files, rep.Images, rep.Blobs, rep.Bytes = v.Files, v.Images, v.Blobs, v.Bytes
			}
			var ve *core.VerifyError
			if errors.As(err, &ve) {
				rep.Problems = ve.Problems
			} else if err != nil {
				return err
			}
			if format.Structured() {
				if perr := output.Print(f.Out, format, rep); perr != nil {
					return perr
				}
			} else if err == nil {
				fmt.Fprintf(f.Out, "%s: OK: %d files and %d images (%d blobs), %s re-hashed in %s\n", rep.Path, rep.Files, rep.Images, rep.Blobs, size(rep.Bytes), rep.Took)
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "Output format: json or yaml (default: one line)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}
