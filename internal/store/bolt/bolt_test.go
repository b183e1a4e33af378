package bolt

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/store"
	"github.com/auditrelay/auditrelay/internal/store/storetest"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func open(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ev(src, id string, at time.Time) event.Raw { return storetest.Event(src, id, at) }

// TestContract runs the store contract against a bbolt file.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		dir := t.TempDir()
		s := open(t, dir)
		h := storetest.Harness{Store: s}
		h.PutRaw = func(t *testing.T, record []byte) uint64 { return putRaw(t, s, record) }
		h.Reopen = func(t *testing.T) store.Store {
			s.Close()
			s = open(t, dir)
			return s
		}
		return h
	})
}

func TestOpenErrors(t *testing.T) {
	t.Run("locked", func(t *testing.T) {
		dir := t.TempDir()
		open(t, dir)
		_, err := Open(dir, Options{})
		want := fmt.Sprintf("already running with pid %d", os.Getpid())
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %q", err, want)
		}
	})
	t.Run("not writable", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "file")
		os.WriteFile(f, nil, 0o600)
		_, err := Open(filepath.Join(f, "data"), Options{})
		if err == nil || !strings.Contains(err.Error(), "choose another data_dir") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("newer version", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bMeta).Put(kFormat, []byte("7")) })
		s.Close()
		_, err := Open(dir, Options{})
		if err == nil || !strings.Contains(err.Error(), "written by a newer auditrelay (store format 7") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("corrupt", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, FileName), bytes.Repeat([]byte("garbage!"), 4096), 0o600)
		_, err := Open(dir, Options{})
		if err == nil || !strings.Contains(err.Error(), "move it aside") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("read-only missing", func(t *testing.T) {
		_, err := Open(t.TempDir(), Options{ReadOnly: true})
		if err == nil || !strings.Contains(err.Error(), "no store at") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestUpgradeFormat1(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	s.Close()
	// a format-1 store: ids keyed by id, and the time index with nil values
	db, err := bbolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		tx.Bucket(bMeta).Put(kFormat, []byte("1"))
		sb, _ := tx.Bucket(bSources).CreateBucket([]byte("s"))
		ids, _ := sb.CreateBucket(bIDs)
		bt, _ := sb.CreateBucket(bIDTime)
		ids.Put([]byte("old-1"), putU64(nil, uint64(t0.UnixNano())))
		return bt.Put(appendTimeKey(nil, t0.UnixNano(), "old-1"), nil)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	res, err := s.Append("s", "fp", source.Page{Events: []event.Raw{ev("s", "old-1", t0), ev("s", "new", t0)}}, t0)
	if err != nil || res.Added != 1 || res.Duplicates != 1 {
		t.Fatalf("append after upgrade = %+v, %v; want the format-1 id still deduplicated", res, err)
	}
	s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bMeta).Get(kFormat); string(v) != strconv.Itoa(formatVersion) {
			t.Errorf("format = %q after upgrade", v)
		}
		if tx.Bucket(bSources).Bucket([]byte("s")).Bucket(bIDs) != nil {
			t.Error("format-1 ids bucket still there")
		}
		return nil
	})
}

// putRaw stores record as the next spool entry, as a damaged disk or a bug
// could have left it, and returns its sequence number.
func putRaw(t *testing.T, s *Store, record []byte) uint64 {
	t.Helper()
	var seq uint64
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bSpool)
		var err error
		if seq, err = b.NextSequence(); err != nil {
			return err
		}
		if err := b.Put(putU64(nil, seq), record); err != nil {
			return err
		}
		return addCounters(tx.Bucket(bMeta), int64(len(record)), 1)
	}); err != nil {
		t.Fatal(err)
	}
	s.freed(-int64(len(record)), -1)
	return seq
}
