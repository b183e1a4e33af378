// Package event defines what auditrelay moves: the raw provider event exactly
// as the provider served it, and the canonical event that sinks may derive from
// it when they encode. It imports nothing but the standard library.
package event

import (
	"encoding/json"
	"time"
)

// Raw is one provider event with the envelope auditrelay adds. Data is the
// provider's JSON, untouched; everything else is derived from it or from the
// configuration and is never written back into Data.
type Raw struct {
	// Source is the configured source name (the checkpoint key).
	Source string
	// Provider names the provider API, such as "pingone".
	Provider string
	// Tenant is the provider's tenant, such as a PingOne environment id.
	Tenant string
	// ID is the provider's event id, unique within a source.
	ID string
	// Time is the provider's event time: the attribute its windows filter on.
	Time time.Time
	// Data is the provider's event JSON as served.
	Data json.RawMessage
}

// Outcome is the normalized result of the audited action.
type Outcome string

// The outcomes a provider result maps to.
const (
	OutcomeSuccess Outcome = "success"
	OutcomeFailure Outcome = "failure"
	OutcomeUnknown Outcome = "unknown"
)

// Party is an actor or a target of an audited action.
type Party struct {
	Type string `json:"type,omitempty"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// Event is the canonical, provider-neutral form of an audit event, so that one
// detection works across providers. It is derived from a Raw by a provider's
// pure normalize function; Raw keeps the original.
type Event struct {
	Time          time.Time       `json:"time"`
	Provider      string          `json:"provider"`
	Tenant        string          `json:"tenant"`
	Source        string          `json:"source"`
	ID            string          `json:"id"`
	Action        string          `json:"action"`
	Description   string          `json:"description,omitempty"`
	Outcome       Outcome         `json:"outcome"`
	Reason        string          `json:"reason,omitempty"`
	Actor         *Party          `json:"actor,omitempty"`
	Client        *Party          `json:"client,omitempty"`
	Targets       []Party         `json:"targets,omitempty"`
	SourceIP      string          `json:"source_ip,omitempty"`
	UserAgent     string          `json:"user_agent,omitempty"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	SessionID     string          `json:"session_id,omitempty"`
	Tags          []string        `json:"tags,omitempty"`
	Raw           json.RawMessage `json:"raw"`
}
