package testbed

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/util/retry"
)

// Values of the HA shape, as kubeadm would set them.
const (
	PodSubnet      = "10.244.0.0/16"
	ServiceSubnet  = "10.96.0.0/12"
	DNSServiceIP   = "10.96.0.10"
	KwokAnnotation = "kwok.x-k8s.io/node" // "fake": kwok manages the node
	ControlPlane   = "node-role.kubernetes.io/control-plane"
	CoreDNSImage   = "registry.k8s.io/coredns/coredns:v1.12.1"
	EtcdImage      = "registry.k8s.io/etcd:3.7.0-0"
	RuntimeVersion = "containerd://1.7.24"
)

// StaticComponents are the static pods kubeadm runs on every control-plane node.
var StaticComponents = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

// Shape describes the kubeadm-built HA cluster ApplyHAShape creates. The zero
// value is the healthy shape: 3 control-plane nodes with stacked etcd, 2
// workers, controlPlaneEndpoint on the bed's VIP, kube-proxy in iptables mode.
type Shape struct {
	ControlPlanes int // control-plane nodes cp-1..; default 3
	Workers       int // worker nodes worker-1..; default 2; -1 for none
	// EtcdMembers is the number of etcd static pods (on cp-1..cp-N); default one
	// per control-plane node. More than ControlPlanes adds control-plane nodes.
	EtcdMembers int
	// Missing lists, per node, static-pod components that are absent
	// (e.g. {"cp-2": {"kube-apiserver"}}: that apiserver is down).
	Missing map[string][]string
	// ControlPlaneEndpoint goes into kubeadm-config and cluster-info; default
	// the bed's VIP. Set it to a node's address to model a single point of failure.
	ControlPlaneEndpoint string
	// KubeProxyMode is kube-proxy's mode: "" (iptables), "iptables", "ipvs", "nftables".
	KubeProxyMode string
	// KubeletVersions overrides a node's kubelet version (default: the bed's version).
	KubeletVersions map[string]string
	// NotReady nodes are not managed by kwok: their Ready condition is Unknown.
	NotReady []string
	// StaleLeases makes the kube-system leader Leases 10 minutes old (needs
	// Components off: the real controller-manager and scheduler renew theirs).
	StaleLeases bool
	// CoreDNSOnNode puts both CoreDNS replicas on this node, as kubeadm leaves
	// them when it created CoreDNS while the first control plane was the only
	// node (its anti-affinity is only preferred). With Components the other
	// nodes are cordoned while the scheduler places them, then uncordoned: the
	// Deployment is unchanged and `kubectl rollout restart` spreads it.
	CoreDNSOnNode string
}

// NodeInfo is one node of the shape.
type NodeInfo struct {
	Name         string `json:"name"`
	IP           string `json:"ip"`
	ControlPlane bool   `json:"controlPlane"`
	Ready        bool   `json:"ready"`
}

// ShapeInfo reports what ApplyHAShape created.
type ShapeInfo struct {
	Nodes                []NodeInfo `json:"nodes"`
	ControlPlaneEndpoint string     `json:"controlPlaneEndpoint"`
	VIP                  string     `json:"vip"`
	EtcdMembers          []string   `json:"etcdMembers"` // node names running an etcd static pod
	KubeletPort          int        `json:"kubeletPort"` // kwok's kubelet API port on every node address (0 without kwok)
}

// ControlPlaneNodes returns the control-plane nodes.
func (s *ShapeInfo) ControlPlaneNodes() []NodeInfo {
	var out []NodeInfo
	for _, n := range s.Nodes {
		if n.ControlPlane {
			out = append(out, n)
		}
	}
	return out
}

// WorkerNodes returns the worker nodes.
func (s *ShapeInfo) WorkerNodes() []NodeInfo {
	var out []NodeInfo
	for _, n := range s.Nodes {
		if !n.ControlPlane {
			out = append(out, n)
		}
	}
	return out
}

// shapeNode is a node being built.
type shapeNode struct {
	NodeInfo
	index   int // 1-based within its role
	podCIDR string
	kubelet string
	uid     types.UID
}

// ApplyHAShape creates the HA cluster shape through the API and waits until
// it has settled: nodes Ready (but the NotReady ones), mirror pods Running,
// kube-proxy and CoreDNS ready when the controllers run. Nodes get loopback
// InternalIPs (127.0.0.11.. for cp-N, 127.0.0.21.. for worker-N). With
// Components on, kwok serves each node's kubelet API on <ip>:<KubeletPort>.
// Without Components, ApplyHAShape writes the statuses itself.
func (b *Bed) ApplyHAShape(ctx context.Context, s Shape) (*ShapeInfo, error) {
	nodes, err := b.planShape(&s)
	if err != nil {
		return nil, err
	}
	kwok := b.kubeletPort != 0
	if kwok && s.StaleLeases {
		return nil, errors.New("Shape.StaleLeases needs a bed without Components: the real controller-manager and scheduler keep their leases fresh")
	}
	if _, err := b.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{}); err == nil {
		return nil, errors.New("the HA shape is already applied to this bed (kube-system/kubeadm-config exists)")
	}
	info := &ShapeInfo{ControlPlaneEndpoint: s.ControlPlaneEndpoint, VIP: b.VIP, KubeletPort: b.kubeletPort}
	for _, n := range nodes {
		info.Nodes = append(info.Nodes, n.NodeInfo)
	}
	for _, n := range nodes[:s.EtcdMembers] {
		info.EtcdMembers = append(info.EtcdMembers, n.Name)
	}

	if kwok {
		if err := b.forwardKubelets(nodes); err != nil {
			return nil, err
		}
	}
	a := &applier{b: b, s: s, nodes: nodes, kwok: kwok}
	steps := []func(context.Context) error{a.nodesAndLeases, a.staticPods, a.kubeadmConfig, a.clusterInfo, a.kubeProxy, a.coreDNS, a.leaderLeases}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	if err := a.wait(ctx); err != nil {
		return nil, err
	}
	return info, nil
}

// planShape fills in defaults, validates s and names the nodes.
func (b *Bed) planShape(s *Shape) ([]*shapeNode, error) {
	if s.ControlPlanes == 0 {
		s.ControlPlanes = 3
	}
	if s.Workers == 0 {
		s.Workers = 2
	} else if s.Workers < 0 {
		s.Workers = 0
	}
	if s.EtcdMembers == 0 {
		s.EtcdMembers = s.ControlPlanes
	}
	if s.EtcdMembers > s.ControlPlanes {
		s.ControlPlanes = s.EtcdMembers
	}
	if s.ControlPlanes < 1 || s.ControlPlanes > 9 || s.Workers > 9 || s.EtcdMembers < 0 {
		return nil, fmt.Errorf("shape: want 1-9 control-plane nodes and 0-9 workers, got %d and %d", s.ControlPlanes, s.Workers)
	}
	switch s.KubeProxyMode {
	case "", "iptables", "ipvs", "nftables":
	default:
		return nil, fmt.Errorf("shape: KubeProxyMode %q: want iptables, ipvs or nftables", s.KubeProxyMode)
	}
	if s.ControlPlaneEndpoint == "" {
		s.ControlPlaneEndpoint = b.VIP
	}
	if _, _, err := net.SplitHostPort(s.ControlPlaneEndpoint); err != nil {
		return nil, fmt.Errorf("shape: ControlPlaneEndpoint %q: want host:port", s.ControlPlaneEndpoint)
	}
	var nodes []*shapeNode
	for i := 1; i <= s.ControlPlanes; i++ {
		nodes = append(nodes, &shapeNode{NodeInfo: NodeInfo{Name: "cp-" + strconv.Itoa(i), IP: "127.0.0." + strconv.Itoa(10+i), ControlPlane: true}, index: i})
	}
	for i := 1; i <= s.Workers; i++ {
		nodes = append(nodes, &shapeNode{NodeInfo: NodeInfo{Name: "worker-" + strconv.Itoa(i), IP: "127.0.0." + strconv.Itoa(20+i)}, index: i})
	}
	known := map[string]*shapeNode{}
	for i, n := range nodes {
		n.podCIDR = fmt.Sprintf("10.244.%d.0/24", i)
		n.kubelet = b.Version
		n.Ready = true
		known[n.Name] = n
	}
	check := func(field, name string) (*shapeNode, error) {
		n, ok := known[name]
		if !ok {
			return nil, fmt.Errorf("shape: %s names node %q, which is not in the shape", field, name)
		}
		return n, nil
	}
	for name, comps := range s.Missing {
		if _, err := check("Missing", name); err != nil {
			return nil, err
		}
		for _, c := range comps {
			if !slices.Contains(StaticComponents, c) {
				return nil, fmt.Errorf("shape: Missing[%s]: unknown component %q (want one of %s)", name, c, strings.Join(StaticComponents, ", "))
			}
		}
	}
	for name, v := range s.KubeletVersions {
		n, err := check("KubeletVersions", name)
		if err != nil {
			return nil, err
		}
		n.kubelet = v
	}
	for _, name := range s.NotReady {
		n, err := check("NotReady", name)
		if err != nil {
			return nil, err
		}
		n.Ready = false
	}
	if s.CoreDNSOnNode != "" {
		n, err := check("CoreDNSOnNode", s.CoreDNSOnNode)
		if err != nil {
			return nil, err
		}
		if !n.Ready {
			return nil, fmt.Errorf("shape: CoreDNSOnNode %s is also NotReady", n.Name)
		}
	}
	return nodes, nil
}

// forwardKubelets makes <node IP>:<kubelet port> reach kwok's kubelet API.
func (b *Bed) forwardKubelets(nodes []*shapeNode) error {
	target := "127.0.0.1:" + strconv.Itoa(b.kubeletPort)
	for _, n := range nodes {
		b.mu.Lock()
		_, done := b.nodeFwd[n.IP]
		b.mu.Unlock()
		if done {
			continue
		}
		f, err := forward(net.JoinHostPort(n.IP, strconv.Itoa(b.kubeletPort)), target)
		if err != nil {
			return fmt.Errorf("kubelet port of %s: %w", n.Name, err)
		}
		b.mu.Lock()
		b.nodeFwd[n.IP] = f
		b.fwds = append(b.fwds, f)
		b.mu.Unlock()
	}
	return nil
}

type applier struct {
	b     *Bed
	s     Shape
	nodes []*shapeNode
	kwok  bool
}

// synthetic reports whether ApplyHAShape writes n's statuses itself (no kwok for it).
func (a *applier) synthetic(n *shapeNode) bool { return !a.kwok || !n.Ready }

func (a *applier) node(name string) *shapeNode {
	for _, n := range a.nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func (a *applier) nodesAndLeases(ctx context.Context) error {
	cs := a.b.Client
	now := metav1.Now()
	for _, n := range a.nodes {
		labels := map[string]string{
			"kubernetes.io/hostname": n.Name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
			"beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
		}
		annotations := map[string]string{
			"kubeadm.alpha.kubernetes.io/cri-socket":                 "unix:///var/run/containerd/containerd.sock",
			"node.alpha.kubernetes.io/ttl":                           "0",
			"volumes.kubernetes.io/controller-managed-attach-detach": "true",
		}
		if !a.synthetic(n) {
			annotations[KwokAnnotation] = "fake"
		}
		var taints []corev1.Taint
		if n.ControlPlane {
			labels[ControlPlane] = ""
			labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
			taints = append(taints, corev1.Taint{Key: ControlPlane, Effect: corev1.TaintEffectNoSchedule})
		}
		if !n.Ready {
			taints = append(taints, corev1.Taint{Key: "node.kubernetes.io/unreachable", Effect: corev1.TaintEffectNoSchedule, TimeAdded: &now})
		}
		port := int32(10250)
		if a.kwok {
			port = int32(a.b.kubeletPort)
		}
		res := corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"),
			corev1.ResourcePods: resource.MustParse("110"), corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
		}
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: labels, Annotations: annotations},
			Spec:       corev1.NodeSpec{PodCIDR: n.podCIDR, PodCIDRs: []string{n.podCIDR}, Taints: taints},
			Status: corev1.NodeStatus{
				Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.IP}, {Type: corev1.NodeHostName, Address: n.Name}},
				DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: port}},
				Capacity:        res, Allocatable: res,
				NodeInfo: corev1.NodeSystemInfo{
					MachineID: rand.String(32), SystemUUID: rand.String(32), BootID: rand.String(32),
					KernelVersion: "6.1.0-28-amd64", OSImage: "Debian GNU/Linux 12 (bookworm)",
					ContainerRuntimeVersion: RuntimeVersion, KubeletVersion: n.kubelet,
					OperatingSystem: "linux", Architecture: "amd64",
				},
			},
		}
		if a.synthetic(n) {
			node.Status.Phase = corev1.NodeRunning
			node.Status.Conditions = nodeConditions(n.Ready, now)
		}
		created, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create node %s: %w", n.Name, err)
		}
		n.uid = created.UID
		if a.synthetic(n) {
			// The status is part of a Node create (the kubelet registers this way),
			// but write it again in case a defaulting step dropped it.
			// The node controller may write the Node in between: on a
			// conflict, read it again and write the status over it.
			cur := created
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				cur.Status = node.Status
				_, err := cs.CoreV1().Nodes().UpdateStatus(ctx, cur, metav1.UpdateOptions{})
				if apierrors.IsConflict(err) {
					if got, gerr := cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{}); gerr == nil {
						cur = got
					}
				}
				return err
			})
			if err != nil {
				return fmt.Errorf("node %s status: %w", n.Name, err)
			}
			if n.Ready {
				if err := a.nodeLease(ctx, n, now); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func nodeConditions(ready bool, now metav1.Time) []corev1.NodeCondition {
	conds := []corev1.NodeCondition{
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available"},
		{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure"},
		{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available"},
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"},
	}
	for i := range conds {
		conds[i].LastHeartbeatTime, conds[i].LastTransitionTime = now, now
		if !ready {
			conds[i].Status, conds[i].Reason, conds[i].Message = corev1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status."
		}
	}
	return conds
}

func (a *applier) nodeLease(ctx context.Context, n *shapeNode, now metav1.Time) error {
	holder, dur := n.Name, int32(40)
	micro := metav1.NewMicroTime(now.Time)
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, Namespace: corev1.NamespaceNodeLease,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.uid}}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &dur, RenewTime: &micro},
	}
	_, err := a.b.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, lease, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("node lease %s: %w", n.Name, err)
	}
	return nil
}

// staticPods creates the mirror pods the kubelet would post for
// /etc/kubernetes/manifests on each control-plane node.
func (a *applier) staticPods(ctx context.Context) error {
	var etcdPeers []string
	for _, n := range a.nodes[:a.s.EtcdMembers] {
		etcdPeers = append(etcdPeers, fmt.Sprintf("%s=https://%s:2380", n.Name, n.IP))
	}
	for _, n := range a.nodes {
		if !n.ControlPlane {
			continue
		}
		for _, comp := range StaticComponents {
			if comp == "etcd" && n.index > a.s.EtcdMembers || slices.Contains(a.s.Missing[n.Name], comp) {
				continue
			}
			pod := a.staticPod(n, comp, etcdPeers)
			if err := a.createPod(ctx, pod, n, true); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *applier) staticPod(n *shapeNode, comp string, etcdPeers []string) *corev1.Pod {
	hash := rand.String(32)
	ann := map[string]string{
		"kubernetes.io/config.hash": hash, "kubernetes.io/config.mirror": hash,
		"kubernetes.io/config.seen": time.Now().UTC().Format(time.RFC3339Nano), "kubernetes.io/config.source": "file",
	}
	image := "registry.k8s.io/" + comp + ":" + a.b.Version
	var cmd []string
	var probePort int
	probePath, scheme := "/healthz", corev1.URISchemeHTTPS
	probeHost := "127.0.0.1"
	cpu := "200m"
	switch comp {
	case "etcd":
		image, cpu = EtcdImage, "100m"
		state := "new"
		if n.index > 1 {
			state = "existing"
		}
		ann["kubeadm.kubernetes.io/etcd.advertise-client-urls"] = "https://" + n.IP + ":2379"
		cmd = []string{"etcd", "--advertise-client-urls=https://" + n.IP + ":2379", "--cert-file=/etc/kubernetes/pki/etcd/server.crt",
			"--client-cert-auth=true", "--data-dir=/var/lib/etcd", "--experimental-initial-corrupt-check=true",
			"--initial-advertise-peer-urls=https://" + n.IP + ":2380",
			"--initial-cluster=" + strings.Join(etcdPeers[:max(1, min(n.index, len(etcdPeers)))], ","),
			"--initial-cluster-state=" + state, "--key-file=/etc/kubernetes/pki/etcd/server.key",
			"--listen-client-urls=https://127.0.0.1:2379,https://" + n.IP + ":2379", "--listen-metrics-urls=http://127.0.0.1:2381",
			"--listen-peer-urls=https://" + n.IP + ":2380", "--name=" + n.Name,
			"--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt", "--peer-client-cert-auth=true",
			"--peer-key-file=/etc/kubernetes/pki/etcd/peer.key", "--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
			"--snapshot-count=10000", "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt"}
		probePort, probePath, scheme = 2381, "/livez", corev1.URISchemeHTTP
	case "kube-apiserver":
		cpu = "250m"
		ann["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"] = n.IP + ":6443"
		cmd = []string{"kube-apiserver", "--advertise-address=" + n.IP, "--allow-privileged=true",
			"--authorization-mode=Node,RBAC", "--client-ca-file=/etc/kubernetes/pki/ca.crt",
			"--enable-admission-plugins=NodeRestriction", "--enable-bootstrap-token-auth=true",
			"--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt", "--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt",
			"--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key", "--etcd-servers=https://127.0.0.1:2379",
			"--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
			"--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
			"--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
			"--proxy-client-cert-file=/etc/kubernetes/pki/front-proxy-client.crt",
			"--proxy-client-key-file=/etc/kubernetes/pki/front-proxy-client.key",
			"--requestheader-allowed-names=front-proxy-client", "--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
			"--requestheader-extra-headers-prefix=X-Remote-Extra-", "--requestheader-group-headers=X-Remote-Group",
			"--requestheader-username-headers=X-Remote-User", "--secure-port=6443",
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=/etc/kubernetes/pki/sa.pub", "--service-account-signing-key-file=/etc/kubernetes/pki/sa.key",
			"--service-cluster-ip-range=" + ServiceSubnet, "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
			"--tls-private-key-file=/etc/kubernetes/pki/apiserver.key"}
		probeHost, probePort, probePath = n.IP, 6443, "/livez"
	case "kube-controller-manager":
		cmd = []string{"kube-controller-manager", "--allocate-node-cidrs=true",
			"--authentication-kubeconfig=/etc/kubernetes/controller-manager.conf",
			"--authorization-kubeconfig=/etc/kubernetes/controller-manager.conf", "--bind-address=127.0.0.1",
			"--client-ca-file=/etc/kubernetes/pki/ca.crt", "--cluster-cidr=" + PodSubnet, "--cluster-name=kubernetes",
			"--cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt", "--cluster-signing-key-file=/etc/kubernetes/pki/ca.key",
			"--controllers=*,bootstrapsigner,tokencleaner", "--kubeconfig=/etc/kubernetes/controller-manager.conf",
			"--leader-elect=true", "--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
			"--root-ca-file=/etc/kubernetes/pki/ca.crt", "--service-account-private-key-file=/etc/kubernetes/pki/sa.key",
			"--service-cluster-ip-range=" + ServiceSubnet, "--use-service-account-credentials=true"}
		probePort = 10257
	case "kube-scheduler":
		cpu = "100m"
		cmd = []string{"kube-scheduler", "--authentication-kubeconfig=/etc/kubernetes/scheduler.conf",
			"--authorization-kubeconfig=/etc/kubernetes/scheduler.conf", "--bind-address=127.0.0.1",
			"--kubeconfig=/etc/kubernetes/scheduler.conf", "--leader-elect=true"}
		probePort = 10259
	}
	probe := &corev1.Probe{
		ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Host: probeHost, Path: probePath, Port: intstr.FromInt32(int32(probePort)), Scheme: scheme}},
		InitialDelaySeconds: 10, TimeoutSeconds: 15, PeriodSeconds: 10, FailureThreshold: 8,
	}
	hostPathDir := corev1.HostPathDirectoryOrCreate
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: comp + "-" + n.Name, Namespace: "kube-system",
			Labels:          map[string]string{"component": comp, "tier": "control-plane"},
			Annotations:     ann,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.uid, Controller: ptr(true)}},
		},
		Spec: corev1.PodSpec{
			NodeName:          n.Name,
			HostNetwork:       true,
			PriorityClassName: "system-node-critical",
			SecurityContext:   &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Tolerations:       []corev1.Toleration{{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}},
			Containers: []corev1.Container{{
				Name: comp, Image: image, Command: cmd, ImagePullPolicy: corev1.PullIfNotPresent,
				Resources:     corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}},
				LivenessProbe: probe,
				VolumeMounts:  []corev1.VolumeMount{{Name: "k8s-certs", MountPath: "/etc/kubernetes/pki", ReadOnly: true}},
			}},
			Volumes: []corev1.Volume{{Name: "k8s-certs", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/etc/kubernetes/pki", Type: &hostPathDir}}}},
		},
	}
}

// createPod creates pod on node n; for a node kwok does not manage it also
// writes the status the kubelet would post.
func (a *applier) createPod(ctx context.Context, pod *corev1.Pod, n *shapeNode, hostNetwork bool) error {
	created, err := a.b.Client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	if !a.synthetic(n) {
		return nil
	}
	podIP := n.IP
	if !hostNetwork {
		podIP = strings.TrimSuffix(n.podCIDR, "0/24") + strconv.Itoa(2+rand.Intn(250))
	}
	now := metav1.Now()
	cond := corev1.ConditionTrue
	if !n.Ready {
		cond = corev1.ConditionFalse
	}
	created.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, HostIP: n.IP, HostIPs: []corev1.HostIP{{IP: n.IP}},
		PodIP: podIP, PodIPs: []corev1.PodIP{{IP: podIP}}, StartTime: &now, QOSClass: created.Status.QOSClass,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: cond, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: cond, LastTransitionTime: now},
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		},
	}
	for _, c := range created.Spec.Containers {
		created.Status.ContainerStatuses = append(created.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: n.Ready, Started: ptr(true),
			ContainerID: "containerd://" + rand.String(64),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	if _, err := a.b.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("status of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

func (a *applier) kubeadmConfig(ctx context.Context) error {
	cluster := fmt.Sprintf(`apiServer: {}
apiVersion: kubeadm.k8s.io/v1beta4
caCertificateValidityPeriod: 87600h0m0s
certificateValidityPeriod: 8760h0m0s
certificatesDir: /etc/kubernetes/pki
clusterName: kubernetes
controlPlaneEndpoint: %s
controllerManager: {}
dns: {}
encryptionAlgorithm: RSA-2048
etcd:
  local:
    dataDir: /var/lib/etcd
imageRepository: registry.k8s.io
kind: ClusterConfiguration
kubernetesVersion: %s
networking:
  dnsDomain: cluster.local
  podSubnet: %s
  serviceSubnet: %s
proxy: {}
scheduler: {}
`, a.s.ControlPlaneEndpoint, a.b.Version, PodSubnet, ServiceSubnet)
	kubelet := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
cgroupDriver: systemd
clusterDNS:
- %s
clusterDomain: cluster.local
containerRuntimeEndpoint: unix:///var/run/containerd/containerd.sock
kind: KubeletConfiguration
rotateCertificates: true
staticPodPath: /etc/kubernetes/manifests
`, DNSServiceIP)
	for name, data := range map[string]map[string]string{
		"kubeadm-config": {"ClusterConfiguration": cluster},
		"kubelet-config": {"kubelet": kubelet},
	} {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system"}, Data: data}
		if _, err := a.b.Client.CoreV1().ConfigMaps("kube-system").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("configmap kube-system/%s: %w", name, err)
		}
	}
	return nil
}

// clusterInfo is kube-public/cluster-info (what `kubeadm join` discovers),
// readable anonymously like kubeadm sets it up.
func (a *applier) clusterInfo(ctx context.Context) error {
	kubeconfig := fmt.Sprintf(`apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: %s
    server: https://%s
  name: ""
contexts: null
current-context: ""
kind: Config
preferences: {}
users: null
`, base64.StdEncoding.EncodeToString(a.b.pki.caPEM), a.s.ControlPlaneEndpoint)
	cs := a.b.Client
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cluster-info", Namespace: "kube-public"}, Data: map[string]string{"kubeconfig": kubeconfig}}
	if _, err := cs.CoreV1().ConfigMaps("kube-public").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("configmap kube-public/cluster-info: %w", err)
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "kubeadm:bootstrap-signer-clusterinfo", Namespace: "kube-public"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"cluster-info"}, Verbs: []string{"get"}}},
	}
	if _, err := cs.RbacV1().Roles("kube-public").Create(ctx, role, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("role cluster-info: %w", err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "kubeadm:bootstrap-signer-clusterinfo", Namespace: "kube-public"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "system:anonymous"}},
	}
	if _, err := cs.RbacV1().RoleBindings("kube-public").Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("rolebinding cluster-info: %w", err)
	}
	return nil
}

func (a *applier) kubeProxy(ctx context.Context) error {
	cs := a.b.Client
	config := fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
clientConnection:
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
clusterCIDR: %s
ipvs:
  scheduler: ""
  strictARP: false
kind: KubeProxyConfiguration
metricsBindAddress: ""
mode: %q
nftables:
  masqueradeAll: false
`, PodSubnet, a.s.KubeProxyMode)
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
    server: https://%s
  name: default
contexts:
- context:
    cluster: default
    namespace: default
    user: default
  name: default
current-context: default
users:
- name: default
  user:
    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token
`, a.s.ControlPlaneEndpoint)
	labels := map[string]string{"k8s-app": "kube-proxy"}
	if _, err := cs.CoreV1().ServiceAccounts("kube-system").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system"}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("serviceaccount kube-proxy: %w", err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "kubeadm:node-proxier"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:node-proxier"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "kube-proxy", Namespace: "kube-system"}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("clusterrolebinding kube-proxy: %w", err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system", Labels: map[string]string{"app": "kube-proxy"}},
		Data: map[string]string{"config.conf": config, "kubeconfig.conf": kubeconfig}}
	if _, err := cs.CoreV1().ConfigMaps("kube-system").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("configmap kube-proxy: %w", err)
	}
	fileOrCreate := corev1.HostPathFileOrCreate
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{
			ServiceAccountName: "kube-proxy", HostNetwork: true, PriorityClassName: "system-node-critical",
			NodeSelector: map[string]string{"kubernetes.io/os": "linux"},
			Tolerations:  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name: "kube-proxy", Image: "registry.k8s.io/kube-proxy:" + a.b.Version, ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         []string{"/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf", "--hostname-override=$(NODE_NAME)"},
				Env:             []corev1.EnvVar{{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}},
				SecurityContext: &corev1.SecurityContext{Privileged: ptr(true)},
				VolumeMounts: []corev1.VolumeMount{{Name: "kube-proxy", MountPath: "/var/lib/kube-proxy"},
					{Name: "xtables-lock", MountPath: "/run/xtables.lock"}, {Name: "lib-modules", MountPath: "/lib/modules", ReadOnly: true}},
			}},
			Volumes: []corev1.Volume{
				{Name: "kube-proxy", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-proxy"}}}},
				{Name: "xtables-lock", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/run/xtables.lock", Type: &fileOrCreate}}},
				{Name: "lib-modules", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/lib/modules"}}},
			},
		},
	}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system", Labels: labels},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl,
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType}},
	}
	created, err := cs.AppsV1().DaemonSets("kube-system").Create(ctx, ds, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("daemonset kube-proxy: %w", err)
	}
	// With the components the real DaemonSet controller makes a pod per node;
	// without them, do its work here.
	if a.kwok {
		return nil
	}
	ready := int32(0)
	for _, n := range a.nodes {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy-" + rand.String(5), Namespace: "kube-system", Labels: labels,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "kube-proxy", UID: created.UID, Controller: ptr(true), BlockOwnerDeletion: ptr(true)}}},
			Spec: *tmpl.Spec.DeepCopy(),
		}
		pod.Spec.NodeName = n.Name
		if err := a.createPod(ctx, pod, n, true); err != nil {
			return err
		}
		if n.Ready {
			ready++
		}
	}
	total := int32(len(a.nodes))
	created.Status = appsv1.DaemonSetStatus{CurrentNumberScheduled: total, DesiredNumberScheduled: total, NumberReady: ready,
		NumberAvailable: ready, UpdatedNumberScheduled: total, NumberUnavailable: total - ready, ObservedGeneration: created.Generation}
	if _, err := cs.AppsV1().DaemonSets("kube-system").UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("daemonset kube-proxy status: %w", err)
	}
	return nil
}

func (a *applier) coreDNS(ctx context.Context) error {
	cs := a.b.Client
	labels := map[string]string{"k8s-app": "kube-dns"}
	if _, err := cs.CoreV1().ServiceAccounts("kube-system").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("serviceaccount coredns: %w", err)
	}
	cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"endpoints", "services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
	}}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, cr, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("clusterrole coredns: %w", err)
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:coredns"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "coredns", Namespace: "kube-system"}}}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("clusterrolebinding coredns: %w", err)
	}
	corefile := `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
`
	if _, err := cs.CoreV1().ConfigMaps("kube-system").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"}, Data: map[string]string{"Corefile": corefile}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("configmap coredns: %w", err)
	}
	replicas := int32(2)
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{
			ServiceAccountName: "coredns", PriorityClassName: "system-cluster-critical", DNSPolicy: corev1.DNSDefault,
			NodeSelector: map[string]string{"kubernetes.io/os": "linux"},
			Tolerations: []corev1.Toleration{{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists},
				{Key: ControlPlane, Effect: corev1.TaintEffectNoSchedule}},
			Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
				Weight: 100, PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: "kubernetes.io/hostname",
					LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k8s-app", Operator: metav1.LabelSelectorOpIn, Values: []string{"kube-dns"}}}}},
			}}}},
			Containers: []corev1.Container{{
				Name: "coredns", Image: CoreDNSImage, ImagePullPolicy: corev1.PullIfNotPresent, Args: []string{"-conf", "/etc/coredns/Corefile"},
				Ports: []corev1.ContainerPort{{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
					{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP}, {Name: "metrics", ContainerPort: 9153, Protocol: corev1.ProtocolTCP}},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("70Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("170Mi")}},
				VolumeMounts: []corev1.VolumeMount{{Name: "config-volume", MountPath: "/etc/coredns", ReadOnly: true}},
			}},
			Volumes: []corev1.Volume{{Name: "config-volume", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "coredns"}, Items: []corev1.KeyToPath{{Key: "Corefile", Path: "Corefile"}}}}}},
		},
	}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system", Labels: labels},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl,
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: ptr(intstr.FromInt32(1))}}},
	}
	var cordoned []string
	if a.kwok && a.s.CoreDNSOnNode != "" {
		for _, n := range a.nodes {
			if n.Name != a.s.CoreDNSOnNode {
				if err := a.setUnschedulable(ctx, n.Name, true); err != nil {
					return err
				}
				cordoned = append(cordoned, n.Name)
			}
		}
	}
	created, err := cs.AppsV1().Deployments("kube-system").Create(ctx, dep, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("deployment coredns: %w", err)
	}
	if len(cordoned) > 0 {
		if err := a.waitBound(ctx, labels, int(replicas)); err != nil {
			return err
		}
		for _, name := range cordoned {
			if err := a.setUnschedulable(ctx, name, false); err != nil {
				return err
			}
		}
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: "kube-system",
			Labels:      map[string]string{"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"},
			Annotations: map[string]string{"prometheus.io/port": "9153", "prometheus.io/scrape": "true"}},
		Spec: corev1.ServiceSpec{Selector: labels, ClusterIP: DNSServiceIP, Ports: []corev1.ServicePort{
			{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
			{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
			{Name: "metrics", Port: 9153, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9153)}}},
	}
	if _, err := cs.CoreV1().Services("kube-system").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("service kube-dns: %w", err)
	}
	if a.kwok {
		return nil // the real Deployment, ReplicaSet and scheduler take it from here
	}
	// Without the controllers: two Running pods on the workers (or control planes).
	var hosts []*shapeNode
	for _, n := range a.nodes {
		if a.s.CoreDNSOnNode != "" && n.Name == a.s.CoreDNSOnNode || a.s.CoreDNSOnNode == "" && !n.ControlPlane && n.Ready {
			hosts = append(hosts, n)
		}
	}
	if len(hosts) == 0 {
		for _, n := range a.nodes {
			if n.Ready {
				hosts = append(hosts, n)
			}
		}
	}
	ready := int32(0)
	for i := range int(replicas) {
		if len(hosts) == 0 {
			break
		}
		n := hosts[i%len(hosts)]
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "coredns-" + rand.String(10) + "-" + rand.String(5), Namespace: "kube-system", Labels: labels},
			Spec:       *tmpl.Spec.DeepCopy(),
		}
		pod.Spec.NodeName = n.Name
		if err := a.createPod(ctx, pod, n, false); err != nil {
			return err
		}
		ready++
	}
	created.Status = appsv1.DeploymentStatus{ObservedGeneration: created.Generation, Replicas: replicas, UpdatedReplicas: replicas,
		ReadyReplicas: ready, AvailableReplicas: ready, UnavailableReplicas: replicas - ready,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: boolCond(ready >= replicas-1),
			Reason: "MinimumReplicasAvailable", Message: "Deployment has minimum availability."}}}
	if _, err := cs.AppsV1().Deployments("kube-system").UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("deployment coredns status: %w", err)
	}
	return nil
}

// setUnschedulable cordons or uncordons a node, like `kubectl cordon`.
func (a *applier) setUnschedulable(ctx context.Context, name string, on bool) error {
	patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, on)
	if _, err := a.b.Client.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("cordon node %s (%t): %w", name, on, err)
	}
	return nil
}

// waitBound waits until n kube-system Pods with labels are bound to a node.
func (a *applier) waitBound(ctx context.Context, labels map[string]string, n int) error {
	sel := metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: labels})
	deadline := time.Now().Add(60 * time.Second)
	for {
		pods, err := a.b.Client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return err
		}
		bound := 0
		for _, p := range pods.Items {
			if p.Spec.NodeName != "" {
				bound++
			}
		}
		if bound >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d pods %s scheduled after 60s", bound, n, sel)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// leaderLeases: with the components running they hold the real ones; without,
// write what a controller-manager and scheduler on cp-1 would hold.
func (a *applier) leaderLeases(ctx context.Context) error {
	if a.kwok {
		return nil
	}
	renew := time.Now()
	if a.s.StaleLeases {
		renew = renew.Add(-10 * time.Minute)
	}
	holderNode := a.nodes[0].Name
	for _, name := range []string{"kube-controller-manager", "kube-scheduler"} {
		holder := holderNode + "_" + rand.String(8) + "-" + rand.String(4) + "-" + rand.String(4) + "-" + rand.String(4) + "-" + rand.String(12)
		dur, transitions := int32(15), int32(0)
		acquire, renewed := metav1.NewMicroTime(renew.Add(-time.Minute)), metav1.NewMicroTime(renew)
		lease := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system"},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &dur, AcquireTime: &acquire,
				RenewTime: &renewed, LeaseTransitions: &transitions},
		}
		_, err := a.b.Client.CoordinationV1().Leases("kube-system").Create(ctx, lease, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			cur, gerr := a.b.Client.CoordinationV1().Leases("kube-system").Get(ctx, name, metav1.GetOptions{})
			if gerr != nil {
				return gerr
			}
			cur.Spec = lease.Spec
			_, err = a.b.Client.CoordinationV1().Leases("kube-system").Update(ctx, cur, metav1.UpdateOptions{})
		}
		if err != nil {
			return fmt.Errorf("lease kube-system/%s: %w", name, err)
		}
	}
	return nil
}

// wait blocks until the shape has settled (only kwok and the controllers
// change it; the synthetic parts are final at once).
func (a *applier) wait(ctx context.Context) error {
	if !a.kwok {
		return nil
	}
	var last string
	deadline := time.Now().Add(90 * time.Second)
	for {
		last = a.notSettled(ctx)
		if last == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("HA shape not ready after 90s: %s", last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("HA shape not ready: %s: %w", last, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// notSettled describes the first thing not yet ready, or "".
func (a *applier) notSettled(ctx context.Context) string {
	cs := a.b.Client
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	readyNodes := 0
	for _, node := range nodes.Items {
		n := a.node(node.Name)
		if n == nil || !n.Ready {
			continue
		}
		if !nodeReady(&node) {
			return "node " + node.Name + " not Ready"
		}
		readyNodes++
	}
	pods, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	proxies, dns := 0, 0
	for _, p := range pods.Items {
		n := a.node(p.Spec.NodeName)
		if n == nil || !n.Ready {
			continue
		}
		if !podReady(&p) {
			return "pod " + p.Name + " not Ready"
		}
		switch p.Labels["k8s-app"] {
		case "kube-proxy":
			proxies++
		case "kube-dns":
			dns++
		}
	}
	if proxies < readyNodes {
		return fmt.Sprintf("%d of %d kube-proxy pods ready", proxies, readyNodes)
	}
	if dns < 2 {
		return fmt.Sprintf("%d of 2 coredns pods ready", dns)
	}
	// Readers such as inspect go by the controllers' status, which the
	// Deployment and DaemonSet controllers write a moment after the Pods.
	if d, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{}); err == nil && d.Status.ReadyReplicas < 2 {
		return fmt.Sprintf("deployment coredns: %d of 2 replicas ready in its status", d.Status.ReadyReplicas)
	}
	if ds, err := cs.AppsV1().DaemonSets("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{}); err == nil && int(ds.Status.NumberReady) < proxies {
		return fmt.Sprintf("daemonset kube-proxy: %d of %d ready in its status", ds.Status.NumberReady, proxies)
	}
	return ""
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func boolCond(b bool) corev1.ConditionStatus {
	if b {
		return corev1.ConditionTrue
	}
	return corev1.ConditionFalse
}

func ptr[T any](v T) *T { return &v }
