// Package park keeps the events a destination will never accept (too large
// for it, or refused one by one), and the spool records that cannot be
// decoded at all: each is appended to an NDJSON file beside
// the store and fsynced before the sink acknowledges it, so that an operator
// can inspect it and replay it. Nothing is dropped silently.
package park

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/rotate"
)

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

// Keep appends ev to the file, in the file sink's line shape with the reason
// added, and fsyncs it.
func (f *File) Keep(ev *event.Raw, reason string) error {
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
	line = append(append(line, r...), "}\n"...)
	return f.write(line)
}

// KeepRecord appends a spool record that could not be decoded, as
// {"spool_seq":N,"record":"<base64 of its bytes>","parked_reason":"…"},
// and fsyncs it.
func (f *File) KeepRecord(seq uint64, record []byte, reason string) error {
	line, err := json.Marshal(struct {
		Seq    uint64 `json:"spool_seq"`
		Record []byte `json:"record"`
		Reason string `json:"parked_reason"`
	}{seq, record, reason})
	if err != nil {
		return fmt.Errorf("park: encode spool record %d: %w", seq, err)
	}
	return f.write(append(line, '\n'))
}

// write appends one line, rotating the file first when the line would take
// it past its size limit, and fsyncs it.
func (f *File) write(line []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(f.path), 0o750); err != nil {
		return fmt.Errorf("park: %w (make the data_dir writable)", err)
	}
	fh, err := os.OpenFile(f.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("park: %w (make the data_dir writable)", err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return fmt.Errorf("park: %w", err)
	}
	if rotate.Due(st.Size(), int64(len(line)), f.maxSize) {
		fh.Close()
		if err := rotate.Shift(f.path, f.maxFiles); err != nil {
			return fmt.Errorf("park: %w (make the data_dir writable)", err)
		}
		if fh, err = os.OpenFile(f.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640); err != nil {
			return fmt.Errorf("park: %w (make the data_dir writable)", err)
		}
	}
	if _, err := fh.Write(line); err != nil {
		fh.Close()
		return fmt.Errorf("park: write %s: %w", f.path, err)
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return fmt.Errorf("park: sync %s: %w", f.path, err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("park: close %s: %w", f.path, err)
	}
	return nil
}
