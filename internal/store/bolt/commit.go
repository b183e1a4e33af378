package bolt

import (
	"errors"

	bbolt "go.etcd.io/bbolt"
)

// maxGroup is the most writes one group commit takes, and maxGroupBytes
// about the most bytes: a group holds its writes' data and bbolt's dirty
// pages in memory until it commits, so twenty 1.3 MB pages in one
// transaction would cost the heap 60 MB or more.
const (
	maxGroup      = 256
	maxGroupBytes = 8 << 20
)

// errClosed is returned by writes after Close.
var errClosed = errors.New("store is closed")

// write is one write waiting for a group commit: a function that is run
// inside a read-write transaction, with the transaction's outcome.
type write struct {
	fn   func(*bbolt.Tx) error
	size int // the bytes fn puts, roughly
	done chan error
}

// update runs fn in a read-write transaction, like bbolt's Update, and
// returns once that transaction is committed (fsynced). Concurrent writes
// share one transaction: while one commits, those arriving queue and
// commit together next, so twenty sources storing pages and a sink
// acknowledging its batch cost one fsync, not twenty-one, and no write
// waits behind more than one commit. Each fn is whole in the transaction
// it commits in: a page and its cursor are never split.
//
// fn may run more than once (when another write of its group fails, the
// group is run again without it), so it must start from nothing each time
// and leave its results in its own variables only, used once update
// returned nil.
func (s *Store) update(fn func(*bbolt.Tx) error) error { return s.updateSize(0, fn) }

// updateSize is update for a write putting about size bytes.
func (s *Store) updateSize(size int, fn func(*bbolt.Tx) error) error {
	w := &write{fn: fn, size: size, done: make(chan error, 1)}
	select {
	case s.writes <- w:
	case <-s.quit:
		return errClosed
	}
	select {
	case err := <-w.done:
		return err
	case <-s.committerDone:
		select {
		case err := <-w.done:
			return err
		default:
			return errClosed
		}
	}
}

// committer runs the group commits until quit is closed, then answers the
// writes still queued.
func (s *Store) committer() {
	defer close(s.committerDone)
	group := make([]*write, 0, maxGroup)
	for {
		size := 0
		select {
		case w := <-s.writes:
			group = append(group[:0], w)
			size = w.size
		case <-s.quit:
			for {
				select {
				case w := <-s.writes:
					w.done <- errClosed
				default:
					return
				}
			}
		}
	more:
		for len(group) < maxGroup && size < maxGroupBytes {
			select {
			case w := <-s.writes:
				group = append(group, w)
				size += w.size
			default:
				break more
			}
		}
		s.commitGroup(group)
	}
}

// commitGroup commits the writes of group in one transaction. A write
// whose fn fails is run again alone, so that it gets its own error and its
// group's other writes are not lost with it; they are committed again
// without it.
func (s *Store) commitGroup(group []*write) {
	for len(group) > 0 {
		failed := -1
		err := s.transact(func(tx *bbolt.Tx) error {
			for i, w := range group {
				if err := w.fn(tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, w := range group {
				w.done <- err
			}
			return
		}
		if len(group) == 1 {
			group[0].done <- err
			return
		}
		w := group[failed]
		w.done <- s.transact(w.fn)
		group = append(group[:failed:failed], group[failed+1:]...)
	}
}

// transact runs fn in a read-write transaction with the spool data it
// adds: that data is written and synced to the current segment before
// the transaction that refers to it commits.
func (s *Store) transact(fn func(*bbolt.Tx) error) error {
	s.seg.begin()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return s.seg.flush(tx)
	})
	if err == nil {
		s.seg.committed()
	}
	return err
}
