package dockerfile

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestLintFixtures lints every testdata/lint/*.Dockerfile and compares
// "line rule severity" lines with the .golden file next to it. A NAME.ctx
// directory next to the fixture is its build context (--context).
func TestLintFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/lint/*.Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 30 {
		t.Fatalf("only %d lint fixtures, want >= 30", len(files))
	}
	seen := map[string]bool{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".Dockerfile")
		t.Run(name, func(t *testing.T) {
			// NAME.ctx/, when there, is the build context of NAME.Dockerfile.
			o := LintOptions{}
			if ctx := strings.TrimSuffix(f, ".Dockerfile") + ".ctx"; exists(ctx) {
				o.ContextDir, o.ContextKnown = ctx, true
			}
			rep, err := LintFile(f, o)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, x := range rep.Findings {
				fmt.Fprintf(&b, "%d %s %s\n", x.Line, x.Rule, x.Severity)
				seen[x.Rule] = true
			}
			golden := strings.TrimSuffix(f, ".Dockerfile") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestLintFixtures -update)", err)
			}
			if b.String() != string(want) {
				t.Errorf("findings differ\n got:\n%s\nwant:\n%s", b.String(), want)
			}
		})
	}
	// Every rule has a fixture.
	if !*update {
		for _, r := range Rules() {
			if !seen[r.ID] {
				t.Errorf("rule %s has no fixture that triggers it", r.ID)
			}
		}
	}
}

func TestLintContextChecks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/svc\n\ngo 1.26.0\n")
	write("main.go", "package main\n\nimport \"net/http\"\n\nfunc main() { _ = http.ListenAndServe(\":9090\", nil) }\n")
	src := []byte("FROM golang:1.26.0 AS build\nWORKDIR /src\nCOPY go.mod ./\nRUN go mod download\nCOPY . .\nRUN CGO_ENABLED=0 go build -o /app .\nFROM scratch\nCOPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/\nCOPY --from=build /app /app\nCOPY secrets.env /secrets.env\nUSER 65532\nEXPOSE 8080\nENTRYPOINT [\"/app\"]\n")
	rules := func(o LintOptions) string {
		rep, err := Lint("Dockerfile", src, o)
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, f := range rep.Findings {
			s = append(s, fmt.Sprintf("%d:%s", f.Line, f.Rule))
		}
		return strings.Join(s, " ")
	}
	// A small context needs no .dockerignore; one with .git/ in it does.
	if got, want := rules(LintOptions{ContextDir: dir}), "12:ExposeMismatch"; got != want {
		t.Errorf("without .dockerignore, small: %s, want %s", got, want)
	}
	if err := os.MkdirAll(filepath.Join(dir, ".git", "objects"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, want := rules(LintOptions{ContextDir: dir}), "0:NoDockerignore 12:ExposeMismatch"; got != want {
		t.Errorf("without .dockerignore, .git: %s, want %s", got, want)
	}
	// The Dockerfile's folder is not known to be the context when it is
	// not a project root: no go.mod there.
	other := t.TempDir()
	if err := os.MkdirAll(filepath.Join(other, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := rules(LintOptions{ContextDir: other}); strings.Contains(got, "NoDockerignore") {
		t.Errorf("folder that is not a project root: %s", got)
	}
	if got := rules(LintOptions{ContextDir: other, ContextKnown: true}); !strings.Contains(got, "NoDockerignore") {
		t.Errorf("--context with .git/: %s", got)
	}
	write(".dockerignore", "*.env\n")
	if got, want := rules(LintOptions{ContextDir: dir}), "10:CopyIgnoredFile 12:ExposeMismatch"; got != want {
		t.Errorf("with .dockerignore: %s, want %s", got, want)
	}
	if got, want := rules(LintOptions{ContextDir: dir, Port: 8080, Ignore: []string{"copyignoredfile"}}), ""; got != want {
		t.Errorf("--port 8080 --ignore: %q, want %q", got, want)
	}
	if got := rules(LintOptions{}); got != "" {
		t.Errorf("no context: %q, want no findings", got)
	}
}

func TestReportThreshold(t *testing.T) {
	rep, err := LintFile("testdata/lint/29-consecutive-run.Dockerfile", LintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Fails(SeverityInfo) || rep.Fails(SeverityWarning) || rep.Fails(SeverityNone) {
		t.Errorf("info-only report: Fails(info)=%v Fails(warning)=%v", rep.Fails(SeverityInfo), rep.Fails(SeverityWarning))
	}
	if _, err := ParseSeverity("fatal"); err == nil {
		t.Error("ParseSeverity(fatal) should fail")
	}
}

func TestSARIF(t *testing.T) {
	rep, err := LintFile("testdata/lint/02-article.Dockerfile", LintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteSARIF(&buf, "v0.0.0-test", rep); err != nil {
		t.Fatal(err)
	}
	var log struct {
		Version string
		Runs    []struct {
			Tool struct {
				Driver struct{ Rules []struct{ ID string } }
			}
			Results []struct {
				RuleID    string
				Level     string
				Locations []struct {
					PhysicalLocation struct {
						Region struct{ StartLine int }
					}
				}
			}
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || len(log.Runs[0].Results) != len(rep.Findings) {
		t.Fatalf("sarif = %s", buf.String())
	}
	found := false
	for _, r := range log.Runs[0].Results {
		if r.RuleID == RuleSecretInValue && r.Level == "error" && r.Locations[0].PhysicalLocation.Region.StartLine == 2 {
			found = true
		}
	}
	if !found {
		t.Errorf("the article's DB_CONNECTION_STRING is not an error at line 2 in:\n%s", buf.String())
	}
}

// BenchmarkLint1000Lines lints a 1,000-line multi-stage Dockerfile; the target
// is under 50 ms per run.
func BenchmarkLint1000Lines(b *testing.B) {
	src := bigDockerfile(1000)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		rep, err := Lint("Dockerfile", src, LintOptions{})
		if err != nil || len(rep.Findings) == 0 {
			b.Fatalf("lint: %v, %d findings", err, len(rep.Findings))
		}
	}
}

func bigDockerfile(lines int) []byte {
	var b bytes.Buffer
	b.WriteString("ARG GO_IMAGE=golang:1.26.0\n")
	n := 1
	for stage := 0; n < lines; stage++ {
		fmt.Fprintf(&b, "FROM ${GO_IMAGE} AS s%d\nWORKDIR /src\nENV MODE production\n", stage)
		n += 3
		for i := 0; i < 45 && n < lines-2; i++ {
			switch i % 5 {
			case 0:
				fmt.Fprintf(&b, "RUN apt-get update && apt-get install -y pkg%d | tee /tmp/log && cd /tmp\n", i)
			case 1:
				fmt.Fprintf(&b, "COPY file%d.go sub%d/\n", i, i)
			case 2:
				fmt.Fprintf(&b, "RUN <<EOT\nset -e\necho %d\nEOT\n", i)
				n += 3
			case 3:
				fmt.Fprintf(&b, "LABEL k%d=v%d\n", i, i)
			default:
				fmt.Fprintf(&b, "EXPOSE %d\n", 8000+i)
			}
			n++
		}
	}
	b.WriteString("FROM scratch\nCOPY --from=s0 /out/app /app\nENTRYPOINT /app\n")
	return b.Bytes()
}

func TestBigDockerfileHasThousandLines(t *testing.T) {
	if n := bytes.Count(bigDockerfile(1000), []byte("\n")); n < 1000 || n > 1010 {
		t.Fatalf("benchmark input has %d lines, want about 1000", n)
	}
}

// Messages show values as BuildKit expands them, without the quotes of the
// ARG default.
func TestLintExpandsLikeBuildKit(t *testing.T) {
	src := []byte("ARG IMG=\"busybox\"\nARG OS=\"linux\" ARCH='amd64'\nARG TAG\nFROM ${IMG}\nFROM alpine-\"${OS}\"-${ARCH}\nFROM alpine:${TAG}\nUSER 1000\nCMD [\"true\"]\n")
	rep, err := Lint("Dockerfile", src, LintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range rep.Findings {
		got = append(got, fmt.Sprintf("%d %s: %s", f.Line, f.Rule, f.Message))
	}
	want := []string{
		"4 DL3006: Always tag the version of an image explicitly: busybox",
		"5 DL3006: Always tag the version of an image explicitly: alpine-linux-amd64",
		"6 InvalidDefaultArgInFrom: Default value for ARG alpine:${TAG} results in empty or invalid base image name",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A --build-arg that gives the tag a value makes the FROM valid.
	rep, _ = Lint("Dockerfile", src, LintOptions{BuildArgs: map[string]string{"TAG": "3.22"}})
	for _, f := range rep.Findings {
		if f.Rule == "InvalidDefaultArgInFrom" {
			t.Errorf("with --build-arg TAG: %v", f)
		}
	}
}
