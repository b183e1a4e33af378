// Package normalize maps raw provider events to the schemas SIEMs speak:
// OCSF 1.8.0, ECS 9.x and the ASIM AuditEvent and Authentication column
// sets of Microsoft Sentinel. One normalizer per provider, each a pure
// function of the event.Raw: the same event always gives the same bytes,
// and the provider's JSON is always kept whole (OCSF raw_data, ECS
// event.original, the ASIM AdditionalFields column), so nothing is lost.
//
// Every function appends one JSON object (no newline) to dst and returns
// the extended slice, so that a caller can reuse one buffer for a whole
// batch:
//
//	b, err := normalize.OCSF(raw, b[:0])
//
// Fields of the provider event that have no home in the target schema are
// kept beside the mapped ones: under "unmapped" in OCSF (flattened to
// dotted paths), under the vendor namespace in ECS.
//
// The normalizers read the provider JSON with a scanner that hands out
// sub-slices of the input and write with appenders, so that a normalizer
// handles well over 100,000 events a second on one core; see the
// package's benchmarks.
package normalize

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/jsonscan"
)

// The provider names of event.Raw that the normalizers know. They are the
// names the sources set.
const (
	ProviderPingOne              = "pingone"
	ProviderCyberArk             = "cyberark"
	ProviderOkta                 = "okta"
	ProviderEntraDirectoryAudits = "entra_directory_audits"
	ProviderEntraSignIns         = "entra_sign_ins"
	ProviderEntraProvisioning    = "entra_provisioning"
)

// Providers returns every provider name the normalizers know.
func Providers() []string {
	return []string{ProviderPingOne, ProviderCyberArk, ProviderOkta,
		ProviderEntraDirectoryAudits, ProviderEntraSignIns, ProviderEntraProvisioning}
}

// Format names an output schema.
type Format string

// The formats. FormatRaw is the file sink's envelope line (event.Line)
// without its newline.
const (
	FormatRaw  Format = "raw"
	FormatOCSF Format = "ocsf"
	FormatECS  Format = "ecs"
	FormatASIM Format = "asim"
)

// ParseFormat returns the format named s (any case), or an error naming the
// formats.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case FormatRaw, FormatOCSF, FormatECS, FormatASIM:
		return f, nil
	}
	return "", fmt.Errorf("%q is not a format (want raw, ocsf, ecs or asim)", s)
}

// ErrNotObject is returned, wrapped, for event data that is not one JSON
// object.
var ErrNotObject = errors.New("the event data is not a JSON object")

// ErrUnknownProvider is returned, wrapped, for an event of a provider no
// normalizer knows.
var ErrUnknownProvider = errors.New("no normalizer for this provider")

// Append appends r in format f to dst.
func Append(f Format, r event.Raw, dst []byte) ([]byte, error) {
	switch f {
	case FormatOCSF:
		return OCSF(r, dst)
	case FormatECS:
		return ECS(r, dst)
	case FormatASIM:
		return ASIM(r, dst)
	case FormatRaw:
		b, err := event.AppendLine(dst, &r)
		if err != nil {
			return dst, err
		}
		return b[:len(b)-1], nil // without the newline
	}
	return dst, fmt.Errorf("normalize: unknown format %q", f)
}

// input is a prepared event: its data checked and in valid UTF-8, and
// the envelope fields the normalizers fall back on.
type input struct {
	source, tenant, id string
	time               time.Time
	data               []byte
	top                [maxTop]member // data's members, when ntop >= 0
	ntop               int
}

// maxTop is how many members of an event prepareInput records; events
// with more are scanned again.
const maxTop = 48

// members returns an iterator over the event's members.
func (in *input) members() topMembers {
	t := topMembers{scan: objectMembers(in.data)}
	if in.ntop >= 0 {
		t.rec, t.n, t.top = true, in.ntop, in.top
	}
	return t
}

// prepareInput checks r's data for the normalizer of schema and records
// its members.
func prepareInput(schema string, r *event.Raw) (input, error) {
	in := input{source: r.Source, tenant: r.Tenant, id: r.ID, time: r.Time}
	d, members, ok := prepare(r.Data, in.top[:0])
	if !ok {
		if r.ID == "" {
			return input{}, fmt.Errorf("normalize %s: %s event: %w", schema, r.Provider, ErrNotObject)
		}
		return input{}, fmt.Errorf("normalize %s: %s event %q: %w", schema, r.Provider, r.ID, ErrNotObject)
	}
	in.data, in.ntop = d, len(members)
	if members == nil {
		in.ntop = -1
	}
	return in, nil
}

// OCSF appends r as one OCSF 1.8.0 event to dst.
func OCSF(r event.Raw, dst []byte) ([]byte, error) {
	in, err := prepareInput("ocsf", &r)
	if err != nil {
		return dst, err
	}
	switch r.Provider {
	case ProviderPingOne:
		return pingoneOCSF(dst, in), nil
	case ProviderCyberArk:
		return cyberarkOCSF(dst, in), nil
	case ProviderOkta:
		return oktaOCSF(dst, in), nil
	case ProviderEntraDirectoryAudits:
		return entraAuditOCSF(dst, in), nil
	case ProviderEntraSignIns:
		return entraSignInOCSF(dst, in), nil
	case ProviderEntraProvisioning:
		return entraProvisioningOCSF(dst, in), nil
	}
	return dst, fmt.Errorf("normalize ocsf: %q event %q: %w", r.Provider, r.ID, ErrUnknownProvider)
}

// Mapping kinds of a source path, for appendUnmapped.
const (
	pathUnmapped = iota // kept under unmapped
	pathMapped          // has an OCSF home: left out
	pathPartial         // an object some of whose members are mapped: descend
)

// The event shapes whose paths mapPath knows.
const (
	shapePingOne = iota
	shapeCyberArk
	shapeOkta
	shapeEntraAudit
	shapeEntraSignIn
	shapeEntraProvisioning
)

// mapPath tells how the dotted path of an event of shape is mapped. (A
// switch rather than a function value keeps the path buffer on the
// stack.)
func mapPath(shape int, p []byte) int {
	switch shape {
	case shapePingOne:
		return pingoneMapping(p)
	case shapeCyberArk:
		return cyberarkMapping(p)
	case shapeOkta:
		return oktaMapping(p)
	case shapeEntraAudit:
		return entraAuditMapping(p)
	case shapeEntraSignIn:
		return entraSignInMapping(p)
	case shapeEntraProvisioning:
		return entraProvisioningMapping(p)
	}
	return pathUnmapped
}

// appendUnmapped appends "unmapped": the members of the event obj that
// have no home in the OCSF event of shape, each under its dotted path,
// values as they are (compacted). Nulls are left out: raw_data keeps them.
func appendUnmapped(b []byte, in input, m int) []byte {
	mark := len(b)
	b = open(b, "unmapped")
	var buf [256]byte
	// The top level is walked here, not in the recursive helper, so that
	// the recorded members stay on the caller's stack.
	it := in.members()
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		b = unmappedMember(b, k, v, buf[:0], m)
	}
	return closeObj(b, mark)
}

// unmappedMember appends member k (under path) of value v unless it is
// mapped, descending into partly mapped objects.
func unmappedMember(b, k, v, path []byte, m int) []byte {
	p := path
	if len(p) > 0 {
		p = append(p, '.')
	}
	p = append(p, k...)
	switch mapPath(m, p) {
	case pathMapped:
		return b
	case pathPartial:
		if isObject(v) {
			it := objectMembers(v)
			for {
				ck, cv, ok := it.next()
				if !ok {
					return b
				}
				b = unmappedMember(b, ck, cv, p, m)
			}
		}
	}
	if string(v) == "null" {
		return b
	}
	b = appendRawStr(sep(b), p)
	b = append(b, ':')
	return jsonscan.AppendCompact(b, v)
}

// timeMS returns the event time in Unix milliseconds: the provider's time
// text v when it parses, the envelope's time otherwise (0 when that is
// zero too).
func timeMS(v []byte, envelope time.Time) int64 {
	if ms, ok := parseTimeMS(v); ok {
		return ms
	}
	if envelope.IsZero() {
		return 0
	}
	return envelope.UnixMilli()
}

// putID appends k with the event id: the envelope's, which the source
// took from the event, or the raw string contents v when the envelope has
// none. The file sink reads it back to skip events written before a crash.
func putID(b []byte, k string, in input, v []byte) []byte {
	if in.id != "" {
		return putStr(b, k, in.id)
	}
	return putRaw(b, k, v)
}
