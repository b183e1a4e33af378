// Package file writes events as NDJSON to a local file, one event per line:
// by default the raw provider JSON under "raw" plus source, provider,
// tenant, id and time; with format ocsf or ecs, the event normalized to
// that schema (internal/normalize). Each batch is written with one write and fsynced before it is
// acknowledged; the file rotates by size.
//
// A crash between the fsync and the pipeline's acknowledgement would send
// the last batch again. On open the sink therefore reads back the ids of its
// last lines and skips those events once, so a restart after kill -9 leaves
// no duplicate in the file; a partial last line is cut off.
package file

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/normalize"
	"github.com/auditrelay/auditrelay/internal/rotate"
)

// maxBatchSize is the largest batch_size the configuration accepts.
const maxBatchSize = 10000

// Sink is a file sink. It is safe for use by one runner at a time.
type Sink struct {
	cfg  Config
	log  *slog.Logger
	mu   sync.Mutex
	f    *os.File
	size int64
	// recent holds source+"\x00"+id of the lines written last before this
	// process opened the file. The events sent again after a restart lead
	// the first batches, so recent is consulted until an event not in it
	// has been written: the spool has then moved past the read-back lines,
	// however many batches of whatever batch_size that took.
	recent  map[string]bool
	scratch []byte
}

// New returns a sink for cfg (defaulted and validated). It does no I/O.
func New(cfg Config, log *slog.Logger) *Sink {
	return &Sink{cfg: cfg, log: log}
}

// Send writes batch to the file and fsyncs it.
func (s *Sink) Send(ctx context.Context, batch []event.Raw) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		if err := s.open(); err != nil {
			return err
		}
	}
	b := s.scratch[:0]
	defer func() { s.scratch = b[:0] }()
	skipped := 0
	for i := range batch {
		if len(b) == 0 && s.recent != nil && s.recent[batch[i].Source+"\x00"+batch[i].ID] {
			skipped++
			continue
		}
		var err error
		if b, err = normalize.AppendLine(b, normalize.Format(s.cfg.Format), &batch[i]); err != nil {
			return &delivery.Error{Class: delivery.Permanent, Op: "file: encode", Err: err,
				Fix: "set file.format: raw for this sink, which writes any event as served"}
		}
	}
	if skipped > 0 {
		s.log.Info("skipped events already written before the restart", "events", skipped)
	}
	if len(b) == 0 {
		return nil // every event was read back: more may follow
	}
	if rotate.Due(s.size, int64(len(b)), int64(s.cfg.MaxSize)) {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	// At the size written so far, not the file offset: after a write
	// cut short (a full disk) and the truncation below, the offset is
	// past the end, and writing there would leave a run of zero bytes.
	n, err := s.f.WriteAt(b, s.size)
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		// Cut what was written so no partial line stays behind; the batch
		// is sent again later.
		if terr := s.f.Truncate(s.size); terr != nil {
			s.log.Warn("cannot cut a partial write; reopening", "err", terr)
			s.f.Close()
			s.f = nil
		}
		return &delivery.Error{Class: delivery.Transient, Op: "file: write " + s.cfg.Path, Err: err,
			Fix: "free disk space or fix the file system; events stay in the spool and are written when it works again"}
	}
	s.size += int64(n)
	s.recent = nil
	return nil
}

// Rereads returns how many of the last lines written before a restart the
// sink recognizes and skips when they are sent again.
func (s *Sink) Rereads() int { return maxBatchSize }

func (s *Sink) open() error {
	if err := os.MkdirAll(filepath.Dir(s.cfg.Path), 0o750); err != nil {
		return &delivery.Error{Class: delivery.Transient, Op: "file: create directory", Err: err, Fix: "make the directory writable or change file.path"}
	}
	f, err := os.OpenFile(s.cfg.Path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return &delivery.Error{Class: delivery.Transient, Op: "file: open", Err: err, Fix: "make the file writable or change file.path"}
	}
	size, err := repairTail(f)
	if err != nil {
		f.Close()
		return &delivery.Error{Class: delivery.Transient, Op: "file: check " + s.cfg.Path, Err: err}
	}
	if _, err := f.Seek(size, io.SeekStart); err != nil {
		f.Close()
		return &delivery.Error{Class: delivery.Transient, Op: "file: seek", Err: err}
	}
	s.recent = map[string]bool{}
	// The unacknowledged batch may have been written with a larger
	// batch_size before a restart: read back as many lines as any batch
	// can hold.
	want := maxBatchSize
	got := tailIDs(f, size, want, s.recent)
	if got < want {
		if old, err := os.Open(s.cfg.Path + ".1"); err == nil {
			if st, err := old.Stat(); err == nil {
				tailIDs(old, st.Size(), want-got, s.recent)
			}
			old.Close()
		}
	}
	s.f, s.size = f, size
	return nil
}

// repairTail cuts a partial last line (left by a crash mid-write) and
// returns the file's size.
func repairTail(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	if size == 0 {
		return 0, nil
	}
	var one [1]byte
	if _, err := f.ReadAt(one[:], size-1); err != nil {
		return 0, err
	}
	if one[0] == '\n' {
		return size, nil
	}
	// walk back to the previous newline
	end := size
	buf := make([]byte, 64<<10)
	for end > 0 {
		start := max(0, end-int64(len(buf)))
		chunk := buf[:end-start]
		if _, err := f.ReadAt(chunk, start); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			end = start + int64(i) + 1
			break
		}
		end = start
	}
	if err := f.Truncate(end); err != nil {
		return 0, err
	}
	return end, f.Sync()
}

// tailIDs adds the source/id of up to n last lines of f (of the given size)
// to ids and returns how many lines it read.
func tailIDs(f *os.File, size int64, n int, ids map[string]bool) int {
	if n <= 0 || size == 0 {
		return 0
	}
	// Read backwards until n+1 newlines are seen or the file starts.
	const chunk = 256 << 10
	start := size
	var data []byte
	for start > 0 && bytes.Count(data, []byte{'\n'}) <= n {
		from := max(0, start-chunk)
		b := make([]byte, start-from)
		if _, err := f.ReadAt(b, from); err != nil {
			return 0
		}
		data = append(b, data...)
		start = from
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte{'\n'}), []byte{'\n'})
	if start > 0 && len(lines) > 0 {
		lines = lines[1:] // the first may be cut
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	read := 0
	for _, l := range lines {
		if src, id, ok := normalize.LineKey(l); ok {
			ids[src+"\x00"+id] = true
			read++
		}
	}
	return read
}

// rotate renames path to path.1 (shifting older files up to max_files) and
// opens a new path.
func (s *Sink) rotate() error {
	if err := s.f.Close(); err != nil {
		s.log.Warn("close before rotation", "err", err)
	}
	s.f = nil
	p := s.cfg.Path
	if err := rotate.Shift(p, s.cfg.MaxFiles); err != nil {
		return &delivery.Error{Class: delivery.Transient, Op: "file", Err: err}
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return &delivery.Error{Class: delivery.Transient, Op: "file: open after rotation", Err: err}
	}
	s.f, s.size = f, 0
	return nil
}

// Close closes the file.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	if err != nil {
		return fmt.Errorf("file: close: %w", err)
	}
	return nil
}

// ReadLines reads every line of an NDJSON file written by this sink, for
// tests and tools. It fails on a malformed line.
func ReadLines(path string) ([]event.Line, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []event.Line
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		var l event.Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return out, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, l)
	}
	return out, sc.Err()
}
