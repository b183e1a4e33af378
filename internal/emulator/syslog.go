package emulator

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Syslog is a syslog receiver for RFC 5424 messages over TCP or TLS (RFC
// 5425), framed by octet counting (RFC 6587 §3.4.1) or, as many senders
// do, by a trailing LF: a frame starting with a digit is octet-counted,
// one starting with '<' runs to the next LF. Each message is parsed
// (ParseSyslog; CEF and LEEF payloads with ParseCEF and ParseLEEF) and
// kept, or handed to OnMessage. A frame over MaxMessageBytes is skipped
// and counted; a frame that cannot be parsed is counted and kept raw; a
// connection whose framing is lost is closed.
type Syslog struct {
	opts SyslogOptions

	mu      sync.Mutex
	msgs    []SyslogMessage
	stats   SyslogStats
	lns     []net.Listener
	conns   map[net.Conn]bool
	closed  bool
	serving sync.WaitGroup
}

// SyslogOptions configure a Syslog.
type SyslogOptions struct {
	// TLS, when set, makes Serve speak TLS on every connection.
	TLS *tls.Config
	// MaxMessageBytes bounds a message; 0: no bound.
	MaxMessageBytes int
	// OnMessage, when set, receives each message instead of the list
	// Messages returns. It is called from the connection's goroutine.
	OnMessage func(SyslogMessage)
}

// SyslogStats count what a Syslog received.
type SyslogStats struct {
	Connections int
	Messages    int
	TooLarge    int // frames over MaxMessageBytes, skipped
	Malformed   int // messages ParseSyslog refused, kept with Err set
	Desync      int // connections closed because their framing was lost
}

// SyslogMessage is one received RFC 5424 message.
type SyslogMessage struct {
	Raw      []byte // the SYSLOG-MSG as received
	Framing  string // "octet-counting" or "lf"
	Priority int
	Facility int
	Severity int
	Version  int
	// Timestamp is TIMESTAMP as sent; Time is it parsed (zero for "-").
	Timestamp string
	Time      time.Time
	Hostname  string
	AppName   string
	ProcID    string
	MsgID     string
	SD        []SDElement
	BOM       bool // MSG started with the UTF-8 BOM, removed from Msg
	Msg       []byte
	// Err is why the message could not be parsed; the fields before it
	// are set.
	Err error
}

// SDElement is one structured data element.
type SDElement struct {
	ID     string
	Params []SDParam
}

// SDParam is one structured data parameter, its value unescaped.
type SDParam struct {
	Name, Value string
}

// Param returns the value of the first parameter named name of the
// element with id, and whether there is one.
func (m *SyslogMessage) Param(id, name string) (string, bool) {
	for _, e := range m.SD {
		if e.ID != id {
			continue
		}
		for _, p := range e.Params {
			if p.Name == name {
				return p.Value, true
			}
		}
	}
	return "", false
}

// NewSyslog returns a receiver; Serve it on listeners.
func NewSyslog(opts SyslogOptions) *Syslog {
	return &Syslog{opts: opts, conns: map[net.Conn]bool{}}
}

// Serve accepts connections on ln until ln or the receiver is closed.
func (s *Syslog) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	s.lns = append(s.lns, ln)
	s.serving.Add(1)
	s.mu.Unlock()
	defer s.serving.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if s.opts.TLS != nil {
			c = tls.Server(c, s.opts.TLS)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[c] = true
		s.stats.Connections++
		s.serving.Add(1)
		s.mu.Unlock()
		go s.handle(c)
	}
}

// Close stops every listener and connection and waits for their
// goroutines.
func (s *Syslog) Close() {
	s.mu.Lock()
	s.closed = true
	for _, ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.serving.Wait()
}

// CloseConnections closes the connections open now, as a receiver that
// restarts does; listeners stay open.
func (s *Syslog) CloseConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// Messages returns the messages received so far.
func (s *Syslog) Messages() []SyslogMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SyslogMessage(nil), s.msgs...)
}

// Stats returns the counters.
func (s *Syslog) Stats() SyslogStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *Syslog) handle(c net.Conn) {
	defer s.serving.Done()
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	r := bufio.NewReaderSize(c, 64<<10)
	for {
		frame, framing, err := ReadSyslogFrame(r, s.opts.MaxMessageBytes)
		if errors.Is(err, ErrFrameTooLarge) {
			s.mu.Lock()
			s.stats.TooLarge++
			s.mu.Unlock()
			continue
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && errors.Is(err, ErrFraming) {
				s.mu.Lock()
				s.stats.Desync++
				s.mu.Unlock()
			}
			return
		}
		m := ParseSyslog(frame)
		m.Framing = framing
		s.mu.Lock()
		s.stats.Messages++
		if m.Err != nil {
			s.stats.Malformed++
		}
		if s.opts.OnMessage == nil {
			s.msgs = append(s.msgs, m)
		}
		s.mu.Unlock()
		if s.opts.OnMessage != nil {
			s.opts.OnMessage(m)
		}
	}
}

// Framing errors.
var (
	// ErrFrameTooLarge is returned for an octet-counted frame over the
	// limit; the frame has been skipped and the stream is still in sync.
	ErrFrameTooLarge = errors.New("syslog frame over the size limit")
	// ErrFraming is returned when a frame starts with neither a digit nor
	// '<': the stream is out of sync.
	ErrFraming = errors.New("syslog framing lost")
)

// maxLenDigits bounds MSG-LEN: 10 digits is more than any frame.
const maxLenDigits = 10

// ReadSyslogFrame reads one frame from r and returns its SYSLOG-MSG and
// framing ("octet-counting" or "lf"). An octet-counted frame is MSG-LEN
// SP SYSLOG-MSG, MSG-LEN decimal without leading zeros; a frame starting
// with '<' ends at LF (a CR before it is removed). max > 0 bounds the
// message: a longer octet-counted one is skipped with ErrFrameTooLarge, a
// longer LF one is ErrFraming.
func ReadSyslogFrame(r *bufio.Reader, max int) ([]byte, string, error) {
	first, err := r.Peek(1)
	if err != nil {
		return nil, "", err
	}
	switch c := first[0]; {
	case c >= '1' && c <= '9':
		n := 0
		for i := 0; ; i++ {
			b, err := r.ReadByte()
			if err != nil {
				return nil, "", unexpected(err)
			}
			if b == ' ' {
				break
			}
			if b < '0' || b > '9' || i >= maxLenDigits {
				return nil, "", fmt.Errorf("%w: MSG-LEN is not a decimal number followed by a space", ErrFraming)
			}
			n = n*10 + int(b-'0')
		}
		if max > 0 && n > max {
			if _, err := r.Discard(n); err != nil {
				return nil, "", unexpected(err)
			}
			return nil, "", fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, max)
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(r, msg); err != nil {
			return nil, "", unexpected(err)
		}
		return msg, "octet-counting", nil
	case c == '<':
		var line []byte
		for {
			chunk, err := r.ReadSlice('\n')
			line = append(line, chunk...)
			if max > 0 && len(line) > max+2 {
				return nil, "", fmt.Errorf("%w: LF-framed message over %d bytes", ErrFraming, max)
			}
			if err == nil {
				break
			}
			if err != bufio.ErrBufferFull {
				return nil, "", unexpected(err)
			}
		}
		line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
		return line, "lf", nil
	default:
		return nil, "", fmt.Errorf("%w: a frame starts with %q, neither a digit nor '<'", ErrFraming, c)
	}
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ParseSyslog parses an RFC 5424 SYSLOG-MSG. On a malformed message Err
// is set and the fields parsed before the fault are kept.
func ParseSyslog(b []byte) SyslogMessage {
	m := SyslogMessage{Raw: b}
	p := &parser{b: b}
	m.Err = p.message(&m)
	return m
}

type parser struct {
	b []byte
	i int
}

func (p *parser) fail(what string) error {
	return fmt.Errorf("syslog: %s at byte %d", what, p.i)
}

func (p *parser) sp() error {
	if p.i >= len(p.b) || p.b[p.i] != ' ' {
		return p.fail("want a space")
	}
	p.i++
	return nil
}

// token reads 1 to max PRINTUSASCII characters up to a space.
func (p *parser) token(name string, max int) (string, error) {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] != ' ' {
		if c := p.b[p.i]; c < 33 || c > 126 {
			return "", p.fail(name + " has a character outside printable ASCII")
		}
		p.i++
	}
	if p.i == start || p.i-start > max {
		return "", p.fail(fmt.Sprintf("%s must be 1 to %d characters", name, max))
	}
	return string(p.b[start:p.i]), nil
}

func (p *parser) message(m *SyslogMessage) error {
	if p.i >= len(p.b) || p.b[p.i] != '<' {
		return p.fail("want <PRI>")
	}
	p.i++
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	if p.i == start || p.i-start > 3 || p.i >= len(p.b) || p.b[p.i] != '>' {
		return p.fail("PRI is not 1 to 3 digits in <>")
	}
	pri, _ := strconv.Atoi(string(p.b[start:p.i]))
	if pri > 191 || (p.i-start > 1 && p.b[start] == '0') {
		return p.fail("PRI out of range")
	}
	p.i++
	m.Priority, m.Facility, m.Severity = pri, pri/8, pri%8
	start = p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	if p.i == start || p.i-start > 3 || p.b[start] == '0' {
		return p.fail("VERSION is not 1 to 3 digits")
	}
	m.Version, _ = strconv.Atoi(string(p.b[start:p.i]))
	if err := p.sp(); err != nil {
		return err
	}
	ts, err := p.token("TIMESTAMP", 32)
	if err != nil {
		return err
	}
	m.Timestamp = ts
	if ts != "-" {
		t, err := parseTimestamp(ts)
		if err != nil {
			return p.fail(err.Error())
		}
		m.Time = t
	}
	for _, f := range []struct {
		dst  *string
		name string
		max  int
	}{{&m.Hostname, "HOSTNAME", 255}, {&m.AppName, "APP-NAME", 48}, {&m.ProcID, "PROCID", 128}, {&m.MsgID, "MSGID", 32}} {
		if err := p.sp(); err != nil {
			return err
		}
		v, err := p.token(f.name, f.max)
		if err != nil {
			return err
		}
		*f.dst = v
	}
	if err := p.sp(); err != nil {
		return err
	}
	if err := p.structuredData(m); err != nil {
		return err
	}
	if p.i == len(p.b) {
		return nil
	}
	if err := p.sp(); err != nil {
		return err
	}
	msg := p.b[p.i:]
	if bytes.HasPrefix(msg, []byte("\xef\xbb\xbf")) {
		m.BOM = true
		msg = msg[3:]
		if !utf8.Valid(msg) {
			m.Msg = msg
			return p.fail("MSG after a BOM is not UTF-8")
		}
	}
	m.Msg = msg
	return nil
}

// parseTimestamp parses an RFC 5424 TIMESTAMP: RFC 3339 with at most six
// fraction digits.
func parseTimestamp(s string) (time.Time, error) {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j-i-1 < 1 || j-i-1 > 6 {
			return time.Time{}, errors.New("TIMESTAMP fraction must have 1 to 6 digits")
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || !strings.Contains(s, "T") {
		return time.Time{}, errors.New("TIMESTAMP is not RFC 3339")
	}
	return t, nil
}

func (p *parser) structuredData(m *SyslogMessage) error {
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
		return nil
	}
	if p.i >= len(p.b) || p.b[p.i] != '[' {
		return p.fail("want STRUCTURED-DATA: - or [")
	}
	for p.i < len(p.b) && p.b[p.i] == '[' {
		p.i++
		id, err := p.sdName("SD-ID")
		if err != nil {
			return err
		}
		el := SDElement{ID: id}
		for {
			if p.i >= len(p.b) {
				return p.fail("unterminated SD-ELEMENT")
			}
			if p.b[p.i] == ']' {
				p.i++
				break
			}
			if err := p.sp(); err != nil {
				return err
			}
			name, err := p.sdName("PARAM-NAME")
			if err != nil {
				return err
			}
			if p.i+1 >= len(p.b) || p.b[p.i] != '=' || p.b[p.i+1] != '"' {
				return p.fail(`want ="`)
			}
			p.i += 2
			var v []byte
			for {
				if p.i >= len(p.b) {
					return p.fail("unterminated PARAM-VALUE")
				}
				c := p.b[p.i]
				if c == '\\' && p.i+1 < len(p.b) && (p.b[p.i+1] == '"' || p.b[p.i+1] == '\\' || p.b[p.i+1] == ']') {
					v = append(v, p.b[p.i+1])
					p.i += 2
					continue
				}
				if c == '"' {
					p.i++
					break
				}
				if c == ']' {
					return p.fail("unescaped ] in PARAM-VALUE")
				}
				v = append(v, c)
				p.i++
			}
			if !utf8.Valid(v) {
				return p.fail("PARAM-VALUE is not UTF-8")
			}
			el.Params = append(el.Params, SDParam{Name: name, Value: string(v)})
		}
		m.SD = append(m.SD, el)
	}
	return nil
}

// sdName reads an SD-NAME: 1 to 32 PRINTUSASCII but =, SP, ] and ".
func (p *parser) sdName(what string) (string, error) {
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c < 33 || c > 126 || c == '=' || c == ']' || c == '"' {
			break
		}
		p.i++
	}
	if p.i == start || p.i-start > 32 {
		return "", p.fail(what + " must be 1 to 32 printable characters")
	}
	return string(p.b[start:p.i]), nil
}

// CEF is a parsed ArcSight CEF line.
type CEF struct {
	Version, Vendor, Product, DeviceVersion, SignatureID, Name, Severity string
	Extension                                                            []SDParam
}

// Ext returns the value of extension key k.
func (c *CEF) Ext(k string) string {
	for _, p := range c.Extension {
		if p.Name == k {
			return p.Value
		}
	}
	return ""
}

// ParseCEF parses a CEF line: "CEF:" and seven |-separated header fields
// (\| and \\ escaped), then space-separated key=value extensions whose
// values escape \= \\ and write \n \r for line breaks.
func ParseCEF(s string) (CEF, error) {
	rest, ok := strings.CutPrefix(s, "CEF:")
	if !ok {
		return CEF{}, errors.New("cef: no CEF: prefix")
	}
	var hdr [7]string
	for k := range hdr {
		var b strings.Builder
		i := 0
		for ; i < len(rest); i++ {
			c := rest[i]
			if c == '\\' && i+1 < len(rest) && (rest[i+1] == '|' || rest[i+1] == '\\') {
				b.WriteByte(rest[i+1])
				i++
				continue
			}
			if c == '|' {
				break
			}
			b.WriteByte(c)
		}
		if i >= len(rest) {
			return CEF{}, fmt.Errorf("cef: %d header fields, want 7", k)
		}
		hdr[k] = b.String()
		rest = rest[i+1:]
	}
	c := CEF{Version: hdr[0], Vendor: hdr[1], Product: hdr[2], DeviceVersion: hdr[3], SignatureID: hdr[4], Name: hdr[5], Severity: hdr[6]}
	ext, err := parseCEFExtension(rest)
	c.Extension = ext
	return c, err
}

// parseCEFExtension splits "k1=v1 k2=v2 …": a value runs to the space
// before the next key (letters, digits, _ . [ ] -) followed by an
// unescaped =.
func parseCEFExtension(s string) ([]SDParam, error) {
	var out []SDParam
	i := 0
	for i < len(s) {
		eq := strings.IndexByte(s[i:], '=')
		if eq <= 0 {
			return out, fmt.Errorf("cef: extension %q has no key=value", s[i:])
		}
		key := s[i : i+eq]
		if !cefKey(key) {
			return out, fmt.Errorf("cef: extension key %q is not a key", key)
		}
		j := i + eq + 1
		end := len(s)
		var v strings.Builder
		for k := j; k < len(s); k++ {
			c := s[k]
			if c == '\\' && k+1 < len(s) {
				switch s[k+1] {
				case '\\', '=':
					v.WriteByte(s[k+1])
				case 'n':
					v.WriteByte('\n')
				case 'r':
					v.WriteByte('\r')
				default:
					v.WriteByte(c)
					continue
				}
				k++
				continue
			}
			if c == '=' {
				return out, fmt.Errorf("cef: unescaped = in the value of %s", key)
			}
			if c == ' ' && nextIsKey(s[k+1:]) {
				end = k
				break
			}
			v.WriteByte(c)
		}
		out = append(out, SDParam{Name: key, Value: v.String()})
		i = end + 1
	}
	return out, nil
}

func nextIsKey(s string) bool {
	eq := strings.IndexByte(s, '=')
	return eq > 0 && cefKey(s[:eq])
}

func cefKey(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '[' || c == ']' || c == '-') {
			return false
		}
	}
	return k != ""
}

// LEEF is a parsed QRadar LEEF 1.0 or 2.0 line.
type LEEF struct {
	Version, Vendor, Product, ProductVersion, EventID string
	// Delimiter is the attribute delimiter: tab for LEEF 1.0 or when 2.0
	// names none.
	Delimiter  string
	Attributes []SDParam
}

// Attr returns the value of attribute k.
func (l *LEEF) Attr(k string) string {
	for _, p := range l.Attributes {
		if p.Name == k {
			return p.Value
		}
	}
	return ""
}

// ParseLEEF parses "LEEF:1.0|V|P|Ver|EventID|attrs" or
// "LEEF:2.0|V|P|Ver|EventID|Delim|attrs", Delim a character or its hex
// code (x09, 0x5E).
func ParseLEEF(s string) (LEEF, error) {
	rest, ok := strings.CutPrefix(s, "LEEF:")
	if !ok {
		return LEEF{}, errors.New("leef: no LEEF: prefix")
	}
	parts := strings.SplitN(rest, "|", 7)
	if len(parts) < 6 {
		return LEEF{}, fmt.Errorf("leef: %d header fields, want at least 6", len(parts))
	}
	l := LEEF{Version: parts[0], Vendor: parts[1], Product: parts[2], ProductVersion: parts[3], EventID: parts[4], Delimiter: "\t"}
	attrs := parts[5]
	if strings.HasPrefix(l.Version, "2") {
		if len(parts) < 7 {
			return l, errors.New("leef: 2.0 header without its delimiter field")
		}
		d, err := leefDelimiter(parts[5])
		if err != nil {
			return l, err
		}
		if d != "" {
			l.Delimiter = d
		}
		attrs = parts[6]
	} else if len(parts) == 7 {
		attrs = parts[5] + "|" + parts[6]
	}
	if attrs == "" {
		return l, nil
	}
	for _, kv := range strings.Split(attrs, l.Delimiter) {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return l, fmt.Errorf("leef: attribute %q is not key=value", kv)
		}
		l.Attributes = append(l.Attributes, SDParam{Name: k, Value: v})
	}
	return l, nil
}

func leefDelimiter(f string) (string, error) {
	h, hex := strings.CutPrefix(f, "0x")
	if !hex {
		h, hex = strings.CutPrefix(f, "x")
	}
	if hex && len(h) >= 1 && len(h) <= 4 {
		n, err := strconv.ParseUint(h, 16, 32)
		if err != nil {
			return "", fmt.Errorf("leef: delimiter %q is not a hex code", f)
		}
		return string(rune(n)), nil
	}
	if utf8.RuneCountInString(f) > 1 {
		return "", fmt.Errorf("leef: delimiter %q is not one character", f)
	}
	return f, nil
}

// Describe renders m for a person building a mapping: the header fields,
// each structured data parameter, and MSG, split into fields when it is
// CEF or LEEF.
func (m *SyslogMessage) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "<%d> facility %d severity %d  %s  host %s  app %s  procid %s  msgid %s  (%s, %d bytes)\n",
		m.Priority, m.Facility, m.Severity, m.Timestamp, m.Hostname, m.AppName, m.ProcID, m.MsgID, m.Framing, len(m.Raw))
	if m.Err != nil {
		fmt.Fprintf(&b, "  MALFORMED: %v\n  raw: %q\n", m.Err, m.Raw)
		return b.String()
	}
	for _, e := range m.SD {
		fmt.Fprintf(&b, "  [%s]\n", e.ID)
		for _, p := range e.Params {
			fmt.Fprintf(&b, "    %s = %q\n", p.Name, p.Value)
		}
	}
	msg := string(m.Msg)
	if m.BOM {
		b.WriteString("  (MSG starts with a BOM)\n")
	}
	switch {
	case strings.HasPrefix(msg, "CEF:"):
		c, err := ParseCEF(msg)
		fmt.Fprintf(&b, "  CEF %s  vendor %q  product %q  version %q  signature %q  name %q  severity %q\n",
			c.Version, c.Vendor, c.Product, c.DeviceVersion, c.SignatureID, c.Name, c.Severity)
		for _, p := range c.Extension {
			fmt.Fprintf(&b, "    %s = %q\n", p.Name, p.Value)
		}
		if err != nil {
			fmt.Fprintf(&b, "  CEF ERROR: %v\n", err)
		}
	case strings.HasPrefix(msg, "LEEF:"):
		l, err := ParseLEEF(msg)
		fmt.Fprintf(&b, "  LEEF %s  vendor %q  product %q  version %q  event id %q  delimiter %q\n",
			l.Version, l.Vendor, l.Product, l.ProductVersion, l.EventID, l.Delimiter)
		for _, p := range l.Attributes {
			fmt.Fprintf(&b, "    %s = %q\n", p.Name, p.Value)
		}
		if err != nil {
			fmt.Fprintf(&b, "  LEEF ERROR: %v\n", err)
		}
	default:
		fmt.Fprintf(&b, "  MSG %s\n", msg)
	}
	return b.String()
}
