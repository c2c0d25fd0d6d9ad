package proxymode

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Check is one pre-flight check of `proxymode set`.
type Check struct {
	Name    string `json:"name"`
	Status  string `json:"status"` // ok, warning, error
	Message string `json:"message"`
}

// Check statuses.
const (
	CheckOK      = "ok"
	CheckWarning = "warning"
	CheckError   = "error"
)

// Plan is what `proxymode set` will do (and, after Apply, did).
type Plan struct {
	From          Mode    `json:"from"`
	FromValue     string  `json:"fromValue"`
	To            Mode    `json:"to"`
	ToValue       string  `json:"toValue"`
	Rollback      bool    `json:"rollback"`
	ServerVersion string  `json:"serverVersion,omitempty"`
	Checks        []Check `json:"checks"`
	Diff          string  `json:"diff"`
	Changed       bool    `json:"changed"`
	DryRun        bool    `json:"dryRun"`
	Applied       bool    `json:"applied"`
	RestartedAt   string  `json:"restartedAt,omitempty"`
	// Pods lists the kube-proxy Pods after the restart with the mode each reports.
	Pods []PodMode `json:"pods,omitempty"`
	// newConfig is the config.conf to write.
	newConfig string
}

// PodMode is the mode one kube-proxy Pod reports after a restart.
type PodMode struct {
	Node string `json:"node"`
	Pod  string `json:"pod"`
	Mode Mode   `json:"mode,omitempty"`
}

// Blocked returns the failed checks' messages.
func (p *Plan) Blocked() []string {
	var out []string
	for _, c := range p.Checks {
		if c.Status == CheckError {
			out = append(out, c.Message)
		}
	}
	return out
}

// PlanSet reads the cluster and prepares switching kube-proxy to mode to
// (or, with rollback, back to the mode recorded by the last set).
func PlanSet(ctx context.Context, c kubernetes.Interface, to Mode, rollback bool) (*Plan, error) {
	cm, err := c.CoreV1().ConfigMaps(Namespace).Get(ctx, ConfigMapName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("ConfigMap %s/%s not found: this cluster's kube-proxy is not managed the kubeadm way (or is replaced)", Namespace, ConfigMapName)
	}
	if err != nil {
		return nil, fmt.Errorf("read ConfigMap %s/%s: %w", Namespace, ConfigMapName, err)
	}
	raw, ok := cm.Data[ConfigKey]
	if !ok {
		return nil, fmt.Errorf("ConfigMap %s/%s has no %s key", Namespace, ConfigMapName, ConfigKey)
	}
	cfg, err := ParseConfig(raw)
	if err != nil {
		return nil, err
	}
	p := &Plan{From: Effective(cfg.Mode), FromValue: cfg.Mode, Rollback: rollback, Checks: []Check{}}
	toValue := string(to)
	if rollback {
		prev, ok := cm.Annotations[PreviousModeAnnotation]
		if !ok {
			return nil, fmt.Errorf("nothing to roll back: ConfigMap %s/%s has no %s annotation (no earlier `proxymode set`)", Namespace, ConfigMapName, PreviousModeAnnotation)
		}
		toValue = prev
	}
	p.ToValue, p.To = toValue, Effective(toValue)
	add := func(name, status, format string, args ...any) {
		p.Checks = append(p.Checks, Check{Name: name, Status: status, Message: fmt.Sprintf(format, args...)})
	}

	if v, err := c.Discovery().ServerVersion(); err == nil && v != nil {
		p.ServerVersion = v.GitVersion
	}
	if r := findReplacement(ctx, c); r != "" {
		add("replacement", CheckError, "Services are implemented by %s, not kube-proxy: changing kube-proxy's mode has no effect", r)
	}
	if ds, err := c.AppsV1().DaemonSets(Namespace).Get(ctx, DaemonSetName, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		add("daemonset", CheckError, "DaemonSet %s/%s not found: nothing to restart", Namespace, DaemonSetName)
	} else if err != nil {
		return nil, fmt.Errorf("read DaemonSet %s/%s: %w", Namespace, DaemonSetName, err)
	} else if ds.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType {
		add("daemonset", CheckError, "DaemonSet %s/%s uses updateStrategy OnDelete: a restart replaces no Pod; switch it to RollingUpdate or delete the Pods yourself", Namespace, DaemonSetName)
	} else {
		add("daemonset", CheckOK, "DaemonSet %s/%s will be restarted Pod by Pod", Namespace, DaemonSetName)
	}
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	kernels := map[string][]string{}
	for _, n := range nodes.Items {
		k := n.Status.NodeInfo.KernelVersion
		if k == "" {
			k = "unknown"
		}
		kernels[k] = append(kernels[k], n.Name)
	}
	switch p.To {
	case NFTables:
		switch {
		case p.ServerVersion == "":
			add("version", CheckWarning, "server version unknown: nftables needs Kubernetes 1.31 or newer")
		case !AtLeast(p.ServerVersion, 1, 31):
			add("version", CheckError, "nftables mode needs Kubernetes 1.31 or newer; this cluster runs %s", p.ServerVersion)
		case !AtLeast(p.ServerVersion, 1, 33):
			add("version", CheckWarning, "nftables is beta in %s (GA in 1.33)", p.ServerVersion)
		default:
			add("version", CheckOK, "%s supports nftables mode (GA since 1.33)", p.ServerVersion)
		}
		for k, ns := range kernels {
			if k != "unknown" && !AtLeast(k, 5, 13) {
				add("kernel", CheckError, "nftables mode needs Linux 5.13+; nodes %s run %s", strings.Join(sorted(ns), ","), k)
			}
		}
	case IPVS:
		add("modules", CheckWarning, "every node needs the kernel modules ip_vs, ip_vs_rr, ip_vs_wrr, ip_vs_sh and nf_conntrack plus ipset; these cannot be seen through the API: check with `lsmod | grep ip_vs` on each node (kube-proxy exits if they are missing)")
		if cfg.IPVS.StrictARP {
			add("strictARP", CheckOK, "ipvs.strictARP is true (MetalLB L2 / kube-vip ARP mode work)")
		} else {
			add("strictARP", CheckWarning, "ipvs.strictARP is false: MetalLB in L2 mode and kube-vip ARP mode need it true (edit ipvs.strictARP in the ConfigMap)")
		}
		if p.ServerVersion != "" && AtLeast(p.ServerVersion, 1, 35) {
			add("deprecation", CheckWarning, "ipvs mode is deprecated since 1.35; consider nftables")
		}
	case IPTables:
		add("version", CheckOK, "iptables mode works on every supported version")
	default:
		add("mode", CheckError, "unsupported mode %q", toValue)
	}
	for _, n := range nodes.Items {
		if n.Status.NodeInfo.OperatingSystem == "windows" {
			add("windows", CheckWarning, "node %s runs Windows: its kube-proxy uses kernelspace mode and ignores this setting", n.Name)
		}
	}

	newRaw, err := SetMode(raw, Mode(toValue))
	if err != nil {
		return nil, err
	}
	p.newConfig = newRaw
	p.Diff = Diff(ConfigMapName+"/"+ConfigKey, raw, newRaw)
	p.Changed = p.Diff != ""
	return p, nil
}

func sorted(l []string) []string { sort.Strings(l); return l }

// ApplyOptions tunes Apply.
type ApplyOptions struct {
	Timeout  time.Duration // waiting for every Pod; default 5m
	Poll     time.Duration // default 2s
	Endpoint EndpointFunc  // optional: also accept /proxyMode as a Pod's report
	Progress func(msg string)
	Now      func() time.Time
}

// Apply writes the ConfigMap (recording the previous mode), restarts the
// kube-proxy DaemonSet like `kubectl rollout restart` and waits until every
// kube-proxy Pod of the new rollout reports the target mode.
func Apply(ctx context.Context, c kubernetes.Interface, p *Plan, o ApplyOptions) error {
	if bl := p.Blocked(); len(bl) > 0 {
		return fmt.Errorf("refusing to change the proxy mode: %s", strings.Join(bl, "; "))
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Poll == 0 {
		o.Poll = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	say := func(format string, args ...any) {
		if o.Progress != nil {
			o.Progress(fmt.Sprintf(format, args...))
		}
	}
	if p.Changed {
		say("updating ConfigMap %s/%s: mode %s -> %s", Namespace, ConfigMapName, display(p.FromValue), display(p.ToValue))
		patch := map[string]any{
			"metadata": map[string]any{"annotations": map[string]string{PreviousModeAnnotation: p.FromValue}},
			"data":     map[string]string{ConfigKey: p.newConfig},
		}
		b, _ := json.Marshal(patch)
		if _, err := c.CoreV1().ConfigMaps(Namespace).Patch(ctx, ConfigMapName, types.MergePatchType, b, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("update ConfigMap %s/%s: %w", Namespace, ConfigMapName, err)
		}
	}
	p.Applied = true
	stamp := o.Now().UTC().Format(time.RFC3339)
	say("restarting DaemonSet %s/%s", Namespace, DaemonSetName)
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`, RestartedAtAnnotation, stamp)
	ds, err := c.AppsV1().DaemonSets(Namespace).Patch(ctx, DaemonSetName, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("restart DaemonSet %s/%s: %w", Namespace, DaemonSetName, err)
	}
	p.RestartedAt = stamp
	return waitForMode(ctx, c, p, ds.Generation, stamp, o, say)
}

func display(v string) string {
	if v == "" {
		return `"" (iptables)`
	}
	return v
}

func waitForMode(ctx context.Context, c kubernetes.Interface, p *Plan, gen int64, stamp string, o ApplyOptions, say func(string, ...any)) error {
	deadline := time.Now().Add(o.Timeout)
	last := ""
	for {
		ds, err := c.AppsV1().DaemonSets(Namespace).Get(ctx, DaemonSetName, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("read DaemonSet %s/%s: %w", Namespace, DaemonSetName, err)
		}
		desired := int(ds.Status.DesiredNumberScheduled)
		pods, err := c.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{LabelSelector: PodSelector})
		if err != nil {
			return fmt.Errorf("list kube-proxy pods: %w", err)
		}
		var fresh []PodMode
		var waiting []string
		old := 0
		for i := range pods.Items {
			pod := &pods.Items[i]
			if pod.DeletionTimestamp != nil {
				continue
			}
			if pod.Annotations[RestartedAtAnnotation] != stamp {
				old++
				continue
			}
			pm := PodMode{Node: pod.Spec.NodeName, Pod: pod.Name}
			if pod.Status.Phase == corev1.PodRunning {
				var ns NodeStatus
				readPodMode(ctx, c, pod, 256<<10, &ns)
				pm.Mode = ns.FromLogs
				if o.Endpoint != nil && pm.Mode != p.To {
					if s, err := o.Endpoint(ctx, pod.Spec.NodeName, DefaultMetricsPort); err == nil {
						pm.Mode = Mode(strings.TrimSpace(s))
					}
				}
			}
			if pm.Mode != p.To {
				w := pod.Spec.NodeName
				if pm.Mode != "" {
					w += " (" + string(pm.Mode) + ")"
				}
				waiting = append(waiting, w)
			}
			fresh = append(fresh, pm)
		}
		sort.Slice(fresh, func(i, j int) bool { return fresh[i].Node < fresh[j].Node })
		p.Pods = fresh
		good := len(fresh) - len(waiting)
		rolled := ds.Status.ObservedGeneration >= gen && int(ds.Status.UpdatedNumberScheduled) >= desired
		msg := fmt.Sprintf("%d/%d kube-proxy Pods restarted and report %s", good, desired, p.To)
		if old > 0 {
			msg += fmt.Sprintf(", %d old Pod(s) still running", old)
		}
		if msg != last {
			say("%s", msg)
			last = msg
		}
		if rolled && old == 0 && len(waiting) == 0 && good >= desired {
			return nil
		}
		if time.Now().After(deadline) {
			sort.Strings(waiting)
			detail := ""
			if len(waiting) > 0 {
				detail = "; not yet: " + strings.Join(waiting, ", ")
			}
			return fmt.Errorf("timed out after %s: %d/%d kube-proxy Pods report %s, %d old Pod(s) left%s; the ConfigMap is changed: check `kubectl -n %s get pods -l %s`, or undo with `kubectl hacluster proxymode set --rollback`",
				o.Timeout, good, desired, p.To, old, detail, Namespace, PodSelector)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(o.Poll):
		}
	}
}
