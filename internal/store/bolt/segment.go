package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/auditrelay/auditrelay/internal/store"
)

// The spool's event data lives in segment files beside the bbolt file,
// appended to and released whole: the bbolt file keeps a small reference
// per entry. bbolt copies every value into its pages and, with values of
// hundreds of pages, cannot reuse the runs freed by deleted entries once
// the dedup index's single pages split them; the file grew to many times
// the spool, and its mapping with it. A segment is appended to at its
// committed end, fsynced before the transaction holding its references
// commits, and released once no entry refers to it.
//
// A released segment is kept as a spare (renamed to its id with the
// extension .spare), up to segmentSpares of them, and the next rotation
// writes over a spare instead of creating a file: its blocks are already
// allocated and its pages are in the file system's cache, so writing the
// spool costs a copy instead of a block allocation, new zeroed pages and,
// when the segment goes, an unlink that frees them again. The bytes of a
// spare past the new segment's committed end are stale; no reference
// reaches them (each is checksummed besides), and Open cuts the current
// segment to its committed end.

// SegmentDir is the directory of the spool's segment files inside the
// data directory.
const SegmentDir = "spool"

// segmentMax is the size at which the next write starts a new segment:
// the disk holds the spool plus at most about this much already sent,
// and segmentSpares segments of about this size kept for reuse.
const segmentMax = 32 << 20

// segmentSpares is how many released segments are kept for the next
// rotations to write over.
const segmentSpares = 2

// spareExt is the extension of a spare segment's file name.
const spareExt = ".spare"

// refVersion is the version byte of a spool entry that refers to a batch
// entry (store.SplitEntry) kept in a segment: uvarint segment, offset,
// length, record count and record bytes, varint latest event time (Unix
// nanoseconds), the 4-byte big-endian CRC-32C of the batch, and the
// entry's source as a uvarint-length-prefixed string.
const refVersion = 3

// ref is a decoded reference entry.
type ref struct {
	seg, off, length uint64
	count, bytes     uint64
	latest           int64
	crc              uint32
	source           string
}

func appendRef(b []byte, r *ref) []byte {
	b = append(b, refVersion)
	for _, v := range []uint64{r.seg, r.off, r.length, r.count, r.bytes} {
		b = binary.AppendUvarint(b, v)
	}
	b = binary.AppendVarint(b, r.latest)
	b = binary.BigEndian.AppendUint32(b, r.crc)
	b = binary.AppendUvarint(b, uint64(len(r.source)))
	return append(b, r.source...)
}

var errRef = fmt.Errorf("%w: unreadable segment reference", store.ErrRecord)

func parseRef(v []byte) (ref, error) {
	var r ref
	if len(v) < 1 || v[0] != refVersion {
		return r, errRef
	}
	b := v[1:]
	for _, p := range []*uint64{&r.seg, &r.off, &r.length, &r.count, &r.bytes} {
		n, k := binary.Uvarint(b)
		if k <= 0 {
			return r, errRef
		}
		*p, b = n, b[k:]
	}
	t, k := binary.Varint(b)
	if k <= 0 || len(b)-k < 4 {
		return r, errRef
	}
	r.latest = t
	r.crc = binary.BigEndian.Uint32(b[k:])
	b = b[k+4:]
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) != n {
		return r, errRef
	}
	r.source = string(b[k:])
	if r.count == 0 || r.length > 1<<40 {
		return r, errRef
	}
	return r, nil
}

// segments holds the segment files. files is guarded by mu; the other
// fields belong to the committer goroutine (the functions of a write run
// there).
type segments struct {
	dir    string
	ro     bool
	noSync bool
	crc    *crc32.Table
	max    int64 // segmentMax; smaller in tests

	mu    sync.RWMutex
	files map[uint64]*os.File
	wfile *os.File // the file written to, also in files
	cache batchCache

	cur     uint64 // the segment written to
	end     int64  // its committed size
	low     uint64 // the lowest segment file that may exist
	pending []byte // the data of the transaction being built, at end
	entries int    // the entries in pending
	// keepFrom is the lowest segment the transaction being built still
	// refers to, set by collect (0: unknown, remove nothing).
	keepFrom uint64
	// spares are the file names of the released segments kept for reuse,
	// in the segment directory, the next to reuse last.
	spares []string
}

func segmentName(id uint64) string { return fmt.Sprintf("%016x.seg", id) }

func spareName(id uint64) string { return fmt.Sprintf("%016x%s", id, spareExt) }

// openSegments opens the segment directory of dir at the committed state
// cur/end read from the store. Unless read-only, it cuts the current
// segment back to its committed end (a crash between writing a
// transaction's data and committing it leaves bytes no entry refers to)
// and removes the segments no entry refers to: those before keepFrom
// (0: none) and those after cur.
func openSegments(dataDir string, cur uint64, end int64, keepFrom uint64, ro, noSync bool) (*segments, error) {
	s := &segments{dir: filepath.Join(dataDir, SegmentDir), ro: ro, noSync: noSync, crc: crc32.MakeTable(crc32.Castagnoli),
		max: segmentMax, files: map[uint64]*os.File{}, cur: cur, end: end, low: 1}
	if ro {
		return s, nil
	}
	if _, err := os.Stat(s.dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(s.dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create %s: %w (make the data_dir writable by this user)", s.dir, err)
		}
		// The directory's entry in data_dir outlives a power loss.
		if err := syncDir(dataDir, noSync); err != nil {
			return nil, err
		}
	}
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("store: read %s: %w", s.dir, err)
	}
	low := cur
	for _, de := range des {
		if name, ok := strings.CutSuffix(de.Name(), spareExt); ok && de.Type().IsRegular() {
			if _, err := strconv.ParseUint(name, 16, 64); err != nil {
				continue // not ours: left alone
			}
			if len(s.spares) < segmentSpares {
				s.spares = append(s.spares, de.Name())
			} else {
				// A spare holds nothing any entry needs: one that
				// cannot be removed now is tried again at the next
				// Open.
				_ = os.Remove(filepath.Join(s.dir, de.Name()))
			}
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSuffix(de.Name(), ".seg"), 16, 64)
		if err != nil || !strings.HasSuffix(de.Name(), ".seg") {
			continue // not ours: left alone
		}
		if id > cur || (keepFrom > 0 && id < keepFrom) {
			if err := os.Remove(filepath.Join(s.dir, de.Name())); err != nil {
				return nil, fmt.Errorf("store: remove unused segment: %w", err)
			}
			continue
		}
		low = min(low, id)
	}
	s.low = low
	f, err := os.OpenFile(filepath.Join(s.dir, segmentName(cur)), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: open segment: %w", err)
	}
	// A segment shorter than the store committed was cut behind
	// auditrelay's back: the entries in the missing part read as
	// unreadable and are parked; writing goes on at the committed end.
	if fi, err := f.Stat(); err != nil {
		f.Close()
		return nil, fmt.Errorf("store: segment: %w", err)
	} else if fi.Size() > end {
		if err := f.Truncate(end); err != nil {
			f.Close()
			return nil, fmt.Errorf("store: cut segment %s to its committed %d bytes: %w", f.Name(), end, err)
		}
	}
	if err := s.syncDir(); err != nil {
		f.Close()
		return nil, err
	}
	s.files[cur], s.wfile = f, f
	return s, nil
}

func (s *segments) syncDir() error { return syncDir(s.dir, s.noSync) }

// syncDir fsyncs the directory dir, so that the entries created in it
// outlive a power loss.
func syncDir(dir string, noSync bool) error {
	if noSync {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("store: sync %s: %w", dir, err)
	}
	return nil
}

// begin starts a transaction attempt: nothing is pending.
func (s *segments) begin() {
	s.pending, s.keepFrom, s.entries = s.pending[:0], 0, 0
}

// rotate has a full current segment give way to a new one, a spare when
// there is one.
func (s *segments) rotate() error {
	path := filepath.Join(s.dir, segmentName(s.cur+1))
	flags := os.O_RDWR | os.O_CREATE | os.O_TRUNC
	if n := len(s.spares); n > 0 {
		spare := filepath.Join(s.dir, s.spares[n-1])
		s.spares = s.spares[:n-1]
		if err := os.Rename(spare, path); err == nil {
			flags = os.O_RDWR // written over from the start
		} else {
			// A spare that cannot be reused is only a missed saving:
			// a new file is created instead.
			_ = os.Remove(spare)
		}
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return fmt.Errorf("segment: %w", err)
	}
	// The directory is synced before any reference to the segment
	// commits: its name (created or renamed) outlives a power loss.
	if err := s.syncDir(); err != nil {
		f.Close()
		return err
	}
	s.mu.Lock()
	s.files[s.cur+1], s.wfile = f, f
	s.mu.Unlock()
	s.cur, s.end = s.cur+1, 0
	return nil
}

// flush writes the pending data at the current segment's end and syncs
// it, and records the segment's new size in meta, in the transaction
// about to commit.
func (s *segments) flush(tx *bbolt.Tx) error {
	if len(s.pending) == 0 {
		return nil
	}
	f := s.wfile // set by this goroutine only
	if _, err := f.WriteAt(s.pending, s.end); err != nil {
		return fmt.Errorf("write spool segment: %w", err)
	}
	if !s.noSync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync spool segment: %w", err)
		}
	}
	return tx.Bucket(bMeta).Put(kSegment, putSegment(s.cur, s.end+int64(len(s.pending))))
}

// committed follows a committed transaction: its data is part of the
// segment, and the segments it no longer refers to are removed.
func (s *segments) committed() {
	s.end += int64(len(s.pending))
	s.pending = s.pending[:0]
	if cap(s.pending) > 2*maxGroupBytes {
		s.pending = nil // a group of very large pages: do not keep it
	}
	for ; s.keepFrom > 0 && s.low < s.keepFrom && s.low < s.cur; s.low++ {
		s.mu.Lock()
		if f := s.files[s.low]; f != nil {
			f.Close()
			delete(s.files, s.low)
		}
		s.mu.Unlock()
		s.release(s.low)
	}
}

// release keeps the segment id, which no entry refers to any more, as a
// spare, or removes it when there are enough. A segment that cannot be
// renamed or removed now is removed at the next Open; it holds nothing
// any entry needs. A rename that a power loss undoes leaves the segment
// under its own name, which Open removes the same way.
func (s *segments) release(id uint64) {
	path := filepath.Join(s.dir, segmentName(id))
	if len(s.spares) < segmentSpares {
		if err := os.Rename(path, filepath.Join(s.dir, spareName(id))); err == nil {
			s.spares = append(s.spares, spareName(id))
			return
		}
	}
	_ = os.Remove(path)
}

// add places a batch entry built at the end of pending (entry is its
// tail) and returns its reference. The first entry of a transaction
// starts a new segment when the current one is full: a transaction's
// data is in one segment.
func (s *segments) add(entry []byte, count int, bytes int64, latest time.Time, source string) ([]byte, error) {
	if s.entries == 0 && s.end >= s.max {
		if err := s.rotate(); err != nil {
			return nil, err
		}
	}
	s.entries++
	r := ref{seg: s.cur, off: uint64(s.end) + uint64(len(s.pending)-len(entry)), length: uint64(len(entry)),
		count: uint64(count), bytes: uint64(bytes), latest: latest.UnixNano(), crc: crc32.Checksum(entry, s.crc), source: source}
	return appendRef(make([]byte, 0, 48+len(source)), &r), nil
}

// file returns the open file of segment id.
func (s *segments) file(id uint64) (*os.File, error) {
	s.mu.RLock()
	f := s.files[id]
	s.mu.RUnlock()
	if f != nil {
		return f, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.files[id]; f != nil {
		return f, nil
	}
	f, err := os.Open(filepath.Join(s.dir, segmentName(id)))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: segment %s is missing", store.ErrRecord, segmentName(id))
		}
		return nil, fmt.Errorf("segment: %w", err)
	}
	s.files[id] = f
	return f, nil
}

// read returns the batch entry r refers to: empty when it could not be
// read, whole when it was but its checksum is wrong. The batch is shared
// (the last ones read are kept for the next reads) and must not be
// changed.
func (s *segments) read(r *ref) ([]byte, error) {
	if b := s.cache.get(r.seg, r.off); b != nil {
		return b, nil
	}
	f, err := s.file(r.seg)
	if err != nil {
		return nil, err
	}
	if r.length > bigBatch {
		// A length that damage made huge is not allocated.
		fi, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("segment %s: %w", segmentName(r.seg), err)
		}
		if uint64(fi.Size()) < r.off+r.length {
			return nil, fmt.Errorf("%w: segment %s: an entry of %d bytes at %d reaches past its end (%d bytes)", store.ErrRecord, segmentName(r.seg), r.length, r.off, fi.Size())
		}
	}
	buf := make([]byte, r.length)
	s.mu.RLock()
	_, err = f.ReadAt(buf, int64(r.off))
	s.mu.RUnlock()
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("%w: segment %s ends before the entry at %d (it was cut short)", store.ErrRecord, segmentName(r.seg), r.off)
	}
	if err != nil {
		// An I/O error may pass: the entry is read again later, through
		// a file opened again; it is not skipped as unreadable.
		s.drop(r.seg, f)
		return nil, fmt.Errorf("read spool segment %s at %d: %w (the spool is kept; check the disk and the kernel log)", segmentName(r.seg), r.off, err)
	}
	if crc32.Checksum(buf, s.crc) != r.crc {
		return buf, fmt.Errorf("%w: segment %s at %d: checksum mismatch", store.ErrRecord, segmentName(r.seg), r.off)
	}
	s.cache.put(r.seg, r.off, buf)
	return buf, nil
}

// bigBatch is the entry length above which read checks the segment's size
// before it allocates: a page is a few megabytes at most.
const bigBatch = 64 << 20

// drop closes f, the file of segment id, unless it is the segment written
// to, so that the next read opens the file again.
func (s *segments) drop(id uint64, f *os.File) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.files[id] == f && f != s.wfile {
		delete(s.files, id)
		f.Close()
	}
}

// cacheEntries is how many batches the segments keep after reading them:
// a sink whose batch ended inside an entry reads the rest of it next. A
// batch is a page, about 1.3 MB: each one kept is memory the daemon holds
// (and the garbage collector doubles), so a third sink reads from the
// file system's cache instead.
const cacheEntries = 2

// batchCache keeps the batches read last, by segment and offset. A
// committed batch never changes, so a kept one is as good as the file's.
type batchCache struct {
	mu   sync.Mutex
	keys [cacheEntries][2]uint64
	vals [cacheEntries][]byte
	next int
}

func (c *batchCache) get(seg, off uint64) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, k := range c.keys {
		if k == [2]uint64{seg, off} && c.vals[i] != nil {
			return c.vals[i]
		}
	}
	return nil
}

func (c *batchCache) put(seg, off uint64, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys[c.next], c.vals[c.next] = [2]uint64{seg, off}, b
	c.next = (c.next + 1) % cacheEntries
}

// close closes the segment files.
func (s *segments) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, f := range s.files {
		f.Close()
		delete(s.files, id)
	}
}

func putSegment(id uint64, end int64) []byte {
	return binary.BigEndian.AppendUint64(putU64(nil, id), uint64(end))
}

func getSegment(v []byte) (id uint64, end int64) {
	if len(v) != 16 {
		return 1, 0
	}
	return binary.BigEndian.Uint64(v), int64(binary.BigEndian.Uint64(v[8:]))
}

// entryRecords appends the records of the spool entry v to recs (see
// store.SplitEntry), and returns the batch read from a segment when v
// refers to one: the records are then in that shared batch, which is
// never written again. On an error the batch is the one read, if any.
func (s *Store) entryRecords(v []byte, recs [][]byte) (_ [][]byte, batch []byte, err error) {
	if len(v) == 0 || v[0] != refVersion {
		recs, err := store.SplitEntry(v, recs)
		return recs, nil, err
	}
	r, err := parseRef(v)
	if err != nil {
		return recs, nil, err
	}
	if batch, err = s.seg.read(&r); err != nil {
		return recs, batch, err
	}
	n := len(recs)
	recs, err = store.SplitEntry(batch, recs)
	if err == nil && uint64(len(recs)-n) != r.count {
		err = fmt.Errorf("%w: segment entry holds %d records, its reference %d", store.ErrRecord, len(recs)-n, r.count)
	}
	return recs, batch, err
}
