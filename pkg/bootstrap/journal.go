package bootstrap

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// journal is the record of bootstrap runs in the state directory
// (journal.jsonl, 0600): one JSON line per phase and host as it ends, and
// one when the run ends, so that a run killed half-way still says what it
// did. Details never hold a secret (tokens and keys are not in them).
type journal struct {
	path string
	run  string
	mu   sync.Mutex
	f    *os.File
}

// entry is one line of the journal.
type entry struct {
	Run  string    `json:"run"`
	Time time.Time `json:"time"`
	*PhaseResult
	Outcome string `json:"outcome,omitempty"`
}

func openJournal(dir string, start time.Time) (*journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := filepath.Join(dir, "journal.jsonl")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	j := &journal{path: p, run: start.UTC().Format(time.RFC3339Nano), f: f}
	j.write(entry{Outcome: "started"})
	return j, nil
}

func (j *journal) write(e entry) {
	if j == nil {
		return
	}
	e.Run, e.Time = j.run, time.Now().UTC()
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	// One write per line: O_APPEND keeps concurrent lines whole.
	_, _ = j.f.Write(append(b, '\n'))
}

func (j *journal) phase(p PhaseResult) { j.write(entry{PhaseResult: &p}) }

func (j *journal) finish(err error, stopped bool) {
	switch {
	case err != nil:
		j.write(entry{Outcome: "failed: " + err.Error()})
	case stopped:
		j.write(entry{Outcome: "stopped (--until)"})
	default:
		j.write(entry{Outcome: "done"})
	}
}

func (j *journal) close() {
	if j != nil {
		_ = j.f.Close()
	}
}
