package k8sexport_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hacluster/hacluster/pkg/k8sexport"
	"github.com/hacluster/hacluster/pkg/stack"
	"github.com/hacluster/hacluster/pkg/testbed"
)

// TestManifestsOnTestbed applies the exported manifests to a real
// kube-apiserver with the controllers, the scheduler and kwok nodes: the API
// validates every object, the PVC binds, and both Pods are scheduled on the
// workers and become Ready.
func TestManifestsOnTestbed(t *testing.T) {
	bed := testbed.Start(t, testbed.Options{Components: true})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if _, err := bed.ApplyHAShape(ctx, testbed.Shape{}); err != nil {
		t.Fatal(err)
	}
	ns := bed.Namespace(t)

	dir := t.TempDir()
	config := "[mysql]\n  database = \"x\"\n  ip = \"127.0.0.1\"\n  password = \"12345678\"\n  port = 8806\n  user = \"root\"\n"
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o644)
	s, err := stack.Load("", stack.LoadOptions{Dir: dir, Override: func(s *stack.Stack) { s.Name = "shop" }})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := s.EnsureSecrets()
	if err != nil {
		t.Fatal(err)
	}
	ms, err := k8sexport.Build(s, sec.Password, sec.RootPassword, []byte(config), k8sexport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "k8s")
	if _, err := k8sexport.Write(out, ms, false); err != nil {
		t.Fatal(err)
	}

	// The bed has no storage provisioner: a PersistentVolume for the claim.
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-mysql"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/k8sprep-test"}},
			ClaimRef:                      &corev1.ObjectReference{Namespace: ns, Name: "data-shop-mysql-0"},
		},
	}
	if _, err := bed.Client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		bed.Client.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
	})

	applied, err := bed.Kubectl(ctx, "apply", "-n", ns, "-f", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, applied)
	}
	for _, want := range []string{"secret/shop-mysql created", "service/shop-mysql created", "statefulset.apps/shop-mysql created",
		"secret/shop-config created", "deployment.apps/shop-app created", "service/shop-app created"} {
		if !strings.Contains(string(applied), want) {
			t.Errorf("kubectl apply output lacks %q:\n%s", want, applied)
		}
	}

	// Both Pods are scheduled on workers (the control planes are tainted) and Ready.
	var last string
	for {
		pods, err := bed.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=shop"})
		if err != nil {
			t.Fatal(err)
		}
		ready := 0
		var states []string
		for _, p := range pods.Items {
			ok := false
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					ok = true
				}
			}
			states = append(states, p.Name+" on "+p.Spec.NodeName+" ready="+map[bool]string{true: "yes", false: "no"}[ok])
			if ok && strings.HasPrefix(p.Spec.NodeName, "worker-") {
				ready++
			}
		}
		last = strings.Join(states, ", ")
		if ready == 2 && len(pods.Items) == 2 {
			break
		}
		select {
		case <-ctx.Done():
			ev, _ := bed.Kubectl(context.Background(), "get", "events", "-n", ns)
			t.Fatalf("pods not scheduled and ready: %s\n%s", last, ev)
		case <-time.After(500 * time.Millisecond):
		}
	}
	t.Logf("pods: %s", last)
	pvc, err := bed.Client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data-shop-mysql-0", metav1.GetOptions{})
	if err != nil || pvc.Status.Phase != corev1.ClaimBound {
		t.Errorf("PVC: %v %v", pvc.Status.Phase, err)
	}
	svc, err := bed.Client.CoreV1().Services(ns).Get(ctx, "shop-mysql", metav1.GetOptions{})
	if err != nil || svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("mysql Service: %v %v", svc.Spec.ClusterIP, err)
	}
	cs, err := bed.Client.CoreV1().Secrets(ns).Get(ctx, "shop-config", metav1.GetOptions{})
	if err != nil || !strings.Contains(string(cs.Data["config.toml"]), `ip = "shop-mysql"`) || !strings.Contains(string(cs.Data["config.toml"]), sec.Password) {
		t.Errorf("config Secret: %v", err)
	}
	// Applying again changes nothing.
	again, err := bed.Kubectl(ctx, "apply", "-n", ns, "-f", out)
	if err != nil || strings.Contains(string(again), "configured") {
		live, _ := bed.Kubectl(ctx, "get", "-n", ns, "statefulset,deployment", "-o", "yaml")
		t.Errorf("second apply: %v\n%s\nlive:\n%s", err, again, live)
	}
}
