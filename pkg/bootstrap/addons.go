package bootstrap

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hacluster/hacluster/pkg/addons"
	"github.com/hacluster/hacluster/pkg/artifacts"
	"github.com/hacluster/hacluster/pkg/inventory"
)

// addonSet is one add-on of spec.addons with its verified manifests.
type addonSet struct {
	addon     addons.Addon
	manifests []addons.Manifest
}

// wantsServingCerts says whether the file's kubelets should serve
// certificates signed by the cluster CA: metrics-server verifies them.
func wantsServingCerts(c *inventory.Cluster) bool {
	return slices.Contains(c.Spec.Addons, "metrics-server")
}

// loadAddons is the download phase's part for spec.addons: each add-on's
// manifests downloaded (through spec.artifacts.mirrors) and checked against
// the sha256 its catalog pins, so that an unpinned or changed manifest stops
// the run before any host changes.
func (r *run) loadAddons(ctx context.Context, s *artifacts.Store) error {
	if len(r.c.Spec.Addons) == 0 {
		return nil
	}
	cat, from := addons.Builtin(), "the built-in catalog"
	if f := inventory.ExpandHome(r.c.Spec.Artifacts.AddonsCatalog); f != "" {
		var err error
		if cat, err = addons.LoadCatalog(f); err != nil {
			return err
		}
		from = f
	}
	r.addons = nil
	for _, name := range r.c.Spec.Addons {
		a, err := cat.Get(name)
		if err != nil {
			return fmt.Errorf("spec.addons: %s is not in %s", name, from)
		}
		if !a.Pinned() {
			return fmt.Errorf("spec.addons: %s %s is not pinned in %s (no sha256), so it is not applied: set spec.artifacts.addonsCatalog to a catalog file with its sha256 (`kubectl hacluster addons list -o yaml` writes one; `kubectl hacluster addons fetch %s` prints the sha256 of what it downloads)", a.Name, a.Version, from, a.Name)
		}
		a.Sources = slices.Clone(a.Sources)
		for i := range a.Sources {
			a.Sources[i].URL = s.Resolve(a.Sources[i].URL)
		}
		ms, err := addons.Load(ctx, a, addons.SourceOptions{})
		if err != nil {
			return err
		}
		r.addons = append(r.addons, addonSet{addon: a, manifests: ms})
	}
	return nil
}

// installAddons applies spec.addons through pkg/addons (server-side apply,
// fitted to the cluster) in the file's order and waits until each is Ready:
// its Deployments and DaemonSets, and an aggregated API it serves Available
// (metrics-server's needs the serving certificates nodes-ready approved).
func (r *run) installAddons(ctx context.Context) error {
	if len(r.addons) == 0 {
		return nil
	}
	if _, err := r.kube(ctx); err != nil {
		return err
	}
	cl, err := addons.NewCluster(r.kubeConfig)
	if err != nil {
		return err
	}
	cat := &addons.Catalog{}
	for _, s := range r.addons {
		cat.Addons = append(cat.Addons, s.addon)
	}
	for _, s := range r.addons {
		t0 := time.Now()
		res, err := cl.Install(ctx, s.addon, s.manifests, addons.InstallOptions{Wait: true, Timeout: 5 * time.Minute, DefaultNamespace: "kube-system"})
		if err != nil {
			return fmt.Errorf("%s: %w", s.addon.Name, err)
		}
		changed := 0
		for _, o := range res.Objects {
			if o.Action != "unchanged" {
				changed++
			}
		}
		st, err := waitAddonReady(ctx, cl, cat, s.addon.Name, 3*time.Minute)
		if err != nil {
			return err
		}
		detail := fmt.Sprintf("%s %s: %d objects, %d changed; %s", s.addon.Name, s.addon.Version, len(res.Objects), changed, st)
		r.record(PhaseResult{Phase: "addons", Detail: detail, Changed: changed > 0, Duration: time.Since(t0)})
		r.o.Logf("  %s (%s)", detail, time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

// waitAddonReady polls `addons status` for one add-on until it is Ready.
func waitAddonReady(ctx context.Context, cl *addons.Cluster, cat *addons.Catalog, name string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := cl.Status(ctx, cat, []string{name})
		last := ""
		if err != nil {
			last = err.Error()
		} else if st[0].State == "Ready" {
			return "Ready", nil
		} else {
			last = st[0].State
			for _, a := range st[0].APIServices {
				if !a.Available {
					last += fmt.Sprintf(", apiservice/%s not Available (%s: %s)", a.Name, a.Reason, a.Message)
				}
			}
			for _, w := range st[0].Workloads {
				if !w.OK {
					last += fmt.Sprintf(", %s/%s: %s", strings.ToLower(w.Kind), w.Name, w.Message)
				}
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s not Ready after %s: %s", name, timeout, last)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
