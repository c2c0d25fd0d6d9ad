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

// loadAddons is the download phase's part for spec.addons (and calico as
// the CNI): each add-on's manifests downloaded (through
// spec.artifacts.mirrors) and checked against the sha256 its catalog pins,
// so that an unpinned or changed manifest stops the run before any host
// changes.
func (r *run) loadAddons(ctx context.Context, s *artifacts.Store) error {
	if r.joining != nil {
		return nil // a join adds nodes; the add-ons are the cluster's, from bootstrap
	}
	names := r.c.Spec.Addons
	if r.c.Spec.Network.CNI == "calico" {
		names = append([]string{"calico"}, names...)
	}
	if len(names) == 0 {
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
	r.addons, r.calico = nil, nil
	for _, name := range names {
		field := "spec.addons"
		if name == "calico" {
			field = "spec.network.cni"
		}
		a, err := cat.Get(name)
		if err != nil {
			return fmt.Errorf("%s: %s is not in %s", field, name, from)
		}
		if !a.Pinned() {
			return fmt.Errorf("%s: %s %s is not pinned in %s (no sha256), so it is not applied: set spec.artifacts.addonsCatalog to a catalog file with its sha256 (`kubectl hacluster addons list -o yaml` writes one; `kubectl hacluster addons fetch %s` prints the sha256 of what it downloads)", field, a.Name, a.Version, from, a.Name)
		}
		a.Sources = slices.Clone(a.Sources)
		for i := range a.Sources {
			a.Sources[i].URL = s.Resolve(a.Sources[i].URL)
		}
		ms, err := addons.Load(ctx, a, addons.SourceOptions{})
		if err != nil {
			return err
		}
		if name == "calico" {
			r.calico = &addonSet{addon: a, manifests: ms}
			continue
		}
		r.addons = append(r.addons, addonSet{addon: a, manifests: ms})
	}
	return nil
}

// installCalico is the cni phase for cni: calico: the manifest fitted to
// the cluster (its IP pool is the podSubnet) and applied without waiting,
// as flannel's is: calico-node starts on each node as it joins, and the
// addons phase waits until it is Ready everywhere.
func (r *run) installCalico(ctx context.Context) error {
	t0 := time.Now()
	if r.calico == nil {
		return fmt.Errorf("calico's manifest was not downloaded")
	}
	cl, err := r.addonsCluster(ctx)
	if err != nil {
		return err
	}
	res, err := cl.Install(ctx, r.calico.addon, r.calico.manifests, addons.InstallOptions{Timeout: 5 * time.Minute, DefaultNamespace: "kube-system"})
	if err != nil {
		return fmt.Errorf("calico: %w", err)
	}
	changed := changedObjects(res)
	detail := fmt.Sprintf("calico %s: %d objects, %d changed (IP pool %s)", r.calico.addon.Version, len(res.Objects), changed, r.c.Spec.Network.PodSubnet)
	r.record(PhaseResult{Phase: "cni", Detail: detail, Changed: changed > 0, Duration: time.Since(t0)})
	r.o.Logf("  %s (%s)", detail, time.Since(t0).Round(time.Millisecond))
	return nil
}

func (r *run) addonsCluster(ctx context.Context) (*addons.Cluster, error) {
	if _, err := r.kube(ctx); err != nil {
		return nil, err
	}
	return addons.NewCluster(r.kubeConfig)
}

func changedObjects(res *addons.InstallResult) int {
	n := 0
	for _, o := range res.Objects {
		if o.Action != "unchanged" {
			n++
		}
	}
	return n
}

// installAddons applies spec.addons through pkg/addons (server-side apply,
// fitted to the cluster) in the file's order and waits until each is Ready:
// its Deployments and DaemonSets, and an aggregated API it serves Available
// (metrics-server's needs the serving certificates nodes-ready approved).
// Calico as the CNI, applied in the cni phase, is waited for first.
func (r *run) installAddons(ctx context.Context) error {
	if len(r.addons) == 0 && r.calico == nil {
		return nil
	}
	cl, err := r.addonsCluster(ctx)
	if err != nil {
		return err
	}
	cat := &addons.Catalog{}
	for _, s := range r.addons {
		cat.Addons = append(cat.Addons, s.addon)
	}
	if r.calico != nil {
		// Applied by the cni phase: here it must be Ready on every node.
		t0 := time.Now()
		cat.Addons = append(cat.Addons, r.calico.addon)
		if _, err := waitAddonReady(ctx, cl, cat, "calico", 3*time.Minute); err != nil {
			return err
		}
		r.record(PhaseResult{Phase: "addons", Detail: "calico " + r.calico.addon.Version + ": Ready", Duration: time.Since(t0)})
	}
	for _, s := range r.addons {
		t0 := time.Now()
		res, err := cl.Install(ctx, s.addon, s.manifests, addons.InstallOptions{Wait: true, Timeout: 5 * time.Minute, DefaultNamespace: "kube-system"})
		if err != nil {
			return fmt.Errorf("%s: %w", s.addon.Name, err)
		}
		changed := changedObjects(res)
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
