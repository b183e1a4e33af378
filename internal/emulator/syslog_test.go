package emulator

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestParseSyslog(t *testing.T) {
	m := ParseSyslog([]byte("<166>1 2026-12-01T10:00:00.123456Z relay-1 auditrelay 42 USER.UPDATED [auditrelay@32473 id=\"a\\\"b\\]c\\\\\" tenant=\"t\"][x@1] \xef\xbb\xbf{\"k\":\"v\nw\"}"))
	if m.Err != nil {
		t.Fatal(m.Err)
	}
	if m.Facility != 20 || m.Severity != 6 || m.Version != 1 || m.Hostname != "relay-1" || m.AppName != "auditrelay" ||
		m.ProcID != "42" || m.MsgID != "USER.UPDATED" || !m.BOM || string(m.Msg) != "{\"k\":\"v\nw\"}" {
		t.Errorf("parsed %+v", m)
	}
	if !m.Time.Equal(time.Date(2026, 12, 1, 10, 0, 0, 123456000, time.UTC)) {
		t.Errorf("time %v", m.Time)
	}
	if v, _ := m.Param("auditrelay@32473", "id"); v != `a"b]c\` {
		t.Errorf("id %q", v)
	}
	if len(m.SD) != 2 || m.SD[1].ID != "x@1" {
		t.Errorf("SD %+v", m.SD)
	}
	for _, bad := range []string{"", "<1>", "<192>1 - - - - - -", "<01>1 - - - - - -", "<1>1 2026-12-01T10:00:00.1234567Z h a p m -",
		"<1>1 - h a p m [x k=\"v]\"]", "<1>1 - h a p m [x k=\"v\"", "<1>1 - h a p " + strings.Repeat("m", 33) + " -", "<1>1 - h a p m -x"} {
		if m := ParseSyslog([]byte(bad)); m.Err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if m := ParseSyslog([]byte("<13>1 - - - - - -")); m.Err != nil || len(m.Msg) != 0 {
		t.Errorf("all-nil message: %v", m.Err)
	}
}

func TestReadSyslogFrame(t *testing.T) {
	r := bufio.NewReader(strings.NewReader("5 <1>1a3 <1><2>1 lf\r\n10 0123456789<3>x\n"))
	for _, want := range []struct{ msg, framing string }{{"<1>1a", "octet-counting"}, {"<1>", "octet-counting"}, {"<2>1 lf", "lf"}} {
		got, framing, err := ReadSyslogFrame(r, 0)
		if err != nil || string(got) != want.msg || framing != want.framing {
			t.Fatalf("got %q %s %v, want %q %s", got, framing, err, want.msg, want.framing)
		}
	}
	if _, _, err := ReadSyslogFrame(r, 5); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	if got, _, err := ReadSyslogFrame(r, 5); err != nil || string(got) != "<3>x" {
		t.Fatalf("after a skipped frame: %q %v", got, err)
	}
	if _, _, err := ReadSyslogFrame(bufio.NewReader(strings.NewReader("x")), 0); !errors.Is(err, ErrFraming) {
		t.Fatalf("desync: %v", err)
	}
}

func TestParseCEFAndLEEF(t *testing.T) {
	c, err := ParseCEF(`CEF:0|V\|x|P\\y|1.0|sig|Name here|6|rt=1 msg=a\=b c\\d\nnext suser=x y duser=`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Vendor != "V|x" || c.Product != `P\y` || c.Severity != "6" || c.Ext("msg") != "a=b c\\d\nnext" || c.Ext("suser") != "x y" || c.Ext("duser") != "" {
		t.Errorf("CEF %+v", c)
	}
	l, err := ParseLEEF("LEEF:2.0|V|P|1.0|E|x5E|a=1^b=x=y^c=")
	if err != nil || l.Delimiter != "^" || l.Attr("b") != "x=y" || len(l.Attributes) != 3 {
		t.Errorf("LEEF %+v %v", l, err)
	}
	l, err = ParseLEEF("LEEF:1.0|V|P|1.0|E|a=1\tb=2")
	if err != nil || l.Delimiter != "\t" || l.Attr("b") != "2" {
		t.Errorf("LEEF 1.0 %+v %v", l, err)
	}
}

// TestSyslogReceiver: frames of both framings over a connection are
// parsed and kept; a frame over the limit is skipped and counted.
func TestSyslogReceiver(t *testing.T) {
	s := NewSyslog(SyslogOptions{MaxMessageBytes: 100})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	big := "<1>1 - - - - - - " + strings.Repeat("x", 200)
	c.Write([]byte("17 <13>1 - h a p m -" + "<14>1 - h a p m2 - hello\n" + "217 " + big + "18 <15>1 - h a p m3 -"))
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Messages < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	s.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range s.Messages() {
		ids = append(ids, m.MsgID+"/"+m.Framing)
	}
	if got := strings.Join(ids, " "); got != "m/octet-counting m2/lf m3/octet-counting" {
		t.Errorf("messages %s", got)
	}
	if st := s.Stats(); st.TooLarge != 1 || st.Malformed != 0 {
		t.Errorf("stats %+v", st)
	}
}

// FuzzParseSyslog: the parser never panics, and a message it accepts
// has header fields within RFC 5424's limits.
func FuzzParseSyslog(f *testing.F) {
	for _, s := range []string{"<166>1 2026-12-01T10:00:00.123456Z h a 1 M [a@1 k=\"v\\\"\"] {}", "<0>1 - - - - - -", "<1>1 - - - - [a][b c=\"\"] x", "<1>", "<999>"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := ParseSyslog(b)
		if m.Err != nil {
			return
		}
		if m.Priority > 191 || len(m.Hostname) > 255 || len(m.AppName) > 48 || len(m.ProcID) > 128 || len(m.MsgID) > 32 {
			t.Fatalf("accepted out-of-range header %+v", m)
		}
		for _, e := range m.SD {
			if e.ID == "" || len(e.ID) > 32 {
				t.Fatalf("accepted SD-ID %q", e.ID)
			}
		}
		_ = m.Describe()
	})
}

// FuzzReadSyslogFrame: framing never panics and never returns more than
// the limit.
func FuzzReadSyslogFrame(f *testing.F) {
	for _, s := range []string{"3 abc", "<1>x\n", "99999999999 x", "0 ", "12", "<1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(b), 16)
		for range 100 {
			msg, _, err := ReadSyslogFrame(r, 64)
			if err != nil && !errors.Is(err, ErrFrameTooLarge) {
				return
			}
			if len(msg) > 64 {
				t.Fatalf("%d-byte message over the limit", len(msg))
			}
		}
	})
}

// FuzzParseCEFLEEF: the payload parsers never panic.
func FuzzParseCEFLEEF(f *testing.F) {
	for _, s := range []string{"CEF:0|a|b|c|d|e|f|k=v k2=v\\=2", "LEEF:2.0|a|b|c|d|x09|k=v\tk2=v", "LEEF:2.0|a|b|c|d|xZZ|", "CEF:0|a\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ParseCEF(s)
		ParseLEEF(s)
	})
}
