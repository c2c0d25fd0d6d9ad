package addons_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	core "github.com/hacluster/hacluster/pkg/addons"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/addons"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/factory"
	"github.com/hacluster/hacluster/pkg/testbed"
)

const fixtures = "../../../addons/testdata"

// run executes `kubectl hacluster addons ARGS` in-process against kubeconfig.
func run(t *testing.T, kubeconfig string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	f := factory.ForKubeconfig(kubeconfig, "", genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	cmd := addons.NewCmd(f)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func mustRun(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	out, errOut, err := run(t, kubeconfig, args...)
	if err != nil {
		t.Fatalf("addons %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func sha(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// manifestServer serves the fixtures like upstream serves the real files,
// plus variants under /broken/<case>/.
type manifestServer struct {
	*httptest.Server
	files map[string][]byte
}

func newManifestServer(t *testing.T) *manifestServer {
	s := &manifestServer{files: map[string][]byte{}}
	for _, rel := range []string{"calico/calico.yaml", "metrics-server/components.yaml", "headlamp/kubernetes-headlamp.yaml", "dashboard/recommended.yaml"} {
		b, err := os.ReadFile(filepath.Join(fixtures, rel))
		if err != nil {
			t.Fatal(err)
		}
		s.files["/"+rel] = b
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := s.files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

// catalog writes a catalog file like the built-in one, with URLs on the
// test server and the real sha256 of what it serves; override maps an
// add-on to another path (whose content is then not what is pinned).
func (s *manifestServer) catalog(t *testing.T, override map[string]string) string {
	t.Helper()
	cat := core.Builtin()
	for i := range cat.Addons {
		a := &cat.Addons[i]
		file := a.Sources[0].FileName()
		path := "/" + a.Name + "/" + file
		a.Sources[0] = core.Source{URL: s.URL + path, SHA256: sha(s.files[path])}
		if o, ok := override[a.Name]; ok {
			a.Sources[0].URL = s.URL + o
		}
	}
	b, err := yaml.Marshal(cat)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "catalog.yaml")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

var (
	crdGVR   = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	poolsCRD = "ippools.crd.projectcalico.org"
)

func notFound(t *testing.T, err error, what string) {
	t.Helper()
	if !apierrors.IsNotFound(err) {
		t.Fatalf("%s: want NotFound, got %v", what, err)
	}
}

// TestAddonsOnHAShape installs, re-installs, checks and removes the four
// add-ons on a real kube-apiserver with controller-manager, scheduler and
// kwok, the kubeadm HA shape (3 control planes, 2 workers, podSubnet
// 10.244.0.0/16), serving the manifests from a local HTTP server.
func TestAddonsOnHAShape(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bed := testbed.Start(t, testbed.Options{Components: true})
	if _, err := bed.ApplyHAShape(ctx, testbed.Shape{}); err != nil {
		t.Fatal(err)
	}
	kc := bed.Kubeconfig
	srv := newManifestServer(t)
	good := srv.catalog(t, nil)
	cs := bed.Client

	t.Run("checksum mismatch", func(t *testing.T) {
		orig := srv.files["/metrics-server/components.yaml"]
		srv.files["/tampered/components.yaml"] = bytes.Replace(orig, []byte("--metric-resolution=15s"), []byte("--metric-resolution=1s"), 1)
		cat := srv.catalog(t, map[string]string{"metrics-server": "/tampered/components.yaml"})
		// calico's manifest is fine, metrics-server's was tampered with:
		// everything is verified before anything is applied.
		_, _, err := run(t, kc, "install", "calico", "metrics-server", "--catalog", cat)
		if err == nil || !strings.Contains(err.Error(), "checksum mismatch") || !strings.Contains(err.Error(), sha(orig)) {
			t.Fatalf("err = %v", err)
		}
		_, err = bed.Dynamic.Resource(crdGVR).Get(ctx, poolsCRD, metav1.GetOptions{})
		notFound(t, err, "calico CRD after another add-on's checksum mismatch")
		_, err = cs.AppsV1().Deployments("kube-system").Get(ctx, "metrics-server", metav1.GetOptions{})
		notFound(t, err, "deployment metrics-server after a checksum mismatch")
		// The built-in catalog pins nothing: a URL install needs --sha256.
		_, _, err = run(t, kc, "install", "calico")
		if err == nil || !strings.Contains(err.Error(), "no pinned sha256") {
			t.Fatalf("unpinned built-in: %v", err)
		}
	})

	t.Run("bad manifests apply nothing", func(t *testing.T) {
		cal := string(srv.files["/calico/calico.yaml"])
		cases := map[string]struct{ body, want string }{
			"syntax":        {cal + "\n---\nkind: [\n", "document"},
			"unknown kind":  {strings.Replace(cal, "kind: Deployment", "kind: Deploymnet", 1), "Deploymnet"},
			"unknown field": {strings.Replace(cal, "      hostNetwork: true", "      hostNetwork: true\n      hostNetwrk: true", 1), "hostNetwrk"},
			"cidr mismatch": {strings.Replace(cal, "# - name: CALICO_IPV4POOL_CIDR\n            #   value: \"192.168.0.0/16\"", "- name: CALICO_IPV4POOL_CIDR\n              value: \"192.168.0.0/16\"", 1), "10.244.0.0/16"},
		}
		for name, c := range cases {
			if c.body == cal {
				t.Fatalf("%s: the fixture edit did not apply", name)
			}
			// Another file name than the catalog's, so the pin does not
			// stop it first: a local copy the user edited.
			file := filepath.Join(t.TempDir(), "calico-edited.yaml")
			os.WriteFile(file, []byte(c.body), 0o644)
			_, _, err := run(t, kc, "install", "calico", "--from", file, "--catalog", good)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: err = %v, want it to mention %q", name, err, c.want)
			}
			if err != nil && strings.Contains(err.Error(), "checksum") {
				t.Errorf("%s: stopped by the checksum, not by the check under test", name)
			}
		}
		_, err := bed.Dynamic.Resource(crdGVR).Get(ctx, poolsCRD, metav1.GetOptions{})
		notFound(t, err, "calico CRD after refused installs")
		_, err = cs.CoreV1().ConfigMaps("kube-system").Get(ctx, core.InventoryName("calico"), metav1.GetOptions{})
		notFound(t, err, "calico inventory after refused installs")
	})

	t.Run("dry run changes nothing", func(t *testing.T) {
		out := mustRun(t, kc, "install", "calico", "dashboard", "--catalog", good, "--dry-run=server")
		if !strings.Contains(out, "customresourcedefinition.apiextensions.k8s.io/"+poolsCRD+" created (server dry run)") ||
			!strings.Contains(out, "daemonset.apps/kube-system/calico-node created (server dry run)") ||
			!strings.Contains(out, "deployment.apps/kubernetes-dashboard/kubernetes-dashboard created (server dry run)") {
			t.Errorf("dry-run output:\n%s", out)
		}
		_, err := bed.Dynamic.Resource(crdGVR).Get(ctx, poolsCRD, metav1.GetOptions{})
		notFound(t, err, "CRD after dry run")
		_, err = cs.CoreV1().Namespaces().Get(ctx, "kubernetes-dashboard", metav1.GetOptions{})
		notFound(t, err, "dashboard namespace after dry run")
	})

	// An object that exists before the install (as if applied by hand from
	// the article) is adopted, and kept by uninstall.
	if _, err := cs.CoreV1().ServiceAccounts("kube-system").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "metrics-server"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("install", func(t *testing.T) {
		start := time.Now()
		out, errOut, err := run(t, kc, "install", "calico", "metrics-server", "headlamp", "dashboard", "--catalog", good, "-o", "json", "--timeout", "3m")
		if err != nil {
			t.Fatalf("install: %v\n%s\n%s", err, out, errOut)
		}
		t.Logf("install of 4 add-ons incl. waiting for workloads: %s", time.Since(start).Round(time.Millisecond))
		if !strings.Contains(errOut, "waiting for 3 CRDs to be Established") || !strings.Contains(errOut, "waiting for daemonset kube-system/calico-node to be ready") {
			t.Errorf("progress on stderr:\n%s", errOut)
		}
		var rep addons.InstallReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("stdout is not the JSON report: %v\n%s", err, out)
		}
		if len(rep.Results) != 4 {
			t.Fatalf("results: %d", len(rep.Results))
		}
		order := []string{}
		for _, r := range rep.Results {
			order = append(order, r.Addon)
			for _, o := range r.Objects {
				if o.Action != "created" && !(o.Kind == "ServiceAccount" && o.Name == "metrics-server") {
					t.Errorf("%s %s: %s", r.Addon, o.Ref, o.Action)
				}
			}
		}
		if strings.Join(order, ",") != "calico,metrics-server,headlamp,dashboard" {
			t.Errorf("install order %v (the CNI goes first)", order)
		}
		// CRDs first: the calico result lists them before anything else.
		if k := rep.Results[0].Objects[0].Kind; k != "CustomResourceDefinition" {
			t.Errorf("first object applied: %s", k)
		}
		// Fitted to the cluster.
		ds, err := cs.AppsV1().DaemonSets("kube-system").Get(ctx, "calico-node", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		env := ds.Spec.Template.Spec.Containers[0].Env
		if i := slices.IndexFunc(env, func(e corev1.EnvVar) bool { return e.Name == "CALICO_IPV4POOL_CIDR" }); i < 0 || env[i].Value != testbed.PodSubnet {
			t.Errorf("calico pool env: %+v", env)
		}
		if ds.Status.NumberReady != 5 || ds.Labels[core.LabelAddon] != "calico" {
			t.Errorf("calico-node: %d ready, labels %v", ds.Status.NumberReady, ds.Labels)
		}
		if ms, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "metrics-server", metav1.GetOptions{}); err != nil || slices.Contains(ms.Spec.Template.Spec.Containers[0].Args, "--kubelet-insecure-tls") {
			t.Errorf("metrics-server: %v %v", err, ms.Spec.Template.Spec.Containers[0].Args)
		}
		if hl, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "headlamp", metav1.GetOptions{}); err != nil || hl.Spec.Template.Spec.Containers[0].Image != "ghcr.io/headlamp-k8s/headlamp:v0.45.0" {
			t.Errorf("headlamp image not pinned: %v", err)
		}
		if _, err := cs.CoreV1().Secrets("kube-system").Get(ctx, "headlamp-admin", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("headlamp's long-lived admin token Secret: %v", err)
		}
		mf := ds.ManagedFields
		if !slices.ContainsFunc(mf, func(m metav1.ManagedFieldsEntry) bool {
			return m.Manager == "kubectl-hacluster" && m.Operation == metav1.ManagedFieldsOperationApply
		}) {
			t.Errorf("no server-side apply by kubectl-hacluster in managedFields")
		}
	})

	t.Run("re-run is a no-op", func(t *testing.T) {
		before, _ := cs.AppsV1().DaemonSets("kube-system").Get(ctx, "calico-node", metav1.GetOptions{})
		out := mustRun(t, kc, "install", "calico", "metrics-server", "headlamp", "dashboard", "--catalog", good, "-o", "json")
		var rep addons.InstallReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range rep.Results {
			for _, o := range r.Objects {
				n++
				if o.Action != "unchanged" {
					t.Errorf("re-run: %s %s %s", r.Addon, o.Ref, o.Action)
				}
			}
		}
		after, _ := cs.AppsV1().DaemonSets("kube-system").Get(ctx, "calico-node", metav1.GetOptions{})
		if before.ResourceVersion != after.ResourceVersion {
			t.Errorf("calico-node rewritten: %s -> %s", before.ResourceVersion, after.ResourceVersion)
		}
		t.Logf("re-run: %d objects, all unchanged", n)
		// A server-side dry run of the same is also all unchanged.
		out = mustRun(t, kc, "install", "metrics-server", "--catalog", good, "--dry-run=server")
		if strings.Contains(out, " created") || strings.Contains(out, " configured") {
			t.Errorf("dry run after install:\n%s", out)
		}
	})

	t.Run("status", func(t *testing.T) {
		out := mustRun(t, kc, "status", "--catalog", good, "-o", "json")
		var rep addons.StatusReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		byName := map[string]core.AddonStatus{}
		for _, s := range rep.Addons {
			byName[s.Name] = s
		}
		cal := byName["calico"]
		if !cal.Installed || cal.Version != "v3.33.1" || cal.State != "Ready" || len(cal.Workloads) != 2 {
			t.Errorf("calico: %+v", cal)
		}
		for _, w := range cal.Workloads {
			if w.Kind == "DaemonSet" && (w.Nodes != 5 || w.Ready != 5 || !w.OK) {
				t.Errorf("calico-node: %+v", w)
			}
		}
		ms := byName["metrics-server"]
		if len(ms.APIServices) != 1 || ms.APIServices[0].Name != "v1beta1.metrics.k8s.io" || len(ms.Workloads) != 1 || !ms.Workloads[0].OK {
			t.Fatalf("metrics-server: %+v", ms)
		}
		// No real metrics-server answers on the bed (kwok pods run no
		// containers), so the aggregated API cannot become Available.
		as := ms.APIServices[0]
		if as.Available || ms.State != "NotReady" || as.Reason == "" {
			t.Errorf("metrics APIService on the bed: %+v (state %s)", as, ms.State)
		}
		t.Logf("metrics.k8s.io APIService: available=%v reason=%s message=%s", as.Available, as.Reason, as.Message)
		for _, n := range []string{"headlamp", "dashboard"} {
			if s := byName[n]; s.State != "Ready" || !strings.Contains(s.Access, "port-forward") {
				t.Errorf("%s: %+v", n, s)
			}
		}
		if !strings.Contains(byName["dashboard"].Note, "archived") {
			t.Errorf("dashboard note: %q", byName["dashboard"].Note)
		}
		table := mustRun(t, kc, "status", "--catalog", good)
		t.Logf("addons status on the HA shape:\n%s", table)
		for _, want := range []string{"calico", "daemonset/calico-node 5/5 ready, scheduled on 5 of 5 nodes", "apiservice/v1beta1.metrics.k8s.io not Available", "serverTLSBootstrap: true"} {
			if !strings.Contains(table, want) {
				t.Errorf("status table lacks %q", want)
			}
		}
	})

	t.Run("login token", func(t *testing.T) {
		out := mustRun(t, kc, "token", "headlamp", "--catalog", good, "-o", "json", "--duration", "20m")
		var tok core.Token
		if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.Token == "" {
			t.Fatalf("token: %v %s", err, out)
		}
		if d := time.Until(tok.Expires); d < 15*time.Minute || d > 25*time.Minute {
			t.Errorf("token expires in %s", d)
		}
		tr, err := cs.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: tok.Token}}, metav1.CreateOptions{})
		if err != nil || !tr.Status.Authenticated || tr.Status.User.Username != "system:serviceaccount:kube-system:hacluster-headlamp-viewer" {
			t.Fatalf("token review: %v %+v", err, tr.Status)
		}
		can := func(verb, resource string) bool {
			sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{User: tr.Status.User.Username, Groups: tr.Status.User.Groups,
				ResourceAttributes: &authzv1.ResourceAttributes{Verb: verb, Resource: resource, Namespace: "default"}}}
			r, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return r.Status.Allowed
		}
		if !can("list", "pods") || !can("list", "nodes") || can("get", "secrets") || can("delete", "pods") {
			t.Errorf("viewer rights: list pods %v, list nodes %v, get secrets %v, delete pods %v", can("list", "pods"), can("list", "nodes"), can("get", "secrets"), can("delete", "pods"))
		}
		if _, _, err := run(t, kc, "token", "dashboard", "--admin", "--catalog", good); err == nil || !strings.Contains(err.Error(), "--admin") {
			t.Errorf("admin token without --admin install: %v", err)
		}
		if _, _, err := run(t, kc, "token", "calico", "--catalog", good); err == nil {
			t.Error("token for calico")
		}
	})

	t.Run("upgrade prunes", func(t *testing.T) {
		mustRun(t, kc, "install", "dashboard", "--admin", "--catalog", good)
		if _, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, core.AdminAccount("dashboard"), metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
		out := mustRun(t, kc, "token", "dashboard", "--admin", "--catalog", good)
		if len(strings.TrimSpace(out)) < 100 {
			t.Errorf("admin token: %q", out)
		}
		out = mustRun(t, kc, "install", "dashboard", "--catalog", good)
		if !strings.Contains(out, "clusterrolebinding.rbac.authorization.k8s.io/"+core.AdminAccount("dashboard")+" pruned") {
			t.Errorf("install without --admin:\n%s", out)
		}
		_, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, core.AdminAccount("dashboard"), metav1.GetOptions{})
		notFound(t, err, "admin binding after install without --admin")
	})

	t.Run("uninstall", func(t *testing.T) {
		// While the metrics APIService is unavailable, the namespace
		// controller cannot delete any namespace: uninstall says why.
		start := time.Now()
		_, _, err := run(t, kc, "uninstall", "dashboard", "--catalog", good)
		if err == nil || !strings.Contains(err.Error(), "namespace kubernetes-dashboard cannot finish deleting") || !strings.Contains(err.Error(), "metrics.k8s.io") {
			t.Fatalf("uninstall dashboard with a broken metrics API: %v", err)
		}
		t.Logf("stuck namespace reported after %s: %v", time.Since(start).Round(time.Millisecond), err)
		// Fixing the cause unblocks it (the namespace controller retries
		// with a back-off, so dashboard goes last).
		for _, n := range []string{"metrics-server", "headlamp", "calico", "dashboard"} {
			start := time.Now()
			out := mustRun(t, kc, "uninstall", n, "--catalog", good, "-o", "json")
			var res core.UninstallResult
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatal(err)
			}
			if len(res.Leftovers) != 0 || len(res.Objects) == 0 {
				t.Errorf("%s: %+v", n, res)
			}
			t.Logf("uninstall %s: %d objects in %s", n, len(res.Objects), time.Since(start).Round(time.Millisecond))
		}
		// Calico's CRDs went with it (they are deleted last).
		_, err = bed.Dynamic.Resource(crdGVR).Get(ctx, poolsCRD, metav1.GetOptions{})
		notFound(t, err, "calico CRD")
		_, err = cs.CoreV1().Namespaces().Get(ctx, "kubernetes-dashboard", metav1.GetOptions{})
		notFound(t, err, "dashboard namespace")
		sel := metav1.ListOptions{LabelSelector: core.LabelAddon}
		for what, list := range map[string]func() (int, error){
			"daemonsets":   func() (int, error) { l, err := cs.AppsV1().DaemonSets("").List(ctx, sel); return len(l.Items), err },
			"deployments":  func() (int, error) { l, err := cs.AppsV1().Deployments("").List(ctx, sel); return len(l.Items), err },
			"services":     func() (int, error) { l, err := cs.CoreV1().Services("").List(ctx, sel); return len(l.Items), err },
			"configmaps":   func() (int, error) { l, err := cs.CoreV1().ConfigMaps("").List(ctx, sel); return len(l.Items), err },
			"clusterroles": func() (int, error) { l, err := cs.RbacV1().ClusterRoles().List(ctx, sel); return len(l.Items), err },
			"bindings": func() (int, error) {
				l, err := cs.RbacV1().ClusterRoleBindings().List(ctx, sel)
				return len(l.Items), err
			},
		} {
			if n, err := list(); err != nil || n != 0 {
				t.Errorf("%s labelled %s left: %d (%v)", what, core.LabelAddon, n, err)
			}
		}
		// Pods go with their owners (garbage collector).
		deadline := time.Now().Add(time.Minute)
		for {
			pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app in (calico-node,calico-kube-controllers,metrics-server,headlamp,kubernetes-dashboard)"})
			if err != nil {
				t.Fatal(err)
			}
			if len(pods.Items) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d add-on pods left a minute after uninstall", len(pods.Items))
			}
			time.Sleep(500 * time.Millisecond)
		}
		// The ServiceAccount that existed before the install is kept.
		if _, err := cs.CoreV1().ServiceAccounts("kube-system").Get(ctx, "metrics-server", metav1.GetOptions{}); err != nil {
			t.Errorf("pre-existing ServiceAccount: %v", err)
		}
		out := mustRun(t, kc, "status", "--catalog", good, "-o", "json")
		var rep addons.StatusReport
		json.Unmarshal([]byte(out), &rep)
		for _, s := range rep.Addons {
			if s.Installed || s.State != "NotInstalled" {
				t.Errorf("after uninstall: %+v", s)
			}
		}
		if _, _, err := run(t, kc, "uninstall", "calico", "--catalog", good); err == nil || !strings.Contains(err.Error(), "not installed") {
			t.Errorf("second uninstall: %v", err)
		}
	})

	t.Run("README examples", func(t *testing.T) { readmeExamples(t, bed, good) })
}
