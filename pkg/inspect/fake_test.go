package inspect

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

// fakeShape mirrors testbed.Shape so that the same variants run against the
// fake clientset (fast) and the real test bed.
type fakeShape struct {
	EtcdMembers          int
	Missing              map[string][]string
	ControlPlaneEndpoint string
	KubeProxyMode        string
	KubeletVersions      map[string]string
	NotReady             []string
	StaleLeases          bool
	Workers              int
	NoControlPlanePods   bool
	// CoreDNSNodes are the nodes of the two ready CoreDNS Pods (default worker-1, worker-2).
	CoreDNSNodes []string
}

const fakeVersion = "v1.37.2"

var fakeNow = time.Date(2026, 11, 24, 20, 0, 0, 0, time.UTC)

// fakeCluster builds the kubeadm-like HA shape as API objects.
func fakeCluster(sh fakeShape) (*fake.Clientset, *Source) {
	if sh.EtcdMembers == 0 {
		sh.EtcdMembers = 3
	}
	if sh.ControlPlaneEndpoint == "" {
		sh.ControlPlaneEndpoint = "10.0.0.100:6443"
	}
	if sh.Workers == 0 {
		sh.Workers = 2
	}
	var objs []runtime.Object
	created := metav1.NewTime(fakeNow.Add(-time.Hour))
	notReady := map[string]bool{}
	for _, n := range sh.NotReady {
		notReady[n] = true
	}
	addNode := func(name, ip string, cp bool) {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}, CreationTimestamp: created}}
		if cp {
			n.Labels["node-role.kubernetes.io/control-plane"] = ""
			n.Spec.Taints = []corev1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}}
		}
		kv := fakeVersion
		if v, ok := sh.KubeletVersions[name]; ok {
			kv = v
		}
		st := corev1.ConditionTrue
		if notReady[name] {
			st = corev1.ConditionUnknown
		}
		n.Status = corev1.NodeStatus{
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}, {Type: corev1.NodeHostName, Address: name}},
			NodeInfo:   corev1.NodeSystemInfo{KubeletVersion: kv, ContainerRuntimeVersion: "containerd://1.7.24"},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}},
		}
		objs = append(objs, n)
	}
	missing := map[string]bool{}
	for node, comps := range sh.Missing {
		for _, c := range comps {
			missing[node+"/"+c] = true
		}
	}
	etcdLeft := sh.EtcdMembers
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("cp-%d", i)
		addNode(name, fmt.Sprintf("10.0.0.1%d", i), true)
		if sh.NoControlPlanePods {
			continue
		}
		for _, comp := range Components {
			if missing[name+"/"+comp] {
				continue
			}
			if comp == "etcd" {
				if etcdLeft == 0 {
					continue
				}
				etcdLeft--
			}
			objs = append(objs, mirrorPod(comp, name, created))
		}
	}
	for i := 1; i <= sh.Workers; i++ {
		addNode(fmt.Sprintf("worker-%d", i), fmt.Sprintf("10.0.1.%d", i), false)
	}
	for i := 0; etcdLeft > 0 && !sh.NoControlPlanePods; i++ { // a 4th member needs a 4th control plane
		name := fmt.Sprintf("cp-%d", 4+i)
		addNode(name, fmt.Sprintf("10.0.0.2%d", i), true)
		for _, comp := range Components {
			objs = append(objs, mirrorPod(comp, name, created))
		}
		etcdLeft--
	}
	objs = append(objs,
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kubeadm-config"}, Data: map[string]string{
			"ClusterConfiguration": "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: " + fakeVersion +
				"\ncontrolPlaneEndpoint: " + sh.ControlPlaneEndpoint + "\nnetworking:\n  podSubnet: 10.244.0.0/16\n  serviceSubnet: 10.96.0.0/12\n"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-proxy"}, Data: map[string]string{
			"config.conf": "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: \"" + sh.KubeProxyMode + "\"\n"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-public", Name: "cluster-info"}, Data: map[string]string{
			"kubeconfig": "apiVersion: v1\nkind: Config\nclusters:\n- name: \"\"\n  cluster:\n    server: https://" + sh.ControlPlaneEndpoint + "\n"}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-proxy"},
			Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: int32(3 + sh.Workers), NumberReady: int32(3 + sh.Workers)}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-flannel", Name: "kube-flannel-ds"},
			Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Image: "ghcr.io/flannel-io/flannel:v0.26.1"}}}}}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns", Labels: map[string]string{"k8s-app": "kube-dns"}},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Image: "registry.k8s.io/coredns/coredns:v1.12.0"}}}}},
			Status: appsv1.DeploymentStatus{ReadyReplicas: 2}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-dns", Labels: map[string]string{"k8s-app": "kube-dns"}},
			Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10"}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kubernetes",
			Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
			AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Port: ptr.To[int32](6443)}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.11"}}, {Addresses: []string{"10.0.0.12"}}, {Addresses: []string{"10.0.0.13"}}}},
	)
	dnsNodes := sh.CoreDNSNodes
	if dnsNodes == nil {
		dnsNodes = []string{"worker-1", "worker-2"}
	}
	for i, n := range dnsNodes {
		objs = append(objs, addonPod(fmt.Sprintf("coredns-5d78c9869d-%d", i), map[string]string{"k8s-app": "kube-dns"}, n, true))
	}
	for _, l := range LeaderLeases {
		renew := fakeNow.Add(-2 * time.Second)
		if sh.StaleLeases {
			renew = fakeNow.Add(-10 * time.Minute)
		}
		objs = append(objs, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: l},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("cp-1_6f1c"), LeaseDurationSeconds: ptr.To[int32](15),
				RenewTime: &metav1.MicroTime{Time: renew}}})
	}
	cs := fake.NewClientset(objs...)
	cs.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{GitVersion: fakeVersion, Major: "1", Minor: "37"}
	src := &Source{Client: cs, Server: "https://10.0.0.100:6443", SkipDial: true,
		Raw: func(_ context.Context, path string) (int, []byte, error) {
			switch {
			case strings.HasPrefix(path, "/readyz"):
				return http.StatusOK, []byte("[+]ping ok\n[+]log ok\n[+]etcd ok\n[+]etcd-readiness ok\nreadyz check passed\n"), nil
			case strings.HasPrefix(path, "/livez"):
				return http.StatusOK, []byte("[+]ping ok\n[+]log ok\n[+]etcd ok\nlivez check passed\n"), nil
			}
			return http.StatusNotFound, nil, fmt.Errorf("the server could not find the requested resource")
		}}
	return cs, src
}

func mirrorPod(comp, node string, created metav1.Time) *corev1.Pod {
	img := "registry.k8s.io/" + comp + ":" + fakeVersion
	if comp == "etcd" {
		img = "registry.k8s.io/etcd:3.6.4-0"
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: comp + "-" + node, CreationTimestamp: created,
			Labels: map[string]string{"tier": "control-plane", "component": comp}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: comp, Image: img}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning,
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: comp, Ready: true, RestartCount: 1}}},
	}
}

// addonPod is a Pod of a kube-system Deployment on node.
func addonPod(name string, labels map[string]string, node string, ready bool) *corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: name, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "x"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}},
	}
}
