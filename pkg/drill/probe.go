package drill

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// ConfigMapName is the ConfigMap (namespace default) the drill writes and
// watches; it is deleted at the end.
const ConfigMapName = "hacluster-drill"

// sample is one request: when it was sent, when it ended, and its error.
type sample struct {
	start, end time.Time
	err        error
}

// probes reads and writes through the endpoint and watches what it writes.
type probes struct {
	cs       kubernetes.Interface
	interval time.Duration
	timeout  time.Duration

	mu       sync.Mutex
	reads    []sample
	writes   []sample
	events   []time.Time // watch events received
	restarts int         // watches made again after a failure or a stall
	epoch    time.Time
	wg       sync.WaitGroup
}

// newClient: HTTP/1.1 without keep-alive, so that every request opens its
// own connection through the endpoint (as a new client does) and no request
// waits on a connection to a host that went away; the auth of cfg (client
// certificate or token) is kept.
func newClient(cfg *rest.Config, timeout time.Duration) (kubernetes.Interface, error) {
	tlsCfg, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		TLSClientConfig:     tlsCfg,
		DisableKeepAlives:   true,
		DialContext:         (&net.Dialer{Timeout: timeout}).DialContext,
		TLSHandshakeTimeout: timeout,
		ForceAttemptHTTP2:   false,
	}
	rt, err := rest.HTTPWrappersForConfig(cfg, tr)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(&rest.Config{Host: cfg.Host, Transport: rt, UserAgent: cfg.UserAgent, QPS: 1000, Burst: 1000})
}

func startProbes(ctx context.Context, cfg *rest.Config, interval, timeout time.Duration) (*probes, error) {
	cs, err := newClient(cfg, timeout)
	if err != nil {
		return nil, err
	}
	p := &probes{cs: cs, interval: interval, timeout: timeout}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName, Labels: map[string]string{"app.kubernetes.io/managed-by": "kubectl-hacluster-drill"}},
		Data: map[string]string{"n": "0"}}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := cs.CoreV1().ConfigMaps("default").Create(cctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create ConfigMap default/%s through the endpoint: %w", ConfigMapName, err)
	}
	p.wg.Add(3)
	go p.readLoop(ctx)
	go p.writeLoop(ctx)
	go p.watchLoop(ctx)
	return p, nil
}

func (p *probes) setEpoch(t time.Time) {
	p.mu.Lock()
	p.epoch = t
	p.mu.Unlock()
}

func (p *probes) wait() { p.wg.Wait() }

// cleanup deletes the ConfigMap (best effort).
func (p *probes) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = p.cs.CoreV1().ConfigMaps("default").Delete(ctx, ConfigMapName, metav1.DeleteOptions{})
}

// readLoop: a GET of the default Namespace every interval, each in its own
// goroutine so that a hung request does not delay the next.
func (p *probes) readLoop(ctx context.Context) {
	defer p.wg.Done()
	var inflight sync.WaitGroup
	defer inflight.Wait()
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		inflight.Go(func() {
			rctx, cancel := context.WithTimeout(context.Background(), p.timeout)
			defer cancel()
			s := sample{start: time.Now()}
			_, s.err = p.cs.CoreV1().Namespaces().Get(rctx, "default", metav1.GetOptions{})
			s.end = time.Now()
			p.mu.Lock()
			p.reads = append(p.reads, s)
			p.mu.Unlock()
		})
	}
}

// writeLoop updates the ConfigMap every 500 ms (the watch sees each write).
func (p *probes) writeLoop(ctx context.Context) {
	defer p.wg.Done()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		wctx, cancel := context.WithTimeout(context.Background(), p.timeout)
		s := sample{start: time.Now()}
		patch := []byte(`{"data":{"n":"` + strconv.Itoa(n) + `"}}`)
		_, s.err = p.cs.CoreV1().ConfigMaps("default").Patch(wctx, ConfigMapName, "application/merge-patch+json", patch, metav1.PatchOptions{})
		s.end = time.Now()
		cancel()
		p.mu.Lock()
		p.writes = append(p.writes, s)
		p.mu.Unlock()
	}
}

// watchLoop watches the ConfigMap; a watch that ends, fails, or shows no
// event for 2 s (a write comes every 500 ms) is made again from the last
// resource version, as a client's reflector would.
func (p *probes) watchLoop(ctx context.Context) {
	defer p.wg.Done()
	rv := ""
	first := true
	for ctx.Err() == nil {
		if !first {
			p.mu.Lock()
			p.restarts++
			p.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(p.interval):
			}
		}
		first = false
		wctx, cancel := context.WithCancel(ctx)
		w, err := p.cs.CoreV1().ConfigMaps("default").Watch(wctx, metav1.ListOptions{FieldSelector: "metadata.name=" + ConfigMapName, ResourceVersion: rv})
		if err != nil {
			cancel()
			continue
		}
		stall := time.NewTimer(2 * time.Second)
	events:
		for {
			select {
			case <-ctx.Done():
				break events
			case <-stall.C:
				break events
			case ev, ok := <-w.ResultChan():
				if !ok {
					break events
				}
				if ev.Type == watch.Error {
					rv = "" // expired: start from now
					break events
				}
				if cm, ok := ev.Object.(*corev1.ConfigMap); ok {
					rv = cm.ResourceVersion
				}
				p.mu.Lock()
				p.events = append(p.events, time.Now())
				p.mu.Unlock()
				stall.Reset(2 * time.Second)
			}
		}
		stall.Stop()
		w.Stop()
		cancel()
	}
}

// goodFor reports whether every read of the last d answered, with reads in
// that window.
func (p *probes) goodFor(d time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	since := time.Now().Add(-d)
	n := 0
	for i := len(p.reads) - 1; i >= 0 && p.reads[i].start.After(since); i-- {
		if p.reads[i].err != nil {
			return false
		}
		n++
	}
	// Reads still under way that began before since are not counted.
	return n >= int(d/p.interval)/2
}

// waitGood waits until the reads have answered for d, at most timeout.
func (p *probes) waitGood(ctx context.Context, d, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !p.goodFor(d) {
		if time.Now().After(deadline) {
			p.mu.Lock()
			defer p.mu.Unlock()
			for i := len(p.reads) - 1; i >= 0; i-- {
				if p.reads[i].err != nil {
					return p.reads[i].err
				}
			}
			return fmt.Errorf("no read answered within %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}
