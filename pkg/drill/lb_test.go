package drill_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/hacluster/hacluster/pkg/drill"
	"github.com/hacluster/hacluster/pkg/fleet"
	"github.com/hacluster/hacluster/pkg/inspect"
	"github.com/hacluster/hacluster/pkg/inventory"
	"github.com/hacluster/hacluster/pkg/remote"
)

// inspectLB runs inspect with the cluster file's load balancer read over SSH
// (what `inspect components -f cluster.yaml` does).
func inspectLB(t *testing.T, c *inventory.Cluster, cfg *rest.Config) *inspect.Report {
	t.Helper()
	src, err := inspect.NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	src.LoadBalancer = inspect.NewLoadBalancerReader(c, false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := inspect.Inspect(ctx, src, inspect.AnalyzeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func lbProblems(r *inspect.Report) []inspect.Finding {
	var out []inspect.Finding
	for _, f := range r.Findings {
		if f.Severity != inspect.OK && strings.HasPrefix(f.Check, "loadbalancer.") {
			out = append(out, f)
		}
	}
	return out
}

// inspect with the cluster file on the bootstrapped cluster: one VIP
// holder (the one `ip addr` shows), keepalived and HAProxy active on every
// control plane, every backend lists the three API servers. HAProxy stopped
// on a control plane that does not hold the VIP is a warning naming it and
// the fix; the fix, run as given, makes it Healthy again.
func TestInspectLoadBalancer(t *testing.T) {
	c, cfg := cluster(t)
	waitHealthy(t)
	holder := vipHolder(t, c)
	t0 := time.Now()
	rep := inspectLB(t, c, cfg)
	t.Logf("inspect with the load balancer: %s (%s), %+v", time.Since(t0).Round(time.Millisecond), rep.Verdict, rep.LoadBalancer)
	lb := rep.LoadBalancer
	if lb == nil || !slices.Equal(lb.Holders, []string{holder}) || len(lb.Hosts) != 3 || len(lbProblems(rep)) != 0 || rep.Verdict != inspect.Healthy {
		t.Fatalf("healthy cluster: load balancer %+v, problems %+v, verdict %s %q", lb, lbProblems(rep), rep.Verdict, rep.Reasons)
	}
	var want []string
	for _, cp := range c.ControlPlanes() {
		want = append(want, cp.InternalAddress+":6443")
	}
	for _, h := range lb.Hosts {
		if h.Keepalived != "active" || h.HAProxy != "active" || !slices.Equal(h.Backends, want) || h.HoldsVIP != (h.Name == holder) {
			t.Errorf("row %+v, want both active and backends %q", h, want)
		}
	}

	var other string
	for _, cp := range c.ControlPlanes() {
		if cp.Name != holder {
			other = cp.Name
			break
		}
	}
	ctx := context.Background()
	if out, err := bed.Host(other).Exec(ctx, "systemctl", "stop", "haproxy"); err != nil {
		t.Fatalf("stop haproxy on %s: %v %s", other, err, out)
	}
	started := false
	defer func() {
		if !started {
			_, _ = bed.Host(other).Exec(ctx, "systemctl", "start", "haproxy")
		}
	}()
	rep = inspectLB(t, c, cfg)
	problems := lbProblems(rep)
	t.Logf("haproxy stopped on %s: %s, %+v", other, rep.Verdict, problems)
	if len(problems) != 1 || problems[0].Check != "loadbalancer.haproxy" || problems[0].Subject != other || problems[0].Severity != inspect.Warning ||
		rep.Verdict == inspect.Healthy || !slices.Equal(rep.LoadBalancer.Holders, []string{holder}) {
		t.Fatalf("want one haproxy warning on %s, VIP still on %s: %+v, holders %q, verdict %s", other, holder, problems, rep.LoadBalancer.Holders, rep.Verdict)
	}
	// The fix as the message gives it: ssh HOST sudo systemctl start haproxy.
	msg := problems[0].Message
	i := strings.Index(msg, "ssh "+other+" ")
	if i < 0 {
		t.Fatalf("no fix in %q", msg)
	}
	fix := strings.Fields(msg[i:])[2:] // sudo systemctl start haproxy
	if out, err := bed.Host(other).Exec(ctx, fix...); err != nil {
		t.Fatalf("%q: %v %s", fix, err, out)
	}
	started = true
	waitHealthy(t)
	// keepalived's check_haproxy needs 2 good runs (rise 2) to leave FAULT.
	var last []inspect.Finding
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		rep = inspectLB(t, c, cfg)
		if last = lbProblems(rep); len(last) == 0 && rep.Verdict == inspect.Healthy && slices.Equal(rep.LoadBalancer.Holders, []string{holder}) {
			return
		}
	}
	t.Errorf("after %q: problems %+v, verdict %s, holders %q", fix, last, rep.Verdict, rep.LoadBalancer.Holders)
}

// apiServerCgroup prints the cpu cgroup directory of the host's
// kube-apiserver (cgroup v1 in the bed's hosts, v2 elsewhere).
const apiServerCgroup = `pid=$(pgrep -xo kube-apiserver) || { echo "no kube-apiserver" >&2; exit 1; }
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  echo /sys/fs/cgroup$(awk -F: '$1 == "0" {print $3}' /proc/$pid/cgroup)
else
  p=$(awk -F: '$2 ~ /(^|,)cpu(,|$)/ {print $3}' /proc/$pid/cgroup)
  for d in /sys/fs/cgroup/cpu,cpuacct /sys/fs/cgroup/cpu; do [ -f "$d$p/cpu.cfs_quota_us" ] && { echo "$d$p"; exit 0; }; done
  echo "no cpu cgroup for $p" >&2; exit 1
fi`

// setCPUQuota limits the cgroup dir to quota µs of CPU per 100 ms (-1: no
// limit) and prints the throttle count so far.
func setCPUQuota(dir string, quota int) string {
	q := remote.Quote(dir)
	v2 := "max 100000"
	if quota >= 0 {
		v2 = strconv.Itoa(quota) + " 100000"
	}
	return fmt.Sprintf(`if [ -f %[1]s/cpu.max ]; then echo %[2]s > %[1]s/cpu.max; else echo 100000 > %[1]s/cpu.cfs_period_us; echo %[3]d > %[1]s/cpu.cfs_quota_us; fi
awk '$1 == "nr_throttled" {print $2}' %[1]s/cpu.stat`, q, remote.Quote(v2), quota)
}

// The VIP stays where it is while the API server of its holder is starved
// of CPU (1 ms per 100 ms for 60 s, while 3 clients list every Pod and
// ConfigMap straight from it, so that it needs far more): keepalived checks the local HAProxy,
// not the API server, and HAProxy sends the clients to the two other API
// servers. The VIP is followed on every control plane the whole time (a
// check every 50 ms over SSH, drill's VIPWatch); the API answers through
// the VIP at the end. Then the limit is lifted and the cluster is Healthy
// again, for the tests after this one.
func TestVIPStaysWhileAPIServerStarved(t *testing.T) {
	c, cfg := cluster(t)
	waitHealthy(t)
	ctx := context.Background()
	holder := vipHolder(t, c)
	fl, err := fleet.Connect(ctx, c, fleet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	var hosts []string
	for _, cp := range c.ControlPlanes() {
		hosts = append(hosts, cp.Name)
	}
	wctx, stopWatch := context.WithCancel(ctx)
	w := drill.WatchVIP(wctx, c.Spec.ControlPlaneEndpoint.VIP, hosts, func(h string) *remote.Conn { return fl.Conns[h] })
	defer func() { stopWatch(); w.Wait() }()
	for deadline := time.Now().Add(20 * time.Second); len(w.Changes()) < len(hosts); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the VIP watch saw %d of %d hosts: %+v", len(w.Changes()), len(hosts), w.Changes())
		}
	}

	// Clients: through the VIP, and straight to the starved API server;
	// HTTP/1.1 without keep-alive, so that every request opens its own
	// connection as a new client would (one kept connection would stay on
	// one API server and miss HAProxy's balancing).
	client := func(host string, timeout time.Duration) *kubernetes.Clientset {
		k := rest.CopyConfig(cfg)
		k.Host = (&url.URL{Scheme: "https", Host: host}).String()
		tlsCfg, err := rest.TLSConfigFor(k)
		if err != nil {
			t.Fatal(err)
		}
		rt, err := rest.HTTPWrappersForConfig(k, &http.Transport{TLSClientConfig: tlsCfg, DisableKeepAlives: true, TLSHandshakeTimeout: timeout})
		if err != nil {
			t.Fatal(err)
		}
		cs, err := kubernetes.NewForConfig(&rest.Config{Host: k.Host, Transport: rt, Timeout: timeout, QPS: 1000, Burst: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	var holderAddr string
	for _, cp := range c.ControlPlanes() {
		if cp.Name == holder {
			holderAddr = cp.InternalAddress
		}
	}
	viaVIP, direct := client(c.Endpoint(), time.Second), client(holderAddr+":6443", 2*time.Second)
	get := func(cs *kubernetes.Clientset) (time.Duration, error) {
		t0 := time.Now()
		_, err := cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
		return time.Since(t0), err
	}
	if d, err := get(direct); err != nil {
		t.Fatalf("%s's API server before the limit: %v", holder, err)
	} else {
		t.Logf("GET through %s's own API server before the limit: %s", holder, d.Round(time.Millisecond))
	}

	h := bed.Host(holder)
	out, err := h.Exec(ctx, "sh", "-c", apiServerCgroup)
	if err != nil {
		t.Fatalf("kube-apiserver's cgroup on %s: %v %s", holder, err, out)
	}
	dir := strings.TrimSpace(out)
	const quota, hold = 1000, 60 * time.Second
	before, err := h.Exec(ctx, "sh", "-c", setCPUQuota(dir, quota))
	if err != nil {
		t.Fatalf("limit %s: %v %s", dir, err, before)
	}
	limited := true
	lift := func() {
		if limited {
			// A kube-apiserver the kubelet restarted has a new cgroup: nothing to lift.
			if out, err := h.Exec(ctx, "sh", "-c", "[ -d "+remote.Quote(dir)+" ] || exit 0; "+setCPUQuota(dir, -1)); err != nil {
				t.Errorf("lift the limit of %s: %v %s", dir, err, out)
			} else {
				limited = false
			}
		}
	}
	defer lift()
	startedAt := time.Now()
	t.Logf("kube-apiserver on %s (VIP holder) limited to %d µs per 100 ms (%s) for %s", holder, quota, dir, hold)

	// Load on the starved server: it needs more than its share.
	lctx, stopLoad := context.WithCancel(ctx)
	var load sync.WaitGroup
	for range 3 {
		load.Go(func() {
			for lctx.Err() == nil {
				_, _ = direct.CoreV1().Pods("").List(lctx, metav1.ListOptions{})
				_, _ = direct.CoreV1().ConfigMaps("").List(lctx, metav1.ListOptions{})
			}
		})
	}
	defer func() { stopLoad(); load.Wait() }()
	// Meanwhile: a read through the VIP every 100 ms (1 s timeout), and one
	// straight to the starved server every 2 s (2 s timeout).
	var vipReads, vipErrs, directReads, directErrs int
	var vipWorst, directWorst time.Duration
	var readers sync.WaitGroup
	readers.Go(func() {
		for time.Since(startedAt) < hold {
			d, err := get(viaVIP)
			vipReads++
			vipWorst = max(vipWorst, d)
			if err != nil {
				vipErrs++
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	readers.Go(func() {
		for time.Since(startedAt) < hold {
			d, err := get(direct)
			directReads++
			directWorst = max(directWorst, d)
			if err != nil {
				directErrs++
			}
			time.Sleep(2*time.Second - min(d, 2*time.Second))
		}
	})
	readers.Wait()
	stopLoad()
	load.Wait()
	after, _ := h.Exec(ctx, "sh", "-c", "awk '$1 == \"nr_throttled\" {print $2}' "+remote.Quote(dir)+"/cpu.stat; cat "+remote.Quote(dir)+"/cpu.cfs_quota_us "+remote.Quote(dir)+"/cpu.max 2>/dev/null; true")
	// At the end, still starved: the API answers through the VIP.
	var endErr error
	for i := 0; i < 5; i++ {
		if _, endErr = get(viaVIP); endErr == nil {
			break
		}
	}
	lift()
	changes := w.Changes()
	t.Logf("after %s: throttled periods %s -> %s; reads through the VIP %d, failed %d, slowest %s; straight to %s: %d, failed %d, slowest %s; VIP changes %+v",
		time.Since(startedAt).Round(time.Second), strings.TrimSpace(before), strings.Join(strings.Fields(after), " "), vipReads, vipErrs, vipWorst.Round(time.Millisecond),
		holder, directReads, directErrs, directWorst.Round(time.Millisecond), changes)
	if endErr != nil {
		t.Errorf("the API does not answer through the VIP at the end: %v", endErr)
	}
	// Exactly the first line of each host: the holder holds, the others not.
	if len(changes) != len(hosts) {
		t.Errorf("the VIP moved while %s's API server was starved: %+v", holder, changes)
	}
	for _, ch := range changes {
		if ch.Holds != (ch.Host == holder) {
			t.Errorf("VIP change %+v: the VIP is not (only) on %s", ch, holder)
		}
	}
	if b, a := strings.TrimSpace(before), strings.Fields(after); len(a) == 0 || a[0] == b {
		t.Errorf("the API server was not throttled (nr_throttled %s -> %q)", b, a)
	}
	if directErrs == 0 && directWorst < time.Second {
		t.Errorf("the starved API server answered every read within %s: not starved", directWorst)
	}
	stopWatch()
	waitHealthy(t)
}
