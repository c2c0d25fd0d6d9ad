package oncluster_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/hacluster/hacluster/pkg/artifacts"
	"github.com/hacluster/hacluster/pkg/bootstrap"
	"github.com/hacluster/hacluster/pkg/dockertest"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/k8sexport"
	"github.com/hacluster/hacluster/pkg/nodebed"
	"github.com/hacluster/hacluster/pkg/stack"
	"github.com/hacluster/hacluster/pkg/testbed"
)

// One control plane and one worker: the app and MySQL land on the worker.
var bed *nodebed.Bed

func TestMain(m *testing.M) {
	os.Exit(nodebed.Main(m, nodebed.Options{Prefix: "kx", Upstream: true,
		Hosts: []nodebed.HostSpec{{Name: "cp-1"}, {Name: "worker-1"}}}, func(b *nodebed.Bed) { bed = b }))
}

// TestExportedStackOnCluster is issue 20's end to end: the sample app (it
// reads its password from config.toml) and MariaDB, exported as manifests,
// applied with kubectl to a bootstrapped cluster whose kubelets pull both
// images from a registry. Both roll out, queries go through the app's
// NodePort on each node, the password reaches the app only through the
// Secret, and the rows survive the MySQL Pod being deleted (the PVC).
func TestExportedStackOnCluster(t *testing.T) {
	if bed == nil {
		t.Skip("no node bed")
	}
	env := dockertest.New(t)
	env.RequireImage(t, dockertest.MariaDBImage)
	env.RequireImage(t, dockertest.GolangImage)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	kubectlDir, err := testbed.BinDir()
	if err != nil {
		t.Skip(err)
	}
	kubectl := filepath.Join(kubectlDir, "kubectl")

	// The cluster, as `kubectl hacluster bootstrap` makes it.
	cache := t.TempDir()
	file := filepath.Join(cache, "cluster.yaml")
	if err := os.WriteFile(file, []byte(bed.ClusterFile("kx", nodebed.SudoUser)), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := inventory.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	res, err := bootstrap.Run(ctx, c, bootstrap.Options{Artifacts: &artifacts.Store{Dir: cache}, StateDir: filepath.Join(cache, "state"), Logf: t.Logf})
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	t.Logf("bootstrapped in %s: %s", res.Duration.Round(time.Second), res.Verdict)
	// One control plane is what the file asked for: accepted, and said.
	if !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "not highly available") }) {
		t.Errorf("a one-control-plane bootstrap without the not-HA warning: %q", res.Warnings)
	}
	k := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", res.Kubeconfig}, args...)...).CombinedOutput()
		return string(out), err
	}

	// The images: the app built here, both pushed to the registry the
	// kubelets pull from (there is no other registry on this machine).
	start := time.Now()
	dir := dockertest.CopyGoApp(t)
	built := env.Build(t, dockertest.BuildSpec{Dir: dir, Tag: env.Name("h20-goapp") + ":test"})
	appImage, dbImage := nodebed.TestRegistry+"/goapp:e2e", nodebed.TestRegistry+"/mariadb:10.11"
	archive := env.Save(t, built, dockertest.MariaDBImage)
	for ref, tag := range map[string]string{appImage: built, dbImage: dockertest.MariaDBImage} {
		if _, err := bed.Upstream.PushSaved(ctx, ref, archive, tag); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("app image built, both images pushed in %s", time.Since(start).Round(100*time.Millisecond))

	// The export, as `docker k8sprep export k8s --service-type NodePort`.
	s, err := stack.Load("", stack.LoadOptions{Dir: dir, Override: func(s *stack.Stack) {
		s.Name = "shop"
		s.App.Build, s.App.Image = ".", appImage
		s.MySQL.Image, s.MySQL.Database, s.MySQL.User = dbImage, "shop", "shopper"
	}})
	if err != nil {
		t.Fatal(err)
	}
	ms, _, err := k8sexport.FromStack(s, k8sexport.Options{ServiceType: corev1.ServiceTypeNodePort})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "k8s")
	if _, err := k8sexport.Write(out, ms, false); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"10-mysql-secret.yaml", k8sexport.ConfigSecretFile} {
		if b, _ := os.ReadFile(filepath.Join(out, f)); len(b) == 0 {
			t.Fatalf("the export has no %s", f)
		}
	}

	// The claim's volume: kubeadm installs no provisioner, so a person
	// makes a PersistentVolume on the worker, as here.
	pv := `apiVersion: v1
kind: PersistentVolume
metadata: {name: shop-mysql-data}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: /var/lib/shop-mysql, type: DirectoryOrCreate}
  claimRef: {namespace: default, name: data-shop-mysql-0}
`
	pvFile := filepath.Join(cache, "pv.yaml")
	if err := os.WriteFile(pvFile, []byte(pv), 0o644); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	for _, f := range []string{pvFile, out} {
		if got, err := k("apply", "-f", f); err != nil {
			t.Fatalf("kubectl apply -f %s: %v\n%s", f, err, got)
		}
	}
	rollout := func(what string) {
		t.Helper()
		if got, err := k("rollout", "status", what, "--timeout=5m"); err != nil {
			pods, _ := k("get", "pods", "-o", "wide")
			desc, _ := k("describe", "pods")
			t.Fatalf("rollout %s: %v\n%s\n%s\n%s", what, err, got, pods, desc)
		}
	}
	rollout("statefulset/shop-mysql")
	rollout("deployment/shop-app")
	t.Logf("exported MySQL and app rolled out in %s", time.Since(start).Round(100*time.Millisecond))

	nodePort, err := k("get", "service", "shop-app", "-o", "jsonpath={.spec.ports[0].nodePort}")
	if err != nil || strings.TrimSpace(nodePort) == "" {
		t.Fatalf("the app Service's node port: %v %s", err, nodePort)
	}
	env0, err := k("get", "deployment", "shop-app", "-o", "jsonpath={.spec.template.spec.containers[0].env[*].name}")
	if err != nil || strings.Contains(env0, "PASSWORD") {
		t.Fatalf("the app's environment: %v %q", err, env0)
	}
	// Every node answers on the node port (kube-proxy); the rows count up.
	rows := int64(0)
	for _, h := range []string{"worker-1", "cp-1", "worker-1"} {
		rt := dockertest.GetRoundtrip(t, fmt.Sprintf("http://%s:%s", bed.Host(h).Address, strings.TrimSpace(nodePort)))
		rows++
		if !rt.OK || rt.Rows != rows {
			t.Fatalf("roundtrip %d through %s's node port: %+v", rows, h, rt)
		}
	}

	// The data outlives the MySQL Pod.
	if got, err := k("delete", "pod", "shop-mysql-0", "--wait=true"); err != nil {
		t.Fatalf("%v %s", err, got)
	}
	start = time.Now()
	rollout("statefulset/shop-mysql")
	rt := dockertest.GetRoundtrip(t, fmt.Sprintf("http://%s:%s", bed.Host("worker-1").Address, strings.TrimSpace(nodePort)))
	if !rt.OK || rt.Rows != rows+1 {
		t.Fatalf("roundtrip after the MySQL Pod was replaced: %+v (want %d rows)", rt, rows+1)
	}
	t.Logf("after the MySQL Pod was replaced (%s), %d rows: the data is on the volume", time.Since(start).Round(100*time.Millisecond), rt.Rows)
}
