package stdout

import (
	"context"
	"io"
	"sync"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/normalize"
)

// Sink writes NDJSON lines to a writer, normally os.Stdout. A batch is
// acknowledged once it is written to the writer.
type Sink struct {
	mu     sync.Mutex
	w      io.Writer
	format normalize.Format
	buf    []byte
}

// New returns a sink writing to w in cfg's format (defaulted and
// validated).
func New(cfg Config, w io.Writer) *Sink { return &Sink{w: w, format: normalize.Format(cfg.Format)} }

// Send writes batch as NDJSON lines with one write.
func (s *Sink) Send(_ context.Context, batch []event.Raw) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buf[:0]
	for i := range batch {
		var err error
		if b, err = normalize.AppendLine(b, s.format, &batch[i]); err != nil {
			return &delivery.Error{Class: delivery.Permanent, Op: "stdout: encode", Err: err,
				Fix: "set stdout.format: raw for this sink, which writes any event as served"}
		}
	}
	s.buf = b[:0]
	if _, err := s.w.Write(b); err != nil {
		return &delivery.Error{Class: delivery.Transient, Op: "stdout: write", Err: err}
	}
	return nil
}

// Close does nothing: standard output belongs to the process.
func (s *Sink) Close(context.Context) error { return nil }
