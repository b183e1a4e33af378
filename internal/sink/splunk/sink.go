// Package splunk sends events to a Splunk HTTP Event Collector (HEC):
// POST {url}/services/collector/event with "Authorization: Splunk <token>",
// HEC envelopes back to back and gzipped, each with the event's own time,
// source = tenant, a sourcetype per provider, the sink's index, and
// fields.auditrelay_id = the provider's event id so that a search can drop
// the duplicates a crash may cause. Requests are bounded by count
// (batch_size) and uncompressed bytes (max_request_bytes).
//
// With indexer acknowledgment (ack: true, the default) every request
// carries the sink's channel GUID (X-Splunk-Request-Channel), kept in
// Options.StateDir so that a restart reuses it, and Send returns nil only
// once /services/collector/ack has said true for the ackId of every
// request of the batch: the events are replicated at the indexers'
// replication factor. An ackId still false after ack_timeout is taken as
// lost and its request is sent again. Each request HEC took is recorded,
// fsynced, in Options.StateDir (pending.go) before its ack is polled, so
// that after a crash the same events are acknowledged from the record or by
// polling its ackId rather than sent again. With ack: false, Send returns nil on
// HEC code 0, which only means that HEC received well-formed events: an
// indexer failing afterwards loses them.
//
// A refused event (codes 6, 12, 13, 15, located by invalid-event-number)
// is parked, appended to the park file and logged with its id, and the
// others of its request are sent again (HEC indexes nothing of a request
// it refuses); a 413 splits the request, and a single event HEC cannot
// take is parked. Codes 9 and 18–20, 429 and 503 are throttled and honour
// Retry-After; 5xx, code 8 and network errors are transient. A bad,
// disabled or missing token, a wrong index, or acknowledgment disabled on
// the token stop the sink with the fix named.
//
// The token goes only into the Authorization header: never into a log, an
// error or a metric.
package splunk

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
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

// HEC paths, under the base URL.
const (
	PathEvent  = "/services/collector/event"
	PathAck    = "/services/collector/ack"
	PathHealth = "/services/collector/health"
)

const (
	opSend   = "splunk: send batch"
	opAck    = "splunk: poll indexer acknowledgment"
	opCheck  = "splunk: check HEC"
	opParkEv = "splunk: park event"
)

// Ack polling: the first poll comes soon after a request, then the gap
// doubles up to Splunk's recommended 10 s. A poll is one small request for
// every ackId of the batch.
const (
	firstPoll = 200 * time.Millisecond
	maxPoll   = 10 * time.Second
)

// RequestsPerBatch is how many requests of batch_size events (and
// max_request_bytes) one batch of the spool makes at most: they are sent
// back to back and their acks awaited together, so that the wait for
// indexer acknowledgment is paid once per batch rather than per request.
const RequestsPerBatch = 8

// ShutdownGrace is how long a batch being sent may still take once the
// caller's context is done, so that a request HEC may already have taken
// is acknowledged rather than sent again after a restart.
const ShutdownGrace = 10 * time.Second

// Options are a Sink's collaborators.
type Options struct {
	// HTTPClient makes every request. Default: NewHTTPClient(cfg).
	HTTPClient *http.Client
	// Logger receives the sink's logs; the caller attaches the sink's name.
	Logger *slog.Logger
	// Park is the file refused events are appended to (fsynced before the
	// batch is acknowledged). Nil: they are logged and counted only.
	Park park.Keeper
	// StateDir holds the sink's channel GUID (file "channel"), such as
	// data_dir/splunk/<sink>. Empty: a new channel every process.
	StateDir string
	// Host is the envelopes' host. Default: this machine's name.
	Host string
}

// Stats count what a Sink has done.
type Stats struct {
	// Sent counts events acknowledged: ack true, or code 0 without ack.
	Sent int64
	// Parked counts events parked instead of sent.
	Parked int64
	// Requests counts event requests, failed or not.
	Requests int64
	// AckPolls counts requests to /services/collector/ack.
	AckPolls int64
	// AckTimeouts counts requests sent again because their ackId stayed
	// false for ack_timeout.
	AckTimeouts int64
	// Splits counts requests split after a 413 or a refused event HEC did
	// not locate.
	Splits int64
	// ResumedAcks counts events an earlier run (or a failed attempt) sent
	// that were acknowledged without being sent again: by polling their
	// recorded ackId, or because it was already true.
	ResumedAcks int64
}

// Sink is a Splunk HEC sink. Send is meant for one runner at a time.
type Sink struct {
	cfg      Config
	token    secret.String
	base     string
	http     *http.Client
	log      *slog.Logger
	keeper   park.Keeper
	stateDir string

	mu      sync.Mutex
	enc     encoder
	channel string
	loaded  bool            // PendingPath read
	acked   map[string]bool // events of the batch in progress acknowledged or parked
	resumed []*resumed      // requests whose events may come again, see pending.go
	// batchAcked are the requests of the batch in progress acknowledged.
	batchAcked []ackedReq

	sent, parked, requests, ackPolls, ackTimeouts, splits, resumedAcks atomic.Int64
}

// NewHTTPClient returns the client New uses by default: httpx.NewClient
// with request_timeout, trusting ca_file's certificates besides the
// system's. It reads ca_file.
func NewHTTPClient(cfg Config) (*http.Client, error) {
	c := httpx.NewClient(cfg.RequestTimeout.D())
	if cfg.CAFile == "" {
		return c, nil
	}
	pem, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("splunk: ca_file: %w (give a readable PEM file of the CA that signed the HEC certificate)", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("splunk: ca_file: no PEM certificate in %s (give the CA certificate, BEGIN CERTIFICATE)", cfg.CAFile)
	}
	tr := c.Transport.(*http.Transport)
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return c, nil
}

// New returns a sink for cfg (defaulted and validated). It does no I/O
// other than reading ca_file when opts.HTTPClient is nil.
func New(cfg Config, opts Options) (*Sink, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("splunk: invalid config: %w", errors.Join(errs...))
	}
	s := &Sink{cfg: cfg, token: cfg.Token, base: cfg.URL, http: opts.HTTPClient, log: opts.Logger,
		keeper: opts.Park, stateDir: opts.StateDir, acked: map[string]bool{}}
	if s.http == nil {
		c, err := NewHTTPClient(cfg)
		if err != nil {
			return nil, err
		}
		s.http = c
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	host := opts.Host
	if host == "" {
		host = defaultHost()
	}
	s.enc.meta = meta{host: host, index: cfg.Index, sourcetype: cfg.Sourcetype}
	return s, nil
}

// Stats returns the counters.
func (s *Sink) Stats() Stats {
	return Stats{Sent: s.sent.Load(), Parked: s.parked.Load(), Requests: s.requests.Load(), AckPolls: s.ackPolls.Load(),
		AckTimeouts: s.ackTimeouts.Load(), Splits: s.splits.Load(), ResumedAcks: s.resumedAcks.Load()}
}

// item is one encoded event of a batch.
type item struct {
	ev  *event.Raw
	env []byte // its envelope
}

// pending is a request HEC took whose ackId is not yet true.
type pending struct {
	id    uint64
	items []item
	sent  time.Time
	// resumed is the request of an earlier process (or of a failed Send)
	// this one polls for, nil for a request of this Send.
	resumed *resumed
}

func ackKey(ev *event.Raw) string { return ev.Source + "\x00" + ev.ID }

// Send delivers batch and returns nil once every event in it is
// acknowledged (see the package documentation) or parked. When ctx is
// done, the batch is given ShutdownGrace to finish; a batch not started
// returns ctx's error at once.
func (s *Sink) Send(ctx context.Context, batch []event.Raw) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", opSend, err)
	}
	ctx, stop := sink.Graceful(ctx, ShutdownGrace)
	defer stop()
	if s.cfg.AckEnabled() {
		if err := s.ensureChannel(); err != nil {
			return err
		}
		if !s.loaded {
			if err := s.loadPending(); err != nil {
				return err
			}
			s.loaded = true
		}
	}
	var items []item
	for i := range batch {
		ev := &batch[i]
		if s.acked[ackKey(ev)] {
			continue
		}
		env, err := s.enc.appendEnvelope(nil, ev)
		if err != nil {
			if perr := s.park(ev, 0, err.Error()); perr != nil {
				return perr
			}
			continue
		}
		if len(env) > MaxEventBytes {
			if perr := s.park(ev, len(env), fmt.Sprintf("%d bytes, over HEC's %d for one event", len(env), MaxEventBytes)); perr != nil {
				return perr
			}
			continue
		}
		items = append(items, item{ev: ev, env: env})
	}
	items, waiting := s.takeResumed(items)
	err := s.sendAll(ctx, items, &waiting)
	if err != nil {
		s.keepForRetry(waiting)
		return err
	}
	clear(s.acked)
	return s.batchDone()
}

// sendAll sends items, recording each request HEC took (fsynced) before
// awaiting the acknowledgment of every request in waiting. On error,
// waiting holds the requests not yet acknowledged.
func (s *Sink) sendAll(ctx context.Context, items []item, waiting *[]pending) error {
	start, size := 0, 0
	flush := func(end int) error {
		p, err := s.deliver(ctx, items[start:end])
		*waiting = append(*waiting, p...)
		if err != nil {
			return err
		}
		if len(p) > 0 {
			return s.savePending(*waiting)
		}
		return nil
	}
	for i := range items {
		n := len(items[i].env) + 1
		if i > start && (i-start >= s.cfg.BatchSize || size+n > int(s.cfg.MaxRequestBytes)) {
			if err := flush(i); err != nil {
				return err
			}
			start, size = i, 0
		}
		size += n
	}
	if err := flush(len(items)); err != nil {
		return err
	}
	return s.awaitAcks(ctx, waiting)
}

// deliver sends items as one request, parking the events HEC refuses and
// splitting on 413, and returns the requests awaiting their ack.
func (s *Sink) deliver(ctx context.Context, items []item) ([]pending, error) {
	var out []pending
	queue := [][]item{items}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if len(cur) == 0 {
			continue
		}
		v, a, err := s.post(ctx, cur)
		switch {
		case err != nil:
			return out, err
		case v.kind == kindOK && s.cfg.AckEnabled():
			out = append(out, pending{id: *a.AckID, items: cur, sent: time.Now()})
		case v.kind == kindOK:
			s.done(cur)
		case v.kind == kindPoison && a.InvalidEvent != nil && *a.InvalidEvent < len(cur):
			n := *a.InvalidEvent
			if err := s.park(cur[n].ev, len(cur[n].env), fmt.Sprintf("refused by HEC: code %d %s", *a.Code, a.Text)); err != nil {
				return out, err
			}
			rest := append(append(make([]item, 0, len(cur)-1), cur[:n]...), cur[n+1:]...)
			queue = append([][]item{rest}, queue...)
		case len(cur) == 1:
			reason := "refused by HEC: HTTP 413, larger than its max_content_length"
			if v.kind == kindPoison {
				reason = fmt.Sprintf("refused by HEC: code %d %s", *a.Code, a.Text)
			}
			if err := s.park(cur[0].ev, len(cur[0].env), reason); err != nil {
				return out, err
			}
		default:
			s.splits.Add(1)
			s.log.Info("splunk: request refused as a whole; splitting it", "events", len(cur), "kind", v.kind.String())
			h := len(cur) / 2
			queue = append([][]item{cur[:h], cur[h:]}, queue...)
		}
	}
	return out, nil
}

// done marks items acknowledged.
func (s *Sink) done(items []item) {
	for _, it := range items {
		s.acked[ackKey(it.ev)] = true
	}
	s.sent.Add(int64(len(items)))
}

// awaitAcks polls /services/collector/ack until every request is
// acknowledged, sending again any whose ackId stays false for ack_timeout.
func (s *Sink) awaitAcks(ctx context.Context, pw *[]pending) error {
	gap := firstPoll
	for len(*pw) > 0 {
		waiting := *pw
		if !delivery.Sleep(ctx, gap) {
			return &delivery.Error{Class: delivery.Transient, Op: opAck, Err: ctx.Err(),
				Msg: fmt.Sprintf("stopped with %d requests unacknowledged; they are sent again", len(waiting))}
		}
		gap = min(2*gap, maxPoll)
		ids := make([]uint64, len(waiting))
		for i, p := range waiting {
			ids[i] = p.id
		}
		acks, err := s.pollAcks(ctx, ids)
		if err != nil {
			class, ra := delivery.ClassOf(err)
			if class == delivery.Permanent {
				return err
			}
			s.log.Debug("splunk: ack poll failed; polling again", "err", err)
			if ra > 0 {
				gap = ra
			}
		}
		var still []pending
		changed := false
		for i, p := range waiting {
			switch {
			case acks[p.id]:
				s.acknowledged(p)
				changed = true
			case time.Since(p.sent) >= s.cfg.AckTimeout.D():
				s.ackTimeouts.Add(1)
				s.log.Warn("splunk: ackId still false after ack_timeout; sending its events again",
					"ack_id", p.id, "events", len(p.items), "ack_timeout", s.cfg.AckTimeout.D())
				if p.resumed != nil {
					clear(p.resumed.events) // the others are sent again too
				}
				again, err := s.deliver(ctx, p.items)
				still = append(still, again...)
				if err != nil {
					*pw = append(still, waiting[i+1:]...)
					return err
				}
				changed = true
				gap = firstPoll
			default:
				still = append(still, p)
			}
		}
		*pw = still
		if changed {
			if err := s.savePending(still); err != nil {
				return err
			}
		}
	}
	return nil
}

// pollAcks asks HEC which ids are acknowledged.
func (s *Sink) pollAcks(ctx context.Context, ids []uint64) (map[uint64]bool, error) {
	body, _ := json.Marshal(struct {
		Acks []uint64 `json:"acks"`
	}{ids}) // never fails
	s.ackPolls.Add(1)
	status, b, hdr, err := s.do(ctx, opAck, PathAck, body, false)
	if err != nil {
		return nil, err
	}
	var ans struct {
		Acks map[string]bool `json:"acks"`
	}
	if status == http.StatusOK && json.Unmarshal(b, &ans) == nil && ans.Acks != nil {
		out := make(map[uint64]bool, len(ans.Acks))
		for k, v := range ans.Acks {
			if n, err := strconv.ParseUint(k, 10, 64); err == nil {
				out[n] = v
			}
		}
		return out, nil
	}
	a, ok := parseAnswer(b)
	v := classify(status, a, ok)
	if v.kind == kindOK {
		v = verdict{kind: kindTransient}
	}
	return nil, s.hecError(opAck, status, hdr, a, ok, v, b)
}

// post sends one request of events and classifies HEC's answer. A nil
// error with kindPoison or kindTooLarge asks the caller to park or split.
func (s *Sink) post(ctx context.Context, items []item) (verdict, answer, error) {
	envs := make([][]byte, len(items))
	for i, it := range items {
		envs[i] = it.env
	}
	body, err := s.enc.requestBody(envs)
	if err != nil {
		return verdict{}, answer{}, &delivery.Error{Class: delivery.Permanent, Op: opSend, Msg: "gzip", Err: err,
			Fix: "this is a bug in auditrelay, report it"}
	}
	s.requests.Add(1)
	status, b, hdr, err := s.do(ctx, opSend, PathEvent, body, true)
	if err != nil {
		return verdict{}, answer{}, err
	}
	a, ok := parseAnswer(b)
	v := classify(status, a, ok)
	switch v.kind {
	case kindOK:
		if s.cfg.AckEnabled() && a.AckID == nil {
			return v, a, &delivery.Error{Class: delivery.Permanent, Op: opSend, Status: status,
				Msg: "HEC took the events but gave no ackId", Fix: fixAckDisabled}
		}
		return v, a, nil
	case kindPoison, kindTooLarge:
		return v, a, nil
	}
	return v, a, s.hecError(opSend, status, hdr, a, ok, v, b)
}

// do makes one authenticated POST and returns the answer's status, body
// (up to 1 MiB) and header.
func (s *Sink) do(ctx context.Context, op, path string, body []byte, zipped bool) (int, []byte, http.Header, error) {
	u := s.base + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, &delivery.Error{Class: delivery.Permanent, Op: op, Err: err, Fix: "check url"}
	}
	req.Header.Set("Authorization", "Splunk "+s.token.Reveal())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", httpx.UserAgent)
	if zipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	if s.channel != "" {
		req.Header.Set("X-Splunk-Request-Channel", s.channel)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, nil, &delivery.Error{Class: delivery.Transient, Op: op, Err: ctx.Err()}
		}
		return 0, nil, nil, httpx.NetworkError(op, s.redactErr(err), s.base, "url")
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if rerr != nil && resp.StatusCode/100 == 2 {
		// Taken or not, we cannot tell: sending again is the safe side.
		return 0, nil, nil, &delivery.Error{Class: delivery.Transient, Op: op, Msg: "reading the answer", Err: s.redactErr(rerr)}
	}
	return resp.StatusCode, b, resp.Header, nil
}

// hecError builds the classified error of a refused request.
func (s *Sink) hecError(op string, status int, hdr http.Header, a answer, ok bool, v verdict, b []byte) *delivery.Error {
	msg := httpx.OneLine(strings.ToValidUTF8(string(b), "?"), 300)
	if ok {
		msg = fmt.Sprintf("HEC code %d: %s", *a.Code, a.Text)
	}
	e := &delivery.Error{Op: op, Status: status, Msg: s.redact(msg), Fix: v.fix}
	switch v.kind {
	case kindPermanent, kindAckDisabled:
		e.Class = delivery.Permanent
	case kindThrottled:
		e.Class = delivery.Throttled
	default:
		e.Class = delivery.Transient
	}
	if d, ok := delivery.ParseRetryAfter(hdr.Get("Retry-After"), time.Now()); ok {
		e.RetryAfter = d
	}
	return e
}

// park keeps an event HEC cannot take: appended to the park file and
// fsynced, counted and logged with its id.
func (s *Sink) park(ev *event.Raw, size int, reason string) error {
	kept, err := park.Event(s.keeper, opParkEv, ev, reason)
	if err != nil {
		return err
	}
	s.parked.Add(1)
	s.acked[ackKey(ev)] = true
	s.log.Warn("splunk: event parked: HEC cannot take it", "source", ev.Source, "id", ev.ID, "bytes", size,
		"reason", reason, "file", kept)
	return nil
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// ChannelPath returns the file that holds the channel GUID in a state
// directory.
func ChannelPath(stateDir string) string { return filepath.Join(stateDir, "channel") }

// ensureChannel loads the channel GUID from the state directory, or makes
// one and stores it there (fsynced) so that a restart reuses it.
func (s *Sink) ensureChannel() error {
	if s.channel != "" {
		return nil
	}
	if s.stateDir == "" {
		s.channel = newGUID()
		return nil
	}
	path := ChannelPath(s.stateDir)
	if b, err := os.ReadFile(path); err == nil {
		if g := strings.TrimSpace(string(b)); guidRE.MatchString(g) {
			s.channel = g
			return nil
		}
		s.log.Warn("splunk: channel file holds no GUID; making a new channel", "file", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return &delivery.Error{Class: delivery.Transient, Op: "splunk: read channel", Err: err,
			Fix: "fix the permissions of " + s.stateDir}
	}
	g := newGUID()
	if err := writeFileSync(path, []byte(g+"\n")); err != nil {
		return &delivery.Error{Class: delivery.Transient, Op: "splunk: store channel", Err: err,
			Fix: "free disk space or make " + s.stateDir + " writable"}
	}
	s.channel = g
	return nil
}

// writeFileSync writes path atomically: a fsynced temporary file renamed
// over it.
func writeFileSync(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".channel-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// newGUID returns a random version 4 UUID.
func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Channel returns the channel GUID in use, empty before the first Send
// with acknowledgment.
func (s *Sink) Channel() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.channel
}

// Check proves the HEC and the token: /services/collector/health answers
// healthy, an empty request is refused only for having no data (code 5,
// which HEC answers after it has accepted the token), and with ack the
// token answers /services/collector/ack. Whether the token may write to
// index shows only when events are sent.
func (s *Sink) Check(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+PathHealth, nil)
	if err != nil {
		return &delivery.Error{Class: delivery.Permanent, Op: opCheck, Err: err, Fix: "check url"}
	}
	req.Header.Set("User-Agent", httpx.UserAgent)
	resp, err := s.http.Do(req)
	if err != nil {
		return httpx.NetworkError(opCheck, s.redactErr(err), s.base, "url")
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	a, ok := parseAnswer(b)
	if v := classify(resp.StatusCode, a, ok); v.kind != kindOK {
		return s.hecError(opCheck+" health", resp.StatusCode, resp.Header, a, ok, v, b)
	}
	if s.cfg.AckEnabled() {
		if err := s.ensureChannel(); err != nil {
			return err
		}
	}
	status, b, hdr, err := s.do(ctx, opCheck, PathEvent, nil, false)
	if err != nil {
		return err
	}
	a, ok = parseAnswer(b)
	if !ok || *a.Code != 5 && *a.Code != 0 {
		v := classify(status, a, ok)
		if v.kind == kindOK || v.kind == kindPoison {
			v = verdict{kindPermanent, fixRefused}
		}
		return s.hecError(opCheck+" token", status, hdr, a, ok, v, b)
	}
	if !s.cfg.AckEnabled() {
		return nil
	}
	s.ackPolls.Add(1)
	status, b, hdr, err = s.do(ctx, opCheck, PathAck, []byte(`{"acks":[0]}`), false)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		a, ok = parseAnswer(b)
		return s.hecError(opCheck+" ack", status, hdr, a, ok, classify(status, a, ok), b)
	}
	return nil
}

// Close releases idle connections.
func (s *Sink) Close(context.Context) error {
	s.http.CloseIdleConnections()
	return nil
}

// redact removes the token from a text that came from outside.
func (s *Sink) redact(t string) string {
	if k := s.token.Reveal(); k != "" {
		t = strings.ReplaceAll(t, k, secret.Redacted)
	}
	return t
}

func (s *Sink) redactErr(err error) error {
	if k := s.token.Reveal(); k != "" && strings.Contains(err.Error(), k) {
		return errors.New(s.redact(err.Error()))
	}
	return err
}
