package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/auditrelay/auditrelay/internal/store"
)

// The kinds of lease.
const (
	kindSource = store.LeaseSource
	kindSink   = store.LeaseSink
)

// leaseKey names one lease.
type leaseKey struct{ kind, name string }

// heldLease is a lease this replica holds: the epoch it took, and when
// (by this process's monotonic clock) it started the last statement that
// renewed it. The lease lasts at least until renewed plus the TTL.
type heldLease struct {
	epoch   int64
	renewed time.Time
}

// LeaseLostError is returned (wrapped) by a fenced commit of a source or a
// sink whose lease this replica no longer holds: another replica took it
// over (this one was paused or cut off for longer than the lease), or it
// never held it. Nothing of the transaction was committed.
type LeaseLostError = store.LeaseLostError

// renew, in a fenced store, renews this replica's lease on (kind, name) in
// tx, only while its epoch is the one this replica took: a lease taken
// over since fails the transaction. The lease row stays locked until tx
// ends, so a takeover waits for this commit and then sees the renewed
// expiry. An unfenced store renews nothing.
func (s *Store) renew(ctx context.Context, tx pgx.Tx, kind, name string) error {
	b := &pgx.Batch{}
	if err := s.queueRenew(b, kind, name); err != nil || b.Len() == 0 {
		return err
	}
	return tx.SendBatch(ctx, b).Close()
}

// queueRenew queues the renewal of renew in b, to be sent in the
// transaction with the statements that follow it; sending b fails with a
// *LeaseLostError when the lease was taken over. It fails at once, queuing
// nothing, when this replica does not hold the lease, and queues nothing
// in an unfenced store.
func (s *Store) queueRenew(b *pgx.Batch, kind, name string) error {
	if !s.fenced {
		return nil
	}
	k := leaseKey{kind, name}
	s.mu.Lock()
	h, ok := s.held[k]
	s.mu.Unlock()
	epoch := h.epoch
	if !ok {
		return &LeaseLostError{Kind: kind, Name: name, Replica: s.replica, Reason: "this replica does not hold its lease"}
	}
	b.Queue(`WITH r AS (
			UPDATE leases SET expires_at = now() + $4 * interval '1 millisecond'
			WHERE kind = $1 AND name = $2 AND owner = $3 AND epoch = $5 RETURNING owner, epoch)
		SELECT owner, epoch FROM r UNION ALL
		SELECT owner, epoch FROM leases WHERE kind = $1 AND name = $2 AND NOT EXISTS (SELECT 1 FROM r)`,
		kind, name, s.replica, s.ttl.Milliseconds(), epoch).QueryRow(func(row pgx.Row) error {
		var owner string
		var cur int64
		err := row.Scan(&owner, &cur)
		if errors.Is(err, pgx.ErrNoRows) {
			owner, cur, err = "", 0, nil
		}
		if err != nil {
			return fmt.Errorf("renew the lease: %w", err)
		}
		if owner == s.replica && cur == epoch {
			return nil
		}
		s.drop(k, epoch)
		return &LeaseLostError{Kind: kind, Name: name, Replica: s.replica, Owner: owner, Epoch: epoch, Reason: fmt.Sprintf("taken over by %s (epoch %d, this replica held epoch %d)", owner, cur, epoch)}
	})
	return nil
}

// drop forgets a lease this replica held at epoch.
func (s *Store) drop(k leaseKey, epoch int64) {
	s.mu.Lock()
	if s.held[k].epoch == epoch {
		delete(s.held, k)
	}
	s.mu.Unlock()
}

// touch records that a statement started at start renewed the lease on
// (kind, name), when the store is fenced.
func (s *Store) touch(kind, name string, start time.Time) {
	if !s.fenced {
		return
	}
	k := leaseKey{kind, name}
	s.mu.Lock()
	if h, ok := s.held[k]; ok && start.After(h.renewed) {
		h.renewed = start
		s.held[k] = h
	}
	s.mu.Unlock()
}

// Holds reports whether this replica holds the lease on (kind, name) and
// renewed it less than a TTL ago by its own clock, which runs on while the
// process is paused: a replica resumed after a pause longer than its lease
// does not trust a lease it may have lost until a heartbeat renews it.
func (s *Store) Holds(kind, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.held[leaseKey{kind, name}]
	return ok && time.Since(h.renewed) < s.ttl
}

// Acquire takes the lease on (kind, name) for this replica when it is
// free, expired, or already this replica's (a previous process with the
// same replica id): each such takeover increments the epoch, which fences
// every former holder. It returns false, with no error, when another
// replica holds an unexpired lease, and true when this replica already
// holds it.
func (s *Store) Acquire(ctx context.Context, kind, name string) (took bool, err error) {
	k := leaseKey{kind, name}
	s.mu.Lock()
	_, held := s.held[k]
	s.mu.Unlock()
	if held {
		return true, nil
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	start := time.Now()
	var epoch int64
	err = s.pool.QueryRow(ctx, `INSERT INTO leases AS l (kind, name, owner, epoch, expires_at)
		VALUES ($1, $2, $3, 1, now() + $4 * interval '1 millisecond')
		ON CONFLICT (kind, name) DO UPDATE SET owner = excluded.owner, epoch = l.epoch + 1, expires_at = excluded.expires_at
		WHERE l.expires_at <= now() OR l.owner = excluded.owner
		RETURNING epoch`, kind, name, s.replica, s.ttl.Milliseconds()).Scan(&epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, s.classify("take the lease of "+kind+" "+name, err)
	}
	s.mu.Lock()
	s.held[k] = heldLease{epoch: epoch, renewed: start}
	s.mu.Unlock()
	return true, nil
}

// Release gives up this replica's lease on (kind, name) so that another
// replica can take it at once. A lease no longer held is left alone.
func (s *Store) Release(ctx context.Context, kind, name string) error {
	k := leaseKey{kind, name}
	s.mu.Lock()
	h, ok := s.held[k]
	delete(s.held, k)
	s.mu.Unlock()
	if !ok {
		return nil
	}
	epoch := h.epoch
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `UPDATE leases SET expires_at = now() WHERE kind = $1 AND name = $2 AND owner = $3 AND epoch = $4`,
		kind, name, s.replica, epoch); err != nil {
		return s.classify("release the lease of "+kind+" "+name, err)
	}
	return nil
}

// Heartbeat renews this replica's row and every lease it holds, and
// returns the live replicas (this one included) and the leases it lost,
// which another replica took over while this one was paused or cut off.
func (s *Store) Heartbeat(ctx context.Context) (live []string, lost []store.LeaseLostError, err error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	s.mu.Lock()
	var kinds, names []string
	var epochs []int64
	for k, h := range s.held {
		kinds, names, epochs = append(kinds, k.kind), append(names, k.name), append(epochs, h.epoch)
	}
	s.mu.Unlock()
	ms := s.ttl.Milliseconds()
	start := time.Now()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO replicas (id, started_at, seen_at, expires_at) VALUES ($1, now(), now(), now() + $2 * interval '1 millisecond')
			ON CONFLICT (id) DO UPDATE SET seen_at = now(), expires_at = excluded.expires_at`, s.replica, ms); err != nil {
			return fmt.Errorf("renew the replica: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM replicas WHERE expires_at < now() - interval '1 hour'`); err != nil {
			return fmt.Errorf("forget departed replicas: %w", err)
		}
		rows, err := tx.Query(ctx, `UPDATE leases l SET expires_at = now() + $2 * interval '1 millisecond'
			FROM unnest($3::text[], $4::text[], $5::bigint[]) AS h(kind, name, epoch)
			WHERE l.kind = h.kind AND l.name = h.name AND l.epoch = h.epoch AND l.owner = $1
			RETURNING l.kind, l.name`, s.replica, ms, kinds, names, epochs)
		if err != nil {
			return fmt.Errorf("renew the leases: %w", err)
		}
		kept := map[leaseKey]bool{}
		var k leaseKey
		if _, err := pgx.ForEachRow(rows, []any{&k.kind, &k.name}, func() error {
			kept[k] = true
			return nil
		}); err != nil {
			return fmt.Errorf("renew the leases: %w", err)
		}
		for i := range kinds {
			if k := (leaseKey{kinds[i], names[i]}); !kept[k] {
				s.drop(k, epochs[i])
				lost = append(lost, store.LeaseLostError{Kind: k.kind, Name: k.name, Replica: s.replica, Epoch: epochs[i], Reason: "taken over while this replica could not renew it"})
			}
		}
		rows, err = tx.Query(ctx, `SELECT id FROM replicas WHERE expires_at > now() ORDER BY id`)
		if err != nil {
			return fmt.Errorf("list the replicas: %w", err)
		}
		live, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, nil, s.classify("heartbeat", err)
	}
	s.endStalledCopies(ctx)
	for i := range kinds {
		s.touch(kinds[i], names[i], start)
	}
	return live, lost, nil
}

// Leave removes this replica's row and releases every lease it holds, for
// a clean stop: the others take its work at once.
func (s *Store) Leave(ctx context.Context) error {
	s.mu.Lock()
	var keys []leaseKey
	for k := range s.held {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	var errs []error
	for _, k := range keys {
		if err := s.Release(ctx, k.kind, k.name); err != nil {
			errs = append(errs, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `DELETE FROM replicas WHERE id = $1`, s.replica); err != nil {
		errs = append(errs, s.classify("leave", err))
	}
	return errors.Join(errs...)
}

// Leases returns every lease row: who owns what, until when.
func (s *Store) Leases(ctx context.Context) ([]store.Lease, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT kind, name, owner, epoch, expires_at, expires_at > now() FROM leases ORDER BY kind, name`)
	if err != nil {
		return nil, s.classify("list the leases", err)
	}
	var out []store.Lease
	var l store.Lease
	if _, err := pgx.ForEachRow(rows, []any{&l.Kind, &l.Name, &l.Owner, &l.Epoch, &l.Expires, &l.Live}, func() error {
		l.Expires = l.Expires.UTC()
		out = append(out, l)
		return nil
	}); err != nil {
		return nil, s.classify("list the leases", err)
	}
	return out, nil
}

// Store shares its work between replicas.
var _ store.Leaser = (*Store)(nil)
