package addons

import (
	"context"
	"fmt"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// InstallOptions controls Install.
type InstallOptions struct {
	FitOptions
	// DryRun asks the API server to validate and report, changing nothing.
	DryRun bool
	// ForceConflicts takes over fields other managers own.
	ForceConflicts bool
	// Wait for Deployments and DaemonSets to be ready (not in DryRun).
	Wait bool
	// Timeout bounds every wait (CRDs, workloads); default 5 minutes.
	Timeout time.Duration
	// DefaultNamespace is used for namespaced objects without one.
	DefaultNamespace string
	Progress         Progress
}

// ObjectResult is what happened to one object.
type ObjectResult struct {
	Ref
	// Action is created, configured, unchanged, pruned (a later version
	// dropped it), deleted, kept (it existed before hacluster) or gone.
	Action string `json:"action"`
}

// InstallResult reports one add-on's install.
type InstallResult struct {
	Addon     string         `json:"addon"`
	Version   string         `json:"version"`
	DryRun    bool           `json:"dryRun"`
	Manifests []Manifest     `json:"manifests"`
	Objects   []ObjectResult `json:"objects"`
	Notes     []string       `json:"notes,omitempty"`
	// Access is the command that reaches a UI add-on.
	Access string `json:"access,omitempty"`
}

type planned struct {
	u       *unstructured.Unstructured
	mapping *meta.RESTMapping // nil until its CRD is established
}

// Install fits manifests to the cluster and server-side applies them: CRDs
// first (waited until Established), then Namespaces, then everything else
// in manifest order. Nothing is applied when a manifest does not parse, an
// object's kind is unknown, or a server-side dry run of the objects fails.
// Re-running is safe: unchanged objects are reported as such, objects a
// previous version applied and this one does not are pruned.
func (c *Cluster) Install(ctx context.Context, a Addon, manifests []Manifest, o InstallOptions) (*InstallResult, error) {
	if o.Progress == nil {
		o.Progress = noProgress{}
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.DefaultNamespace == "" {
		o.DefaultNamespace = "default"
	}
	var objs []*unstructured.Unstructured
	for _, m := range manifests {
		parsed, err := Parse(m.File, m.Data)
		if err != nil {
			return nil, err
		}
		objs = append(objs, parsed...)
	}
	facts, err := c.ReadFacts(ctx)
	if err != nil {
		return nil, err
	}
	objs, notes, err := Fit(a, objs, facts, o.FitOptions)
	if err != nil {
		return nil, err
	}
	plan, err := c.plan(objs, o.DefaultNamespace)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; nothing was applied", a.Name, err)
	}
	res := &InstallResult{Addon: a.Name, Version: a.Version, DryRun: o.DryRun, Manifests: manifests, Notes: notes, Access: a.AccessCommand()}

	// Pass 1: a server-side dry run of everything the server can check now.
	o.Progress.Start("checking %d objects of %s %s with a server-side dry run", len(plan), a.Name, a.Version)
	dry, err := c.dryRun(ctx, plan, o.ForceConflicts)
	if err != nil {
		o.Progress.Fail()
		return nil, fmt.Errorf("%s: %w; nothing was applied", a.Name, err)
	}
	o.Progress.Done()
	if o.DryRun {
		res.Objects = dry
		return res, nil
	}

	prev, err := c.ReadInventory(ctx, a.Name)
	if err != nil {
		return nil, err
	}
	wasCreated := map[Ref]bool{}
	if prev != nil {
		for _, e := range prev.Objects {
			wasCreated[e.Ref] = e.Created
		}
	}
	inv := &Inventory{Addon: a.Name, Version: a.Version, Options: optionsMap(o.FitOptions)}
	for _, m := range manifests {
		inv.Manifests = append(inv.Manifests, Manifest{File: m.File, Origin: m.Origin, SHA256: m.SHA256, VerifiedBy: m.VerifiedBy})
	}
	// If applying stops half-way, record what was applied (and what an
	// earlier install had), so that uninstall can still remove it.
	applied := false
	defer func() {
		if applied || len(inv.Objects) == 0 {
			return
		}
		partial := &Inventory{Addon: inv.Addon, Version: inv.Version, Manifests: inv.Manifests, Options: inv.Options, Objects: inv.Objects}
		have := map[Ref]bool{}
		for _, e := range inv.Objects {
			have[e.Ref] = true
		}
		if prev != nil {
			for _, e := range prev.Objects {
				if !have[e.Ref] {
					partial.Objects = append(partial.Objects, e)
				}
			}
		}
		_ = c.writeInventory(context.WithoutCancel(ctx), partial)
	}()

	o.Progress.Start("applying %s %s (%d objects, server-side apply as %s)", a.Name, a.Version, len(plan), FieldManager)
	var crds []string
	waitCRDs := func() error {
		o.Progress.Done()
		o.Progress.Start("waiting for %d CRDs to be Established", len(crds))
		wctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		if err := c.waitEstablished(wctx, crds); err != nil {
			o.Progress.Fail()
			return err
		}
		crds = nil
		return nil
	}
	for i, p := range plan {
		if p.mapping == nil {
			// The first object whose kind comes from a CRD: wait for CRDs.
			if len(crds) > 0 {
				if err := waitCRDs(); err != nil {
					return res, err
				}
				o.Progress.Done()
				o.Progress.Start("applying the rest of %s", a.Name)
			}
			c.Mapper.Reset()
			m, err := c.mapping(RefOf(p.u))
			if err != nil {
				o.Progress.Fail()
				return res, fmt.Errorf("%s: %w", RefOf(p.u), err)
			}
			plan[i].mapping, p.mapping = m, m
			if m.Scope.Name() != meta.RESTScopeNameNamespace {
				p.u.SetNamespace("")
			} else if p.u.GetNamespace() == "" {
				p.u.SetNamespace(o.DefaultNamespace)
			}
		}
		action, _, err := c.applyOne(ctx, p.mapping, p.u, false, o.ForceConflicts)
		if err != nil {
			o.Progress.Fail()
			return res, fmt.Errorf("apply %s: %w", RefOf(p.u), err)
		}
		ref := RefOf(p.u)
		created, known := wasCreated[ref]
		if !known {
			created = action == "created"
		}
		inv.Objects = append(inv.Objects, Entry{Ref: ref, Created: created})
		res.Objects = append(res.Objects, ObjectResult{Ref: ref, Action: action})
		if isCRD(p.u) {
			crds = append(crds, p.u.GetName())
		}
	}
	if len(crds) > 0 {
		if err := waitCRDs(); err != nil {
			return res, err
		}
		c.Mapper.Reset()
	}
	o.Progress.Done()

	// Prune what an earlier install applied and this one no longer does.
	if prev != nil {
		now := map[Ref]bool{}
		for _, e := range inv.Objects {
			now[e.Ref] = true
		}
		for i := len(prev.Objects) - 1; i >= 0; i-- {
			e := prev.Objects[i]
			if now[e.Ref] {
				continue
			}
			action, err := c.deleteOne(ctx, e)
			if err != nil {
				return res, fmt.Errorf("prune %s: %w", e.Ref, err)
			}
			if action == "deleted" {
				action = "pruned"
			}
			res.Objects = append(res.Objects, ObjectResult{Ref: e.Ref, Action: action})
		}
	}
	if err := c.writeInventory(ctx, inv); err != nil {
		return res, err
	}
	applied = true
	if o.Wait {
		if err := c.WaitReady(ctx, inv, o.Timeout, o.Progress); err != nil {
			return res, err
		}
	}
	return res, nil
}

func optionsMap(o FitOptions) map[string]string {
	m := map[string]string{}
	if o.PodCIDR != "" {
		m["podCIDR"] = o.PodCIDR
	}
	if o.KubeletInsecureTLS {
		m["kubeletInsecureTLS"] = strconv.FormatBool(true)
	}
	if o.Admin {
		m["admin"] = strconv.FormatBool(true)
	}
	return m
}

func isCRD(u *unstructured.Unstructured) bool {
	return u.GetKind() == "CustomResourceDefinition" && u.GroupVersionKind().Group == "apiextensions.k8s.io"
}

// plan maps every object to its resource, fills in namespaces, rejects
// duplicates and unknown kinds, and orders CRDs, Namespaces, the rest.
func (c *Cluster) plan(objs []*unstructured.Unstructured, defaultNS string) ([]planned, error) {
	fromCRDs := map[schema.GroupKind]bool{}
	for _, u := range objs {
		if isCRD(u) {
			g, _, _ := unstructured.NestedString(u.Object, "spec", "group")
			k, _, _ := unstructured.NestedString(u.Object, "spec", "names", "kind")
			fromCRDs[schema.GroupKind{Group: g, Kind: k}] = true
		}
	}
	var crds, nss, rest []planned
	seen := map[Ref]bool{}
	for _, u := range objs {
		ref := RefOf(u)
		m, err := c.mapping(ref)
		switch {
		case meta.IsNoMatchError(err) && fromCRDs[ref.GroupKind()]:
			m = nil // its scope is known once the CRD exists
		case err != nil:
			return nil, fmt.Errorf("%s: kind %s is not served by this cluster (%v)", ref, ref.Kind, err)
		case m.Scope.Name() == meta.RESTScopeNameNamespace:
			if u.GetNamespace() == "" {
				u.SetNamespace(defaultNS)
			}
		default:
			u.SetNamespace("")
		}
		ref = RefOf(u)
		if seen[ref] {
			return nil, fmt.Errorf("%s appears twice in the manifests", ref)
		}
		seen[ref] = true
		p := planned{u: u, mapping: m}
		switch {
		case isCRD(u):
			crds = append(crds, p)
		case u.GetKind() == "Namespace" && u.GetAPIVersion() == "v1":
			nss = append(nss, p)
		default:
			rest = append(rest, p)
		}
	}
	out := append(append(crds, nss...), rest...)
	return out, nil
}

// dryRun asks the server to validate every object it can check now and
// reports what would change. Objects in namespaces the manifests create,
// and custom resources of CRDs not yet installed, cannot be checked before
// they exist; they are reported as created.
func (c *Cluster) dryRun(ctx context.Context, plan []planned, force bool) ([]ObjectResult, error) {
	creates := map[string]bool{}
	for _, p := range plan {
		if p.u.GetKind() == "Namespace" && p.u.GetAPIVersion() == "v1" {
			creates[p.u.GetName()] = true
		}
	}
	nsExists := map[string]bool{}
	var out []ObjectResult
	for _, p := range plan {
		ref := RefOf(p.u)
		if p.mapping == nil {
			out = append(out, ObjectResult{Ref: ref, Action: "created"})
			continue
		}
		if ns := p.u.GetNamespace(); ns != "" && p.mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			ok, seen := nsExists[ns]
			if !seen {
				_, err := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
				if err != nil && !apierrors.IsNotFound(err) {
					return nil, err
				}
				ok = err == nil
				nsExists[ns] = ok
			}
			if !ok {
				if !creates[ns] {
					return nil, fmt.Errorf("%s: namespace %s does not exist and the manifests do not create it", ref, ns)
				}
				out = append(out, ObjectResult{Ref: ref, Action: "created"})
				continue
			}
		}
		action, _, err := c.applyOne(ctx, p.mapping, p.u, true, force)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		out = append(out, ObjectResult{Ref: ref, Action: action})
	}
	return out, nil
}
