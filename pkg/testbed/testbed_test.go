package testbed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
)

// TestHAShapeWithComponents is the acceptance test of the bed: the real
// controller-manager, scheduler and kwok, the healthy HA shape, and
// everything asserted through client-go.
func TestHAShapeWithComponents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bed := Start(t, Options{Components: true})
	start := time.Now()
	info, err := bed.ApplyHAShape(ctx, Shape{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("HA shape ready in %s", time.Since(start).Round(time.Millisecond))
	cs := bed.Client

	// Nodes: 3 control planes + 2 workers, Ready, kubeadm labels and taints, loopback IPs.
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"cp-1": "127.0.0.11", "cp-2": "127.0.0.12", "cp-3": "127.0.0.13", "worker-1": "127.0.0.21", "worker-2": "127.0.0.22"}
	if len(nodes.Items) != len(want) {
		t.Fatalf("got %d nodes, want %d", len(nodes.Items), len(want))
	}
	for _, n := range nodes.Items {
		if ip := internalIP(&n); ip != want[n.Name] {
			t.Errorf("node %s: InternalIP %q, want %q", n.Name, ip, want[n.Name])
		}
		if !nodeReady(&n) {
			t.Errorf("node %s not Ready", n.Name)
		}
		_, isCP := n.Labels[ControlPlane]
		hasTaint := slices.ContainsFunc(n.Spec.Taints, func(tt corev1.Taint) bool {
			return tt.Key == ControlPlane && tt.Effect == corev1.TaintEffectNoSchedule
		})
		if wantCP := strings.HasPrefix(n.Name, "cp-"); isCP != wantCP || hasTaint != wantCP {
			t.Errorf("node %s: control-plane label %v, taint %v, want %v", n.Name, isCP, hasTaint, wantCP)
		}
		if n.Status.NodeInfo.KubeletVersion != bed.Version || n.Status.NodeInfo.ContainerRuntimeVersion != RuntimeVersion {
			t.Errorf("node %s: kubelet %q runtime %q", n.Name, n.Status.NodeInfo.KubeletVersion, n.Status.NodeInfo.ContainerRuntimeVersion)
		}
		if int(n.Status.DaemonEndpoints.KubeletEndpoint.Port) != info.KubeletPort || info.KubeletPort == 0 {
			t.Errorf("node %s: kubelet port %d, want kwok's %d", n.Name, n.Status.DaemonEndpoints.KubeletEndpoint.Port, info.KubeletPort)
		}
	}

	// Mirror pods: 4 components on each of the 3 control planes, Running and Ready.
	mirror, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "tier=control-plane"})
	if err != nil {
		t.Fatal(err)
	}
	if len(mirror.Items) != 12 {
		t.Errorf("got %d control-plane pods, want 12", len(mirror.Items))
	}
	for _, p := range mirror.Items {
		if want := p.Labels["component"] + "-" + p.Spec.NodeName; p.Name != want {
			t.Errorf("mirror pod %s, want name %s", p.Name, want)
		}
		if p.Annotations["kubernetes.io/config.mirror"] == "" || !podReady(&p) || p.Status.PodIP != want[p.Spec.NodeName] {
			t.Errorf("mirror pod %s: mirror annotation %q, ready %v, podIP %s", p.Name, p.Annotations["kubernetes.io/config.mirror"], podReady(&p), p.Status.PodIP)
		}
	}

	// kubeadm-config and cluster-info point at the VIP, which is not a node
	// address and reaches the real apiserver with a certificate valid for it.
	cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cm.Data["ClusterConfiguration"], "controlPlaneEndpoint: "+bed.VIP+"\n") ||
		!strings.Contains(cm.Data["ClusterConfiguration"], "podSubnet: 10.244.0.0/16") {
		t.Errorf("kubeadm-config:\n%s", cm.Data["ClusterConfiguration"])
	}
	if info.ControlPlaneEndpoint != bed.VIP || !strings.HasPrefix(bed.VIP, DefaultVIPHost+":") {
		t.Errorf("endpoint %q, VIP %q", info.ControlPlaneEndpoint, bed.VIP)
	}
	ci, err := cs.CoreV1().ConfigMaps("kube-public").Get(ctx, "cluster-info", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kc, err := clientcmd.Load([]byte(ci.Data["kubeconfig"]))
	if err != nil {
		t.Fatal(err)
	}
	if c := kc.Clusters[""]; c == nil || c.Server != "https://"+bed.VIP || string(c.CertificateAuthorityData) != string(bed.CACertPEM()) {
		t.Errorf("cluster-info kubeconfig: %+v", kc.Clusters)
	}
	if body := getVia(t, bed, "https://"+bed.VIP+"/readyz"); body != "ok" {
		t.Errorf("readyz through the VIP: %q", body)
	}

	// Leader leases are held by the real controller-manager and scheduler.
	for _, name := range []string{"kube-controller-manager", "kube-scheduler"} {
		l, err := cs.CoordinationV1().Leases("kube-system").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" || l.Spec.RenewTime == nil || time.Since(l.Spec.RenewTime.Time) > time.Minute {
			t.Errorf("lease %s: %+v", name, l.Spec)
		}
	}

	// kube-proxy (DaemonSet controller) on every node, CoreDNS (Deployment + scheduler) ready.
	proxies, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-proxy"})
	if err != nil {
		t.Fatal(err)
	}
	if len(proxies.Items) != 5 {
		t.Errorf("got %d kube-proxy pods, want 5", len(proxies.Items))
	}
	dep, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := cs.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP != DNSServiceIP {
		t.Errorf("kube-dns ClusterIP %s", svc.Spec.ClusterIP)
	}
	deadline := time.Now().Add(30 * time.Second)
	for dep.Status.ReadyReplicas != 2 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		if dep, err = cs.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if dep.Status.ReadyReplicas != 2 {
		t.Errorf("coredns ready replicas %d, want 2", dep.Status.ReadyReplicas)
	}

	// `kubectl logs` through the real apiserver -> kwok's kubelet API on the node's address.
	pod := proxies.Items[0]
	lines := []string{`"Using iptables Proxier"`, "second line"}
	if err := bed.SetPodLogs(ctx, "kube-system", pod.Name, "kube-proxy", lines); err != nil {
		t.Fatal(err)
	}
	out, err := bed.Kubectl(ctx, "logs", "-n", "kube-system", pod.Name)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != strings.Join(lines, "\n") {
		t.Errorf("kubectl logs %s = %q", pod.Name, got)
	}

	// A Deployment in a test namespace lands on the workers and runs.
	ns := bed.Namespace(t)
	if out, err := bed.Kubectl(ctx, "-n", ns, "create", "deployment", "web", "--image=nginx:1.27", "--replicas=2"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := bed.Kubectl(ctx, "-n", ns, "rollout", "status", "deployment/web", "--timeout=60s"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// TestBrokenShape checks the knobs that break the shape, on a bed without
// the components (the statuses are written by ApplyHAShape), and that Stop
// leaves no process behind.
func TestBrokenShape(t *testing.T) {
	if _, err := BinDir(); err != nil {
		Start(t, Options{}) // skips, or fails under CI
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bed, err := New(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bed.Stop)
	info, err := bed.ApplyHAShape(ctx, Shape{
		EtcdMembers:          2,
		Missing:              map[string][]string{"cp-2": {"kube-apiserver"}},
		ControlPlaneEndpoint: "127.0.0.11:6443",
		KubeProxyMode:        "ipvs",
		KubeletVersions:      map[string]string{"worker-2": "v1.36.5"},
		NotReady:             []string{"worker-1"},
		StaleLeases:          true,
	})
	if err != nil {
		t.Fatal(err)
	}
	cs := bed.Client
	if !slices.Equal(info.EtcdMembers, []string{"cp-1", "cp-2"}) || info.ControlPlaneEndpoint != "127.0.0.11:6443" {
		t.Errorf("info: %+v", info)
	}
	etcd, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "component=etcd"})
	if err != nil {
		t.Fatal(err)
	}
	if len(etcd.Items) != 2 {
		t.Errorf("%d etcd pods, want 2", len(etcd.Items))
	}
	if _, err := cs.CoreV1().Pods("kube-system").Get(ctx, "kube-apiserver-cp-2", metav1.GetOptions{}); err == nil {
		t.Error("kube-apiserver-cp-2 exists, want it missing")
	}
	api, err := cs.CoreV1().Pods("kube-system").Get(ctx, "kube-apiserver-cp-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !podReady(api) || api.Annotations["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"] != "127.0.0.11:6443" {
		t.Errorf("kube-apiserver-cp-1: ready %v, annotations %v", podReady(api), api.Annotations)
	}
	proxyCM, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(proxyCM.Data["config.conf"], `mode: "ipvs"`) || !strings.Contains(proxyCM.Data["kubeconfig.conf"], "server: https://127.0.0.11:6443") {
		t.Errorf("kube-proxy configmap: %v", proxyCM.Data)
	}
	w1, err := cs.CoreV1().Nodes().Get(ctx, "worker-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if nodeReady(w1) || len(w1.Status.Conditions) == 0 {
		t.Errorf("worker-1 should be NotReady: %+v", w1.Status.Conditions)
	}
	w2, err := cs.CoreV1().Nodes().Get(ctx, "worker-2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !nodeReady(w2) || w2.Status.NodeInfo.KubeletVersion != "v1.36.5" {
		t.Errorf("worker-2: ready %v kubelet %s", nodeReady(w2), w2.Status.NodeInfo.KubeletVersion)
	}
	l, err := cs.CoordinationV1().Leases("kube-system").Get(ctx, "kube-scheduler", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if age := time.Since(l.Spec.RenewTime.Time); age < 9*time.Minute || !strings.HasPrefix(*l.Spec.HolderIdentity, "cp-1_") {
		t.Errorf("scheduler lease: age %s holder %s", age, *l.Spec.HolderIdentity)
	}
	dep, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if dep.Status.ReadyReplicas != 2 {
		t.Errorf("coredns ready %d", dep.Status.ReadyReplicas)
	}
	if _, err := bed.ApplyHAShape(ctx, Shape{}); err == nil || !strings.Contains(err.Error(), "already applied") {
		t.Errorf("second ApplyHAShape: %v", err)
	}

	pids := bed.PIDs()
	if len(pids) != 2 {
		t.Errorf("pids %v, want etcd and kube-apiserver", pids)
	}
	bed.Stop()
	for name, pid := range pids {
		if alive(pid) {
			t.Errorf("%s (pid %d) still runs after Stop", name, pid)
		}
	}
	if c, err := net.DialTimeout("tcp", bed.VIP, time.Second); err == nil {
		c.Close()
		t.Errorf("VIP %s still accepts connections after Stop", bed.VIP)
	}
}

func TestShapeValidation(t *testing.T) {
	b := &Bed{VIP: "127.0.0.100:1234", Version: "v1.37.2"}
	for _, s := range []Shape{
		{KubeProxyMode: "userspace"},
		{Missing: map[string][]string{"cp-9": {"etcd"}}},
		{Missing: map[string][]string{"cp-1": {"kubelet"}}},
		{NotReady: []string{"worker-3"}},
		{ControlPlaneEndpoint: "no-port"},
		{ControlPlanes: 12},
		{CoreDNSOnNode: "worker-7"},
		{CoreDNSOnNode: "cp-1", NotReady: []string{"cp-1"}},
	} {
		if _, err := b.planShape(&s); err == nil {
			t.Errorf("planShape(%+v) accepted", s)
		}
	}
	s := Shape{EtcdMembers: 4}
	nodes, err := b.planShape(&s)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 6 || s.ControlPlanes != 4 || nodes[3].Name != "cp-4" || nodes[3].IP != "127.0.0.14" || nodes[5].IP != "127.0.0.22" {
		t.Errorf("EtcdMembers 4: %d nodes, %+v", len(nodes), nodes[3])
	}
	if s.ControlPlaneEndpoint != b.VIP {
		t.Errorf("default endpoint %q", s.ControlPlaneEndpoint)
	}
}

func TestForwarder(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	f, err := forward("127.0.0.100:0", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through forwarder: %q %v", buf, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(buf); err == nil {
		t.Error("connection still open after Close")
	}
	c.Close()
}

func TestPKI(t *testing.T) {
	p, err := newPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := p.issue(leaf{name: "srv", cn: "srv", server: true, ips: []net.IP{net.IPv4(127, 0, 0, 100)}, dns: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.caPEM)
	for _, host := range []string{"127.0.0.100", "localhost"} {
		if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host}); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}); err == nil {
		t.Error("certificate valid for an address it does not name")
	}
}

func internalIP(n *corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

// getVia GETs url with the bed's CA and admin credentials (a plain HTTPS
// client: the VIP is checked as a client would reach it).
func getVia(t *testing.T, bed *Bed, url string) string {
	t.Helper()
	kc, err := clientcmd.LoadFromFile(bed.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	var user = kc.AuthInfos[kc.Contexts[kc.CurrentContext].AuthInfo]
	pair, err := tls.X509KeyPair(user.ClientCertificateData, user.ClientKeyData)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(bed.CACertPEM())
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}}}
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestNotReadyWithComponents: a NotReady node stays NotReady although kwok
// and the controllers run (kwok does not manage it), and the shape still settles.
func TestNotReadyWithComponents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bed := Start(t, Options{Components: true})
	info, err := bed.ApplyHAShape(ctx, Shape{NotReady: []string{"worker-2"}, Missing: map[string][]string{"cp-3": {"etcd"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range info.Nodes {
		if n.Ready != (n.Name != "worker-2") {
			t.Errorf("info: node %s ready %v", n.Name, n.Ready)
		}
	}
	time.Sleep(2 * time.Second) // give kwok a chance to (wrongly) take the node over
	w2, err := bed.Client.CoreV1().Nodes().Get(ctx, "worker-2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if nodeReady(w2) {
		t.Error("worker-2 is Ready, want NotReady")
	}
	w1, err := bed.Client.CoreV1().Nodes().Get(ctx, "worker-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !nodeReady(w1) {
		t.Error("worker-1 is not Ready")
	}
	if _, err := bed.Client.CoreV1().Pods("kube-system").Get(ctx, "etcd-cp-3", metav1.GetOptions{}); err == nil {
		t.Error("etcd-cp-3 exists, want it missing")
	}
	dns, err := bed.Client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-dns"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range dns.Items {
		if p.Spec.NodeName == "worker-2" {
			t.Errorf("coredns pod %s scheduled on the NotReady node", p.Name)
		}
	}
}
