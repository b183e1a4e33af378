// Package elasticsearch sends events to Elasticsearch or OpenSearch with the
// _bulk API: one create action per event, with an _id derived from the
// event's provider, tenant and id (DocID), so that a batch sent again after
// a crash creates nothing twice: the cluster answers 409 for each document
// it already holds, and 409 counts as delivered.
//
// In format integration the documents are what Elastic's own integration
// for the provider expects (the raw event as JSON text in message,
// @timestamp, data_stream.*), written into that integration's data stream
// (see IntegrationFor), so its ingest pipeline, dashboards and detection
// rules work unchanged. Providers without an integration, and format raw,
// get the event as an object under "raw" beside an "auditrelay" envelope.
//
// A batch is acknowledged when every item is 2xx or 409. Items answered 429
// or 5xx are sent again, alone, when the pipeline retries the batch; the
// items already acknowledged are not. Other item 4xx (mapping errors) are
// parked with the server's reason and never block the rest; item 401/403
// and 404 (no privilege on the index, index missing and not auto-created)
// stop the sink with the fix. A request answered 413 is split in two; 401
// and 403 stop the sink with the fix; 429, 5xx and network errors are
// retried by the pipeline. Several urls are used round robin, failing over
// to the next on a network error, 502, 503 or 504. Nothing checks the
// product header, so OpenSearch works as well.
//
// The API key and password go only into the Authorization header: never
// into a log, an error or a metric.
package elasticsearch

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/park"
	"github.com/auditrelay/auditrelay/internal/secret"
)

// Operator fixes.
const (
	fixAuth       = "the cluster refused the credentials: set api_key to the \"encoded\" value of a valid, unexpired API key (base64 of id:key), or username and password of an existing user"
	fixPrivileges = "the credentials lack a privilege: grant the API key or user the index privileges create_doc and auto_configure on the target data streams (logs-ping_one.audit-*, logs-okta.system-*, logs-auditrelay.*-*, or your index), see docs/sinks/elasticsearch.md"
	fixNotFound   = "the index does not exist and was not created: install the provider's Elastic integration (or an index template with \"data_stream\": {} on OpenSearch), grant auto_configure, or set index to an existing one"
	fixURL        = "no _bulk endpoint at this address: set urls to the cluster's base URL (https://host:9200), without a path the cluster does not serve"
)

const opSend = "elasticsearch: _bulk"

// ShutdownGrace is how long a batch being sent may still take once the
// caller's context is done, so that a clean stop sends nothing twice.
const ShutdownGrace = 10 * time.Second

// Options are a Sink's collaborators.
type Options struct {
	// HTTPClient makes every request. Default: NewHTTPClient(cfg).
	HTTPClient *http.Client
	// Logger receives the sink's logs; the caller attaches the sink's name.
	Logger *slog.Logger
	// Park is the file parked events are appended to (fsynced before the
	// batch is acknowledged). Nil: parked events are logged and counted
	// but not kept.
	Park park.Keeper
	// Providers are the providers whose events the sink receives, for
	// Check to name their targets; empty: every provider auditrelay has.
	Providers []string
}

// Stats count what a Sink has done.
type Stats struct {
	// Sent counts documents created.
	Sent int64
	// Duplicates counts documents answered 409: already held, delivered.
	Duplicates int64
	// Parked counts events parked instead of sent.
	Parked int64
	// Retried counts items answered 429 or 5xx, to be sent again.
	Retried int64
	// Requests counts HTTP requests, failed or not.
	Requests int64
	// Splits counts requests split in two after a 413.
	Splits int64
	// Failovers counts requests moved to the next url.
	Failovers int64
}

// Sink is an Elasticsearch or OpenSearch sink. Send is meant for one runner
// at a time.
type Sink struct {
	cfg       Config
	bases     []string
	auth      string
	secrets   []string
	http      *http.Client
	log       *slog.Logger
	keeper    park.Keeper
	providers []string

	mu    sync.Mutex
	enc   *encoder
	acked map[string]bool // events of the batch in progress already acknowledged or parked
	body  bytes.Buffer
	zbuf  bytes.Buffer
	zw    *gzip.Writer

	rr atomic.Uint64

	sent, dups, parked, retried, requests, splits, failovers atomic.Int64
}

// NewHTTPClient returns the client a Sink uses by default: httpx.NewClient
// with the CAs of ca_file, if set, trusted.
func NewHTTPClient(cfg Config) (*http.Client, error) {
	c := httpx.NewClient(cfg.RequestTimeout.D())
	if cfg.CAFile == "" {
		return c, nil
	}
	pem, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: ca_file: %w (give a readable PEM file of the CA that signs the cluster's certificate)", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("elasticsearch: ca_file %s holds no PEM certificate (on Elasticsearch, config/certs/http_ca.crt)", cfg.CAFile)
	}
	tr := c.Transport.(*http.Transport)
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return c, nil
}

// New returns a sink for cfg (defaulted and validated). It does no I/O
// beyond reading ca_file when opts.HTTPClient is nil.
func New(cfg Config, opts Options) (*Sink, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("elasticsearch: invalid config: %w", errors.Join(errs...))
	}
	s := &Sink{cfg: cfg, bases: cfg.Bases(), http: opts.HTTPClient, log: opts.Logger, keeper: opts.Park,
		providers: opts.Providers, enc: newEncoder(cfg), acked: map[string]bool{}}
	if !cfg.APIKey.IsZero() {
		s.auth = "ApiKey " + cfg.APIKey.Reveal()
		s.secrets = []string{cfg.APIKey.Reveal()}
		if d, err := base64.StdEncoding.DecodeString(cfg.APIKey.Reveal()); err == nil {
			_, k, _ := strings.Cut(string(d), ":")
			s.secrets = append(s.secrets, k)
		}
	} else {
		enc := base64.StdEncoding.EncodeToString([]byte(cfg.Username + ":" + cfg.Password.Reveal()))
		s.auth = "Basic " + enc
		s.secrets = []string{enc, cfg.Password.Reveal()}
	}
	if len(s.providers) == 0 {
		s.providers = []string{"pingone", "okta", "cyberark", "entra_directory_audits", "entra_sign_ins", "entra_provisioning"}
	}
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
	s.zw, _ = gzip.NewWriterLevel(&s.zbuf, gzip.BestSpeed)
	return s, nil
}

// Stats returns the counters.
func (s *Sink) Stats() Stats {
	return Stats{Sent: s.sent.Load(), Duplicates: s.dups.Load(), Parked: s.parked.Load(), Retried: s.retried.Load(),
		Requests: s.requests.Load(), Splits: s.splits.Load(), Failovers: s.failovers.Load()}
}

// item is one encoded event: its action and document lines.
type item struct {
	ev   *event.Raw
	line []byte
}

func ackKey(ev *event.Raw) string { return ev.Source + "\x00" + ev.ID }

// Send delivers batch and returns nil once every event in it is created,
// already held (409) or parked. When ctx is done, the batch is finished
// within ShutdownGrace; a batch not started returns ctx's error at once.
func (s *Sink) Send(ctx context.Context, batch []event.Raw) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", opSend, err)
	}
	sendCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(ShutdownGrace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-sendCtx.Done():
		}
	})
	defer stop()
	ctx = sendCtx
	var items []item
	for i := range batch {
		ev := &batch[i]
		if s.acked[ackKey(ev)] {
			continue
		}
		line, err := s.enc.appendItem(nil, ev)
		if err != nil {
			if perr := s.park(ev, err.Error()); perr != nil {
				return perr
			}
			continue
		}
		if len(line) > int(s.cfg.MaxRequestBytes) {
			if perr := s.park(ev, fmt.Sprintf("%d bytes encoded, over max_request_bytes %d", len(line), s.cfg.MaxRequestBytes)); perr != nil {
				return perr
			}
			continue
		}
		items = append(items, item{ev: ev, line: line})
	}
	start, pending := 0, 0
	for i := range items {
		n := len(items[i].line)
		if i > start && (i-start >= s.cfg.BatchSize || pending+n > int(s.cfg.MaxRequestBytes)) {
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

// errSplit is a 413: the request as a whole was too large.
type errSplit struct{ reason string }

func (e *errSplit) Error() string { return e.reason }

// deliver sends items, splitting them on a 413, and settles each item by
// its result.
func (s *Sink) deliver(ctx context.Context, items []item) error {
	if len(items) == 0 {
		return nil
	}
	res, err := s.post(ctx, items)
	var split *errSplit
	if errors.As(err, &split) {
		if len(items) == 1 {
			return s.park(items[0].ev, "refused by the cluster alone: "+split.reason)
		}
		s.splits.Add(1)
		s.log.Info("elasticsearch: request too large; splitting it", "events", len(items), "reason", split.reason)
		half := len(items) / 2
		if err := s.deliver(ctx, items[:half]); err != nil {
			return err
		}
		return s.deliver(ctx, items[half:])
	}
	if err != nil {
		return err
	}
	var (
		again, throttled int
		firstAgain       string
		halt             *delivery.Error
	)
	for i, r := range res {
		ev := items[i].ev
		switch {
		case r.Status/100 == 2:
			s.acked[ackKey(ev)] = true
			s.sent.Add(1)
		case r.Status == http.StatusConflict:
			s.acked[ackKey(ev)] = true
			s.dups.Add(1)
		case r.Status == http.StatusTooManyRequests || r.Status >= 500 || r.Status == http.StatusRequestTimeout:
			again++
			if r.Status == http.StatusTooManyRequests {
				throttled++
			}
			if firstAgain == "" {
				firstAgain = fmt.Sprintf("%d %s", r.Status, s.redact(r.Reason))
			}
		case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
			if halt == nil {
				halt = &delivery.Error{Class: delivery.Permanent, Op: opSend, Status: r.Status, Msg: s.redact(r.Reason), Fix: fixPrivileges}
			}
		case r.Status == http.StatusNotFound:
			if halt == nil {
				halt = &delivery.Error{Class: delivery.Permanent, Op: opSend, Status: r.Status, Msg: s.redact(r.Reason), Fix: fixNotFound}
			}
		default:
			if err := s.park(ev, fmt.Sprintf("HTTP %d %s", r.Status, s.redact(r.Reason))); err != nil {
				return err
			}
		}
	}
	if halt != nil {
		return halt
	}
	if again > 0 {
		s.retried.Add(int64(again))
		class := delivery.Transient
		if throttled > 0 {
			class = delivery.Throttled
		}
		return &delivery.Error{Class: class, Op: opSend,
			Msg: fmt.Sprintf("%d of %d documents not taken for now (first: %s); only those are sent again", again, len(items), firstAgain)}
	}
	return nil
}

// post sends one _bulk request and returns its items' results.
func (s *Sink) post(ctx context.Context, items []item) ([]itemResult, error) {
	s.body.Reset()
	for _, it := range items {
		s.body.Write(it.line)
	}
	s.zbuf.Reset()
	s.zw.Reset(&s.zbuf)
	s.zw.Write(s.body.Bytes())
	if err := s.zw.Close(); err != nil {
		return nil, &delivery.Error{Class: delivery.Permanent, Op: opSend, Msg: "gzip", Err: err}
	}
	status, hdr, b, err := s.roundTrip(ctx, http.MethodPost, "/_bulk?filter_path=errors,items.*.status,items.*.error", s.zbuf.Bytes(), true)
	if err != nil {
		return nil, err
	}
	if status/100 != 2 {
		msg := s.redact(requestError(b))
		if status == http.StatusRequestEntityTooLarge {
			return nil, &errSplit{reason: "HTTP 413 " + msg}
		}
		return nil, s.statusError(opSend, status, hdr, msg)
	}
	res, perr := parseBulk(b, len(items))
	if perr != nil {
		// Taken or not, we cannot tell: sending again is safe, every item
		// is a create with a stable _id.
		return nil, &delivery.Error{Class: delivery.Transient, Op: opSend, Msg: s.redact(perr.Error())}
	}
	return res, nil
}

// statusError classifies a non-2xx answer, naming the fix of those that
// retrying cannot cure.
func (s *Sink) statusError(op string, status int, hdr http.Header, msg string) *delivery.Error {
	e := httpx.StatusError(op, &http.Response{StatusCode: status, Header: hdr}, msg)
	switch status {
	case http.StatusUnauthorized:
		e.Class, e.Fix = delivery.Permanent, fixAuth
	case http.StatusForbidden:
		e.Class, e.Fix = delivery.Permanent, fixPrivileges
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		e.Class, e.Fix = delivery.Permanent, fixURL
	}
	return e
}

// roundTrip makes one request, starting at the next url round robin and
// failing over to the others on a network error, 502, 503 or 504. It returns
// the last answer's status, header and body (up to 16 MiB).
func (s *Sink) roundTrip(ctx context.Context, method, path string, body []byte, zipped bool) (int, http.Header, []byte, error) {
	start := int(s.rr.Add(1)-1) % len(s.bases)
	var lastErr error
	for k := range len(s.bases) {
		if k > 0 {
			s.failovers.Add(1)
		}
		base := s.bases[(start+k)%len(s.bases)]
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
		if err != nil {
			return 0, nil, nil, &delivery.Error{Class: delivery.Permanent, Op: opSend, Err: err}
		}
		req.Header.Set("Authorization", s.auth)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", httpx.UserAgent)
		if body != nil {
			if zipped {
				req.Header.Set("Content-Type", "application/x-ndjson")
				req.Header.Set("Content-Encoding", "gzip")
			} else {
				req.Header.Set("Content-Type", "application/json")
			}
		}
		s.requests.Add(1)
		resp, err := s.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return 0, nil, nil, fmt.Errorf("%s: %w", opSend, ctx.Err())
			}
			lastErr = httpx.NetworkError(opSend, s.redactErr(err), base, "urls")
			s.log.Warn("elasticsearch: request failed; trying the next url", "url", base, "err", lastErr)
			continue
		}
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			lastErr = s.statusError(opSend, resp.StatusCode, resp.Header, s.redact(requestError(b)))
			continue
		}
		if rerr != nil && resp.StatusCode/100 == 2 {
			return 0, nil, nil, &delivery.Error{Class: delivery.Transient, Op: opSend, Msg: "reading the answer", Err: s.redactErr(rerr)}
		}
		return resp.StatusCode, resp.Header, b, nil
	}
	return 0, nil, nil, lastErr
}

// park keeps an event the cluster will not take: appended to the park file
// and fsynced, counted and logged with its id.
func (s *Sink) park(ev *event.Raw, reason string) error {
	kept, err := park.Event(s.keeper, "elasticsearch: park event", ev, reason)
	if err != nil {
		return err
	}
	s.parked.Add(1)
	s.acked[ackKey(ev)] = true
	s.log.Warn("elasticsearch: event parked: the cluster refused it", "source", ev.Source, "id", ev.ID,
		"reason", reason, "file", kept)
	return nil
}

// Targets returns the indices or data streams the sink writes to for its
// providers.
func (s *Sink) Targets() []string {
	if s.cfg.Index != "" {
		return []string{s.cfg.Index}
	}
	var out []string
	for _, p := range s.providers {
		out = append(out, DefaultIndex(p))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

const opCheck = "elasticsearch: check"

// Check proves the credentials and that they may create documents in every
// target: POST /_security/user/_has_privileges for create_doc. A cluster
// without that API (OpenSearch, or Elasticsearch with security disabled)
// proves the credentials with GET / instead, and the write is proven by the
// first batch.
func (s *Sink) Check(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	targets := s.Targets()
	req, _ := json.Marshal(map[string]any{"index": []map[string]any{{"names": targets, "privileges": []string{"create_doc", "auto_configure"}}}})
	status, hdr, b, err := s.roundTrip(ctx, http.MethodPost, "/_security/user/_has_privileges", req, false)
	if err != nil {
		return err
	}
	switch {
	case status == http.StatusUnauthorized:
		return s.statusError(opCheck, status, hdr, s.redact(requestError(b)))
	case status/100 == 2:
		var ans struct {
			Index map[string]map[string]bool `json:"index"`
		}
		if err := json.Unmarshal(b, &ans); err != nil {
			return &delivery.Error{Class: delivery.Transient, Op: opCheck, Msg: "the _has_privileges answer is not JSON"}
		}
		var missing, noAuto []string
		for _, t := range targets {
			if !ans.Index[t]["create_doc"] {
				missing = append(missing, t)
			}
			if !ans.Index[t]["auto_configure"] {
				noAuto = append(noAuto, t)
			}
		}
		if len(missing) > 0 {
			return &delivery.Error{Class: delivery.Permanent, Op: opCheck, Msg: "no create_doc privilege on " + strings.Join(missing, ", "), Fix: fixPrivileges}
		}
		if len(noAuto) > 0 {
			s.log.Warn("elasticsearch: no auto_configure privilege: the data streams must exist before the first batch", "targets", noAuto)
		}
		return nil
	}
	// No privileges API here: prove the credentials alone.
	status, hdr, b, err = s.roundTrip(ctx, http.MethodGet, "/", nil, false)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return s.statusError(opCheck, status, hdr, s.redact(requestError(b)))
	}
	s.log.Info("elasticsearch: credentials accepted; this cluster has no _has_privileges API, so the first batch proves the write", "targets", targets)
	return nil
}

// Close releases idle connections.
func (s *Sink) Close(context.Context) error {
	s.http.CloseIdleConnections()
	return nil
}

// redact removes every credential from a text that came from outside.
func (s *Sink) redact(t string) string {
	for _, k := range s.secrets {
		if k != "" {
			t = strings.ReplaceAll(t, k, secret.Redacted)
		}
	}
	return t
}

func (s *Sink) redactErr(err error) error {
	if t := err.Error(); s.redact(t) != t {
		return errors.New(s.redact(t))
	}
	return err
}
