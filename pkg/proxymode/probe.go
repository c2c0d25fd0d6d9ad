package proxymode

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Labels on probe Pods, so that they can always be found and removed.
const (
	ProbeAppLabel   = "app.kubernetes.io/name"
	ProbeAppValue   = "hacluster-proxymode-probe"
	ProbeRunLabel   = "hacluster.io/probe-run"
	probeManagedBy  = "app.kubernetes.io/managed-by"
	probeManagedVal = "kubectl-hacluster"
)

// ProbeOptions configures Probe.
type ProbeOptions struct {
	Image     string        // image with sh and wget or curl (required)
	Namespace string        // default kube-system
	Port      int           // default 10249
	Timeout   time.Duration // per run, default 90s
	Poll      time.Duration // default 1s
	// Progress, if set, is told how many nodes have answered.
	Progress func(done, total int)
}

// ProbeResult is one node's answer.
type ProbeResult struct {
	Node  string `json:"node"`
	Pod   string `json:"pod"`
	Mode  Mode   `json:"mode,omitempty"`
	Error string `json:"error,omitempty"`
}

// ProbeCommand is what a probe Pod runs on the node's network.
func ProbeCommand(port int) []string {
	url := fmt.Sprintf("http://127.0.0.1:%d/proxyMode", port)
	return []string{"sh", "-c", fmt.Sprintf("wget -q -T 3 -O - %[1]s 2>/dev/null || curl -fsS -m 3 %[1]s", url)}
}

// Probe runs a short-lived host-network Pod on each node that reads
// 127.0.0.1:<port>/proxyMode. The Pods are deleted before Probe returns,
// also when ctx is cancelled (Ctrl-C) or an error occurs.
func Probe(ctx context.Context, c kubernetes.Interface, nodes []string, o ProbeOptions) (results []ProbeResult, err error) {
	if o.Image == "" {
		return nil, fmt.Errorf("--image is required with --probe: an image with sh and wget or curl that your nodes can pull")
	}
	if o.Namespace == "" {
		o.Namespace = Namespace
	}
	if o.Port == 0 {
		o.Port = DefaultMetricsPort
	}
	if o.Timeout == 0 {
		o.Timeout = 90 * time.Second
	}
	if o.Poll == 0 {
		o.Poll = time.Second
	}
	run := randomID()
	sel := ProbeRunLabel + "=" + run
	defer func() {
		// Always clean up, with a context that survives the caller's cancellation.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		zero := int64(0)
		derr := c.CoreV1().Pods(o.Namespace).DeleteCollection(cctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{LabelSelector: sel})
		if derr != nil && err == nil {
			err = fmt.Errorf("delete probe pods (label %s) in %s: %w", sel, o.Namespace, derr)
		}
	}()

	results = make([]ProbeResult, len(nodes))
	for i, n := range nodes {
		pod := probePod(n, run, o)
		created, cerr := c.CoreV1().Pods(o.Namespace).Create(ctx, pod, metav1.CreateOptions{})
		if cerr != nil {
			return nil, fmt.Errorf("create probe pod on node %s: %w", n, cerr)
		}
		results[i] = ProbeResult{Node: n, Pod: created.Name}
	}

	deadline := time.Now().Add(o.Timeout)
	done := make([]bool, len(nodes))
	remaining := len(nodes)
	for remaining > 0 {
		for i := range results {
			if done[i] {
				continue
			}
			p, gerr := c.CoreV1().Pods(o.Namespace).Get(ctx, results[i].Pod, metav1.GetOptions{})
			if gerr != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				continue
			}
			if why, failed := ImagePullFailure(p); failed {
				// The node cannot pull the image: it will not get better by waiting.
				results[i].Error = why
				done[i] = true
				remaining--
				continue
			}
			if p.Status.Phase == corev1.PodPending {
				results[i].Error = "pending: " + pendingWhy(p)
				continue
			}
			b, lerr := c.CoreV1().Pods(o.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
			out := strings.ToLower(strings.TrimSpace(string(b)))
			switch {
			case lerr == nil && isMode(out):
				results[i].Mode, results[i].Error = Mode(out), ""
				done[i] = true
			case p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded:
				results[i].Error = fmt.Sprintf("probe %s: %q", strings.ToLower(string(p.Status.Phase)), firstLine(string(b)))
				if lerr != nil {
					results[i].Error = "probe finished but its log is unreadable: " + apiReason(b, lerr)
				}
				if p.Status.Phase == corev1.PodFailed && lerr == nil {
					results[i].Error = fmt.Sprintf("nothing answered on 127.0.0.1:%d/proxyMode (kube-proxy not running, or metrics bound elsewhere): %q", o.Port, firstLine(string(b)))
				}
				done[i] = true
			}
			if done[i] {
				remaining--
			}
		}
		if o.Progress != nil {
			o.Progress(len(nodes)-remaining, len(nodes))
		}
		if remaining == 0 {
			break
		}
		if time.Now().After(deadline) {
			for i := range results {
				if !done[i] && results[i].Error == "" {
					results[i].Error = "no answer within " + o.Timeout.String()
				} else if !done[i] {
					results[i].Error = "no answer within " + o.Timeout.String() + " (" + results[i].Error + ")"
				}
			}
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(o.Poll):
		}
	}
	return results, nil
}

// pullFailures are the container waiting reasons of an image the node
// cannot pull or run (kubelet's images.ErrImagePull, ImagePullBackOff, ...).
var pullFailures = map[string]bool{"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true,
	"ErrImageNeverPull": true, "RegistryUnavailable": true, "ErrImageInspect": true}

// ImagePullFailure reports whether a Pod's container waits on an image its
// node cannot pull, and why: "image probe.example/x:1 cannot be pulled:
// ErrImagePull: <kubelet's message>".
func ImagePullFailure(p *corev1.Pod) (string, bool) {
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		w := cs.State.Waiting
		if w == nil || !pullFailures[w.Reason] {
			continue
		}
		img := cs.Image
		for _, c := range p.Spec.Containers {
			if c.Name == cs.Name {
				img = c.Image
			}
		}
		msg := fmt.Sprintf("image %s cannot be pulled: %s", img, w.Reason)
		if m := firstLine(w.Message); m != "" {
			msg += ": " + m
		}
		return msg, true
	}
	return "", false
}

// Unanswered returns how many nodes' probes gave no mode and the reasons,
// each once with its nodes: "image x cannot be pulled: ErrImagePull (cp-1, cp-2)".
func Unanswered(res []ProbeResult) (int, []string) {
	var reasons []string
	nodes := map[string][]string{}
	n := 0
	for _, r := range res {
		if r.Mode != "" {
			continue
		}
		n++
		why := r.Error
		if why == "" {
			why = "no answer"
		}
		if _, ok := nodes[why]; !ok {
			reasons = append(reasons, why)
		}
		nodes[why] = append(nodes[why], r.Node)
	}
	out := make([]string, len(reasons))
	for i, why := range reasons {
		out[i] = why + " (" + strings.Join(nodes[why], ", ") + ")"
	}
	return n, out
}

func isMode(s string) bool {
	switch Mode(s) {
	case IPTables, IPVS, NFTables, KernelSpace:
		return true
	}
	return false
}

func pendingWhy(p *corev1.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			return w.Reason + " " + firstLine(w.Message)
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue && c.Message != "" {
			return firstLine(c.Message)
		}
	}
	return "not started yet"
}

func probePod(node, run string, o ProbeOptions) *corev1.Pod {
	deadline := int64(o.Timeout / time.Second)
	no := false
	name := "hacluster-proxymode-probe-" + sanitize(node)
	if len(name) > 50 {
		name = name[:50]
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: name + "-",
			Labels:       map[string]string{ProbeAppLabel: ProbeAppValue, ProbeRunLabel: run, probeManagedBy: probeManagedVal},
		},
		Spec: corev1.PodSpec{
			NodeName:                     node,
			HostNetwork:                  true,
			RestartPolicy:                corev1.RestartPolicyNever,
			ActiveDeadlineSeconds:        &deadline,
			AutomountServiceAccountToken: &no,
			Tolerations:                  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			PriorityClassName:            "",
			Containers: []corev1.Container{{
				Name:            "probe",
				Image:           o.Image,
				ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         ProbeCommand(o.Port),
			}},
		},
	}
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// MergeProbe adds probe results to a report and re-decides each node.
func MergeProbe(r *Report, res []ProbeResult) {
	by := map[string]ProbeResult{}
	for _, p := range res {
		by[p.Node] = p
	}
	r.Mismatches = 0
	for i := range r.Nodes {
		n := &r.Nodes[i]
		if p, ok := by[n.Node]; ok {
			n.FromProbe, n.ProbeError = p.Mode, p.Error
		}
		n.decide(r.Replacement)
		if n.Mismatch {
			r.Mismatches++
		}
	}
}
