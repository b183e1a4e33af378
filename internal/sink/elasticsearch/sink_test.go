package elasticsearch

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/httpx/httpxtest"
	"github.com/auditrelay/auditrelay/internal/park"
	"github.com/auditrelay/auditrelay/internal/secret"
)

// The secret half of testKey: it must never appear in an error or a log.
const keySecret = "ui2lp2axTNmsyakw9tvNnw"

type rig struct {
	emu  *emulator.Elasticsearch
	sink *Sink
	logs *bytes.Buffer
	park *park.File
}

// newRig starts an emulator accepting testKey and a sink pointed at it.
// With hc nil the emulator is served by httptest.
func newRig(t *testing.T, opts emulator.ElasticsearchOptions, mod func(*Config), hc *http.Client, base string) *rig {
	t.Helper()
	opts.APIKeys = append(opts.APIKeys, testKey)
	r := &rig{emu: emulator.NewElasticsearch(opts), logs: &bytes.Buffer{}}
	if hc == nil {
		srv := httptest.NewServer(r.emu)
		t.Cleanup(srv.Close)
		base, hc = srv.URL, srv.Client()
	} else {
		var url string
		url, hc = httpxtest.ServePipe(t, r.emu, time.Minute)
		base = url
	}
	cfg := Config{URLs: []string{base}, APIKey: secret.New(testKey)}
	if mod != nil {
		mod(&cfg)
	}
	cfg.SetDefaults()
	r.park = park.New(filepath.Join(t.TempDir(), "parked", "es.ndjson"))
	s, err := New(cfg, Options{HTTPClient: hc, Park: r.park,
		Logger: slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	r.sink = s
	return r
}

// synthetic makes n Okta events of about size bytes.
func synthetic(prefix string, n, size int) []event.Raw {
	out := make([]event.Raw, n)
	for i := range out {
		id := fmt.Sprintf("%s-%05d", prefix, i)
		pad := strings.Repeat("x", max(0, size-80))
		out[i] = event.Raw{Source: "okta", Provider: "okta", Tenant: "acme.okta.com", ID: id, Time: t0.Add(time.Duration(i) * time.Second),
			Data: json.RawMessage(fmt.Sprintf(`{"uuid":%q,"eventType":"user.session.start","pad":%q}`, id, pad))}
	}
	return out
}

// checkOnce asserts that every event is held exactly once in index.
func checkOnce(t *testing.T, emu *emulator.Elasticsearch, index string, evs []event.Raw) {
	t.Helper()
	counts := emu.IDCounts()[index]
	for i := range evs {
		if n := counts[DocID(&evs[i])]; n != 1 {
			t.Errorf("%s held %d times", evs[i].ID, n)
		}
	}
	if len(counts) != len(evs) {
		t.Errorf("%d documents in %s, want %d", len(counts), index, len(evs))
	}
}

func noSecrets(t *testing.T, where, text string) {
	t.Helper()
	for _, s := range []string{keySecret, testKey, "hunter2", base64.StdEncoding.EncodeToString([]byte("relay:hunter2"))} {
		if strings.Contains(text, s) {
			t.Errorf("%s reveals a secret: %s", where, text)
		}
	}
}

// TestSendIdempotent: a batch is created in the integration data streams,
// message carrying the event verbatim; the same batch sent again (a crash
// before the offset commit) creates nothing: every item is 409, which
// counts as delivered.
func TestSendIdempotent(t *testing.T) {
	r := newRig(t, emulator.ElasticsearchOptions{}, nil, nil, "")
	evs := sampleEvents()
	if err := r.sink.Send(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if err := r.sink.Send(context.Background(), evs); err != nil {
		t.Fatalf("resend: %v", err)
	}
	st := r.sink.Stats()
	if st.Sent != 4 || st.Duplicates != 4 || st.Parked != 0 {
		t.Errorf("stats %+v, want 4 sent and 4 duplicates", st)
	}
	for i, index := range []string{"logs-ping_one.audit-default", "logs-okta.system-default",
		"logs-auditrelay.cyberark-default", "logs-auditrelay.entra_directory_audits-default"} {
		checkOnce(t, r.emu, index, evs[i:i+1])
	}
	doc := r.emu.Docs("logs-okta.system-default")[0]
	var d struct{ Message string }
	json.Unmarshal(doc.Source, &d)
	if d.Message != string(evs[1].Data) {
		t.Errorf("message %q, want the raw event", d.Message)
	}
	if es := r.emu.Stats(); es.Gzip != 2 || es.Conflicts != 4 {
		t.Errorf("emulator %+v", es)
	}
}

// TestRetryOnlyFailedItems: items answered 429 make Send fail throttled,
// and the next Send of the same batch carries those items alone.
func TestRetryOnlyFailedItems(t *testing.T) {
	r := newRig(t, emulator.ElasticsearchOptions{Seed: 7}, nil, nil, "")
	r.emu.SetFaults(emulator.ElasticsearchFaults{ThrottleItems: 0.3})
	evs := synthetic("t", 200, 200)
	var attempts int
	for attempts = 1; attempts < 50; attempts++ {
		err := r.sink.Send(context.Background(), evs)
		if err == nil {
			break
		}
		if c, _ := delivery.ClassOf(err); c != delivery.Throttled {
			t.Fatalf("attempt %d: %v is %v, want throttled", attempts, err, c)
		}
		if !strings.Contains(err.Error(), "es_rejected_execution_exception") {
			t.Errorf("error lacks the server's reason: %v", err)
		}
	}
	if attempts < 2 {
		t.Fatal("no item was throttled")
	}
	bulks := r.emu.Bulks()
	if len(bulks[0]) != len(evs) || len(bulks[1]) >= len(evs)/2 {
		t.Errorf("requests of %d then %d items: the retry must carry the throttled items alone", len(bulks[0]), len(bulks[1]))
	}
	if st := r.emu.Stats(); st.Conflicts != 0 {
		t.Errorf("%d conflicts: held items were sent again", st.Conflicts)
	}
	total := 0
	for _, ids := range bulks {
		total += len(ids)
	}
	if want := len(evs) + int(r.emu.Stats().Throttled); total != want {
		t.Errorf("%d items sent, want %d (each event once plus once per throttling)", total, want)
	}
	checkOnce(t, r.emu, "logs-okta.system-default", evs)
	if st := r.sink.Stats(); st.Sent != int64(len(evs)) || st.Retried != r.emu.Stats().Throttled {
		t.Errorf("sink stats %+v, emulator %+v", st, r.emu.Stats())
	}
}

// TestMappingErrorsParked: a document the mapping refuses is parked with
// the server's reason, and the rest of the batch is delivered.
func TestMappingErrorsParked(t *testing.T) {
	r := newRig(t, emulator.ElasticsearchOptions{}, func(c *Config) { c.Format = FormatRaw }, nil, "")
	evs := synthetic("m", 10, 100)
	evs[4].Data = json.RawMessage(`{"uuid":"m-00004","pad":{"an":"object"}}`) // pad was text
	evs[7].Data = json.RawMessage(`{"uuid":"m-00007","pad":12}`)
	if err := r.sink.Send(context.Background(), evs[:1]); err != nil { // map pad as text first
		t.Fatal(err)
	}
	if err := r.sink.Send(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	st := r.sink.Stats()
	if st.Parked != 2 || st.Sent != 8 || st.Duplicates != 1 {
		t.Errorf("stats %+v, want 2 parked, 8 sent, 1 duplicate", st)
	}
	b, err := os.ReadFile(r.park.Path())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("park file:\n%s", b)
	}
	for i, id := range []string{"m-00004", "m-00007"} {
		var l struct {
			ID     string `json:"id"`
			Reason string `json:"parked_reason"`
		}
		json.Unmarshal([]byte(lines[i]), &l)
		if l.ID != id || !strings.Contains(l.Reason, "HTTP 400 document_parsing_exception") || !strings.Contains(l.Reason, "raw.pad") {
			t.Errorf("parked %+v, want %s with the mapping error", l, id)
		}
	}
	if n := len(r.emu.Docs("logs-auditrelay.okta-default")); n != 0 {
		t.Errorf("%d docs in the raw data stream of an integration provider", n)
	}
	if n := len(r.emu.Docs("logs-okta.system-default")); n != 8 {
		t.Errorf("%d docs, want 8", n)
	}
}

// TestSplitOn413: a request over the cluster's limit is split until the
// halves pass; a document too large alone is parked.
func TestSplitOn413(t *testing.T) {
	r := newRig(t, emulator.ElasticsearchOptions{MaxContentLength: 4000}, nil, nil, "")
	evs := synthetic("s", 40, 400)
	big := synthetic("big", 1, 6000)
	evs = append(evs, big...)
	if err := r.sink.Send(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	st := r.sink.Stats()
	if st.Splits == 0 || st.Parked != 1 || st.Sent != 40 {
		t.Errorf("stats %+v, want splits, 1 parked, 40 sent", st)
	}
	checkOnce(t, r.emu, "logs-okta.system-default", evs[:40])
	if r.emu.Stats().TooLarge == 0 {
		t.Error("no 413 answered")
	}
}

// TestAuthErrorsHalt: bad credentials and missing privileges stop the
// sink with the fix, and no error or log line carries a secret.
func TestAuthErrorsHalt(t *testing.T) {
	t.Run("unknown key", func(t *testing.T) {
		other := base64.StdEncoding.EncodeToString([]byte("other:" + keySecret))
		r := newRig(t, emulator.ElasticsearchOptions{}, func(c *Config) { c.APIKey = secret.New(other) }, nil, "")
		r.emu = nil
		err := r.sink.Send(context.Background(), synthetic("a", 3, 100))
		var he *delivery.Error
		if !errors.As(err, &he) || he.Class != delivery.Permanent || he.Status != 401 || !strings.Contains(he.Fix, "api_key") {
			t.Fatalf("err = %v, want permanent 401 naming api_key", err)
		}
		noSecrets(t, "error", err.Error())
		noSecrets(t, "error", strings.ReplaceAll(err.Error(), other, "")) // the encoded key either
		if strings.Contains(err.Error(), other) {
			t.Errorf("error reveals the encoded key: %v", err)
		}
	})
	t.Run("basic, wrong password", func(t *testing.T) {
		r := newRig(t, emulator.ElasticsearchOptions{Users: map[string]string{"relay": "right"}},
			func(c *Config) { c.APIKey = secret.String{}; c.Username = "relay"; c.Password = secret.New("hunter2") }, nil, "")
		err := r.sink.Send(context.Background(), synthetic("a", 3, 100))
		if !delivery.IsPermanent(err) || !strings.Contains(err.Error(), "username and password") {
			t.Fatalf("err = %v", err)
		}
		noSecrets(t, "error", err.Error())
		noSecrets(t, "logs", r.logs.String())
	})
	t.Run("no privilege on the data stream", func(t *testing.T) {
		r := newRig(t, emulator.ElasticsearchOptions{Writable: []string{"logs-ping_one.*"}}, nil, nil, "")
		err := r.sink.Send(context.Background(), synthetic("a", 3, 100))
		var he *delivery.Error
		if !errors.As(err, &he) || he.Class != delivery.Permanent || he.Status != 403 || !strings.Contains(he.Fix, "create_doc") {
			t.Fatalf("err = %v, want permanent 403 naming create_doc", err)
		}
		if st := r.sink.Stats(); st.Parked != 0 {
			t.Errorf("%d parked: a privilege problem must not park events", st.Parked)
		}
		if err := r.sink.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "logs-okta.system-default") {
			t.Errorf("Check = %v, want the missing create_doc named", err)
		}
		noSecrets(t, "logs", r.logs.String())
	})
}

func TestCheck(t *testing.T) {
	r := newRig(t, emulator.ElasticsearchOptions{}, nil, nil, "")
	if err := r.sink.Check(context.Background()); err != nil {
		t.Errorf("Check: %v", err)
	}
	os := newRig(t, emulator.ElasticsearchOptions{OpenSearch: true}, func(c *Config) { c.Index = "auditrelay" }, nil, "")
	if err := os.sink.Check(context.Background()); err != nil {
		t.Errorf("Check on OpenSearch: %v", err)
	}
	if !strings.Contains(os.logs.String(), "first batch proves the write") {
		t.Errorf("OpenSearch check did not say what it could not prove: %s", os.logs.String())
	}
	if err := os.sink.Send(context.Background(), sampleEvents()); err != nil {
		t.Fatalf("send to OpenSearch: %v", err)
	}
	if n := len(os.emu.Docs("auditrelay")); n != 4 {
		t.Errorf("%d docs in index auditrelay", n)
	}
	bad := newRig(t, emulator.ElasticsearchOptions{}, func(c *Config) {
		c.APIKey = secret.New(base64.StdEncoding.EncodeToString([]byte("x:" + keySecret)))
	}, nil, "")
	if err := bad.sink.Check(context.Background()); !delivery.IsPermanent(err) || strings.Contains(err.Error(), keySecret) {
		t.Errorf("Check with a bad key = %v", err)
	}
}

// TestFailover: a node that refuses connections or answers 503 is skipped
// for the next url, round robin.
func TestFailover(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"unavailable","status":503}`, http.StatusServiceUnavailable)
	}))
	defer busy.Close()
	emu := emulator.NewElasticsearch(emulator.ElasticsearchOptions{APIKeys: []string{testKey}})
	good := httptest.NewServer(emu)
	defer good.Close()
	cfg := Config{URLs: []string{deadURL, busy.URL, good.URL}, APIKey: secret.New(testKey)}
	cfg.SetDefaults()
	s, err := New(cfg, Options{HTTPClient: httpx.NewClient(5 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	for i := range 3 {
		if err := s.Send(context.Background(), synthetic(fmt.Sprint("f", i), 5, 100)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if st := s.Stats(); st.Failovers < 3 || st.Sent != 15 {
		t.Errorf("stats %+v", st)
	}
	if len(emu.Docs("logs-okta.system-default")) != 15 {
		t.Error("documents lost")
	}
}

// TestLongOutage: six simulated hours of a cluster answering 503, with
// item-level throttling once it is back; every event is held exactly
// once, and retries back off instead of hammering the cluster.
func TestLongOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, emulator.ElasticsearchOptions{Seed: 11}, nil, &http.Client{}, "")
		r.emu.SetDown(true)
		start := time.Now()
		var all []event.Raw
		back := delivery.Backoff{Base: time.Second, Max: 5 * time.Minute}
		for b := range 5 {
			batch := synthetic(fmt.Sprint("o", b), 300, 300)
			all = append(all, batch...)
			for attempt := 1; ; attempt++ {
				if time.Since(start) > 6*time.Hour {
					r.emu.SetDown(false)
					r.emu.SetFaults(emulator.ElasticsearchFaults{ThrottleItems: 0.2})
				}
				err := r.sink.Send(context.Background(), batch)
				if err == nil {
					break
				}
				if delivery.IsPermanent(err) {
					t.Fatalf("permanent during an outage: %v", err)
				}
				time.Sleep(back.Wait(err, attempt))
			}
		}
		checkOnce(t, r.emu, "logs-okta.system-default", all)
		st := r.emu.Stats()
		if st.Conflicts != 0 {
			t.Errorf("%d items sent again after being created", st.Conflicts)
		}
		if el := time.Since(start); el < 6*time.Hour {
			t.Errorf("delivered after %v, during the outage", el)
		}
		if st.Faults > 200 {
			t.Errorf("%d requests during 6 h of outage: not backing off", st.Faults)
		}
		t.Logf("%d requests, %d refused, %d items throttled, %v simulated", st.Requests, st.Faults, st.Throttled, time.Since(start))
	})
}

// TestNoSecretInNetworkErrors: an unreachable cluster's error names urls,
// never the key.
func TestNoSecretInNetworkErrors(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	u := dead.URL
	dead.Close()
	cfg := Config{URLs: []string{u}, APIKey: secret.New(testKey)}
	cfg.SetDefaults()
	var logs bytes.Buffer
	s, _ := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer s.Close(context.Background())
	err := s.Send(context.Background(), synthetic("n", 1, 100))
	if err == nil || delivery.IsPermanent(err) || !strings.Contains(err.Error(), "urls") {
		t.Fatalf("err = %v, want transient naming urls", err)
	}
	noSecrets(t, "error", err.Error())
	noSecrets(t, "logs", logs.String())
	if !slices.Contains(s.Targets(), "logs-okta.system-default") {
		t.Errorf("targets %v", s.Targets())
	}
}
