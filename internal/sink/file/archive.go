package file

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/rotate"
)

// ArchiveFiles returns the files of the archive a file sink writing path
// keeps, oldest first: its rotated files path.N … path.1, then path. Files
// missing from either end are skipped; it fails when none exists.
func ArchiveFiles(path string) ([]string, error) {
	out := rotate.Files(path)
	if len(out) == 0 {
		return nil, fmt.Errorf("file: no archive at %s (nor %s.1): pass the path: of the file sink whose output to read", path, path)
	}
	return out, nil
}

// ScanArchive calls fn with the event of every line of files, in order.
// Only lines written with format raw (the default) carry the provider's
// event; a line of another format, a malformed line or a last line cut
// short by an interrupted write fails with its file and line number, before
// fn sees anything after it.
func ScanArchive(files []string, fn func(event.Raw) error) error {
	for _, p := range files {
		if err := scanFile(p, fn); err != nil {
			return err
		}
	}
	return nil
}

func scanFile(path string, fn func(event.Raw) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("file: read the archive: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(bytes.TrimSpace(line)) > 0 {
				return fmt.Errorf("file: %s:%d: the last line is cut short (a write was interrupted, or the sink is writing it now); replay reads complete lines only: copy the archive and remove that line, or let the daemon repair it (it cuts such a line when it opens the file)", path, n)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("file: read %s: %w", path, err)
		}
		ev, err := decodeLine(line)
		if err != nil {
			return fmt.Errorf("file: %s:%d: %w", path, n, err)
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
}

// decodeLine decodes a line written with format raw.
func decodeLine(line []byte) (event.Raw, error) {
	var l event.Line
	if err := json.Unmarshal(line, &l); err != nil {
		return event.Raw{}, fmt.Errorf("not a line of the file sink: %w", err)
	}
	if len(l.Raw) == 0 || l.Source == "" || l.ID == "" {
		return event.Raw{}, errors.New("the line carries no raw provider event (only a file sink with format: raw, the default, can be replayed)")
	}
	t, err := time.Parse(time.RFC3339Nano, l.Time)
	if err != nil {
		return event.Raw{}, fmt.Errorf("time %q: %w", l.Time, err)
	}
	return event.Raw{Source: l.Source, Provider: l.Provider, Tenant: l.Tenant, ID: l.ID, Time: t.UTC(), Data: []byte(l.Raw)}, nil
}
