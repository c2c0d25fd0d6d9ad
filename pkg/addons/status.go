package addons

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// WorkloadStatus is the readiness of one Deployment or DaemonSet.
type WorkloadStatus struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Ready and Desired count available replicas (Deployment) or ready
	// pods (DaemonSet); Nodes is the cluster's node count (DaemonSet only).
	Ready   int32  `json:"ready"`
	Desired int32  `json:"desired"`
	Nodes   int    `json:"nodes,omitempty"`
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

// APIServiceStatus is the Available condition of an aggregated API.
type APIServiceStatus struct {
	Name      string `json:"name"`
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
	Message   string `json:"message,omitempty"`
}

// AddonStatus is what `addons status` reports for one add-on.
type AddonStatus struct {
	Name           string `json:"name"`
	CatalogVersion string `json:"catalogVersion"`
	Installed      bool   `json:"installed"`
	// Version is the installed version ("" when not installed).
	Version string `json:"version,omitempty"`
	// State is NotInstalled, Ready or NotReady.
	State string `json:"state"`
	// Objects counts the objects in the inventory, Missing lists those
	// that no longer exist.
	Objects     int                `json:"objects"`
	Missing     []string           `json:"missing,omitempty"`
	Workloads   []WorkloadStatus   `json:"workloads,omitempty"`
	APIServices []APIServiceStatus `json:"apiServices,omitempty"`
	Access      string             `json:"access,omitempty"`
	// Note carries the catalog's note (for example "archived upstream").
	Note string `json:"note,omitempty"`
}

// Status reports the add-ons named (all of the catalog when none).
func (c *Cluster) Status(ctx context.Context, cat *Catalog, names []string) ([]AddonStatus, error) {
	if len(names) == 0 {
		names = cat.Names()
	}
	nodes, err := c.nodeCount(ctx)
	if err != nil {
		return nil, err
	}
	var out []AddonStatus
	for _, n := range names {
		a, err := cat.Get(n)
		if err != nil {
			return nil, err
		}
		s := AddonStatus{Name: a.Name, CatalogVersion: a.Version, State: "NotInstalled", Note: a.Note}
		inv, err := c.ReadInventory(ctx, a.Name)
		if err != nil {
			return nil, err
		}
		if inv == nil {
			out = append(out, s)
			continue
		}
		s.Installed, s.Version, s.Objects, s.State = true, inv.Version, len(inv.Objects), "Ready"
		s.Access = a.AccessCommand()
		for _, e := range inv.Objects {
			switch {
			case e.Kind == "Deployment" || e.Kind == "DaemonSet":
				w, err := c.workload(ctx, e.Ref, nodes)
				if err != nil {
					return nil, err
				}
				if w.Message == "missing" {
					s.Missing = append(s.Missing, e.Ref.String())
				}
				s.Workloads = append(s.Workloads, w)
				if !w.OK {
					s.State = "NotReady"
				}
			case e.Kind == "APIService":
				as, err := c.apiService(ctx, e.Name)
				if err != nil {
					return nil, err
				}
				s.APIServices = append(s.APIServices, as)
				if !as.Available {
					s.State = "NotReady"
				}
			default:
				ok, err := c.exists(ctx, e.Ref)
				if err != nil {
					return nil, err
				}
				if !ok {
					s.Missing = append(s.Missing, e.Ref.String())
					s.State = "NotReady"
				}
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func (c *Cluster) nodeCount(ctx context.Context) (int, error) {
	l, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, fmt.Errorf("list nodes: %w", err)
	}
	return len(l.Items), nil
}

func (c *Cluster) exists(ctx context.Context, r Ref) (bool, error) {
	m, err := c.mapping(r)
	if err != nil {
		return false, nil // its kind (a CRD) is gone, so is the object
	}
	_, err = c.resource(m, r.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// workload reads the readiness of a Deployment or DaemonSet. A DaemonSet
// is OK only when it runs ready on every node of the cluster.
func (c *Cluster) workload(ctx context.Context, r Ref, nodes int) (WorkloadStatus, error) {
	w := WorkloadStatus{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
	switch r.Kind {
	case "Deployment":
		d, err := c.Client.AppsV1().Deployments(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			w.Message = "missing"
			return w, nil
		}
		if err != nil {
			return w, err
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		w.Ready, w.Desired = d.Status.AvailableReplicas, want
		w.OK = d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == want && d.Status.AvailableReplicas == want && d.Status.Replicas == want
		w.Message = fmt.Sprintf("%d/%d available", w.Ready, w.Desired)
		if d.Status.ObservedGeneration < d.Generation {
			w.Message += ", rollout not yet observed"
		}
	case "DaemonSet":
		ds, err := c.Client.AppsV1().DaemonSets(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			w.Message = "missing"
			return w, nil
		}
		if err != nil {
			return w, err
		}
		st := ds.Status
		w.Ready, w.Desired, w.Nodes = st.NumberReady, st.DesiredNumberScheduled, nodes
		w.OK = st.ObservedGeneration >= ds.Generation && st.DesiredNumberScheduled == int32(nodes) && nodes > 0 &&
			st.NumberReady == st.DesiredNumberScheduled && st.UpdatedNumberScheduled == st.DesiredNumberScheduled
		w.Message = fmt.Sprintf("%d/%d ready, scheduled on %d of %d nodes", st.NumberReady, st.DesiredNumberScheduled, st.DesiredNumberScheduled, nodes)
	}
	return w, nil
}

var apiServiceGVR = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

func (c *Cluster) apiService(ctx context.Context, name string) (APIServiceStatus, error) {
	s := APIServiceStatus{Name: name}
	u, err := c.Dynamic.Resource(apiServiceGVR).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		s.Reason, s.Message = "Missing", "the APIService does not exist"
		return s, nil
	}
	if err != nil {
		return s, err
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	s.Reason = "NoStatus"
	for _, ci := range conds {
		cm, _ := ci.(map[string]any)
		if cm["type"] != "Available" {
			continue
		}
		s.Available = cm["status"] == "True"
		s.Reason, _ = cm["reason"].(string)
		s.Message, _ = cm["message"].(string)
	}
	return s, nil
}

// WaitReady waits until every Deployment and DaemonSet of the inventory is
// ready. APIServices are not waited for: `status` reports them.
func (c *Cluster) WaitReady(ctx context.Context, inv *Inventory, timeout time.Duration, p Progress) error {
	if p == nil {
		p = noProgress{}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, e := range inv.Objects {
		if e.Kind != "Deployment" && e.Kind != "DaemonSet" {
			continue
		}
		p.Start("waiting for %s %s/%s to be ready", strings.ToLower(e.Kind), e.Namespace, e.Name)
		for {
			nodes, err := c.nodeCount(ctx)
			if err != nil {
				p.Fail()
				return err
			}
			w, err := c.workload(ctx, e.Ref, nodes)
			if err != nil {
				p.Fail()
				return err
			}
			if w.OK {
				break
			}
			if err := sleep(ctx, c.poll()); err != nil {
				p.Fail()
				return fmt.Errorf("%s %s/%s not ready after %s (%s): %w", strings.ToLower(e.Kind), e.Namespace, e.Name, timeout, w.Message, err)
			}
		}
	}
	p.Done()
	return nil
}
