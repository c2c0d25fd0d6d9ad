package bootstrap

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hacluster/hacluster/pkg/artifacts"
	"github.com/hacluster/hacluster/pkg/bundle"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/remote"
)

// imagesTar is where a host keeps the bundle's image layout for its
// architecture (uploaded once, imported into containerd).
const imagesTar = "/var/lib/hacluster/images.tar"

// bundlePath is Options.Bundle, else spec.artifacts.bundle ("" for none).
func (r *run) bundlePath() string {
	if r.o.Bundle != "" {
		return r.o.Bundle
	}
	return inventory.ExpandHome(r.c.Spec.Artifacts.Bundle)
}

// fromBundle is the download phase with an offline bundle: every entry and
// image blob verified, the versions checked against the cluster file, the
// entries unpacked beside the download cache (once: a second run reuses
// them), and the image layouts kept for the runtime phase to import.
func (r *run) fromBundle(ctx context.Context, file string, store *artifacts.Store) error {
	t0 := time.Now()
	v, err := bundle.Verify(file)
	if err != nil {
		return err
	}
	m := v.Manifest
	k, a := r.c.Spec.Kubernetes, r.c.Spec.Artifacts
	for _, c := range []struct{ what, bundle, file string }{
		{"Kubernetes", m.Versions.Kubernetes, k.Version}, {"containerd", m.Versions.Containerd, a.Containerd},
		{"runc", m.Versions.Runc, a.Runc}, {"CNI plugins", m.Versions.CNIPlugins, a.CNIPlugins}, {"crictl", m.Versions.Crictl, a.Crictl},
	} {
		if c.bundle != c.file {
			return fmt.Errorf("%s holds %s %s, the cluster file asks for %s: build a bundle for it (kubectl hacluster bundle build -f cluster.yaml)", file, c.what, c.bundle, c.file)
		}
	}
	if r.c.Spec.Network.CNI != "none" && m.CNI != r.c.Spec.Network.CNI {
		return fmt.Errorf("%s holds the CNI %q, the cluster file asks for %q", file, m.CNI, r.c.Spec.Network.CNI)
	}
	for name, f := range r.facts {
		if arch := archOf(f); !slices.Contains(m.Arches, arch) {
			return fmt.Errorf("%s holds %s, not %s for %s", file, strings.Join(m.Arches, ", "), arch, name)
		}
	}
	u, err := bundle.Unpack(file, filepath.Join(store.Dir, "bundles"))
	if err != nil {
		return err
	}
	r.files = map[string]artifacts.Fetched{}
	r.layouts = map[string]artifacts.Fetched{}
	for _, f := range m.Files {
		got := artifacts.Fetched{Artifact: artifacts.Artifact{Name: f.Name, URL: f.URL}, Path: u.Paths[f.Path], SHA256: f.SHA256, Size: f.Size, Cached: true}
		switch f.Kind {
		case bundle.KindBinary:
			r.files[f.Arch+"/"+f.Name] = got
		case bundle.KindManifest:
			r.files["manifest/"+f.Name] = got
		case bundle.KindImages:
			r.layouts[f.Arch] = got
		}
	}
	r.record(PhaseResult{Phase: "download", Detail: fmt.Sprintf("bundle %s verified (%d files, %d images, %d blobs); %d of %d entries unpacked before", filepath.Base(file), v.Files, v.Images, v.Blobs, u.Reused, len(m.Files)),
		Duration: time.Since(t0), Changed: u.Reused < len(m.Files)})
	return nil
}

// importImages uploads the bundle's image layout for the host's
// architecture (once: its stamp) and imports it into containerd's k8s.io
// namespace under the names kubeadm and the CNI ask for, so that no image
// is ever pulled.
func (r *run) importImages(ctx context.Context, c *remote.Conn, arch string) (bool, error) {
	l, ok := r.layouts[arch]
	if !ok {
		return false, nil
	}
	imported := stampDir + "/images-imported.sha256"
	if r.stamp(ctx, c, imported) == l.SHA256 {
		return false, nil
	}
	if _, err := r.ensureUpload(ctx, c, imagesTar, l.Path, l.SHA256, 0o600); err != nil {
		return false, err
	}
	if _, err := c.Output(ctx, "ctr -n k8s.io images import "+imagesTar+" >/dev/null", true); err != nil {
		return true, fmt.Errorf("import the bundle's images: %w", err)
	}
	return true, r.writeStamp(ctx, c, imported, l.SHA256)
}
