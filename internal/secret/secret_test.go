package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestStringNeverPrints(t *testing.T) {
	const v = "hunter2-super-secret"
	s := New(v)
	type holder struct {
		S String
		P *String
	}
	h := holder{S: s, P: &s}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, h))
	}
	j, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "s", s, "h", h)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "s", s)
	outs = append(outs, buf.String())
	for _, o := range outs {
		if strings.Contains(o, v) {
			t.Errorf("secret leaked: %s", o)
		}
		if !strings.Contains(o, Redacted) {
			t.Errorf("output %q does not say %s", o, Redacted)
		}
	}
	if s.Reveal() != v {
		t.Fatalf("Reveal() = %q", s.Reveal())
	}
}

func TestUnmarshal(t *testing.T) {
	var h struct{ S String }
	if err := json.Unmarshal([]byte(`{"S":"abc"}`), &h); err != nil {
		t.Fatal(err)
	}
	if h.S.Reveal() != "abc" || h.S.IsZero() {
		t.Fatalf("got %q", h.S.Reveal())
	}
}

func TestUnresolved(t *testing.T) {
	u := Unresolved()
	if u.IsZero() || u.IsResolved() || u.Reveal() != "" || fmt.Sprint(u) != Redacted {
		t.Errorf("Unresolved: IsZero %v, IsResolved %v, Reveal %q, prints %q", u.IsZero(), u.IsResolved(), u.Reveal(), fmt.Sprint(u))
	}
	if var0 := (String{}); !var0.IsZero() || !var0.IsResolved() {
		t.Errorf("zero String: IsZero %v, IsResolved %v", var0.IsZero(), var0.IsResolved())
	}
	if s := New("x"); s.IsZero() || !s.IsResolved() {
		t.Errorf("New: IsZero %v, IsResolved %v", s.IsZero(), s.IsResolved())
	}
}
