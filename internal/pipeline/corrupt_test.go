package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/park"
	"github.com/auditrelay/auditrelay/internal/sink/file"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/store/bolt"
)

// damage overwrites one byte of the event data in that marks in the spool
// segments of dir, as a bad disk sector would: the batch holding it keeps
// its size but no longer matches its checksum.
func damage(t *testing.T, dir, that string) {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, bolt.SegmentDir, "*.seg"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no spool segment in %s: %v", dir, err)
	}
	for _, seg := range segs {
		b, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(b, []byte(that)); i >= 0 {
			b[i] ^= 0x20
			if err := os.WriteFile(seg, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no spool segment holds %q", that)
}

func TestCorruptRecordIsParkedAndSkipped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		st, err := bolt.Open(dir, bolt.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SetSinks([]string{"archive"}); err != nil {
			t.Fatal(err)
		}
		// Two pages of three events: the first one's batch is damaged.
		for p := range 2 {
			var evs []event.Raw
			for i := 3 * p; i < 3*p+3; i++ {
				id := fmt.Sprintf("e%d", i)
				evs = append(evs, event.Raw{Source: "clock", Provider: "test", ID: id, Time: time.Now(), Data: json.RawMessage(fmt.Sprintf(`{"id":%q}`, id))})
			}
			if _, err := st.Append("clock", "clock", source.Page{Events: evs}, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		st.Close()
		damage(t, dir, `{"id":"e1"}`)
		st, err = bolt.Open(dir, bolt.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()

		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		out := filepath.Join(dir, "out.ndjson")
		fc := file.Config{Path: out}
		fc.SetDefaults()
		snk := file.New(fc, log)
		defer snk.Close(context.Background())
		metrics := NewMetrics(prometheus.NewRegistry())
		pf := park.New(park.Path(dir, "archive"))
		r := &SinkRunner{Name: "archive", Sink: snk, Store: st, Routes: map[string]bool{"clock": true}, Park: pf, BatchSize: 100,
			Backoff: delivery.Backoff{Base: time.Second, Max: time.Minute}, Logger: log, Metrics: metrics, Health: NewHealth()}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { r.Run(ctx) })
		time.Sleep(10 * time.Second)
		cancel()
		wg.Wait()

		lines, err := file.ReadLines(out)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range lines {
			got = append(got, l.ID)
		}
		if strings.Join(got, ",") != "e3,e4,e5" {
			t.Errorf("delivered %v, want every event but the damaged page's e0, e1, e2", got)
		}
		b, err := os.ReadFile(pf.Path())
		if err != nil {
			t.Fatalf("no park file: %v", err)
		}
		var kept struct {
			Seq    uint64 `json:"spool_seq"`
			Record []byte `json:"record"`
			Reason string `json:"parked_reason"`
		}
		if err := json.Unmarshal(b, &kept); err != nil {
			t.Fatalf("park file %q: %v", b, err)
		}
		// The page is parked at its last position with the batch's
		// bytes, the damaged byte among them.
		if kept.Seq != 3 || !bytes.Contains(kept.Record, []byte(`["id":"e1"}`)) || !bytes.Contains(kept.Record, []byte(`{"id":"e2"}`)) ||
			!strings.Contains(kept.Reason, "unreadable") || !strings.Contains(kept.Reason, "checksum") {
			t.Errorf("parked %+v, want entry 3 with its bytes and a reason", kept)
		}
		if n := testutil.ToFloat64(metrics.corrupt.WithLabelValues("archive")); n != 1 {
			t.Errorf("corrupt counter = %v, want 1", n)
		}
		snap, err := st.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if s := snap.Sinks[0]; s.Corrupt != 1 || s.Offset != 6 || s.Delivered != 3 || snap.SpoolCount != 0 {
			t.Errorf("status = %+v, spool %d events; want 1 corrupt, offset 6, 3 delivered, spool empty", s, snap.SpoolCount)
		}
	})
}
