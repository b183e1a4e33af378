package pingone

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkDecodePage decodes a page of 1000 activities of about 1.3 KB,
// the shape the activities API returns at page_size 1000.
func BenchmarkDecodePage(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString(`{"_links":{"self":{"href":"https://api.pingone.eu/v1/environments/e/activities"},"next":{"href":"https://api.pingone.eu/v1/environments/e/activities?cursor=abc"}},"_embedded":{"activities":[`)
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	pad := strings.Repeat("x", 700)
	for i := range 1000 {
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"_links":{"self":{"href":"https://api.pingone.eu/v1/environments/e/activities/%08d-aaaa-4bbb-8ccc-000000000000"}},"id":"%08d-aaaa-4bbb-8ccc-000000000000","recordedAt":%q,"createdAt":%q,"correlationId":"c","actors":{"client":{"id":"x","name":"PingOne Admin Console","type":"CLIENT"},"user":{"id":"u","name":"alice@example.com","type":"USER","population":{"id":"p"}}},"action":{"type":"USER.ACCESS_ALLOWED","description":"User Access Allowed"},"resources":[{"type":"USER","id":"u","name":"alice@example.com"}],"result":{"status":"SUCCESS","description":"%s"}}`,
			i, i, at.Add(-time.Duration(i)*time.Millisecond).Format(timeLayout), at.Format(timeLayout), pad)
	}
	buf.WriteString(`]},"count":1000,"size":1000}`)
	body := buf.Bytes()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		p, err := decodePage(body)
		if err != nil || len(p.Activities) != 1000 {
			b.Fatalf("decode: %d activities, %v", len(p.Activities), err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}
