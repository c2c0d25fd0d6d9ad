package krew

// End-to-end proofs of packaging: hack/dist.sh is reproducible, and the
// archives it builds install through the real krew (pinned v0.5.0) and run
// through the real kubectl, completion shim included.
//
// Both builds use a `git archive HEAD` snapshot (in two different directories)
// rather than the working tree, so that the property tested is exactly "the
// same commit built twice, anywhere, gives the same bytes".

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	krewVersion = "v0.5.0" // pinned; @latest resolves to an older krew on some proxies
	testTag     = "v0.9.9-e2e.1"
	testEpoch   = "1700000000" // 2023-11-14T22:13:20Z
	module      = "github.com/hacluster/hacluster"
)

// e2ePlatforms is what the tests build: the host's platform for the krew
// install, and the zip one. Cross-compiling more is CPU nobody needs.
var e2ePlatforms = []string{"linux/amd64", "windows/amd64"}

func absRoot(t *testing.T) string {
	t.Helper()
	r, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// failOrSkip fails under CI (env CI set) and skips elsewhere.
func failOrSkip(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

func needLinuxAmd64(t *testing.T) {
	t.Helper()
	if runtime.GOOS+"/"+runtime.GOARCH != "linux/amd64" {
		t.Skipf("the packaging e2e tests run on linux/amd64, not %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	if testing.Short() {
		t.Skip("-short: skipping builds of release archives")
	}
}

var (
	headOnce sync.Once
	head     string
)

// snapshot extracts `git archive <HEAD>` into a fresh directory; HEAD is
// resolved once, so that commits made meanwhile do not change the source.
func snapshot(t *testing.T, dir string) {
	t.Helper()
	root := absRoot(t)
	headOnce.Do(func() {
		out, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
		if err != nil {
			t.Fatalf("git rev-parse HEAD (the dist tests build a snapshot of the commit): %v", err)
		}
		head = strings.TrimSpace(string(out))
	})
	if head == "" {
		t.Fatal("no commit to snapshot")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", `git -C "$1" archive --format=tar "$3" | tar -x -C "$2"`, "sh", root, dir, head)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git archive HEAD: %v\n%s", err, out)
	}
}

// runDist builds platforms from a snapshot in srcDir into distDir with a
// fixed version stamp and SOURCE_DATE_EPOCH.
func runDist(t *testing.T, srcDir, distDir string, platforms ...string) {
	t.Helper()
	snapshot(t, srcDir)
	ldflags := fmt.Sprintf("-s -w -X %[1]s/pkg/version.Version=%[2]s -X %[1]s/pkg/version.Commit=e2e -X %[1]s/pkg/version.Date=2023-11-14T22:13:20Z", module, testTag)
	cmd := exec.Command("bash", filepath.Join(srcDir, "hack/dist.sh"))
	cmd.Env = append(os.Environ(), "VERSION="+testTag, "LDFLAGS="+ldflags, "SOURCE_DATE_EPOCH="+testEpoch,
		"PLATFORMS="+strings.Join(platforms, " "), "DIST_DIR="+distDir)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/dist.sh: %v\n%s", err, out)
	}
	t.Logf("hack/dist.sh (%s) from %s took %s", strings.Join(platforms, " "), srcDir, time.Since(start).Round(time.Second))
}

var (
	distOnce sync.Once
	distDir  string
	distTmp  string
	distOK   bool
)

// sharedDist builds the archives once for every test of the package.
func sharedDist(t *testing.T) string {
	t.Helper()
	needLinuxAmd64(t)
	distOnce.Do(func() {
		tmp, err := os.MkdirTemp("", "hacluster-dist-")
		if err != nil {
			t.Fatal(err)
		}
		distTmp = tmp
		distDir = filepath.Join(tmp, "dist")
		runDist(t, filepath.Join(tmp, "src-a"), distDir, e2ePlatforms...)
		distOK = true
	})
	if !distOK {
		t.Fatal("building the release archives failed (see the first test that tried)")
	}
	return distDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if distTmp != "" {
		os.RemoveAll(distTmp)
	}
	os.Exit(code)
}

// The second build is of the host platform only: reproducibility is a
// property of the recipe, shown on one platform; `make dist` builds the
// matrix. The first build's other platforms are checked by their own tests.
func TestDistReproducible(t *testing.T) {
	first := sharedDist(t)
	tmp := t.TempDir()
	second := filepath.Join(tmp, "dist")
	host := e2ePlatforms[0]
	runDist(t, filepath.Join(tmp, "src-b"), second, host)

	a, err := os.ReadFile(filepath.Join(first, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(second, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	suffix := "_" + strings.ReplaceAll(host, "/", "_") + "."
	var hostLines []string
	for _, l := range strings.Split(strings.TrimSpace(string(a)), "\n") {
		if strings.Contains(l, suffix) {
			hostLines = append(hostLines, l)
		}
	}
	if got := strings.TrimSpace(string(b)); got != strings.Join(hostLines, "\n") || len(hostLines) != 2 {
		t.Fatalf("two builds of the same commit differ for %s:\nfirst:\n%s\nsecond:\n%s", host, a, b)
	}
	lines := strings.Split(strings.TrimSpace(string(a)), "\n")
	if len(lines) != 2*len(e2ePlatforms) {
		t.Fatalf("SHA256SUMS has %d lines, want %d (two plugins x %v):\n%s", len(lines), 2*len(e2ePlatforms), e2ePlatforms, a)
	}
	// The sums file is right about the files it lists.
	for _, l := range lines {
		sum, name, ok := strings.Cut(l, "  ")
		if !ok {
			t.Fatalf("bad SHA256SUMS line %q", l)
		}
		got, err := FileSha256(filepath.Join(first, name))
		if err != nil || got != sum {
			t.Errorf("%s: sha256 %s, SHA256SUMS says %s (%v)", name, got, sum, err)
		}
	}
	t.Logf("identical SHA256SUMS:\n%s", a)
}

type entry struct {
	name  string
	mode  int64
	mtime time.Time
	uid   int
	gid   int
}

func readTarGz(t *testing.T, file string) []entry {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// gzip -n: no file name, no timestamp in the header.
	if len(raw) < 10 || raw[3]&0x08 != 0 || !bytes.Equal(raw[4:8], []byte{0, 0, 0, 0}) {
		t.Errorf("%s: gzip header carries a name or mtime (flags %#x, mtime % x)", file, raw[3], raw[4:8])
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out []entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, entry{h.Name, h.Mode, h.ModTime, h.Uid, h.Gid})
		if h.Uname != "" && h.Uname != "root" {
			t.Errorf("%s: %s owned by user name %q", file, h.Name, h.Uname)
		}
	}
	return out
}

func readZip(t *testing.T, file string) []entry {
	t.Helper()
	zr, err := zip.OpenReader(file)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var out []entry
	for _, f := range zr.File {
		if len(f.Extra) != 0 {
			t.Errorf("%s: %s has extra fields (uid/gid or timestamps): % x", file, f.Name, f.Extra)
		}
		out = append(out, entry{name: f.Name, mode: int64(f.Mode().Perm()), mtime: f.Modified})
	}
	return out
}

func TestDistArchiveContents(t *testing.T) {
	dist := sharedDist(t)
	epoch := time.Unix(1700000000, 0).UTC()
	want := map[string]map[string]int64{
		"kubectl-hacluster_" + testTag + "_linux_amd64.tar.gz": {"LICENSE": 0o644, "kubectl-hacluster": 0o755, "kubectl_complete-hacluster": 0o755},
		"docker-k8sprep_" + testTag + "_linux_amd64.tar.gz":    {"LICENSE": 0o644, "docker-k8sprep": 0o755},
		"kubectl-hacluster_" + testTag + "_windows_amd64.zip":  {"LICENSE": 0o644, "kubectl-hacluster.exe": 0o755, "kubectl_complete-hacluster.cmd": 0o755},
		"docker-k8sprep_" + testTag + "_windows_amd64.zip":     {"LICENSE": 0o644, "docker-k8sprep.exe": 0o755},
	}
	for name, files := range want {
		file := filepath.Join(dist, name)
		var entries []entry
		if strings.HasSuffix(name, ".zip") {
			entries = readZip(t, file)
		} else {
			entries = readTarGz(t, file)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.name)
			if m, ok := files[e.name]; !ok {
				t.Errorf("%s: unexpected entry %q", name, e.name)
			} else if e.mode&0o777 != m {
				t.Errorf("%s: %s has mode %o, want %o", name, e.name, e.mode&0o777, m)
			}
			if !e.mtime.Equal(epoch) {
				t.Errorf("%s: %s has mtime %s, want SOURCE_DATE_EPOCH %s", name, e.name, e.mtime.UTC(), epoch)
			}
			if e.uid != 0 || e.gid != 0 {
				t.Errorf("%s: %s owned by %d:%d, want 0:0", name, e.name, e.uid, e.gid)
			}
		}
		if !sort.StringsAreSorted(names) {
			t.Errorf("%s: entries not sorted: %v", name, names)
		}
		if len(names) != len(files) {
			t.Errorf("%s: entries %v, want %d files", name, names, len(files))
		}
	}
}

// kubectlBin is the kubectl built by `make k8s-tools` for K8S_VERSION.
func kubectlBin(t *testing.T) string {
	t.Helper()
	v := os.Getenv("K8S_VERSION")
	if v == "" {
		v = "v1.37.2"
	}
	k := filepath.Join(absRoot(t), ".cache", "k8s", v, "bin", "kubectl")
	if _, err := os.Stat(k); err != nil {
		failOrSkip(t, "no kubectl at %s: run `make k8s-tools`", k)
	}
	return k
}

// krewBin installs the pinned krew into .cache/tools once.
func krewBin(t *testing.T) string {
	t.Helper()
	tools := filepath.Join(absRoot(t), ".cache", "tools")
	bin := filepath.Join(tools, "krew-"+krewVersion)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	gobin := t.TempDir()
	cmd := exec.Command("go", "install", "sigs.k8s.io/krew/cmd/krew@"+krewVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		failOrSkip(t, "go install sigs.k8s.io/krew/cmd/krew@%s: %v\n%s", krewVersion, err, out)
	}
	if err := os.MkdirAll(tools, 0o755); err != nil {
		t.Fatal(err)
	}
	// Rename is atomic: parallel test binaries never see half a krew.
	if err := os.Rename(filepath.Join(gobin, "krew"), bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.Stdin = nil
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// envWith returns the environment with the given variables replaced.
func envWith(kv ...string) []string {
	drop := map[string]bool{}
	for _, s := range kv {
		k, _, _ := strings.Cut(s, "=")
		drop[k] = true
	}
	var env []string
	for _, s := range os.Environ() {
		k, _, _ := strings.Cut(s, "=")
		if !drop[k] {
			env = append(env, s)
		}
	}
	return append(env, kv...)
}

func TestKrewInstallE2E(t *testing.T) {
	dist := sharedDist(t)
	kubectl := kubectlBin(t)
	krew := krewBin(t)
	tmp := t.TempDir()

	// The manifest exactly as `make krew-manifest` renders it, checked with
	// the same rules as the committed one.
	tmpl, err := os.ReadFile(filepath.Join(repoRoot, ".krew.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Archives of platforms this test does not build (cross-compiling all of
	// them costs minutes) get a stand-in checksum; only built ones are installed.
	// plugins/hacluster.yaml (TestCommittedManifest) carries the real ones.
	local := LocalSha(dist)
	b, err := Render(tmpl, testTag, func(uri string) (string, error) {
		for _, p := range e2ePlatforms {
			if strings.Contains(uri, "_"+strings.ReplaceAll(p, "/", "_")+".") {
				return local(uri)
			}
		}
		return fakeSha(uri)
	})
	if err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(tmp, "hacluster.yaml")
	if err := os.WriteFile(manifest, b, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := ValidateFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	checkProjectManifest(t, p, testTag, distMatrix(t))

	krewRoot := filepath.Join(tmp, "krew-root")
	home := filepath.Join(tmp, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(krewRoot, "bin") + string(os.PathListSeparator) + filepath.Dir(kubectl) +
		string(os.PathListSeparator) + "/usr/bin:/bin"
	env := envWith("KREW_ROOT="+krewRoot, "HOME="+home, "PATH="+path, "KUBECONFIG="+filepath.Join(tmp, "no-kubeconfig"))

	archive := filepath.Join(dist, "kubectl-hacluster_"+testTag+"_linux_amd64.tar.gz")
	out := run(t, env, krew, "install", "--manifest="+manifest, "--archive="+archive)
	t.Logf("krew install:\n%s", out)

	link := filepath.Join(krewRoot, "bin", "kubectl-hacluster")
	if _, err := os.Lstat(link); err != nil {
		t.Fatalf("krew did not link the plugin: %v", err)
	}
	store := filepath.Join(krewRoot, "store", "hacluster", testTag)
	if _, err := os.Stat(filepath.Join(store, "LICENSE")); err != nil {
		t.Errorf("the installed plugin has no LICENSE (validate-krew-manifest requires one): %v", err)
	}

	// Through the real kubectl, which finds the plugin on PATH.
	out = run(t, env, kubectl, "hacluster", "version")
	if !strings.Contains(out, "kubectl-hacluster "+testTag) {
		t.Errorf("kubectl hacluster version = %q, want the stamped %s", out, testTag)
	}
	out = run(t, env, kubectl, "hacluster", "version", "-o", "json")
	var info struct {
		Version  string `json:"version"`
		Platform string `json:"platform"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil || info.Version != testTag || info.Platform != "linux/amd64" {
		t.Errorf("kubectl hacluster version -o json = %q (%v), want version %s on linux/amd64", out, err, testTag)
	}

	// Completion: follow the caveats' instructions for the shim, word for word.
	var lnCmd string
	for _, l := range strings.Split(p.Spec.Caveats, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "ln -sf ") {
			lnCmd = strings.TrimSpace(l)
		}
	}
	if lnCmd == "" {
		t.Fatalf("caveats have no `ln -sf` line for the completion shim:\n%s", p.Spec.Caveats)
	}
	run(t, env, "sh", "-c", lnCmd)
	out = run(t, env, kubectl, "__complete", "hacluster", "")
	for _, want := range []string{"version", "completion"} {
		if !containsLine(out, want) {
			t.Errorf("kubectl __complete hacluster \"\" does not offer %q:\n%s", want, out)
		}
	}
	out = run(t, env, kubectl, "__complete", "hacluster", "version", "-o", "")
	if !containsLine(out, "json") || !containsLine(out, "yaml") {
		t.Errorf("kubectl __complete hacluster version -o \"\" does not offer json and yaml:\n%s", out)
	}

	// The windows entry installs too (krew checks the zip's sha256 and finds
	// its bin inside), into another root.
	winRoot := filepath.Join(tmp, "krew-root-windows")
	zipArchive := filepath.Join(dist, "kubectl-hacluster_"+testTag+"_windows_amd64.zip")
	run(t, envWith("KREW_ROOT="+winRoot, "HOME="+home, "KREW_OS=windows", "KREW_ARCH=amd64"),
		krew, "install", "--manifest="+manifest, "--archive="+zipArchive)
	winStore := filepath.Join(winRoot, "store", "hacluster", testTag)
	for _, f := range []string{"kubectl-hacluster.exe", "kubectl_complete-hacluster.cmd", "LICENSE"} {
		if _, err := os.Stat(filepath.Join(winStore, f)); err != nil {
			t.Errorf("windows install lacks %s: %v", f, err)
		}
	}

	// A tampered archive is refused: the manifest's sha256 is really checked.
	bad := filepath.Join(tmp, filepath.Base(archive))
	raw, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, append(raw, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(krew, "install", "--manifest="+manifest, "--archive="+bad)
	cmd.Env = envWith("KREW_ROOT="+filepath.Join(tmp, "krew-root-bad"), "HOME="+home)
	if outb, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(outb), "checksum does not match") {
		t.Errorf("krew installed a tampered archive (err %v):\n%s", err, outb)
	}
}

func containsLine(out, want string) bool {
	for _, l := range strings.Split(out, "\n") {
		if w, _, _ := strings.Cut(l, "\t"); w == want {
			return true
		}
	}
	return false
}
