// Package sekoia sends events to a Sekoia.io HTTP intake: POST {base}/batch
// with {"intake_key": …, "jsons": [...]}, each element the provider's raw
// event compacted onto one line, which is the input the Sekoia parsers'
// JSON branch (`^\s*\{.*\}\s*$`) takes. Batches are bounded by count and
// bytes and gzipped.
//
// A batch is acknowledged only on a 2xx answer carrying one event id per
// event sent. A 413, or a 2xx with the wrong number of ids, on a batch of
// several events splits it in two and sends each half; a single event the
// intake refuses, or any event over 250,000 bytes, is parked: appended to
// the park file with its id, counted and logged, and never blocks the
// events behind it. 429 honours Retry-After, 5xx and network errors are
// transient (the pipeline retries them for as long as it takes, with
// backoff), and 401, 403 and 404 stop the sink with the fix named. Within
// one batch, the parts already acknowledged are not sent again when the
// batch is retried, and a batch in flight when the daemon stops is given
// ShutdownGrace to finish, so that a clean stop sends nothing twice.
//
// The intake key goes only into request bodies: never into a log, an
// error, the User-Agent or a metric.
package sekoia

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/park"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/sink"
)

// Operator fixes.
const (
	fixKey = "the intake refused the intake key: copy the key of an intake of the right format (for CyberArk, \"CyberArk Identity Audit Logs\") from Sekoia.io Intakes into intake_key, and check that region is your Sekoia.io region"
	fixURL = "no Sekoia.io HTTP intake at this address: check region (FRA1, FRA2, MCO1, UAE1, USA1, SGP1) or url"
)

const opSend = "sekoia: send batch"

// Options are a Sink's collaborators.
type Options struct {
	// HTTPClient makes every request. Default: httpx.NewClient(cfg.RequestTimeout).
	HTTPClient *http.Client
	// Logger receives the sink's logs; the caller attaches the sink's name.
	Logger *slog.Logger
	// Park is the file parked events are appended to (fsynced before the
	// batch is acknowledged); the sink's runner shares it. Nil: parked
	// events are logged and counted but not kept.
	Park park.Keeper
}

// Stats count what a Sink has done.
type Stats struct {
	// Sent counts events the intake acknowledged.
	Sent int64
	// Parked counts events parked instead of sent.
	Parked int64
	// Requests counts batch requests, failed or not.
	Requests int64
	// Splits counts batches split in two after a 413 or an id mismatch.
	Splits int64
}

// Sink is a Sekoia.io intake sink. Send is meant for one runner at a time.
type Sink struct {
	cfg    Config
	key    secret.String
	url    string
	http   *http.Client
	log    *slog.Logger
	keeper park.Keeper

	mu    sync.Mutex
	enc   encoder
	acked map[string]bool // events of the batch in progress already acknowledged or parked

	sent, parked, requests, splits atomic.Int64
}

// New returns a sink for cfg (defaulted and validated). It does no I/O.
func New(cfg Config, opts Options) (*Sink, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("sekoia: invalid config: %w", errors.Join(errs...))
	}
	s := &Sink{cfg: cfg, key: cfg.IntakeKey, url: cfg.Base() + "/batch", http: opts.HTTPClient, log: opts.Logger,
		keeper: opts.Park, acked: map[string]bool{}}
	if s.http == nil {
		s.http = httpx.NewClient(cfg.RequestTimeout.D())
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Stats returns the counters.
func (s *Sink) Stats() Stats {
	return Stats{Sent: s.sent.Load(), Parked: s.parked.Load(), Requests: s.requests.Load(), Splits: s.splits.Load()}
}

// item is one encoded event of a batch.
type item struct {
	ev     *event.Raw
	quoted []byte // the message as a JSON string
	size   int    // the message's length
}

func ackKey(ev *event.Raw) string { return ev.Source + "\x00" + ev.ID }

// ShutdownGrace is how long a batch being sent may still take once the
// caller's context is done: a batch the intake may already have accepted is
// finished and acknowledged rather than abandoned and sent again after a
// restart.
const ShutdownGrace = 10 * time.Second

// Send delivers batch and returns nil once the intake has acknowledged every
// event in it, or it was parked. When ctx is done, the batch is finished
// within ShutdownGrace; a batch not started returns ctx's error at once.
func (s *Sink) Send(ctx context.Context, batch []event.Raw) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", opSend, err)
	}
	ctx, stop := sink.Graceful(ctx, ShutdownGrace)
	defer stop()
	var items []item
	for i := range batch {
		ev := &batch[i]
		if s.acked[ackKey(ev)] {
			continue
		}
		m, err := s.enc.message(ev.Data)
		if err != nil {
			if perr := s.park(ev, 0, err.Error()); perr != nil {
				return perr
			}
			continue
		}
		if len(m) > MaxEventBytes {
			if perr := s.park(ev, len(m), fmt.Sprintf("%d bytes, over the intake's %d", len(m), MaxEventBytes)); perr != nil {
				return perr
			}
			continue
		}
		items = append(items, item{ev: ev, quoted: event.AppendJSONBytes(nil, m), size: len(m)})
	}
	start, pending := 0, 0
	for i := range items {
		n := len(items[i].quoted) + 1
		if i > start && (i-start >= s.cfg.BatchSize || pending+n > int(s.cfg.BatchBytes)) {
			if err := s.deliver(ctx, items[start:i]); err != nil {
				return err
			}
			start, pending = i, 0
		}
		pending += n
	}
	if err := s.deliver(ctx, items[start:]); err != nil {
		return err
	}
	clear(s.acked)
	return nil
}

// errSplit is a refusal that a smaller batch may not get: 413, or a 2xx
// whose event ids do not match the events sent.
type errSplit struct{ reason string }

func (e *errSplit) Error() string { return e.reason }

// deliver sends items, splitting them on a refusal of the batch as a whole.
func (s *Sink) deliver(ctx context.Context, items []item) error {
	if len(items) == 0 {
		return nil
	}
	err := s.post(ctx, items)
	var split *errSplit
	if !errors.As(err, &split) {
		if err == nil {
			for _, it := range items {
				s.acked[ackKey(it.ev)] = true
			}
			s.sent.Add(int64(len(items)))
		}
		return err
	}
	if len(items) == 1 {
		return s.park(items[0].ev, items[0].size, "refused by the intake: "+split.reason)
	}
	s.splits.Add(1)
	s.log.Info("sekoia: batch refused as a whole; splitting it", "events", len(items), "reason", split.reason)
	half := len(items) / 2
	if err := s.deliver(ctx, items[:half]); err != nil {
		return err
	}
	return s.deliver(ctx, items[half:])
}

// post sends one batch request.
func (s *Sink) post(ctx context.Context, items []item) error {
	quoted := make([][]byte, len(items))
	for i, it := range items {
		quoted[i] = it.quoted
	}
	zip := s.cfg.Compression == CompressionGzip
	body, err := s.enc.batchBody(s.key.Reveal(), quoted, zip)
	if err != nil {
		return &delivery.Error{Class: delivery.Permanent, Op: opSend, Msg: "encode", Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return &delivery.Error{Class: delivery.Permanent, Op: opSend, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", httpx.UserAgent)
	if zip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	s.requests.Add(1)
	resp, err := s.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", opSend, ctx.Err())
		}
		return &delivery.Error{Class: delivery.Transient, Op: opSend, Err: s.redactErr(err)}
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode/100 != 2 {
		msg := s.redact(message(b))
		if resp.StatusCode == http.StatusRequestEntityTooLarge {
			return &errSplit{reason: "HTTP 413 " + msg}
		}
		e := httpx.StatusError(opSend, resp, msg)
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			e.Class, e.Fix = delivery.Permanent, fixKey
		case http.StatusNotFound:
			e.Class, e.Fix = delivery.Permanent, fixURL
		}
		return e
	}
	if rerr != nil {
		// Accepted or not, we cannot tell: sending again is the safe side.
		return &delivery.Error{Class: delivery.Transient, Op: opSend, Msg: "reading the answer", Err: rerr}
	}
	var ans struct {
		EventIDs []json.RawMessage `json:"event_ids"`
	}
	if err := json.Unmarshal(b, &ans); err != nil {
		return &delivery.Error{Class: delivery.Transient, Op: opSend, Msg: "answer is not JSON: " + s.redact(message(b))}
	}
	if len(ans.EventIDs) != len(items) {
		return &errSplit{reason: fmt.Sprintf("%d event ids for %d events: %s", len(ans.EventIDs), len(items), s.redact(message(b)))}
	}
	return nil
}

// park keeps an event the intake cannot take: appended to the park file and
// fsynced, counted and logged with its id.
func (s *Sink) park(ev *event.Raw, size int, reason string) error {
	kept, err := park.Event(s.keeper, "sekoia: park event", ev, reason)
	if err != nil {
		return err
	}
	s.parked.Add(1)
	s.acked[ackKey(ev)] = true
	s.log.Warn("sekoia: event parked: the intake cannot take it", "source", ev.Source, "id", ev.ID, "bytes", size,
		"reason", reason, "file", kept)
	return nil
}

// Check proves the intake key with the cheapest call that does: a batch of
// no events.
func (s *Sink) Check(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.post(ctx, nil)
}

// Close releases idle connections.
func (s *Sink) Close(context.Context) error {
	s.http.CloseIdleConnections()
	return nil
}

// message extracts an answer's message for an error.
func message(b []byte) string {
	var m struct {
		Message string `json:"message"`
		Detail  string `json:"detail"`
	}
	if json.Unmarshal(b, &m) == nil {
		if m.Message != "" {
			return m.Message
		}
		if m.Detail != "" {
			return m.Detail
		}
	}
	return httpx.OneLine(strings.ToValidUTF8(string(b), "?"), 300)
}

// redact removes the intake key from a text that came from outside.
func (s *Sink) redact(t string) string {
	if k := s.key.Reveal(); k != "" {
		t = strings.ReplaceAll(t, k, secret.Redacted)
	}
	return t
}

func (s *Sink) redactErr(err error) error {
	if k := s.key.Reveal(); k != "" && strings.Contains(err.Error(), k) {
		return errors.New(s.redact(err.Error()))
	}
	return err
}
