package bolt

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/store"
)

// TestCommitGroupFailure checks that a write failing in a group gets its
// own error and the group's other writes are committed without it.
func TestCommitGroupFailure(t *testing.T) {
	s := open(t, t.TempDir())
	put := func(k string, runs *int) *write {
		return &write{done: make(chan error, 1), fn: func(tx *bbolt.Tx) error {
			*runs++
			return tx.Bucket(bMeta).Put([]byte(k), []byte("v"))
		}}
	}
	var runsA, runsC int
	boom := errors.New("boom")
	failing := &write{done: make(chan error, 1), fn: func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bMeta).Put([]byte("b"), []byte("v")); err != nil {
			return err
		}
		return boom
	}}
	a, c := put("a", &runsA), put("c", &runsC)
	s.commitGroup([]*write{a, failing, c})
	if err := <-a.done; err != nil {
		t.Errorf("a: %v", err)
	}
	if err := <-failing.done; !errors.Is(err, boom) {
		t.Errorf("failing write: %v, want boom", err)
	}
	if err := <-c.done; err != nil {
		t.Errorf("c: %v", err)
	}
	if runsA != 2 || runsC != 1 {
		t.Errorf("a ran %d times, c %d; want 2 (its first group was rolled back) and 1", runsA, runsC)
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		m := tx.Bucket(bMeta)
		for k, want := range map[string]bool{"a": true, "b": false, "c": true} {
			if got := m.Get([]byte(k)) != nil; got != want {
				t.Errorf("key %s stored: %v, want %v", k, got, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentAppends stores pages of many sources at once: every page
// is stored whole with its cursor, a page refused for its fingerprint
// takes nothing of the others with it, and the writes share commits.
func TestConcurrentAppends(t *testing.T) {
	s := open(t, t.TempDir())
	const sources, pages, per = 16, 20, 50
	if _, err := s.Append("wrong", "fp-1", source.Page{Next: source.Cursor("c")}, t0); err != nil {
		t.Fatal(err)
	}
	var tx0 uint64
	if err := s.db.View(func(tx *bbolt.Tx) error { tx0 = uint64(tx.ID()); return nil }); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, sources)
	var refused error
	for i := range sources {
		wg.Go(func() {
			name := fmt.Sprintf("src-%02d", i)
			for p := range pages {
				var evs []event.Raw
				for j := range per {
					evs = append(evs, ev(name, fmt.Sprintf("%s-%d-%d", name, p, j), t0.Add(time.Duration(p*per+j)*time.Millisecond)))
				}
				res, err := s.Append(name, "fp", source.Page{Events: evs, Next: source.Cursor(fmt.Sprint(p))}, t0)
				if err == nil && res.Added != per {
					err = fmt.Errorf("page %d: %d added, want %d", p, res.Added, per)
				}
				if err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Go(func() { _, refused = s.Append("wrong", "fp-2", source.Page{Next: source.Cursor("d")}, t0) })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("source %d: %v", i, err)
		}
	}
	if !errors.Is(refused, store.ErrFingerprint) {
		t.Errorf("append with another fingerprint: %v, want ErrFingerprint", refused)
	}
	if got := s.SpoolCount(); got != sources*pages*per {
		t.Errorf("spool count %d, want %d", got, sources*pages*per)
	}
	for i := range sources {
		cur, _, err := s.Cursor(fmt.Sprintf("src-%02d", i))
		if err != nil || string(cur) != fmt.Sprint(pages-1) {
			t.Errorf("cursor of source %d = %q, %v; want %d", i, cur, err, pages-1)
		}
	}
	batch, _, err := s.Read(0, 1<<20, 1<<30, nil)
	if err != nil || len(batch) != sources*pages*per {
		t.Fatalf("read %d events, %v; want %d", len(batch), err, sources*pages*per)
	}
	var tx1 uint64
	if err := s.db.View(func(tx *bbolt.Tx) error { tx1 = uint64(tx.ID()); return nil }); err != nil {
		t.Fatal(err)
	}
	if commits := tx1 - tx0; commits >= sources*pages {
		t.Errorf("%d commits for %d concurrent appends: none shared a commit", commits, sources*pages)
	}
}
