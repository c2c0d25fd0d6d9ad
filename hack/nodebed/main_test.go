package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/hacluster/hacluster/pkg/dockertest"
	"github.com/hacluster/hacluster/pkg/nodebed"
)

// TestUpDown drives the program as `make nodebed-up/-down` do: up starts
// detached hosts and prints an ssh line per host that works as printed (with
// the host key checked), a second up only reports them, down removes every
// container, volume and network.
func TestUpDown(t *testing.T) {
	env := dockertest.New(t)
	env.RequireImage(t, nodebed.Image)
	exe := filepath.Join(t.TempDir(), "nodebed")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	id := "nbcli-" + env.ID()
	run := func(args ...string) (string, string, error) {
		cmd := exec.Command(exe, append([]string{"--dir", dir, "--id", id}, args...)...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	t.Cleanup(func() { _, _, _ = run("down") })

	out, errOut, err := run("up", "-n", "2")
	if err != nil {
		t.Fatalf("up: %v\n%s\n%s", err, out, errOut)
	}
	var inf info
	b, err := os.ReadFile(filepath.Join(dir, "info.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &inf); err != nil {
		t.Fatal(err)
	}
	if len(inf.Hosts) != 2 {
		t.Fatalf("info: %+v", inf)
	}
	// The printed ssh line works with OpenSSH as written (strict host key checking).
	for _, h := range inf.Hosts {
		line := fmt.Sprintf("ssh -i %s -o UserKnownHostsFile=%s root@%s", inf.KeyFile, inf.KnownHostsFile, h.Address)
		if !strings.Contains(out, line) {
			t.Fatalf("up does not print %q:\n%s", line, out)
		}
		if _, err := exec.LookPath("ssh"); err != nil {
			t.Log("no OpenSSH client here; not running the printed line")
			continue
		}
		args := append(strings.Fields(line)[1:], "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "hostname")
		got, err := exec.Command("ssh", args...).CombinedOutput()
		if err != nil || strings.TrimSpace(string(got)) != h.Name {
			t.Errorf("%s: %v: %s", line, err, got)
		}
	}
	// A second up reports the running bed.
	out2, errOut2, err := run("up", "-n", "2")
	if err != nil || !strings.Contains(errOut2, "already running") || !strings.Contains(out2, inf.Hosts[0].Address) {
		t.Errorf("second up: %v\n%s\n%s", err, out2, errOut2)
	}
	if _, _, err := run("down"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := make(client.Filters).Add("label", dockertest.LabelKey+"="+id)
	cs, err := env.Client.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil || len(cs.Items) != 0 {
		t.Errorf("after down: %d containers left (%v)", len(cs.Items), err)
	}
	ns, err := env.Client.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil || len(ns.Items) != 0 {
		t.Errorf("after down: %d networks left (%v)", len(ns.Items), err)
	}
	vs, err := env.Client.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil || len(vs.Items) != 0 {
		t.Errorf("after down: %d volumes left (%v)", len(vs.Items), err)
	}
	if st, _, _ := run("status"); !strings.Contains(st, "not running") {
		t.Errorf("status after down: %q", st)
	}
}
