package sentinel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/normalize"
)

// Normalizer maps a provider event to the canonical event. The daemon
// passes one that knows every provider; the sink never imports a source.
// It must return an error for data that is not a valid JSON object: the
// sink then trusts the data it normalized and does not check it again.
type Normalizer func(event.Raw) (event.Event, error)

// timeFormat is how datetime columns are written.
const timeFormat = "2006-01-02T15:04:05.000Z"

// row is one encoded row: a JSON object.
type row struct {
	key  string // source + "\x00" + id: what the sink remembers as sent
	id   string
	data []byte
	ev   *event.Raw // kept for parking
}

// parked is an event the sink cannot send, with the reason.
type parked struct {
	ev     *event.Raw
	reason string
}

// encoder turns events into rows and rows into request bodies. It is not
// safe for concurrent use.
type encoder struct {
	format    string
	normalize Normalizer
	maxCall   int
	// columns are the format's stream columns, for the formats that write
	// them in a loop.
	columns []Column
	// truncated counts field values cut to MaxFieldBytes.
	truncated int64
	// filtered counts the events an ASIM format leaves to the other ASIM
	// format.
	filtered int64
}

func newEncoder(format string, normalize Normalizer, maxCall int) *encoder {
	return &encoder{format: format, normalize: normalize, maxCall: maxCall, columns: StreamColumns(format)}
}

// compressor gzips call bodies in a buffer it reuses; the sink has one
// per call in flight.
type compressor struct {
	gz  *gzip.Writer
	out bytes.Buffer
}

func newCompressor() *compressor {
	gz, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // a valid level never fails
	return &compressor{gz: gz}
}

// activity is the part of a PingOne activity the encoder reads, as raw
// JSON values.
type activity struct {
	ID                  json.RawMessage `json:"id"`
	CorrelationID       json.RawMessage `json:"correlationId"`
	RecordedAt          json.RawMessage `json:"recordedAt"`
	CreatedAt           json.RawMessage `json:"createdAt"`
	InternalCorrelation json.RawMessage `json:"internalCorrelation"`
	Actors              json.RawMessage `json:"actors"`
	Source              json.RawMessage `json:"source"`
	Action              json.RawMessage `json:"action"`
	Resources           json.RawMessage `json:"resources"`
	Result              json.RawMessage `json:"result"`
	Links               json.RawMessage `json:"_links"`
}

// rows encodes events, parking those that cannot be sent.
func (e *encoder) rows(batch []event.Raw, skip func(key string) bool) ([]row, []parked) {
	var rows []row
	var park []parked
	var arena rowArena
	for i := range batch {
		ev := &batch[i]
		key := ev.Source + "\x00" + ev.ID
		if skip != nil && skip(key) {
			continue
		}
		var data []byte
		var err error
		switch e.format {
		case FormatAuditRelay:
			data, err = e.auditRelayRow(arena.next(2*len(ev.Data)+1024), ev)
		case FormatCyberArkAudit:
			data, err = e.cyberArkAuditRow(arena.next(len(ev.Data)+64), ev)
		case FormatOktaV2:
			data, err = e.oktaV2Row(arena.next(len(ev.Data)+64), ev)
		case FormatASIMAudit, FormatASIMAuthentication:
			var ok bool
			data, ok, err = normalize.ASIMOf(asimSchema(e.format), *ev, arena.next(2*len(ev.Data)+1024))
			if err == nil && !ok {
				e.filtered++ // a row of the other ASIM schema
				continue
			}
		default:
			data, err = e.pingOneV2Row(arena.next(len(ev.Data)+64), ev)
		}
		if err == nil && len(data)+2 > e.maxCall {
			err = fmt.Errorf("its row is %d bytes after truncating fields, over the %d bytes one call may carry", len(data), e.maxCall)
		}
		if err != nil {
			park = append(park, parked{ev: ev, reason: err.Error()})
			continue
		}
		rows = append(rows, row{key: key, id: ev.ID, data: arena.keep(data), ev: ev})
	}
	return rows, park
}

// rowArenaSize is the size of the blocks a batch's rows are written in.
const rowArenaSize = 1 << 20

// rowArena hands out the space rows are written in, packed into blocks of
// rowArenaSize instead of a buffer each sized for the largest row an event
// could make: a batch's rows take a few allocations, and the bytes zeroed
// are about the bytes they fill.
type rowArena struct {
	buf  []byte // the block; its length is what rows kept so far
	free []byte // the space last handed out
}

// next returns an empty slice with room for at least n bytes; a row that
// outgrows it is moved by append, as any slice would be.
func (a *rowArena) next(n int) []byte {
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, max(rowArenaSize, n))
	}
	a.free = a.buf[len(a.buf):len(a.buf):cap(a.buf)]
	return a.free
}

// keep records that data, written from the slice next returned last, is
// a row, and returns it with no room to grow into the next row: when it
// stayed in the block, the block's next rows go after it.
func (a *rowArena) keep(data []byte) []byte {
	if len(data) > 0 && cap(data) == cap(a.free) && &data[:1][0] == &a.free[:1][0] {
		a.buf = a.buf[:len(a.buf)+len(data)]
	}
	return data[:len(data):len(data)]
}

// pingOneV2Row writes the columns the connector's stream declares, with
// the activity's own values. A missing createdAt is filled with the event
// time, so that the connector's transform (TimeGenerated from createdAt)
// never falls back to the ingestion time.
func (e *encoder) pingOneV2Row(b []byte, ev *event.Raw) ([]byte, error) {
	if ev.Provider != "" && ev.Provider != "pingone" {
		return nil, fmt.Errorf("format %s carries PingOne activities only, not %s events (use format %s)", FormatPingOneV2, ev.Provider, FormatAuditRelay)
	}
	var a activity
	if err := unmarshalObject(ev.Data, &a); err != nil {
		return nil, err
	}
	b = append(b, '{')
	first := true
	if a.ID != nil {
		b = e.rawField(b, &first, "id", a.ID)
	} else {
		b = e.stringField(b, &first, "id", ev.ID)
	}
	b = e.rawField(b, &first, "correlationId", a.CorrelationID)
	recorded := a.RecordedAt
	if isNull(recorded) && !ev.Time.IsZero() {
		recorded = appendTime(nil, ev.Time)
	}
	b = e.rawField(b, &first, "recordedAt", recorded)
	created := a.CreatedAt
	if isNull(created) {
		created = recorded
	}
	b = e.rawField(b, &first, "createdAt", created)
	b = e.rawField(b, &first, "internalCorrelation", a.InternalCorrelation)
	b = e.rawField(b, &first, "actors", a.Actors)
	b = e.rawField(b, &first, "source", a.Source)
	b = e.rawField(b, &first, "action", a.Action)
	b = e.rawField(b, &first, "resources", a.Resources)
	b = e.rawField(b, &first, "result", a.Result)
	return append(b, '}'), nil
}

// cyberArkAuditRow writes the columns the CyberArkAudit solution's stream
// declares, in its order, with the event's own values as served: the DCR's
// transform maps them to the table, TimeGenerated from timestamp. A missing
// or null timestamp is filled with the event time in epoch milliseconds,
// so that TimeGenerated never falls back to the ingestion time, and a
// missing tenantId with the event's tenant. Fields the stream does not
// declare are left out, as the service would drop them.
func (e *encoder) cyberArkAuditRow(b []byte, ev *event.Raw) ([]byte, error) {
	if ev.Provider != "" && ev.Provider != FormatProvider(FormatCyberArkAudit) {
		return nil, fmt.Errorf("format %s carries CyberArk audit events only, not %s events (use format %s)", FormatCyberArkAudit, ev.Provider, FormatAuditRelay)
	}
	var f map[string]json.RawMessage
	if err := unmarshalObject(ev.Data, &f); err != nil {
		return nil, err
	}
	b = append(b, '{')
	first := true
	for _, c := range e.columns {
		v := f[c.Name]
		switch {
		case !isNull(v):
		case c.Name == "timestamp" && !ev.Time.IsZero():
			v = strconv.AppendInt(nil, ev.Time.UnixMilli(), 10)
		case c.Name == "tenantId" && ev.Tenant != "":
			v = event.AppendJSONString(nil, ev.Tenant)
		}
		b = e.rawField(b, &first, c.Name, v)
	}
	return append(b, '}'), nil
}

// logEvent is what the okta_v2 format reads of an Okta LogEvent: its
// top-level fields, as raw JSON values.
type logEvent struct {
	UUID                  json.RawMessage `json:"uuid"`
	Published             json.RawMessage `json:"published"`
	EventType             json.RawMessage `json:"eventType"`
	Version               json.RawMessage `json:"version"`
	Severity              json.RawMessage `json:"severity"`
	LegacyEventType       json.RawMessage `json:"legacyEventType"`
	DisplayMessage        json.RawMessage `json:"displayMessage"`
	Actor                 json.RawMessage `json:"actor"`
	Client                json.RawMessage `json:"client"`
	Outcome               json.RawMessage `json:"outcome"`
	Target                json.RawMessage `json:"target"`
	Transaction           json.RawMessage `json:"transaction"`
	DebugContext          json.RawMessage `json:"debugContext"`
	AuthenticationContext json.RawMessage `json:"authenticationContext"`
	SecurityContext       json.RawMessage `json:"securityContext"`
	Request               json.RawMessage `json:"request"`
}

// oktaV2Row writes the columns the Okta Single Sign-On solution's stream
// declares, in its order, with the LogEvent's own values as served: the
// DCR's transform maps them to OktaV2_CL, TimeGenerated from published.
// DomainName is the org's domain, the event's tenant (the org's host), as
// the solution's poller adds it. A missing uuid or published is filled
// from the envelope, so that EventOriginalUid and TimeGenerated are never
// empty. Fields the stream does not declare are left out, as the service
// would drop them.
func (e *encoder) oktaV2Row(b []byte, ev *event.Raw) ([]byte, error) {
	if ev.Provider != "" && ev.Provider != FormatProvider(FormatOktaV2) {
		return nil, fmt.Errorf("format %s carries Okta System Log events only, not %s events (use format %s)", FormatOktaV2, ev.Provider, FormatAuditRelay)
	}
	var l logEvent
	if err := unmarshalObject(ev.Data, &l); err != nil {
		return nil, err
	}
	b = append(b, '{')
	first := true
	if !isNull(l.UUID) {
		b = e.rawField(b, &first, "uuid", l.UUID)
	} else {
		b = e.stringField(b, &first, "uuid", ev.ID)
	}
	b = e.stringField(b, &first, "DomainName", ev.Tenant)
	published := l.Published
	if isNull(published) && !ev.Time.IsZero() {
		published = appendTime(nil, ev.Time)
	}
	b = e.rawField(b, &first, "published", published)
	b = e.rawField(b, &first, "eventType", l.EventType)
	b = e.rawField(b, &first, "version", l.Version)
	b = e.rawField(b, &first, "severity", l.Severity)
	b = e.rawField(b, &first, "legacyEventType", l.LegacyEventType)
	b = e.rawField(b, &first, "displayMessage", l.DisplayMessage)
	b = e.rawField(b, &first, "actor", l.Actor)
	b = e.rawField(b, &first, "client", l.Client)
	b = e.rawField(b, &first, "outcome", l.Outcome)
	b = e.rawField(b, &first, "target", l.Target)
	b = e.rawField(b, &first, "transaction", l.Transaction)
	b = e.rawField(b, &first, "debugContext", l.DebugContext)
	b = e.rawField(b, &first, "authenticationContext", l.AuthenticationContext)
	b = e.rawField(b, &first, "securityContext", l.SecurityContext)
	b = e.rawField(b, &first, "request", l.Request)
	return append(b, '}'), nil
}

// auditRelayRow writes the typed columns of the auditrelay format. A
// PingOne activity is mapped by normalize.PingOneEventColumns (what the
// daemon's normalizer does for PingOne, returning besides the columns'
// raw values from the same pass); other events by the encoder's
// normalizer, their PingOne columns read by normalize.PingOneColumnsOf.
func (e *encoder) auditRelayRow(b []byte, ev *event.Raw) ([]byte, error) {
	var c event.Event
	var a normalize.PingOneColumns
	switch {
	case e.normalize != nil && ev.Provider == normalize.ProviderPingOne:
		var err error
		if c, a, err = normalize.PingOneEventColumns(*ev); err != nil {
			return nil, fmt.Errorf("normalize: %w", err)
		}
	case e.normalize != nil:
		var err error
		if c, err = e.normalize(*ev); err != nil {
			return nil, fmt.Errorf("normalize: %w", err)
		}
		a = normalize.PingOneColumnsOf(ev.Data)
	default:
		if d := bytes.TrimSpace(ev.Data); len(d) == 0 || d[0] != '{' || !json.Valid(d) {
			return nil, fmt.Errorf("the event is not a JSON object")
		}
		c = event.Event{Time: ev.Time, Provider: ev.Provider, Tenant: ev.Tenant, Source: ev.Source, ID: ev.ID, Outcome: event.OutcomeUnknown, Raw: ev.Data}
		a = normalize.PingOneColumnsOf(ev.Data)
	}
	t := c.Time
	if t.IsZero() {
		t = ev.Time
	}
	b = append(b, '{')
	first := true
	if !t.IsZero() {
		b = e.rawField(b, &first, "TimeGenerated", appendTime(nil, t))
	}
	b = e.stringField(b, &first, "Id", c.ID)
	b = e.stringField(b, &first, "CorrelationId", c.CorrelationID)
	b = e.rawField(b, &first, "RecordedAt", stringOnly(a.RecordedAt))
	b = e.rawField(b, &first, "CreatedAt", stringOnly(a.CreatedAt))
	b = e.stringField(b, &first, "Provider", c.Provider)
	b = e.stringField(b, &first, "EnvironmentId", c.Tenant)
	b = e.stringField(b, &first, "AuditRelaySource", c.Source)
	b = e.stringRaw(b, &first, "Href", a.Href)
	b = e.stringField(b, &first, "ActionType", c.Action)
	b = e.stringField(b, &first, "ActionDescription", c.Description)
	b = e.stringField(b, &first, "Outcome", string(c.Outcome))
	b = e.stringRaw(b, &first, "ResultStatus", a.ResultStatus)
	b = e.stringField(b, &first, "ResultDescription", c.Reason)
	b = e.stringRaw(b, &first, "ResultId", a.ResultID)
	cl, us := &a.Client, &a.User
	b = e.stringRaw(b, &first, "ClientId", cl.ID)
	b = e.stringRaw(b, &first, "ClientName", cl.Name)
	b = e.stringRaw(b, &first, "ClientType", cl.Type)
	b = e.stringRaw(b, &first, "ClientEnvironmentId", cl.EnvironmentID)
	b = e.stringRaw(b, &first, "ClientHref", cl.Href)
	b = e.stringRaw(b, &first, "UserId", us.ID)
	b = e.stringRaw(b, &first, "UserName", us.Name)
	b = e.stringRaw(b, &first, "UserType", us.Type)
	b = e.stringRaw(b, &first, "UserEnvironmentId", us.EnvironmentID)
	b = e.stringRaw(b, &first, "UserPopulationId", us.PopulationID)
	b = e.stringRaw(b, &first, "UserHref", us.Href)
	b = e.stringField(b, &first, "SourceIpAddress", c.SourceIP)
	b = e.stringField(b, &first, "SourceUserAgent", c.UserAgent)
	b = e.stringField(b, &first, "InternalCorrelationSessionId", c.SessionID)
	b = e.rawField(b, &first, "InternalCorrelation", a.InternalCorrelation)
	b = e.rawField(b, &first, "Resources", a.Resources)
	admin := false
	if len(c.Tags) > 0 {
		tags := []byte{'['}
		for i, tag := range c.Tags {
			if i > 0 {
				tags = append(tags, ',')
			}
			tags = event.AppendJSONString(tags, tag)
			admin = admin || tag == "adminIdentityEvent"
		}
		b = e.rawField(b, &first, "Tags", append(tags, ']'))
	}
	b = e.rawField(b, &first, "AdminIdentityEvent", strconv.AppendBool(nil, admin))
	b = e.rawField(b, &first, "Raw", ev.Data)
	return append(b, '}'), nil
}

// unmarshalObject decodes raw event data that must be a JSON object.
func unmarshalObject(data []byte, v any) error {
	d := bytes.TrimSpace(data)
	if len(d) == 0 || d[0] != '{' {
		return fmt.Errorf("the event is not a JSON object")
	}
	if err := json.Unmarshal(d, v); err != nil {
		// A value of the wrong type is skipped and the rest decoded.
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil
		}
		return fmt.Errorf("the event is not valid JSON: %w", err)
	}
	return nil
}

// stringOnly returns raw when it is a JSON string, nil otherwise.
func stringOnly(raw json.RawMessage) json.RawMessage {
	if len(raw) > 1 && raw[0] == '"' {
		return raw
	}
	return nil
}

// isNull reports whether a raw value is absent or null.
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// appendTime appends t as a JSON datetime string.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, timeFormat)
	return append(b, '"')
}

// stringField appends "name":"v", leaving an empty v out. A value longer
// than MaxFieldBytes is cut there and counted.
func (e *encoder) stringField(b []byte, first *bool, name, v string) []byte {
	if v == "" {
		return b
	}
	if len(v) > MaxFieldBytes {
		v = truncateUTF8(v, MaxFieldBytes)
		e.truncated++
	}
	b = fieldName(b, first, name)
	return event.AppendJSONString(b, v)
}

// stringRaw appends "name":raw when raw is a non-empty JSON string, as
// read from the event, with rawField's limit.
func (e *encoder) stringRaw(b []byte, first *bool, name string, raw json.RawMessage) []byte {
	if len(raw) <= 2 || raw[0] != '"' {
		return b
	}
	return e.rawField(b, first, name, raw)
}

// rawField appends "name":raw, leaving an absent or null value out. A value
// longer than MaxFieldBytes is sent as a string of its first MaxFieldBytes
// bytes, and counted; the service would cut it anyway, breaking its JSON.
func (e *encoder) rawField(b []byte, first *bool, name string, raw json.RawMessage) []byte {
	if isNull(raw) {
		return b
	}
	b = fieldName(b, first, name)
	if len(raw) <= MaxFieldBytes {
		return append(b, raw...)
	}
	e.truncated++
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if len(s) > MaxFieldBytes {
				s = truncateUTF8(s, MaxFieldBytes)
			}
			return event.AppendJSONString(b, s)
		}
	}
	if v, ok := shrinkDynamic(raw, MaxFieldBytes); ok {
		return append(b, v...)
	}
	return event.AppendJSONString(b, truncateUTF8(string(raw), MaxFieldBytes))
}

// shrinkDynamic cuts the longest strings inside a JSON object or array
// until it encodes in at most limit bytes, so that its structure (and the
// DCR's transform of it) survives. It reports false when strings are not
// what makes it large.
func shrinkDynamic(raw json.RawMessage, limit int) ([]byte, bool) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return nil, false
	}
	for range 64 {
		out, err := json.Marshal(v)
		if err != nil {
			return nil, false
		}
		if len(out) <= limit {
			return out, true
		}
		over := len(out) - limit
		longest := longestString(&v)
		if longest == nil || len(*longest) == 0 {
			return nil, false
		}
		keep := max(0, len(*longest)-over-len(*longest)/8-16)
		*longest = truncateUTF8(*longest, keep)
	}
	return nil, false
}

// longestString returns a pointer to the longest string inside v (a
// decoded JSON value), replacing it in place so that writes land in v.
func longestString(v *any) *string {
	var best *string
	var walk func(p *any)
	walk = func(p *any) {
		switch x := (*p).(type) {
		case string:
			s := x
			ps := &s
			*p = ps
			if best == nil || len(*ps) > len(*best) {
				best = ps
			}
		case *string:
			if best == nil || len(*x) > len(*best) {
				best = x
			}
		case map[string]any:
			for k, val := range x {
				walk(&val)
				x[k] = val
			}
		case []any:
			for i := range x {
				walk(&x[i])
			}
		}
	}
	walk(v)
	return best
}

func fieldName(b []byte, first *bool, name string) []byte {
	if !*first {
		b = append(b, ',')
	}
	*first = false
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// split packs rows, in order, into as few calls as fit: each body, a JSON
// array, at most maxCall bytes uncompressed.
func (e *encoder) split(rows []row) [][]row {
	var calls [][]row
	start, size := 0, 2 // "[" and "]"
	for i, r := range rows {
		add := len(r.data)
		if i > start {
			add++ // the comma
		}
		if i > start && size+add > e.maxCall {
			calls = append(calls, rows[start:i])
			start, size = i, 2
			add = len(r.data)
		}
		size += add
	}
	if start < len(rows) {
		calls = append(calls, rows[start:])
	}
	return calls
}

// body returns the uncompressed size of rows' JSON array and the array
// gzipped. The returned slice is valid until the next call.
func (e *compressor) body(rows []row) (int, []byte, error) {
	e.out.Reset()
	e.gz.Reset(&e.out)
	n := 0
	w := func(p []byte) error {
		n += len(p)
		_, err := e.gz.Write(p)
		return err
	}
	if err := w([]byte{'['}); err != nil {
		return 0, nil, err
	}
	for i, r := range rows {
		if i > 0 {
			if err := w([]byte{','}); err != nil {
				return 0, nil, err
			}
		}
		if err := w(r.data); err != nil {
			return 0, nil, err
		}
	}
	if err := w([]byte{']'}); err != nil {
		return 0, nil, err
	}
	if err := e.gz.Close(); err != nil {
		return 0, nil, err
	}
	return n, e.out.Bytes(), nil
}
