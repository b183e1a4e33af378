package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source/cyberark"
	"github.com/auditrelay/auditrelay/internal/source/pingone"
)

// Normalize maps an event of any provider to the canonical event, for
// sinks that write canonical fields. A provider without a normalizer gives
// the envelope only; the raw event is always kept. Data that is not a JSON
// object is an error, whatever the provider.
func Normalize(r event.Raw) (event.Event, error) {
	switch r.Provider {
	case pingone.Provider:
		return pingone.Normalize(r)
	case cyberark.Provider:
		return cyberark.Normalize(r)
	}
	if d := bytes.TrimSpace(r.Data); len(d) == 0 || d[0] != '{' || !json.Valid(d) {
		return event.Event{}, fmt.Errorf("%s event %q: not a JSON object", r.Provider, r.ID)
	}
	return event.Event{Time: r.Time, Provider: r.Provider, Tenant: r.Tenant, Source: r.Source, ID: r.ID,
		Outcome: event.OutcomeUnknown, Raw: r.Data}, nil
}
