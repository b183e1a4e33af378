package daemon

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/sink/sentinel"
)

// acceptAll answers every request as the token endpoint or the ingestion
// API would on success, reading the body: the sink's own cost is what is
// measured.
type acceptAll struct{}

func (acceptAll) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	resp := &http.Response{StatusCode: http.StatusNoContent, Header: http.Header{}, Body: http.NoBody, Request: req}
	if strings.HasSuffix(req.URL.Path, "/token") {
		resp.StatusCode = http.StatusOK
		resp.Header.Set("Content-Type", "application/json")
		resp.Body = io.NopCloser(strings.NewReader(`{"token_type":"Bearer","expires_in":3600,"access_token":"t"}`))
	}
	return resp, nil
}

// BenchmarkSentinelSend measures the Sentinel sink's Send of realistic
// PingOne activities with the real normalizer: normalize, JSON rows, gzip,
// 1 MB splitting and the HTTP requests. Run with -cpu 1 for one core.
func BenchmarkSentinelSend(b *testing.B) {
	for _, format := range []string{sentinel.FormatPingOneV2, sentinel.FormatAuditRelay} {
		b.Run(format, func(b *testing.B) {
			gen := emulator.NewGenerator(9)
			base := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
			batch := make([]event.Raw, 1000)
			size := 0
			for i := range batch {
				a := gen.Activity("env-bench", "https://api.pingone.eu", base.Add(time.Duration(i)*time.Millisecond))
				batch[i] = event.Raw{Source: "p1", Provider: "pingone", Tenant: "env-bench", ID: a.ID, Time: a.RecordedAt, Data: a.JSON}
				size += len(a.JSON)
			}
			cfg := sentinel.Config{Endpoint: "https://bench.ingest.monitor.azure.com", DCRImmutableID: "dcr-00000000000000000000000000000000",
				Format: format, TenantID: "t", ClientID: "c", ClientSecret: secret.New("s")}
			cfg.SetDefaults()
			s := sentinel.New(cfg, sentinel.Options{HTTPClient: &http.Client{Transport: acceptAll{}}, Normalize: Normalize})
			ctx := context.Background()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := s.Send(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
			if st := s.Stats(); st.Parked != 0 || st.Rows == 0 {
				b.Fatalf("stats %+v", st)
			}
		})
	}
}
