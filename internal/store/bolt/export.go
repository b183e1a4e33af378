package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/auditrelay/auditrelay/internal/store"
)

// Export calls fn with everything the store holds, read in one read
// transaction: every source's cursor, state and dedup ids, every sink's
// offset and state, and the spool with its positions. It is for
// `auditrelay store migrate`, with the daemon stopped.
func (s *Store) Export(fn func(*store.Export) error) error {
	err := s.db.View(func(tx *bbolt.Tx) error {
		spool := tx.Bucket(bSpool)
		ex := &store.Export{LastSeq: spool.Sequence(), DeletedThrough: readDeleted(tx)}
		srcs := tx.Bucket(bSources)
		if err := srcs.ForEachBucket(func(k []byte) error {
			sb := srcs.Bucket(k)
			es := store.ExportedSource{State: readSourceState(sb, string(k))}
			if v := sb.Get(kCursor); len(v) > 0 {
				es.State.Cursor = bytes.Clone(v)
			}
			if bt := sb.Bucket(bIDTime); bt != nil {
				if err := bt.ForEach(func(k, _ []byte) error {
					if len(k) < 8 {
						return fmt.Errorf("source %s: a dedup key of %d bytes is unreadable", es.State.Name, len(k))
					}
					es.IDs = append(es.IDs, store.DedupID{Time: int64(binary.BigEndian.Uint64(k) ^ (1 << 63)), ID: string(k[8:])})
					return nil
				}); err != nil {
					return err
				}
			}
			ex.Sources = append(ex.Sources, es)
			return nil
		}); err != nil {
			return err
		}
		sinks := tx.Bucket(bSinks)
		if err := sinks.ForEachBucket(func(k []byte) error {
			b := sinks.Bucket(k)
			st := readSinkState(b, string(k))
			st.Offset = getU64(b.Get(kOffset))
			ex.Sinks = append(ex.Sinks, st)
			return nil
		}); err != nil {
			return err
		}
		open := true
		ex.Spool = func(fn func(seq uint64, record []byte) error) error {
			if !open {
				return fmt.Errorf("store: the export's read transaction has ended")
			}
			// Events every sink has passed may still be in an entry
			// whose last event is not: they are not exported.
			passed := getU64(tx.Bucket(bMeta).Get(kPassed))
			c := spool.Cursor()
			var recs [][]byte
			for k, v := c.Seek(putU64(nil, passed+1)); k != nil; k, v = c.Next() {
				if len(k) != 8 {
					return fmt.Errorf("spool key of %d bytes is unreadable", len(k))
				}
				end := binary.BigEndian.Uint64(k)
				var err error
				var batch []byte
				if recs, batch, err = s.entryRecords(v, recs[:0]); err != nil && !errors.Is(err, store.ErrRecord) {
					return fmt.Errorf("spool entry %d: %w", end, err)
				} else if err != nil {
					// Kept whole at its last position: the sinks
					// skip it there as unreadable, as they would here.
					recs = append(recs[:0], corruptBytes(v, batch))
				}
				first := end - uint64(len(recs)) + 1
				for j, rec := range recs {
					if seq := first + uint64(j); seq > passed {
						if err := fn(seq, rec); err != nil {
							return err
						}
					}
				}
			}
			return nil
		}
		defer func() { open = false }()
		return fn(ex)
	})
	if err != nil {
		return fmt.Errorf("store: export %s: %w", s.Path(), err)
	}
	return nil
}
