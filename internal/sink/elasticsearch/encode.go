package elasticsearch

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/normalize"
)

// Integration describes how Elastic's own integration for a provider, if
// there is one, takes its events.
type Integration struct {
	// Dataset is the integration's data stream dataset, such as
	// "ping_one.audit"; the data stream is logs-<Dataset>-default.
	Dataset string
	// Exists is false where Elastic has no integration that takes the
	// provider's events as auditrelay reads them: those are written in
	// ECS.
	Exists bool
}

// IntegrationFor returns the Elastic integration of a provider:
//
//	pingone   ping_one.audit  (PingOne integration, raw JSON in message)
//	okta      okta.system     (Okta integration, raw JSON in message)
//
// Elastic has none for the CyberArk Identity Security Platform audit API
// (its cyberarkpas integration reads on-premises PAS syslog), and its Azure
// integration's Entra ID data streams (azure.auditlogs, azure.signinlogs,
// azure.provisioning) take diagnostic-setting records from Event Hubs,
// whose shape the Microsoft Graph events auditrelay reads do not have (the
// pipeline drops a record whose category is not "AuditLogs"). Those, and
// any other provider, are written in ECS (raw for a provider the
// normalizers do not know) into logs-auditrelay.<provider>-default.
func IntegrationFor(provider string) Integration {
	switch provider {
	case "pingone":
		return Integration{Dataset: "ping_one.audit", Exists: true}
	case "okta":
		return Integration{Dataset: "okta.system", Exists: true}
	}
	return Integration{Dataset: "auditrelay." + datasetPart(provider)}
}

// DefaultIndex returns the data stream a provider's events go to when index
// is not set: logs-<dataset>-default, see IntegrationFor.
func DefaultIndex(provider string) string {
	return "logs-" + IntegrationFor(provider).Dataset + "-default"
}

// defaultIndexFor is DefaultIndex for a format: integration and raw use
// the integration's data stream, ecs and ocsf auditrelay's own
// (logs-auditrelay.<provider>-default, logs-auditrelay.<provider>_ocsf-default),
// whose mappings differ.
func defaultIndexFor(provider, format string) string {
	switch format {
	case FormatECS:
		return "logs-auditrelay." + datasetPart(provider) + "-default"
	case FormatOCSF:
		return "logs-auditrelay." + datasetPart(provider) + "_ocsf-default"
	}
	return DefaultIndex(provider)
}

// datasetPart makes a provider name a valid part of a data stream name:
// lower case, no '-' and none of the characters index names refuse.
func datasetPart(p string) string {
	p = strings.ToLower(p)
	var b strings.Builder
	for _, r := range p {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "unknown"
	}
	return b.String()
}

// DocID returns the _id of an event: the first 20 bytes of
// SHA-256(provider NUL tenant NUL event id), base64url without padding
// (27 characters). It depends only on the event, so a batch sent again
// after a crash creates nothing twice: Elasticsearch answers 409 for each
// document it already holds.
func DocID(ev *event.Raw) string {
	var scratch []byte
	return string(appendDocID(nil, &scratch, ev))
}

// appendDocID appends DocID(ev) to b, using *scratch for the hash input.
func appendDocID(b []byte, scratch *[]byte, ev *event.Raw) []byte {
	h := append((*scratch)[:0], ev.Provider...)
	h = append(h, 0)
	h = append(h, ev.Tenant...)
	h = append(h, 0)
	h = append(h, ev.ID...)
	*scratch = h
	sum := sha256.Sum256(h)
	return base64.RawURLEncoding.AppendEncode(b, sum[:20])
}

// dataStream is the type, dataset and namespace of a data stream name
// <type>-<dataset>-<namespace>.
type dataStream struct{ typ, dataset, namespace string }

// parseDataStream splits a data stream name; ok is false for a name that is
// not one (then no data_stream fields are written).
func parseDataStream(name string) (dataStream, bool) {
	parts := strings.Split(name, "-")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return dataStream{}, false
	}
	switch parts[0] {
	case "logs", "metrics", "traces", "synthetics", "profiling":
		return dataStream{parts[0], parts[1], parts[2]}, true
	}
	return dataStream{}, false
}

// target is where a provider's events go and how they are written.
type target struct {
	index  string
	format string // FormatIntegration (message), FormatECS, FormatOCSF or FormatRaw
	stream []byte // `,"data_stream":{…}` or nil
}

// encoder turns events into _bulk lines. It is not safe for concurrent use.
type encoder struct {
	index   string // the configured index, or "" for per provider
	format  string
	targets map[string]*target
	compact bytes.Buffer
	norm    []byte
	scratch []byte
}

func newEncoder(cfg Config) *encoder {
	return &encoder{index: cfg.Index, format: cfg.Format, targets: map[string]*target{}}
}

// targetOf returns the target of a provider's events.
func (e *encoder) targetOf(provider string) *target {
	if t, ok := e.targets[provider]; ok {
		return t
	}
	t := &target{index: e.index, format: e.format}
	if t.format == FormatIntegration && !IntegrationFor(provider).Exists {
		t.format = FormatECS
	}
	if (t.format == FormatECS || t.format == FormatOCSF) && !slices.Contains(normalize.Providers(), provider) {
		t.format = FormatRaw
	}
	if t.index == "" {
		t.index = defaultIndexFor(provider, t.format)
	}
	if ds, ok := parseDataStream(t.index); ok {
		t.stream = fmt.Appendf(nil, `,"data_stream":{"type":%q,"dataset":%q,"namespace":%q}`, ds.typ, ds.dataset, ds.namespace)
	}
	e.targets[provider] = t
	return t
}

// errNotObject is the reason given for raw data that is not a JSON object.
var errNotObject = errors.New("raw event is not a JSON object")

// appendItem appends ev's two _bulk lines, the create action and the
// document, each ending in a newline, to b. The action line is
//
//	{"create":{"_index":"<index>","_id":"<DocID>"}}
//
// and the document, in format integration,
//
//	{"@timestamp":"<time>","message":"<raw JSON as text>","data_stream":{…}}
//
// in format raw
//
//	{"@timestamp":"<time>","auditrelay":{"source":…,"provider":…,"tenant":…,"id":…},"raw":{…},"data_stream":{…}}
//
// in format ecs the ECS document (which has its @timestamp) with
// data_stream, and in format ocsf the OCSF event with @timestamp first
// and data_stream last.
//
// data_stream is written when the index is a data stream name. The
// message is the event byte for byte as the provider served it (line
// breaks escaped like any character of a JSON string); raw is the event
// compacted onto one line.
func (e *encoder) appendItem(b []byte, ev *event.Raw) ([]byte, error) {
	t := e.targetOf(ev.Provider)
	data := []byte(ev.Data)
	switch t.format {
	case FormatECS, FormatOCSF:
		n, err := normalize.Append(normalize.Format(t.format), *ev, e.norm[:0])
		if err != nil {
			return b, fmt.Errorf("cannot normalize to %s: %w", t.format, err)
		}
		e.norm = n
		if len(n) < 2 || n[0] != '{' || n[len(n)-1] != '}' {
			return b, errNotObject
		}
	case FormatRaw:
		e.compact.Reset()
		if err := json.Compact(&e.compact, data); err != nil {
			return b, fmt.Errorf("raw event is not JSON: %w", err)
		}
		data = e.compact.Bytes()
	default:
		if !json.Valid(data) {
			return b, errors.New("raw event is not JSON")
		}
	}
	if t.format != FormatECS && t.format != FormatOCSF {
		if d := bytes.TrimLeft(data, " \t\r\n"); len(d) == 0 || d[0] != '{' {
			return b, errNotObject
		}
	}
	b = append(b, `{"create":{"_index":`...)
	b = event.AppendJSONString(b, t.index)
	b = append(b, `,"_id":"`...)
	b = appendDocID(b, &e.scratch, ev)
	b = append(b, "\"}}\n"...)
	if t.format == FormatECS { // the document carries its @timestamp
		b = append(b, e.norm[:len(e.norm)-1]...)
		b = append(b, t.stream...)
		return append(b, "}\n"...), nil
	}
	b = append(b, "{\"@timestamp\":\""...)
	b = ev.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	switch t.format {
	case FormatOCSF:
		if len(e.norm) > 2 {
			b = append(b, ',')
			b = append(b, e.norm[1:len(e.norm)-1]...)
		}
	case FormatRaw:
		b = append(b, `,"auditrelay":{"source":`...)
		b = event.AppendJSONString(b, ev.Source)
		b = append(b, `,"provider":`...)
		b = event.AppendJSONString(b, ev.Provider)
		b = append(b, `,"tenant":`...)
		b = event.AppendJSONString(b, ev.Tenant)
		b = append(b, `,"id":`...)
		b = event.AppendJSONString(b, ev.ID)
		b = append(b, `},"raw":`...)
		b = append(b, data...)
	default:
		b = append(b, `,"message":`...)
		b = event.AppendJSONBytes(b, data)
	}
	b = append(b, t.stream...)
	return append(b, "}\n"...), nil
}
