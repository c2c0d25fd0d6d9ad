package dockerfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// multiMain is a module with two commands, a config.yaml and no go.sum.
func multiMain(t *testing.T) string {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"go.mod":               "module github.com/acme/shop/v2 // the shop\n\ngo 1.25.3\n\ntoolchain go1.26.8\n",
		"config.yaml":          "listen: 9000\n",
		"cmd/api/main.go":      "package main\n\nimport \"net/http\"\n\nfunc main() { http.ListenAndServe(\"0.0.0.0:9000\", nil) }\n",
		"cmd/worker/main.go":   "package main\n\nfunc main() {}\n",
		"internal/x/x.go":      "package x\n",
		"internal/x/x_test.go": "package main\n",
		"vendor/modules.txt":   "# none\n",
		"tools/go.mod":         "module tools\n",
		"tools/main.go":        "package main\n\nfunc main() {}\n",
	})
	return dir
}

func TestInspect(t *testing.T) {
	p, err := Inspect("../../examples/goapp")
	if err != nil {
		t.Fatal(err)
	}
	if p.Module != "example.com/goapp" || p.GoVersion != "1.24.0" || strings.Join(p.Mains, ",") != "." ||
		strings.Join(p.Configs, ",") != "config.toml" || p.Port != 8080 || !p.HasGoSum || p.HasVendor {
		t.Errorf("goapp: %+v", p)
	}
	p, err = Inspect(multiMain(t))
	if err != nil {
		t.Fatal(err)
	}
	if p.Module != "github.com/acme/shop/v2" || p.GoVersion != "1.25.3" || strings.Join(p.Mains, ",") != "./cmd/api,./cmd/worker" ||
		p.Port != 9000 || p.HasGoSum || !p.HasVendor || p.BinaryName(".") != "shop" || p.BinaryName("./cmd/api") != "api" {
		t.Errorf("multi: %+v", p)
	}
	if _, err := Inspect(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no go.mod") {
		t.Errorf("empty dir: %v", err)
	}
}

func TestGenerateGolden(t *testing.T) {
	goapp, err := Inspect("../../examples/goapp")
	if err != nil {
		t.Fatal(err)
	}
	multi, err := Inspect(multiMain(t))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := Inspect(cliProject(t))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		p    *Project
		o    GenerateOptions
	}{
		{"goapp-scratch", goapp, GenerateOptions{}},
		{"goapp-local-builder", goapp, GenerateOptions{BuilderImage: "hacluster.local/golang:1.26"}},
		{"goapp-buildkit", goapp, GenerateOptions{BuildKit: true}},
		{"goapp-distroless", goapp, GenerateOptions{Base: BaseDistroless, Port: 9090}},
		{"goapp-alpine", goapp, GenerateOptions{Base: BaseAlpine}},
		{"multi-vendor-api", multi, GenerateOptions{Main: "cmd/api"}},
		{"cli-no-server", cli, GenerateOptions{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, err := Generate(c.p, c.o)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct{ file, got string }{{"Dockerfile", g.Dockerfile}, {"dockerignore", g.Dockerignore}} {
				golden := filepath.Join("testdata", "init", c.name+"."+f.file+".golden")
				if *update {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, []byte(f.got), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -run TestGenerateGolden -update)", err)
				}
				if f.got != string(want) {
					t.Errorf("%s differs from %s:\n%s", f.file, golden, f.got)
				}
			}
			// What init writes passes its own linter at the strictest threshold.
			rep, err := Lint("Dockerfile", []byte(g.Dockerfile), LintOptions{Port: g.Port})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Fails(SeverityStyle) {
				t.Errorf("generated Dockerfile has findings: %+v", rep.Findings)
			}
			if strings.Contains(g.Dockerfile, ":latest") || !strings.Contains(g.Dockerfile, "ENTRYPOINT [\"/app/") {
				t.Errorf("generated Dockerfile:\n%s", g.Dockerfile)
			}
		})
	}
}

func TestGenerateErrors(t *testing.T) {
	multi, err := Inspect(multiMain(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		o    GenerateOptions
		want string
	}{
		{GenerateOptions{}, "2 main packages (./cmd/api, ./cmd/worker): choose one with --main"},
		{GenerateOptions{Main: "./cmd/nope"}, "--main ./cmd/nope is not a main package"},
		{GenerateOptions{Main: "./cmd/api", Base: "ubuntu"}, `unknown base "ubuntu"`},
		{GenerateOptions{Main: "./cmd/api", Port: 70000}, "port 70000 is not in 1-65535"},
	} {
		if _, err := Generate(multi, c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want %q", c.o, err, c.want)
		}
	}
}

func TestWriteFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "Dockerfile")
	if _, err := WriteFile(p, []byte("one\n"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteFile(p, []byte("two\n"), false); !errors.Is(err, ErrExists) {
		t.Fatalf("second write without force: %v", err)
	}
	res, err := WriteFile(p, []byte("two\n"), true)
	if err != nil || res.Backup != p+".bak" {
		t.Fatalf("force: %+v %v", res, err)
	}
	if b, _ := os.ReadFile(p + ".bak"); string(b) != "one\n" {
		t.Errorf("backup = %q", b)
	}
	res, err = WriteFile(p, []byte("three\n"), true)
	if err != nil || !strings.HasPrefix(res.Backup, p+".bak.") {
		t.Fatalf("second force keeps the first backup: %+v %v", res, err)
	}
	if b, _ := os.ReadFile(p); string(b) != "three\n" {
		t.Errorf("content = %q", b)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestExplain(t *testing.T) {
	src, err := os.ReadFile("testdata/init/goapp-scratch.Dockerfile.golden")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := Explain(src)
	if err != nil {
		t.Fatal(err)
	}
	byInst := map[string][]Explanation{}
	for _, e := range ex {
		if e.What == "" || e.Line == 0 {
			t.Errorf("unexplained: %+v", e)
		}
		byInst[e.Instruction] = append(byInst[e.Instruction], e)
	}
	for _, inst := range []string{"ARG", "FROM", "WORKDIR", "RUN", "COPY", "ENV", "USER", "EXPOSE", "ENTRYPOINT"} {
		if len(byInst[inst]) == 0 {
			t.Errorf("no %s explained", inst)
		}
	}
	if e := byInst["FROM"][1]; !strings.Contains(e.Here, "empty image") || e.Stage != "1" {
		t.Errorf("FROM scratch: %+v", e)
	}
	if e := byInst["ENTRYPOINT"][0]; !strings.Contains(e.Here, "CMD vs ENTRYPOINT") || !strings.Contains(e.Here, "JSON") {
		t.Errorf("ENTRYPOINT: %+v", e)
	}
	all, err := Explain([]byte("FROM scratch\nADD a.txt /\nCMD /app\nLABEL a=b\nVOLUME /data\nHEALTHCHECK CMD [\"/app\",\"-h\"]\nSHELL [\"/bin/sh\",\"-c\"]\nSTOPSIGNAL SIGINT\nONBUILD COPY . /\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 9 || !strings.Contains(all[1].Here, "ADD vs COPY") || !strings.Contains(all[2].Here, "no /bin/sh") {
		t.Errorf("explain: %+v", all)
	}
	for _, e := range all {
		if strings.HasPrefix(e.What, "Unknown") {
			t.Errorf("%s not in the catalogue", e.Instruction)
		}
	}
}

// Under SHELL powershell or on a Windows base, shell form is not /bin/sh.
func TestExplainWindows(t *testing.T) {
	src, err := os.ReadFile("testdata/lint/53-windows.Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := Explain(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ex {
		if strings.Contains(e.Here, "/bin/sh") {
			t.Errorf("line %d: %s", e.Line, e.Here)
		}
		switch e.Line {
		case 6, 9:
			if !strings.Contains(e.Here, "powershell") {
				t.Errorf("line %d should name powershell: %s", e.Line, e.Here)
			}
		case 14:
			if !strings.Contains(e.Here, "cmd /S /C") {
				t.Errorf("line %d should name cmd: %s", e.Line, e.Here)
			}
		}
	}
}

// cliProject is a batch program: it dials a server but listens on nothing,
// and has a package named secrets.
func cliProject(t *testing.T) string {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"go.mod":             "module example.com/backup\n\ngo 1.26.0\n",
		"go.sum":             "",
		"main.go":            "package main\n\nimport (\n\t\"net\"\n\n\t\"example.com/backup/secrets\"\n)\n\nfunc main() {\n\tc, _ := net.Dial(\"tcp\", \"localhost:2379\")\n\t_ = c\n\t_ = secrets.Load()\n}\n",
		"secrets/secrets.go": "package secrets\n\nfunc Load() error { return nil }\n",
	})
	return dir
}

func TestDetectListen(t *testing.T) {
	for name, src := range map[string]string{
		"80":   "package main\n\nimport (\"flag\"; \"net/http\")\n\nfunc main() {\n\tport := flag.String(\"port\", \"80\", \"port\")\n\tflag.Parse()\n\t_ = http.ListenAndServe(\":\"+*port, nil)\n}\n",
		"3000": "package main\n\nimport (\"net/http\"; \"os\")\n\nfunc main() {\n\tport := os.Getenv(\"PORT\")\n\tif port == \"\" {\n\t\tport = \"3000\"\n\t}\n\t_ = http.ListenAndServe(\":\"+port, nil)\n}\n",
		"9443": "package main\n\nimport \"net/http\"\n\nfunc main() {\n\tsrv := &http.Server{Addr: \":9443\"}\n\t_ = srv.ListenAndServeTLS(\"c\", \"k\")\n}\n",
		"8081": "package main\n\nfunc main() {\n\tr := gin.Default()\n\t_ = r.Run(\":8081\")\n}\n",
		"none": "package main\n\nimport \"net\"\n\nfunc main() { _, _ = net.Dial(\"tcp\", \":5432\") }\n",
	} {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"main.go": src})
		ln := DetectListen("", dir)
		got := "none"
		if ln.Server {
			got = fmt.Sprint(ln.Port())
		}
		if got != name {
			t.Errorf("%s: got %s (%+v)", name, got, ln)
		}
	}
}

// The generated .dockerignore keeps every Go package in the context.
func TestDockerignoreKeepsPackages(t *testing.T) {
	p, err := Inspect(cliProject(t))
	if err != nil {
		t.Fatal(err)
	}
	g, err := Generate(p, GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if g.Server || g.Port != 0 || strings.Contains(g.Dockerfile, "EXPOSE") || strings.Contains(g.Dockerfile, "--rm -p") {
		t.Errorf("a program that does not listen got a port: %+v\n%s", g, g.Dockerfile)
	}
	pats, err := ignorefile.ReadAll(strings.NewReader(g.Dockerignore))
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(pats)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"secrets/secrets.go", "bin/tool/main.go", "dist/index.html", "tmp/tmp.go", "certs/ca.pem", "keys/signing.key", "main.go", "go.sum"} {
		if m, _ := pm.MatchesOrParentMatches(f); m {
			t.Errorf("%s is excluded by the generated .dockerignore", f)
		}
	}
}
