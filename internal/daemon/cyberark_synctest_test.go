package daemon

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/pipeline"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/sink/sekoia"
	"github.com/auditrelay/auditrelay/internal/source/cyberark"
	"github.com/auditrelay/auditrelay/internal/store/bolt"
	"github.com/auditrelay/auditrelay/internal/units"
)

// handlerTransport serves requests in memory, for synctest bubbles.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// TestCyberArkToSekoiaHourOutage runs the real source, store, runners and
// sink in a synctest bubble against the emulators while live CyberArk
// traffic (late events, bursts) continues through a one-hour intake outage:
// the backlog grows, nothing is dropped after an hour, and once the intake
// is back every event arrives exactly once.
func TestCyberArkToSekoiaHourOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca := emulator.NewCyberArk(emulator.CyberArkOptions{RateLimit: -1})
		tenant := emulator.CyberArkTenant{ID: "t-1", AppID: "auditrelay", ClientID: "svc", ClientSecret: "s", APIKey: "k"}
		ca.AddTenant(tenant)
		const key = "intake-key"
		sk := emulator.NewSekoia(emulator.SekoiaOptions{}, key)

		cc := cyberark.Config{IdentityURL: "https://id.example", AppID: "auditrelay", ClientID: "svc", ClientSecret: secret.New("s"),
			AuditURL: "https://audit.example", APIKey: secret.New("k"), SettleDelay: units.Duration(5 * time.Second),
			Overlap: units.Duration(10 * time.Second), Lookback: units.Duration(time.Hour), PageSize: 500}
		cc.SetDefaults()
		src, err := cyberark.New("ca", cc, cyberark.Options{HTTPClient: &http.Client{Transport: handlerTransport{ca}},
			Limiter: rate.NewLimiter(10, 1)})
		if err != nil {
			t.Fatal(err)
		}
		sc := sekoia.Config{IntakeKey: secret.New(key), URL: "https://intake.example"}
		sc.SetDefaults()
		snk, err := sekoia.New(sc, sekoia.Options{HTTPClient: &http.Client{Transport: handlerTransport{sk}}})
		if err != nil {
			t.Fatal(err)
		}
		st, err := bolt.Open(t.TempDir(), bolt.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.SetSinks([]string{"sekoia"}); err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
		m, health := pipeline.NewMetrics(prometheus.NewRegistry()), pipeline.NewHealth()
		backoff := delivery.Backoff{Base: time.Second, Max: time.Minute}
		sr := &pipeline.SourceRunner{Name: "ca", Source: src, Store: st, PollInterval: time.Second, Backoff: backoff,
			Logger: log, Metrics: m, Health: health}
		kr := &pipeline.SinkRunner{Name: "sekoia", Sink: snk, Store: st, Routes: map[string]bool{"ca": true}, BatchSize: 1000,
			Backoff: backoff, Logger: log, Metrics: m, Health: health}

		ctx, cancel := context.WithCancel(context.Background())
		live, stopLive := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { ca.Run(live, emulator.NewCyberArkGenerator(4), tenant.ID, 5, 8*time.Second) })
		wg.Go(func() { sr.Run(ctx) })
		wg.Go(func() { kr.Run(ctx) })

		time.Sleep(2 * time.Minute)
		sk.SetDown(true)
		before := len(sk.Messages(key))
		time.Sleep(time.Hour)
		if n := len(sk.Messages(key)); n != before {
			t.Errorf("%d messages accepted during the outage", n-before)
		}
		if n := st.SpoolCount(); n < 15000 {
			t.Errorf("spool holds %d events after an hour of outage; want the hour's traffic", n)
		}
		sk.SetDown(false)
		time.Sleep(5 * time.Minute)
		stopLive()
		time.Sleep(2 * time.Minute)
		cancel()
		wg.Wait()

		want := map[string]bool{}
		for _, e := range ca.Events(tenant.ID) {
			want[e.UUID] = true
		}
		got := map[string]int{}
		for _, msg := range sk.Messages(key) {
			var e struct{ UUID string }
			json.Unmarshal([]byte(msg), &e)
			got[e.UUID]++
		}
		for id, n := range got {
			if n != 1 || !want[id] {
				t.Fatalf("event %s delivered %d times (known: %v)", id, n, want[id])
			}
		}
		if len(got) != len(want) || len(want) < 20000 {
			t.Errorf("delivered %d of %d events", len(got), len(want))
		}
		if s := snk.Stats(); s.Parked != 0 || s.Sent != int64(len(want)) {
			t.Errorf("sink stats %+v", s)
		}
		if st.SpoolCount() != 0 {
			t.Errorf("spool still holds %d events", st.SpoolCount())
		}
	})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
