package bolt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bbolt "go.etcd.io/bbolt"
)

// DefaultCompactFree is the free space above which Open compacts the store
// file, when that space is also more than half the file: bbolt never gives
// pages back to the file system, so the file keeps the size of the largest
// backlog ever spooled.
const DefaultCompactFree = 64 << 20

// compactSuffix names the copy a compaction writes beside the store file.
const compactSuffix = ".compact"

// CompactResult says what a compaction did: the file's size before and
// after.
type CompactResult struct {
	Before, After int64
}

// Free returns the bytes of free pages in the store file and the file's
// size.
func (s *Store) Free() (free, size int64, err error) {
	st := s.db.Stats()
	free = int64(st.FreePageN+st.PendingPageN) * int64(s.db.Info().PageSize)
	fi, err := os.Stat(s.Path())
	if err != nil {
		return 0, 0, fmt.Errorf("store: %w", err)
	}
	return free, fi.Size(), nil
}

// Compacted returns what the compaction at Open did (zero when Open did not
// compact) and why it failed, if it did.
func (s *Store) Compacted() (CompactResult, error) { return s.compacted, s.compactErr }

// Compact rewrites the store file without its free pages: it copies every
// bucket, key and bucket sequence into a new file beside it, fsyncs that,
// renames it over the store file and reopens it. A crash before the rename
// leaves the old file untouched (the partial copy is removed at the next
// Open); after it, the new file is complete. It must not run while any
// other method of s is in use.
func (s *Store) Compact() (CompactResult, error) {
	if s.ro {
		return CompactResult{}, errors.New("store: compact: the store is open read-only")
	}
	path := s.Path()
	tmp := path + compactSuffix
	fi, err := os.Stat(path)
	if err != nil {
		return CompactResult{}, fmt.Errorf("store: compact: %w", err)
	}
	res := CompactResult{Before: fi.Size()}
	fail := func(err error) (CompactResult, error) {
		os.Remove(tmp)
		return CompactResult{}, fmt.Errorf("store: compact %s: %w (the store is unchanged; free disk space for a copy of its live data, or leave it as it is)", path, err)
	}
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(err)
	}
	dst, err := bbolt.Open(tmp, 0o600, s.boltOptions())
	if err != nil {
		return fail(err)
	}
	if err := bbolt.Compact(dst, s.db, 16<<20); err != nil {
		dst.Close()
		return fail(err)
	}
	if err := dst.Close(); err != nil {
		return fail(err)
	}
	if err := syncFile(tmp); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	// The rename is done; a directory that cannot be synced leaves it
	// to the file system's own flush.
	_ = syncDir(filepath.Dir(path), s.noSync)
	// The old file is gone; its handle still holds the lock until the new
	// file is open.
	old := s.db
	s.db = nil
	old.Close()
	db, err := bbolt.Open(path, 0o600, s.boltOptions())
	if err != nil {
		return CompactResult{}, fmt.Errorf("store: reopen %s after compaction: %w (stop auditrelay and start it again)", path, err)
	}
	s.db = db
	if fi, err := os.Stat(path); err == nil {
		res.After = fi.Size()
	}
	return res, nil
}

// compactIfWasteful compacts the store when its free pages exceed minFree
// bytes and half the file.
func (s *Store) compactIfWasteful(minFree int64) error {
	free, size, err := s.Free()
	if err != nil {
		return err
	}
	if free <= minFree || free*2 <= size {
		return nil
	}
	res, err := s.Compact()
	if err != nil {
		return err
	}
	s.compacted = res
	return nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
