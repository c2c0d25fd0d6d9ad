package addons

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"
)

// Progress reports long steps (output.Progress satisfies it).
type Progress interface {
	Start(format string, args ...any)
	Done()
	Fail()
}

type noProgress struct{}

func (noProgress) Start(string, ...any) {}
func (noProgress) Done()                {}
func (noProgress) Fail()                {}

// Cluster talks to one Kubernetes cluster.
type Cluster struct {
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
	Mapper  meta.ResettableRESTMapper
	// Poll is the interval of every wait (default 250ms).
	Poll time.Duration
}

// NewCluster builds the clients from a REST config. Discovery is cached in
// memory only and reset after CRDs are created.
func NewCluster(cfg *rest.Config) (*Cluster, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 && cfg.RateLimiter == nil {
		// client-go's default (5 requests/s) would make a Calico install
		// (two requests per object per pass) take tens of seconds.
		cfg.QPS, cfg.Burst = 50, 100
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Cluster{
		Client:  cs,
		Dynamic: dyn,
		Mapper:  restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)),
		Poll:    250 * time.Millisecond,
	}, nil
}

func (c *Cluster) poll() time.Duration {
	if c.Poll <= 0 {
		return 250 * time.Millisecond
	}
	return c.Poll
}

// ReadFacts reads what fitting needs from the cluster: the podSubnet of
// kube-system/kubeadm-config (absent on clusters not made by kubeadm).
func (c *Cluster) ReadFacts(ctx context.Context) (Facts, error) {
	cm, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Facts{}, nil
	}
	if err != nil {
		return Facts{}, fmt.Errorf("read kube-system/kubeadm-config: %w", err)
	}
	var cc struct {
		Networking struct {
			PodSubnet string `json:"podSubnet"`
		} `json:"networking"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["ClusterConfiguration"]), &cc); err != nil {
		return Facts{}, fmt.Errorf("kube-system/kubeadm-config: ClusterConfiguration: %w", err)
	}
	return Facts{PodSubnet: cc.Networking.PodSubnet}, nil
}

// mapping finds the resource of an object's kind.
func (c *Cluster) mapping(r Ref) (*meta.RESTMapping, error) {
	gv, err := schema.ParseGroupVersion(r.APIVersion)
	if err != nil {
		return nil, err
	}
	return c.Mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: r.Kind}, gv.Version)
}

func (c *Cluster) resource(m *meta.RESTMapping, ns string) dynamic.ResourceInterface {
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.Dynamic.Resource(m.Resource).Namespace(ns)
	}
	return c.Dynamic.Resource(m.Resource)
}

// applyOne server-side applies u and says what changed: created,
// configured or unchanged.
func (c *Cluster) applyOne(ctx context.Context, m *meta.RESTMapping, u *unstructured.Unstructured, dryRun, force bool) (string, *unstructured.Unstructured, error) {
	ri := c.resource(m, u.GetNamespace())
	cur, err := ri.Get(ctx, u.GetName(), metav1.GetOptions{})
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return "", nil, err
	}
	data, err := json.Marshal(u.Object)
	if err != nil {
		return "", nil, err
	}
	opts := metav1.PatchOptions{FieldManager: FieldManager, Force: &force, FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	res, err := ri.Patch(ctx, u.GetName(), "application/apply-patch+yaml", data, opts)
	if err != nil {
		if apierrors.IsConflict(err) && !force {
			return "", nil, fmt.Errorf("%w (another field manager owns these fields: pass --force-conflicts to take them over)", err)
		}
		return "", nil, err
	}
	switch {
	case !exists:
		return "created", res, nil
	case !dryRun && res.GetResourceVersion() == cur.GetResourceVersion():
		return "unchanged", res, nil
	case dryRun && sameContent(cur, res):
		return "unchanged", res, nil
	}
	return "configured", res, nil
}

// sameContent compares two versions of an object without the metadata the
// server maintains.
func sameContent(a, b *unstructured.Unstructured) bool {
	strip := func(u *unstructured.Unstructured) map[string]any {
		o := u.DeepCopy().Object
		unstructured.RemoveNestedField(o, "metadata", "managedFields")
		unstructured.RemoveNestedField(o, "metadata", "resourceVersion")
		unstructured.RemoveNestedField(o, "metadata", "generation")
		unstructured.RemoveNestedField(o, "status")
		return o
	}
	x, _ := json.Marshal(strip(a))
	y, _ := json.Marshal(strip(b))
	return string(x) == string(y)
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// waitEstablished waits until every CRD named is Established.
func (c *Cluster) waitEstablished(ctx context.Context, names []string) error {
	for _, n := range names {
		for {
			u, err := c.Dynamic.Resource(crdGVR).Get(ctx, n, metav1.GetOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			if err == nil {
				conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
				established := false
				for _, ci := range conds {
					cm, _ := ci.(map[string]any)
					if cm["type"] == "Established" && cm["status"] == "True" {
						established = true
					}
					if cm["type"] == "NamesAccepted" && cm["status"] == "False" {
						return fmt.Errorf("CRD %s: names not accepted: %v", n, cm["message"])
					}
				}
				if established {
					break
				}
			}
			if err := sleep(ctx, c.poll()); err != nil {
				return fmt.Errorf("CRD %s is not Established: %w", n, err)
			}
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return errors.New("timed out")
		}
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
