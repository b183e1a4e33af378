package sentinel

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/event"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGoldenBodies sends the fixtures in each format and compares the
// request body with testdata/<format>.golden, one row per line.
func TestGoldenBodies(t *testing.T) {
	for _, format := range Formats() {
		t.Run(format, func(t *testing.T) {
			r := newRig(t, format, emulator.SentinelOptions{}, nil)
			batch := fixturesFor(t, format)
			if err := r.sink.Send(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			ups := r.tr.uploads()
			if len(ups) != 1 {
				t.Fatalf("%d calls, want 1", len(ups))
			}
			up := ups[0]
			wantURL := testBase + "/dataCollectionRules/" + testDCR + "/streams/" + r.cfg.Stream + "?api-version=2023-01-01"
			if up.method != "POST" || up.url != wantURL {
				t.Errorf("request %s %s, want POST %s", up.method, up.url, wantURL)
			}
			for k, want := range map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"} {
				if got := up.header.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
			if !strings.HasPrefix(up.header.Get("Authorization"), "Bearer ") {
				t.Errorf("Authorization %q", up.header.Get("Authorization"))
			}
			if id := up.header.Get("x-ms-client-request-id"); !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) {
				t.Errorf("x-ms-client-request-id %q is not a UUID", id)
			}
			body := gunzip(t, up.body)
			var rows []json.RawMessage
			if err := json.Unmarshal(body, &rows); err != nil {
				t.Fatalf("body is not a JSON array: %v", err)
			}
			// One row per line for a readable golden file; the bytes of
			// each row are exactly what was sent.
			got := []byte(string(body[:1]) + "\n")
			for i, row := range rows {
				got = append(got, row...)
				if i < len(rows)-1 {
					got = append(got, ',')
				}
				got = append(got, '\n')
			}
			got = append(got, "]\n"...)
			if want := len(body); len(got)-len(rows)-2 != want {
				t.Fatalf("rows do not account for the body: %d vs %d", len(got)-len(rows)-2, want)
			}
			golden := filepath.Join("testdata", format+".golden")
			if *update {
				// Only the comparison is skipped: the checks below
				// still run.
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if diff := cmp.Diff(string(want), string(got)); diff != "" {
					t.Errorf("body (-want +got):\n%s", diff)
				}
			}
			want := len(batch)
			if format == FormatASIMAudit || format == FormatASIMAuthentication {
				// Each ASIM format takes the rows of its schema; the
				// other format takes the rest.
				want -= int(r.sink.Stats().Filtered)
				if f := r.sink.Stats().Filtered; f == 0 || f == int64(len(batch)) {
					t.Errorf("%d of %d events filtered: want some of each schema", f, len(batch))
				}
			}
			if n := len(r.rows()); n != want {
				t.Errorf("%d rows ingested, want %d", n, want)
			}
			if st := r.emu.Stats(); st.Truncated != 0 {
				t.Errorf("the service truncated %d values; the sink should have", st.Truncated)
			}
		})
	}
}

// TestRowsMatchStream checks every column the encoder writes is declared
// in the format's stream, with a value of the declared type.
func TestRowsMatchStream(t *testing.T) {
	for _, format := range Formats() {
		enc := newEncoder(format, testNormalize, MaxCallBytes)
		rows, parked := enc.rows(fixturesFor(t, format), nil)
		if len(parked) != 0 {
			t.Fatalf("%s: parked %v", format, parked)
		}
		types := map[string]string{}
		for _, c := range StreamColumns(format) {
			types[c.Name] = c.Type
		}
		seen := map[string]bool{}
		for _, r := range rows {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(r.data, &m); err != nil {
				t.Fatalf("%s: row is not an object: %v", format, err)
			}
			for k, v := range m {
				seen[k] = true
				typ, ok := types[k]
				if !ok {
					t.Errorf("%s: column %q is not declared in the stream", format, k)
					continue
				}
				switch typ {
				case "string", "datetime":
					if v[0] != '"' && format == FormatAuditRelay {
						t.Errorf("%s: %s is %s, want a JSON string", format, k, v)
					}
				case "boolean":
					if string(v) != "true" && string(v) != "false" {
						t.Errorf("%s: %s is %s, want a boolean", format, k, v)
					}
				case "int", "long":
					if _, err := strconv.ParseInt(string(v), 10, 64); err != nil {
						t.Errorf("%s: %s is %s, want an integer", format, k, v)
					}
				}
			}
		}
		for name := range types {
			if !seen[name] && name != "InternalCorrelation" && name != "source" && name != "internalCorrelation" {
				t.Errorf("%s: declared column %q never written by the fixtures", format, name)
			}
		}
	}
}

// TestSplitExactlyAtTheLimit: a batch whose body is exactly the limit goes
// in one call; one byte more makes two, and no call is over the limit.
func TestSplitExactlyAtTheLimit(t *testing.T) {
	const limit = MaxCallBytes
	rowLen := func(pad int) int {
		enc := newEncoder(FormatPingOneV2, nil, limit)
		rows, _ := enc.rows(synthetic("ev", 1, pad), nil)
		return len(rows[0].data)
	}
	base := rowLen(0)
	const n = 500
	// body = 2 + n rows + (n-1) commas; the last event takes the rest.
	each := (limit - 2 - (n - 1)) / n
	last := limit - 2 - (n - 1) - each*(n-1)
	for _, extra := range []int{0, 1} {
		r := newRig(t, FormatPingOneV2, emulator.SentinelOptions{}, nil)
		batch := synthetic("ev", n, each-base)
		batch[n-1] = synthetic("ev", n, last-base+extra)[n-1]
		if err := r.sink.Send(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		ups := r.tr.uploads()
		wantCalls := 1 + extra
		if len(ups) != wantCalls {
			t.Fatalf("extra %d: %d calls, want %d", extra, len(ups), wantCalls)
		}
		total := 0
		for _, up := range ups {
			b := gunzip(t, up.body)
			if len(b) > limit || len(up.body) > limit {
				t.Errorf("a call of %d bytes (%d compressed) is over the limit", len(b), len(up.body))
			}
			total += len(b)
		}
		if extra == 0 && total != limit {
			t.Errorf("body is %d bytes, want exactly %d", total, limit)
		}
		if got := idCounts(r.rows(), "id"); len(got) != n || r.emu.Stats().TooLarge != 0 {
			t.Errorf("extra %d: %d distinct rows, want %d; %d refused as too large", extra, len(got), n, r.emu.Stats().TooLarge)
		}
	}
}

// TestSplitOn413: the service's limit is smaller than the sink's; every
// 413 splits the call until the rows fit, and a row that never fits is
// parked while the others go through.
func TestSplitOn413(t *testing.T) {
	r := newRig(t, FormatPingOneV2, emulator.SentinelOptions{MaxCallBytes: 20000}, nil)
	batch := synthetic("ev", 100, 800)
	big := synthetic("big", 1, 30000)[0]
	batch = append(batch[:50], append([]event.Raw{big}, batch[50:]...)...)
	if err := r.sink.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	got := idCounts(r.rows(), "id")
	if len(got) != 100 || got["big-000000"] != 0 {
		t.Fatalf("%d distinct rows ingested (big: %d), want the 100 small ones", len(got), got["big-000000"])
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("%s ingested %d times", id, n)
		}
	}
	st := r.sink.Stats()
	if st.Parked != 1 || st.Splits == 0 {
		t.Errorf("stats %+v: want 1 parked and some splits", st)
	}
	if !strings.Contains(r.log.String(), "big-000000") {
		t.Errorf("parked event's id not in the log:\n%s", r.log)
	}
}

// TestParking: events that cannot be encoded or are over the call limit
// on their own are parked, reported once with their id, and never block
// the events behind them.
func TestParking(t *testing.T) {
	r := newRig(t, FormatPingOneV2, emulator.SentinelOptions{}, func(c *Config) { c.MaxRequestBytes = 70000 })
	batch := synthetic("ok", 10, 10)
	bad := []event.Raw{
		{Source: "p1", Provider: "pingone", ID: "not-json", Data: json.RawMessage(`not json`)},
		{Source: "p1", Provider: "cyberark", ID: "other-provider", Data: json.RawMessage(`{"uuid":"x"}`)},
		// ten 60 KB strings: under the field limit each, over the call
		// limit together
		{Source: "p1", Provider: "pingone", ID: "huge", Data: json.RawMessage(`{"id":"huge","actors":"` + strings.Repeat("a", 60000) +
			`","source":"` + strings.Repeat("b", 60000) + `"}`)},
	}
	batch = append(append(batch[:5:5], bad...), batch[5:]...)
	ctx := context.Background()
	if err := r.sink.Send(ctx, batch); err != nil {
		t.Fatal(err)
	}
	got := idCounts(r.rows(), "id")
	if len(got) != 10 {
		t.Fatalf("ingested %v, want the 10 good events", got)
	}
	if st := r.sink.Stats(); st.Parked != 3 {
		t.Errorf("parked %d, want 3", st.Parked)
	}
	for _, id := range []string{"not-json", "other-provider", "huge"} {
		if n := strings.Count(r.log.String(), "id="+id); n != 1 {
			t.Errorf("parked %s reported %d times, want once", id, n)
		}
	}
}

// TestTruncation: values over 64 KB are cut before sending, counted, and
// dynamic values keep their structure.
func TestTruncation(t *testing.T) {
	r := newRig(t, FormatAuditRelay, emulator.SentinelOptions{}, nil)
	long := strings.Repeat("é", 50000) // 100,000 bytes
	data := `{"id":"t1","recordedAt":"2026-11-25T09:00:00.000Z","action":{"type":"USER.UPDATED","description":"` + long +
		`"},"resources":[{"type":"USER","id":"u1","name":"` + long + `"}]}`
	ev := event.Raw{Source: "p1", Provider: "pingone", ID: "t1", Data: json.RawMessage(data)}
	if err := r.sink.Send(context.Background(), []event.Raw{ev}); err != nil {
		t.Fatal(err)
	}
	rows := r.rows()
	if len(rows) != 1 {
		t.Fatalf("%d rows", len(rows))
	}
	row := rows[0]
	desc := row.String("ActionDescription")
	if len(desc) > MaxFieldBytes || len(desc) < MaxFieldBytes-1 || !strings.HasPrefix(long, desc) {
		t.Errorf("ActionDescription is %d bytes, want cut to %d on a rune boundary", len(desc), MaxFieldBytes)
	}
	var res []map[string]string
	if err := json.Unmarshal(row.Columns["Resources"], &res); err != nil || len(res) != 1 || res[0]["id"] != "u1" {
		t.Errorf("Resources lost its structure: %v %.200s", err, row.Columns["Resources"])
	}
	if len(row.Columns["Resources"]) > MaxFieldBytes {
		t.Errorf("Resources is %d bytes", len(row.Columns["Resources"]))
	}
	// Raw is over the limit too: cut, counted.
	if st := r.sink.Stats(); st.Truncated != 3 {
		t.Errorf("truncated %d values, want 3 (description, resources, raw)", st.Truncated)
	}
	if st := r.emu.Stats(); st.Truncated != 0 {
		t.Errorf("the service had to truncate %d values", st.Truncated)
	}
	if !strings.Contains(r.log.String(), "cut to 64 KB") {
		t.Error("truncation not logged")
	}
}

// TestErrors checks each refusal's class and message.
func TestErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*rig)
		mut   func(*Config)
		class delivery.Class
		want  []string
	}{
		{"no role", func(r *rig) { r.emu.Revoke(testDCR, testClient) }, nil, delivery.Permanent,
			[]string{"HTTP 403", "grant the app Monitoring Metrics Publisher on the DCR; new role assignments can take up to 30 minutes"}},
		{"unknown dcr", nil, func(c *Config) { c.DCRImmutableID = "dcr-ffffffffffffffffffffffffffffffff" }, delivery.Permanent,
			[]string{"HTTP 404", "dcr-ffffffffffffffffffffffffffffffff", DefaultStreamPingOneV2}},
		{"unknown stream", nil, func(c *Config) { c.Stream = "Custom-Nope_CL" }, delivery.Permanent,
			[]string{"HTTP 404", testDCR, "Custom-Nope_CL"}},
		{"throttled", func(r *rig) { r.emu.SetFaults(emulator.SentinelFaults{Throttle: 1, RetryAfter: 7e9}) }, nil, delivery.Throttled,
			[]string{"HTTP 429"}},
		{"unavailable", func(r *rig) { r.emu.SetDown(503) }, nil, delivery.Transient, []string{"HTTP 503"}},
		{"wrong secret", nil, func(c *Config) { c.ClientSecret = secretOf("wrong") }, delivery.Permanent,
			[]string{"invalid_client", "client_secret"}},
		{"wrong tenant", nil, func(c *Config) { c.TenantID = "00000000-0000-0000-0000-000000000000" }, delivery.Permanent,
			[]string{"AADSTS90002", "tenant_id"}},
		{"wrong cloud", nil, func(c *Config) { c.Cloud = "usgov" }, delivery.Permanent,
			[]string{"HTTP 401", "cloud"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, FormatPingOneV2, emulator.SentinelOptions{}, tt.mut)
			if tt.setup != nil {
				tt.setup(r)
			}
			err := r.sink.Send(context.Background(), synthetic("e", 3, 0))
			if err == nil {
				t.Fatal("Send succeeded")
			}
			class, ra := delivery.ClassOf(err)
			if class != tt.class {
				t.Errorf("class %v, want %v: %v", class, tt.class, err)
			}
			if tt.class == delivery.Throttled && ra.Seconds() != 7 {
				t.Errorf("Retry-After %v, want 7s", ra)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Error("the secret is in the error")
			}
			if err := r.sink.Check(context.Background()); err == nil {
				t.Error("Check succeeded")
			}
		})
	}
}

func TestCheck(t *testing.T) {
	r := newRig(t, FormatAuditRelay, emulator.SentinelOptions{}, nil)
	if err := r.sink.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	ups := r.tr.uploads()
	if len(ups) != 1 || string(ups[0].body) != "[]" {
		t.Fatalf("check sent %d calls (%q), want one empty batch", len(ups), ups)
	}
	if st := r.emu.Stats(); st.Accepted != 1 || st.Rows != 0 {
		t.Errorf("emulator %+v", st)
	}
}

// TestTokenReuse: one token serves many calls; a revoked token is
// replaced once.
func TestTokenReuse(t *testing.T) {
	r := newRig(t, FormatPingOneV2, emulator.SentinelOptions{}, nil)
	for i := range 5 {
		if err := r.sink.Send(context.Background(), synthetic(string(rune('a'+i)), 10, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.emu.Stats().TokenRequests; n != 1 {
		t.Errorf("%d token requests for 5 batches, want 1", n)
	}
	if n := len(r.rows()); n != 50 {
		t.Errorf("%d rows, want 50", n)
	}
}

// TestRetrySkipsAcknowledgedCalls: when a later call of a batch fails, the
// retry sends only the calls not yet acknowledged.
func TestRetrySkipsAcknowledgedCalls(t *testing.T) {
	r := newRig(t, FormatPingOneV2, emulator.SentinelOptions{}, func(c *Config) { c.MaxRequestBytes = 100000 })
	batch := synthetic("ev", 400, 900) // about four calls
	// Calls run in parallel: the first two to arrive succeed.
	var mu sync.Mutex
	failAfter := 2
	r.tr.h = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.Contains(req.URL.Path, "/streams/") {
			mu.Lock()
			fail := failAfter == 0
			if !fail && failAfter > 0 {
				failAfter--
			}
			mu.Unlock()
			if fail {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
		}
		r.emu.ServeHTTP(w, req)
	})
	err := r.sink.Send(context.Background(), batch)
	if c, _ := delivery.ClassOf(err); err == nil || c != delivery.Transient {
		t.Fatalf("first send: %v, want a transient error", err)
	}
	mu.Lock()
	failAfter = -1
	mu.Unlock()
	if err := r.sink.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	got := idCounts(r.rows(), "id")
	if len(got) != 400 {
		t.Fatalf("%d distinct rows, want 400", len(got))
	}
	for id, n := range got {
		if n != 1 {
			t.Fatalf("%s ingested %d times", id, n)
		}
	}
	// A new batch after success starts afresh.
	if err := r.sink.Send(context.Background(), batch[:1]); err != nil {
		t.Fatal(err)
	}
	if n := idCounts(r.rows(), "id")["ev-000000"]; n != 2 {
		t.Errorf("a batch sent again later was skipped (%d copies)", n)
	}
}

func TestSendContextCancelled(t *testing.T) {
	r := newRig(t, FormatPingOneV2, emulator.SentinelOptions{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := r.sink.Send(ctx, synthetic("e", 1, 0))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
}

// TestOldEventsCounted: events older than two days are sent, counted and
// reported once per batch.
func TestOldEventsCounted(t *testing.T) {
	r := newRig(t, FormatPingOneV2, emulator.SentinelOptions{}, nil)
	now := synthetic("x", 1, 0)[0].Time.Add(72 * time.Hour)
	r.sink.now = func() time.Time { return now }
	batch := synthetic("e", 10, 0) // three days before now
	batch = append(batch, synthetic("f", 1, 0)...)
	batch[10].Time = now.Add(-time.Hour)
	if err := r.sink.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if st := r.sink.Stats(); st.Old != 10 || st.Rows != 11 {
		t.Errorf("stats %+v, want 10 old of 11 rows", st)
	}
	if n := strings.Count(r.log.String(), "older than 2 days"); n != 1 {
		t.Errorf("reported %d times:\n%s", n, r.log)
	}
}

// TestRetriesCountOnce: truncations and old events of a batch that is
// retried are counted once.
func TestRetriesCountOnce(t *testing.T) {
	r := newRig(t, FormatPingOneV2, emulator.SentinelOptions{}, nil)
	now := synthetic("x", 1, 0)[0].Time.Add(72 * time.Hour)
	r.sink.now = func() time.Time { return now }
	batch := synthetic("e", 3, 0)
	batch[1].Data = json.RawMessage(`{"id":"e-000001","action":{"description":"` + strings.Repeat("d", 70000) + `"}}`)
	r.emu.SetDown(503)
	for range 3 {
		if err := r.sink.Send(context.Background(), batch); err == nil {
			t.Fatal("Send succeeded while the service is down")
		}
	}
	r.emu.SetDown(0)
	if err := r.sink.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if st := r.sink.Stats(); st.Truncated != 1 || st.Old != 3 || st.Rows != 3 {
		t.Errorf("stats %+v, want 1 truncated, 3 old, 3 rows", st)
	}
}

// FuzzAPIMessage: any error body gives one short line.
func FuzzAPIMessage(f *testing.F) {
	f.Add([]byte(`{"error":{"code":"OperationFailed","message":"The authentication token provided does not have access"}}`))
	f.Add([]byte("<html>\nBad Gateway\n</html>"))
	f.Add([]byte(`{"error":"invalid_client"}`))
	f.Add([]byte(`{"error":{"code":"a\nb","message":"c\rd"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m := apiMessage(body)
		if strings.ContainsAny(m, "\r\n") || len(m) > 300+2+300 {
			t.Fatalf("apiMessage(%q) = %q", body, m)
		}
	})
}

// TestCallsInParallel: the calls of a batch are in flight together, each
// acknowledged once.
func TestCallsInParallel(t *testing.T) {
	r := newRig(t, FormatPingOneV2, emulator.SentinelOptions{}, func(c *Config) { c.MaxRequestBytes = 100000 })
	batch := synthetic("ev", 400, 900) // about four calls
	var mu sync.Mutex
	inFlight, most := 0, 0
	closed := false
	second := make(chan struct{})
	r.tr.h = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.Contains(req.URL.Path, "/streams/") {
			mu.Lock()
			inFlight++
			most = max(most, inFlight)
			if inFlight == 2 && most == 2 && !closed {
				closed = true
				close(second)
			}
			mu.Unlock()
			// The first call waits for a second one to arrive: sent one
			// after the other, none would.
			select {
			case <-second:
			case <-time.After(5 * time.Second):
			}
			defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
		}
		r.emu.ServeHTTP(w, req)
	})
	if err := r.sink.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if most < 2 {
		t.Errorf("at most %d calls in flight at once, want several", most)
	}
	if got := idCounts(r.rows(), "id"); len(got) != 400 {
		t.Fatalf("%d distinct rows, want 400", len(got))
	}
}
