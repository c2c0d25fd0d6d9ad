package addons

import (
	"fmt"
	"net"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Labels and annotations hacluster puts on every object it applies, so that
// status and uninstall find them again.
const (
	LabelAddon        = "hacluster.io/addon"
	AnnotationVersion = "hacluster.io/addon-version"
	FieldManager      = "kubectl-hacluster"
)

// Facts are what fitting needs to know about the cluster.
type Facts struct {
	// PodSubnet is networking.podSubnet of kube-system/kubeadm-config
	// ("" when the cluster has none).
	PodSubnet string
}

// FitOptions are the user's choices that change manifests.
type FitOptions struct {
	// PodCIDR overrides Calico's IPv4 pool (instead of the podSubnet).
	PodCIDR string
	// KubeletInsecureTLS makes metrics-server skip kubelet certificate checks.
	KubeletInsecureTLS bool
	// Admin adds a cluster-admin login ServiceAccount to a UI add-on.
	Admin bool
}

type fitter func(a Addon, objs []*unstructured.Unstructured, f Facts, o FitOptions) ([]*unstructured.Unstructured, []string, error)

var fitters = map[string]fitter{
	"calico":         fitCalico,
	"metrics-server": fitMetricsServer,
	"headlamp":       fitUI,
	"dashboard":      fitUI,
}

// Fit adapts an add-on's objects to the cluster and the options, then
// labels them. It returns the objects to apply and notes for the user.
func Fit(a Addon, objs []*unstructured.Unstructured, f Facts, o FitOptions) ([]*unstructured.Unstructured, []string, error) {
	fn, ok := fitters[a.Name]
	if !ok {
		return nil, nil, fmt.Errorf("no fitting rules for add-on %q", a.Name)
	}
	objs, notes, err := fn(a, objs, f, o)
	if err != nil {
		return nil, nil, err
	}
	for _, u := range objs {
		l := u.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		l[LabelAddon] = a.Name
		u.SetLabels(l)
		an := u.GetAnnotations()
		if an == nil {
			an = map[string]string{}
		}
		an[AnnotationVersion] = a.Version
		u.SetAnnotations(an)
	}
	return objs, notes, nil
}

// find returns the first object of kind with name (any namespace).
func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, u := range objs {
		if u.GetKind() == kind && u.GetName() == name {
			return u
		}
	}
	return nil
}

// container returns the container called name of a workload's pod
// template, with a function that writes it back.
func container(u *unstructured.Unstructured, name string) (map[string]any, func() error, error) {
	cs, _, err := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	if err != nil {
		return nil, nil, err
	}
	for i, c := range cs {
		m, ok := c.(map[string]any)
		if ok && m["name"] == name {
			save := func() error {
				cs[i] = m
				return unstructured.SetNestedSlice(u.Object, cs, "spec", "template", "spec", "containers")
			}
			return m, save, nil
		}
	}
	return nil, nil, fmt.Errorf("%s %s has no container %q", u.GetKind(), u.GetName(), name)
}

const calicoPoolEnv = "CALICO_IPV4POOL_CIDR"

// fitCalico makes Calico's IPv4 pool the cluster's pod subnet: a manifest
// that sets another pool is refused, one that leaves it unset gets it set.
func fitCalico(_ Addon, objs []*unstructured.Unstructured, f Facts, o FitOptions) ([]*unstructured.Unstructured, []string, error) {
	ds := find(objs, "DaemonSet", "calico-node")
	if ds == nil {
		return nil, nil, fmt.Errorf("calico: the manifest has no DaemonSet calico-node; is it Calico's calico.yaml?")
	}
	c, save, err := container(ds, "calico-node")
	if err != nil {
		return nil, nil, fmt.Errorf("calico: %w", err)
	}
	env, _ := c["env"].([]any)
	idx, inManifest := -1, ""
	for i, e := range env {
		if m, ok := e.(map[string]any); ok && m["name"] == calicoPoolEnv {
			idx = i
			inManifest, _ = m["value"].(string)
		}
	}
	cluster, err := ipv4CIDR(f.PodSubnet)
	if err != nil {
		return nil, nil, fmt.Errorf("calico: kubeadm-config podSubnet %q: %w", f.PodSubnet, err)
	}
	var want string
	var notes []string
	switch {
	case o.PodCIDR != "":
		want, err = ipv4CIDR(o.PodCIDR)
		if err != nil || want == "" {
			return nil, nil, fmt.Errorf("--pod-cidr %q is not an IPv4 CIDR", o.PodCIDR)
		}
		if cluster != "" && want != cluster {
			notes = append(notes, fmt.Sprintf("calico: IP pool %s from --pod-cidr differs from the cluster's podSubnet %s (your explicit choice)", want, cluster))
		} else {
			notes = append(notes, fmt.Sprintf("calico: IP pool %s from --pod-cidr", want))
		}
	case cluster == "":
		return nil, nil, fmt.Errorf("calico: cannot tell the cluster's pod subnet (kube-system/kubeadm-config has no networking.podSubnet); pass --pod-cidr with the CIDR kube-controller-manager uses (--cluster-cidr)")
	case inManifest != "":
		m, err := ipv4CIDR(inManifest)
		if err != nil {
			return nil, nil, fmt.Errorf("calico: the manifest's %s %q: %w", calicoPoolEnv, inManifest, err)
		}
		if m != cluster {
			return nil, nil, fmt.Errorf("calico: the manifest's %s is %s but the cluster's podSubnet (kubeadm-config) is %s; Pods would get addresses outside the pod network. Fix the manifest, or pass --pod-cidr to choose explicitly", calicoPoolEnv, m, cluster)
		}
		want = cluster
		notes = append(notes, fmt.Sprintf("calico: IP pool %s matches the cluster's podSubnet", want))
	default:
		want = cluster
		notes = append(notes, fmt.Sprintf("calico: IP pool %s taken from the cluster's podSubnet (kubeadm-config)", want))
	}
	if idx >= 0 {
		env[idx] = map[string]any{"name": calicoPoolEnv, "value": want}
	} else {
		env = append(env, map[string]any{"name": calicoPoolEnv, "value": want})
	}
	c["env"] = env
	return objs, notes, save()
}

// ipv4CIDR returns the canonical IPv4 CIDR of a podSubnet-style value
// ("10.244.0.0/16" or a dual-stack "10.244.0.0/16,fd00::/56"); "" for "".
func ipv4CIDR(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", nil
	}
	for _, part := range strings.Split(s, ",") {
		_, n, err := net.ParseCIDR(strings.TrimSpace(part))
		if err != nil {
			return "", fmt.Errorf("not a CIDR")
		}
		if n.IP.To4() != nil {
			return n.String(), nil
		}
	}
	return "", fmt.Errorf("no IPv4 CIDR in it")
}

const insecureTLSFlag = "--kubelet-insecure-tls"

// fitMetricsServer keeps kubelet TLS verification on unless asked.
func fitMetricsServer(_ Addon, objs []*unstructured.Unstructured, _ Facts, o FitOptions) ([]*unstructured.Unstructured, []string, error) {
	d := find(objs, "Deployment", "metrics-server")
	if d == nil {
		return nil, nil, fmt.Errorf("metrics-server: the manifest has no Deployment metrics-server; is it metrics-server's components.yaml?")
	}
	c, save, err := container(d, "metrics-server")
	if err != nil {
		return nil, nil, fmt.Errorf("metrics-server: %w", err)
	}
	args, _ := c["args"].([]any)
	kept := make([]any, 0, len(args)+1)
	removed := false
	for _, a := range args {
		if s, ok := a.(string); ok && (s == insecureTLSFlag || strings.HasPrefix(s, insecureTLSFlag+"=")) {
			removed = true
			continue
		}
		kept = append(kept, a)
	}
	var notes []string
	if o.KubeletInsecureTLS {
		kept = append(kept, insecureTLSFlag)
		notes = append(notes, "metrics-server: --kubelet-insecure-tls set as asked: kubelet certificates are NOT verified")
	} else {
		if removed {
			notes = append(notes, "metrics-server: removed --kubelet-insecure-tls from the manifest (pass --kubelet-insecure-tls to keep it)")
		}
		notes = append(notes, "metrics-server: verifies kubelet serving certificates; kubelets need certificates signed by the cluster CA (serverTLSBootstrap: true and approved kubelet-serving CSRs)")
	}
	c["args"] = kept
	return objs, notes, save()
}

// ViewerAccount and AdminAccount name the login ServiceAccounts hacluster
// adds to a UI add-on.
func ViewerAccount(addon string) string { return "hacluster-" + addon + "-viewer" }

// AdminAccount is the cluster-admin login ServiceAccount (only with --admin).
func AdminAccount(addon string) string { return "hacluster-" + addon + "-admin" }

// fitUI drops long-lived token Secrets and adds a read-only login
// ServiceAccount (and a cluster-admin one only when asked).
func fitUI(a Addon, objs []*unstructured.Unstructured, _ Facts, o FitOptions) ([]*unstructured.Unstructured, []string, error) {
	if a.UI == nil {
		return nil, nil, fmt.Errorf("%s: the catalog entry has no ui section", a.Name)
	}
	if find(objs, "Service", a.UI.Service) == nil {
		return nil, nil, fmt.Errorf("%s: the manifest has no Service %s; is it the %s manifest?", a.Name, a.UI.Service, a.Name)
	}
	var notes []string
	kept := objs[:0:0]
	for _, u := range objs {
		if u.GetKind() == "Secret" && u.GetAPIVersion() == "v1" {
			if t, _, _ := unstructured.NestedString(u.Object, "type"); t == "kubernetes.io/service-account-token" {
				notes = append(notes, fmt.Sprintf("%s: left out Secret %s (a long-lived token); use `kubectl hacluster addons token %s` for a short-lived one", a.Name, u.GetName(), a.Name))
				continue
			}
		}
		kept = append(kept, u)
	}
	if a.Name == "headlamp" {
		// Upstream's manifest runs the :latest image: pin it to the version
		// the catalog names, so re-installs do not drift.
		if d := find(kept, "Deployment", "headlamp"); d != nil {
			c, save, err := container(d, "headlamp")
			if err != nil {
				return nil, nil, fmt.Errorf("headlamp: %w", err)
			}
			img, _ := c["image"].(string)
			if repo, ok := strings.CutSuffix(img, ":latest"); ok || (img != "" && !strings.Contains(img[strings.LastIndex(img, "/")+1:], ":") && !strings.Contains(img, "@")) {
				if !ok {
					repo = img
				}
				c["image"] = repo + ":" + a.Version
				if err := save(); err != nil {
					return nil, nil, err
				}
				notes = append(notes, fmt.Sprintf("headlamp: image %s pinned to %s", img, c["image"]))
			}
		}
	}
	ns := a.UI.Namespace
	viewer := ViewerAccount(a.Name)
	kept = append(kept,
		obj("v1", "ServiceAccount", ns, viewer, nil),
		obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", viewer, map[string]any{
			"rules": []any{
				map[string]any{"apiGroups": []any{""}, "resources": []any{"nodes", "namespaces", "persistentvolumes"}, "verbs": []any{"get", "list", "watch"}},
				map[string]any{"apiGroups": []any{"storage.k8s.io"}, "resources": []any{"storageclasses"}, "verbs": []any{"get", "list", "watch"}},
				map[string]any{"apiGroups": []any{"apiextensions.k8s.io"}, "resources": []any{"customresourcedefinitions"}, "verbs": []any{"get", "list", "watch"}},
				map[string]any{"apiGroups": []any{"metrics.k8s.io"}, "resources": []any{"nodes", "pods"}, "verbs": []any{"get", "list"}},
			},
		}),
		binding(viewer+"-view", "view", ns, viewer),
		binding(viewer+"-cluster", viewer, ns, viewer),
	)
	notes = append(notes, fmt.Sprintf("%s: login ServiceAccount %s/%s is read-only (ClusterRole view, no Secrets)", a.Name, ns, viewer))
	if o.Admin {
		admin := AdminAccount(a.Name)
		kept = append(kept, obj("v1", "ServiceAccount", ns, admin, nil), binding(admin, "cluster-admin", ns, admin))
		notes = append(notes, fmt.Sprintf("%s: login ServiceAccount %s/%s is cluster-admin, as asked with --admin", a.Name, ns, admin))
	}
	return kept, notes, nil
}

func obj(apiVersion, kind, ns, name string, fields map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	for k, v := range fields {
		u.Object[k] = v
	}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

func binding(name, clusterRole, ns, sa string) *unstructured.Unstructured {
	return obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", name, map[string]any{
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": clusterRole},
		"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": sa, "namespace": ns}},
	})
}
