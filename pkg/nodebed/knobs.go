package nodebed

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/moby/client"
)

// Stop shuts the host down cleanly (systemd's shutdown, like `poweroff`).
func (h *Host) Stop(ctx context.Context) error {
	timeout := 30
	_, err := h.bed.env.Client.ContainerStop(ctx, h.Container.ID, client.ContainerStopOptions{Timeout: &timeout})
	return wrap(h, "stop", err)
}

// Kill stops the host at once, like a power cut.
func (h *Host) Kill(ctx context.Context) error {
	_, err := h.bed.env.Client.ContainerKill(ctx, h.Container.ID, client.ContainerKillOptions{Signal: "KILL"})
	return wrap(h, "kill", err)
}

// Pause freezes every process of the host (it stops answering, as a hung
// machine does); Unpause thaws them.
func (h *Host) Pause(ctx context.Context) error {
	_, err := h.bed.env.Client.ContainerPause(ctx, h.Container.ID, client.ContainerPauseOptions{})
	return wrap(h, "pause", err)
}

// Unpause thaws a paused host.
func (h *Host) Unpause(ctx context.Context) error {
	_, err := h.bed.env.Client.ContainerUnpause(ctx, h.Container.ID, client.ContainerUnpauseOptions{})
	return wrap(h, "unpause", err)
}

// Restart reboots the host cleanly and waits until it is back. Its disk (/var
// and the rest of its file system) and its identity stay; routes and
// iptables rules added at run time are gone, as on a real reboot.
func (h *Host) Restart(ctx context.Context) error {
	if err := h.Stop(ctx); err != nil {
		return err
	}
	return h.Start(ctx)
}

// State is the engine's view of the host: running, paused, exited, ...
func (h *Host) State(ctx context.Context) (string, error) {
	res, err := h.bed.env.Client.ContainerInspect(ctx, h.Container.ID, client.ContainerInspectOptions{})
	if err != nil {
		return "", wrap(h, "inspect", err)
	}
	if res.Container.State == nil {
		return "", nil
	}
	return string(res.Container.State.Status), nil
}

func wrap(h *Host, what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("nodebed: %s %s: %w", what, h.Name, err)
}

// BlockPort drops every TCP packet from `from` to port on `to` (an iptables
// rule in to's INPUT chain, as a firewall would). UnblockPort removes it.
func (b *Bed) BlockPort(ctx context.Context, from, to *Host, port int) error {
	_, err := to.Exec(ctx, blockRule("-I", from, port)...)
	return err
}

// UnblockPort removes a rule BlockPort added.
func (b *Bed) UnblockPort(ctx context.Context, from, to *Host, port int) error {
	_, err := to.Exec(ctx, blockRule("-D", from, port)...)
	return err
}

func blockRule(op string, from *Host, port int) []string {
	return []string{"iptables", "-w", op, "INPUT", "-s", from.Address.String(), "-p", "tcp", "--dport", strconv.Itoa(port), "-j", "DROP"}
}

// MemoryBytes is the host's memory use as `docker stats` counts it: the
// cgroup's usage without inactive page cache.
func (h *Host) MemoryBytes(ctx context.Context) (int64, error) {
	out, err := h.Exec(ctx, "sh", "-c", "cat /sys/fs/cgroup/memory/memory.usage_in_bytes; grep -E '^total_inactive_file ' /sys/fs/cgroup/memory/memory.stat || echo x 0")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(out)
	if len(f) < 3 {
		return 0, fmt.Errorf("nodebed: %s: memory: unexpected %q", h.Name, out)
	}
	usage, err1 := strconv.ParseInt(f[0], 10, 64)
	inactive, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("nodebed: %s: memory: unexpected %q", h.Name, out)
	}
	return usage - inactive, nil
}

// LogJournals logs the end of every host's journal (for a failed test).
func (b *Bed) LogJournals(logf func(string, ...any)) {
	ctx, cancel := context.WithTimeout(context.Background(), 30e9)
	defer cancel()
	for _, h := range b.Hosts {
		out, err := h.Exec(ctx, "journalctl", "-b", "--no-pager", "-n", "60", "-o", "short-monotonic")
		if err != nil {
			logf("nodebed: journal of %s: %v", h.Name, err)
			continue
		}
		logf("nodebed: last journal lines of %s (%s):\n%s", h.Name, h.Address, out)
	}
}
