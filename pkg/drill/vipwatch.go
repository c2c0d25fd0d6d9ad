package drill

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hacluster/hacluster/pkg/remote"
)

// vipEvent: at t, host gained (holds) or lost the VIP.
type vipEvent struct {
	t     time.Time
	host  string
	holds bool
}

// VIPWatch follows the VIP on control planes: one SSH session per host
// runs a loop that prints 1 or 0 when the host gains or loses the VIP
// (checked every 50 ms; the first line is the state at the start); the
// time is taken here when the line arrives, so that the hosts' clocks do
// not matter. The sessions end with the context.
type VIPWatch struct {
	ctx    context.Context
	vip    string
	conn   func(host string) *remote.Conn
	mu     sync.Mutex
	events []vipEvent
	wg     sync.WaitGroup
}

// VIPChange is one line of a VIPWatch: at At, Host held the VIP (Holds)
// or did not. Each host's first change is its state when the watch began.
type VIPChange struct {
	At    time.Time
	Host  string
	Holds bool
}

// WatchVIP follows vip on hosts, reached with conn (a fleet's
// connections), until ctx ends.
func WatchVIP(ctx context.Context, vip string, hosts []string, conn func(host string) *remote.Conn) *VIPWatch {
	w := &VIPWatch{ctx: ctx, vip: vip, conn: conn}
	for _, h := range hosts {
		w.restart(h)
	}
	return w
}

// Changes returns what was seen so far, in arrival order.
func (w *VIPWatch) Changes() []VIPChange {
	var out []VIPChange
	for _, e := range w.snapshot() {
		out = append(out, VIPChange{At: e.t, Host: e.host, Holds: e.holds})
	}
	return out
}

// Wait waits until every session ended (after ctx's end).
func (w *VIPWatch) Wait() { w.wait() }

func startVIPWatch(ctx context.Context, d *drill) *VIPWatch {
	var hosts []string
	for _, h := range d.c.ControlPlanes() {
		hosts = append(hosts, h.Name)
	}
	return WatchVIP(ctx, d.vip, hosts, d.conn)
}

func (w *VIPWatch) setEpoch(time.Time) {}

func (w *VIPWatch) wait() { w.wg.Wait() }

// restart follows host on its current connection.
func (w *VIPWatch) restart(host string) {
	c := w.conn(host)
	script := fmt.Sprintf(`p=; while :; do if ip -4 -o addr show | grep -qF %s; then s=1; else s=0; fi; [ "$s" = "$p" ] || echo $s; p=$s; sleep 0.05; done`, remote.Quote(" "+w.vip+"/"))
	w.wg.Go(func() {
		_, _ = c.Run(w.ctx, remote.Cmd{Script: script, Stdout: &lineWriter{fn: func(line string) {
			w.mu.Lock()
			w.events = append(w.events, vipEvent{t: time.Now(), host: host, holds: line == "1"})
			w.mu.Unlock()
		}}})
	})
}

// snapshot returns the events so far.
func (w *VIPWatch) snapshot() []vipEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]vipEvent(nil), w.events...)
}

// lineWriter calls fn for each complete line written.
type lineWriter struct {
	buf []byte
	fn  func(string)
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.fn(string(bytes.TrimSpace(l.buf[:i])))
		l.buf = l.buf[i+1:]
	}
}
