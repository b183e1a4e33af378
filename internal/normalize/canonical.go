package normalize

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
)

// PingOneEvent maps a PingOne audit activity to the canonical event (the
// fields the Sentinel sink's auditrelay table and the detections read), in
// one pass over its JSON: values of unexpected types count as absent, the
// raw event is kept as it is. Data that is not a JSON object is an error.
func PingOneEvent(r event.Raw) (event.Event, error) {
	e, _, err := PingOneEventColumns(r)
	return e, err
}

// PingOneEventColumns is PingOneEvent that also returns the values the
// Sentinel sink's auditrelay format writes in columns of their own, read
// in the same pass.
func PingOneEventColumns(r event.Raw) (event.Event, PingOneColumns, error) {
	in, err := prepareInput("canonical", &r)
	if err != nil {
		return event.Event{}, PingOneColumns{}, err
	}
	a := decodePingOne(&in)
	e := event.Event{
		Time: r.Time, Provider: r.Provider, Tenant: r.Tenant, Source: r.Source, ID: r.ID,
		Action: textOf(a.actionType), Description: textOf(a.actionDesc),
		Outcome: pingoneOutcome(a.resultStatus), Reason: textOf(a.resultDesc),
		SourceIP: textOf(a.ip), UserAgent: textOf(a.userAgent),
		CorrelationID: textOf(a.correlationID), SessionID: textOf(a.sessionID),
		Raw: r.Data,
	}
	if e.Provider == "" {
		e.Provider = "pingone"
	}
	if e.ID == "" {
		e.ID = textOf(a.id)
	}
	if t, err := time.Parse(time.RFC3339Nano, textOf(a.recordedAt)); err == nil {
		e.Time = t.UTC()
	}
	user, client := canonicalParty(a.user, "USER"), canonicalParty(a.client, "CLIENT")
	e.Client = client
	if user != nil {
		e.Actor = user
	} else if client != nil {
		c := *client
		e.Actor = &c
	}
	res := arrayElements(a.resources)
	for {
		v, ok := res.next()
		if !ok {
			break
		}
		p, _, _ := pingoneParty(v)
		if cp := canonicalParty(p, ""); cp != nil {
			e.Targets = append(e.Targets, *cp)
		}
	}
	tags := arrayElements(a.tags)
	for {
		v, ok := tags.next()
		if !ok {
			break
		}
		if t := str(v); t != nil {
			e.Tags = append(e.Tags, textOf(t))
		}
	}
	return e, a.cols, nil
}

// canonicalParty returns p as a canonical party of type defaultType when
// it names none, or nil when it names nobody.
func canonicalParty(p party, defaultType string) *event.Party {
	if p.empty() {
		return nil
	}
	t := textOf(p.typ)
	if t == "" {
		t = defaultType
	}
	return &event.Party{Type: t, ID: textOf(p.id), Name: textOf(p.name)}
}

// pingoneOutcome maps result.status to the canonical outcome.
func pingoneOutcome(status []byte) event.Outcome {
	switch strings.ToUpper(textOf(status)) {
	case "SUCCESS":
		return event.OutcomeSuccess
	case "FAILED":
		return event.OutcomeFailure
	}
	return event.OutcomeUnknown
}

// textOf decodes the raw contents of a JSON string, as str returns them
// (nil gives "").
func textOf(c []byte) string {
	if bytes.IndexByte(c, '\\') < 0 {
		return string(c)
	}
	var s string
	q := make([]byte, 0, len(c)+2)
	_ = json.Unmarshal(append(append(append(q, '"'), c...), '"'), &s) // c is the inside of a valid JSON string
	return s
}
