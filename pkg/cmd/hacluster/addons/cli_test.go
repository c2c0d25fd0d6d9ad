package addons_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	core "github.com/hacluster/hacluster/pkg/addons"
	"github.com/hacluster/hacluster/pkg/cmd/hacluster/addons"
)

// These run without a cluster: a kubeconfig that points nowhere proves the
// commands fail on input before they connect.
const noCluster = "/nonexistent/kubeconfig"

func TestListAndCatalogRoundTrip(t *testing.T) {
	out := mustRun(t, noCluster, "list")
	for _, want := range []string{"calico", "v3.33.1", "metrics-server", "headlamp", "recommended", "dashboard", "archived", "not pinned", "January 2026"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	y := mustRun(t, noCluster, "list", "-o", "yaml")
	f := filepath.Join(t.TempDir(), "catalog.yaml")
	os.WriteFile(f, []byte(y), 0o644)
	cat, err := core.LoadCatalog(f)
	if err != nil {
		t.Fatalf("list -o yaml is not a catalog file: %v", err)
	}
	if len(cat.Addons) != 4 {
		t.Fatalf("round trip: %d add-ons", len(cat.Addons))
	}
	var viaJSON core.Catalog
	if err := json.Unmarshal([]byte(mustRun(t, noCluster, "list", "-o", "json", "--catalog", f)), &viaJSON); err != nil || viaJSON.Addons[3].Status != "archived" {
		t.Fatalf("list -o json with --catalog: %v", err)
	}
}

func TestInputErrors(t *testing.T) {
	cases := map[string]struct {
		args []string
		want string
	}{
		"unknown add-on":   {[]string{"install", "flannel"}, `unknown add-on "flannel"`},
		"client dry run":   {[]string{"install", "calico", "--dry-run=client"}, "--dry-run=server"},
		"bad dry run":      {[]string{"install", "calico", "--dry-run=yes"}, `"none" or "server"`},
		"sha256 for two":   {[]string{"install", "calico", "headlamp", "--sha256", strings.Repeat("a", 64)}, "one add-on"},
		"file for two":     {[]string{"install", "calico", "headlamp", "--from", "addons.go"}, "one add-on"},
		"no names":         {[]string{"install"}, "requires at least 1 arg"},
		"bad output":       {[]string{"status", "-o", "xml"}, "unknown output format"},
		"fetch without to": {[]string{"fetch", "calico"}, "--to DIR is required"},
		"bad catalog":      {[]string{"list", "--catalog", "/nonexistent.yaml"}, "cannot read catalog"},
		"token no ui":      {[]string{"token", "nope"}, "unknown add-on"},
		"uninstall two":    {[]string{"uninstall", "calico", "headlamp"}, "accepts 1 arg"},
	}
	for name, c := range cases {
		_, _, err := run(t, noCluster, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error is not one line: %q", name, err)
		}
	}
}

func TestFetchCommand(t *testing.T) {
	srv := newManifestServer(t)
	cat := srv.catalog(t, nil)
	dir := filepath.Join(t.TempDir(), "bundle")
	out := mustRun(t, noCluster, "fetch", "calico", "headlamp", "--to", dir, "--catalog", cat, "-o", "json")
	var rep addons.FetchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Files) != 2 || !rep.Files[0].Pinned || rep.Files[0].File != "calico/calico.yaml" {
		t.Fatalf("fetch: %+v", rep)
	}
	sums, _ := os.ReadFile(filepath.Join(dir, core.SumsFile))
	if !strings.Contains(string(sums), sha(srv.files["/calico/calico.yaml"])+"  calico/calico.yaml") {
		t.Errorf("SHA256SUMS:\n%s", sums)
	}
	// An unpinned catalog: fetch says so in the table.
	b, _ := os.ReadFile(cat)
	var c core.Catalog
	yaml.Unmarshal(b, &c)
	for i := range c.Addons {
		c.Addons[i].Sources[0].SHA256 = ""
	}
	b, _ = yaml.Marshal(c)
	os.WriteFile(cat, b, 0o644)
	out = mustRun(t, noCluster, "fetch", "metrics-server", "--to", dir, "--catalog", cat)
	if !strings.Contains(out, "NOT PINNED") || !strings.Contains(out, "compare the sha256") {
		t.Errorf("unpinned fetch table:\n%s", out)
	}
}

func TestCompletion(t *testing.T) {
	out := mustRun(t, noCluster, "__complete", "token", "")
	if !strings.Contains(out, "headlamp") || !strings.Contains(out, "dashboard") || strings.Contains(out, "calico") {
		t.Errorf("token completion:\n%s", out)
	}
	out = mustRun(t, noCluster, "__complete", "install", "calico", "")
	if strings.Contains(out, "calico\t") || !strings.Contains(out, "metrics-server") {
		t.Errorf("install completion:\n%s", out)
	}
}
