package addons

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func fixture(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuiltinCatalog(t *testing.T) {
	c := Builtin()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []string{"calico", "metrics-server", "headlamp", "dashboard"}
	if got := strings.Join(c.Names(), ","); got != strings.Join(want, ",") {
		t.Fatalf("names = %s, want %v", got, want)
	}
	for _, a := range c.Addons {
		for _, s := range a.Sources {
			if !strings.HasPrefix(s.URL, "https://") || !strings.Contains(s.URL, a.Version) {
				t.Errorf("%s: source %s is not an https URL pinned to %s", a.Name, s.URL, a.Version)
			}
			// No checksum may be made up: the real files could not be downloaded here.
			if s.SHA256 != "" {
				t.Errorf("%s: built-in sha256 %s was not computed from the upstream file on this machine", a.Name, s.SHA256)
			}
		}
	}
	d, _ := c.Get("dashboard")
	if d.Status != "archived" || !strings.Contains(d.Note, "January 2026") || !strings.Contains(d.Note, "headlamp") {
		t.Errorf("dashboard must say it is archived and recommend headlamp: %+v", d)
	}
	h, _ := c.Get("headlamp")
	if h.Status != "recommended" {
		t.Errorf("headlamp status = %q", h.Status)
	}
	if _, err := c.Get("flannel"); err == nil || !strings.Contains(err.Error(), "calico") {
		t.Errorf("unknown add-on error = %v", err)
	}
}

func TestLoadCatalogFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "c.yaml")
	os.WriteFile(good, []byte(`addons:
- name: metrics-server
  version: v0.8.1
  description: mirror
  status: supported
  sources:
  - url: https://mirror.example/components.yaml
    sha256: `+strings.Repeat("ab", 32)+`
`), 0o644)
	c, err := LoadCatalog(good)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := c.Get("metrics-server"); !a.Pinned() {
		t.Fatal("entry with a sha256 is not pinned")
	}
	for name, body := range map[string]string{
		"badsum":  "addons:\n- name: calico\n  version: v1\n  sources: [{url: 'https://x/calico.yaml', sha256: 'nothex'}]\n",
		"unknown": "addons:\n- name: flannel\n  version: v1\n  sources: [{url: 'https://x/f.yaml'}]\n",
		"typo":    "addons:\n- name: calico\n  verison: v1\n",
		"nourl":   "addons:\n- name: calico\n  version: v1\n  sources: [{url: '/tmp/calico.yaml'}]\n",
	} {
		f := filepath.Join(dir, name+".yaml")
		os.WriteFile(f, []byte(body), 0o644)
		if _, err := LoadCatalog(f); err == nil {
			t.Errorf("%s: catalog accepted", name)
		}
	}
}

func TestParse(t *testing.T) {
	objs, err := Parse("calico.yaml", fixture(t, "calico/calico.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.GetKind()]++
	}
	if kinds["CustomResourceDefinition"] != 3 || kinds["DaemonSet"] != 1 || kinds["Deployment"] != 1 {
		t.Fatalf("kinds = %v", kinds)
	}
	list := "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n---\n# only a comment\n---\n"
	objs, err = Parse("list.yaml", []byte(list))
	if err != nil || len(objs) != 2 {
		t.Fatalf("List: %d objects, %v", len(objs), err)
	}
	bad := map[string]string{
		"syntax":   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: [unclosed\n",
		"noname":   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: a-\n",
		"nokind":   "apiVersion: v1\nmetadata:\n  name: a\n",
		"noapi":    "kind: ConfigMap\nmetadata:\n  name: a\n",
		"empty":    "# nothing\n---\n",
		"badgroup": "apiVersion: a/b/c\nkind: X\nmetadata: {name: a}\n",
	}
	for name, body := range bad {
		_, err := Parse(name+".yaml", []byte(body))
		if err == nil {
			t.Errorf("%s: parsed", name)
			continue
		}
		if !strings.HasPrefix(err.Error(), name+".yaml") {
			t.Errorf("%s: error does not name the file: %v", name, err)
		}
	}
	if _, err := Parse("s.yaml", []byte(bad["syntax"])); !strings.Contains(err.Error(), "document 2") {
		t.Errorf("syntax error does not name the document: %v", err)
	}
}

func calicoObjs(t *testing.T) []*unstructured.Unstructured {
	objs, err := Parse("calico.yaml", fixture(t, "calico/calico.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func poolCIDR(t *testing.T, objs []*unstructured.Unstructured) string {
	t.Helper()
	c, _, err := container(find(objs, "DaemonSet", "calico-node"), "calico-node")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range c["env"].([]any) {
		if m := e.(map[string]any); m["name"] == calicoPoolEnv {
			return m["value"].(string)
		}
	}
	return ""
}

func setPool(t *testing.T, objs []*unstructured.Unstructured, v string) {
	c, save, err := container(find(objs, "DaemonSet", "calico-node"), "calico-node")
	if err != nil {
		t.Fatal(err)
	}
	c["env"] = append(c["env"].([]any), map[string]any{"name": calicoPoolEnv, "value": v})
	if err := save(); err != nil {
		t.Fatal(err)
	}
}

func TestFitCalico(t *testing.T) {
	cal, _ := Builtin().Get("calico")
	// Unset in the manifest: taken from podSubnet, labelled.
	objs, notes, err := Fit(cal, calicoObjs(t), Facts{PodSubnet: "10.244.0.0/16"}, FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := poolCIDR(t, objs); got != "10.244.0.0/16" {
		t.Fatalf("pool = %q", got)
	}
	if len(notes) == 0 || !strings.Contains(notes[0], "podSubnet") {
		t.Errorf("notes = %v", notes)
	}
	for _, o := range objs {
		if o.GetLabels()[LabelAddon] != "calico" || o.GetAnnotations()[AnnotationVersion] != cal.Version {
			t.Fatalf("%s not labelled", RefOf(o))
		}
	}
	// Dual-stack podSubnet: the IPv4 part; a non-canonical manifest value that matches.
	objs = calicoObjs(t)
	setPool(t, objs, "10.244.1.0/16")
	objs, _, err = Fit(cal, objs, Facts{PodSubnet: "fd00::/56,10.244.0.0/16"}, FitOptions{})
	if err != nil || poolCIDR(t, objs) != "10.244.0.0/16" {
		t.Fatalf("dual stack: %v %q", err, poolCIDR(t, objs))
	}
	// Mismatch refused.
	objs = calicoObjs(t)
	setPool(t, objs, "192.168.0.0/16")
	_, _, err = Fit(cal, objs, Facts{PodSubnet: "10.244.0.0/16"}, FitOptions{})
	if err == nil || !strings.Contains(err.Error(), "192.168.0.0/16") || !strings.Contains(err.Error(), "10.244.0.0/16") || !strings.Contains(err.Error(), "--pod-cidr") {
		t.Fatalf("mismatch: %v", err)
	}
	// ... unless the user chooses explicitly.
	objs = calicoObjs(t)
	setPool(t, objs, "192.168.0.0/16")
	objs, _, err = Fit(cal, objs, Facts{PodSubnet: "10.244.0.0/16"}, FitOptions{PodCIDR: "172.16.0.0/16"})
	if err != nil || poolCIDR(t, objs) != "172.16.0.0/16" {
		t.Fatalf("override: %v %q", err, poolCIDR(t, objs))
	}
	// No podSubnet and no override: refuse rather than guess.
	if _, _, err := Fit(cal, calicoObjs(t), Facts{}, FitOptions{}); err == nil || !strings.Contains(err.Error(), "--pod-cidr") {
		t.Fatalf("no podSubnet: %v", err)
	}
	if _, _, err := Fit(cal, calicoObjs(t), Facts{}, FitOptions{PodCIDR: "nonsense"}); err == nil {
		t.Fatal("bad --pod-cidr accepted")
	}
	// Not a calico manifest.
	ms, _ := Parse("c.yaml", fixture(t, "metrics-server/components.yaml"))
	if _, _, err := Fit(cal, ms, Facts{PodSubnet: "10.244.0.0/16"}, FitOptions{}); err == nil {
		t.Fatal("metrics-server manifest accepted as calico")
	}
}

func msArgs(t *testing.T, objs []*unstructured.Unstructured) string {
	c, _, err := container(find(objs, "Deployment", "metrics-server"), "metrics-server")
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, a := range c["args"].([]any) {
		s = append(s, a.(string))
	}
	return strings.Join(s, " ")
}

func TestFitMetricsServer(t *testing.T) {
	ms, _ := Builtin().Get("metrics-server")
	objs, _ := Parse("c.yaml", fixture(t, "metrics-server/components.yaml"))
	objs, notes, err := Fit(ms, objs, Facts{}, FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(msArgs(t, objs), insecureTLSFlag) || !strings.Contains(strings.Join(notes, "\n"), "serverTLSBootstrap") {
		t.Fatalf("secure default: args %q notes %v", msArgs(t, objs), notes)
	}
	// A manifest that already skips verification is made secure.
	withFlag := strings.Replace(string(fixture(t, "metrics-server/components.yaml")), "- --metric-resolution=15s", "- --metric-resolution=15s\n        - --kubelet-insecure-tls", 1)
	objs, _ = Parse("c.yaml", []byte(withFlag))
	objs, notes, _ = Fit(ms, objs, Facts{}, FitOptions{})
	if strings.Contains(msArgs(t, objs), insecureTLSFlag) || !strings.Contains(notes[0], "removed") {
		t.Fatalf("flag kept: %q %v", msArgs(t, objs), notes)
	}
	objs, _ = Parse("c.yaml", fixture(t, "metrics-server/components.yaml"))
	objs, _, _ = Fit(ms, objs, Facts{}, FitOptions{KubeletInsecureTLS: true})
	if strings.Count(msArgs(t, objs), insecureTLSFlag) != 1 {
		t.Fatalf("explicit flag: %q", msArgs(t, objs))
	}
}

func TestFitUI(t *testing.T) {
	h, _ := Builtin().Get("headlamp")
	objs, _ := Parse("h.yaml", fixture(t, "headlamp/kubernetes-headlamp.yaml"))
	objs, notes, err := Fit(h, objs, Facts{}, FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if find(objs, "Secret", "headlamp-admin") != nil {
		t.Error("long-lived admin token Secret kept")
	}
	if find(objs, "ServiceAccount", ViewerAccount("headlamp")) == nil || find(objs, "ServiceAccount", AdminAccount("headlamp")) != nil {
		t.Error("want a viewer account and no admin account by default")
	}
	crb := find(objs, "ClusterRoleBinding", ViewerAccount("headlamp")+"-view")
	if role, _, _ := unstructured.NestedString(crb.Object, "roleRef", "name"); role != "view" {
		t.Errorf("viewer bound to %q", role)
	}
	for _, o := range objs {
		if o.GetKind() == "ClusterRoleBinding" {
			if role, _, _ := unstructured.NestedString(o.Object, "roleRef", "name"); role == "cluster-admin" {
				t.Error("cluster-admin binding without --admin")
			}
		}
	}
	c, _, _ := container(find(objs, "Deployment", "headlamp"), "headlamp")
	if c["image"] != "ghcr.io/headlamp-k8s/headlamp:v0.45.0" {
		t.Errorf("headlamp image %v, want the :latest of upstream's manifest pinned to the catalog version", c["image"])
	}
	if !strings.Contains(strings.Join(notes, "\n"), "read-only") {
		t.Errorf("notes = %v", notes)
	}
	objs, _ = Parse("h.yaml", fixture(t, "headlamp/kubernetes-headlamp.yaml"))
	objs, _, _ = Fit(h, objs, Facts{}, FitOptions{Admin: true})
	crb = find(objs, "ClusterRoleBinding", AdminAccount("headlamp"))
	if crb == nil {
		t.Fatal("--admin: no admin binding")
	}
	if role, _, _ := unstructured.NestedString(crb.Object, "roleRef", "name"); role != "cluster-admin" {
		t.Errorf("admin bound to %q", role)
	}
	d, _ := Builtin().Get("dashboard")
	if got := d.AccessCommand(); !strings.Contains(got, "kubectl -n kubernetes-dashboard port-forward svc/kubernetes-dashboard 8443:443") || !strings.Contains(got, "https://localhost:8443/") {
		t.Errorf("access = %q", got)
	}
}

// serve serves files (path -> content) and counts requests.
func serve(t *testing.T, files map[string][]byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestLoadChecksums(t *testing.T) {
	ctx := context.Background()
	data := fixture(t, "metrics-server/components.yaml")
	srv := serve(t, map[string][]byte{"/v0.8.1/components.yaml": data, "/evil/components.yaml": append([]byte("# tampered\n"), data...)})
	good := Addon{Name: "metrics-server", Version: "v0.8.1", Sources: []Source{{URL: srv.URL + "/v0.8.1/components.yaml", SHA256: sum(data)}}}
	ms, err := Load(ctx, good, SourceOptions{})
	if err != nil || len(ms) != 1 || ms[0].SHA256 != sum(data) || ms[0].VerifiedBy[0] != "catalog" {
		t.Fatalf("pinned load: %v %+v", err, ms)
	}
	// The served file differs from the pin.
	bad := good
	bad.Sources = []Source{{URL: srv.URL + "/evil/components.yaml", SHA256: sum(data)}}
	if _, err := Load(ctx, bad, SourceOptions{}); !errors.Is(err, ErrChecksum) {
		t.Fatalf("mismatch: %v", err)
	}
	// Unpinned URL: refused without --sha256, accepted with the right one, refused with a wrong one.
	unpinned := good
	unpinned.Sources = []Source{{URL: srv.URL + "/v0.8.1/components.yaml"}}
	if _, err := Load(ctx, unpinned, SourceOptions{}); err == nil || !strings.Contains(err.Error(), "--sha256") {
		t.Fatalf("unpinned: %v", err)
	}
	if _, err := Load(ctx, unpinned, SourceOptions{SHA256: strings.ToUpper(sum(data))}); err != nil {
		t.Fatalf("--sha256: %v", err)
	}
	if _, err := Load(ctx, unpinned, SourceOptions{SHA256: sum([]byte("x"))}); !errors.Is(err, ErrChecksum) {
		t.Fatalf("wrong --sha256: %v", err)
	}
	if _, err := Load(ctx, unpinned, SourceOptions{SHA256: "abc"}); err == nil {
		t.Fatal("malformed --sha256 accepted")
	}
	// --from URL (a mirror) is checked against the catalog pin of the same file name.
	if _, err := Load(ctx, good, SourceOptions{From: srv.URL + "/evil/components.yaml"}); !errors.Is(err, ErrChecksum) {
		t.Fatalf("--from mirror: %v", err)
	}
	if _, err := Load(ctx, good, SourceOptions{From: srv.URL + "/missing/components.yaml"}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("404: %v", err)
	}
	// --from DIR, the fixture layout: no SHA256SUMS, catalog pin checked.
	if ms, err := Load(ctx, good, SourceOptions{From: "testdata"}); err != nil || ms[0].VerifiedBy[0] != "catalog" {
		t.Fatalf("--from testdata: %v", err)
	}
	// --from FILE without any checksum: accepted as the user's own copy, marked unverified.
	ms, err = Load(ctx, unpinned, SourceOptions{From: "testdata/metrics-server/components.yaml"})
	if err != nil || len(ms[0].VerifiedBy) != 0 {
		t.Fatalf("local file: %v %+v", err, ms)
	}
	// A bundle whose SHA256SUMS disagrees with its file.
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "metrics-server"), 0o755)
	os.WriteFile(filepath.Join(dir, "metrics-server", "components.yaml"), data, 0o644)
	os.WriteFile(filepath.Join(dir, SumsFile), []byte(sum([]byte("other"))+"  metrics-server/components.yaml\n"), 0o644)
	if _, err := Load(ctx, unpinned, SourceOptions{From: dir}); !errors.Is(err, ErrChecksum) {
		t.Fatalf("bundle SHA256SUMS mismatch: %v", err)
	}
	if _, err := Load(ctx, unpinned, SourceOptions{From: filepath.Join(dir, "nope")}); err == nil {
		t.Fatal("missing --from accepted")
	}
}

func TestFetch(t *testing.T) {
	ctx := context.Background()
	data := fixture(t, "calico/calico.yaml")
	srv := serve(t, map[string][]byte{"/calico.yaml": data, "/headlamp.yaml": []byte("kind: x")})
	cal := Addon{Name: "calico", Version: "v3.33.1", Sources: []Source{{URL: srv.URL + "/calico.yaml"}}}
	dir := filepath.Join(t.TempDir(), "bundle")
	res, err := Fetch(ctx, nil, []Addon{cal}, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].SHA256 != sum(data) || res[0].Pinned || res[0].File != "calico/calico.yaml" || res[0].Bytes != len(data) {
		t.Fatalf("result = %+v", res)
	}
	sums, err := readSums(filepath.Join(dir, SumsFile))
	if err != nil || sums["calico/calico.yaml"] != sum(data) {
		t.Fatalf("SHA256SUMS = %v, %v", sums, err)
	}
	// The bundle installs offline: Load verifies it against SHA256SUMS.
	ms, err := Load(ctx, cal, SourceOptions{From: dir})
	if err != nil || ms[0].VerifiedBy[0] != SumsFile {
		t.Fatalf("load bundle: %v %+v", err, ms)
	}
	// Re-fetching the same content is a no-op.
	res, err = Fetch(ctx, nil, []Addon{cal}, dir, false)
	if err != nil || !res[0].Unchanged {
		t.Fatalf("refetch: %v %+v", err, res)
	}
	// A local edit is not overwritten without --overwrite.
	f := filepath.Join(dir, "calico", "calico.yaml")
	os.WriteFile(f, []byte("edited"), 0o644)
	if _, err := Fetch(ctx, nil, []Addon{cal}, dir, false); err == nil || !strings.Contains(err.Error(), "--overwrite") {
		t.Fatalf("overwrite: %v", err)
	}
	if b, _ := os.ReadFile(f); string(b) != "edited" {
		t.Fatal("user's file replaced")
	}
	if _, err := Fetch(ctx, nil, []Addon{cal}, dir, true); err != nil {
		t.Fatal(err)
	}
	// A pinned checksum that does not match writes nothing.
	pinned := Addon{Name: "headlamp", Version: "v0.45.0", Sources: []Source{{URL: srv.URL + "/headlamp.yaml", SHA256: sum([]byte("other"))}}}
	if _, err := Fetch(ctx, nil, []Addon{pinned}, dir, false); !errors.Is(err, ErrChecksum) {
		t.Fatalf("pinned mismatch: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "headlamp")); !os.IsNotExist(err) {
		t.Fatal("file written despite a checksum mismatch")
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "calico"))
	if len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
}

// BenchmarkParseFitCalico measures reading and fitting Calico's manifest,
// the largest of the catalog (the fixture is repeated to about the size
// of upstream's calico.yaml, ~300 KiB).
func BenchmarkParseFitCalico(b *testing.B) {
	base, err := os.ReadFile(filepath.Join("testdata", "calico", "calico.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	// Extra CRDs (renamed copies) grow the file to upstream's size.
	var extra strings.Builder
	crd := string(base[strings.Index(string(base), "apiVersion: apiextensions.k8s.io/v1"):strings.Index(string(base), "kind: ClusterRole\n")])
	for i := 0; extra.Len()+len(base) < 300<<10; i++ {
		extra.WriteString("---\n" + strings.ReplaceAll(crd, ".crd.projectcalico.org", fmt.Sprintf("x%d.crd.projectcalico.org", i)))
	}
	data := append(append([]byte{}, base...), extra.String()...)
	cal, _ := Builtin().Get("calico")
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		objs, err := Parse("calico.yaml", data)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := Fit(cal, objs, Facts{PodSubnet: "10.244.0.0/16"}, FitOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
