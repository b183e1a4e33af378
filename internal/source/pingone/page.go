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
	if !normalize.Valid(body) {
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			return page{}, fmt.Errorf("malformed page: %w", err)
		}
		return page{}, errors.New("malformed page: not JSON")
	}
	body = bytes.TrimSpace(body)
	if isNull(body) {
		return page{}, errors.New("malformed page: no _embedded")
	}
	if body[0] != '{' {
		return page{}, errors.New("malformed page: not a JSON object")
	}
	var links, embedded []byte
	for k, v := range normalize.Members(body) {
		switch string(k) {
		case "_links":
			links = v
		case "_embedded":
			embedded = v
		}
	}
	var p page
	if links != nil && !isNull(links) {
		if links[0] != '{' {
			return page{}, errors.New("malformed page: _links is not an object")
		}
		var next []byte
		for k, v := range normalize.Members(links) {
			if string(k) == "next" {
				next = v
			}
		}
		if next != nil && !isNull(next) {
			if next[0] != '{' {
				return page{}, errors.New("malformed page: _links.next is not an object")
			}
			var href []byte
			for k, v := range normalize.Members(next) {
				if string(k) == "href" {
					href = v
				}
			}
			if href != nil && !isNull(href) {
				var err error
				if p.Next, err = decodeString(href); err != nil {
					return page{}, fmt.Errorf("malformed page: _links.next.href: %w", err)
				}
			}
			if p.Next == "" {
				return page{}, errors.New("malformed page: _links.next has no href")
			}
		}
	}
	if embedded == nil || isNull(embedded) {
		return page{}, errors.New("malformed page: no _embedded")
	}
	if embedded[0] != '{' {
		return page{}, errors.New("malformed page: _embedded is not an object")
	}
	var acts []byte
	for k, v := range normalize.Members(embedded) {
		if string(k) == "activities" {
			acts = v
		}
	}
	if acts == nil || isNull(acts) {
		return page{}, errors.New("malformed page: no _embedded.activities")
	}
	if acts[0] != '[' {
		return page{}, errors.New("malformed page: _embedded.activities is not an array")
	}
	// About one activity per kilobyte: rarely more than one growth.
	p.Activities = make([]activity, 0, len(acts)>>10+1)
	i := 0
	for raw := range normalize.Elements(acts) {
		a, err := decodeActivity(raw)
		if err != nil {
			return page{}, fmt.Errorf("malformed page: activity %d: %w", i, err)
		}
		p.Activities = append(p.Activities, a)
		i++
	}
	return p, nil
}

// decodeActivity extracts the id and recordedAt of one activity, which is
// valid JSON without surrounding whitespace.
func decodeActivity(raw []byte) (activity, error) {
	if isNull(raw) {
		return activity{}, errors.New("activity is null")
	}
	if raw[0] != '{' {
		return activity{}, errors.New("activity is not a JSON object")
	}
	var rawID, rawAt []byte
	for k, v := range normalize.Members(raw) {
		switch string(k) {
		case "id":
			rawID = v
		case "recordedAt":
			rawAt = v
		}
		if rawID != nil && rawAt != nil {
			break // both found: the rest of the activity is not scanned
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
	t, err := parseTime(at)
	if err != nil {
		return activity{}, fmt.Errorf("activity %q: recordedAt: %w", id, err)
	}
	return activity{ID: id, RecordedAt: t, Data: raw}, nil
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
