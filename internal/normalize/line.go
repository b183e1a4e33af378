package normalize

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
)

// ParseLine reads one line the file and stdout sinks write in the raw
// format (event.Line) back into the event it came from.
func ParseLine(line []byte) (event.Raw, error) {
	var l event.Line
	if err := json.Unmarshal(line, &l); err != nil {
		return event.Raw{}, fmt.Errorf("not an auditrelay event line: %w", err)
	}
	if l.Provider == "" {
		return event.Raw{}, errors.New(`not an auditrelay event line: no "provider" (for bare provider events, name the provider)`)
	}
	if d := bytes.TrimSpace(l.Raw); len(d) == 0 || d[0] != '{' {
		return event.Raw{}, fmt.Errorf(`event %q: "raw" is not a JSON object`, l.ID)
	}
	r := event.Raw{Source: l.Source, Provider: l.Provider, Tenant: l.Tenant, ID: l.ID, Data: l.Raw}
	if l.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, l.Time)
		if err != nil {
			return event.Raw{}, fmt.Errorf("event %q: time: %w", l.ID, err)
		}
		r.Time = t
	}
	return r, nil
}
