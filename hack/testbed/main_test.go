package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hacluster/hacluster/pkg/testbed"
)

// TestUpTwiceDown drives the program as `make testbed-up/-down` do: up starts
// a detached cluster a user's kubeconfig reaches through the VIP, a second up
// only reports it, down stops every process it started.
func TestUpTwiceDown(t *testing.T) {
	if _, err := testbed.BinDir(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	exe := filepath.Join(t.TempDir(), "testbed")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	run := func(args ...string) (string, string, error) {
		cmd := exec.Command(exe, append([]string{"--dir", dir}, args...)...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	t.Cleanup(func() { _, _, _ = run("down") })

	out, errOut, err := run("up")
	if err != nil {
		t.Fatalf("up: %v\n%s\n%s", err, out, errOut)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if !strings.Contains(out, "export KUBECONFIG="+kubeconfig+"\n") || !strings.Contains(out, "SIMULATED by kwok") || !strings.Contains(out, "REAL") {
		t.Errorf("up output:\n%s", out)
	}
	var inf info
	b, err := os.ReadFile(filepath.Join(dir, "info.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &inf); err != nil {
		t.Fatal(err)
	}

	// The user's kubeconfig goes through the VIP and sees the shape.
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://"+inf.Shape.VIP || !strings.HasPrefix(inf.Shape.VIP, testbed.DefaultVIPHost+":") {
		t.Errorf("kubeconfig server %s, VIP %s", cfg.Host, inf.Shape.VIP)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 5 {
		t.Errorf("%d nodes, want 5", len(nodes.Items))
	}

	pids := readPIDs(t, dir)
	if len(pids) != 6 {
		t.Errorf("pids %v, want the runner and 5 processes", pids)
	}
	out, errOut, err = run("up")
	if err != nil || !strings.Contains(errOut, "already running") || !strings.Contains(out, "export KUBECONFIG=") {
		t.Errorf("second up: %v\n%s\n%s", err, out, errOut)
	}
	if again := readPIDs(t, dir); len(again) != len(pids) || again["runner"] != pids["runner"] {
		t.Errorf("second up changed the processes: %v -> %v", pids, again)
	}

	if _, errOut, err := run("down"); err != nil || !strings.Contains(errOut, "stopped") {
		t.Fatalf("down: %v\n%s", err, errOut)
	}
	deadline := time.Now().Add(5 * time.Second)
	for name, pid := range pids {
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("%s (pid %d) still runs after down", name, pid)
		}
	}
	if _, err := os.Stat(kubeconfig); !os.IsNotExist(err) {
		t.Errorf("kubeconfig left after down: %v", err)
	}
	if _, errOut, _ := run("down"); !strings.Contains(errOut, "not running") {
		t.Errorf("second down: %s", errOut)
	}
}

func readPIDs(t *testing.T, dir string) map[string]int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "state", "*.pid"))
	files = append(files, filepath.Join(dir, "runner.pid"))
	pids := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		pids[strings.TrimSuffix(filepath.Base(f), ".pid")] = pid
	}
	return pids
}
