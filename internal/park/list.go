package park

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Entry is one parked line of a sink, as `auditrelay store parked` lists
// it.
type Entry struct {
	Sink string
	// ParkedAt is when the line was kept; zero when not known (the lines
	// of a park file carry no time).
	ParkedAt time.Time
	// Line is the kept line (EventLine or RecordLine) without its
	// newline.
	Line []byte
}

// AppendJSON appends e as one NDJSON line: the kept line's object with
// "sink" (and "parked_at", when known) put first. A line that is not a JSON
// object (the torn end of a file written during a crash) is kept as the
// string "unreadable_line".
func (e Entry) AppendJSON(b []byte) []byte {
	sink, _ := json.Marshal(e.Sink)
	b = append(append(b, `{"sink":`...), sink...)
	if !e.ParkedAt.IsZero() {
		b = append(b, `,"parked_at":"`...)
		b = e.ParkedAt.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	line := bytes.TrimSpace(e.Line)
	if len(line) < 2 || line[0] != '{' || !json.Valid(line) {
		s, _ := json.Marshal(string(e.Line))
		b = append(append(b, `,"unreadable_line":`...), s...)
		return append(b, "}\n"...)
	}
	if rest := bytes.TrimSpace(line[1:]); len(rest) > 0 && rest[0] != '}' {
		b = append(b, ',')
	}
	b = append(b, line[1:]...)
	return append(b, '\n')
}

// ReadFiles calls fn with every line of the park files under dataDir, of
// the named sink or of every sink when sink is empty: sink by sink in name
// order, each from its oldest rotated file to the current one. Missing
// files are no error.
func ReadFiles(dataDir, sink string, fn func(Entry) error) error {
	dir := filepath.Join(dataDir, "parked")
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("park: read %s: %w", dir, err)
	}
	// files[sink] = rotation numbers present (0 is the current file)
	files := map[string][]int{}
	for _, de := range des {
		name := de.Name()
		if !de.Type().IsRegular() {
			continue
		}
		n := 0
		if s, ok := strings.CutSuffix(name, ".ndjson"); ok {
			name = s
		} else if i := strings.LastIndex(name, ".ndjson."); i >= 0 {
			v, err := strconv.Atoi(name[i+len(".ndjson."):])
			if err != nil || v < 1 {
				continue
			}
			n, name = v, name[:i]
		} else {
			continue
		}
		if sink == "" || name == sink {
			files[name] = append(files[name], n)
		}
	}
	sinks := make([]string, 0, len(files))
	for s := range files {
		sinks = append(sinks, s)
	}
	sort.Strings(sinks)
	for _, s := range sinks {
		ns := files[s]
		sort.Sort(sort.Reverse(sort.IntSlice(ns))) // the oldest (highest) first, the current (0) last
		for _, n := range ns {
			path := Path(dataDir, s)
			if n > 0 {
				path += "." + strconv.Itoa(n)
			}
			if err := readFile(path, s, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func readFile(path, sink string, fn func(Entry) error) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // rotated away meanwhile
	}
	if err != nil {
		return fmt.Errorf("park: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if l := bytes.TrimSuffix(line, []byte("\n")); len(bytes.TrimSpace(l)) > 0 {
			if ferr := fn(Entry{Sink: sink, Line: l}); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("park: read %s: %w", path, err)
		}
	}
}
