// Package event defines what auditrelay moves: the raw provider event exactly
// as the provider served it, and the canonical event that sinks may derive from
// it when they encode. It imports nothing but the standard library.
package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"
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
	// Data is the provider's event JSON as served. It is valid JSON:
	// sources take it from a decoded response.
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

// Line is the shape of one NDJSON line as the file and stdout sinks write
// it: the raw provider event under "raw" and the envelope beside it.
type Line struct {
	Source   string          `json:"source"`
	Provider string          `json:"provider"`
	Tenant   string          `json:"tenant"`
	ID       string          `json:"id"`
	Time     string          `json:"time"`
	Raw      json.RawMessage `json:"raw"`
}

// TimeFormat is the format of the "time" field.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// AppendLine appends ev as one NDJSON line (with its newline) to b. Raw data
// that spans several lines is compacted; otherwise it is kept byte for byte.
func AppendLine(b []byte, ev *Raw) ([]byte, error) {
	raw := []byte(ev.Data)
	// Two IndexByte scans (vectorized) cost less than one ContainsAny.
	if bytes.IndexByte(raw, '\n') >= 0 || bytes.IndexByte(raw, '\r') >= 0 {
		var c bytes.Buffer
		if err := json.Compact(&c, raw); err != nil {
			return b, fmt.Errorf("event %s: raw data is not JSON: %w", ev.ID, err)
		}
		raw = c.Bytes()
	}
	b = append(b, `{"source":`...)
	b = appendString(b, ev.Source)
	b = appendField(b, "provider", ev.Provider)
	b = appendField(b, "tenant", ev.Tenant)
	b = appendField(b, "id", ev.ID)
	b = appendField(b, "time", ev.Time.UTC().Format(TimeFormat))
	b = append(b, `,"raw":`...)
	b = append(b, raw...)
	return append(b, "}\n"...), nil
}

func appendField(b []byte, k, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, k...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

// appendString appends v as a JSON string: verbatim between quotes when it
// needs no escaping (the common case), through encoding/json otherwise.
func appendString(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			j, _ := json.Marshal(v) // a string always marshals
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, v...)
	return append(b, '"')
}

// AppendJSONString appends s to b as a JSON string, without allocating:
// quotes, backslashes and control characters are escaped, invalid UTF-8
// becomes U+FFFD and U+2028/U+2029 are escaped, as encoding/json does
// (it does not escape <, > and &, which JSON does not require).
func AppendJSONString(b []byte, s string) []byte { return appendJSON(b, s) }

// AppendJSONBytes is AppendJSONString for text held in a byte slice, such
// as a provider's raw event carried as a string field.
func AppendJSONBytes(b, s []byte) []byte { return appendJSON(b, s) }

func appendJSON[T string | []byte](b []byte, s T) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		// At most four bytes: the conversion does not escape and is
		// made on the stack.
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
