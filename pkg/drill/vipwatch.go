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

// vipWatch follows the VIP on every control plane: one SSH session per
// host runs a loop that prints 1 or 0 when the host gains or loses the VIP
// (checked every 50 ms); the time is taken here when the line arrives, so
// that the hosts' clocks do not matter.
type vipWatch struct {
	ctx    context.Context
	d      *drill
	mu     sync.Mutex
	events []vipEvent
	wg     sync.WaitGroup
}

func startVIPWatch(ctx context.Context, d *drill) *vipWatch {
	w := &vipWatch{ctx: ctx, d: d}
	for _, h := range d.c.ControlPlanes() {
		w.restart(h.Name)
	}
	return w
}

func (w *vipWatch) setEpoch(time.Time) {}

func (w *vipWatch) wait() { w.wg.Wait() }

// restart follows host on its current connection.
func (w *vipWatch) restart(host string) {
	c := w.d.conn(host)
	script := fmt.Sprintf(`p=; while :; do if ip -4 -o addr show | grep -qF %s; then s=1; else s=0; fi; [ "$s" = "$p" ] || echo $s; p=$s; sleep 0.05; done`, remote.Quote(" "+w.d.vip+"/"))
	w.wg.Go(func() {
		_, _ = c.Run(w.ctx, remote.Cmd{Script: script, Stdout: &lineWriter{fn: func(line string) {
			w.mu.Lock()
			w.events = append(w.events, vipEvent{t: time.Now(), host: host, holds: line == "1"})
			w.mu.Unlock()
		}}})
	})
}

// snapshot returns the events so far.
func (w *vipWatch) snapshot() []vipEvent {
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
