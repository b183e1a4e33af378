package cyberark

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// auditEvent is one decoded event of a results page: the fields the windows
// and the dedup key need, and the event's JSON exactly as served.
type auditEvent struct {
	UUID   string
	Tenant string
	Time   time.Time
	Data   json.RawMessage
}

// results is one decoded results page.
type results struct {
	Events []auditEvent
	// Next is paging.cursor.cursorRef; empty when the API gave none.
	Next string
}

type resultsJSON struct {
	Data   *[]json.RawMessage `json:"data"`
	Paging *struct {
		Cursor *struct {
			CursorRef *string `json:"cursorRef"`
		} `json:"cursor"`
	} `json:"paging"`
}

type eventKeys struct {
	UUID      json.RawMessage `json:"uuid"`
	TenantID  json.RawMessage `json:"tenantId"`
	Timestamp json.RawMessage `json:"timestamp"`
}

// decodeResults decodes a results body. Any malformation (bad or truncated
// JSON, no data array, an event without uuid or a usable timestamp) is an
// error: a page is used whole or not at all, so a damaged page is fetched
// again rather than half-read.
func decodeResults(body []byte) (results, error) {
	var env resultsJSON
	if err := json.Unmarshal(body, &env); err != nil {
		return results{}, fmt.Errorf("malformed results page: %w", err)
	}
	if env.Data == nil {
		return results{}, errors.New("malformed results page: no data array")
	}
	var r results
	if env.Paging != nil && env.Paging.Cursor != nil && env.Paging.Cursor.CursorRef != nil {
		r.Next = *env.Paging.Cursor.CursorRef
	}
	r.Events = make([]auditEvent, 0, len(*env.Data))
	for i, raw := range *env.Data {
		e, err := decodeEvent(raw)
		if err != nil {
			return results{}, fmt.Errorf("malformed results page: event %d: %w", i, err)
		}
		r.Events = append(r.Events, e)
	}
	return r, nil
}

// decodeEvent extracts the uuid, tenantId and timestamp of one event.
func decodeEvent(raw json.RawMessage) (auditEvent, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '{' {
		return auditEvent{}, errors.New("event is not a JSON object")
	}
	var k eventKeys
	if err := json.Unmarshal(raw, &k); err != nil {
		return auditEvent{}, err
	}
	uuid, err := stringField("uuid", k.UUID)
	if err != nil {
		return auditEvent{}, err
	}
	if strings.TrimSpace(uuid) == "" {
		return auditEvent{}, errors.New("event has an empty uuid")
	}
	var tenant string
	if len(k.TenantID) > 0 && !bytes.Equal(k.TenantID, []byte("null")) {
		if tenant, err = stringField("tenantId", k.TenantID); err != nil {
			return auditEvent{}, fmt.Errorf("event %q: %w", uuid, err)
		}
	}
	ms, err := epochMillis(k.Timestamp)
	if err != nil {
		return auditEvent{}, fmt.Errorf("event %q: timestamp: %w", uuid, err)
	}
	return auditEvent{UUID: uuid, Tenant: tenant, Time: time.UnixMilli(ms).UTC(), Data: raw}, nil
}

func stringField(name string, raw json.RawMessage) (string, error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", fmt.Errorf("event has no %s", name)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("event %s is not a string", name)
	}
	return s, nil
}

// Bounds of an event time: 1970-01-01 to 9999-12-31.
const (
	minEpochMs = 0
	maxEpochMs = 253402300799999
)

// epochMillis parses an epoch-milliseconds timestamp: a JSON integer (or an
// integral number, or a string of digits, leniently).
func epochMillis(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, errors.New("missing")
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != math.Trunc(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("%.40q is not epoch milliseconds", s)
		}
		ms = int64(f)
	}
	if ms < minEpochMs || ms > maxEpochMs {
		return 0, fmt.Errorf("%d is out of range for epoch milliseconds", ms)
	}
	return ms, nil
}

// decodeQuery decodes a createQuery answer: its cursorRef.
func decodeQuery(body []byte) (string, error) {
	var q struct {
		CursorRef *string `json:"cursorRef"`
	}
	if err := json.Unmarshal(body, &q); err != nil {
		return "", fmt.Errorf("malformed createQuery answer: %w", err)
	}
	if q.CursorRef == nil || *q.CursorRef == "" {
		return "", errors.New("malformed createQuery answer: no cursorRef")
	}
	return *q.CursorRef, nil
}
