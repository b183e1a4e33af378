package syslog

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/auditrelay/auditrelay/internal/event"
)

// Time layouts: RFC 5424 allows six fraction digits at most; QRadar's
// LEEF guide asks for exactly three in the header, and CEF and LEEF frames
// use that.
const (
	layoutMicro = "2006-01-02T15:04:05.000000Z07:00"
	layoutMilli = "2006-01-02T15:04:05.000Z07:00"
)

const (
	nilValue = "-"
	// maxMsgID is RFC 5424's MSGID limit.
	maxMsgID = 32
	// maxEventID is the LEEF EventID limit.
	maxEventID = 255
)

// errNotJSON is the reason an event whose raw data is not JSON is parked.
var errNotJSON = errors.New("raw event is not JSON: its strings or brackets do not close")

// header is what every message of a sink shares.
type header struct {
	format   string
	facility int
	severity int
	host     string
	app      string
	procID   string
	sdID     string // auditrelay@<enterprise id>
}

// encoder turns events into syslog frames. It is not safe for concurrent
// use.
type encoder struct {
	h       header
	compact []byte
	msg     []byte
}

// newEncoder returns an encoder for the messages h describes.
func newEncoder(h header) *encoder { return &encoder{h: h} }

// message encodes ev as one RFC 5424 SYSLOG-MSG, valid until the next
// call:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG
//
// In rfc5424 format SD is [auditrelay@N id source provider tenant] and MSG
// is the provider's event as compact JSON, without a BOM; in cef and leef
// formats SD is "-" (those fields are in the payload) and MSG is the CEF
// or LEEF line.
func (e *encoder) message(ev *event.Raw) ([]byte, error) {
	data, ok := compactJSON(e.compact[:0], ev.Data)
	if !ok {
		return nil, errNotJSON
	}
	e.compact = data
	f := fieldsOf(ev.Provider, data)
	b := e.msg[:0]
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(e.h.facility*8+e.h.severity), 10)
	b = append(b, ">1 "...)
	layout := layoutMicro
	if e.h.format != FormatRFC5424 {
		layout = layoutMilli
	}
	if ev.Time.IsZero() {
		b = append(b, nilValue...)
	} else {
		b = ev.Time.UTC().Truncate(time.Microsecond).AppendFormat(b, layout)
	}
	b = append(b, ' ')
	b = append(b, e.h.host...)
	b = append(b, ' ')
	b = append(b, e.h.app...)
	b = append(b, ' ')
	b = append(b, e.h.procID...)
	b = append(b, ' ')
	b = appendMsgID(b, f.action)
	b = append(b, ' ')
	switch e.h.format {
	case FormatCEF:
		b = append(b, "- "...)
		b = appendCEF(b, ev, &f)
	case FormatLEEF:
		b = append(b, "- "...)
		b = appendLEEF(b, ev, &f)
	default:
		b = append(b, '[')
		b = append(b, e.h.sdID...)
		b = appendParam(b, "id", ev.ID)
		b = appendParam(b, "source", ev.Source)
		b = appendParam(b, "provider", ev.Provider)
		b = appendParam(b, "tenant", ev.Tenant)
		b = append(b, "] "...)
		b = append(b, data...)
	}
	e.msg = b
	return b, nil
}

// appendFrame appends msg in RFC 6587 octet counting: MSG-LEN SP MSG.
func appendFrame(b, msg []byte) []byte {
	b = strconv.AppendInt(b, int64(len(msg)), 10)
	b = append(b, ' ')
	return append(b, msg...)
}

// appendMsgID appends s as an RFC 5424 MSGID: PRINTUSASCII only (every
// other byte or character becomes _), at most 32 characters, NILVALUE
// when empty.
func appendMsgID(b []byte, s string) []byte { return appendMsgIDN(b, s, maxMsgID) }

// appendMsgIDN is appendMsgID with a limit of max characters.
func appendMsgIDN(b []byte, s string, max int) []byte {
	if s == "" {
		return append(b, nilValue...)
	}
	n := 0
	for i := 0; i < len(s) && n < max; {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 33 || c > 126 {
				c = '_'
			}
			b = append(b, c)
			i++
		} else {
			_, size := utf8.DecodeRuneInString(s[i:])
			b = append(b, '_')
			i += size
		}
		n++
	}
	return b
}

// appendParam appends ` name="value"` with RFC 5424's escapes in
// PARAM-VALUE: `"`, `\` and `]` get a backslash. The value is UTF-8;
// invalid bytes become U+FFFD.
func appendParam(b []byte, name, v string) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, '=', '"')
	v = validUTF8(v)
	start := 0
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '"' || c == '\\' || c == ']' {
			b = append(b, v[start:i]...)
			b = append(b, '\\', c)
			start = i + 1
		}
	}
	b = append(b, v[start:]...)
	return append(b, '"')
}

// validUTF8 returns s with invalid UTF-8 replaced by U+FFFD; it does not
// allocate when s is valid.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// appendCEF appends ev as an ArcSight CEF line:
//
//	CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|ext
//
// Header fields escape `\` and `|` and have line breaks replaced by
// spaces; extension values escape `\` and `=`, and write CR and LF as \r
// and \n. See docs/sinks/syslog.md for the mapping.
func appendCEF(b []byte, ev *event.Raw, f *fields) []byte {
	p := productOf(ev.Provider)
	b = append(b, "CEF:0|"...)
	b = appendCEFHeader(b, p.vendor)
	b = appendCEFHeader(b, p.product)
	b = appendCEFHeader(b, mappingVersion)
	b = appendCEFHeader(b, firstOf(f.action, ev.Provider))
	b = appendCEFHeader(b, firstOf(f.name, ev.Provider+" event"))
	b = strconv.AppendInt(b, int64(f.severity), 10)
	b = append(b, '|')
	sep := false
	kv := func(k, v string) {
		if v == "" {
			return
		}
		if sep {
			b = append(b, ' ')
		}
		sep = true
		b = append(b, k...)
		b = append(b, '=')
		b = appendCEFValue(b, v)
	}
	if !ev.Time.IsZero() {
		sep = true
		b = append(b, "rt="...)
		b = strconv.AppendInt(b, ev.Time.UnixMilli(), 10)
	}
	kv("externalId", ev.ID)
	kv("cat", f.category)
	kv("outcome", f.outcome)
	kv("reason", f.reason)
	kv("suser", f.actorName)
	kv("suid", f.actorID)
	kv("duser", f.targetName)
	kv("duid", f.targetID)
	if a, ok := parseIP(f.srcIP); ok && !a {
		kv("c6a2", f.srcIP)
		kv("c6a2Label", "Source IPv6 Address")
	} else if ok {
		kv("src", f.srcIP)
	}
	kv("requestClientApplication", f.userAgent)
	kv("destinationServiceName", f.service)
	kv("cs1", ev.Tenant)
	kv("cs1Label", labelIf(ev.Tenant, "tenant"))
	kv("cs2", ev.Source)
	kv("cs2Label", labelIf(ev.Source, "auditrelaySource"))
	kv("cs3", f.correlation)
	kv("cs3Label", labelIf(f.correlation, "correlationId"))
	kv("cs4", f.targetType)
	kv("cs4Label", labelIf(f.targetType, "targetType"))
	kv("cs5", ev.Provider)
	kv("cs5Label", labelIf(ev.Provider, "provider"))
	return b
}

func labelIf(v, label string) string {
	if v == "" {
		return ""
	}
	return label
}

// parseIP reports whether s is an IP address and whether it is IPv4.
func parseIP(s string) (v4, ok bool) {
	if s == "" {
		return false, false
	}
	return !strings.Contains(s, ":"), true
}

// appendCEFHeader appends a CEF header field and its closing pipe.
func appendCEFHeader(b []byte, s string) []byte {
	s = validUTF8(s)
	start := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '|':
			b = append(b, s[start:i]...)
			b = append(b, '\\', c)
			start = i + 1
		case '\r', '\n':
			b = append(b, s[start:i]...)
			b = append(b, ' ')
			start = i + 1
		}
	}
	b = append(b, s[start:]...)
	return append(b, '|')
}

// appendCEFValue appends an extension value: `\` and `=` escaped, CR and
// LF written \r and \n, other control characters as spaces.
func appendCEFValue(b []byte, s string) []byte {
	s = validUTF8(s)
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		var rep string
		switch {
		case c == '\\':
			rep = `\\`
		case c == '=':
			rep = `\=`
		case c == '\n':
			rep = `\n`
		case c == '\r':
			rep = `\r`
		case c < 0x20 || c == 0x7f:
			rep = " "
		default:
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, rep...)
		start = i + 1
	}
	return append(b, s[start:]...)
}

// appendLEEF appends ev as a QRadar LEEF 2.0 line with tab-delimited
// attributes, the delimiter declared in the header as x09:
//
//	LEEF:2.0|Vendor|Product|Version|EventID|x09|key=value<TAB>key=value…
//
// LEEF defines no escape: header fields have `|` and control characters
// replaced by _, attribute values have control characters (tab, CR, LF
// among them) replaced by spaces. See docs/sinks/syslog.md for the mapping.
func appendLEEF(b []byte, ev *event.Raw, f *fields) []byte {
	p := productOf(ev.Provider)
	b = append(b, "LEEF:2.0|"...)
	b = appendLEEFHeader(b, p.vendor, maxEventID)
	b = appendLEEFHeader(b, p.product, maxEventID)
	b = appendLEEFHeader(b, mappingVersion, maxEventID)
	b = appendLEEFHeader(b, firstOf(f.action, ev.Provider), maxEventID)
	b = append(b, "x09|"...)
	sep := false
	kv := func(k, v string) {
		if v == "" {
			return
		}
		if sep {
			b = append(b, '\t')
		}
		sep = true
		b = append(b, k...)
		b = append(b, '=')
		b = appendLEEFValue(b, v)
	}
	if !ev.Time.IsZero() {
		sep = true
		b = append(b, "devTime="...)
		b = strconv.AppendInt(b, ev.Time.UnixMilli(), 10)
	}
	kv("cat", f.category)
	b = append(b, "\tsev="...)
	b = strconv.AppendInt(b, int64(max(1, f.severity)), 10)
	kv("usrName", f.actorName)
	kv("src", f.srcIP)
	kv("name", f.name)
	kv("outcome", f.outcome)
	kv("reason", f.reason)
	kv("actorId", f.actorID)
	kv("targetName", f.targetName)
	kv("targetId", f.targetID)
	kv("targetType", f.targetType)
	kv("service", f.service)
	kv("userAgent", f.userAgent)
	kv("correlationId", f.correlation)
	kv("eventId", ev.ID)
	kv("tenant", ev.Tenant)
	kv("relaySource", ev.Source)
	kv("provider", ev.Provider)
	return b
}

// appendLEEFHeader appends a LEEF header field, at most max bytes (cut on
// a character boundary), and its closing pipe.
func appendLEEFHeader(b []byte, s string, max int) []byte {
	s = validUTF8(s)
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '|' || c < 0x20 || c == 0x7f {
			b = append(b, '_')
		} else {
			b = append(b, c)
		}
	}
	return append(b, '|')
}

// appendLEEFValue appends an attribute value with control characters
// replaced by spaces.
func appendLEEFValue(b []byte, s string) []byte {
	s = validUTF8(s)
	start := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			b = append(b, s[start:i]...)
			b = append(b, ' ')
			start = i + 1
		}
	}
	return append(b, s[start:]...)
}
