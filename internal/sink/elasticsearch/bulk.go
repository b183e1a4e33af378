package elasticsearch

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/auditrelay/auditrelay/internal/httpx"
)

// itemResult is the outcome of one _bulk item.
type itemResult struct {
	Status int
	// Reason is the server's error, "<type>: <reason> (caused by …)", or
	// empty.
	Reason string
}

// bulkResponse is the part of a _bulk answer the sink reads.
type bulkResponse struct {
	Errors *bool                        `json:"errors"`
	Items  []map[string]json.RawMessage `json:"items"`
}

type bulkItem struct {
	Status int             `json:"status"`
	Error  json.RawMessage `json:"error"`
}

type bulkError struct {
	Type     string     `json:"type"`
	Reason   string     `json:"reason"`
	CausedBy *bulkError `json:"caused_by"`
}

// parseBulk decodes a _bulk answer for n items. The items must be n, in
// request order, each an object of one action ({"create": {…}}) with a
// status; anything else is an error, and the caller sends the request again
// (safe: every item is a create with a stable _id).
func parseBulk(b []byte, n int) ([]itemResult, error) {
	var resp bulkResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		return nil, fmt.Errorf("the _bulk answer is not JSON: %w", err)
	}
	if resp.Errors == nil && resp.Items == nil {
		return nil, errors.New("the _bulk answer has neither errors nor items: is this an Elasticsearch or OpenSearch _bulk endpoint?")
	}
	if len(resp.Items) != n {
		return nil, fmt.Errorf("the _bulk answer has %d items for %d documents sent", len(resp.Items), n)
	}
	out := make([]itemResult, n)
	for i, m := range resp.Items {
		if len(m) != 1 {
			return nil, fmt.Errorf("_bulk item %d has %d actions, want one", i, len(m))
		}
		for _, raw := range m {
			var it bulkItem
			if err := json.Unmarshal(raw, &it); err != nil {
				return nil, fmt.Errorf("_bulk item %d: %w", i, err)
			}
			if it.Status < 100 || it.Status > 599 {
				return nil, fmt.Errorf("_bulk item %d has status %d", i, it.Status)
			}
			out[i] = itemResult{Status: it.Status, Reason: errorText(it.Error)}
		}
	}
	return out, nil
}

// errorText renders an item's or a request's error: an object with type,
// reason and caused_by, or (older servers) a string.
func errorText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return httpx.OneLine(s, 500)
	}
	var e bulkError
	if json.Unmarshal(raw, &e) != nil {
		return httpx.OneLine(strings.ToValidUTF8(string(raw), "?"), 500)
	}
	var b strings.Builder
	for d, c := 0, &e; c != nil && d < 4; d, c = d+1, c.CausedBy {
		if d > 0 {
			b.WriteString(" (caused by ")
		}
		b.WriteString(c.Type)
		if c.Reason != "" {
			b.WriteString(": ")
			b.WriteString(c.Reason)
		}
	}
	for d, c := 1, e.CausedBy; c != nil && d < 4; d, c = d+1, c.CausedBy {
		b.WriteString(")")
	}
	return httpx.OneLine(b.String(), 500)
}

// requestError extracts the message of a request-level error answer:
// {"error": {…} | "…", "status": N}, or the body's first line.
func requestError(b []byte) string {
	var m struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(b, &m) == nil {
		if t := errorText(m.Error); t != "" {
			return t
		}
	}
	return httpx.OneLine(strings.ToValidUTF8(string(b), "?"), 300)
}
