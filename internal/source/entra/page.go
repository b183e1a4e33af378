package entra

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/httpx"
)

// maxIDBytes bounds an event's id (composite audit ids are about 70).
const maxIDBytes = 256

// decodePage decodes a Graph collection page: {"value": [...],
// "@odata.nextLink": "..."}. Every event must carry an id (the dedup key)
// and the stream's time field; a page that does not is refused whole,
// never half delivered. The raw JSON of each event is kept byte for byte;
// the nextLink is returned as served.
func decodePage(body []byte, st stream, sourceName, tenant string) ([]event.Raw, string, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil, "", errors.New("the page is not a JSON object")
	}
	var p struct {
		Value *[]json.RawMessage `json:"value"`
		Next  *string            `json:"@odata.nextLink"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, "", fmt.Errorf("the page is not a Graph collection: %w", err)
	}
	if p.Value == nil {
		return nil, "", errors.New("the page has no value array")
	}
	next := ""
	if p.Next != nil {
		next = *p.Next
		if next == "" {
			return nil, "", errors.New("the page has an empty @odata.nextLink")
		}
	}
	out := make([]event.Raw, 0, len(*p.Value))
	for i, r := range *p.Value {
		if len(r) == 0 || r[0] != '{' {
			return nil, "", fmt.Errorf("event %d of the page is not a JSON object", i)
		}
		var e struct {
			ID       *string `json:"id"`
			Activity *string `json:"activityDateTime"`
			Created  *string `json:"createdDateTime"`
		}
		if err := json.Unmarshal(r, &e); err != nil {
			return nil, "", fmt.Errorf("event %d of the page: %w", i, err)
		}
		if e.ID == nil || *e.ID == "" || len(*e.ID) > maxIDBytes {
			return nil, "", fmt.Errorf("event %d of the page has no id", i)
		}
		ts := e.Activity
		if st.field == "createdDateTime" {
			ts = e.Created
		}
		if ts == nil {
			return nil, "", fmt.Errorf("event %s has no %s", httpx.OneLine(*e.ID, 80), st.field)
		}
		t, err := time.Parse(time.RFC3339Nano, *ts)
		if err != nil {
			return nil, "", fmt.Errorf("event %s: %s %q is not an ISO 8601 time", httpx.OneLine(*e.ID, 80), st.field, httpx.OneLine(*ts, 40))
		}
		out = append(out, event.Raw{Source: sourceName, Provider: st.provider, Tenant: tenant, ID: *e.ID, Time: t.UTC(), Data: r})
	}
	return out, next, nil
}
