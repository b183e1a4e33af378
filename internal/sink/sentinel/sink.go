// Package sentinel sends events to Microsoft Sentinel through the Azure
// Monitor Logs Ingestion API: a data collection rule (DCR) stream, a Log
// Analytics table behind it.
//
// Four row formats exist. pingone_v2 sends the PingOne activity objects
// as the stream Custom-PingOne_AuditActivitiesV2_CL of Sentinel's "Ping One
// (via Codeless Connector Framework)" connector declares them, so auditrelay
// can feed that connector's DCR and table in its place. cyberark_audit does
// the same for CyberArk audit events and the stream
// Custom-CyberArk_AuditEvents of Sentinel's CyberArkAudit solution (table
// CyberArk_AuditEvents_CL), okta_v2 for Okta System Log events and the
// stream Custom-OktaSSO_CL of the "Okta Single Sign-On" solution (table
// OktaV2_CL). auditrelay sends typed columns for every field
// of an activity, the canonical fields and the raw event as dynamic.
// `auditrelay sentinel template` prints the ARM template of each format's
// table and DCR.
//
// Each batch is encoded, split into calls of at most 1 MB compressed and
// uncompressed, gzipped and posted with an Entra ID token for the Azure
// Monitor audience; 204 acknowledges a call. A batch is acknowledged when
// every call of it is. Calls of a batch that were acknowledged before a
// later call failed are not sent again when the batch is retried. Field
// values over 64 KB are cut and counted. An event that cannot be sent at
// all (not JSON, a row over the call limit even after cutting its fields,
// or one the service refuses as too large on its own) is parked: logged
// with its id and counted, and the events behind it go on.
package sentinel

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/park"
)

// APIVersion is the Logs Ingestion API version used.
const APIVersion = "2023-01-01"

const opUpload = "sentinel: upload"

// Operator fixes of upload errors.
const (
	// FixForbidden is the fix of a 403.
	FixForbidden  = "grant the app Monitoring Metrics Publisher on the DCR; new role assignments can take up to 30 minutes"
	fixBadRequest = "the DCR refused the rows: check that stream and format match the DCR's stream declaration (`auditrelay sentinel template` prints one that does)"
)

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// Options are a sink's dependencies. The zero value is usable.
type Options struct {
	// HTTPClient sends token and upload requests; default
	// httpx.NewClient(request_timeout).
	HTTPClient *http.Client
	// Credential replaces the credential of the configured auth.
	Credential TokenCredential
	// Normalize maps events to the canonical form for the auditrelay
	// format.
	Normalize Normalizer
	// Park is the file events that can never be sent are kept in
	// (fsynced); the sink's runner shares it. Nil keeps none: they are
	// only logged and counted.
	Park park.Keeper
	// Logger receives parked events and retries; default discards.
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// Stats count what a sink has done since it was created.
type Stats struct {
	// Rows counts rows acknowledged by the service.
	Rows int64
	// Calls counts acknowledged API calls.
	Calls int64
	// Bytes counts the compressed bytes of acknowledged calls.
	Bytes int64
	// Parked counts events that could not be sent and were skipped.
	Parked int64
	// Truncated counts field values cut to 64 KB.
	Truncated int64
	// Splits counts calls split again after a 413.
	Splits int64
	// Old counts events sent more than 2 days after they happened.
	Old int64
	// Filtered counts the events an asim_audit or asim_authentication sink
	// left out because their rows belong to the other ASIM schema.
	Filtered int64
}

// Sink sends batches to one DCR stream. It is safe for use by one runner
// at a time.
type Sink struct {
	cfg       Config
	url       string
	http      *http.Client
	tokens    *httpx.TokenCache
	log       *slog.Logger
	credErr   error
	mu        sync.Mutex
	enc       *encoder
	batchKey  string
	comps     chan *compressor // one per call in flight
	ackMu     sync.Mutex       // guards acked and the park keeper while calls run
	acked     map[string]bool
	rows      atomic.Int64
	calls     atomic.Int64
	bytes     atomic.Int64
	parked    atomic.Int64
	keeper    park.Keeper // nil: parked events are only logged and counted
	truncated atomic.Int64
	splits    atomic.Int64
	old       atomic.Int64
	filtered  atomic.Int64
	now       func() time.Time
}

// New returns a sink for cfg (defaulted and validated). It does no I/O.
func New(cfg Config, opts Options) *Sink {
	if opts.HTTPClient == nil {
		opts.HTTPClient = httpx.NewClient(cfg.RequestTimeout.D())
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Sink{
		cfg:   cfg,
		url:   UploadURL(cfg.Endpoint, cfg.DCRImmutableID, cfg.Stream),
		http:  opts.HTTPClient,
		log:   opts.Logger,
		now:   opts.Now,
		enc:   newEncoder(cfg.Format, opts.Normalize, int(cfg.MaxRequestBytes)),
		comps: make(chan *compressor, parallelCalls),
	}
	for range parallelCalls {
		s.comps <- newCompressor()
	}
	s.keeper = opts.Park
	cred := opts.Credential
	if cred == nil {
		var err error
		if cred, err = newCredential(&cfg, opts.HTTPClient); err != nil {
			s.credErr = &delivery.Error{Class: delivery.Permanent, Op: opToken, Err: err, Fix: fixIdentity}
		}
	}
	s.tokens = newTokens(cred, cfg.cloud().Audience+"/.default", opts.Now)
	return s
}

// UploadURL returns the Logs Ingestion API URL of a stream.
func UploadURL(endpoint, dcr, stream string) string {
	return endpoint + "/dataCollectionRules/" + url.PathEscape(dcr) + "/streams/" + url.PathEscape(stream) + "?api-version=" + APIVersion
}

// Stats returns the sink's counters.
func (s *Sink) Stats() Stats {
	return Stats{Rows: s.rows.Load(), Calls: s.calls.Load(), Bytes: s.bytes.Load(), Parked: s.parked.Load(),
		Truncated: s.truncated.Load(), Splits: s.splits.Load(), Old: s.old.Load(),
		Filtered: s.filtered.Load()}
}

// Send uploads batch and returns nil once the service acknowledged every
// row of it, parked events aside.
func (s *Sink) Send(ctx context.Context, batch []event.Raw) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", opUpload, err)
	}
	// A retried batch skips the rows already acknowledged.
	key := fmt.Sprintf("%d\x00%s\x00%s\x00%s\x00%s", len(batch), batch[0].Source, batch[0].ID, batch[len(batch)-1].Source, batch[len(batch)-1].ID)
	fresh := key != s.batchKey || s.acked == nil
	if fresh {
		s.batchKey, s.acked = key, map[string]bool{}
	}
	before, filteredBefore := s.enc.truncated, s.enc.filtered
	rows, park := s.enc.rows(batch, func(k string) bool { return s.acked[k] })
	if n := s.enc.filtered - filteredBefore; n > 0 && fresh {
		s.filtered.Add(n)
		s.log.Debug("sentinel: events of the other ASIM schema left out; an "+otherASIM(s.cfg.Format)+" sink takes them", "events", n)
	}
	// Counted and reported once per batch, not again on its retries.
	if n := s.enc.truncated - before; n > 0 && fresh {
		s.truncated.Add(n)
		s.log.Warn("sentinel: field values over 64 KB cut to 64 KB; the raw event in the spool is unchanged", "fields", n)
	}
	for _, p := range park {
		if err := s.park(p.ev, p.reason); err != nil {
			return err
		}
	}
	if n, oldest := s.stale(batch); n > 0 && fresh {
		s.old.Add(int64(n))
		s.log.Warn("sentinel: events older than 2 days; Log Analytics may stamp them with the ingestion time instead of TimeGenerated (RecordedAt keeps the event time)",
			"events", n, "oldest", oldest)
	}
	if err := s.sendCalls(ctx, s.enc.split(rows)); err != nil {
		return err
	}
	s.batchKey, s.acked = "", nil
	return nil
}

// parallelCalls is how many calls of a batch are compressed and in flight
// at once: one call waits for the service's round trip, which leaves the
// CPU to compress the next.
const parallelCalls = 4

// sendCalls sends the calls of a batch, parallelCalls at a time, and
// returns the first error once every call has ended. The rows of the
// calls that succeeded are acknowledged: a retry of the batch skips them.
func (s *Sink) sendCalls(ctx context.Context, calls [][]row) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, call := range calls {
		var c *compressor
		select {
		case c = <-s.comps:
		case <-ctx.Done():
			wg.Wait()
			return cmp.Or(first, error(fmt.Errorf("%s: %w", opUpload, ctx.Err())))
		}
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			s.comps <- c
			break
		}
		wg.Go(func() {
			defer func() { s.comps <- c }()
			if err := s.sendCall(ctx, call, c); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

// staleAge is the age past which Log Analytics is reported to replace an
// incoming TimeGenerated with the ingestion time.
const staleAge = 48 * time.Hour

// stale counts the events of batch older than staleAge, and the oldest
// event time.
func (s *Sink) stale(batch []event.Raw) (int, time.Time) {
	limit := s.now().Add(-staleAge)
	n := 0
	var oldest time.Time
	for i := range batch {
		t := batch[i].Time
		if t.IsZero() || !t.Before(limit) {
			continue
		}
		n++
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	return n, oldest
}

// park keeps an event that will never be sent in the park file (when one
// is configured), reports it and marks it done. A park file that cannot be
// written fails the batch, which is retried: the event is not dropped.
func (s *Sink) park(ev *event.Raw, reason string) error {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	kept, err := park.Event(s.keeper, "sentinel: park event", ev, reason)
	if err != nil {
		return err
	}
	s.parked.Add(1)
	s.acked[ev.Source+"\x00"+ev.ID] = true
	s.log.Error("sentinel: event parked: it cannot be sent", "source", ev.Source, "id", ev.ID, "reason", reason, "file", kept)
	return nil
}

// sendCall uploads one call's rows, compressed with c, splitting it when
// it is too large compressed or refused with 413.
func (s *Sink) sendCall(ctx context.Context, rows []row, c *compressor) error {
	n, body, err := c.body(rows)
	if err != nil {
		return &delivery.Error{Class: delivery.Transient, Op: "sentinel: compress", Err: err}
	}
	tooLarge := len(body) > int(s.cfg.MaxRequestBytes) || n > int(s.cfg.MaxRequestBytes)
	if !tooLarge {
		size := len(body)
		err = s.upload(ctx, body)
		if err == nil {
			s.ackMu.Lock()
			for _, r := range rows {
				s.acked[r.key] = true
			}
			s.ackMu.Unlock()
			s.rows.Add(int64(len(rows)))
			s.calls.Add(1)
			s.bytes.Add(int64(size))
			return nil
		}
		var he *delivery.Error
		if !errors.As(err, &he) || he.Status != http.StatusRequestEntityTooLarge {
			return err
		}
		s.splits.Add(1)
	}
	if len(rows) == 1 {
		reason := fmt.Sprintf("its row (%d bytes) compresses to more than the %d bytes one call may carry", len(rows[0].data), s.cfg.MaxRequestBytes)
		if err != nil {
			reason = fmt.Sprintf("the service refuses its row (%d bytes) as too large: %v", len(rows[0].data), err)
		}
		return s.park(rows[0].ev, reason)
	}
	half := len(rows) / 2
	if err := s.sendCall(ctx, rows[:half], c); err != nil {
		return err
	}
	return s.sendCall(ctx, rows[half:], c)
}

// upload posts one gzipped body. On a 401 it gets a fresh token and tries
// once more.
func (s *Sink) upload(ctx context.Context, body []byte) error {
	return s.post(ctx, body, true)
}

func (s *Sink) post(ctx context.Context, body []byte, gzipped bool) error {
	if s.credErr != nil {
		return s.credErr
	}
	for attempt := 1; ; attempt++ {
		tok, err := s.tokens.Token(ctx)
		if err != nil {
			return err
		}
		status, err := s.postOnce(ctx, tok, body, gzipped)
		if status != http.StatusUnauthorized || attempt >= 2 {
			return err
		}
		s.tokens.Drop(tok)
		s.log.Info("sentinel: access token rejected; retrying with a fresh token", "err", err)
	}
}

func (s *Sink) postOnce(ctx context.Context, tok string, body []byte, gzipped bool) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return 0, &delivery.Error{Class: delivery.Permanent, Op: opUpload, Err: err}
	}
	reqID := requestID()
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	req.Header.Set("x-ms-client-request-id", reqID)
	req.Header.Set("User-Agent", httpx.UserAgent)
	resp, err := s.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("%s: %w", opUpload, ctx.Err())
		}
		e := &delivery.Error{Class: delivery.Transient, Op: opUpload, Err: err}
		var dns *net.DNSError
		if errors.As(err, &dns) && dns.IsNotFound {
			e.Fix = "check endpoint: its host name does not resolve"
		}
		return 0, e
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return resp.StatusCode, nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := httpx.StatusError(opUpload, resp, apiMessage(msg)+" (request id "+reqID+")")
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		e.Class, e.Fix = delivery.Permanent, fixAudience
	case http.StatusForbidden:
		e.Fix = FixForbidden
	case http.StatusNotFound:
		e.Fix = fmt.Sprintf("no data collection rule %s with stream %s at %s: check dcr_immutable_id, stream and endpoint (a DCE must be in the DCR's region)",
			s.cfg.DCRImmutableID, s.cfg.Stream, s.cfg.Endpoint)
	case http.StatusRequestEntityTooLarge:
		e.Class = delivery.Permanent // split by the caller
	case http.StatusBadRequest:
		e.Fix = fixBadRequest
	}
	return resp.StatusCode, e
}

// apiMessage extracts the message of an Azure error body, or the body's
// first line.
func apiMessage(body []byte) string {
	var v struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &v) == nil && (v.Error.Code != "" || v.Error.Message != "") {
		if v.Error.Code == "" {
			return firstLine(v.Error.Message)
		}
		return firstLine(v.Error.Code) + ": " + firstLine(v.Error.Message)
	}
	return firstLine(string(bytes.TrimSpace(body)))
}

// requestID returns a random UUID for x-ms-client-request-id.
func requestID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Check proves the credentials, the role assignment and the stream: it
// gets a token and sends an empty batch.
func (s *Sink) Check(ctx context.Context) error {
	return s.post(ctx, []byte("[]"), false)
}

// Close releases idle connections.
func (s *Sink) Close(context.Context) error {
	s.http.CloseIdleConnections()
	return nil
}

// otherASIM names the ASIM format that takes what format leaves out.
func otherASIM(format string) string {
	if format == FormatASIMAuthentication {
		return FormatASIMAudit
	}
	return FormatASIMAuthentication
}
