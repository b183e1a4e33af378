package pipeline

import (
	"bytes"
	"context"
	"encoding/binary"
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
	bbolt "go.etcd.io/bbolt"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/park"
	"github.com/auditrelay/auditrelay/internal/sink/file"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/store"
	"github.com/auditrelay/auditrelay/internal/store/bolt"
)

// damage overwrites the first byte of the spool record at position seq
// in the store file of dir, as a bad disk sector would: the record keeps
// its size but no longer decodes. The record sits in the batch entry
// keyed by the position of the batch's last record.
func damage(t *testing.T, dir string, seq uint64) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(dir, bolt.FileName), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("spool"))
		k, v := b.Cursor().Seek(binary.BigEndian.AppendUint64(nil, seq))
		if k == nil {
			return fmt.Errorf("no spool entry holds position %d", seq)
		}
		recs, err := store.SplitEntry(v, nil)
		if err != nil {
			return err
		}
		first := binary.BigEndian.Uint64(k) - uint64(len(recs)) + 1
		if seq < first {
			return fmt.Errorf("no spool entry holds position %d", seq)
		}
		// Each record has a 4-byte length before it; the records after
		// the damaged one end the entry.
		at := len(v)
		for _, r := range recs[seq-first:] {
			at -= len(r) + 4
		}
		bad := bytes.Clone(v)
		bad[at+4] = 0xee
		return b.Put(bytes.Clone(k), bad)
	}); err != nil {
		t.Fatal(err)
	}
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
		var evs []event.Raw
		for i := range 6 {
			id := fmt.Sprintf("e%d", i)
			evs = append(evs, event.Raw{Source: "clock", Provider: "test", ID: id, Time: time.Now(), Data: json.RawMessage(fmt.Sprintf(`{"id":%q}`, id))})
		}
		if _, err := st.Append("clock", "clock", source.Page{Events: evs}, time.Now()); err != nil {
			t.Fatal(err)
		}
		st.Close()
		damage(t, dir, 3) // e2
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
		if strings.Join(got, ",") != "e0,e1,e3,e4,e5" {
			t.Errorf("delivered %v, want every event but the damaged e2", got)
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
		if kept.Seq != 3 || len(kept.Record) == 0 || kept.Record[0] != 0xee || !strings.Contains(kept.Reason, "unreadable") {
			t.Errorf("parked %+v, want entry 3 with its bytes and a reason", kept)
		}
		if n := testutil.ToFloat64(metrics.corrupt.WithLabelValues("archive")); n != 1 {
			t.Errorf("corrupt counter = %v, want 1", n)
		}
		snap, err := st.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if s := snap.Sinks[0]; s.Corrupt != 1 || s.Offset != 6 || s.Delivered != 5 || snap.SpoolCount != 0 {
			t.Errorf("status = %+v, spool %d events; want 1 corrupt, offset 6, 5 delivered, spool empty", s, snap.SpoolCount)
		}
	})
}
