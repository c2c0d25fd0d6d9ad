package krew

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const repoRoot = ".."

// distMatrix is the platform list hack/dist.sh builds.
func distMatrix(t *testing.T) []OSArch {
	t.Helper()
	out, err := exec.Command("bash", filepath.Join(repoRoot, "hack/dist.sh"), "--platforms").Output()
	if err != nil {
		t.Fatalf("hack/dist.sh --platforms: %v", err)
	}
	var m []OSArch
	for _, l := range strings.Fields(string(out)) {
		os, arch, ok := strings.Cut(l, "/")
		if !ok {
			t.Fatalf("bad platform %q from hack/dist.sh --platforms", l)
		}
		m = append(m, OSArch{os, arch})
	}
	if len(m) != 5 {
		t.Fatalf("dist matrix has %d platforms, want the 5 of the issue: %v", len(m), m)
	}
	return m
}

func sameSet(a, b []OSArch) bool {
	set := func(x []OSArch) map[OSArch]bool {
		s := map[OSArch]bool{}
		for _, p := range x {
			s[p] = true
		}
		return s
	}
	return len(a) == len(b) && reflect.DeepEqual(set(a), set(b))
}

// checkProjectManifest holds the project's own expectations on top of krew's rules.
func checkProjectManifest(t *testing.T, p *Plugin, tag string, matrix []OSArch) {
	t.Helper()
	if p.Spec.Version != tag {
		t.Errorf("version = %q, want %q", p.Spec.Version, tag)
	}
	if p.Spec.Homepage != "https://github.com/hacluster/hacluster" {
		t.Errorf("homepage = %q", p.Spec.Homepage)
	}
	if got := p.Covered(); !sameSet(got, matrix) {
		t.Errorf("manifest platforms %v differ from the dist matrix %v", got, matrix)
	}
	for _, pair := range matrix {
		var pl *Platform
		for i := range p.Spec.Platforms {
			if p.Spec.Platforms[i].Matches(pair) {
				pl = &p.Spec.Platforms[i]
			}
		}
		if pl == nil {
			continue // reported above
		}
		ext, bin := ".tar.gz", "kubectl-hacluster"
		if pair.OS == "windows" {
			ext, bin = ".zip", "kubectl-hacluster.exe"
		}
		wantURI := "https://github.com/hacluster/hacluster/releases/download/" + tag +
			"/kubectl-hacluster_" + tag + "_" + pair.OS + "_" + pair.Arch + ext
		if pl.URI != wantURI {
			t.Errorf("%s: uri = %q, want %q (the name hack/dist.sh gives the archive)", pair, pl.URI, wantURI)
		}
		if pl.Bin != bin {
			t.Errorf("%s: bin = %q, want %q", pair, pl.Bin, bin)
		}
	}
	for _, want := range []string{"PATH", "kubectl_complete-hacluster", "store/hacluster/" + tag + "/"} {
		if !strings.Contains(p.Spec.Caveats, want) {
			t.Errorf("caveats do not mention %q:\n%s", want, p.Spec.Caveats)
		}
	}
}

func TestCommittedManifest(t *testing.T) {
	file := filepath.Join(repoRoot, "plugins", "hacluster.yaml")
	p, err := ValidateFile(file)
	if err != nil {
		t.Fatal(err)
	}
	checkProjectManifest(t, p, p.Spec.Version, distMatrix(t))
}

// fakeSha stands in for the bot's download: a stable hash of the URL.
func fakeSha(uri string) (string, error) {
	s := sha256.Sum256([]byte(uri))
	return hex.EncodeToString(s[:]), nil
}

func TestTemplateRenders(t *testing.T) {
	tmpl, err := os.ReadFile(filepath.Join(repoRoot, ".krew.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	b, err := Render(tmpl, "v1.2.3", func(uri string) (string, error) {
		asked = append(asked, uri)
		return fakeSha(uri)
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if err := Validate(p, "hacluster"); err != nil {
		t.Fatal(err)
	}
	if err := CheckPlatforms(p); err != nil {
		t.Fatal(err)
	}
	matrix := distMatrix(t)
	checkProjectManifest(t, p, "v1.2.3", matrix)
	if len(asked) != len(matrix) {
		t.Errorf("addURIAndSha called %d times, want one per archive (%d)", len(asked), len(matrix))
	}
	for _, pl := range p.Spec.Platforms {
		want, _ := fakeSha(pl.URI)
		if pl.Sha256 != want {
			t.Errorf("%s: sha256 %s is not the checksum of its own uri", pl.URI, pl.Sha256)
		}
	}
	if strings.Contains(string(b), "{{") {
		t.Errorf("unrendered template action left:\n%s", b)
	}
}

func TestRenderWithLocalSha(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kubectl-hacluster_v0.1.0_linux_amd64.tar.gz"), []byte("archive"), 0o644); err != nil {
		t.Fatal(err)
	}
	tmpl := []byte(`sha: {{addURIAndSha "https://example.com/{{ .TagName }}/kubectl-hacluster_{{ .TagName }}_linux_amd64.tar.gz" .TagName | indent 2}}`)
	b, err := Render(tmpl, "v0.1.0", LocalSha(dir))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("archive"))
	want := "sha: uri: https://example.com/v0.1.0/kubectl-hacluster_v0.1.0_linux_amd64.tar.gz\n  sha256: " + hex.EncodeToString(sum[:])
	if string(b) != want {
		t.Errorf("got\n%s\nwant\n%s", b, want)
	}
	_, err = Render([]byte(`{{addURIAndSha "https://example.com/x_darwin_arm64.tar.gz" .TagName}}`), "v0.1.0", LocalSha(dir))
	if err == nil || !strings.Contains(err.Error(), "make dist") {
		t.Errorf("missing archive: got %v, want an error pointing at `make dist`", err)
	}
}

func TestIndentMatchesBot(t *testing.T) {
	in := "uri: https://x/a.tar.gz\n    sha256: abc"
	if got, want := indent(6, in), "uri: https://x/a.tar.gz\n      sha256: abc"; got != want {
		t.Errorf("indent(6) = %q, want %q", got, want)
	}
	if got, want := versionOfTag("v1.2.3"), "1.2.3"; got != want {
		t.Errorf("versionOfTag = %q, want %q", got, want)
	}
}

const goodManifest = `apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: hacluster
spec:
  version: v0.1.0
  shortDescription: short
  platforms:
  - selector:
      matchLabels: {os: linux, arch: amd64}
    uri: https://example.com/a.tar.gz
    sha256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    bin: kubectl-hacluster
  - selector:
      matchExpressions:
      - {key: os, operator: In, values: [darwin]}
    uri: https://example.com/b.tar.gz
    sha256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    bin: kubectl-hacluster
    files:
    - {from: "*", to: "."}
`

// TestRulesReject proves every re-implemented rule fires: each case breaks
// the good manifest in one way.
func TestRulesReject(t *testing.T) {
	good, err := Parse([]byte(goodManifest))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(good, "hacluster"); err != nil {
		t.Fatalf("good manifest rejected: %v", err)
	}
	if err := CheckPlatforms(good); err != nil {
		t.Fatalf("good manifest rejected: %v", err)
	}
	empty := *good
	empty.Spec.Platforms = nil
	if err := Validate(&empty, "hacluster"); err == nil || !strings.Contains(err.Error(), "should have a platform") {
		t.Errorf("no platforms: got %v", err)
	}
	cases := []struct {
		name, old, new, want string
	}{
		{"apiVersion", "v1alpha2", "v1alpha1", "apiVersion"},
		{"kind", "kind: Plugin", "kind: Plugins", "kind"},
		{"name chars", "name: hacluster", "name: ha.cluster", "not allowed"},
		{"reserved name", "name: hacluster", "name: COM1", "not allowed"},
		{"wrong name", "name: hacluster", "name: other", `should be named "hacluster"`},
		{"empty short", "shortDescription: short", "shortDescription: ''", "short description"},
		{"short line break", "shortDescription: short", `shortDescription: "a\nb"`, "line breaks"},
		{"no v", "version: v0.1.0", "version: 0.1.0", "not starting with 'v'"},
		{"not semver", "version: v0.1.0", "version: v0.1", "version"},
		{"empty version", "version: v0.1.0", "version: ''", "should have a version"},
		{"no uri", "uri: https://example.com/a.tar.gz", "uri: ''", "`uri` is unset"},
		{"no sha", "sha256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n    bin: kubectl-hacluster\n  - selector", "sha256: ''\n    bin: kubectl-hacluster\n  - selector", "`sha256` sum is unset"},
		{"upper sha", "sha256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n    bin: kubectl-hacluster\n  - selector", "sha256: 0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\n    bin: kubectl-hacluster\n  - selector", "not valid"},
		{"no bin", "bin: kubectl-hacluster\n  - selector", "bin: ''\n  - selector", "`bin` field is unset"},
		{"empty files", "files:\n    - {from: \"*\", to: \".\"}", "files: []", "`files` is empty"},
		{"files no to", `to: "."`, `to: ""`, "`from` or `to`"},
		{"no selector", "  - selector:\n      matchLabels: {os: linux, arch: amd64}\n", "  - \n", "nil selector"},
		{"empty matchLabels", "matchLabels: {os: linux, arch: amd64}", "matchLabels: {}", "empty"},
		{"bad key", "matchLabels: {os: linux, arch: amd64}", "matchLabels: {os: linux, cpu: amd64}", `key "cpu" not allowed`},
		{"bad expression key", "key: os", "key: kernel", `key "kernel" not allowed`},
		{"unknown platform", "matchLabels: {os: linux, arch: amd64}", "matchLabels: {os: plan9, arch: amd64}", "matches none"},
		{"overlap", "values: [darwin]", "values: [darwin, linux]", "overlapping"},
		{"typo field", "sha256:", "sha265:", "unknown field"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(goodManifest, c.old) {
				t.Fatalf("case does not apply: %q not in the good manifest", c.old)
			}
			src := strings.Replace(goodManifest, c.old, c.new, 1)
			p, err := Parse([]byte(src))
			if err == nil {
				if err = Validate(p, "hacluster"); err == nil {
					err = CheckPlatforms(p)
				}
			}
			if err == nil {
				t.Fatalf("accepted:\n%s", src)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestValidateFileNameAndExtension(t *testing.T) {
	dir := t.TempDir()
	for name, want := range map[string]string{
		"other.yaml":     `should be named "other"`,
		"hacluster.yml":  "extension",
		"hacluster.yaml": "",
	} {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(goodManifest), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ValidateFile(f)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: got %v, want an error containing %q", name, err, want)
		}
	}
}
