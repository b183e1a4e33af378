package file

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
	"syscall"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/units"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 123e6, time.UTC)

func events(from, n int) []event.Raw {
	var out []event.Raw
	for i := from; i < from+n; i++ {
		out = append(out, event.Raw{Source: "pingone-eu", Provider: "pingone", Tenant: "env-1",
			ID: fmt.Sprintf("id-%04d", i), Time: t0, Data: json.RawMessage(fmt.Sprintf(`{"id":"id-%04d","n":%d}`, i, i))})
	}
	return out
}

func newSink(t *testing.T, path string, maxSize int64) *Sink {
	cfg := Config{Path: path, MaxSize: 0, MaxFiles: 3, BatchSize: 10}
	cfg.SetDefaults()
	if maxSize > 0 {
		cfg.MaxSize = units.ByteSize(maxSize << 20)
	}
	s := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func ids(t *testing.T, path string) []string {
	t.Helper()
	lines, err := ReadLines(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range lines {
		out = append(out, l.ID)
	}
	return out
}

func TestLineShape(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out", "events.ndjson")
	s := newSink(t, path, 0)
	ev := events(0, 1)
	ev[0].Data = json.RawMessage("{\n  \"id\": \"id-0000\",\n  \"s\": \"caf\\u00e9\"\n}")
	if err := s.Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	want := `{"source":"pingone-eu","provider":"pingone","tenant":"env-1","id":"id-0000","time":"2026-11-25T12:00:00.123Z","raw":{"id":"id-0000","s":"caf\u00e9"}}` + "\n"
	if string(b) != want {
		t.Fatalf("line =\n%s\nwant\n%s", b, want)
	}
}

func TestRawKeptByteForByte(t *testing.T) {
	path := filepath.Join(t.TempDir(), "e.ndjson")
	s := newSink(t, path, 0)
	raw := `{"z":1,"a":{"b":[1,2,3]},"id":"x","f":1.50}`
	if err := s.Send(context.Background(), []event.Raw{{Source: "s", ID: "x", Time: t0, Data: json.RawMessage(raw)}}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"raw":`+raw+"}") {
		t.Fatalf("raw changed: %s", b)
	}
}

func TestRestartSkipsLastBatchAndRepairsTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "e.ndjson")
	s := newSink(t, path, 0)
	ctx := context.Background()
	s.Send(ctx, events(0, 5))
	s.Send(ctx, events(5, 5))
	s.Close(ctx)
	// a crash mid-write left half a line
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"source":"pingone-eu","provider":"ping`)
	f.Close()
	// the restarted pipeline re-sends the unacknowledged batch 5..9 plus new events
	s2 := newSink(t, path, 0)
	if err := s2.Send(ctx, events(5, 8)); err != nil {
		t.Fatal(err)
	}
	// after the first write, no more skipping
	if err := s2.Send(ctx, events(0, 1)); err != nil {
		t.Fatal(err)
	}
	got := ids(t, path)
	want := []string{"id-0000", "id-0001", "id-0002", "id-0003", "id-0004", "id-0005", "id-0006", "id-0007", "id-0008", "id-0009", "id-0010", "id-0011", "id-0012", "id-0000"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("ids = %v\nwant %v", got, want)
	}
}

func TestRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "e.ndjson")
	s := newSink(t, path, 1) // 1 MiB
	ctx := context.Background()
	big := strings.Repeat("x", 300<<10)
	for i := range 13 {
		ev := events(i, 1)
		ev[0].Data = json.RawMessage(fmt.Sprintf(`{"id":"id-%04d","pad":%q}`, i, big))
		if err := s.Send(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	var all []string
	for _, p := range []string{path + ".3", path + ".2", path + ".1", path} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("missing %s: %v", p, err)
		}
		if st.Size() > 1<<20 {
			t.Fatalf("%s is %d bytes, over max_size", p, st.Size())
		}
		all = append(all, ids(t, p)...)
	}
	if _, err := os.Stat(path + ".4"); err == nil {
		t.Fatal("kept more than max_files rotated files")
	}
	// 3 per file; the oldest file (0..2) was dropped, 3..12 remain in order
	if strings.Join(all, ",") != "id-0003,id-0004,id-0005,id-0006,id-0007,id-0008,id-0009,id-0010,id-0011,id-0012" {
		t.Fatalf("ids across files = %v", all)
	}
}

func TestDiskFullIsTransient(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	s := newSink(t, "/dev/full", 0)
	err := s.Send(context.Background(), events(0, 3))
	if err == nil {
		t.Fatal("write to a full device succeeded")
	}
	if c, _ := delivery.ClassOf(err); c != delivery.Transient {
		t.Fatalf("class = %v, want transient", c)
	}
	if !strings.Contains(err.Error(), "no space left on device") || !strings.Contains(err.Error(), "free disk space") {
		t.Fatalf("message does not tell the operator what to do: %v", err)
	}
}

// TestRestartWithOtherBatchSize: the process that crashed wrote its last
// batch but never had it acknowledged; the restarted one re-sends it with
// another batch_size. Every event is in the file once, in order, whatever
// the sizes on both sides of the restart.
func TestRestartWithOtherBatchSize(t *testing.T) {
	for _, tc := range []struct{ before, after int }{
		{10, 4}, {4, 10}, {7, 3}, {1, 5}, {5, 1}, {10, 10}, {3, 7}, {10, 1},
	} {
		t.Run(fmt.Sprintf("%d-%d", tc.before, tc.after), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "e.ndjson")
			ctx := context.Background()
			s := newSink(t, path, 0)
			const written, total = 10, 25
			acked := 0 // start of the last, unacknowledged batch
			for from := 0; from < written; from += tc.before {
				n := min(tc.before, written-from)
				if err := s.Send(ctx, events(from, n)); err != nil {
					t.Fatal(err)
				}
				acked = from
			}
			s.Close(ctx) // kill -9 after the fsync, before the ack
			s2 := newSink(t, path, 0)
			for from := acked; from < total; from += tc.after {
				if err := s2.Send(ctx, events(from, min(tc.after, total-from))); err != nil {
					t.Fatal(err)
				}
			}
			var want []string
			for i := range total {
				want = append(want, fmt.Sprintf("id-%04d", i))
			}
			if got := ids(t, path); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("ids = %v\nwant %v", got, want)
			}
		})
	}
}

// TestNormalizedFormats writes OCSF and ECS lines, and restarts: the
// events of the last batch, sent again, are recognized in those formats
// too and written once.
func TestNormalizedFormats(t *testing.T) {
	for _, tt := range []struct{ format, idPath string }{{"ocsf", "metadata.uid"}, {"ecs", "event.id"}} {
		path := filepath.Join(t.TempDir(), "e.ndjson")
		cfg := Config{Path: path, Format: tt.format}
		cfg.SetDefaults()
		if errs := cfg.Validate(); len(errs) > 0 {
			t.Fatal(errs)
		}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		s := New(cfg, log)
		if err := s.Send(context.Background(), events(0, 3)); err != nil {
			t.Fatal(err)
		}
		s.Close(context.Background())
		s = New(cfg, log)
		if err := s.Send(context.Background(), events(1, 4)); err != nil {
			t.Fatal(err)
		}
		s.Close(context.Background())
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			var doc map[string]any
			if err := json.Unmarshal([]byte(l), &doc); err != nil {
				t.Fatalf("%s: line %q: %v", tt.format, l, err)
			}
			parts := strings.Split(tt.idPath, ".")
			id, _ := doc[parts[0]].(map[string]any)[parts[1]].(string)
			got = append(got, id)
		}
		if want := "id-0000 id-0001 id-0002 id-0003 id-0004"; strings.Join(got, " ") != want {
			t.Errorf("%s: ids %v, want %s", tt.format, got, want)
		}
	}
	bad := Config{Path: "x", Format: "asim"}
	bad.SetDefaults()
	if errs := bad.Validate(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "format:") {
		t.Errorf("format asim: %v", errs)
	}
}

// TestWriteCutShortLeavesNoHole: a write cut short by a file-size limit
// (as by a full disk) is cut off the file, and the next write, once there
// is room, goes where the file ends: every line is whole and no zero
// bytes sit between them.
func TestWriteCutShortLeavesNoHole(t *testing.T) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Skipf("no file size limit to set: %v", err)
	}
	path := filepath.Join(t.TempDir(), "e.ndjson")
	s := newSink(t, path, 0)
	ctx := context.Background()
	if err := s.Send(ctx, events(0, 3)); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	limit := syscall.Rlimit{Cur: uint64(st.Size()) + 100, Max: old.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Skipf("cannot set a file size limit: %v", err)
	}
	err := s.Send(ctx, events(3, 3))
	if rerr := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); rerr != nil {
		t.Fatal(rerr)
	}
	if err == nil {
		t.Fatal("a write over the file size limit succeeded")
	}
	if err := s.Send(ctx, events(3, 3)); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if bytes.IndexByte(b, 0) >= 0 {
		t.Fatalf("the file holds zero bytes after the cut-short write: %q", b)
	}
	if got := strings.Join(ids(t, path), ","); got != "id-0000,id-0001,id-0002,id-0003,id-0004,id-0005" {
		t.Fatalf("ids = %s", got)
	}
}
