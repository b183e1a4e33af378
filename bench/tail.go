package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// tailer follows a file that is only appended to, reading each byte once.
type tailer struct {
	path    string
	f       *os.File
	lines   int64  // complete lines seen
	partial []byte // an incomplete last line, kept when lines are wanted
	buf     []byte
}

// newTailer returns a tailer of path, which need not exist yet.
func newTailer(path string) *tailer {
	return &tailer{path: path, buf: make([]byte, 1<<20)}
}

// poll reads what was appended since the last call and returns the number
// of complete lines so far. When line is not nil it is called with each new
// complete line (without its newline; the slice is only valid during the
// call).
func (t *tailer) poll(line func([]byte)) (int64, error) {
	if t.f == nil {
		f, err := os.Open(t.path)
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("tail %s: %w", t.path, err)
		}
		t.f = f
	}
	for {
		n, err := t.f.Read(t.buf)
		chunk := t.buf[:n]
		if line == nil {
			t.lines += int64(bytes.Count(chunk, []byte{'\n'}))
		} else {
			for len(chunk) > 0 {
				i := bytes.IndexByte(chunk, '\n')
				if i < 0 {
					t.partial = append(t.partial, chunk...)
					break
				}
				if len(t.partial) > 0 {
					t.partial = append(t.partial, chunk[:i]...)
					line(t.partial)
					t.partial = t.partial[:0]
				} else {
					line(chunk[:i])
				}
				t.lines++
				chunk = chunk[i+1:]
			}
		}
		if err == io.EOF || (err == nil && n < len(t.buf)) {
			return t.lines, nil
		}
		if err != nil {
			return t.lines, fmt.Errorf("tail %s: %w", t.path, err)
		}
	}
}

// Close closes the file.
func (t *tailer) Close() error {
	if t.f == nil {
		return nil
	}
	return t.f.Close()
}

// lineID returns the top-level "id" of an NDJSON line of the file sink.
func lineID(line []byte) (string, error) {
	var l struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(line, &l); err != nil {
		return "", fmt.Errorf("malformed line: %w", err)
	}
	if l.ID == "" {
		return "", errors.New("line without an id")
	}
	return l.ID, nil
}

// fileIDs reads a whole NDJSON file and returns its line count and how many
// times each id appears.
func fileIDs(path string) (lines int, ids map[string]int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, fmt.Errorf("read the sink file: %w", err)
	}
	defer f.Close()
	ids = map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		lines++
		id, err := lineID(sc.Bytes())
		if err != nil {
			return lines, ids, fmt.Errorf("%s line %d: %w", path, lines, err)
		}
		ids[id]++
	}
	if err := sc.Err(); err != nil {
		return lines, ids, fmt.Errorf("read %s: %w", path, err)
	}
	return lines, ids, nil
}
