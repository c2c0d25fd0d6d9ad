package drill

import (
	"errors"
	"testing"
	"time"
)

// Outages run from a failed read's sending to the next good read's answer;
// the phase is the undo's once the failure began after it; one that never
// ended is open.
func TestOutages(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	bad := errors.New("dial tcp: i/o timeout\nmore")
	s := []sample{
		{start: at(-200), end: at(-190)},
		{start: at(100), end: at(1100), err: bad},
		{start: at(200), end: at(1200), err: bad},
		{start: at(300), end: at(320)}, // answered: the outage ends here
		{start: at(400), end: at(410)},
		{start: at(5000), end: at(5010), err: bad}, // after the undo at 4000
		{start: at(5100), end: at(5150)},
		{start: at(6000), end: at(7000), err: bad},
	}
	got := outages(s, t0, at(4000))
	if len(got) != 3 {
		t.Fatalf("%d outages: %+v", len(got), got)
	}
	if o := got[0]; o.Phase != "fault" || o.StartMillis != 100 || o.EndMillis != 320 || o.Errors != 2 || o.FirstError != "dial tcp: i/o timeout" || o.Open {
		t.Errorf("first: %+v", o)
	}
	if o := got[1]; o.Phase != "undo" || o.DurationMillis() != 150 {
		t.Errorf("second: %+v", o)
	}
	if o := got[2]; !o.Open || o.EndMillis != 7000 {
		t.Errorf("third: %+v", o)
	}
	if longest(got, "fault") != 220 || longest(got, "undo") != 1000 {
		t.Errorf("longest: %d %d", longest(got, "fault"), longest(got, "undo"))
	}
	if c := count(s); c.Requests != 8 || c.Errors != 4 {
		t.Errorf("count: %+v", c)
	}
}
