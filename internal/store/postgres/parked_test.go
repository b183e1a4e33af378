package postgres

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/park"
	"github.com/auditrelay/auditrelay/internal/store/postgres/pgtest"
)

// listParked returns the parked entries of sink ("" for all) as
// "sink line" strings, checking each has its time.
func listParked(t *testing.T, s *Store, sink string) []string {
	t.Helper()
	var out []string
	if err := s.Parked(sink, func(e park.Entry) error {
		if e.ParkedAt.IsZero() || time.Since(e.ParkedAt) > time.Hour {
			t.Errorf("parked_at %v", e.ParkedAt)
		}
		out = append(out, e.Sink+" "+string(e.Line))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParker(t *testing.T) {
	dsn := pgtest.DSN(t)
	s := open(t, dsn, "r1", true)
	ev := &event.Raw{Source: "src", ID: "e1", Time: t0, Data: json.RawMessage(`{"id":"e1"}`)}
	b, a := s.Parker("beta"), s.Parker("alpha")
	if err := b.Keep(ev, "too large"); err != nil {
		t.Fatal(err)
	}
	if err := a.KeepRecord(7, []byte{0xff, 0}, "unreadable"); err != nil {
		t.Fatal(err)
	}
	if err := b.KeepRecord(8, []byte{1}, "unreadable"); err != nil {
		t.Fatal(err)
	}
	if w := b.Where(); !strings.Contains(w, "table parked") || !strings.Contains(w, "beta") {
		t.Errorf("Where = %q", w)
	}
	trim := func(b []byte) string { return strings.TrimSuffix(string(b), "\n") }
	want := []string{
		"alpha " + trim(park.RecordLine(7, []byte{0xff, 0}, "unreadable")),
		"beta " + trim(park.EventLine(ev, "too large")),
		"beta " + trim(park.RecordLine(8, []byte{1}, "unreadable")),
	}
	// another replica (and a later one) sees them: they live in the database
	s.Close()
	s2 := open(t, dsn, "r2", false)
	if got := listParked(t, s2, ""); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("parked =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := listParked(t, s2, "beta"); len(got) != 2 || got[0] != want[1] {
		t.Errorf("parked of beta = %q", got)
	}
	if got := listParked(t, s2, "gamma"); len(got) != 0 {
		t.Errorf("parked of an unknown sink = %q", got)
	}
}

// TestMigrateFromV1: a database at schema version 1 (before the parked
// table) is migrated to the current version by Open, keeping its rows.
func TestMigrateFromV1(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, schemaV1+`
		CREATE TABLE schema_version (version integer NOT NULL);
		INSERT INTO schema_version VALUES (1);
		INSERT INTO sources (name, cursor, state) VALUES ('src', 'c-1', '{"fingerprint":"fp"}');`); err != nil {
		t.Fatal(err)
	}
	s := open(t, dsn, "r1", false)
	var v int
	if err := conn.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil || v != 2 {
		t.Fatalf("schema version after Open = %d, %v; want 2", v, err)
	}
	if cur, fp, err := s.Cursor("src"); err != nil || string(cur) != "c-1" || fp != "fp" {
		t.Errorf("cursor after the migration = %q, %q, %v", cur, fp, err)
	}
	if err := s.Parker("x").KeepRecord(1, []byte("r"), "bad"); err != nil {
		t.Fatalf("keep in the migrated table: %v", err)
	}
	if got := listParked(t, s, "x"); len(got) != 1 {
		t.Errorf("parked after the migration = %q", got)
	}
}

// TestReadOnlyOpen: the commands that only read neither create nor
// migrate the schema: they refuse an empty database and one of an older
// schema, saying what to do, and leave it as it was; they open one of
// this version's schema.
func TestReadOnlyOpen(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	readOnly := func() error {
		s, err := Open(ctx, config(dsn, "cli"), Options{ReadOnly: true})
		if err == nil {
			s.Close()
		}
		return err
	}
	if err := readOnly(); err == nil || !strings.Contains(err.Error(), "start a replica") {
		t.Fatalf("read-only open of an empty database = %v, want a refusal that says to start a replica", err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 'schema_version'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the refused open created tables: %d, %v", n, err)
	}
	if _, err := conn.Exec(ctx, schemaV1+`CREATE TABLE schema_version (version integer NOT NULL); INSERT INTO schema_version VALUES (1);`); err != nil {
		t.Fatal(err)
	}
	if err := readOnly(); err == nil || !strings.Contains(err.Error(), "schema version 1, this version reads 2") {
		t.Fatalf("read-only open of a v1 database = %v, want a refusal naming both versions", err)
	}
	var v int
	if err := conn.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil || v != 1 {
		t.Fatalf("after the refused open the schema is at %d (%v); want it left at 1", v, err)
	}
	open(t, dsn, "r1", false) // a replica migrates it
	if err := readOnly(); err != nil {
		t.Errorf("read-only open of a migrated database: %v", err)
	}
}
