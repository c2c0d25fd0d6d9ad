package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
)

// EtcdMember is one etcd member as etcd itself reports it (member list and
// endpoint health), matched to the cluster's Nodes and etcd Pods.
type EtcdMember struct {
	ID         string   `json:"id"` // hex, as `etcdctl member list` prints it and `member remove` takes it
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
	Learner    bool     `json:"learner,omitempty"`
	// Healthy is etcd's endpoint health of the member (nil: not asked).
	Healthy     *bool  `json:"healthy,omitempty"`
	HealthError string `json:"healthError,omitempty"`
	// Node is the Node the member runs on (by name or peer address), "" when none.
	Node string `json:"node,omitempty"`
	// Pod is the etcd Pod of that member, "" when none.
	Pod string `json:"pod,omitempty"`
	// Stale: in etcd but without a Node (a control plane that was deleted
	// without `etcdctl member remove`; when the Nodes cannot be read: without
	// an etcd Pod).
	Stale bool `json:"stale"`
}

// EtcdMembership is etcd's own member list and where it was read.
type EtcdMembership struct {
	// Source says how it was read, e.g. "etcdctl in kube-system/etcd-cp-1 (pods/exec)".
	Source string
	// Pod is the etcd Pod etcdctl ran in; Command the etcdctl invocation
	// (certificate flags included) a person can reuse.
	Pod     string
	Command []string
	Members []EtcdMember
}

// EtcdReader reads etcd's membership from etcd itself. pods are the
// kube-system control-plane Pods Collect read (the etcd Pods among them).
type EtcdReader interface {
	ReadMembership(ctx context.Context, pods []corev1.Pod) (*EtcdMembership, error)
}

// PodExec runs command in a container and returns what it wrote. err is
// non-nil when the command could not run or exited non-zero; stdout is kept
// in both cases (etcdctl prints the health of the members it reached and
// then exits 1 when one is unhealthy).
type PodExec func(ctx context.Context, namespace, pod, container string, command []string) (stdout, stderr []byte, err error)

// ErrNoEtcdPod means there is no running etcd Pod to run etcdctl in.
var ErrNoEtcdPod = errors.New("no running etcd Pod")

// EtcdctlReader reads the membership with etcdctl inside a running etcd
// static Pod (kubeadm's image ships etcdctl), using the certificates that
// Pod's own flags name (--trusted-ca-file, --cert-file, --key-file: kubeadm's
// etcd server certificate is also a client certificate) against its first
// --listen-client-urls address.
type EtcdctlReader struct {
	Exec    PodExec
	Timeout time.Duration // per etcdctl call, default 10s
}

// EtcdctlArgs is the etcdctl command line (without the subcommand) that
// talks to the member of pod with the certificates mounted there.
func EtcdctlArgs(pod *corev1.Pod) []string {
	flag := func(name, def string) string {
		for _, c := range pod.Spec.Containers {
			for _, a := range append(append([]string{}, c.Command...), c.Args...) {
				if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
					return v
				}
			}
		}
		return def
	}
	endpoint := "https://127.0.0.1:2379"
	for _, u := range strings.Split(flag("listen-client-urls", ""), ",") {
		if strings.HasPrefix(u, "https://127.0.0.1:") || strings.HasPrefix(u, "https://[::1]:") {
			endpoint = u
			break
		}
	}
	return []string{"etcdctl", "--endpoints=" + endpoint,
		"--cacert=" + flag("trusted-ca-file", "/etc/kubernetes/pki/etcd/ca.crt"),
		"--cert=" + flag("cert-file", "/etc/kubernetes/pki/etcd/server.crt"),
		"--key=" + flag("key-file", "/etc/kubernetes/pki/etcd/server.key"),
		"--command-timeout=5s", "--dial-timeout=3s"}
}

// etcdPods are the etcd Pods to try, Ready ones first, by name.
func etcdPods(pods []corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for i := range pods {
		p := &pods[i]
		if p.Labels["component"] == "etcd" && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if a, b := podReady(out[i]), podReady(out[j]); a != b {
			return a
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// ReadMembership runs `etcdctl member list` and `etcdctl endpoint health
// --cluster` in the first etcd Pod that answers.
func (r *EtcdctlReader) ReadMembership(ctx context.Context, pods []corev1.Pod) (*EtcdMembership, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	var errs []error
	for _, p := range etcdPods(pods) {
		container := "etcd"
		if len(p.Spec.Containers) > 0 {
			container = p.Spec.Containers[0].Name
		}
		base := EtcdctlArgs(p)
		run := func(sub ...string) ([]byte, []byte, error) {
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			return r.Exec(cctx, p.Namespace, p.Name, container, append(append([]string{}, base...), sub...))
		}
		out, stderr, err := run("member", "list", "-w", "json")
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w%s", p.Name, err, tail(stderr)))
			if forbidden(err) {
				break // the same for every Pod
			}
			continue
		}
		members, err := ParseMemberList(out)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: etcdctl member list: %w", p.Name, err))
			continue
		}
		m := &EtcdMembership{Source: fmt.Sprintf("etcdctl in %s/%s (pods/exec)", p.Namespace, p.Name), Pod: p.Name, Command: base, Members: members}
		// Unhealthy members make etcdctl exit 1 after printing every result.
		hout, hstderr, herr := run("endpoint", "health", "--cluster", "-w", "json")
		health, perr := ParseEndpointHealth(hout)
		switch {
		case perr == nil:
			applyHealth(m.Members, health)
		case herr != nil:
			m.Source += "; endpoint health failed: " + firstLine(herr.Error()+tail(hstderr))
		default:
			m.Source += "; endpoint health unreadable: " + perr.Error()
		}
		return m, nil
	}
	if len(errs) == 0 {
		return nil, ErrNoEtcdPod
	}
	return nil, errors.Join(errs...)
}

func tail(stderr []byte) string {
	if s := firstLine(string(stderr)); s != "" {
		return ": " + s
	}
	return ""
}

func forbidden(err error) bool {
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "forbidden") || strings.Contains(s, "unauthorized")
}

// ParseMemberList reads `etcdctl member list -w json` (IDs are uint64: read
// as numbers, not float64).
func ParseMemberList(b []byte) ([]EtcdMember, error) {
	var v struct {
		Members []struct {
			ID         json.Number `json:"ID"`
			Name       string      `json:"name"`
			PeerURLs   []string    `json:"peerURLs"`
			ClientURLs []string    `json:"clientURLs"`
			IsLearner  bool        `json:"isLearner"`
		} `json:"members"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not the JSON of etcdctl member list: %w", err)
	}
	if len(v.Members) == 0 {
		return nil, errors.New("etcdctl member list returned no member")
	}
	out := make([]EtcdMember, 0, len(v.Members))
	for _, m := range v.Members {
		id, err := strconv.ParseUint(m.ID.String(), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("member ID %q: %w", m.ID, err)
		}
		out = append(out, EtcdMember{ID: strconv.FormatUint(id, 16), Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, Learner: m.IsLearner})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Name < out[j].Name || out[i].Name == out[j].Name && out[i].ID < out[j].ID
	})
	return out, nil
}

// EndpointHealth is one line of `etcdctl endpoint health -w json`.
type EndpointHealth struct {
	Endpoint string `json:"endpoint"`
	Health   bool   `json:"health"`
	Error    string `json:"error,omitempty"`
}

// ParseEndpointHealth reads `etcdctl endpoint health --cluster -w json`.
func ParseEndpointHealth(b []byte) ([]EndpointHealth, error) {
	var v []EndpointHealth
	if err := json.Unmarshal(bytes.TrimSpace(b), &v); err != nil {
		return nil, fmt.Errorf("not the JSON of etcdctl endpoint health: %w", err)
	}
	return v, nil
}

func applyHealth(members []EtcdMember, health []EndpointHealth) {
	for i := range members {
		m := &members[i]
		for _, h := range health {
			for _, u := range m.ClientURLs {
				if strings.TrimSuffix(u, "/") == strings.TrimSuffix(h.Endpoint, "/") {
					ok := h.Health
					m.Healthy = &ok
					m.HealthError = h.Error
				}
			}
		}
		if m.Healthy == nil && len(m.ClientURLs) == 0 { // added, never started
			no := false
			m.Healthy, m.HealthError = &no, "no client URL: the member was added but never started"
		}
	}
}

// urlHost is the host of a URL such as https://10.0.0.11:2380.
func urlHost(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// NewPodExec runs commands in Pods through the API server's exec
// subresource, as `kubectl exec` does (WebSocket, falling back to SPDY).
// It needs `create` on pods/exec.
func NewPodExec(cfg *rest.Config, cs kubernetes.Interface) PodExec {
	return func(ctx context.Context, namespace, pod, container string, command []string) ([]byte, []byte, error) {
		req := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("exec").
			VersionedParams(&corev1.PodExecOptions{Container: container, Command: command, Stdout: true, Stderr: true}, scheme.ParameterCodec)
		spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
		if err != nil {
			return nil, nil, err
		}
		ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", req.URL().String())
		if err != nil {
			return nil, nil, err
		}
		exec, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
			return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
		})
		if err != nil {
			return nil, nil, err
		}
		var stdout, stderr bytes.Buffer
		err = exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
		return stdout.Bytes(), stderr.Bytes(), err
	}
}

// matchMembers ties etcd's members to Nodes and etcd Pods and marks the
// stale ones. It returns the etcd Pods whose node is not a member.
func (a *analyzer) matchMembers(m *EtcdMembership) (orphans []string) {
	podOn := map[string]string{} // node -> etcd Pod
	for i := range a.s.Pods {
		p := &a.s.Pods[i]
		if p.Labels["component"] == "etcd" && p.Spec.NodeName != "" && p.DeletionTimestamp == nil { // a Pod being deleted is not a member's home
			podOn[p.Spec.NodeName] = p.Name
		}
	}
	_, nodesFailed := a.s.Errs[srcNodes]
	nodesRead := !nodesFailed && len(a.s.Nodes) > 0
	isNode := map[string]bool{}
	for i := range a.s.Nodes {
		isNode[a.s.Nodes[i].Name] = true
	}
	member := map[string]bool{}
	for i := range m.Members {
		e := &m.Members[i]
		switch {
		case isNode[e.Name] || podOn[e.Name] != "":
			e.Node = e.Name
		default:
			for _, u := range e.PeerURLs {
				if n := a.nodeAddr[urlHost(u)]; n != "" {
					e.Node = n
				}
			}
		}
		e.Pod = podOn[e.Node]
		// No Node of that name or address: a deleted control plane (its
		// mirror Pod lingers until the Pod GC removes it). Without the
		// Nodes (RBAC), no etcd Pod either.
		if nodesRead {
			e.Stale = !isNode[e.Node]
		} else {
			e.Stale = e.Pod == ""
		}
		member[e.Node] = true
	}
	for node, pod := range podOn {
		if !member[node] {
			orphans = append(orphans, pod)
		}
	}
	sort.Strings(orphans)
	return orphans
}

// memberRemoveCommand is what removes a stale member, run in a healthy etcd Pod.
func memberRemoveCommand(m *EtcdMembership, id string) string {
	return fmt.Sprintf("kubectl -n kube-system exec %s -- %s member remove %s", m.Pod, strings.Join(m.Command, " "), id)
}

// etcdFromEtcd judges etcd's own member list: members, healthy members,
// quorum, stale members. It reports whether the membership was used.
func (a *analyzer) etcdFromEtcd() bool {
	s, r := a.s, a.r
	m := s.EtcdMembership
	if m == nil {
		return false
	}
	orphans := a.matchMembers(m)
	e := &r.Etcd
	e.Source = m.Source
	e.MemberList = m.Members
	e.MemberNodes = []string{}
	podUp := map[string]bool{}
	for i := range s.Pods {
		podUp[s.Pods[i].Name] = podReady(&s.Pods[i])
	}
	voters, up := 0, 0
	for _, mb := range m.Members {
		name := mb.Name
		if name == "" {
			name = mb.ID
		}
		e.MemberNodes = append(e.MemberNodes, name)
		if mb.Learner {
			continue // learners do not vote
		}
		voters++
		// etcd's health when it answered, else the member's Pod readiness.
		if mb.Healthy != nil && *mb.Healthy || mb.Healthy == nil && podUp[mb.Pod] {
			up++
		}
	}
	e.Members, e.ReadyMembers = voters, up
	for _, mb := range m.Members {
		switch {
		case mb.Stale:
			peer := strings.Join(mb.PeerURLs, ",")
			a.add(Error, "etcd.stale-member", mb.ID, "etcd member %s (id %s, peer %s) has no Node: a removed control plane still counts towards the quorum; remove it: %s",
				orDash(mb.Name), mb.ID, orDash(peer), memberRemoveCommand(m, mb.ID))
		case mb.Healthy != nil && !*mb.Healthy:
			a.add(Warning, "etcd.member-unhealthy", mb.ID, "etcd member %s (id %s) is unhealthy: %s", orDash(mb.Name), mb.ID, orDash(firstLine(mb.HealthError)))
		}
	}
	for _, p := range orphans {
		a.add(Warning, "etcd.stale-member", p, "etcd Pod %s runs but its node is not in etcd's member list (a failed or half-done join): check `%s member list`", p,
			"kubectl -n kube-system exec "+m.Pod+" -- "+strings.Join(m.Command, " "))
	}
	return true
}
