package sekoia

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/park"

	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/secret"
)

var update = flag.Bool("update", false, "rewrite golden files")

const testKey = "INTAKE-KEY-0123456789abcdef"

func testConfig(base string, edit func(*Config)) Config {
	c := Config{IntakeKey: secret.New(testKey), URL: base}
	if edit != nil {
		edit(&c)
	}
	c.SetDefaults()
	return c
}

// fixtures returns the test events: the compact fixtures, plus the same
// events pretty-printed as a provider could serve them.
func fixtures(t testing.TB) []event.Raw {
	t.Helper()
	b, err := os.ReadFile("testdata/events.json")
	if err != nil {
		t.Fatal(err)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		t.Fatal(err)
	}
	var out []event.Raw
	for i, r := range raws {
		out = append(out, event.Raw{Source: "ca", Provider: "cyberark", ID: fmt.Sprintf("t/%d", i), Data: r})
		var pretty bytes.Buffer
		json.Indent(&pretty, r, "", "  ")
		out = append(out, event.Raw{Source: "ca", Provider: "cyberark", ID: fmt.Sprintf("t/pretty-%d", i), Data: pretty.Bytes()})
	}
	return out
}

func newTestSink(t testing.TB, base string, edit func(*Config), log *slog.Logger) *Sink {
	t.Helper()
	s, err := New(testConfig(base, edit), Options{Logger: log, Park: park.New(filepath.Join(t.TempDir(), "parked.ndjson"))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func serve(t testing.TB, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestGoldenRequestBody(t *testing.T) {
	for _, compression := range []string{CompressionNone, CompressionGzip} {
		t.Run(compression, func(t *testing.T) {
			var got []byte
			base := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var body io.Reader = r.Body
				if r.Header.Get("Content-Encoding") == "gzip" {
					zr, err := gzip.NewReader(r.Body)
					if err != nil {
						t.Error(err)
						return
					}
					body = zr
				} else if compression == CompressionGzip {
					t.Error("no Content-Encoding: gzip")
				}
				got, _ = io.ReadAll(body)
				if r.URL.Path != "/batch" || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("%s %s %s", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
				}
				io.WriteString(w, `{"received":true,"event_ids":["a","b","c","d","e","f"]}`)
			}))
			s := newTestSink(t, base, func(c *Config) { c.Compression = compression }, nil)
			if err := s.Send(context.Background(), fixtures(t)); err != nil {
				t.Fatal(err)
			}
			golden := "testdata/batch.golden.json"
			if *update && compression == CompressionNone {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("body differs from %s:\n got %s\nwant %s", golden, got, want)
			}
		})
	}
}

// TestCompatibility checks every message sent against what the Sekoia
// parser takes: one line, a JSON object, byte for byte the provider's event
// after compaction, keys in order and values unchanged.
func TestCompatibility(t *testing.T) {
	emu := emulator.NewSekoia(emulator.SekoiaOptions{}, testKey)
	s := newTestSink(t, serve(t, emu), nil, nil)
	evs := fixtures(t)
	if err := s.Send(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	msgs := emu.Messages(testKey)
	if len(msgs) != len(evs) {
		t.Fatalf("%d messages, want %d", len(msgs), len(evs))
	}
	rule := regexp.MustCompile(emulator.SekoiaInputRule)
	for i, m := range msgs {
		var c bytes.Buffer
		if err := json.Compact(&c, evs[i].Data); err != nil {
			t.Fatalf("fixture %d: %v", i, err)
		}
		if m != c.String() {
			t.Errorf("message %d is not the compacted event:\n got %s\nwant %s", i, m, c.String())
		}
		if strings.ContainsAny(m, "\r\n") || !rule.MatchString(m) {
			t.Errorf("message %d would not be parsed: %q", i, m)
		}
		var got, want any
		if err := json.Unmarshal([]byte(m), &got); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if err := json.Unmarshal(evs[i].Data, &want); err != nil {
			t.Fatalf("fixture %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("message %d values changed", i)
		}
		if keys(t, m) != keys(t, string(evs[i].Data)) {
			t.Errorf("message %d key order changed", i)
		}
	}
	if f := emu.Flagged(); len(f) != 0 {
		t.Errorf("the emulator flagged %d messages", len(f))
	}
}

// keys lists an object's top-level keys in order.
func keys(t *testing.T, s string) string {
	d := json.NewDecoder(strings.NewReader(s))
	d.Token()
	var out []string
	for d.More() {
		k, _ := d.Token()
		out = append(out, k.(string))
		var skip json.RawMessage
		d.Decode(&skip)
	}
	return strings.Join(out, ",")
}

func bigEvent(id string, n int) event.Raw {
	return event.Raw{Source: "ca", ID: id, Data: json.RawMessage(`{"uuid":"` + id + `","pad":"` + strings.Repeat("x", n) + `"}`)}
}

func smallEvents(n int) []event.Raw {
	var out []event.Raw
	for i := range n {
		id := fmt.Sprintf("e%05d", i)
		out = append(out, event.Raw{Source: "ca", ID: id, Data: json.RawMessage(`{"uuid":"` + id + `","timestamp":1739269449904}`)})
	}
	return out
}

func TestOversizedEventParked(t *testing.T) {
	emu := emulator.NewSekoia(emulator.SekoiaOptions{}, testKey)
	var logs bytes.Buffer
	s := newTestSink(t, serve(t, emu), nil, slog.New(slog.NewTextHandler(&logs, nil)))
	batch := smallEvents(10)
	batch = append(batch[:5], append([]event.Raw{bigEvent("huge", 260_000)}, batch[5:]...)...)
	if err := s.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if got := len(emu.Messages(testKey)); got != 10 {
		t.Errorf("%d messages delivered, want the 10 neighbours", got)
	}
	if st := s.Stats(); st.Parked != 1 || st.Sent != 10 || st.Requests != 1 {
		t.Errorf("stats %+v, want 1 parked, 10 sent in 1 request", st)
	}
	if b, _ := os.ReadFile(s.keeper.Where()); !strings.Contains(string(b), `"id":"huge"`) {
		t.Errorf("park file does not hold the event")
	}
	if !strings.Contains(logs.String(), "id=huge") {
		t.Errorf("the parked event's id is not logged: %s", logs.String())
	}
}

func TestBisectOn413(t *testing.T) {
	// The emulated intake refuses events over 1000 bytes, so the sink's own
	// limit does not catch it: only the 413 does.
	emu := emulator.NewSekoia(emulator.SekoiaOptions{MaxEvent: 1000}, testKey)
	s := newTestSink(t, serve(t, emu), nil, nil)
	batch := smallEvents(16)
	batch[11] = bigEvent("too-big", 2000)
	if err := s.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if got := len(emu.Messages(testKey)); got != 15 {
		t.Errorf("%d delivered, want 15", got)
	}
	st := s.Stats()
	if st.Parked != 1 || st.Splits != 4 || st.Sent != 15 {
		t.Errorf("stats %+v, want 1 parked after 4 splits", st)
	}
}

func TestBatchBoundsAndRetryWithoutDuplicates(t *testing.T) {
	emu := emulator.NewSekoia(emulator.SekoiaOptions{}, testKey)
	var n atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 2 {
			http.Error(w, `{"message":"upstream"}`, http.StatusBadGateway)
			return
		}
		emu.ServeHTTP(w, r)
	})
	s := newTestSink(t, serve(t, h), func(c *Config) { c.BatchSize = 1000 }, nil)
	batch := smallEvents(3000)
	err := s.Send(context.Background(), batch)
	if c, _ := delivery.ClassOf(err); err == nil || c != delivery.Transient {
		t.Fatalf("err = %v, want transient", err)
	}
	if err := s.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	msgs := emu.Messages(testKey)
	seen := map[string]bool{}
	for _, m := range msgs {
		if seen[m] {
			t.Fatalf("duplicate message %s", m)
		}
		seen[m] = true
	}
	if len(msgs) != 3000 || n.Load() != 4 {
		t.Errorf("%d messages in %d requests, want 3000 in 4", len(msgs), n.Load())
	}
	// Bytes bound: 100 events of ~200KB fit 4MiB 20 at a time.
	emu2 := emulator.NewSekoia(emulator.SekoiaOptions{}, testKey)
	s2 := newTestSink(t, serve(t, emu2), nil, nil)
	var big []event.Raw
	for i := range 100 {
		big = append(big, bigEvent(fmt.Sprint(i), 200_000))
	}
	if err := s2.Send(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	if st := s2.Stats(); st.Requests != 5 || st.Sent != 100 {
		t.Errorf("stats %+v, want 100 events in 5 requests", st)
	}
}

func TestErrorClassesAndKeyNeverShown(t *testing.T) {
	emu := emulator.NewSekoia(emulator.SekoiaOptions{}, "other-key")
	base := serve(t, emu)
	echo := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusBadRequest)
		w.Write(b) // an answer echoing the request, key included
	}))
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	for _, tc := range []struct {
		name  string
		base  string
		edit  func(*Config)
		class delivery.Class
		fix   string
	}{
		{"bad key", base, nil, delivery.Permanent, fixKey},
		{"wrong url", base + "/nothing", nil, delivery.Permanent, fixURL},
		{"echo", echo, func(c *Config) { c.Compression = CompressionNone }, delivery.Permanent, ""},
	} {
		s := newTestSink(t, tc.base, tc.edit, log)
		err := s.Send(context.Background(), smallEvents(3))
		var e *delivery.Error
		if !errors.As(err, &e) || e.Class != tc.class || e.Fix != tc.fix {
			t.Errorf("%s: err = %v, want %v %q", tc.name, err, tc.class, tc.fix)
		}
		if err != nil && strings.Contains(err.Error(), testKey) {
			t.Errorf("%s: error shows the key: %v", tc.name, err)
		}
		if cerr := s.Check(context.Background()); cerr == nil {
			t.Errorf("%s: Check passed", tc.name)
		}
	}
	for _, ua := range emu.UserAgents() {
		if strings.Contains(ua, testKey) || ua != httpx.UserAgent {
			t.Errorf("User-Agent %q", ua)
		}
	}
	if strings.Contains(logs.String(), testKey) {
		t.Error("logs show the key")
	}
	if s := fmt.Sprintf("%+v %v", testConfig("", nil), testConfig("", nil)); strings.Contains(s, testKey) {
		t.Error("config prints the key")
	}

	emu.SetFaults(emulator.SekoiaFaults{Throttle: 1})
	s := newTestSink(t, base, func(c *Config) { c.IntakeKey = secret.New("other-key") }, nil)
	if err := s.Check(context.Background()); err == nil {
		t.Error("Check passed while throttled")
	}
	err := s.Send(context.Background(), smallEvents(1))
	if c, ra := delivery.ClassOf(err); c != delivery.Throttled || ra != 2*time.Second {
		t.Errorf("429: %v %v %v", err, c, ra)
	}
	emu.SetFaults(emulator.SekoiaFaults{ServerError: 1})
	if c, _ := delivery.ClassOf(s.Send(context.Background(), smallEvents(1))); c != delivery.Transient {
		t.Errorf("5xx: %v", c)
	}
	emu.SetFaults(emulator.SekoiaFaults{})
	if err := s.Check(context.Background()); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// handlerTransport serves requests in memory, for synctest bubbles.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// TestOneHourOutage sends through an hour-long intake outage, retrying as
// the pipeline does: nothing is dropped, nothing duplicated.
func TestOneHourOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		emu := emulator.NewSekoia(emulator.SekoiaOptions{}, testKey)
		start := time.Now()
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if time.Since(start) < time.Hour {
				emu.SetDown(true)
			} else {
				emu.SetDown(false)
			}
			emu.ServeHTTP(w, r)
		})
		s, err := New(testConfig("https://intake.example", nil), Options{HTTPClient: &http.Client{Transport: handlerTransport{h}}})
		if err != nil {
			t.Fatal(err)
		}
		backoff := delivery.Backoff{Base: time.Second, Max: time.Minute}
		all := smallEvents(5000)
		failures := 0
		for i := 0; i < len(all); i += 1000 {
			batch := all[i : i+1000]
			for attempt := 1; ; attempt++ {
				err := s.Send(context.Background(), batch)
				if err == nil {
					break
				}
				if delivery.IsPermanent(err) {
					t.Fatalf("permanent error during the outage: %v", err)
				}
				failures++
				time.Sleep(backoff.Wait(err, attempt))
			}
		}
		if el := time.Since(start); el < time.Hour || el > time.Hour+2*time.Minute {
			t.Errorf("delivered after %v, want just after the hour", el)
		}
		msgs := emu.Messages(testKey)
		seen := map[string]bool{}
		for _, m := range msgs {
			seen[m] = true
		}
		if len(msgs) != 5000 || len(seen) != 5000 || failures < 60 {
			t.Errorf("%d messages (%d distinct) after %d failures", len(msgs), len(seen), failures)
		}
	})
}

func TestRegions(t *testing.T) {
	for region, want := range map[string]string{
		"":     "https://intake.sekoia.io/batch",
		"fra2": "https://intake.fra2.sekoia.io/api/v1/intake-http/batch",
		"USA1": "https://intake.usa1.sekoia.io/api/v1/intake-http/batch",
	} {
		c := Config{IntakeKey: secret.New("k"), Region: region}
		c.SetDefaults()
		s, err := New(c, Options{})
		if err != nil || s.url != want {
			t.Errorf("region %q: %v %s, want %s", region, err, s.url, want)
		}
	}
	c := Config{IntakeKey: secret.New("k"), Region: "MARS", URL: "http://example.com"}
	c.SetDefaults()
	if errs := c.Validate(); len(errs) != 2 {
		t.Errorf("errors %v, want region and url", errs)
	}
}

func BenchmarkEncode(b *testing.B) {
	g := emulator.NewCyberArkGenerator(1)
	batch := make([]event.Raw, 1000)
	for i := range batch {
		e := g.Event("t", time.Unix(1772971200, 0))
		batch[i] = event.Raw{Source: "ca", ID: e.UUID, Data: e.JSON}
	}
	var enc encoder
	quoted := make([][]byte, len(batch))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for i := range batch {
			m, err := enc.message(batch[i].Data)
			if err != nil {
				b.Fatal(err)
			}
			quoted[i] = event.AppendJSONBytes(quoted[i][:0], m)
		}
		if _, err := enc.batchBody(testKey, quoted, true); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
}

// TestSendFinishesOnShutdown cancels the context while a batch is in
// flight: the batch is finished and acknowledged, not abandoned to be sent
// again after the restart.
func TestSendFinishesOnShutdown(t *testing.T) {
	emu := emulator.NewSekoia(emulator.SekoiaOptions{}, testKey)
	arrived, release := make(chan struct{}), make(chan struct{})
	base := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		emu.ServeHTTP(w, r)
	}))
	s := newTestSink(t, base, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Send(ctx, smallEvents(10)) }()
	<-arrived
	cancel()
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Send = %v, want the in-flight batch finished", err)
	}
	if n := len(emu.Messages(testKey)); n != 10 {
		t.Errorf("%d messages", n)
	}
	if err := s.Send(ctx, smallEvents(3)); err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("Send after cancel = %v, want context.Canceled without a request", err)
	}
	if n := emu.Stats().Requests; n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}
