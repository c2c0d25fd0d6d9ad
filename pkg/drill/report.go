package drill

import (
	"slices"
	"time"
)

// Report is what a drill measured. Times are milliseconds since the fault
// was injected (negative: before it). Its JSON form is what `drill failover
// -o json` prints.
type Report struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Cluster    string `json:"cluster"`
	Endpoint   string `json:"endpoint"`
	Fault      string `json:"fault"`
	Target     string `json:"target"`
	// TargetHeldVIP: the target held the VIP when the fault came.
	TargetHeldVIP        bool      `json:"targetHeldVIP"`
	VIPHolderBefore      string    `json:"vipHolderBefore"`
	VIPHolderAfter       string    `json:"vipHolderAfter"`
	ProbeIntervalMillis  int64     `json:"probeIntervalMillis"`
	RequestTimeoutMillis int64     `json:"requestTimeoutMillis"`
	StartedAt            time.Time `json:"startedAt"`

	// VIPLostMillis: the old holder dropped the VIP; VIPMovedMillis: another
	// host took it (VIPMovedTo). Nil when it did not happen.
	VIPLostMillis  *int64 `json:"vipLostMillis,omitempty"`
	VIPMovedMillis *int64 `json:"vipMovedMillis,omitempty"`
	VIPMovedTo     string `json:"vipMovedTo,omitempty"`
	// VIPMoves counts the hosts taking the VIP after the fault, the undo
	// included (1 is a clean failover; more is the VIP coming back or
	// flapping).
	VIPMoves int `json:"vipMoves"`

	// FirstFailureMillis is when the first read that failed was sent;
	// FirstSuccessAfterMillis when the first good read after it answered.
	FirstFailureMillis      *int64 `json:"firstFailureMillis,omitempty"`
	FirstSuccessAfterMillis *int64 `json:"firstSuccessAfterMillis,omitempty"`
	// DowntimeMillis is the longest read outage while the fault was on:
	// from the first failed read's sending to the next good read's answer.
	// UndoDowntimeMillis is the same after the undo.
	DowntimeMillis     int64 `json:"downtimeMillis"`
	UndoDowntimeMillis int64 `json:"undoDowntimeMillis"`
	Reads              Count `json:"reads"`
	Writes             Count `json:"writes"`
	Watch              Watch `json:"watch"`
	// Outages are the read outages, in order.
	Outages []Outage `json:"outages"`
	// Errors are the distinct errors of failed reads (at most 5).
	Errors []string `json:"errors"`
	// VIPEvents are the VIP's moves as seen on every control plane.
	VIPEvents []VIPEvent `json:"vipEvents"`

	UndoAtMillis           int64 `json:"undoAtMillis"`
	HealthyAfterUndoMillis int64 `json:"healthyAfterUndoMillis"`
	// Verdict is inspect's at the end (Healthy unless the drill failed).
	Verdict string `json:"verdict"`
}

// Count is requests and how many failed; DowntimeMillis is the longest
// outage of these requests while the fault was on.
type Count struct {
	Requests       int   `json:"requests"`
	Errors         int   `json:"errors"`
	DowntimeMillis int64 `json:"downtimeMillis"`
}

// Watch is what the watch of the drill's ConfigMap saw: the events, how
// often it was made again, its longest silence after the fault (a write
// comes every 500 ms) and whether it received events again at the end.
type Watch struct {
	Events           int   `json:"events"`
	Restarts         int   `json:"restarts"`
	LongestGapMillis int64 `json:"longestGapMillis"`
	Resumed          bool  `json:"resumed"`
}

// Outage is one window of failed reads. Phase is "fault" (it began before
// the undo) or "undo". Open: it had not ended when the drill stopped.
type Outage struct {
	Phase       string `json:"phase"`
	StartMillis int64  `json:"startMillis"`
	EndMillis   int64  `json:"endMillis"`
	Errors      int    `json:"errors"`
	FirstError  string `json:"firstError"`
	Open        bool   `json:"open,omitempty"`
}

// VIPEvent is one host gaining (Holds) or losing the VIP.
type VIPEvent struct {
	AtMillis int64  `json:"atMillis"`
	Host     string `json:"host"`
	Holds    bool   `json:"holds"`
}

// DurationMillis of an outage.
func (o Outage) DurationMillis() int64 { return o.EndMillis - o.StartMillis }

// outages cuts samples (sorted by start) into windows of failures: from a
// failed request's sending to the answer of the next good one.
func outages(s []sample, t0, undoAt time.Time) []Outage {
	var out []Outage
	var cur *Outage
	ms := func(t time.Time) int64 { return t.Sub(t0).Milliseconds() }
	for _, x := range s {
		switch {
		case x.err != nil && cur == nil:
			phase := "fault"
			if !x.start.Before(undoAt) {
				phase = "undo"
			}
			cur = &Outage{Phase: phase, StartMillis: ms(x.start), Errors: 1, FirstError: firstLine(x.err.Error())}
		case x.err != nil:
			cur.Errors++
		case cur != nil:
			cur.EndMillis = ms(x.end)
			out = append(out, *cur)
			cur = nil
		}
	}
	if cur != nil {
		cur.Open = true
		if n := len(s); n > 0 {
			cur.EndMillis = ms(s[n-1].end)
		}
		out = append(out, *cur)
	}
	return out
}

func longest(os []Outage, phase string) int64 {
	var m int64
	for _, o := range os {
		if o.Phase == phase && o.DurationMillis() > m {
			m = o.DurationMillis()
		}
	}
	return m
}

func count(s []sample) Count {
	c := Count{Requests: len(s)}
	for _, x := range s {
		if x.err != nil {
			c.Errors++
		}
	}
	return c
}

func sortByStart(s []sample) []sample {
	s = slices.Clone(s)
	slices.SortStableFunc(s, func(a, b sample) int { return a.start.Compare(b.start) })
	return s
}

func ptr(v int64) *int64 { return &v }

// measure fills the report from what the probes and the VIP watch saw.
func (d *drill) measure(p *probes, vw *VIPWatch, undoAt time.Time) {
	r := &d.rep
	t0 := d.t0
	ms := func(t time.Time) int64 { return t.Sub(t0).Milliseconds() }
	p.mu.Lock()
	reads, writes, events, restarts := sortByStart(p.reads), sortByStart(p.writes), slices.Clone(p.events), p.restarts
	p.mu.Unlock()

	r.Outages = outages(reads, t0, undoAt)
	if r.Outages == nil {
		r.Outages = []Outage{}
	}
	r.DowntimeMillis = longest(r.Outages, "fault")
	r.UndoDowntimeMillis = longest(r.Outages, "undo")
	r.Reads = count(reads)
	r.Reads.DowntimeMillis = r.DowntimeMillis
	r.Writes = count(writes)
	r.Writes.DowntimeMillis = longest(outages(writes, t0, undoAt), "fault")
	r.Errors = []string{}
	for i, x := range reads {
		if x.err == nil || x.start.Before(t0) {
			continue
		}
		if r.FirstFailureMillis == nil {
			r.FirstFailureMillis = ptr(ms(x.start))
			for _, y := range reads[i+1:] {
				if y.err == nil {
					r.FirstSuccessAfterMillis = ptr(ms(y.end))
					break
				}
			}
		}
		if e := firstLine(x.err.Error()); !slices.Contains(r.Errors, e) && len(r.Errors) < 5 {
			r.Errors = append(r.Errors, e)
		}
	}

	// The watch: its longest silence from the fault on, and events after
	// the last outage and the undo.
	r.Watch = Watch{Events: len(events), Restarts: restarts}
	last := t0
	for _, e := range events {
		if e.Before(t0) {
			last = t0
			continue
		}
		if g := e.Sub(last).Milliseconds(); g > r.Watch.LongestGapMillis {
			r.Watch.LongestGapMillis = g
		}
		last = e
	}
	resumeAfter := undoAt
	if n := len(r.Outages); n > 0 {
		if end := t0.Add(time.Duration(r.Outages[n-1].EndMillis) * time.Millisecond); end.After(resumeAfter) {
			resumeAfter = end
		}
	}
	r.Watch.Resumed = len(events) > 0 && events[len(events)-1].After(resumeAfter)

	r.VIPEvents = []VIPEvent{}
	for _, e := range vw.snapshot() {
		if e.t.Before(t0) {
			continue
		}
		r.VIPEvents = append(r.VIPEvents, VIPEvent{AtMillis: ms(e.t), Host: e.host, Holds: e.holds})
		switch {
		case e.holds:
			r.VIPMoves++
			if r.VIPMovedMillis == nil && e.host != r.VIPHolderBefore {
				r.VIPMovedMillis, r.VIPMovedTo = ptr(ms(e.t)), e.host
			}
		case e.host == r.VIPHolderBefore && r.VIPLostMillis == nil && e.t.Before(undoAt):
			r.VIPLostMillis = ptr(ms(e.t))
		}
	}
}
