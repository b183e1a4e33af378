package okta

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
)

// maxIDBytes bounds an event's uuid.
const maxIDBytes = 200

// decodePage decodes a System Log page, a JSON array of LogEvents. Every
// event must carry a uuid (the dedup key) and a published time; a page
// that does not is refused whole, never half delivered. The raw JSON of
// each event is kept byte for byte.
func decodePage(body []byte, sourceName, tenant string) ([]event.Raw, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '[' {
		return nil, errors.New("the page is not a JSON array of events")
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, fmt.Errorf("the page is not a JSON array of events: %w", err)
	}
	out := make([]event.Raw, 0, len(raws))
	for i, r := range raws {
		var e struct {
			UUID      *string `json:"uuid"`
			Published *string `json:"published"`
		}
		if len(r) == 0 || r[0] != '{' {
			return nil, fmt.Errorf("event %d of the page is not a JSON object", i)
		}
		if err := json.Unmarshal(r, &e); err != nil {
			return nil, fmt.Errorf("event %d of the page: %w", i, err)
		}
		if e.UUID == nil || *e.UUID == "" || len(*e.UUID) > maxIDBytes {
			return nil, fmt.Errorf("event %d of the page has no uuid", i)
		}
		if e.Published == nil {
			return nil, fmt.Errorf("event %s has no published time", *e.UUID)
		}
		t, err := time.Parse(time.RFC3339Nano, *e.Published)
		if err != nil {
			return nil, fmt.Errorf("event %s: published %q is not an RFC 3339 time", *e.UUID, truncate(*e.Published, 40))
		}
		out = append(out, event.Raw{Source: sourceName, Provider: Provider, Tenant: tenant, ID: *e.UUID, Time: t.UTC(), Data: r})
	}
	return out, nil
}
