package syslog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/event"
)

var formats = []string{FormatRFC5424, FormatCEF, FormatLEEF}

var testHeader = header{facility: 20, severity: 6, host: "relay-1", app: "auditrelay", procID: "4242", sdID: "auditrelay@32473"}

func encoderFor(format string) *encoder {
	h := testHeader
	h.format = format
	return newEncoder(h)
}

// testEvents loads testdata/events: the provider is the file name before
// its last dash.
func testEvents(t testing.TB) (names []string, evs []event.Raw) {
	t.Helper()
	paths, err := filepath.Glob("testdata/events/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no test events: %v", err)
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(p), ".json")
		provider := name[:strings.LastIndexByte(name, '-')]
		ev := event.Raw{Source: provider + "-src", Provider: provider, Tenant: "tenant-1", ID: name,
			Time: t0.Add(time.Duration(i) * time.Millisecond), Data: json.RawMessage(b)}
		if name == "pingone-tricky" {
			ev.Source, ev.Tenant, ev.ID = `src "a" \b`, "tenant]x", `id-]"\`
		}
		names, evs = append(names, name), append(evs, ev)
	}
	return names, evs
}

// TestGolden: every test event in every format, against
// testdata/golden/<format>/<event>.txt (rewritten with -update); each
// message parses back with the receiver's parser.
func TestGolden(t *testing.T) {
	names, evs := testEvents(t)
	for _, format := range formats {
		enc := encoderFor(format)
		for i := range evs {
			msg, err := enc.message(&evs[i])
			if err != nil {
				t.Fatalf("%s %s: %v", format, names[i], err)
			}
			path := filepath.Join("testdata", "golden", format, names[i]+".txt")
			got := append(appendFrame(nil, msg), '\n')
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s %s (-want +got):\n%s", format, names[i], diff)
			}
			checkParses(t, format, &evs[i], msg)
		}
	}
}

// checkParses parses msg with the receiver's parser and checks the
// envelope came through.
func checkParses(t *testing.T, format string, ev *event.Raw, msg []byte) {
	t.Helper()
	m := emulator.ParseSyslog(msg)
	if m.Err != nil {
		t.Fatalf("%s %s: does not parse: %v\n%s", format, ev.ID, m.Err, msg)
	}
	if m.Facility != 20 || m.Severity != 6 || m.Hostname != "relay-1" || m.AppName != "auditrelay" || m.ProcID != "4242" {
		t.Errorf("%s %s: header %+v", format, ev.ID, m)
	}
	if !m.Time.Equal(ev.Time.Truncate(time.Millisecond)) && !m.Time.Equal(ev.Time.Truncate(time.Microsecond)) {
		t.Errorf("%s %s: time %v, want %v", format, ev.ID, m.Time, ev.Time)
	}
	if len(m.MsgID) > 32 {
		t.Errorf("%s %s: MSGID %q over 32 characters", format, ev.ID, m.MsgID)
	}
	switch format {
	case FormatRFC5424:
		for k, want := range map[string]string{"id": ev.ID, "source": ev.Source, "provider": ev.Provider, "tenant": ev.Tenant} {
			if v, _ := m.Param("auditrelay@32473", k); v != want {
				t.Errorf("%s: SD %s = %q, want %q", ev.ID, k, v, want)
			}
		}
		var c bytes.Buffer
		json.Compact(&c, ev.Data)
		if !bytes.Equal(m.Msg, c.Bytes()) || m.BOM {
			t.Errorf("%s: MSG %s, want the compact event without BOM", ev.ID, m.Msg)
		}
	case FormatCEF:
		c, err := emulator.ParseCEF(string(m.Msg))
		if err != nil {
			t.Fatalf("%s: CEF does not parse: %v\n%s", ev.ID, err, m.Msg)
		}
		if c.Ext("externalId") != ev.ID || c.Ext("cs1") != ev.Tenant || c.Ext("cs2") != ev.Source || c.Version != "0" {
			t.Errorf("%s: CEF %+v", ev.ID, c)
		}
	case FormatLEEF:
		l, err := emulator.ParseLEEF(string(m.Msg))
		if err != nil {
			t.Fatalf("%s: LEEF does not parse: %v\n%s", ev.ID, err, m.Msg)
		}
		if l.Attr("eventId") != ev.ID || l.Attr("tenant") != ev.Tenant || l.Delimiter != "\t" || l.Version != "2.0" {
			t.Errorf("%s: LEEF %+v", ev.ID, l)
		}
	}
}

// TestMapping pins the mapped fields of one event per provider.
func TestMapping(t *testing.T) {
	names, evs := testEvents(t)
	want := map[string]struct{ sig, name, outcome, actor, target string }{
		"pingone-tricky":           {"USER ÜPDATED|x=y\\z", "line one\nline two\r\nwith = and | and \\ and ] and \u2028 separator", "failure", "Zoë \"the admin\" O'Brien\\ops", "group=admins|all\u2028raw separator"},
		"cyberark-11":              {"IDP3001", "cloud.core.role.addmember", "success", "", ""},
		"okta-0":                   {"", "", "", "", ""},
		"entra_sign_ins-0":         {"Sign-in activity", "Sign-in activity", "", "", ""},
		"entra_directory_audits-0": {"", "", "", "", ""},
		"entra_provisioning-0":     {"", "", "", "", ""},
	}
	for i, n := range names {
		w, ok := want[n]
		if !ok {
			continue
		}
		c, err := emulator.ParseCEF(cefOf(t, &evs[i]))
		if err != nil {
			t.Fatal(err)
		}
		if w.sig != "" && c.SignatureID != w.sig {
			t.Errorf("%s: signature %q, want %q", n, c.SignatureID, w.sig)
		}
		if w.name != "" && c.Name != strings.NewReplacer("\r", " ", "\n", " ").Replace(w.name) {
			t.Errorf("%s: name %q, want %q", n, c.Name, w.name)
		}
		if w.outcome != "" && c.Ext("outcome") != w.outcome {
			t.Errorf("%s: outcome %q, want %q", n, c.Ext("outcome"), w.outcome)
		}
		if w.actor != "" && c.Ext("suser") != w.actor {
			t.Errorf("%s: suser %q, want %q", n, c.Ext("suser"), w.actor)
		}
		if w.target != "" && c.Ext("duser") != w.target {
			t.Errorf("%s: duser %q, want %q", n, c.Ext("duser"), w.target)
		}
	}
}

func cefOf(t *testing.T, ev *event.Raw) string {
	t.Helper()
	msg, err := encoderFor(FormatCEF).message(ev)
	if err != nil {
		t.Fatal(err)
	}
	m := emulator.ParseSyslog(msg)
	if m.Err != nil {
		t.Fatal(m.Err)
	}
	return string(m.Msg)
}

// TestEscaping: each escape of each format, on values with quotes,
// backslashes, ], pipes, equals signs, line breaks, tabs, U+2028,
// non-ASCII and invalid UTF-8.
func TestEscaping(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"sd quote backslash bracket", string(appendParam(nil, "k", `a"b\c]d`)), ` k="a\"b\\c\]d"`},
		{"sd newline and U+2028 kept", string(appendParam(nil, "k", "a\nb\u2028c")), " k=\"a\nb\u2028c\""},
		{"sd invalid utf-8", string(appendParam(nil, "k", "a\xffb")), " k=\"a\uFFFDb\""},
		{"msgid spaces and non-ascii", string(appendMsgID(nil, "Update user – ü")), "Update_user____"},
		{"msgid long", string(appendMsgID(nil, strings.Repeat("a", 40))), strings.Repeat("a", 32)},
		{"msgid empty", string(appendMsgID(nil, "")), "-"},
		{"cef header", string(appendCEFHeader(nil, "a|b\\c\nd=e")), `a\|b\\c d=e|`},
		{"cef value", string(appendCEFValue(nil, "a=b\\c\nd\re|f\tg\u2028h")), `a\=b\\c\nd\re|f g` + "\u2028h"},
		{"leef header", string(appendLEEFHeader(nil, "a|b\tc", 255)), "a_b_c|"},
		{"leef header cut on a character", string(appendLEEFHeader(nil, strings.Repeat("é", 200), 255)), strings.Repeat("é", 127) + "|"},
		{"leef value", string(appendLEEFValue(nil, "a\tb\nc=d|e\u2028f")), "a b c=d|e\u2028f"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

// TestNotJSON: data that is not JSON is refused, to be parked.
func TestNotJSON(t *testing.T) {
	for _, format := range formats {
		if _, err := encoderFor(format).message(&event.Raw{ID: "x", Data: json.RawMessage("{nope")}); err != errNotJSON {
			t.Errorf("%s: err %v, want errNotJSON", format, err)
		}
	}
}

// FuzzEncode: whatever the event, every format's frame is well formed:
// the octet count is the message's length, the receiver's parser takes
// the message, the SD and the CEF or LEEF payload give the envelope back.
func FuzzEncode(f *testing.F) {
	f.Add("pingone", `{"action":{"type":"A B","description":"x|y=z\\"},"result":{"status":"FAILED"}}`, "id]\"", "ten\\ant", "src\n")
	f.Add("okta", `{"eventType":"user.session.start","actor":{"alternateId":"a=b"},"outcome":{"result":"FAILURE","reason":"r\u2028"}}`, "i", "t", "s")
	f.Add("cyberark", `{"auditCode":"IDP1\n","action":"\u00e9","auditType":"Failure","message":"m"}`, "\xff", "", "")
	f.Add("entra_sign_ins", `{"status":{"errorCode":50126},"ipAddress":"::1"}`, "a b", "c", "d")
	f.Fuzz(func(t *testing.T, provider, data, id, tenant, source string) {
		if !json.Valid([]byte(data)) {
			return
		}
		ev := event.Raw{Source: source, Provider: provider, Tenant: tenant, ID: id, Time: time.Unix(1796119200, 5), Data: json.RawMessage(data)}
		for _, format := range formats {
			msg, err := encoderFor(format).message(&ev)
			if err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			frame := appendFrame(nil, msg)
			got, framing, err := emulator.ReadSyslogFrame(bufio.NewReader(bytes.NewReader(frame)), 0)
			if err != nil || framing != "octet-counting" || !bytes.Equal(got, msg) {
				t.Fatalf("%s: frame %q reads back as %q, %v", format, frame, got, err)
			}
			m := emulator.ParseSyslog(msg)
			if m.Err != nil {
				t.Fatalf("%s: %v\n%q", format, m.Err, msg)
			}
			switch format {
			case FormatRFC5424:
				if v, _ := m.Param("auditrelay@32473", "id"); v != validUTF8(id) {
					t.Fatalf("SD id %q, want %q", v, id)
				}
				if v, _ := m.Param("auditrelay@32473", "tenant"); v != validUTF8(tenant) {
					t.Fatalf("SD tenant %q, want %q", v, tenant)
				}
			case FormatCEF:
				c, err := emulator.ParseCEF(string(m.Msg))
				if err != nil {
					t.Fatalf("CEF: %v\n%q", err, m.Msg)
				}
				if want := validUTF8(id); c.Ext("externalId") != strings.Map(cefControl, want) {
					t.Fatalf("externalId %q, want %q", c.Ext("externalId"), want)
				}
			case FormatLEEF:
				l, err := emulator.ParseLEEF(string(m.Msg))
				if err != nil {
					t.Fatalf("LEEF: %v\n%q", err, m.Msg)
				}
				if want := strings.Map(leefControl, validUTF8(id)); l.Attr("eventId") != want {
					t.Fatalf("eventId %q, want %q", l.Attr("eventId"), want)
				}
			}
		}
	})
}

// cefControl is what a CEF value keeps of r after the round trip.
func cefControl(r rune) rune {
	if r != '\n' && r != '\r' && (r < 0x20 || r == 0x7f) {
		return ' '
	}
	return r
}

func leefControl(r rune) rune {
	if r < 0x20 || r == 0x7f {
		return ' '
	}
	return r
}

// BenchmarkEncode measures each format's encoder over the test events
// (framing included), one core: go test -bench Encode -cpu 1.
func BenchmarkEncode(b *testing.B) {
	_, evs := testEvents(b)
	for i := range evs {
		// Sources hand over the JSON as the APIs serve it: compact.
		c, _ := compactJSON(nil, evs[i].Data)
		evs[i].Data = c
	}
	for _, format := range formats {
		b.Run(format, func(b *testing.B) {
			enc := encoderFor(format)
			var out []byte
			size := 0
			for i := range evs {
				size += len(evs[i].Data)
			}
			b.SetBytes(int64(size / len(evs)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				msg, err := enc.message(&evs[i%len(evs)])
				if err != nil {
					b.Fatal(err)
				}
				out = appendFrame(out[:0], msg)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
