package stdout

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/auditrelay/auditrelay/internal/event"
)

func TestSendWritesLines(t *testing.T) {
	var buf bytes.Buffer
	s := New(Config{}, &buf)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	err := s.Send(context.Background(), []event.Raw{
		{Source: "a", Provider: "pingone", Tenant: "t", ID: "1", Time: at, Data: json.RawMessage(`{"id":"1"}`)},
		{Source: "a", Provider: "pingone", Tenant: "t", ID: "2", Time: at, Data: json.RawMessage(`{"id":"2"}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"source":"a","provider":"pingone","tenant":"t","id":"1","time":"2026-01-02T03:04:05.006Z","raw":{"id":"1"}}
{"source":"a","provider":"pingone","tenant":"t","id":"2","time":"2026-01-02T03:04:05.006Z","raw":{"id":"2"}}
`
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestFormatOCSF(t *testing.T) {
	var buf bytes.Buffer
	cfg := Config{Format: "ocsf"}
	cfg.SetDefaults()
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	s := New(cfg, &buf)
	err := s.Send(context.Background(), []event.Raw{{Source: "a", Provider: "pingone", Tenant: "t", ID: "1",
		Data: json.RawMessage(`{"id":"1","recordedAt":"2026-01-02T03:04:05.006Z","action":{"type":"USER.CREATED"}}`)}})
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		ClassUID int    `json:"class_uid"`
		Time     int64  `json:"time"`
		RawData  string `json:"raw_data"`
	}
	if err := json.Unmarshal(buf.Bytes(), &ev); err != nil || ev.ClassUID == 0 || ev.Time != 1767323045006 || ev.RawData == "" {
		t.Fatalf("line %s: %+v %v", buf.Bytes(), ev, err)
	}
	if c := (Config{Format: "xml"}); len(c.Validate()) != 1 {
		t.Error("format xml accepted")
	}
}
