package splunk

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
)

// PendingPath returns the file that holds, in a state directory, the
// requests of the batch in progress: those HEC took whose ackId is not yet
// true, and those already acknowledged.
func PendingPath(stateDir string) string { return filepath.Join(stateDir, "pending.json") }

// pendingFile is the content of PendingPath: the channel the ackIds belong
// to, and each request with the events it carried (source NUL id). After
// a crash, the batch handed to Send again finds its events there: those of
// an acknowledged request are not sent again, those of a pending one wait
// for its ackId instead of being sent again.
type pendingFile struct {
	Channel  string          `json:"channel"`
	Requests []pendingRecord `json:"requests"`
}

// pendingRecord is one request of pendingFile.
type pendingRecord struct {
	AckID uint64    `json:"ack_id"`
	Sent  time.Time `json:"sent"`
	// Acked is set once HEC said true: HEC forgets an ackId once it has
	// answered true, so it is not polled again.
	Acked  bool     `json:"acked,omitempty"`
	Events []string `json:"events"`
}

// resumed is a request whose events may come to Send again: one of an
// earlier process (read from PendingPath), of a Send that failed, or of
// the batch acknowledged last (until the next batch succeeds).
type resumed struct {
	id      uint64
	sent    time.Time
	acked   bool
	events  map[string]bool // those not yet handed to Send again
	touched bool            // some of its events came in the current batch
}

// ackedReq is a request of the batch in progress that HEC acknowledged.
type ackedReq struct {
	id   uint64
	sent time.Time
	keys []string
}

// loadPending reads the requests an earlier process recorded on channel.
// A file of another channel, or one that is not JSON, is logged and
// ignored: its events are sent again, duplicates rather than loss.
func (s *Sink) loadPending() error {
	if s.stateDir == "" {
		return nil
	}
	path := PendingPath(s.stateDir)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return &delivery.Error{Class: delivery.Transient, Op: "splunk: read pending acks", Err: err,
			Fix: "fix the permissions of " + s.stateDir}
	}
	var f pendingFile
	if err := json.Unmarshal(b, &f); err != nil {
		s.log.Warn("splunk: pending acks file unreadable; its events are sent again", "file", path, "err", err)
		return nil
	}
	if f.Channel != s.channel {
		if len(f.Requests) > 0 {
			s.log.Warn("splunk: pending acks belong to another channel; their events are sent again", "file", path, "requests", len(f.Requests))
		}
		return nil
	}
	for _, r := range f.Requests {
		m := make(map[string]bool, len(r.Events))
		for _, k := range r.Events {
			m[k] = true
		}
		if len(m) > 0 {
			s.resumed = append(s.resumed, &resumed{id: r.AckID, sent: r.Sent, acked: r.Acked, events: m})
		}
	}
	if len(s.resumed) > 0 {
		s.log.Info("splunk: resuming the acknowledgments of an earlier run", "requests", len(s.resumed))
	}
	return nil
}

// savePending records, fsynced, every request whose events may come to
// Send again: the resumed ones, those of this batch acknowledged, and
// waiting.
func (s *Sink) savePending(waiting []pending) error {
	if s.stateDir == "" || !s.cfg.AckEnabled() {
		return nil
	}
	f := pendingFile{Channel: s.channel, Requests: []pendingRecord{}}
	at := map[uint64]int{}
	add := func(id uint64, sent time.Time, acked bool, keys ...string) {
		i, ok := at[id]
		if !ok {
			i = len(f.Requests)
			at[id] = i
			f.Requests = append(f.Requests, pendingRecord{AckID: id, Sent: sent})
		}
		r := &f.Requests[i]
		r.Acked = r.Acked || acked
		r.Events = append(r.Events, keys...)
	}
	for _, r := range s.resumed {
		if len(r.events) == 0 {
			continue
		}
		add(r.id, r.sent, r.acked, slices.Sorted(maps.Keys(r.events))...)
	}
	for _, a := range s.batchAcked {
		add(a.id, a.sent, true, a.keys...)
	}
	for _, p := range waiting {
		for _, it := range p.items {
			add(p.id, p.sent, false, ackKey(it.ev))
		}
	}
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("splunk: encode pending acks: %w", err)
	}
	if err := writeFileSync(PendingPath(s.stateDir), b); err != nil {
		return &delivery.Error{Class: delivery.Transient, Op: "splunk: store pending acks", Err: err,
			Fix: "free disk space or make " + s.stateDir + " writable"}
	}
	return nil
}

// takeResumed takes out of items the events of resumed requests: those of
// an acknowledged request are done, those of a pending one become waiting
// requests that poll its ackId. It returns the items left to send.
func (s *Sink) takeResumed(items []item) (rest []item, waiting []pending) {
	if len(s.resumed) == 0 {
		return items, nil
	}
	byReq := map[*resumed][]item{}
	for _, it := range items {
		k := ackKey(it.ev)
		i := slices.IndexFunc(s.resumed, func(r *resumed) bool { return r.events[k] })
		if i < 0 {
			rest = append(rest, it)
			continue
		}
		r := s.resumed[i]
		r.touched = true
		delete(r.events, k)
		if r.acked {
			s.resumedAcks.Add(1)
			s.done([]item{it})
			continue
		}
		byReq[r] = append(byReq[r], it)
	}
	for _, r := range s.resumed {
		if its := byReq[r]; len(its) > 0 {
			waiting = append(waiting, pending{id: r.id, items: its, sent: r.sent, resumed: r})
		}
	}
	return rest, waiting
}

// acknowledged records that HEC said true for p.
func (s *Sink) acknowledged(p pending) {
	s.done(p.items)
	a := ackedReq{id: p.id, sent: p.sent, keys: make([]string, len(p.items))}
	for i, it := range p.items {
		a.keys[i] = ackKey(it.ev)
	}
	s.batchAcked = append(s.batchAcked, a)
	if p.resumed != nil {
		s.resumedAcks.Add(int64(len(p.items)))
		p.resumed.acked = true
	}
}

// keepForRetry makes the unacknowledged requests of a Send that failed
// resumed ones, so that the retry of the batch polls their ackIds instead
// of sending their events again.
func (s *Sink) keepForRetry(waiting []pending) {
	for _, p := range waiting {
		r := p.resumed
		if r == nil {
			r = &resumed{id: p.id, sent: p.sent, events: make(map[string]bool, len(p.items))}
		}
		for _, it := range p.items {
			r.events[ackKey(it.ev)] = true
		}
		if !slices.Contains(s.resumed, r) {
			s.resumed = append(s.resumed, r)
		}
	}
}

// batchDone turns the batch's acknowledged requests into resumed ones
// (recorded until the next batch succeeds: a crash before the pipeline
// commits this batch's offset then sends nothing twice) and forgets the
// resumed requests the batch did not touch: their events were committed,
// or, if batch_size shrank across a restart, come later and are sent
// again.
func (s *Sink) batchDone() error {
	kept := s.resumed[:0]
	for _, r := range s.resumed {
		if r.touched && len(r.events) > 0 {
			r.touched = false
			kept = append(kept, r)
		}
	}
	clear(s.resumed[len(kept):])
	s.resumed = kept
	for _, a := range s.batchAcked {
		m := make(map[string]bool, len(a.keys))
		for _, k := range a.keys {
			m[k] = true
		}
		s.resumed = append(s.resumed, &resumed{id: a.id, sent: a.sent, acked: true, events: m})
	}
	s.batchAcked = nil
	return s.savePending(nil)
}
