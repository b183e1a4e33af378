package cyberark

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"

	"github.com/auditrelay/auditrelay/internal/event"
)

// fields is a decoded JSON object whose values are read leniently: a value
// of an unexpected type reads as empty, so one odd field never hides the
// rest of an event.
type fields map[string]json.RawMessage

func (f fields) str(k string) string {
	v, ok := f[k]
	if !ok || len(v) == 0 || v[0] != '"' {
		return ""
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return strings.TrimSpace(s)
}

func (f fields) obj(k string) fields {
	var o fields
	if v, ok := f[k]; ok && len(v) > 0 && v[0] == '{' {
		_ = json.Unmarshal(v, &o) // a malformed object reads as empty
	}
	return o
}

// Normalize maps a CyberArk audit event to the canonical event. It is pure:
// the same Raw always gives the same Event, and r.Data is kept as
// Event.Raw, untouched. Absent, null and "" values leave fields empty; only
// JSON that is not an object is an error.
//
//   - Action is action, Description message, Tags applicationCode and
//     auditCode.
//   - Outcome is failure for auditType Failure, Error or System Error, success
//     for Info and Warning, unknown otherwise; Reason is message on failure.
//   - Actor is the user (userId, username); SourceIP is source when it is an
//     IP address (PAM events name a component there instead).
//   - Targets are the user of Identity events (customData user_id and
//     user_name), the vault account (accountId, targetAccount or
//     accountName), the safe and the target host.
func Normalize(r event.Raw) (event.Event, error) {
	var f fields
	if err := json.Unmarshal(r.Data, &f); err != nil || f == nil {
		return event.Event{}, fmt.Errorf("cyberark: normalize %s: the event is not a JSON object", r.ID)
	}
	ev := event.Event{
		Time: r.Time, Provider: Provider, Tenant: r.Tenant, Source: r.Source, ID: r.ID,
		Action:        f.str("action"),
		Description:   f.str("message"),
		Outcome:       event.OutcomeUnknown,
		CorrelationID: f.str("correlationId"),
		SessionID:     f.str("sessionId"),
		Raw:           r.Data,
	}
	switch strings.ToLower(f.str("auditType")) {
	case "info", "warning":
		ev.Outcome = event.OutcomeSuccess
	case "failure", "error", "system error":
		ev.Outcome = event.OutcomeFailure
		ev.Reason = f.str("message")
	}
	if id, name := f.str("userId"), f.str("username"); id != "" || name != "" {
		ev.Actor = &event.Party{Type: "User", ID: id, Name: name}
	}
	if src := f.str("source"); net.ParseIP(src) != nil {
		ev.SourceIP = src
	}
	cd := f.obj("customData")
	if id, name := cd.str("user_id"), cd.str("user_name"); id != "" || name != "" {
		ev.Targets = append(ev.Targets, event.Party{Type: "User", ID: id, Name: name})
	}
	account := f.str("targetAccount")
	if account == "" {
		account = f.str("accountName")
	}
	if id := f.str("accountId"); id != "" || account != "" {
		ev.Targets = append(ev.Targets, event.Party{Type: "Account", ID: id, Name: account})
	}
	if safe := f.str("safe"); safe != "" {
		ev.Targets = append(ev.Targets, event.Party{Type: "Safe", Name: safe})
	}
	if host := f.str("target"); host != "" {
		ev.Targets = append(ev.Targets, event.Party{Type: "Host", Name: host})
	}
	for _, k := range []string{"applicationCode", "auditCode"} {
		if v := f.str(k); v != "" {
			ev.Tags = append(ev.Tags, v)
		}
	}
	return ev, nil
}
