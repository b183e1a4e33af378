// Package bolt is the embedded implementation of the store contract: one
// bbolt file under the data directory, with the spool's event data in
// segment files beside it (segment.go), held by one process at a time. It
// is the default store, for one machine.
//
// Spool positions come from the spool bucket's sequence inside the writing
// transaction; bbolt commits one writer at a time, so positions become
// visible in increasing order.
package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/store"
)

// FileName is the store's file inside the data directory.
const FileName = "auditrelay.db"

// pidFileName records the pid of the process holding the store open.
const pidFileName = "auditrelay.pid"

// formatVersion is the on-disk layout this code reads and writes. A store
// with a higher version was written by a newer auditrelay.
//
// Format 4 keeps each page's batch entry in a segment file (segment.go)
// and only a reference to it in the spool bucket; the inline entries of
// format 3 and before read as they did, so Open only moves the marker.
// Format 3 keeps each page's events as one spool entry (a batch, see
// store.SplitEntry) keyed by the position of its last event; the
// one-event entries of format 2 read as batches of one, so Open only
// moves the marker. Format 2 keeps a source's dedup ids only in
// ids_by_time (time + id); format 1 also kept an ids bucket keyed by the
// id alone, which Open removes.
const formatVersion = 4

// Bucket and key names. See docs/architecture.md for the layout.
var (
	bMeta    = []byte("meta")
	bSpool   = []byte("spool")
	bSources = []byte("sources")
	bSinks   = []byte("sinks")
	bIDs     = []byte("ids") // format 1 only
	bIDTime  = []byte("ids_by_time")

	kFormat     = []byte("format")
	kSpoolBytes = []byte("spool_bytes")
	kSpoolCount = []byte("spool_count")
	kCursor     = []byte("cursor")
	kState      = []byte("state")
	kOffset     = []byte("offset")
	kDeleted    = []byte("deleted_through")
	kPassed     = []byte("passed")
	kSegment    = []byte("segment")
)

// present is the value of a dedup id: bbolt's Get returns nil for an
// empty value, which could not be told from a missing key.
var present = []byte{1}

// ErrLocked is returned by Open when another process holds the store.
var ErrLocked = errors.New("store is in use by another auditrelay")

// Options tune Open.
type Options struct {
	// ReadOnly opens the store for inspection; it fails while a daemon
	// holds the store.
	ReadOnly bool
	// NoSync disables fsync; only benchmarks comparing costs use it.
	NoSync bool
	// CompactFree is the free space in bytes above which Open compacts
	// the file (when it is also more than half the file); 0 means
	// DefaultCompactFree, a negative value never compacts.
	CompactFree int64
}

// Store is an open bbolt store. Its methods are safe for concurrent use.
type Store struct {
	db         *bbolt.DB
	dir        string
	ro         bool
	noSync     bool
	compacted  CompactResult
	compactErr error
	seg        *segments
	mu         sync.Mutex
	wake       chan struct{} // closed and replaced on every append
	// in-memory mirrors of meta counters, kept after every commit
	spoolBytes int64
	spoolCount int64
	// writes feed the committer (commit.go) until quit is closed;
	// committerDone is closed when it has stopped.
	writes        chan *write
	quit          chan struct{}
	committerDone chan struct{}
	closeOnce     sync.Once
}

// Open opens (creating if needed) the store in dir. It refuses a store held
// by another process, written by a newer version, or unreadable, with an
// error that says what to do.
func Open(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, errors.New("store: data_dir is empty")
	}
	path := filepath.Join(dir, FileName)
	if opts.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("store: no store at %s (has auditrelay run with this data_dir?): %w", path, err)
		}
	} else {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create data_dir %s: %w (make it writable by this user or choose another data_dir)", dir, err)
		}
		probe, err := os.CreateTemp(dir, ".write-test-*")
		if err != nil {
			return nil, fmt.Errorf("store: data_dir %s is not writable: %w (fix its permissions or choose another data_dir)", dir, err)
		}
		probe.Close()
		os.Remove(probe.Name())
	}
	s := &Store{dir: dir, ro: opts.ReadOnly, noSync: opts.NoSync, wake: make(chan struct{}),
		writes: make(chan *write, maxGroup), quit: make(chan struct{}), committerDone: make(chan struct{})}
	db, err := bbolt.Open(path, 0o600, s.boltOptions())
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			holder := "another process"
			if b, rerr := os.ReadFile(filepath.Join(dir, pidFileName)); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
					holder = fmt.Sprintf("pid %d", pid)
				}
			}
			return nil, fmt.Errorf("store: %s: %w: already running with %s (stop it, or give this one another data_dir)", path, ErrLocked, holder)
		}
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("store: open %s: %w (fix the file's permissions)", path, err)
		}
		return nil, fmt.Errorf("store: %s cannot be opened (%v): if the file is corrupt, stop auditrelay, move it aside (mv %s %s.corrupt) and start again; sources then resume from their lookback and sinks may receive events again", path, err, path, path)
	}
	s.db = db
	segCur, segEnd, keepFrom, err := s.init()
	if err != nil {
		db.Close()
		return nil, err
	}
	if s.seg, err = openSegments(dir, segCur, segEnd, keepFrom, opts.ReadOnly, opts.NoSync); err != nil {
		db.Close()
		return nil, err
	}
	if !opts.ReadOnly {
		// A copy left by a compaction that did not finish is incomplete.
		os.Remove(path + compactSuffix)
		if opts.CompactFree >= 0 {
			minFree := opts.CompactFree
			if minFree == 0 {
				minFree = DefaultCompactFree
			}
			// A compaction that fails before its rename (a full disk
			// has no room for the copy) leaves the store as it was and
			// open: Compacted reports the error.
			if s.compactErr = s.compactIfWasteful(minFree); s.compactErr != nil && s.db == nil {
				s.seg.close()
				return nil, s.compactErr
			}
		}
		if err := os.WriteFile(filepath.Join(dir, pidFileName), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
			s.seg.close()
			s.db.Close()
			return nil, fmt.Errorf("store: write pid file: %w", err)
		}
	}
	go s.committer()
	return s, nil
}

func (s *Store) boltOptions() *bbolt.Options {
	return &bbolt.Options{
		Timeout:      200 * time.Millisecond,
		ReadOnly:     s.ro,
		NoSync:       s.noSync,
		FreelistType: bbolt.FreelistMapType,
	}
}

// init checks the store's format, upgrades an older one, and reads the
// counters and the segments' state: the segment written to, its
// committed size, and the lowest segment an entry refers to.
func (s *Store) init() (segCur uint64, segEnd int64, keepFrom uint64, err error) {
	check := func(tx *bbolt.Tx) error {
		m := tx.Bucket(bMeta)
		if m == nil {
			return nil
		}
		if v := m.Get(kFormat); v != nil {
			n, err := strconv.Atoi(string(v))
			if err != nil {
				return fmt.Errorf("store: format marker %q is unreadable; the file is corrupt: move it aside and start again", v)
			}
			if n > formatVersion {
				return fmt.Errorf("store: %s was written by a newer auditrelay (store format %d, this version reads %d): upgrade auditrelay, or point data_dir elsewhere", s.Path(), n, formatVersion)
			}
		}
		s.spoolBytes = int64(getU64(m.Get(kSpoolBytes)))
		s.spoolCount = int64(getU64(m.Get(kSpoolCount)))
		segCur, segEnd = getSegment(m.Get(kSegment))
		keepFrom = segCur
		if spool := tx.Bucket(bSpool); spool != nil {
			c := spool.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if r, err := parseRef(v); err == nil {
					keepFrom = min(r.seg, segCur)
					break
				}
			}
		}
		return nil
	}
	if s.ro {
		err = s.db.View(check)
		return
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bMeta, bSpool, bSources, bSinks} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("store: create bucket %s: %w", b, err)
			}
		}
		if err := check(tx); err != nil {
			return err
		}
		m := tx.Bucket(bMeta)
		if v := m.Get(kFormat); string(v) == "1" {
			if err := migrate1to2(tx); err != nil {
				return fmt.Errorf("store: upgrade format 1 to 2: %w", err)
			}
		}
		if err := recordLegacyDeletions(tx); err != nil {
			return fmt.Errorf("store: record deletions: %w", err)
		}
		if m.Get(kPassed) == nil {
			// Before format 3 every entry all sinks had passed was
			// deleted at once: they passed what precedes the first.
			spool := tx.Bucket(bSpool)
			passed := spool.Sequence()
			if k, v := spool.Cursor().First(); k != nil {
				passed = binary.BigEndian.Uint64(k) - uint64(entryCount(v))
			}
			if err := m.Put(kPassed, putU64(nil, passed)); err != nil {
				return err
			}
		}
		return m.Put(kFormat, []byte(strconv.Itoa(formatVersion)))
	})
	return
}

// migrate1to2 drops the format-1 ids buckets (ids_by_time holds the same
// ids) and gives the ids_by_time entries the value lookups now test.
func migrate1to2(tx *bbolt.Tx) error {
	srcs := tx.Bucket(bSources)
	return srcs.ForEachBucket(func(k []byte) error {
		sb := srcs.Bucket(k)
		if sb.Bucket(bIDs) != nil {
			if err := sb.DeleteBucket(bIDs); err != nil {
				return err
			}
		}
		bt := sb.Bucket(bIDTime)
		if bt == nil {
			return nil
		}
		var keys [][]byte
		if err := bt.ForEach(func(k, _ []byte) error {
			keys = append(keys, bytes.Clone(k))
			return nil
		}); err != nil {
			return err
		}
		for _, k := range keys {
			if err := bt.Put(k, present); err != nil {
				return err
			}
		}
		return nil
	})
}

// Path returns the store file's path.
func (s *Store) Path() string { return filepath.Join(s.dir, FileName) }

// Close closes the store and removes the pid file.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.quit) })
	<-s.committerDone
	if !s.ro {
		os.Remove(filepath.Join(s.dir, pidFileName))
	}
	err := s.db.Close()
	s.seg.close()
	if err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Changed returns a channel closed at the next append, for sink runners
// waiting for work.
func (s *Store) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wake
}

func (s *Store) signal() {
	s.mu.Lock()
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()
}

// SpoolBytes returns the size of the events in the spool.
func (s *Store) SpoolBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spoolBytes
}

// SpoolCount returns the number of events in the spool.
func (s *Store) SpoolCount() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spoolCount
}

// Append stores a page for the named source in one transaction: its new
// events (dropping ids already stored within the dedup horizon), the ids,
// the new cursor and watermark. fingerprint must match the one stored with
// the source's cursor, if any.
func (s *Store) Append(name, fingerprint string, p source.Page, now time.Time) (store.AppendResult, error) {
	var res store.AppendResult
	size := 0
	for i := range p.Events {
		size += len(p.Events[i].Data)
	}
	err := s.updateSize(size, func(tx *bbolt.Tx) error {
		res = store.AppendResult{} // this may be a second run
		sb, err := sourceBucket(tx, name)
		if err != nil {
			return err
		}
		st := readSourceState(sb, name)
		if err := store.CheckFingerprint(name, st.Fingerprint, fingerprint); err != nil {
			return err
		}
		lateBefore := st.BeginPage(fingerprint, &p)
		// Dedup ids are keyed by event time, then id: an audit event never
		// changes its time, and time-ordered keys keep the index's pages
		// dense and its writes local (random ids would touch a page each).
		byTime := sb.Bucket(bIDTime)
		byTime.FillPercent = 1.0
		spool := tx.Bucket(bSpool)
		// The page's new events are one batch entry, built at the end of
		// the data the transaction adds to the current segment; the
		// spool bucket gets a reference to it. bbolt keeps key and value
		// slices until commit, so the ids share one arena of their own.
		idSize := 0
		for i := range p.Events {
			idSize += len(p.Events[i].ID) + 8
		}
		ids := make([]byte, 0, idSize)
		// The new ids are put in key order: pages come newest first, and
		// bbolt inserts into a node's sorted slice, which grows until the
		// commit splits it, so page order would move the whole node at
		// every insert. An id that repeats in the page keeps its first
		// event.
		fresh := make([]newID, 0, len(p.Events))
		dup := make([]bool, len(p.Events))
		for i := range p.Events {
			ev := &p.Events[i]
			start := len(ids)
			ids = appendTimeKey(ids, ev.Time.UnixNano(), ev.ID)
			key := ids[start:len(ids):len(ids)]
			if byTime.Get(key) != nil {
				dup[i] = true
				ids = ids[:start]
				continue
			}
			fresh = append(fresh, newID{key: key, i: i})
		}
		slices.SortFunc(fresh, func(a, b newID) int {
			if c := bytes.Compare(a.key, b.key); c != 0 {
				return c
			}
			return a.i - b.i
		})
		for j, n := range fresh {
			if j > 0 && bytes.Equal(n.key, fresh[j-1].key) {
				dup[n.i] = true
				continue
			}
			if err := byTime.Put(n.key, present); err != nil {
				return fmt.Errorf("put id index: %w", err)
			}
		}
		var w store.BatchWriter
		w.Reset(s.seg.pending)
		var latest time.Time
		var src string
		for i := range p.Events {
			ev := &p.Events[i]
			if dup[i] {
				res.Duplicates++
				continue
			}
			res.Bytes += int64(w.Add(ev))
			res.Added++
			if res.Added == 1 {
				latest, src = ev.Time, ev.Source
			} else if ev.Time.After(latest) {
				latest = ev.Time
			}
			if ev.Time.Before(lateBefore) {
				res.Late = append(res.Late, lateBefore.Sub(ev.Time))
			}
		}
		if w.Len() > 0 {
			entry := w.Entry()
			s.seg.pending = w.Buffer()
			// An entry's key is the position of its last event; its
			// events hold the positions up to it.
			last := spool.Sequence() + uint64(w.Len())
			if err := spool.SetSequence(last); err != nil {
				return fmt.Errorf("spool sequence: %w", err)
			}
			r, err := s.seg.add(entry, w.Len(), res.Bytes, latest, src)
			if err != nil {
				return err
			}
			if err := spool.Put(putU64(nil, last), r); err != nil {
				return fmt.Errorf("spool put: %w", err)
			}
		}
		if !p.DedupHorizon.IsZero() {
			if err := pruneIDs(byTime, p.DedupHorizon.UnixNano()); err != nil {
				return err
			}
		}
		if err := sb.Put(kCursor, p.Next); err != nil {
			return fmt.Errorf("put cursor: %w", err)
		}
		st.EndPage(&p, res, now)
		if err := writeJSON(sb, kState, st); err != nil {
			return err
		}
		return addCounters(tx.Bucket(bMeta), res.Bytes, int64(res.Added))
	})
	if err != nil {
		return store.AppendResult{}, fmt.Errorf("store: append %s: %w", name, err)
	}
	s.mu.Lock()
	s.spoolBytes += res.Bytes
	s.spoolCount += int64(res.Added)
	s.mu.Unlock()
	if res.Added > 0 {
		s.signal()
	}
	return res, nil
}

func pruneIDs(byTime *bbolt.Bucket, horizon int64) error {
	var keys [][]byte
	c := byTime.Cursor()
	for k, _ := c.First(); k != nil && len(k) >= 8 && int64(binary.BigEndian.Uint64(k)^(1<<63)) < horizon; k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := byTime.Delete(k); err != nil {
			return fmt.Errorf("prune id: %w", err)
		}
	}
	return nil
}

// newID is an id not yet in the index: its key and its event's index in
// the page.
type newID struct {
	key []byte
	i   int
}

// appendTimeKey appends the key ordering ids by event time: the time
// sign-flipped, so that times before 1970 still sort first, then the id.
func appendTimeKey(b []byte, t int64, id string) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t)^(1<<63))
	return append(b, id...)
}

// Cursor returns the stored cursor of a source (nil if it never stored one)
// and its fingerprint.
func (s *Store) Cursor(name string) (source.Cursor, string, error) {
	var cur []byte
	var fp string
	err := s.db.View(func(tx *bbolt.Tx) error {
		sb := tx.Bucket(bSources).Bucket([]byte(name))
		if sb == nil {
			return nil
		}
		if v := sb.Get(kCursor); v != nil {
			cur = bytes.Clone(v)
		}
		fp = readSourceState(sb, name).Fingerprint
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("store: read cursor of %s: %w", name, err)
	}
	return cur, fp, nil
}

// ResetSource forgets a source's cursor, fingerprint, ids and state. Its
// events already in the spool still go to the sinks.
func (s *Store) ResetSource(name string) (bool, error) {
	found := false
	err := s.update(func(tx *bbolt.Tx) error {
		srcs := tx.Bucket(bSources)
		if srcs.Bucket([]byte(name)) == nil {
			return nil
		}
		found = true
		return srcs.DeleteBucket([]byte(name))
	})
	if err != nil {
		return false, fmt.Errorf("store: reset %s: %w", name, err)
	}
	return found, nil
}

// SetCursor stores cur as the cursor of a source, with its fingerprint and
// watermark, keeping its dedup ids and counters. It is for `auditrelay
// checkpoint set`, with the daemon stopped.
func (s *Store) SetCursor(name, fingerprint string, cur source.Cursor, watermark time.Time) error {
	err := s.update(func(tx *bbolt.Tx) error {
		sb, err := sourceBucket(tx, name)
		if err != nil {
			return err
		}
		if err := sb.Put(kCursor, cur); err != nil {
			return fmt.Errorf("put cursor: %w", err)
		}
		st := readSourceState(sb, name)
		st.SetCheckpoint(fingerprint, watermark)
		return writeJSON(sb, kState, st)
	})
	if err != nil {
		return fmt.Errorf("store: set the checkpoint of %s: %w", name, err)
	}
	return nil
}

// RecordSourceError stores the last error of a source for status output.
func (s *Store) RecordSourceError(name string, msg string, at time.Time) error {
	err := s.update(func(tx *bbolt.Tx) error {
		sb, err := sourceBucket(tx, name)
		if err != nil {
			return err
		}
		st := readSourceState(sb, name)
		st.LastError, st.LastErrorAt = msg, at.UTC()
		st.LastPoll = at.UTC()
		return writeJSON(sb, kState, st)
	})
	if err != nil {
		return fmt.Errorf("store: record error of %s: %w", name, err)
	}
	return nil
}

// SetSinks registers the configured sinks: a new sink starts at the oldest
// entry still in the spool; the offsets of sinks no longer configured are
// dropped, and entries every remaining sink has passed are deleted.
func (s *Store) SetSinks(names []string) error {
	var freedBytes, freedCount int64
	err := s.update(func(tx *bbolt.Tx) error {
		sinks := tx.Bucket(bSinks)
		want := map[string]bool{}
		for _, n := range names {
			want[n] = true
			if sinks.Bucket([]byte(n)) == nil {
				b, err := sinks.CreateBucket([]byte(n))
				if err != nil {
					return fmt.Errorf("create sink %s: %w", n, err)
				}
				// It starts after what every sink has passed: the
				// oldest event still in the spool.
				if err := b.Put(kOffset, tx.Bucket(bMeta).Get(kPassed)); err != nil {
					return err
				}
			}
		}
		var drop [][]byte
		if err := sinks.ForEachBucket(func(k []byte) error {
			if !want[string(k)] {
				drop = append(drop, bytes.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range drop {
			if err := sinks.DeleteBucket(k); err != nil {
				return fmt.Errorf("drop sink %s: %w", k, err)
			}
		}
		var err error
		freedBytes, freedCount, err = s.collect(tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: register sinks: %w", err)
	}
	s.freed(freedBytes, freedCount)
	return nil
}

func (s *Store) freed(b, n int64) {
	s.mu.Lock()
	s.spoolBytes -= b
	s.spoolCount -= n
	s.mu.Unlock()
}

// Offset returns a sink's offset: the sequence number of the last entry it
// acknowledged or skipped.
func (s *Store) Offset(sink string) (uint64, error) {
	var off uint64
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bSinks).Bucket([]byte(sink))
		if b == nil {
			return fmt.Errorf("sink %q is not registered", sink)
		}
		off = getU64(b.Get(kOffset))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: offset of %s: %w", sink, err)
	}
	return off, nil
}

// Read returns up to max events (and at most maxBytes of raw data, but at
// least one event) after offset, of the sources route accepts. last is the
// sequence number of the last entry examined, routed or not: acknowledging
// last moves the sink past the skipped entries too. last == after means the
// spool holds nothing new.
//
// A batch ends before an entry that cannot be decoded; when that entry
// comes first, Read fails with a *CorruptError. An entry whose source
// cannot be read is treated as routed: nothing is skipped unseen.
func (s *Store) Read(after uint64, max, maxBytes int, route func(source string) bool) (batch []event.Raw, last uint64, err error) {
	last = after
	err = s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bSpool).Cursor()
		size := 0
		var dec store.Decoder
		var recs [][]byte
	entries:
		// The first entry whose last position is past after holds the
		// position after it: entries hold consecutive positions.
		for k, v := c.Seek(putU64(nil, after+1)); k != nil; k, v = c.Next() {
			end := binary.BigEndian.Uint64(k)
			var data []byte
			var err error
			recs, data, err = s.entryRecords(v, recs[:0])
			if err != nil {
				if len(batch) > 0 {
					break
				}
				if !errors.Is(err, store.ErrRecord) {
					return err // an I/O error: the entry is read again
				}
				// An entry whose framing is unreadable is skipped whole.
				return &store.CorruptError{Seq: end, Record: corruptBytes(v, data), Err: err}
			}
			// A batch read from a segment is never written again: the
			// events keep their data in it. bbolt's pages are reused.
			dec.Alias = data != nil
			// An entry holds one source's events (one page).
			src, err := store.RecordSource(recs[0])
			if err == nil && route != nil && !route(src) {
				last = end
				continue
			}
			first := end - uint64(len(recs)) + 1
			for j, rec := range recs {
				seq := first + uint64(j)
				if seq <= after {
					continue
				}
				if len(batch) > 0 && size+len(rec) > maxBytes {
					break entries
				}
				ev, err := dec.Decode(rec)
				if err != nil {
					if len(batch) > 0 {
						break entries
					}
					return &store.CorruptError{Seq: seq, Record: bytes.Clone(rec), Err: err}
				}
				batch = append(batch, ev)
				size += len(rec)
				last = seq
				if len(batch) >= max {
					break entries
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, after, fmt.Errorf("store: read spool: %w", err)
	}
	return batch, last, nil
}

// corruptBytes returns what a park file keeps of an unreadable entry v:
// the batch read from its segment, when it could be read, v itself
// otherwise.
func corruptBytes(v, batch []byte) []byte {
	if len(batch) > 0 {
		return bytes.Clone(batch)
	}
	return bytes.Clone(v)
}

// entryCount returns how many positions the spool entry v holds, 1 when
// its header is unreadable (it is then skipped as one).
func entryCount(v []byte) int {
	if len(v) > 0 && v[0] == refVersion {
		if r, err := parseRef(v); err == nil {
			return int(r.count)
		}
		return 1
	}
	n, err := store.EntryCount(v)
	if err != nil {
		return 1
	}
	return n
}

// Ack advances a sink's offset to offset after it delivered n events (and
// skipped the others up to offset), then deletes the entries every sink has
// passed, all in one transaction.
func (s *Store) Ack(sink string, offset uint64, n int, now time.Time) error {
	return s.ack(sink, offset, n, 0, now)
}

// SkipCorrupt advances a sink's offset to seq, the unreadable entry a Read
// reported in a CorruptError, and counts it in the sink's state. Call it
// only once the record is kept elsewhere.
func (s *Store) SkipCorrupt(sink string, seq uint64, now time.Time) error {
	return s.ack(sink, seq, 0, 1, now)
}

func (s *Store) ack(sink string, offset uint64, n, corrupt int, now time.Time) error {
	var freedBytes, freedCount int64
	err := s.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bSinks).Bucket([]byte(sink))
		if b == nil {
			return fmt.Errorf("sink %q is not registered", sink)
		}
		if cur := getU64(b.Get(kOffset)); offset < cur {
			return fmt.Errorf("offset %d is behind the stored %d", offset, cur)
		}
		if err := b.Put(kOffset, putU64(nil, offset)); err != nil {
			return err
		}
		st := readSinkState(b, sink)
		st.Acked(n, corrupt, now)
		if err := writeJSON(b, kState, st); err != nil {
			return err
		}
		var err error
		freedBytes, freedCount, err = s.collect(tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: ack %s: %w", sink, err)
	}
	s.freed(freedBytes, freedCount)
	return nil
}

// RecordSinkError stores the last error of a sink for status output.
func (s *Store) RecordSinkError(sink, msg string, at time.Time) error {
	err := s.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bSinks).Bucket([]byte(sink))
		if b == nil {
			return fmt.Errorf("sink %q is not registered", sink)
		}
		st := readSinkState(b, sink)
		st.LastError, st.LastErrorAt = msg, at.UTC()
		return writeJSON(b, kState, st)
	})
	if err != nil {
		return fmt.Errorf("store: record error of %s: %w", sink, err)
	}
	return nil
}

// collect moves what every sink has passed (the meta key passed) up to
// the lowest sink offset: the events it passes leave the spool's counters
// and its deletion record, and the entries whose last event it passes are
// deleted. An entry whose first events alone are passed stays until its
// last is: a page is one entry, deleted whole. It tells the segments
// which of them the spool still refers to.
func (s *Store) collect(tx *bbolt.Tx) (freedBytes, freedCount int64, err error) {
	sinks := tx.Bucket(bSinks)
	low := ^uint64(0)
	n := 0
	if err := sinks.ForEachBucket(func(k []byte) error {
		n++
		low = min(low, getU64(sinks.Bucket(k).Get(kOffset)))
		return nil
	}); err != nil {
		return 0, 0, err
	}
	if n == 0 {
		return 0, 0, nil // nothing routes anywhere yet: keep everything
	}
	m := tx.Bucket(bMeta)
	passed := getU64(m.Get(kPassed))
	if low <= passed {
		return 0, 0, nil
	}
	spool := tx.Bucket(bSpool)
	deleted := readDeleted(tx)
	moved := false
	var keys, recs [][]byte
	c := spool.Cursor()
	for k, v := c.Seek(putU64(nil, passed+1)); k != nil; k, v = c.Next() {
		end := binary.BigEndian.Uint64(k)
		r, rerr := parseRef(v)
		if rerr == nil && end <= low && end-r.count >= passed {
			// A whole entry passed: its reference says what it held,
			// and its batch need not be read.
			keys = append(keys, bytes.Clone(k))
			freedBytes += int64(r.bytes)
			freedCount += int64(r.count)
			moved = deleted.Merge(r.source, time.Unix(0, r.latest)) || moved
			continue
		}
		if recs, _, err = s.entryRecords(v, recs[:0]); err != nil {
			if !errors.Is(err, store.ErrRecord) {
				return 0, 0, err // an I/O error: the acknowledgement is retried
			}
			// Unreadable framing: the entry is one span, passed whole.
			if end > low {
				break
			}
			keys = append(keys, bytes.Clone(k))
			// The counters lose its positions not passed before (a
			// share of its bytes: which record had which size is lost).
			cnt, size := uint64(entryCount(v)), uint64(len(v))
			if rerr == nil {
				size = r.bytes
				moved = deleted.Merge(r.source, time.Unix(0, r.latest)) || moved
			}
			n := cnt
			if first := end - min(cnt, end) + 1; passed >= first {
				n = end - passed
			}
			freedCount += int64(n)
			freedBytes += int64(size * n / cnt)
			continue
		}
		// The counters hold the records' sizes, without the framing.
		first := end - uint64(len(recs)) + 1
		for j, rec := range recs {
			if seq := first + uint64(j); seq > passed && seq <= low {
				freedBytes += int64(len(rec))
				freedCount++
				moved = deleted.Add(rec) || moved
			}
		}
		if end > low {
			break
		}
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := spool.Delete(k); err != nil {
			return 0, 0, fmt.Errorf("delete entry: %w", err)
		}
	}
	if len(keys) > 0 {
		// Entries are in position order, and so are the segments
		// their batches are in: those before the first entry's are
		// no longer needed once this commits. An inline entry first
		// (a store from before segments) keeps them all for now.
		switch k, v := spool.Cursor().First(); {
		case k == nil:
			s.seg.keepFrom = s.seg.cur
		case len(v) > 0 && v[0] == refVersion:
			if r, err := parseRef(v); err == nil {
				s.seg.keepFrom = r.seg
			}
		}
	}
	if moved {
		if err := writeJSON(m, kDeleted, deleted); err != nil {
			return 0, 0, err
		}
	}
	if err := m.Put(kPassed, putU64(nil, low)); err != nil {
		return 0, 0, err
	}
	if err := addCounters(m, -freedBytes, -freedCount); err != nil {
		return 0, 0, err
	}
	return freedBytes, freedCount, nil
}

// readDeleted reads the spool's record of what it deleted. A damaged one
// reads as deleted through the end of time for every source: replay then
// covers nothing from the spool rather than too much. A store written
// before deletions were recorded whose positions show deleted entries
// reads as deleted through now for every source.
func readDeleted(tx *bbolt.Tx) store.DeletedThrough {
	d := store.DeletedThrough{}
	v := tx.Bucket(bMeta).Get(kDeleted)
	if v != nil {
		if err := json.Unmarshal(v, &d); err != nil {
			return store.DeletedThrough{store.AnySource: time.Unix(1<<40, 0).UTC()}
		}
		return d
	}
	spool := tx.Bucket(bSpool)
	k, v := spool.Cursor().First()
	if spool.Sequence() > 0 && (k == nil || binary.BigEndian.Uint64(k)-uint64(entryCount(v))+1 != 1) {
		d[store.AnySource] = time.Now().UTC()
	}
	return d
}

// recordLegacyDeletions stores what readDeleted reads in a store written
// before deletions were recorded.
func recordLegacyDeletions(tx *bbolt.Tx) error {
	if tx.Bucket(bMeta).Get(kDeleted) != nil {
		return nil
	}
	return writeJSON(tx.Bucket(bMeta), kDeleted, readDeleted(tx))
}

// Snapshot reads every source's and sink's state.
func (s *Store) Snapshot() (store.Snapshot, error) {
	var snap store.Snapshot
	err := s.db.View(func(tx *bbolt.Tx) error {
		m := tx.Bucket(bMeta)
		snap.SpoolBytes = int64(getU64(m.Get(kSpoolBytes)))
		snap.SpoolCount = int64(getU64(m.Get(kSpoolCount)))
		spool := tx.Bucket(bSpool)
		snap.LastSeq = spool.Sequence()
		if d := readDeleted(tx); len(d) > 0 {
			snap.DeletedThrough = d
		}
		if err := tx.Bucket(bSources).ForEachBucket(func(k []byte) error {
			sb := tx.Bucket(bSources).Bucket(k)
			st := readSourceState(sb, string(k))
			st.Cursor = bytes.Clone(sb.Get(kCursor))
			snap.Sources = append(snap.Sources, st)
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bSinks).ForEachBucket(func(k []byte) error {
			b := tx.Bucket(bSinks).Bucket(k)
			st := readSinkState(b, string(k))
			st.Offset = getU64(b.Get(kOffset))
			if snap.LastSeq > st.Offset {
				c := spool.Cursor()
				for k, v := c.Seek(putU64(nil, st.Offset+1)); k != nil; k, v = c.Next() {
					st.Backlog += uint64(min(uint64(entryCount(v)), binary.BigEndian.Uint64(k)-st.Offset))
				}
			}
			snap.Sinks = append(snap.Sinks, st)
			return nil
		})
	})
	if err != nil {
		return store.Snapshot{}, fmt.Errorf("store: snapshot: %w", err)
	}
	return snap, nil
}

func sourceBucket(tx *bbolt.Tx, name string) (*bbolt.Bucket, error) {
	sb, err := tx.Bucket(bSources).CreateBucketIfNotExists([]byte(name))
	if err != nil {
		return nil, fmt.Errorf("source bucket: %w", err)
	}
	if _, err := sb.CreateBucketIfNotExists(bIDTime); err != nil {
		return nil, fmt.Errorf("ids index bucket: %w", err)
	}
	return sb, nil
}

func readSourceState(b *bbolt.Bucket, name string) store.SourceState {
	st := store.SourceState{}
	if v := b.Get(kState); v != nil {
		_ = json.Unmarshal(v, &st) // a damaged status record only loses status
	}
	st.Name = name
	return st
}

func readSinkState(b *bbolt.Bucket, name string) store.SinkState {
	st := store.SinkState{}
	if v := b.Get(kState); v != nil {
		_ = json.Unmarshal(v, &st)
	}
	st.Name = name
	return st
}

func writeJSON(b *bbolt.Bucket, k []byte, v any) error {
	j, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := b.Put(k, j); err != nil {
		return fmt.Errorf("put state: %w", err)
	}
	return nil
}

func addCounters(m *bbolt.Bucket, bytes, count int64) error {
	if err := m.Put(kSpoolBytes, putU64(nil, uint64(int64(getU64(m.Get(kSpoolBytes)))+bytes))); err != nil {
		return err
	}
	return m.Put(kSpoolCount, putU64(nil, uint64(int64(getU64(m.Get(kSpoolCount)))+count)))
}

func putU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func getU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// Store keeps the store contract.
var _ store.Store = (*Store)(nil)
