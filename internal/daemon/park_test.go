package daemon

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/park"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/store/postgres"
	"github.com/auditrelay/auditrelay/internal/store/postgres/pgtest"
)

// TestKeeperFollowsTheStore: with the embedded store a sink parks into its
// file under data_dir; with store.postgres into the store's parked table,
// once the daemon opened it, so that the line outlives the replica.
func TestKeeperFollowsTheStore(t *testing.T) {
	dir := t.TempDir()
	ev := &event.Raw{Source: "src", ID: "e1", Data: json.RawMessage(`{"id":"e1"}`)}
	if k, ok := keeperFor(&config.Config{DataDir: dir}, "archive").(*park.File); !ok || k.Path() != filepath.Join(dir, "parked", "archive.ndjson") {
		t.Fatalf("keeper of the embedded store = %#v", k)
	}

	dsn := pgtest.DSN(t)
	pc := &postgres.Config{DSN: secret.New(dsn), ReplicaID: "r1"}
	cfg := &config.Config{DataDir: dir, Store: config.Store{Postgres: pc}}
	sinks := []Sink{{Name: "siem", Park: keeperFor(cfg, "siem")}}
	if err := sinks[0].Park.Keep(ev, "too large"); err == nil || !strings.Contains(err.Error(), "not open") {
		t.Errorf("Keep before the store is open = %v", err)
	}
	st, err := postgres.Open(context.Background(), *pc, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	unbind := bindKeepers(sinks, st)
	if err := sinks[0].Park.Keep(ev, "too large"); err != nil {
		t.Fatal(err)
	}
	if err := sinks[0].Park.KeepRecord(4, []byte{0}, "unreadable"); err != nil {
		t.Fatal(err)
	}
	if w := sinks[0].Park.Where(); !strings.Contains(w, "PostgreSQL table parked") {
		t.Errorf("Where = %q", w)
	}
	unbind()
	if err := sinks[0].Park.Keep(ev, "too large"); err == nil {
		t.Error("Keep after the store closed succeeded")
	}
	var lines []string
	if err := st.Parked("siem", func(e park.Entry) error {
		lines = append(lines, string(e.Line))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{strings.TrimSpace(string(park.EventLine(ev, "too large"))), strings.TrimSpace(string(park.RecordLine(4, []byte{0}, "unreadable")))}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("parked table =\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}
