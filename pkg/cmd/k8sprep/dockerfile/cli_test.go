package dockerfile_test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// plugin returns $HACLUSTER_BIN/docker-k8sprep (make test) or builds one.
func plugin(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("HACLUSTER_BIN"); dir != "" {
		return filepath.Join(dir, "docker-k8sprep")
	}
	p := filepath.Join(t.TempDir(), "docker-k8sprep")
	if out, err := exec.Command("go", "build", "-o", p, "github.com/hacluster/hacluster/cmd/docker-k8sprep").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return p
}

type result struct {
	stdout, stderr string
	code           int
}

func run(bin string, stdin string, args ...string) result {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0", "DOCKER_HOST=unix:///nonexistent.sock")
	cmd.Stdin = strings.NewReader(stdin)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	return result{o.String(), e.String(), code}
}

func TestCLI(t *testing.T) {
	bin := plugin(t)
	dir := t.TempDir()
	for name, body := range map[string]string{
		"go.mod":      "module example.com/svc\n\ngo 1.26.0\n",
		"main.go":     "package main\n\nimport \"net/http\"\n\nfunc main() { _ = http.ListenAndServe(\":9090\", nil) }\n",
		"config.toml": "[x]\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	r := run(bin, "", "dockerfile", "init", dir, "--stdout")
	if r.code != 0 || !strings.Contains(r.stdout, "EXPOSE 9090") || !strings.Contains(r.stdout, "ARG GO_IMAGE=golang:1.26.0") {
		t.Fatalf("init --stdout: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "Dockerfile")); err == nil {
		t.Fatal("--stdout wrote a file")
	}
	if r := run(bin, "", "dockerfile", "init", dir); r.code != 0 || !strings.Contains(r.stdout, "wrote ") {
		t.Fatalf("init: %+v", r)
	}
	first, _ := os.ReadFile(filepath.Join(dir, "Dockerfile"))
	r = run(bin, "", "dockerfile", "init", dir, "--port", "7070")
	if r.code == 0 || !strings.Contains(r.stderr, "already exists") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("second init without --force: %+v", r)
	}
	r = run(bin, "", "dockerfile", "init", dir, "--port", "7070", "--force", "-o", "json")
	var ini struct {
		Port  int
		Files []struct{ Path, Backup string }
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &ini) != nil || ini.Port != 7070 || len(ini.Files) != 2 || ini.Files[0].Backup == "" {
		t.Fatalf("init --force -o json: %+v", r)
	}
	if bak, _ := os.ReadFile(ini.Files[0].Backup); string(bak) != string(first) {
		t.Error("the backup is not the previous Dockerfile")
	}

	// The rewritten file exposes 7070 but the app listens on 9090.
	r = run(bin, "", "dockerfile", "lint", filepath.Join(dir, "Dockerfile"), "-o", "json")
	var rep struct {
		Findings []struct {
			Rule     string
			Severity string
			Line     int
		}
	}
	if r.code != 1 || json.Unmarshal([]byte(r.stdout), &rep) != nil || len(rep.Findings) != 1 || rep.Findings[0].Rule != "ExposeMismatch" || rep.Findings[0].Severity != "warning" {
		t.Fatalf("lint: %+v", r)
	}
	if r := run(bin, "", "dockerfile", "lint", filepath.Join(dir, "Dockerfile"), "--failure-threshold", "error"); r.code != 0 {
		t.Fatalf("lint --failure-threshold error: %+v", r)
	}
	if r := run(bin, "", "dockerfile", "lint", filepath.Join(dir, "Dockerfile"), "--port", "7070"); r.code != 0 || r.stdout != "" {
		t.Fatalf("lint --port 7070: %+v", r)
	}
	r = run(bin, "FROM scratch\nRUN true\n", "dockerfile", "lint", "-", "-o", "sarif")
	if r.code != 1 || !strings.Contains(r.stdout, `"ruleId": "ScratchRun"`) {
		t.Fatalf("lint - -o sarif: %+v", r)
	}
	if r := run(bin, "", "dockerfile", "lint", "--list-rules"); r.code != 0 || !strings.Contains(r.stdout, "CgoNotDisabled") {
		t.Fatalf("--list-rules: %+v", r)
	}
	// Exit statuses: 1 findings, 2 no such file, 125 usage error.
	if r := run(bin, "", "dockerfile", "lint", "--failure-threshold", "fatal"); r.code != 125 || !strings.Contains(r.stderr, "unknown severity") {
		t.Fatalf("bad threshold: %+v", r)
	}
	if r := run(bin, "", "dockerfile", "lint", "--no-such-flag"); r.code != 125 {
		t.Fatalf("unknown flag: %+v", r)
	}
	if r := run(bin, "", "dockerfile", "lint", filepath.Join(dir, "nope", "Dockerfile")); r.code != 2 || !strings.Contains(r.stderr, "no such file") {
		t.Fatalf("missing file: %+v", r)
	}
	// A clean file gives "findings": [], not null.
	r = run(bin, "FROM scratch\nCOPY app /app\nUSER 65532\nENTRYPOINT [\"/app\"]\n", "dockerfile", "lint", "-", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"findings": []`) {
		t.Fatalf("clean file -o json: %+v", r)
	}
	// A program that listens on nothing gets no EXPOSE.
	batch := t.TempDir()
	for name, body := range map[string]string{
		"go.mod":  "module example.com/batch\n\ngo 1.26.0\n",
		"main.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"done\") }\n",
	} {
		if err := os.WriteFile(filepath.Join(batch, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if r := run(bin, "", "dockerfile", "init", batch); r.code != 0 || !strings.Contains(r.stdout, "no server found") {
		t.Fatalf("init of a batch program: %+v", r)
	}
	if b, _ := os.ReadFile(filepath.Join(batch, "Dockerfile")); strings.Contains(string(b), "EXPOSE") {
		t.Fatalf("batch program Dockerfile exposes a port:\n%s", b)
	}

	r = run(bin, "", "dockerfile", "explain", filepath.Join(dir, "Dockerfile"), "-o", "json")
	var ex []struct {
		Line                    int
		Instruction, What, Here string
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &ex) != nil || len(ex) < 10 {
		t.Fatalf("explain -o json: %+v", r)
	}
	if r := run(bin, "", "dockerfile", "explain", filepath.Join(dir, "Dockerfile")); r.code != 0 || !strings.Contains(r.stdout, "CMD vs ENTRYPOINT") {
		t.Fatalf("explain: %+v", r)
	}
}
