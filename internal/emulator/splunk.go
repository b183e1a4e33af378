package emulator

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Splunk emulates a Splunk HTTP Event Collector:
//
//	POST /services/collector/event        envelopes back to back → {"text":"Success","code":0[,"ackId":N]}
//	POST /services/collector              the same
//	POST /services/collector/event/1.0    the same
//	POST /services/collector/ack          {"acks":[N…]} → {"acks":{"N":bool}}
//	GET  /services/collector/health       {"text":"HEC is healthy","code":17}
//	GET  /emulator/stats                  SplunkStats as JSON
//
// Tokens come with their own settings (SplunkToken): disabled, indexer
// acknowledgment, allowed indexes. It answers each HEC code as Splunk
// does: 401 code 2 without a token, 401 code 3 without "Splunk ", 403
// code 4 for an unknown token and 1 for a disabled one, 400 code 10 or 11
// for a missing or malformed channel on an ack token, 400 code 5 for no
// data, 400 code 6 with invalid-event-number for an array or a value that
// is not an envelope, 12 and 13 for a missing or blank event, 15 for
// indexed fields that are not strings, 7 for an index the token may not
// write, 400 code 14 on /ack for a token without acknowledgment, and 413
// over MaxContentLength (after gzip is inflated). A refused request
// indexes nothing. Events carrying a poisoned auditrelay_id are refused
// with code 6 at their position. With acknowledgment each request gets the
// next ackId of its channel, which turns true AckDelay after the request,
// or never (SetAckNever); a true ackId is forgotten once read. Faults
// (SplunkFaults, FailNext) inject every other code.
type Splunk struct {
	opts SplunkOptions
	mux  *http.ServeMux

	mu       sync.Mutex
	tokens   map[string]SplunkToken
	events   []SplunkEvent
	channels map[string]*splunkChannel
	poison   map[string]bool
	faults   SplunkFaults
	next     []SplunkFault
	ackDelay time.Duration
	ackNever bool
	down     bool
	rng      *rand.Rand
	stats    SplunkStats
}

// SplunkToken is one HEC token and its settings.
type SplunkToken struct {
	// Token is the token value.
	Token string
	// Disabled makes HEC answer 403 code 1.
	Disabled bool
	// Ack enables indexer acknowledgment.
	Ack bool
	// Indexes are the indexes the token may write; empty: any.
	Indexes []string
	// DefaultIndex is where events without an index go; default "main".
	DefaultIndex string
}

// SplunkOptions configure a Splunk emulator.
type SplunkOptions struct {
	// MaxContentLength is the largest body, inflated, accepted; default
	// 1 MB (sites often lower Splunk's 800 MB).
	MaxContentLength int
	// AckDelay is how long an ackId stays false; default 0.
	AckDelay time.Duration
	// Seed seeds fault injection.
	Seed uint64
}

// SplunkFaults are the fractions (0..1) of event requests answered with a
// fault: 500 code 8, 503 code 9 with Retry-After, 429 with Retry-After.
type SplunkFaults struct {
	ServerError float64
	Busy        float64
	Throttle    float64
}

// SplunkFault is one forced answer, for FailNext: Status with
// {"text":Text,"code":Code} (Code < 0: no JSON body), and Retry-After
// seconds when RetryAfter > 0.
type SplunkFault struct {
	Status     int
	Code       int
	Text       string
	RetryAfter int
}

// SplunkEvent is one event HEC indexed.
type SplunkEvent struct {
	Time       json.Number       `json:"time,omitempty"`
	Host       string            `json:"host"`
	Source     string            `json:"source"`
	Sourcetype string            `json:"sourcetype"`
	Index      string            `json:"index"`
	Fields     map[string]string `json:"fields,omitempty"`
	Event      json.RawMessage   `json:"event"`
	// Channel is the request's channel, empty without acknowledgment.
	Channel string `json:"-"`
}

// ID returns the event's fields.auditrelay_id.
func (e SplunkEvent) ID() string { return e.Fields["auditrelay_id"] }

// SplunkStats count what a Splunk emulator has done.
type SplunkStats struct {
	Requests  int64 `json:"requests"`
	Indexed   int64 `json:"indexed"`
	Refused   int64 `json:"refused"`
	TooLarge  int64 `json:"tooLarge"`
	AuthFails int64 `json:"authFails"`
	Faults    int64 `json:"faults"`
	AckPolls  int64 `json:"ackPolls"`
	AcksTrue  int64 `json:"acksTrue"`
	Gzip      int64 `json:"gzip"`
}

type splunkChannel struct {
	next    uint64
	pending map[uint64]time.Time // ackId → when it turns true (zero: never)
}

var splunkGUID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// NewSplunk returns an emulator that accepts the given tokens.
func NewSplunk(opts SplunkOptions, tokens ...SplunkToken) *Splunk {
	if opts.MaxContentLength <= 0 {
		opts.MaxContentLength = 1 << 20
	}
	s := &Splunk{opts: opts, tokens: map[string]SplunkToken{}, channels: map[string]*splunkChannel{},
		poison: map[string]bool{}, ackDelay: opts.AckDelay, rng: rand.New(rand.NewPCG(opts.Seed, 0x5b1c))}
	for _, t := range tokens {
		if t.DefaultIndex == "" {
			t.DefaultIndex = "main"
		}
		s.tokens[t.Token] = t
	}
	s.mux = http.NewServeMux()
	for _, p := range []string{"/services/collector/event", "/services/collector", "/services/collector/event/1.0"} {
		s.mux.HandleFunc("POST "+p, s.handleEvent)
	}
	s.mux.HandleFunc("POST /services/collector/ack", s.handleAck)
	s.mux.HandleFunc("GET /services/collector/health", s.handleHealth)
	s.mux.HandleFunc("GET /services/collector/health/1.0", s.handleHealth)
	s.mux.HandleFunc("GET /emulator/stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Stats()) })
	s.mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		hecReply(w, http.StatusNotFound, 404, "The requested URL was not found on this server.")
	})
	return s
}

// ServeHTTP serves HEC.
func (s *Splunk) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Events returns every event indexed, in order.
func (s *Splunk) Events() []SplunkEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SplunkEvent(nil), s.events...)
}

// IDs counts the events indexed per auditrelay_id: a count above one is a
// duplicate.
func (s *Splunk) IDs() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, e := range s.events {
		out[e.ID()]++
	}
	return out
}

// Poison makes HEC refuse, with code 6 at their position, the events with
// these auditrelay_ids.
func (s *Splunk) Poison(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.poison[id] = true
	}
}

// SetFaults sets the random faults injected from now on.
func (s *Splunk) SetFaults(f SplunkFaults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// FailNext answers the next event requests with these faults, in order.
func (s *Splunk) FailNext(f ...SplunkFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next = append(s.next, f...)
}

// SetAckDelay sets how long new ackIds stay false.
func (s *Splunk) SetAckDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ackDelay = d
}

// SetAckNever makes new ackIds stay false forever while never is true, as
// when an indexer fails before replicating.
func (s *Splunk) SetAckNever(never bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ackNever = never
}

// SetDown makes every request fail with 503 (code 9; health code 18)
// while down is true.
func (s *Splunk) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Stats returns the counters.
func (s *Splunk) Stats() SplunkStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func hecReply(w http.ResponseWriter, status, code int, text string) {
	writeJSON(w, status, struct {
		Text string `json:"text"`
		Code int    `json:"code"`
	}{text, code})
}

func hecInvalid(w http.ResponseWriter, code int, text string, n int) {
	writeJSON(w, http.StatusBadRequest, struct {
		Text string `json:"text"`
		Code int    `json:"code"`
		N    int    `json:"invalid-event-number"`
	}{text, code, n})
}

// auth checks the Authorization header and returns the token, or answers.
func (s *Splunk) auth(w http.ResponseWriter, r *http.Request) (SplunkToken, bool) {
	h := r.Header.Get("Authorization")
	fail := func(status, code int, text string) (SplunkToken, bool) {
		s.mu.Lock()
		s.stats.AuthFails++
		s.mu.Unlock()
		hecReply(w, status, code, text)
		return SplunkToken{}, false
	}
	if h == "" {
		return fail(http.StatusUnauthorized, 2, "Token is required")
	}
	v, ok := strings.CutPrefix(h, "Splunk ")
	if !ok {
		return fail(http.StatusUnauthorized, 3, "Invalid authorization")
	}
	s.mu.Lock()
	t, known := s.tokens[v]
	s.mu.Unlock()
	switch {
	case !known:
		return fail(http.StatusForbidden, 4, "Invalid token")
	case t.Disabled:
		return fail(http.StatusForbidden, 1, "Token disabled")
	}
	return t, true
}

// channel returns the request's channel for an ack token, or answers.
func channelOf(w http.ResponseWriter, r *http.Request) (string, bool) {
	c := r.Header.Get("X-Splunk-Request-Channel")
	if c == "" {
		c = r.URL.Query().Get("channel")
	}
	if c == "" {
		hecReply(w, http.StatusBadRequest, 10, "Data channel is missing")
		return "", false
	}
	if !splunkGUID.MatchString(c) {
		hecReply(w, http.StatusBadRequest, 11, "Invalid data channel")
		return "", false
	}
	return c, true
}

func (s *Splunk) handleEvent(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.Requests++
	down, f := s.down, s.faults
	var forced *SplunkFault
	if len(s.next) > 0 {
		forced = &s.next[0]
		s.next = s.next[1:]
	}
	u := s.rng.Float64()
	s.mu.Unlock()
	fault := func(ff SplunkFault) {
		s.mu.Lock()
		s.stats.Faults++
		s.mu.Unlock()
		if ff.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(ff.RetryAfter))
		}
		if ff.Code < 0 {
			w.WriteHeader(ff.Status)
			return
		}
		hecReply(w, ff.Status, ff.Code, ff.Text)
	}
	switch {
	case forced != nil:
		fault(*forced)
		return
	case down:
		fault(SplunkFault{Status: 503, Code: 9, Text: "Server is busy", RetryAfter: 5})
		return
	case u < f.ServerError:
		fault(SplunkFault{Status: 500, Code: 8, Text: "Internal server error"})
		return
	case u < f.ServerError+f.Busy:
		fault(SplunkFault{Status: 503, Code: 9, Text: "Server is busy", RetryAfter: 2})
		return
	case u < f.ServerError+f.Busy+f.Throttle:
		fault(SplunkFault{Status: 429, Code: -1, RetryAfter: 2})
		return
	}
	tok, ok := s.auth(w, r)
	if !ok {
		return
	}
	var ch string
	if tok.Ack {
		if ch, ok = channelOf(w, r); !ok {
			return
		}
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		hecReply(w, http.StatusBadRequest, 5, "No data")
		return
	}
	evs, code, text, n := s.parseEnvelopes(body, tok)
	if code != 0 {
		s.mu.Lock()
		s.stats.Refused++
		s.mu.Unlock()
		hecInvalid(w, code, text, n)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range evs {
		evs[i].Channel = ch
	}
	s.events = append(s.events, evs...)
	s.stats.Indexed += int64(len(evs))
	if !tok.Ack {
		hecReply(w, http.StatusOK, 0, "Success")
		return
	}
	c := s.channels[ch]
	if c == nil {
		c = &splunkChannel{pending: map[uint64]time.Time{}}
		s.channels[ch] = c
	}
	id := c.next
	c.next++
	ready := time.Now().Add(s.ackDelay)
	if s.ackNever {
		ready = time.Time{}
	}
	c.pending[id] = ready
	writeJSON(w, http.StatusOK, struct {
		Text  string `json:"text"`
		Code  int    `json:"code"`
		AckID uint64 `json:"ackId"`
	}{"Success", 0, id})
}

// readBody reads the body, inflating gzip, up to MaxContentLength.
func (s *Splunk) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	max := int64(s.opts.MaxContentLength)
	var body io.Reader = io.LimitReader(r.Body, max+1)
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(body)
		if err != nil {
			hecReply(w, http.StatusBadRequest, 6, "Invalid data format")
			return nil, false
		}
		s.mu.Lock()
		s.stats.Gzip++
		s.mu.Unlock()
		body = io.LimitReader(zr, max+1)
	}
	b, err := io.ReadAll(body)
	if int64(len(b)) > max || errors.Is(err, io.ErrUnexpectedEOF) {
		s.mu.Lock()
		s.stats.TooLarge++
		s.mu.Unlock()
		http.Error(w, "Content-Length too large (maximum is "+strconv.Itoa(int(max))+")", http.StatusRequestEntityTooLarge)
		return nil, false
	}
	if err != nil {
		hecReply(w, http.StatusBadRequest, 6, "Invalid data format")
		return nil, false
	}
	return b, true
}

// parseEnvelopes decodes back-to-back envelopes; a non-zero code refuses
// the whole request at event n.
func (s *Splunk) parseEnvelopes(body []byte, tok SplunkToken) ([]SplunkEvent, int, string, int) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var out []SplunkEvent
	for n := 0; ; n++ {
		var raw map[string]json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return out, 0, "", 0
		}
		if err != nil || raw == nil {
			return nil, 6, "Invalid data format", n
		}
		ev, ok := raw["event"]
		if !ok {
			return nil, 12, "Event field is required", n
		}
		if t := bytes.TrimSpace(ev); string(t) == `""` || string(t) == "null" || string(t) == "{}" {
			return nil, 13, "Event field cannot be blank", n
		}
		var e SplunkEvent
		e.Event = ev
		str := func(k string) (string, bool) {
			v, ok := raw[k]
			if !ok {
				return "", true
			}
			var x string
			return x, json.Unmarshal(v, &x) == nil
		}
		var ok1, ok2, ok3, ok4 bool
		e.Host, ok1 = str("host")
		e.Source, ok2 = str("source")
		e.Sourcetype, ok3 = str("sourcetype")
		e.Index, ok4 = str("index")
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return nil, 6, "Invalid data format", n
		}
		if t, ok := raw["time"]; ok {
			var num json.Number
			if json.Unmarshal(t, &num) != nil {
				return nil, 6, "Invalid data format", n
			}
			if _, err := num.Float64(); err != nil {
				return nil, 6, "Invalid data format", n
			}
			e.Time = num
		}
		if fl, ok := raw["fields"]; ok {
			if json.Unmarshal(fl, &e.Fields) != nil {
				return nil, 15, "Error in handling indexed fields", n
			}
		}
		if e.Sourcetype == "" {
			e.Sourcetype = "httpevent"
		}
		if e.Index == "" {
			e.Index = tok.DefaultIndex
		}
		if len(tok.Indexes) > 0 && !contains(tok.Indexes, e.Index) {
			return nil, 7, "Incorrect index", n
		}
		s.mu.Lock()
		bad := s.poison[e.ID()]
		s.mu.Unlock()
		if bad {
			return nil, 6, "Invalid data format", n
		}
		out = append(out, e)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Splunk) handleAck(w http.ResponseWriter, r *http.Request) {
	tok, ok := s.auth(w, r)
	if !ok {
		return
	}
	if !tok.Ack {
		hecReply(w, http.StatusBadRequest, 14, "ACK is disabled")
		return
	}
	ch, ok := channelOf(w, r)
	if !ok {
		return
	}
	var req struct {
		Acks []uint64 `json:"acks"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || req.Acks == nil {
		hecReply(w, http.StatusBadRequest, 6, "Invalid data format")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.AckPolls++
	now := time.Now()
	out := map[string]bool{}
	c := s.channels[ch]
	for _, id := range req.Acks {
		done := false
		if c != nil {
			if t, ok := c.pending[id]; ok && !t.IsZero() && !now.Before(t) {
				done = true
				delete(c.pending, id)
				s.stats.AcksTrue++
			}
		}
		out[strconv.FormatUint(id, 10)] = done
	}
	writeJSON(w, http.StatusOK, map[string]any{"acks": out})
}

func (s *Splunk) handleHealth(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	if down {
		hecReply(w, http.StatusServiceUnavailable, 18, "HEC is unhealthy, queues are full")
		return
	}
	hecReply(w, http.StatusOK, 17, "HEC is healthy")
}
