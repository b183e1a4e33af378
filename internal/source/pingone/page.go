package pingone

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/normalize"
)

// activity is one decoded activity of a page: the fields the windows need,
// and the activity's JSON exactly as served.
type activity struct {
	ID         string
	RecordedAt time.Time
	Data       json.RawMessage
}

// page is one decoded page of GET /activities.
type page struct {
	Activities []activity
	// Next is the href of _links.next, empty on the window's last page.
	Next string
}

// decodePage decodes a page body. Any malformation (bad or truncated JSON, no
// _embedded.activities, an activity without an id or a parsable recordedAt)
// is an error: a page is used whole or not at all, so a damaged page is
// fetched again rather than half-read.
//
// The body is checked once and then walked without decoding: each
// activity's Data is a sub-slice of body, the bytes it was served with,
// and only its id and recordedAt are decoded. In the envelope later
// duplicates of a key win, as with encoding/json; in an activity the
// first id and recordedAt do, and the scan stops there.
func decodePage(body []byte) (page, error) {
	// The envelope, _links.next, _embedded.activities, each activity and
	// its members are recorded in the one pass that checks the page.
	// An activity of a kilobyte has about ten members.
	t := normalize.Tape{}
	t.Grow(len(body)/96 + 16)
	if !t.Scan(body, 4) {
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			return page{}, fmt.Errorf("malformed page: %w", err)
		}
		return page{}, errors.New("malformed page: not JSON")
	}
	root := t.Value(0)
	if isNull(root) {
		return page{}, errors.New("malformed page: no _embedded")
	}
	if root[0] != '{' {
		return page{}, errors.New("malformed page: not a JSON object")
	}
	links, embedded := -1, -1
	for k, n := range t.Members(0) {
		switch string(k) {
		case "_links":
			links = n
		case "_embedded":
			embedded = n
		}
	}
	var p page
	if links >= 0 && !isNull(t.Value(links)) {
		if t.Value(links)[0] != '{' {
			return page{}, errors.New("malformed page: _links is not an object")
		}
		next := member(&t, links, "next")
		if next >= 0 && !isNull(t.Value(next)) {
			if t.Value(next)[0] != '{' {
				return page{}, errors.New("malformed page: _links.next is not an object")
			}
			if href := member(&t, next, "href"); href >= 0 && !isNull(t.Value(href)) {
				var err error
				if p.Next, err = decodeString(t.Value(href)); err != nil {
					return page{}, fmt.Errorf("malformed page: _links.next.href: %w", err)
				}
			}
			if p.Next == "" {
				return page{}, errors.New("malformed page: _links.next has no href")
			}
		}
	}
	if embedded < 0 || isNull(t.Value(embedded)) {
		return page{}, errors.New("malformed page: no _embedded")
	}
	if t.Value(embedded)[0] != '{' {
		return page{}, errors.New("malformed page: _embedded is not an object")
	}
	acts := member(&t, embedded, "activities")
	if acts < 0 || isNull(t.Value(acts)) {
		return page{}, errors.New("malformed page: no _embedded.activities")
	}
	if t.Value(acts)[0] != '[' {
		return page{}, errors.New("malformed page: _embedded.activities is not an array")
	}
	p.Activities = make([]activity, 0, len(t.Value(acts))>>10+1)
	i := 0
	for n := range t.Elements(acts) {
		a, err := decodeActivity(&t, n)
		if err != nil {
			return page{}, fmt.Errorf("malformed page: activity %d: %w", i, err)
		}
		p.Activities = append(p.Activities, a)
		i++
	}
	return p, nil
}

// member returns the node of the last member named key of the object at
// node n, as encoding/json lets a later duplicate win; -1 when absent.
func member(t *normalize.Tape, n int, key string) int {
	found := -1
	for k, c := range t.Members(n) {
		if string(k) == key {
			found = c
		}
	}
	return found
}

// decodeActivity extracts the id and recordedAt of the activity at node n
// of t, whose members t recorded.
func decodeActivity(t *normalize.Tape, n int) (activity, error) {
	raw := t.Value(n)
	if isNull(raw) {
		return activity{}, errors.New("activity is null")
	}
	if raw[0] != '{' {
		return activity{}, errors.New("activity is not a JSON object")
	}
	var rawID, rawAt []byte
	for k, c := range t.Members(n) {
		switch string(k) {
		case "id":
			rawID = t.Value(c)
		case "recordedAt":
			rawAt = t.Value(c)
		}
		if rawID != nil && rawAt != nil {
			break // the first of each wins, as before
		}
	}
	id, err := decodeID(rawID)
	if err != nil {
		return activity{}, err
	}
	if rawAt == nil || isNull(rawAt) {
		return activity{}, fmt.Errorf("activity %q has no recordedAt", id)
	}
	at, err := decodeString(rawAt)
	if err != nil {
		return activity{}, fmt.Errorf("activity %q: recordedAt: %w", id, err)
	}
	when, err := parseTime(at)
	if err != nil {
		return activity{}, fmt.Errorf("activity %q: recordedAt: %w", id, err)
	}
	return activity{ID: id, RecordedAt: when, Data: raw}, nil
}

// isNull reports whether the raw JSON value v is null.
func isNull(v []byte) bool { return string(v) == "null" }

// decodeString decodes the raw JSON string v: directly when it holds no
// escape and is valid UTF-8 (the common case), through encoding/json
// otherwise, which also replaces invalid UTF-8 as it always did.
func decodeString(v []byte) (string, error) {
	if len(v) < 2 || v[0] != '"' {
		return "", fmt.Errorf("%s is not a string", httpx.OneLine(string(v), 40))
	}
	in := v[1 : len(v)-1]
	if bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in) {
		return string(in), nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", err
	}
	return s, nil
}

// decodeID returns an activity id: a non-empty JSON string (or, leniently, a
// number). Its format is never checked further: ids are opaque.
func decodeID(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || isNull(raw) {
		return "", errors.New("activity has no id")
	}
	var id string
	if raw[0] == '"' {
		var err error
		if id, err = decodeString(raw); err != nil {
			return "", fmt.Errorf("activity id: %w", err)
		}
	} else {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", fmt.Errorf("activity id is not a string: %s", httpx.OneLine(string(raw), 40))
		}
		id = n.String()
	}
	if strings.TrimSpace(id) == "" {
		return "", errors.New("activity has an empty id")
	}
	return id, nil
}

// parseTime parses an API timestamp such as 2026-11-25T12:00:00.123Z.
func parseTime(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 timestamp", httpx.OneLine(v, 40))
	}
	return t.UTC(), nil
}
