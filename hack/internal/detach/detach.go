// Package detach runs the background "runner" of the hack/ commands that hold
// a local bed after `make` returns (hack/testbed, hack/nodebed): a copy of the
// running program (`go run` deletes its own binary when it exits), started in
// a new session with its output in <dir>/runner.log and its PID in
// <dir>/runner.pid.
package detach

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Runner is the background process of one state directory.
type Runner struct {
	Dir string
	// Name of the copied executable under Dir/bin.
	Name string
}

func (r Runner) path(name string) string { return filepath.Join(r.Dir, name) }

// Log is the runner's output file.
func (r Runner) Log() string { return r.path("runner.log") }

// PID returns the PID of a live runner of this directory, or 0.
func (r Runner) PID() int {
	b, err := os.ReadFile(r.path("runner.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 || syscall.Kill(pid, 0) != nil {
		return 0
	}
	// A recycled PID would not be running our copy.
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil || !strings.HasPrefix(exe, r.path("bin")) {
		return 0
	}
	return pid
}

// Start copies this program to Dir/bin/Name and starts it with args, detached
// from the terminal and from make. The channel reports its exit.
func (r Runner) Start(args ...string) (<-chan error, error) {
	if err := os.MkdirAll(r.path("bin"), 0o755); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	exe := r.path("bin/" + r.Name)
	if err := copyFile(self, exe); err != nil {
		return nil, err
	}
	logf, err := os.Create(r.Log())
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlive make and the terminal
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(r.path("runner.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}
	exited := make(chan error, 1)
	go func() {
		exited <- cmd.Wait()
		_ = os.Remove(r.path("runner.pid"))
	}()
	return exited, nil
}

// Stop sends SIGTERM to a live runner and waits up to grace for it to exit
// (then SIGKILL). It reports whether a runner was running.
func (r Runner) Stop(grace time.Duration) bool {
	pid := r.PID()
	if pid == 0 {
		return false
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if syscall.Kill(pid, 0) == nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = os.Remove(r.path("runner.pid"))
	return true
}

// Tail returns the last n lines of the runner's log.
func (r Runner) Tail(n int) string {
	b, err := os.ReadFile(r.Log())
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
