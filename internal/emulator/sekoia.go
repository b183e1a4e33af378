package emulator

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"sync"
)

// Sekoia emulates the Sekoia.io HTTP intake's batch endpoint:
//
//	POST /batch                          {"intake_key": …, "jsons": ["<event>", …]} → {"received": true, "event_ids": […]}
//	POST /api/v1/intake-http/batch       the same, under the regional path prefix
//	GET  /emulator/stats                 SekoiaStats as JSON
//
// It accepts gzip bodies, refuses payloads over 10 MiB and batches holding
// an event over 250,000 bytes with 413 (the real intake answers 413 when all
// events are rejected; its per-event answer is not documented), an unknown
// intake key with 401, and returns one event id per accepted event. It
// records every message per intake key and flags any that the Sekoia
// parser's JSON input rule `^\s*\{.*\}\s*$` would not take.
type Sekoia struct {
	opts SekoiaOptions
	mux  *http.ServeMux
	rule *regexp.Regexp

	mu       sync.Mutex
	keys     map[string]bool
	messages map[string][]string
	flagged  []string
	agents   map[string]bool
	faults   SekoiaFaults
	down     bool
	rng      *rand.Rand
	stats    SekoiaStats
}

// SekoiaOptions configure a Sekoia emulator.
type SekoiaOptions struct {
	// MaxPayload is the largest body (after gzip) accepted; default 10 MiB.
	MaxPayload int
	// MaxEvent is the largest event accepted; default 250,000 bytes.
	MaxEvent int
	// Seed seeds fault injection.
	Seed uint64
}

// SekoiaFaults are the fractions (0..1) of batch requests answered with a
// fault: 5xx, or 429 with Retry-After.
type SekoiaFaults struct {
	ServerError float64
	Throttle    float64
}

// SekoiaStats count what a Sekoia emulator has done.
type SekoiaStats struct {
	Requests     int64 `json:"requests"`
	Accepted     int64 `json:"accepted"`
	TooLarge     int64 `json:"tooLarge"`
	Unauthorized int64 `json:"unauthorized"`
	Throttled    int64 `json:"throttled"`
	Faults       int64 `json:"faults"`
	Gzip         int64 `json:"gzip"`
}

// SekoiaInputRule is the Sekoia CyberArk parser's JSON branch condition.
const SekoiaInputRule = `^\s*\{.*\}\s*$`

// NewSekoia returns an emulator that accepts the given intake keys.
func NewSekoia(opts SekoiaOptions, keys ...string) *Sekoia {
	if opts.MaxPayload <= 0 {
		opts.MaxPayload = 10 << 20
	}
	if opts.MaxEvent <= 0 {
		opts.MaxEvent = 250_000
	}
	s := &Sekoia{
		opts: opts, rule: regexp.MustCompile(SekoiaInputRule),
		keys: map[string]bool{}, messages: map[string][]string{}, agents: map[string]bool{},
		rng: rand.New(rand.NewPCG(opts.Seed, 0x5e_c01a)),
	}
	for _, k := range keys {
		s.keys[k] = true
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /batch", s.handleBatch)
	s.mux.HandleFunc("POST /api/v1/intake-http/batch", s.handleBatch)
	s.mux.HandleFunc("GET /emulator/stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Stats()) })
	s.mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
	})
	return s
}

// ServeHTTP serves the intake.
func (s *Sekoia) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Messages returns the messages accepted for an intake key, in order.
func (s *Sekoia) Messages(key string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.messages[key]...)
}

// Flagged returns the accepted messages that the parser's input rule would
// reject.
func (s *Sekoia) Flagged() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.flagged...)
}

// UserAgents returns every User-Agent seen.
func (s *Sekoia) UserAgents() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for a := range s.agents {
		out = append(out, a)
	}
	return out
}

// SetFaults sets the faults injected from now on.
func (s *Sekoia) SetFaults(f SekoiaFaults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// SetDown makes every request fail with 503 while down is true.
func (s *Sekoia) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Stats returns the counters.
func (s *Sekoia) Stats() SekoiaStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *Sekoia) handleBatch(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.Requests++
	s.agents[r.Header.Get("User-Agent")] = true
	down, f := s.down, s.faults
	u := s.rng.Float64()
	s.mu.Unlock()
	fail := func(status int, msg string, count *int64) {
		s.mu.Lock()
		*count++
		s.mu.Unlock()
		writeJSON(w, status, map[string]string{"message": msg})
	}
	switch {
	case down || u < f.ServerError:
		fail(http.StatusServiceUnavailable, "Service Unavailable", &s.stats.Faults)
		return
	case u < f.ServerError+f.Throttle:
		w.Header().Set("Retry-After", "2")
		fail(http.StatusTooManyRequests, "Too Many Requests", &s.stats.Throttled)
		return
	}
	var body io.Reader = io.LimitReader(r.Body, int64(s.opts.MaxPayload)+1)
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(body)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "invalid gzip body"})
			return
		}
		s.mu.Lock()
		s.stats.Gzip++
		s.mu.Unlock()
		body = io.LimitReader(zr, int64(s.opts.MaxPayload)+1)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "cannot read the body"})
		return
	}
	if len(b) > s.opts.MaxPayload {
		fail(http.StatusRequestEntityTooLarge, "Payload Too Large", &s.stats.TooLarge)
		return
	}
	var req struct {
		IntakeKey *string   `json:"intake_key"`
		JSONs     *[]string `json:"jsons"`
	}
	if err := json.Unmarshal(b, &req); err != nil || req.JSONs == nil || req.IntakeKey == nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "the body must be {\"intake_key\": …, \"jsons\": […]}"})
		return
	}
	s.mu.Lock()
	known := s.keys[*req.IntakeKey]
	s.mu.Unlock()
	if !known {
		fail(http.StatusUnauthorized, "Invalid intake key", &s.stats.Unauthorized)
		return
	}
	for _, m := range *req.JSONs {
		if len(m) > s.opts.MaxEvent {
			fail(http.StatusRequestEntityTooLarge, "Event too large (more than 250 KB)", &s.stats.TooLarge)
			return
		}
	}
	ids := make([]string, len(*req.JSONs))
	for i := range ids {
		ids[i] = newUUID()
	}
	s.mu.Lock()
	for _, m := range *req.JSONs {
		s.messages[*req.IntakeKey] = append(s.messages[*req.IntakeKey], m)
		if !s.rule.MatchString(m) {
			s.flagged = append(s.flagged, m)
		}
	}
	s.stats.Accepted += int64(len(ids))
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		Received bool     `json:"received"`
		EventIDs []string `json:"event_ids"`
	}{true, ids})
}
