package splunk

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/httpx/httpxtest"
	"github.com/auditrelay/auditrelay/internal/park"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/units"
)

const testToken = "1b2c3d4e-5f60-4718-a9b0-c1d2e3f4a5b6"

func events(n int) []event.Raw {
	out := make([]event.Raw, n)
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for i := range out {
		id := fmt.Sprintf("ev-%04d", i)
		out[i] = event.Raw{Source: "pingone-eu", Provider: "pingone", Tenant: "env-1", ID: id,
			Time: t0.Add(time.Duration(i) * time.Second), Data: json.RawMessage(`{"id":"` + id + `","action":{"type":"USER.UPDATED"}}`)}
	}
	return out
}

type harness struct {
	emu  *emulator.Splunk
	sink *Sink
	logs *bytes.Buffer
	park *park.File
	dir  string
}

// newHarness serves an emulator with one token (ack as given) and returns
// a sink on it; inside a synctest bubble it uses an in-memory network.
func newHarness(t *testing.T, bubble bool, tok emulator.SplunkToken, mod func(*Config)) *harness {
	t.Helper()
	tok.Token = testToken
	emu := emulator.NewSplunk(emulator.SplunkOptions{}, tok)
	cfg := Config{Token: secret.New(testToken), Index: "identity"}
	if mod != nil {
		mod(&cfg)
	}
	h := &harness{emu: emu, logs: &bytes.Buffer{}, dir: t.TempDir()}
	var opts Options
	if bubble {
		cfg.URL, opts.HTTPClient = httpxtest.ServePipe(t, emu, 30*time.Second)
	} else {
		srv := httptest.NewServer(emu)
		t.Cleanup(srv.Close)
		cfg.URL, opts.HTTPClient = srv.URL, srv.Client()
	}
	cfg.SetDefaults()
	h.park = park.New(filepath.Join(h.dir, "parked.ndjson"))
	opts.Park, opts.StateDir, opts.Host = h.park, filepath.Join(h.dir, "state"), "relay-1"
	opts.Logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close(context.Background())
		if strings.Contains(h.logs.String(), testToken) {
			t.Errorf("the token appears in the logs:\n%s", h.logs)
		}
	})
	h.sink = s
	return h
}

func checkExactlyOnce(t *testing.T, emu *emulator.Splunk, want []event.Raw, skip map[string]bool) {
	t.Helper()
	ids := emu.IDs()
	for _, ev := range want {
		n := ids[ev.ID]
		if skip[ev.ID] {
			if n != 0 {
				t.Errorf("%s indexed %d times, want parked", ev.ID, n)
			}
			continue
		}
		if n != 1 {
			t.Errorf("%s indexed %d times, want 1", ev.ID, n)
		}
	}
}

// TestSendWithoutAck: code 0 is done, envelopes carry the metadata.
func TestSendWithoutAck(t *testing.T) {
	off := false
	h := newHarness(t, false, emulator.SplunkToken{}, func(c *Config) { c.Ack = &off; c.BatchSize = 3 })
	batch := events(10)
	if err := h.sink.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, h.emu, batch, nil)
	if st := h.emu.Stats(); st.Requests != 4 || st.Gzip != 4 {
		t.Errorf("emulator stats = %+v, want 4 gzipped requests of at most 3 events", st)
	}
	e := h.emu.Events()[0]
	if e.Index != "identity" || e.Sourcetype != "pingone:audit" || e.Source != "env-1" || e.Host != "relay-1" ||
		e.Time.String() != "1796119200.000" || e.Channel != "" {
		t.Errorf("first event = %+v", e)
	}
	if st := h.sink.Stats(); st.Sent != 10 || st.AckPolls != 0 {
		t.Errorf("sink stats = %+v", st)
	}
}

// TestAckTrueAfterDelay: Send returns only once the ackId turned true.
func TestAckTrueAfterDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, true, emulator.SplunkToken{Ack: true}, func(c *Config) { c.BatchSize = 4 })
		h.emu.SetAckDelay(25 * time.Second)
		batch := events(10)
		start := time.Now()
		if err := h.sink.Send(t.Context(), batch); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 25*time.Second || d > 40*time.Second {
			t.Errorf("Send took %v, want just over the 25s ack delay", d)
		}
		checkExactlyOnce(t, h.emu, batch, nil)
		st := h.sink.Stats()
		if st.Sent != 10 || st.AckTimeouts != 0 || st.AckPolls < 3 {
			t.Errorf("sink stats = %+v, want 10 sent after several polls", st)
		}
		if es := h.emu.Stats(); es.AcksTrue != 3 {
			t.Errorf("emulator acks true = %d, want 3 (one per request)", es.AcksTrue)
		}
		for _, e := range h.emu.Events() {
			if e.Channel != h.sink.Channel() {
				t.Fatalf("event on channel %q, sink channel %q", e.Channel, h.sink.Channel())
			}
		}
	})
}

// TestAckNeverResends: an ackId still false after ack_timeout is sent
// again, and the batch is done once the new one is true.
func TestAckNeverResends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, true, emulator.SplunkToken{Ack: true}, func(c *Config) { c.AckTimeout = units.Duration(time.Minute) })
		h.emu.SetAckNever(true)
		batch := events(5)
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- h.sink.Send(t.Context(), batch) }()
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if n := h.emu.Stats().Requests; n != 1 {
			t.Fatalf("%d requests before ack_timeout, want 1", n)
		}
		h.emu.SetAckNever(false)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < time.Minute {
			t.Errorf("Send returned after %v, before ack_timeout", d)
		}
		st := h.sink.Stats()
		if st.AckTimeouts != 1 || st.Requests != 2 || st.Sent != 5 {
			t.Errorf("sink stats = %+v, want one re-send after ack_timeout", st)
		}
		for id, n := range h.emu.IDs() {
			if n != 2 {
				t.Errorf("%s indexed %d times, want 2 (the lost ack and the re-send)", id, n)
			}
		}
		if !strings.Contains(h.logs.String(), "ackId still false after ack_timeout") {
			t.Errorf("no warning about the re-send in the logs:\n%s", h.logs)
		}
	})
}

// TestPoisonParked: refused events are found through
// invalid-event-number, parked one by one, and the rest indexed once.
func TestPoisonParked(t *testing.T) {
	h := newHarness(t, false, emulator.SplunkToken{}, func(c *Config) { off := false; c.Ack = &off })
	batch := events(20)
	batch[19].Data = json.RawMessage(`"a string is no envelope event here"`)
	h.emu.Poison("ev-0003", "ev-0011")
	if err := h.sink.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	skip := map[string]bool{"ev-0003": true, "ev-0011": true, "ev-0019": true}
	checkExactlyOnce(t, h.emu, batch, skip)
	if st := h.sink.Stats(); st.Parked != 3 || st.Sent != 17 || st.Requests != 3 {
		t.Errorf("sink stats = %+v, want 3 parked, 17 sent in 3 requests", st)
	}
	f, err := os.Open(h.park.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var parked []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l struct {
			ID     string `json:"id"`
			Reason string `json:"parked_reason"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		parked = append(parked, l.ID)
		if l.Reason == "" {
			t.Errorf("%s parked without a reason", l.ID)
		}
	}
	if strings.Join(parked, ",") != "ev-0019,ev-0003,ev-0011" {
		t.Errorf("parked %v", parked)
	}
}

// TestTooLargeSplits: a 413 splits the request; an event HEC cannot take
// alone is parked.
func TestTooLargeSplits(t *testing.T) {
	h := newHarness(t, false, emulator.SplunkToken{}, func(c *Config) { off := false; c.Ack = &off })
	h.emu.FailNext(emulator.SplunkFault{Status: 413, Code: -1})
	batch := events(8)
	if err := h.sink.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, h.emu, batch, nil)
	if st := h.sink.Stats(); st.Splits != 1 || st.Requests != 3 {
		t.Errorf("sink stats = %+v, want one split into 2 requests", st)
	}
}

// TestCodeClasses: every HEC code Send can meet ends in its class, with
// Retry-After kept, the fix named, and never the token.
func TestCodeClasses(t *testing.T) {
	tests := []struct {
		name  string
		fault emulator.SplunkFault
		class delivery.Class
		fix   string
		ra    time.Duration
	}{
		{"disabled", emulator.SplunkFault{Status: 403, Code: 1, Text: "Token disabled"}, delivery.Permanent, fixTokenDisabled, 0},
		{"invalid", emulator.SplunkFault{Status: 403, Code: 4, Text: "Invalid token " + testToken}, delivery.Permanent, fixToken, 0},
		{"index", emulator.SplunkFault{Status: 400, Code: 7, Text: "Incorrect index"}, delivery.Permanent, fixIndex, 0},
		{"internal", emulator.SplunkFault{Status: 500, Code: 8, Text: "Internal server error"}, delivery.Transient, "", 0},
		{"busy", emulator.SplunkFault{Status: 503, Code: 9, Text: "Server is busy", RetryAfter: 7}, delivery.Throttled, "", 7 * time.Second},
		{"queues", emulator.SplunkFault{Status: 503, Code: 18, Text: "HEC is unhealthy", RetryAfter: 3}, delivery.Throttled, "", 3 * time.Second},
		{"429", emulator.SplunkFault{Status: 429, Code: -1, RetryAfter: 11}, delivery.Throttled, "", 11 * time.Second},
		{"502", emulator.SplunkFault{Status: 502, Code: -1}, delivery.Transient, "", 0},
		{"channel", emulator.SplunkFault{Status: 400, Code: 10, Text: "Data channel is missing"}, delivery.Permanent, fixChannel, 0},
		{"query", emulator.SplunkFault{Status: 400, Code: 16, Text: "Query string authorization is not enabled"}, delivery.Permanent, fixQuery, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			off := false
			h := newHarness(t, false, emulator.SplunkToken{}, func(c *Config) { c.Ack = &off })
			h.emu.FailNext(tt.fault)
			err := h.sink.Send(context.Background(), events(2))
			var he *delivery.Error
			if !errors.As(err, &he) {
				t.Fatalf("Send = %v, want an *delivery.Error", err)
			}
			if he.Class != tt.class || he.Fix != tt.fix || he.RetryAfter != tt.ra {
				t.Errorf("Send = %v (class %v, fix %q, retry-after %v), want %v, %q, %v", err, he.Class, he.Fix, he.RetryAfter, tt.class, tt.fix, tt.ra)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("the token appears in the error: %v", err)
			}
			// The batch goes through once HEC is back.
			if err := h.sink.Send(context.Background(), events(2)); err != nil {
				t.Fatalf("second Send = %v", err)
			}
		})
	}
}

// TestTokenErrors: the emulator's own refusals of a token or an index.
func TestTokenErrors(t *testing.T) {
	tests := []struct {
		name string
		tok  emulator.SplunkToken
		mod  func(*Config)
		fix  string
	}{
		{"unknown", emulator.SplunkToken{}, func(c *Config) { c.Token = secret.New("00000000-0000-4000-8000-000000000000") }, fixToken},
		{"disabled", emulator.SplunkToken{Disabled: true}, nil, fixTokenDisabled},
		{"index", emulator.SplunkToken{Indexes: []string{"main"}}, nil, fixIndex},
		{"ack off on token", emulator.SplunkToken{}, nil, fixAckDisabled},
		{"ack on token, off here", emulator.SplunkToken{Ack: true}, func(c *Config) { off := false; c.Ack = &off }, fixChannel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, false, tt.tok, tt.mod)
			err := h.sink.Send(context.Background(), events(1))
			var he *delivery.Error
			if !errors.As(err, &he) || he.Class != delivery.Permanent || he.Fix != tt.fix {
				t.Fatalf("Send = %v, want permanent with fix %q", err, tt.fix)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("the token appears in the error: %v", err)
			}
			cerr := h.sink.Check(context.Background())
			if tt.name != "index" && !delivery.IsPermanent(cerr) {
				t.Errorf("Check = %v, want a permanent error", cerr)
			}
		})
	}
}

// TestCheck proves a good token with and without ack.
func TestCheck(t *testing.T) {
	for _, ack := range []bool{true, false} {
		h := newHarness(t, false, emulator.SplunkToken{Ack: ack}, func(c *Config) { c.Ack = &ack })
		if err := h.sink.Check(context.Background()); err != nil {
			t.Errorf("Check (ack %v) = %v", ack, err)
		}
		if h.emu.Stats().Indexed != 0 {
			t.Errorf("Check indexed events")
		}
	}
	h := newHarness(t, false, emulator.SplunkToken{Ack: true}, nil)
	h.emu.SetDown(true)
	if err := h.sink.Check(context.Background()); err == nil || delivery.IsPermanent(err) {
		t.Errorf("Check on an unhealthy HEC = %v, want a retryable error", err)
	}
}

// TestChannelKept: a restarted sink reuses the stored channel GUID.
func TestChannelKept(t *testing.T) {
	h := newHarness(t, false, emulator.SplunkToken{Ack: true}, nil)
	if err := h.sink.Send(context.Background(), events(1)); err != nil {
		t.Fatal(err)
	}
	ch := h.sink.Channel()
	b, err := os.ReadFile(ChannelPath(filepath.Join(h.dir, "state")))
	if err != nil || strings.TrimSpace(string(b)) != ch || !guidRE.MatchString(ch) {
		t.Fatalf("channel file = %q, %v; sink channel %q", b, err, ch)
	}
	cfg := h.sink.cfg
	s2, err := New(cfg, Options{HTTPClient: h.sink.http, StateDir: filepath.Join(h.dir, "state")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Send(context.Background(), events(2)[1:]); err != nil {
		t.Fatal(err)
	}
	if s2.Channel() != ch {
		t.Errorf("restarted sink channel %q, want %q", s2.Channel(), ch)
	}
}

// TestLongOutage: six hours of 503 under a pipeline-like retry loop, then
// every event indexed exactly once.
func TestLongOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, true, emulator.SplunkToken{Ack: true}, func(c *Config) { c.BatchSize = 50 })
		h.emu.SetDown(true)
		h.emu.SetAckDelay(2 * time.Second)
		batch := events(200)
		done := make(chan int, 1)
		go func() {
			b := delivery.Backoff{Base: time.Second, Max: 5 * time.Minute}
			for attempt := 1; ; attempt++ {
				err := h.sink.Send(t.Context(), batch)
				if err == nil {
					done <- attempt
					return
				}
				if delivery.IsPermanent(err) {
					t.Errorf("permanent error during an outage: %v", err)
					done <- attempt
					return
				}
				delivery.Sleep(t.Context(), b.Wait(err, attempt))
			}
		}()
		time.Sleep(6 * time.Hour)
		h.emu.SetDown(false)
		attempts := <-done
		checkExactlyOnce(t, h.emu, batch, nil)
		if attempts < 10 {
			t.Errorf("%d attempts in 6 hours", attempts)
		}
		if st := h.sink.Stats(); st.Sent != 200 {
			t.Errorf("sink stats = %+v", st)
		}
	})
}

// TestConfigValidate reports each bad key.
func TestConfigValidate(t *testing.T) {
	c := Config{URL: "http://splunk.example.com:8088/services/collector", MaxRequestBytes: 10, AckTimeout: units.Duration(time.Second)}
	c.SetDefaults()
	var got []string
	for _, e := range c.Validate() {
		got = append(got, strings.SplitN(e.Error(), ":", 2)[0])
	}
	if strings.Join(got, ",") != "url,token,ack_timeout,max_request_bytes" {
		t.Errorf("Validate keys = %v", got)
	}
	ok := Config{URL: "https://splunk.example.com:8088", Token: secret.New(testToken)}
	ok.SetDefaults()
	if errs := ok.Validate(); len(errs) != 0 || !ok.AckEnabled() || ok.BatchSize != 1000 {
		t.Errorf("defaults: %v %+v", errs, ok)
	}
}

// restart returns a new sink on h's emulator and state directory, as the
// next process after a crash makes it.
func (h *harness) restart(t *testing.T) *Sink {
	t.Helper()
	s, err := New(h.sink.cfg, Options{HTTPClient: h.sink.http, StateDir: filepath.Join(h.dir, "state"), Park: h.park,
		Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRestartPollsRecordedAcks: a process that dies between sending and
// the ack leaves its ackIds recorded; the next one polls them for the same
// batch and sends nothing again.
func TestRestartPollsRecordedAcks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, true, emulator.SplunkToken{Ack: true}, func(c *Config) { c.BatchSize = 4 })
		h.emu.SetAckDelay(time.Minute)
		batch := events(10)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- h.sink.Send(ctx, batch) }()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if n := h.emu.Stats().Requests; n != 3 {
			t.Fatalf("%d requests sent, want 3", n)
		}
		cancel() // the process stops without its acks
		if err := <-done; err == nil {
			t.Fatal("Send returned nil without its acks")
		}
		b, err := os.ReadFile(PendingPath(filepath.Join(h.dir, "state")))
		if err != nil || !bytes.Contains(b, []byte(`"ack_id":2`)) || bytes.Contains(b, []byte(`"acked":true`)) {
			t.Fatalf("pending file = %s, %v; want the three ackIds, none acked", b, err)
		}
		s2 := h.restart(t)
		start := time.Now()
		if err := s2.Send(t.Context(), batch); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > time.Minute {
			t.Errorf("the restarted Send took %v, more than the ack delay", d)
		}
		checkExactlyOnce(t, h.emu, batch, nil)
		if st := s2.Stats(); st.Requests != 0 || st.ResumedAcks != 10 || st.Sent != 10 || st.AckPolls == 0 {
			t.Errorf("restarted sink stats = %+v, want 10 events acknowledged by polling, none sent", st)
		}
		if !strings.Contains(h.logs.String(), "resuming the acknowledgments of an earlier run") {
			t.Errorf("no log line about the resumed acks:\n%s", h.logs)
		}
	})
}

// TestRestartAfterAckBeforeCommit: a process that dies after the ack but
// before the pipeline committed the batch's offset gets the batch again;
// the next process sends none of it, and then forgets it.
func TestRestartAfterAckBeforeCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, true, emulator.SplunkToken{Ack: true}, func(c *Config) { c.BatchSize = 10 })
		h.emu.SetAckDelay(time.Second)
		all := events(30)
		if err := h.sink.Send(t.Context(), all[:10]); err != nil {
			t.Fatal(err)
		}
		s2 := h.restart(t)
		// the spool hands the same events again, in smaller batches
		for _, b := range [][]event.Raw{all[:4], all[4:8], all[8:10]} {
			if err := s2.Send(t.Context(), b); err != nil {
				t.Fatal(err)
			}
		}
		if st := s2.Stats(); st.Requests != 0 || st.AckPolls != 0 || st.ResumedAcks != 10 {
			t.Errorf("restarted sink stats = %+v, want the 10 events acknowledged from the record, no request", st)
		}
		if err := s2.Send(t.Context(), all[10:20]); err != nil {
			t.Fatal(err)
		}
		if err := s2.Send(t.Context(), all[20:]); err != nil {
			t.Fatal(err)
		}
		checkExactlyOnce(t, h.emu, all, nil)
		var f pendingFile
		b, _ := os.ReadFile(PendingPath(filepath.Join(h.dir, "state")))
		if err := json.Unmarshal(b, &f); err != nil || len(f.Requests) != 1 || !f.Requests[0].Acked || len(f.Requests[0].Events) != 10 ||
			!strings.HasSuffix(f.Requests[0].Events[0], "ev-0020") {
			t.Errorf("pending file = %s, %v; want only the last batch, acknowledged", b, err)
		}
	})
}

// TestPendingFileOfAnotherChannel: a record that does not belong to the
// channel, or is not JSON, is ignored with a warning: the events are sent.
func TestPendingFileOfAnotherChannel(t *testing.T) {
	for name, content := range map[string]string{
		"other channel": `{"channel":"00000000-0000-4000-8000-000000000000","requests":[{"ack_id":0,"acked":true,"events":["pingone-eu\u0000ev-0000"]}]}`,
		"not json":      `{"channel":`,
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, false, emulator.SplunkToken{Ack: true}, nil)
			state := filepath.Join(h.dir, "state")
			os.MkdirAll(state, 0o750)
			os.WriteFile(ChannelPath(state), []byte("6f9619ff-8b86-4011-b42d-00c04fc964ff\n"), 0o600)
			os.WriteFile(PendingPath(state), []byte(content), 0o600)
			batch := events(3)
			if err := h.sink.Send(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			checkExactlyOnce(t, h.emu, batch, nil)
			if st := h.sink.Stats(); st.ResumedAcks != 0 || st.Sent != 3 {
				t.Errorf("stats = %+v", st)
			}
			if !strings.Contains(h.logs.String(), "are sent again") {
				t.Errorf("no warning in the logs:\n%s", h.logs)
			}
		})
	}
}
