// Package park keeps the events a destination will never accept (too large
// for it, or refused one by one), and the spool records that cannot be
// decoded at all, so that an operator can inspect and replay them: nothing
// is dropped silently. A Keeper holds them durably before the sink
// acknowledges: File appends NDJSON lines beside the store and fsyncs them
// (the embedded store), and the PostgreSQL store keeps the same lines in its
// parked table (see store/postgres), where they outlive the replica.
package park

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/rotate"
)

// Keeper keeps one sink's parked events and unreadable spool records. Keep
// and KeepRecord return nil only once the line is durable; their errors say
// what the operator should do. Implementations are safe for concurrent use.
type Keeper interface {
	// Keep keeps an event the sink can never send, with the reason.
	Keep(ev *event.Raw, reason string) error
	// KeepRecord keeps the bytes of spool entry seq, which cannot be
	// decoded, with the reason.
	KeepRecord(seq uint64, record []byte, reason string) error
	// Where says where the lines go, for log lines and status: a file's
	// path, or the table of a database.
	Where() string
}

// NotKept is what a sink without a Keeper logs as where a parked event
// went.
const NotKept = "(not kept: no park file)"

// Event keeps ev in k for the operation op of a sink and returns where it
// went, for the sink's log line (NotKept when k is nil). A failure comes back
// as a transient delivery error: the batch is retried, the event is never
// dropped.
func Event(k Keeper, op string, ev *event.Raw, reason string) (string, error) {
	if k == nil {
		return NotKept, nil
	}
	if err := k.Keep(ev, reason); err != nil {
		return "", &delivery.Error{Class: delivery.Transient, Op: op + " " + ev.ID, Err: err}
	}
	return k.Where(), nil
}

// EventLine returns the line a parked event is kept as: the file sink's
// line shape (or {"source","id","raw_text"} when the event is not JSON)
// with "parked_reason" added, and a newline.
func EventLine(ev *event.Raw, reason string) []byte {
	var line []byte
	var err error
	if json.Valid(ev.Data) {
		line, err = event.AppendLine(nil, ev)
	}
	if line == nil || err != nil {
		// Not JSON at all: keep the bytes as a JSON string.
		j, _ := json.Marshal(string(ev.Data))
		src, _ := json.Marshal(ev.Source)
		id, _ := json.Marshal(ev.ID)
		line = fmt.Appendf(nil, `{"source":%s,"id":%s,"raw_text":%s}`+"\n", src, id, j)
	}
	r, _ := json.Marshal(reason)
	line = append(bytes.TrimSuffix(line, []byte("}\n")), `,"parked_reason":`...)
	return append(append(line, r...), "}\n"...)
}

// RecordLine returns the line an unreadable spool record is kept as:
// {"spool_seq":N,"record":"<base64 of its bytes>","parked_reason":"…"} and
// a newline.
func RecordLine(seq uint64, record []byte, reason string) []byte {
	line, _ := json.Marshal(struct { // cannot fail: a number, bytes and a string
		Seq    uint64 `json:"spool_seq"`
		Record []byte `json:"record"`
		Reason string `json:"parked_reason"`
	}{seq, record, reason})
	return append(line, '\n')
}

// Path returns the park file of a sink: data_dir/parked/<sink>.ndjson.
func Path(dataDir, sink string) string {
	return filepath.Join(dataDir, "parked", sink+".ndjson")
}

// Park files rotate like the file sink's: when a line would take the file
// past DefaultMaxSize it becomes <sink>.ndjson.1 (older ones shift up) and
// at most DefaultMaxFiles rotated files are kept.
const (
	DefaultMaxSize  = 100 << 20
	DefaultMaxFiles = 10
)

// File is one sink's park file. It is safe for concurrent use.
type File struct {
	path     string
	maxSize  int64
	maxFiles int
	mu       sync.Mutex
}

// New returns the park file at path, rotated at DefaultMaxSize. It does no
// I/O.
func New(path string) *File {
	return &File{path: path, maxSize: DefaultMaxSize, maxFiles: DefaultMaxFiles}
}

// Path returns the file's path.
func (f *File) Path() string { return f.path }

// Where returns the file's path.
func (f *File) Where() string { return f.path }

// Keep appends ev to the file as EventLine does, and fsyncs it.
func (f *File) Keep(ev *event.Raw, reason string) error {
	return f.write(EventLine(ev, reason))
}

// KeepRecord appends a spool record that could not be decoded, as
// RecordLine does, and fsyncs it.
func (f *File) KeepRecord(seq uint64, record []byte, reason string) error {
	return f.write(RecordLine(seq, record, reason))
}

// write appends one line, rotating the file first when the line would take
// it past its size limit, and fsyncs it.
func (f *File) write(line []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fix := "free disk space or fix the permissions of " + filepath.Dir(f.path)
	if err := os.MkdirAll(filepath.Dir(f.path), 0o750); err != nil {
		return fmt.Errorf("park: %w (%s)", err, fix)
	}
	fh, err := os.OpenFile(f.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("park: %w (%s)", err, fix)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return fmt.Errorf("park: %w", err)
	}
	if rotate.Due(st.Size(), int64(len(line)), f.maxSize) {
		fh.Close()
		if err := rotate.Shift(f.path, f.maxFiles); err != nil {
			return fmt.Errorf("park: %w (%s)", err, fix)
		}
		if fh, err = os.OpenFile(f.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640); err != nil {
			return fmt.Errorf("park: %w (%s)", err, fix)
		}
	}
	if _, err := fh.Write(line); err != nil {
		fh.Close()
		return fmt.Errorf("park: write %s: %w (%s)", f.path, err, fix)
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return fmt.Errorf("park: sync %s: %w (%s)", f.path, err, fix)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("park: close %s: %w (%s)", f.path, err, fix)
	}
	return nil
}

// File is a Keeper.
var _ Keeper = (*File)(nil)
