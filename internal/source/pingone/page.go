package pingone

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/httpx"
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

// pageJSON is the envelope of a page. Activities stay raw so that each keeps
// the bytes it was served with.
type pageJSON struct {
	Links struct {
		Next *struct {
			Href *string `json:"href"`
		} `json:"next"`
	} `json:"_links"`
	Embedded *struct {
		Activities *[]json.RawMessage `json:"activities"`
	} `json:"_embedded"`
}

// activityKeys are the fields of an activity that paging relies on.
type activityKeys struct {
	ID         json.RawMessage `json:"id"`
	RecordedAt *string         `json:"recordedAt"`
}

// decodePage decodes a page body. Any malformation (bad or truncated JSON, no
// _embedded.activities, an activity without an id or a parsable recordedAt)
// is an error: a page is used whole or not at all, so a damaged page is
// fetched again rather than half-read.
func decodePage(body []byte) (page, error) {
	var env pageJSON
	if err := json.Unmarshal(body, &env); err != nil {
		return page{}, fmt.Errorf("malformed page: %w", err)
	}
	if env.Embedded == nil {
		return page{}, errors.New("malformed page: no _embedded")
	}
	if env.Embedded.Activities == nil {
		return page{}, errors.New("malformed page: no _embedded.activities")
	}
	var p page
	if env.Links.Next != nil {
		if env.Links.Next.Href == nil || *env.Links.Next.Href == "" {
			return page{}, errors.New("malformed page: _links.next has no href")
		}
		p.Next = *env.Links.Next.Href
	}
	raws := *env.Embedded.Activities
	p.Activities = make([]activity, 0, len(raws))
	for i, raw := range raws {
		a, err := decodeActivity(raw)
		if err != nil {
			return page{}, fmt.Errorf("malformed page: activity %d: %w", i, err)
		}
		p.Activities = append(p.Activities, a)
	}
	return p, nil
}

// decodeActivity extracts the id and recordedAt of one activity.
func decodeActivity(raw json.RawMessage) (activity, error) {
	var k activityKeys
	if err := json.Unmarshal(raw, &k); err != nil {
		return activity{}, err
	}
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return activity{}, errors.New("activity is null")
	}
	id, err := decodeID(k.ID)
	if err != nil {
		return activity{}, err
	}
	if k.RecordedAt == nil {
		return activity{}, fmt.Errorf("activity %q has no recordedAt", id)
	}
	t, err := parseTime(*k.RecordedAt)
	if err != nil {
		return activity{}, fmt.Errorf("activity %q: recordedAt: %w", id, err)
	}
	return activity{ID: id, RecordedAt: t, Data: raw}, nil
}

// decodeID returns an activity id: a non-empty JSON string (or, leniently, a
// number). Its format is never checked further: ids are opaque.
func decodeID(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", errors.New("activity has no id")
	}
	var id string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &id); err != nil {
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
