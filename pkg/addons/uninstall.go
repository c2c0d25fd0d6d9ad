package addons

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ErrNotInstalled is returned for an add-on without an inventory.
var ErrNotInstalled = errors.New("not installed by kubectl hacluster")

// protectedNamespaces are never deleted, whatever a manifest says.
var protectedNamespaces = map[string]bool{"default": true, "kube-system": true, "kube-public": true, "kube-node-lease": true}

// UninstallResult reports an uninstall.
type UninstallResult struct {
	Addon   string         `json:"addon"`
	Version string         `json:"version"`
	Objects []ObjectResult `json:"objects"`
	// Leftovers lists objects still carrying the add-on's label afterwards
	// (always empty unless something re-created them).
	Leftovers []string `json:"leftovers"`
}

// Uninstall deletes what Install applied, in reverse order, waits until it
// is gone (Pods and ReplicaSets go with their owners), then removes the
// inventory. Objects that existed before hacluster applied them are kept.
func (c *Cluster) Uninstall(ctx context.Context, addon string, timeout time.Duration, p Progress) (*UninstallResult, error) {
	if p == nil {
		p = noProgress{}
	}
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	inv, err := c.ReadInventory(ctx, addon)
	if err != nil {
		return nil, err
	}
	if inv == nil {
		return nil, fmt.Errorf("%s: %w (no inventory %s/%s)", addon, ErrNotInstalled, InventoryNamespace, InventoryName(addon))
	}
	res := &UninstallResult{Addon: addon, Version: inv.Version, Leftovers: []string{}}
	p.Start("deleting %d objects of %s %s", len(inv.Objects), addon, inv.Version)
	var deleted []Entry
	for i := len(inv.Objects) - 1; i >= 0; i-- {
		e := inv.Objects[i]
		action, err := c.deleteOne(ctx, e)
		if err != nil {
			p.Fail()
			return res, fmt.Errorf("delete %s: %w", e.Ref, err)
		}
		if action == "deleted" {
			deleted = append(deleted, e)
		}
		res.Objects = append(res.Objects, ObjectResult{Ref: e.Ref, Action: action})
	}
	p.Done()
	p.Start("waiting for %d objects to be gone", len(deleted))
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, e := range deleted {
		for {
			ok, err := c.exists(wctx, e.Ref)
			if err != nil && !errors.Is(wctx.Err(), context.DeadlineExceeded) {
				p.Fail()
				return res, err
			}
			if !ok && err == nil {
				break
			}
			if e.Kind == "Namespace" && e.APIVersion == "v1" {
				if why := c.namespaceStuck(wctx, e.Name); why != "" {
					p.Fail()
					return res, fmt.Errorf("namespace %s cannot finish deleting: %s", e.Name, why)
				}
			}
			if err := sleep(wctx, c.poll()); err != nil {
				p.Fail()
				return res, fmt.Errorf("%s still exists after %s: %w", e.Ref, timeout, err)
			}
		}
	}
	p.Done()
	if err := c.deleteInventory(ctx, addon); err != nil {
		return res, err
	}
	left, err := c.Leftovers(ctx, inv)
	if err != nil {
		return res, err
	}
	res.Leftovers = left
	if len(left) > 0 {
		return res, fmt.Errorf("%s: %d objects labelled %s=%s remain: %v", addon, len(left), LabelAddon, addon, left)
	}
	return res, nil
}

// deleteOne deletes an object hacluster created; it keeps objects that
// existed before and protected namespaces.
func (c *Cluster) deleteOne(ctx context.Context, e Entry) (string, error) {
	if !e.Created || (e.Kind == "Namespace" && protectedNamespaces[e.Name]) {
		return "kept", nil
	}
	m, err := c.mapping(e.Ref)
	if err != nil {
		return "gone", nil // the kind went with its CRD
	}
	bg := metav1.DeletePropagationBackground
	err = c.resource(m, e.Namespace).Delete(ctx, e.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
	if apierrors.IsNotFound(err) {
		return "gone", nil
	}
	if err != nil {
		return "", err
	}
	return "deleted", nil
}

// Leftovers lists objects of the inventory's kinds that still carry the
// add-on's label, except those hacluster keeps on purpose.
func (c *Cluster) Leftovers(ctx context.Context, inv *Inventory) ([]string, error) {
	kept := map[Ref]bool{}
	kinds := map[string]Ref{}
	for _, e := range inv.Objects {
		if !e.Created || (e.Kind == "Namespace" && protectedNamespaces[e.Name]) {
			kept[e.Ref] = true
		}
		kinds[e.APIVersion+"/"+e.Kind] = e.Ref
	}
	c.Mapper.Reset()
	out := []string{}
	for _, r := range kinds {
		m, err := c.mapping(r)
		if err != nil {
			continue // kind gone (CRD deleted): nothing of it can be left
		}
		l, err := c.Dynamic.Resource(m.Resource).List(ctx, metav1.ListOptions{LabelSelector: LabelAddon + "=" + inv.Addon})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", m.Resource.Resource, err)
		}
		for i := range l.Items {
			ref := RefOf(&l.Items[i])
			if !kept[ref] {
				out = append(out, ref.String())
			}
		}
	}
	return out, nil
}

// namespaceStuck explains why the namespace controller cannot finish
// deleting ns: an aggregated API (typically metrics.k8s.io of a
// metrics-server that does not run) fails discovery, and the controller
// then keeps every namespace Terminating. It reports only a current
// failure: the condition is older than a few retries and an APIService is
// unavailable right now.
func (c *Cluster) namespaceStuck(ctx context.Context, ns string) string {
	n, err := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type != "NamespaceDeletionDiscoveryFailure" || cond.Status != "True" || time.Since(cond.LastTransitionTime.Time) < 15*time.Second {
			continue
		}
		l, err := c.Dynamic.Resource(apiServiceGVR).List(ctx, metav1.ListOptions{})
		if err != nil {
			return ""
		}
		var down []string
		for i := range l.Items {
			if s, _ := c.apiService(ctx, l.Items[i].GetName()); !s.Available {
				down = append(down, s.Name+" ("+s.Reason+")")
			}
		}
		if len(down) == 0 {
			return ""
		}
		return fmt.Sprintf("%s; unavailable: %s. An unavailable aggregated API blocks every namespace deletion: fix it or remove it (for metrics-server: `kubectl hacluster addons uninstall metrics-server`), and the namespace goes away", cond.Message, strings.Join(down, ", "))
	}
	return ""
}
