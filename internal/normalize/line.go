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

// ParseLineFormat returns the format named s for a sink that writes NDJSON
// lines (file, stdout): raw, ocsf or ecs; "" is raw.
func ParseLineFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case "", FormatRaw:
		return FormatRaw, nil
	case FormatOCSF, FormatECS:
		return f, nil
	}
	return "", fmt.Errorf("%q is not a format (want raw, ocsf or ecs)", s)
}

// AppendLine appends r in format f as one NDJSON line, with its newline:
// for FormatRaw the envelope line event.AppendLine writes.
func AppendLine(dst []byte, f Format, r *event.Raw) ([]byte, error) {
	if f == FormatRaw || f == "" {
		return event.AppendLine(dst, r)
	}
	b, err := Append(f, *r, dst)
	if err != nil {
		return dst, err
	}
	return append(b, '\n'), nil
}

// LineKey returns the source and event id a line written by AppendLine in
// any format carries: the envelope's for raw lines, metadata.log_source
// and metadata.uid for OCSF, labels.auditrelay_source and event.id for
// ECS. ok is false for a line that is none of these.
func LineKey(line []byte) (source, id string, ok bool) {
	var k struct {
		Source   json.RawMessage `json:"source"` // an object in ECS
		ID       string          `json:"id"`
		Metadata struct {
			LogSource string `json:"log_source"`
			UID       string `json:"uid"`
		} `json:"metadata"`
		Event struct {
			ID string `json:"id"`
		} `json:"event"`
		Labels struct {
			Source string `json:"auditrelay_source"`
		} `json:"labels"`
	}
	if json.Unmarshal(line, &k) != nil {
		return "", "", false
	}
	switch {
	case k.ID != "":
		var src string
		if json.Unmarshal(k.Source, &src) != nil {
			return "", "", false
		}
		return src, k.ID, true
	case k.Metadata.UID != "":
		return k.Metadata.LogSource, k.Metadata.UID, true
	case k.Event.ID != "":
		return k.Labels.Source, k.Event.ID, true
	}
	return "", "", false
}

// Kinds returns the source kinds whose bare events ProviderOf reads.
func Kinds() []string { return []string{ProviderPingOne, ProviderCyberArk, ProviderOkta, "entra"} }

// ProviderOf returns the provider of a bare event of the source kind
// named kind (pingone, cyberark, okta, entra or one of the provider
// names): for entra, which has three streams, the stream the event's
// shape belongs to.
func ProviderOf(kind string, data []byte) (string, error) {
	switch kind {
	case ProviderPingOne, ProviderCyberArk, ProviderOkta, ProviderEntraDirectoryAudits, ProviderEntraSignIns, ProviderEntraProvisioning:
		return kind, nil
	case "entra":
		d, _, ok := prepare(data, nil)
		if !ok {
			return "", ErrNotObject
		}
		switch {
		case get(d, "createdDateTime") != nil:
			return ProviderEntraSignIns, nil
		case get(d, "provisioningAction") != nil || get(d, "jobId") != nil:
			return ProviderEntraProvisioning, nil
		case get(d, "activityDisplayName") != nil:
			return ProviderEntraDirectoryAudits, nil
		}
		return "", errors.New("not an Entra directoryAudit, signIn or provisioning event (no activityDisplayName, createdDateTime or provisioningAction)")
	}
	return "", fmt.Errorf("%q is not a provider (want pingone, cyberark, okta or entra)", kind)
}
