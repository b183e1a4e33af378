package normalize

import (
	"fmt"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/jsonscan"
)

// ECSVersion is the ECS version the ECS normalizers write (ecs.version).
const ECSVersion = "9.4.0"

// ECS appends r as one ECS document to dst: nested objects, as Elastic's
// integrations index them, with the provider's fields that ECS has no
// place for under the vendor namespace (ping_one, cyberark, okta, azure)
// and the provider JSON in event.original.
func ECS(r event.Raw, dst []byte) ([]byte, error) {
	in, err := prepareInput("ecs", &r)
	if err != nil {
		return dst, err
	}
	switch r.Provider {
	case ProviderPingOne:
		return pingoneECS(dst, in), nil
	case ProviderCyberArk:
		return cyberarkECS(dst, in), nil
	case ProviderOkta:
		return oktaECS(dst, in), nil
	case ProviderEntraDirectoryAudits:
		return entraAuditECS(dst, in), nil
	case ProviderEntraSignIns:
		return entraSignInECS(dst, in), nil
	case ProviderEntraProvisioning:
		return entraProvisioningECS(dst, in), nil
	}
	return dst, fmt.Errorf("normalize ecs: %q event %q: %w", r.Provider, r.ID, ErrUnknownProvider)
}

// ecsEvent is the classification of one ECS event.
type ecsEvent struct {
	categories [4]string
	types      [4]string
	outcome    string // success, failure, unknown or ""
}

func (c *ecsEvent) category(s string) {
	for i, v := range c.categories {
		if v == s {
			return
		}
		if v == "" {
			c.categories[i] = s
			return
		}
	}
}

func (c *ecsEvent) typ(s string) {
	for i, v := range c.types {
		if v == s {
			return
		}
		if v == "" {
			c.types[i] = s
			return
		}
	}
}

// hasType reports whether one of types is among the event types.
func (c *ecsEvent) hasType(types ...string) bool {
	for _, t := range c.types {
		for _, u := range types {
			if t != "" && t == u {
				return true
			}
		}
	}
	return false
}

// appendStrings appends k with the non-empty strings of l as an array.
func appendStrings(b []byte, k string, l []string) []byte {
	m := len(b)
	b = openArr(b, k)
	for _, s := range l {
		if s != "" {
			b = event.AppendJSONString(sep(b), s)
		}
	}
	return closeArr(b, m)
}

// appendTimestamp appends @timestamp from Unix milliseconds.
func appendTimestamp(b []byte, ms int64) []byte {
	b = key(b, "@timestamp")
	b = append(b, '"')
	b = time.UnixMilli(ms).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	return append(b, '"')
}

// appendEventStart opens "event" and writes kind, category, type and
// outcome; the caller adds its members and closes it.
func appendEventStart(b []byte, c ecsEvent) ([]byte, int) {
	m := len(b)
	b = open(b, "event")
	b = putStr(b, "kind", "event")
	if c.categories[0] == "" {
		c.category("iam")
	}
	if c.types[0] == "" {
		c.typ("info")
	}
	b = appendStrings(b, "category", c.categories[:])
	b = appendStrings(b, "type", c.types[:])
	b = putStr(b, "outcome", c.outcome)
	return b, m
}

// appendEventEnd writes event.original and closes "event".
func appendEventEnd(b []byte, m int, data []byte) []byte {
	b = appendJSONBytes(key(b, "original"), data)
	return closeObj(b, m)
}

// related collects related.user and related.ip values, without
// duplicates.
type related struct {
	users, ips [4][]byte
}

func (r *related) add(list *[4][]byte, v []byte) {
	if len(v) == 0 {
		return
	}
	for i, x := range list {
		if string(x) == string(v) {
			return
		}
		if x == nil {
			list[i] = v
			return
		}
	}
}

func (r *related) user(v []byte) { r.add(&r.users, v) }
func (r *related) ip(v []byte)   { r.add(&r.ips, v) }

// appendRelated appends the related object.
func appendRelated(b []byte, r *related) []byte {
	m := len(b)
	b = open(b, "related")
	for _, l := range []struct {
		k string
		v *[4][]byte
	}{{"user", &r.users}, {"ip", &r.ips}} {
		lm := len(b)
		b = openArr(b, l.k)
		for _, v := range l.v {
			if v != nil {
				b = appendRawStr(sep(b), v)
			}
		}
		b = closeArr(b, lm)
	}
	return closeObj(b, m)
}

// appendECSVersion appends the ecs object.
func appendECSVersion(b []byte) []byte {
	m := len(b)
	b = open(b, "ecs")
	b = putStr(b, "version", ECSVersion)
	return closeObj(b, m)
}

// appendLowerRaw appends the raw string contents v lower-cased (ASCII
// only, which keeps every escape valid).
func appendLowerRaw(b, v []byte) []byte {
	b = append(b, '"')
	for _, c := range v {
		b = append(b, lower(c))
	}
	return append(b, '"')
}

// putCompact appends k with the raw JSON value v compacted, unless v is
// absent or null.
func putCompact(b []byte, k string, v []byte) []byte {
	if len(v) == 0 || string(v) == "null" {
		return b
	}
	return jsonscan.AppendCompact(key(b, k), v)
}

// outcomeOf maps an OCSF status id to event.outcome.
func outcomeOf(status int) string {
	switch status {
	case statusSuccess:
		return "success"
	case statusFailure:
		return "failure"
	}
	return ""
}

// appendLabels appends labels.auditrelay_source, the configured source
// name, when the envelope has one.
func appendLabels(b []byte, in input) []byte {
	if in.source == "" {
		return b
	}
	m := len(b)
	b = open(b, "labels")
	b = putStr(b, "auditrelay_source", in.source)
	return closeObj(b, m)
}
