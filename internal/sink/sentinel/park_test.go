package sentinel

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditrelay/auditrelay/internal/park"

	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/event"
)

// TestParkFile: events that can never be sent — one that does not encode,
// and one the service refuses on its own as too large — are kept in the
// park file with their reason, and the others are ingested once.
func TestParkFile(t *testing.T) {
	r := newRig(t, FormatPingOneV2, emulator.SentinelOptions{MaxCallBytes: 20000}, nil)
	path := filepath.Join(t.TempDir(), "parked", "sentinel.ndjson")
	r.sink = New(r.cfg, Options{HTTPClient: &http.Client{Transport: r.tr}, Normalize: testNormalize, Park: park.New(path)})
	batch := synthetic("ok", 20, 500)
	big := synthetic("big", 1, 30000)[0]
	bad := event.Raw{Source: "p1", Provider: "pingone", ID: "not-json", Data: json.RawMessage(`not json`)}
	batch = append(append(batch[:10:10], big, bad), batch[10:]...)
	if err := r.sink.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if got := idCounts(r.rows(), "id"); len(got) != 20 {
		t.Fatalf("ingested %d distinct rows, want the 20 good ones", len(got))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("park file has %d lines, want 2:\n%s", len(lines), b)
	}
	seen := map[string]string{}
	for _, l := range lines {
		var m struct {
			ID     string `json:"id"`
			Reason string `json:"parked_reason"`
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("park line %q: %v", l, err)
		}
		seen[m.ID] = m.Reason
	}
	if !strings.Contains(seen["big-000000"], "too large") || seen["not-json"] == "" {
		t.Errorf("parked = %v", seen)
	}
	if st := r.sink.Stats(); st.Parked != 2 {
		t.Errorf("parked %d, want 2", st.Parked)
	}
}
