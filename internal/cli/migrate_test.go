package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/park"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/store"
	"github.com/auditrelay/auditrelay/internal/store/bolt"
	"github.com/auditrelay/auditrelay/internal/store/postgres"
	"github.com/auditrelay/auditrelay/internal/store/postgres/pgtest"
)

var m0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func migEvent(src, id string, at time.Time) event.Raw {
	return event.Raw{Source: src, Provider: "pingone", Tenant: "env", ID: id, Time: at, Data: fmt.Appendf(nil, `{"id":%q}`, id)}
}

// fillBolt leaves in dir the state of an embedded store that ran for a
// while: two sources with cursors, dedup ids, a gap and an error; sinks
// "archive" and "siem" at different offsets, one with an error; a parked
// event and an unreadable record in the park file of "siem".
func fillBolt(t *testing.T, dir string) {
	t.Helper()
	st, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.SetSinks([]string{"archive", "siem"}); err != nil {
		t.Fatal(err)
	}
	var evs []event.Raw
	for i := range 6 {
		evs = append(evs, migEvent("pingone-na", fmt.Sprintf("p%d", i), m0.Add(time.Duration(i)*time.Second)))
	}
	p := source.Page{Events: evs, Next: source.Cursor(`{"after":"p5"}`), Watermark: m0.Add(time.Minute),
		DedupHorizon: m0.Add(-time.Hour), Gap: &source.Gap{From: m0.Add(-2 * time.Hour), To: m0.Add(-time.Hour), Reason: "retention"}}
	if _, err := st.Append("pingone-na", "pingone:env", p, m0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	q := source.Page{Events: []event.Raw{migEvent("okta", "o1", m0), migEvent("okta", "o2", m0)}, Next: source.Cursor("next-o2"), Watermark: m0}
	if _, err := st.Append("okta", "okta:org", q, m0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordSourceError("okta", "okta: HTTP 429", m0.Add(4*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := st.Ack("archive", 5, 5, m0.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := st.Ack("siem", 2, 2, m0.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordSinkError("siem", "siem: HTTP 503", m0.Add(6*time.Minute)); err != nil {
		t.Fatal(err)
	}
	k := park.New(park.Path(dir, "siem"))
	if err := k.Keep(&event.Raw{Source: "pingone-na", ID: "big", Time: m0, Data: json.RawMessage(`{"id":"big"}`)}, "too large"); err != nil {
		t.Fatal(err)
	}
	if err := k.KeepRecord(9, []byte{0xff}, "unreadable"); err != nil {
		t.Fatal(err)
	}
}

// readAll returns what a sink at offset off reads: every event after it.
func readAll(t *testing.T, st store.Store, off uint64) []event.Raw {
	t.Helper()
	batch, _, err := st.Read(off, 1000, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	return batch
}

// TestStoreMigrate copies an embedded store into PostgreSQL and checks
// that a PostgreSQL store resumes exactly there: the same cursors, states,
// offsets, spool and positions, dedup ids and parked lines.
func TestStoreMigrate(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	fillBolt(t, dir)
	src, err := bolt.Open(dir, bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	before, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	reads := map[string][]event.Raw{}
	for _, k := range before.Sinks {
		reads[k.Name] = readAll(t, src, k.Offset)
	}
	src.Close()
	if len(reads["siem"]) != 6 || len(reads["archive"]) != 3 || before.LastSeq != 8 {
		t.Fatalf("the test's store: %d and %d unacked events, last position %d", len(reads["siem"]), len(reads["archive"]), before.LastSeq)
	}

	out, errs, code := runMain(t, "store", "migrate", "--from", dir, "--to", dsn)
	if code != exitOK {
		t.Fatalf("migrate: exit %d: %s", code, errs)
	}
	for _, want := range []string{"2 sources (8 dedup ids), 2 sinks, 6 spool entries (positions up to 8), 2 parked lines"} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate output lacks %q:\n%s", want, out)
		}
	}

	pg, err := postgres.Open(context.Background(), postgres.Config{DSN: secret.New(dsn), ReplicaID: "check"}, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	after, err := pg.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("PostgreSQL store differs from the embedded one (-bolt +postgres):\n%s", diff)
	}
	for _, k := range after.Sinks {
		if diff := cmp.Diff(reads[k.Name], readAll(t, pg, k.Offset)); diff != "" {
			t.Errorf("sink %s reads after offset %d (-bolt +postgres):\n%s", k.Name, k.Offset, diff)
		}
	}
	for _, s := range []string{"pingone-na", "okta"} {
		cur, fp, err := pg.Cursor(s)
		if err != nil {
			t.Fatal(err)
		}
		var want store.SourceState
		for _, b := range before.Sources {
			if b.Name == s {
				want = b
			}
		}
		if string(cur) != string(want.Cursor) || fp != want.Fingerprint || fp == "" {
			t.Errorf("cursor of %s = %q, %q; want %q, %q", s, cur, fp, want.Cursor, want.Fingerprint)
		}
	}
	// a re-read of the overlap is dropped by the copied ids; a new event
	// takes the position after the copied ones
	res, err := pg.Append("pingone-na", "pingone:env", source.Page{Events: []event.Raw{
		migEvent("pingone-na", "p3", m0.Add(3*time.Second)), migEvent("pingone-na", "p9", m0.Add(9*time.Second))}, Next: source.Cursor("c9")}, m0)
	if err != nil || res.Added != 1 || res.Duplicates != 1 {
		t.Errorf("append after the migration = %+v, %v; want p3 dropped, p9 added", res, err)
	}
	if batch, last, err := pg.Read(8, 10, 1<<20, nil); err != nil || len(batch) != 1 || batch[0].ID != "p9" || last != 9 {
		t.Errorf("read after position 8 = %v, %d, %v; want p9 at 9", batch, last, err)
	}
	var parked []string
	if err := pg.Parked("", func(e park.Entry) error {
		parked = append(parked, e.Sink+" "+string(e.Line))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wantParked := []string{
		`siem {"source":"pingone-na","provider":"","tenant":"","id":"big","time":"2026-11-25T12:00:00.000Z","raw":{"id":"big"},"parked_reason":"too large"}`,
		`siem {"spool_seq":9,"record":"/w==","parked_reason":"unreadable"}`,
	}
	if diff := cmp.Diff(wantParked, parked); diff != "" {
		t.Errorf("parked lines (-want +got):\n%s", diff)
	}

	// store parked reads the table when the configuration names PostgreSQL
	cfg := filepath.Join(dir, "pg.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("data_dir: %s\nstore:\n  postgres:\n    dsn: %q\nsinks:\n  - name: siem\n    sources: [pingone-na]\n    file: {path: %s}\nsources:\n  - name: pingone-na\n    pingone: {environment_id: 0b5b1c9e-7d4a-4f0e-9a51-3c2d1e0f9a8b, client_id: 6f1c2d3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f, client_secret: x}\n",
		t.TempDir(), dsn, filepath.Join(dir, "out.ndjson"))), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code = runMain(t, "store", "parked", "--config", cfg, "--sink", "siem")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != exitOK || len(lines) != 2 || !strings.HasPrefix(lines[0], `{"sink":"siem","parked_at":"`) || !strings.HasSuffix(lines[1], `,"spool_seq":9,"record":"/w==","parked_reason":"unreadable"}`) {
		t.Errorf("store parked from PostgreSQL: exit %d, stderr %q, stdout:\n%s", code, errs, out)
	}

	// a second migration into the same database is refused, and writes nothing
	_, errs, code = runMain(t, "store", "migrate", "--from", dir, "--config", cfg)
	if code != exitFailure || !strings.Contains(errs, "not empty") || !strings.Contains(errs, "2 sources, 2 sinks, 7 spool entries, 2 parked lines") {
		t.Errorf("migration into a used store: exit %d, stderr %q", code, errs)
	}
	if snap, err := pg.Snapshot(); err != nil || snap.LastSeq != 9 || len(snap.Sources) != 2 {
		t.Errorf("after a refused migration: last position %d, %d sources, %v", snap.LastSeq, len(snap.Sources), err)
	}
}

// TestStoreMigrateRefusals: a running daemon (a held store), no store, and
// a DSN that is wrong or unreachable are refused with a clear message that
// never holds the DSN's password.
func TestStoreMigrateRefusals(t *testing.T) {
	dir := t.TempDir()
	fillBolt(t, dir)
	const pw = "s3cr3t-pw"
	held, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, errs, code := runMain(t, "store", "migrate", "--from", dir, "--to", "postgres://auditrelay:"+pw+"@127.0.0.1:1/auditrelay?sslmode=disable")
	held.Close()
	if code != exitFailure || !strings.Contains(errs, "needs the daemon stopped") || !strings.Contains(errs, "already running with pid") {
		t.Errorf("migration of a held store: exit %d, stderr %q", code, errs)
	}
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no target", []string{"--from", dir}, exitUsage, "needs --from DATA_DIR and --to DSN"},
		{"no store", []string{"--from", t.TempDir(), "--to", "postgres://auditrelay:" + pw + "@127.0.0.1:1/auditrelay?sslmode=disable"}, exitFailure, "no store at"},
		{"plain text to a remote host", []string{"--from", dir, "--to", "postgres://auditrelay:" + pw + "@db.example.com/auditrelay"}, exitUsage, "set sslmode=verify-full"},
		{"unparsable", []string{"--from", dir, "--to", "postgres://auditrelay:" + pw + "@127.0.0.1:notaport/x"}, exitUsage, "--to:"},
		{"unreachable", []string{"--from", dir, "--to", "postgres://auditrelay:" + pw + "@127.0.0.1:1/auditrelay?sslmode=disable&connect_timeout=2"}, exitFailure, "store migrate: store: postgres"},
	} {
		_, errs, code := runMain(t, append([]string{"store", "migrate"}, c.args...)...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", c.name, code, errs, c.code, c.want)
		}
		if strings.Contains(errs, pw) {
			t.Errorf("%s: the password is printed: %s", c.name, errs)
		}
	}
}

// TestStoreParkedFiles lists the park files of the embedded store, every
// sink or one, while the store is held.
func TestStoreParkedFiles(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir)
	fillBolt(t, dir)
	if err := park.New(park.Path(dir, "archive")).KeepRecord(3, []byte("x"), "bad"); err != nil {
		t.Fatal(err)
	}
	held, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	out, errs, code := runMain(t, "store", "parked", "--config", cfg)
	want := `{"sink":"archive","spool_seq":3,"record":"eA==","parked_reason":"bad"}
{"sink":"siem","source":"pingone-na","provider":"","tenant":"","id":"big","time":"2026-11-25T12:00:00.000Z","raw":{"id":"big"},"parked_reason":"too large"}
{"sink":"siem","spool_seq":9,"record":"/w==","parked_reason":"unreadable"}
`
	if code != exitOK || out != want {
		t.Errorf("store parked: exit %d, stderr %q, stdout:\n%s\nwant\n%s", code, errs, out, want)
	}
	out, _, code = runMain(t, "store", "parked", "--config", cfg, "--sink", "archive")
	if code != exitOK || out != strings.SplitAfter(want, "\n")[0] {
		t.Errorf("store parked --sink archive: exit %d:\n%s", code, out)
	}
}
