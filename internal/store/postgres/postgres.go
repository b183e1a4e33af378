// Package postgres is the store contract kept in PostgreSQL, for several
// replicas of auditrelay sharing one state: cursors and dedup ids, the
// spool, sink offsets, gaps and last errors live in tables (see schema.go),
// created and migrated by the binary.
//
// Spool positions are commit order. A PostgreSQL sequence is not: a
// transaction that took a lower value can commit after one that took a
// higher value, and a sink that read past the higher one would never see the
// lower one. Here an append takes its positions from the single spool_head
// row with UPDATE … RETURNING, which locks that row until the transaction
// ends: the next append can take positions only once this one committed (or
// rolled back, giving its positions back), so every uncommitted position is
// above every committed one and "read after offset X" skips nothing.
//
// Each source and sink is run by one replica at a time under a lease row
// with a fencing epoch (see lease.go): the append of a page, or the ack of
// a batch, renews the lease in its own transaction and only while the epoch
// is still the one the replica took, so a replica whose lease was taken over
// can never commit again.
package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/store"
)

// notifyChannel is the channel appends NOTIFY, for the sink runners of
// other replicas.
const notifyChannel = "auditrelay_spool"

// opTimeout bounds one store operation.
const opTimeout = 30 * time.Second

// Options tune Open.
type Options struct {
	// Logger receives the store's own log lines (lost connections of the
	// change watcher); nil discards them.
	Logger *slog.Logger
	// Fenced makes every commit of a source's page or a sink's offset
	// require this replica's lease on it (see Acquire). Replicas run
	// fenced; the commands that run with the daemons stopped do not.
	Fenced bool
	// ReadOnly is for the commands that only read (status, store parked):
	// they neither create nor migrate the schema, so that a newer
	// command never moves the database past the replicas running it.
	ReadOnly bool
}

// Store is an open PostgreSQL store. Its methods are safe for concurrent
// use.
type Store struct {
	pool     *pgxpool.Pool
	replica  string
	ttl      time.Duration
	fenced   bool
	log      *slog.Logger
	dsn      string // for scrubbing errors
	password string
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}

	mu         sync.Mutex
	wake       chan struct{}
	lastSeq    uint64
	spoolBytes int64
	spoolCount int64
	held       map[leaseKey]heldLease // the leases this replica holds

	// afterPositions, when set (by tests), runs in an append's
	// transaction once it holds its spool positions, before it commits.
	afterPositions func(source string)
}

// Open connects to the configured database, creates or migrates the
// schema, and starts watching for appends of other replicas. It refuses a
// schema migrated by a newer auditrelay. Its errors are classified: bad
// credentials or a missing database are permanent, with the fix.
func Open(ctx context.Context, cfg Config, opts Options) (*Store, error) {
	cfg.SetDefaults()
	parsed, err := ParseDSN(cfg.DSN)
	if err != nil {
		return nil, &delivery.Error{Class: delivery.Permanent, Op: "store: postgres dsn", Err: err, Fix: "fix store.postgres.dsn"}
	}
	raw := normalizeDSN(cfg.DSN.Reveal())
	pcfg, err := pgxpool.ParseConfig(raw)
	if err != nil {
		return nil, &delivery.Error{Class: delivery.Permanent, Op: "store: postgres dsn", Err: errors.New(scrub(err.Error(), raw)), Fix: "fix store.postgres.dsn"}
	}
	pcfg.MaxConns = int32(max(4, runtime.NumCPU()))
	pcfg.MaxConnLifetime = time.Hour
	pcfg.HealthCheckPeriod = time.Minute
	if _, ok := pcfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		pcfg.ConnConfig.RuntimeParams["application_name"] = "auditrelay"
	}
	// A replica paused (SIGSTOP, a frozen VM) in the middle of a
	// transaction holds its row locks, the spool head's and its lease
	// rows among them, and would stall every other replica's appends, and
	// the takeover of its leases, until it resumed. The server ends such
	// a transaction once it has been idle for a third of lease_ttl: the
	// others append again within that third, and the paused replica's
	// lease rows are unlocked well before its leases expire, so the
	// takeover at expiry does not wait. A waiter gives up on a lock after
	// half of lease_ttl (longer than the idle timeout, so a paused peer's
	// lock is freed before it does; shorter than the lease, so a waiter
	// retries before its own leases, renewed by its heartbeat meanwhile,
	// are at risk) and retries. See lockTimeouts; a replica paused in the
	// middle of a COPY is not idle to the server: see endStalledCopies.
	for p, v := range lockTimeouts(cfg.LeaseTTL.D()) {
		if _, ok := pcfg.ConnConfig.RuntimeParams[p]; !ok {
			pcfg.ConnConfig.RuntimeParams[p] = v
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &Store{replica: cfg.Replica(), ttl: cfg.LeaseTTL.D(), fenced: opts.Fenced, log: log,
		dsn: raw, password: parsed.Password, ctx: sctx, cancel: cancel, done: make(chan struct{}),
		wake: make(chan struct{}), held: map[leaseKey]heldLease{}}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		cancel()
		return nil, s.classify("connect", err)
	}
	s.pool = pool
	octx, ocancel := context.WithTimeout(ctx, opTimeout)
	defer ocancel()
	if err := pgx.BeginFunc(octx, pool, func(tx pgx.Tx) error { return migrate(octx, tx, !opts.ReadOnly) }); err != nil {
		pool.Close()
		cancel()
		if errors.Is(err, errNewerSchema) || errors.Is(err, errOlderSchema) {
			return nil, &delivery.Error{Class: delivery.Permanent, Op: "store: postgres", Err: errors.New(s.scrub(err.Error()))}
		}
		return nil, s.classify("create the schema", err)
	}
	if err := s.refresh(octx); err != nil {
		pool.Close()
		cancel()
		return nil, s.classify("read the spool head", err)
	}
	go s.watch()
	return s, nil
}

// lockTimeouts returns the idle_in_transaction_session_timeout (a third
// of ttl) and lock_timeout (half of ttl) of every connection, in
// milliseconds, as the server parameters spell them.
func lockTimeouts(ttl time.Duration) map[string]string {
	return map[string]string{
		"idle_in_transaction_session_timeout": strconv.FormatInt((ttl / 3).Milliseconds(), 10),
		"lock_timeout":                        strconv.FormatInt((ttl / 2).Milliseconds(), 10),
	}
}

// normalizeDSN turns a bare socket directory into a DSN naming it.
func normalizeDSN(dsn string) string {
	if strings.HasPrefix(dsn, "/") && !strings.ContainsAny(dsn, " =") {
		return "host=" + dsn
	}
	return dsn
}

// Replica returns this process's replica id.
func (s *Store) Replica() string { return s.replica }

// LeaseTTL returns how long a lease lasts unless renewed.
func (s *Store) LeaseTTL() time.Duration { return s.ttl }

// Close stops the watcher and closes the connections. Leases still held
// are left to expire: a replica that stops cleanly calls ReleaseAll first.
func (s *Store) Close() error {
	s.cancel()
	<-s.done
	s.pool.Close()
	return nil
}

// Where describes the database for the log, without its password.
func (s *Store) Where() string {
	c := s.pool.Config().ConnConfig
	return fmt.Sprintf("postgres %s/%s as %s (replica %s)", c.Host, c.Database, c.User, s.replica)
}

// scrub removes the DSN and its password from msg.
func (s *Store) scrub(msg string) string {
	msg = scrub(msg, s.dsn)
	if s.password != "" {
		msg = strings.ReplaceAll(msg, s.password, "[redacted]")
	}
	return msg
}

// classify wraps err from op with its class: authentication failures and
// a missing database are permanent, everything else (connections refused
// or lost, timeouts, a server shutting down) transient.
func (s *Store) classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var le *LeaseLostError
	if errors.As(err, &le) || errors.Is(err, store.ErrFingerprint) {
		return err
	}
	msg := s.scrub(err.Error())
	e := &delivery.Error{Class: delivery.Transient, Op: "store: postgres: " + op, Err: errors.New(msg)}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "28"):
			e.Class, e.Fix = delivery.Permanent, "check the user and password in store.postgres.dsn, and pg_hba.conf on the server"
		case pe.Code == "3D000":
			e.Class, e.Fix = delivery.Permanent, "create the database (CREATE DATABASE …) or fix its name in store.postgres.dsn"
		case pe.Code == "42501":
			e.Class, e.Fix = delivery.Permanent, "grant the user of store.postgres.dsn the right to create tables in its database (or its search_path schema)"
		}
	}
	return e
}

// tx runs f in one transaction, committed when f returns nil.
func (s *Store) tx(op string, f func(ctx context.Context, tx pgx.Tx) error) error {
	ctx, cancel := context.WithTimeout(s.ctx, opTimeout)
	defer cancel()
	return s.classify(op, pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return f(ctx, tx) }))
}

// Changed returns a channel closed at the next append of any replica.
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

// SpoolBytes returns the size of the events in the spool, as last read
// (after every commit of this replica and at least every second).
func (s *Store) SpoolBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spoolBytes
}

// SpoolCount returns the number of events in the spool, as SpoolBytes.
func (s *Store) SpoolCount() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spoolCount
}

// head records the spool head read in a commit, and says whether it moved
// on.
func (s *Store) head(seq uint64, bytes, count int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	moved := seq > s.lastSeq
	if seq >= s.lastSeq {
		s.lastSeq, s.spoolBytes, s.spoolCount = seq, bytes, count
	}
	return moved
}

func (s *Store) refresh(ctx context.Context) error {
	var seq, bytes, count int64
	if err := s.pool.QueryRow(ctx, `SELECT seq, bytes, count FROM spool_head`).Scan(&seq, &bytes, &count); err != nil {
		return err
	}
	s.mu.Lock()
	s.lastSeq, s.spoolBytes, s.spoolCount = uint64(seq), bytes, count
	s.mu.Unlock()
	return nil
}

// watch listens for the appends of other replicas on a connection of its
// own, and reads the spool head every second: NOTIFY is lost while the
// connection is down, and is not delivered through a transaction-mode
// pooler.
func (s *Store) watch() {
	defer close(s.done)
	backoff := delivery.Backoff{Base: time.Second, Max: 30 * time.Second}
	for attempt := 1; s.ctx.Err() == nil; attempt++ {
		err := s.listen()
		if s.ctx.Err() != nil {
			return
		}
		d := backoff.Delay(attempt)
		s.log.Warn("store: watching PostgreSQL for new events failed; retrying (sinks poll the spool meanwhile)", "err", s.scrub(err.Error()), "attempt", attempt, "delay", d)
		delivery.Sleep(s.ctx, d)
	}
}

func (s *Store) listen() error {
	conn, err := s.pool.Acquire(s.ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(s.ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	defer func() {
		// Leave the connection clean for the pool, or drop it.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, "UNLISTEN *"); err != nil {
			conn.Conn().Close(ctx)
		}
	}()
	for {
		wctx, cancel := context.WithTimeout(s.ctx, time.Second)
		_, err := conn.Conn().WaitForNotification(wctx)
		cancel()
		if s.ctx.Err() != nil {
			return nil
		}
		if err != nil && !pgconn.Timeout(err) {
			return err
		}
		var seq, bytes, count int64
		if err := conn.QueryRow(s.ctx, `SELECT seq, bytes, count FROM spool_head`).Scan(&seq, &bytes, &count); err != nil {
			return err
		}
		if s.head(uint64(seq), bytes, count) {
			s.signal()
		}
	}
}

// Append stores a page for the named source in one transaction; see
// store.Store. When the store is fenced, the transaction also renews this
// replica's lease on the source, and fails with a *LeaseLostError (storing
// nothing) when another replica took it.
//
// The transaction takes six round trips whatever the page's size: BEGIN;
// one batch renewing the lease, locking the source's row and reading which
// of the page's ids it already stored; COPY of the new ids; one batch
// writing the cursor and taking the spool positions; COPY of the spool
// rows; COMMIT.
func (s *Store) Append(name, fingerprint string, p source.Page, now time.Time) (store.AppendResult, error) {
	var res store.AppendResult
	var seq, bytes, count int64
	// Events repeated within the page are duplicates of their first copy.
	seen := make(map[idKey]bool, len(p.Events))
	cand := make([]int, 0, len(p.Events))
	ts := make([]int64, 0, len(p.Events))
	idv := make([]string, 0, len(p.Events))
	for i := range p.Events {
		k := idKey{p.Events[i].Time.UnixNano(), p.Events[i].ID}
		if seen[k] {
			res.Duplicates++
			continue
		}
		seen[k] = true
		cand = append(cand, i)
		ts = append(ts, k.t)
		idv = append(idv, k.id)
	}
	dups := res.Duplicates
	var horizon int64 = math.MinInt64
	if !p.DedupHorizon.IsZero() {
		horizon = p.DedupHorizon.UnixNano()
	}
	start := time.Now()
	err := s.tx("append "+name, func(ctx context.Context, tx pgx.Tx) error {
		res = store.AppendResult{Duplicates: dups}
		b := &pgx.Batch{}
		if err := s.queueRenew(b, kindSource, name); err != nil {
			return err
		}
		// Every append of a source locks its row, made first if need be,
		// so that two appends of one source run one after the other and
		// the second reads the ids the first stored.
		queueExec(b, "lock the state of "+name, `INSERT INTO sources (name, state) VALUES ($1, '{}') ON CONFLICT DO NOTHING`, name)
		var st store.SourceState
		queueReadSource(b, name, true, &st, nil)
		stored := map[idKey]bool{}
		if len(cand) > 0 {
			b.Queue(`SELECT s.t, s.id FROM source_ids s JOIN unnest($2::bigint[], $3::text[]) AS u(t, id) ON s.t = u.t AND s.id = u.id
				WHERE s.source = $1 AND s.t >= $4 AND s.t <= $5`, name, ts, idv, slices.Min(ts), slices.Max(ts)).Query(func(rows pgx.Rows) error {
				var k idKey
				_, err := pgx.ForEachRow(rows, []any{&k.t, &k.id}, func() error {
					stored[k] = true
					return nil
				})
				if err != nil {
					return fmt.Errorf("read the stored ids: %w", err)
				}
				return nil
			})
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if err := store.CheckFingerprint(name, st.Fingerprint, fingerprint); err != nil {
			return err
		}
		lateBefore := st.BeginPage(fingerprint, &p)
		var recs [][]byte
		var newIDs []int // indexes into ts and idv of the ids to keep
		for j, i := range cand {
			ev := &p.Events[i]
			if stored[idKey{ts[j], idv[j]}] {
				res.Duplicates++
				continue
			}
			if ts[j] >= horizon { // the ones behind it would be forgotten at once
				newIDs = append(newIDs, j)
			}
			rec := store.AppendRecord(make([]byte, 0, store.RecordSize(ev)), ev)
			recs = append(recs, rec)
			res.Added++
			res.Bytes += int64(len(rec))
			if ev.Time.Before(lateBefore) {
				res.Late = append(res.Late, lateBefore.Sub(ev.Time))
			}
		}
		if len(newIDs) > 0 {
			// In index order: pages come newest first, and ascending keys
			// go to the index's rightmost leaf without a descent from its
			// root, and fill its pages.
			slices.SortFunc(newIDs, func(a, b int) int {
				if c := cmp.Compare(ts[a], ts[b]); c != 0 {
					return c
				}
				return strings.Compare(idv[a], idv[b])
			})
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"source_ids"}, []string{"source", "t", "id"},
				pgx.CopyFromSlice(len(newIDs), func(i int) ([]any, error) { return []any{name, ts[newIDs[i]], idv[newIDs[i]]}, nil })); err != nil {
				return fmt.Errorf("store the ids: %w", err)
			}
		}
		st.EndPage(&p, res, now)
		b = &pgx.Batch{}
		if !p.DedupHorizon.IsZero() {
			queueExec(b, "forget ids behind the horizon", `DELETE FROM source_ids WHERE source = $1 AND t < $2`, name, horizon)
		}
		if err := queueWriteSource(b, name, p.Next, st); err != nil {
			return err
		}
		if len(recs) > 0 {
			// Positions last: the head's lock is held from here to the
			// commit, so it serializes as little as it can.
			b.Queue(`UPDATE spool_head SET seq = seq + $1, bytes = bytes + $2, count = count + $1 RETURNING seq, bytes, count`,
				len(recs), res.Bytes).QueryRow(func(row pgx.Row) error {
				if err := row.Scan(&seq, &bytes, &count); err != nil {
					return fmt.Errorf("take spool positions: %w", err)
				}
				return nil
			})
			queueExec(b, "notify", `SELECT pg_notify($1, '')`, notifyChannel)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if len(recs) == 0 {
			return nil
		}
		first := seq - int64(len(recs)) + 1
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"spool"}, []string{"pos", "rec"},
			pgx.CopyFromSlice(len(recs), func(i int) ([]any, error) { return []any{first + int64(i), recs[i]}, nil })); err != nil {
			return fmt.Errorf("spool the events: %w", err)
		}
		if s.afterPositions != nil {
			s.afterPositions(name)
		}
		return nil
	})
	if err != nil {
		return store.AppendResult{}, fmt.Errorf("store: append %s: %w", name, err)
	}
	s.touch(kindSource, name, start)
	if res.Added > 0 {
		s.head(uint64(seq), bytes, count)
		s.signal()
	}
	return res, nil
}

// idKey identifies a stored event id: its time (Unix ns) and id.
type idKey struct {
	t  int64
	id string
}

// readSource reads a source's state and cursor, locking its row when lock
// is set; a source never stored has a zero state.
func readSource(ctx context.Context, tx pgx.Tx, name string, lock bool) (store.SourceState, []byte, error) {
	var st store.SourceState
	var cur []byte
	b := &pgx.Batch{}
	queueReadSource(b, name, lock, &st, &cur)
	err := tx.SendBatch(ctx, b).Close()
	return st, cur, err
}

// queueReadSource queues in b the read of readSource, into st and (when
// not nil) cur.
func queueReadSource(b *pgx.Batch, name string, lock bool, st *store.SourceState, cur *[]byte) {
	q := `SELECT cursor, state FROM sources WHERE name = $1`
	if lock {
		q += ` FOR UPDATE`
	}
	b.Queue(q, name).QueryRow(func(row pgx.Row) error {
		var c, raw []byte
		*st = store.SourceState{Name: name}
		err := row.Scan(&c, &raw)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the state of %s: %w", name, err)
		}
		_ = json.Unmarshal(raw, st) // a damaged status record only loses status
		st.Name = name
		if cur != nil && len(c) > 0 {
			*cur = c
		}
		return nil
	})
}

func writeSource(ctx context.Context, tx pgx.Tx, name string, cur []byte, st store.SourceState) error {
	b := &pgx.Batch{}
	if err := queueWriteSource(b, name, cur, st); err != nil {
		return err
	}
	return tx.SendBatch(ctx, b).Close()
}

// queueWriteSource queues in b the write of writeSource.
func queueWriteSource(b *pgx.Batch, name string, cur []byte, st store.SourceState) error {
	st.Cursor, st.Owner, st.LeaseExpires = nil, "", time.Time{}
	j, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if len(cur) == 0 {
		cur = nil
	}
	queueExec(b, "store the cursor of "+name, `INSERT INTO sources (name, cursor, state) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, state = excluded.state`, name, cur, j)
	return nil
}

// queueExec queues a statement in b whose error, when sending b, says
// what it did.
func queueExec(b *pgx.Batch, what, sql string, args ...any) {
	b.Queue(sql, args...).Fn = func(br pgx.BatchResults) error {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
}

// Cursor returns the stored cursor of a source and its fingerprint.
func (s *Store) Cursor(name string) (source.Cursor, string, error) {
	var cur []byte
	var fp string
	err := s.tx("read the cursor of "+name, func(ctx context.Context, tx pgx.Tx) error {
		st, c, err := readSource(ctx, tx, name, false)
		cur, fp = c, st.Fingerprint
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("store: read cursor of %s: %w", name, err)
	}
	return cur, fp, nil
}

// ResetSource forgets a source's cursor, fingerprint, ids and state.
func (s *Store) ResetSource(name string) (bool, error) {
	found := false
	err := s.tx("reset "+name, func(ctx context.Context, tx pgx.Tx) error {
		if err := s.renew(ctx, tx, kindSource, name); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM sources WHERE name = $1`, name)
		if err != nil {
			return err
		}
		found = tag.RowsAffected() > 0
		_, err = tx.Exec(ctx, `DELETE FROM source_ids WHERE source = $1`, name)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: reset %s: %w", name, err)
	}
	return found, nil
}

// SetCursor stores cur as the cursor of a source, keeping its ids and
// counters.
func (s *Store) SetCursor(name, fingerprint string, cur source.Cursor, watermark time.Time) error {
	err := s.tx("set the checkpoint of "+name, func(ctx context.Context, tx pgx.Tx) error {
		if err := s.renew(ctx, tx, kindSource, name); err != nil {
			return err
		}
		st, _, err := readSource(ctx, tx, name, true)
		if err != nil {
			return err
		}
		st.SetCheckpoint(fingerprint, watermark)
		return writeSource(ctx, tx, name, cur, st)
	})
	if err != nil {
		return fmt.Errorf("store: set the checkpoint of %s: %w", name, err)
	}
	return nil
}

// RecordSourceError stores the last error of a source for status output.
// It is not fenced: a status line commits nothing the pipeline relies on.
func (s *Store) RecordSourceError(name, msg string, at time.Time) error {
	err := s.tx("record the error of "+name, func(ctx context.Context, tx pgx.Tx) error {
		st, cur, err := readSource(ctx, tx, name, true)
		if err != nil {
			return err
		}
		st.LastError, st.LastErrorAt = msg, at.UTC()
		st.LastPoll = at.UTC()
		return writeSource(ctx, tx, name, cur, st)
	})
	if err != nil {
		return fmt.Errorf("store: record error of %s: %w", name, err)
	}
	return nil
}

// SetSinks registers the configured sinks; see store.Store.
func (s *Store) SetSinks(names []string) error {
	if names == nil {
		names = []string{}
	}
	var h spoolHead
	err := s.tx("register sinks", func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO sinks (name, off, state) SELECT n, 0, '{}' FROM unnest($1::text[]) AS n ON CONFLICT DO NOTHING`, names); err != nil {
			return fmt.Errorf("add sinks: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sinks WHERE name <> ALL($1::text[])`, names); err != nil {
			return fmt.Errorf("drop sinks: %w", err)
		}
		return s.collect(ctx, tx, &h)
	})
	if err != nil {
		return fmt.Errorf("store: register sinks: %w", err)
	}
	s.head(h.seq, h.bytes, h.count)
	return nil
}

// collect deletes the spool entries at or below the lowest sink offset.
func (s *Store) collect(ctx context.Context, tx pgx.Tx, h *spoolHead) error {
	b := &pgx.Batch{}
	var c collection
	queueCollect(b, 0, h, &c)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	return c.record(ctx, tx)
}

// spoolRow is the row of the sources table that keeps the spool's record
// of what it deleted (store.Snapshot.DeletedThrough) in its state, under
// deleted_through. No source is named so: a source name has no '@'.
const spoolRow = "@spool"

// spoolRowState is the state JSON of spoolRow.
type spoolRowState struct {
	DeletedThrough store.DeletedThrough `json:"deleted_through"`
}

// collection is what queueCollect found: the spool's record of what it
// deleted, and the first bytes of the entries it deleted now.
type collection struct {
	deleted store.DeletedThrough
	stored  bool // spoolRow exists
	heads   [][]byte
}

// queueReadDeleted queues in b the read of the spool's record of what it
// deleted into c, locking spoolRow when lock is set. Without the row (a
// store written before deletions were recorded), spool positions that
// show deleted entries read as deleted through now for every source.
func queueReadDeleted(b *pgx.Batch, lock bool, c *collection) {
	q := `SELECT (SELECT state FROM sources WHERE name = $1),
		(SELECT seq FROM spool_head) > 0 AND coalesce((SELECT min(pos) FROM spool), 0) <> 1, now()`
	if lock {
		// Every collection holds the spool head's lock already, so this
		// lock never waits for another collection.
		b.Queue(`SELECT 1 FROM sources WHERE name = $1 FOR UPDATE`, spoolRow)
	}
	b.Queue(q, spoolRow).QueryRow(func(row pgx.Row) error {
		var raw []byte
		var legacy bool
		var now time.Time
		if err := row.Scan(&raw, &legacy, &now); err != nil {
			return fmt.Errorf("read what the spool deleted: %w", err)
		}
		c.deleted = store.DeletedThrough{}
		switch {
		case raw != nil:
			c.stored = true
			var st spoolRowState
			if err := json.Unmarshal(raw, &st); err != nil {
				c.deleted[store.AnySource] = time.Unix(1<<40, 0).UTC() // damaged: cover nothing
			} else if st.DeletedThrough != nil {
				c.deleted = st.DeletedThrough
			}
		case legacy:
			c.deleted[store.AnySource] = now.UTC()
		}
		return nil
	})
}

// record merges the entries deleted into the spool's record of what it
// deleted.
func (c *collection) record(ctx context.Context, tx pgx.Tx) error {
	moved := false
	for _, h := range c.heads {
		moved = c.deleted.Add(h) || moved
	}
	if !moved && (c.stored || len(c.deleted) == 0) {
		return nil
	}
	j, err := json.Marshal(spoolRowState{DeletedThrough: c.deleted})
	if err != nil {
		return fmt.Errorf("encode what the spool deleted: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO sources (name, state) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET state = excluded.state`, spoolRow, j); err != nil {
		return fmt.Errorf("record what the spool deleted: %w", err)
	}
	return nil
}

// queueCollect queues in b the statements of collect, which leave the
// spool head in h and what they found in c once b is sent; c.record then
// records what they deleted. They take the head's lock first, so that
// collections (and appends) never interleave on the spool's rows, then
// delete the positions above low that every sink passed and count what
// they freed, in one statement.
//
// low is the lowest sink offset of any committed state (0 when unknown):
// every collection deletes all the positions at or below the lowest
// offset it sees, and positions only grow, so none is left at or below
// low. Starting the range there keeps the delete off the index entries of
// the rows deleted before, which stay until a vacuum.
func queueCollect(b *pgx.Batch, low int64, h *spoolHead, c *collection) {
	b.Queue(`SELECT seq, bytes, count FROM spool_head FOR UPDATE`).QueryRow(func(row pgx.Row) error {
		var seq, bytes, count int64
		if err := row.Scan(&seq, &bytes, &count); err != nil {
			return fmt.Errorf("lock the spool head: %w", err)
		}
		*h = spoolHead{uint64(seq), bytes, count}
		return nil
	})
	queueReadDeleted(b, true, c)
	b.Queue(`WITH d AS (DELETE FROM spool WHERE pos > $1 AND pos <= (SELECT min(off) FROM sinks)
				RETURNING length(rec) AS n, substring(rec for $2) AS head),
			f AS (SELECT coalesce(sum(n), 0) AS bytes, count(*) AS count, array_agg(head) AS heads FROM d),
			u AS (UPDATE spool_head h SET bytes = h.bytes - f.bytes, count = h.count - f.count FROM f WHERE f.count > 0
				RETURNING h.seq, h.bytes, h.count)
		SELECT u.seq, u.bytes, u.count, f.heads FROM u, f`, low, store.RecordHeadBytes).QueryRow(func(row pgx.Row) error {
		var seq, bytes, count int64
		err := row.Scan(&seq, &bytes, &count, &c.heads)
		if errors.Is(err, pgx.ErrNoRows) { // nothing was deleted
			return nil
		}
		if err != nil {
			return fmt.Errorf("delete acknowledged entries: %w", err)
		}
		*h = spoolHead{uint64(seq), bytes, count}
		return nil
	})
}

// spoolHead is the spool head as a transaction left it.
type spoolHead struct {
	seq          uint64
	bytes, count int64
}

// Offset returns a sink's offset.
func (s *Store) Offset(sink string) (uint64, error) {
	var off int64
	err := s.tx("read the offset of "+sink, func(ctx context.Context, tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT off FROM sinks WHERE name = $1`, sink).Scan(&off)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("sink %q is not registered", sink)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: offset of %s: %w", sink, err)
	}
	return uint64(off), nil
}

// readChunk is how many spool rows Read fetches at a time.
const readChunk = 1000

// Read returns the events after position after; see store.Store. Every
// position it can see was committed before any position above it was
// taken, so a later Read never finds an entry below last.
func (s *Store) Read(after uint64, max, maxBytes int, route func(source string) bool) (batch []event.Raw, last uint64, err error) {
	last = after
	ctx, cancel := context.WithTimeout(s.ctx, opTimeout)
	defer cancel()
	size := 0
	for {
		chunk := readChunk
		if route == nil {
			chunk = min(readChunk, max)
		}
		rows, err := s.pool.Query(ctx, `SELECT pos, rec FROM spool WHERE pos > $1 ORDER BY pos LIMIT $2`, int64(last), chunk)
		if err != nil {
			return nil, after, fmt.Errorf("store: read spool: %w", s.classify("read the spool", err))
		}
		n := 0
		full := false
		var pos int64
		var v []byte
		_, err = pgx.ForEachRow(rows, []any{&pos, &v}, func() error {
			n++
			if full {
				return nil
			}
			src, err := store.RecordSource(v)
			if err == nil && route != nil && !route(src) {
				last = uint64(pos)
				return nil
			}
			if len(batch) > 0 && size+len(v) > maxBytes {
				full = true
				return nil
			}
			var ev event.Raw
			if err == nil {
				ev, err = store.DecodeRecord(v)
			}
			if err != nil {
				if len(batch) > 0 {
					full = true
					return nil
				}
				return &store.CorruptError{Seq: uint64(pos), Record: append([]byte(nil), v...), Err: err}
			}
			batch = append(batch, ev)
			size += len(v)
			last = uint64(pos)
			if len(batch) >= max {
				full = true
			}
			return nil
		})
		if err != nil {
			var ce *store.CorruptError
			if errors.As(err, &ce) {
				return nil, after, fmt.Errorf("store: read spool: %w", err)
			}
			return nil, after, fmt.Errorf("store: read spool: %w", s.classify("read the spool", err))
		}
		if full || n < chunk {
			return batch, last, nil
		}
	}
}

// Ack advances a sink's offset and deletes what every sink has passed;
// see store.Store. When the store is fenced, the transaction also renews
// this replica's lease on the sink and fails with a *LeaseLostError when
// another replica took it.
func (s *Store) Ack(sink string, offset uint64, n int, now time.Time) error {
	return s.ack(sink, offset, n, 0, now)
}

// SkipCorrupt advances a sink's offset past an unreadable entry.
func (s *Store) SkipCorrupt(sink string, seq uint64, now time.Time) error {
	return s.ack(sink, seq, 0, 1, now)
}

func (s *Store) ack(sink string, offset uint64, n, corrupt int, now time.Time) error {
	var h spoolHead
	start := time.Now()
	// Four round trips: BEGIN; the lease and the sink's row; its new
	// offset and the collection; COMMIT.
	err := s.tx("ack "+sink, func(ctx context.Context, tx pgx.Tx) error {
		b := &pgx.Batch{}
		if err := s.queueRenew(b, kindSink, sink); err != nil {
			return err
		}
		var st store.SinkState
		var cur uint64
		queueReadSink(b, sink, &st, &cur)
		var low int64 // the lowest offset before this one moves
		b.Queue(`SELECT coalesce(min(off), 0) FROM sinks`).QueryRow(func(row pgx.Row) error {
			if err := row.Scan(&low); err != nil {
				return fmt.Errorf("lowest offset: %w", err)
			}
			return nil
		})
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if offset < cur {
			return fmt.Errorf("offset %d is behind the stored %d", offset, cur)
		}
		st.Acked(n, corrupt, now)
		b = &pgx.Batch{}
		if err := queueWriteSink(b, sink, offset, st); err != nil {
			return err
		}
		var c collection
		queueCollect(b, low, &h, &c)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		return c.record(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("store: ack %s: %w", sink, err)
	}
	s.touch(kindSink, sink, start)
	s.head(h.seq, h.bytes, h.count)
	return nil
}

func readSink(ctx context.Context, tx pgx.Tx, name string) (store.SinkState, uint64, error) {
	var st store.SinkState
	var off uint64
	b := &pgx.Batch{}
	queueReadSink(b, name, &st, &off)
	err := tx.SendBatch(ctx, b).Close()
	return st, off, err
}

// queueReadSink queues in b the read of a sink's state and offset, locking
// its row.
func queueReadSink(b *pgx.Batch, name string, st *store.SinkState, off *uint64) {
	b.Queue(`SELECT off, state FROM sinks WHERE name = $1 FOR UPDATE`, name).QueryRow(func(row pgx.Row) error {
		var o int64
		var raw []byte
		err := row.Scan(&o, &raw)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("sink %q is not registered", name)
		}
		if err != nil {
			return fmt.Errorf("read the state of %s: %w", name, err)
		}
		*st = store.SinkState{}
		_ = json.Unmarshal(raw, st)
		st.Name, *off = name, uint64(o)
		return nil
	})
}

func writeSink(ctx context.Context, tx pgx.Tx, name string, off uint64, st store.SinkState) error {
	b := &pgx.Batch{}
	if err := queueWriteSink(b, name, off, st); err != nil {
		return err
	}
	return tx.SendBatch(ctx, b).Close()
}

// queueWriteSink queues in b the write of a sink's state and offset.
func queueWriteSink(b *pgx.Batch, name string, off uint64, st store.SinkState) error {
	st.Offset, st.Backlog, st.Owner, st.LeaseExpires = 0, 0, "", time.Time{}
	j, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	queueExec(b, "store the offset of "+name, `UPDATE sinks SET off = $2, state = $3 WHERE name = $1`, name, int64(off), j)
	return nil
}

// RecordSinkError stores the last error of a sink for status output.
func (s *Store) RecordSinkError(sink, msg string, at time.Time) error {
	err := s.tx("record the error of "+sink, func(ctx context.Context, tx pgx.Tx) error {
		st, off, err := readSink(ctx, tx, sink)
		if err != nil {
			return err
		}
		st.LastError, st.LastErrorAt = msg, at.UTC()
		return writeSink(ctx, tx, sink, off, st)
	})
	if err != nil {
		return fmt.Errorf("store: record error of %s: %w", sink, err)
	}
	return nil
}

// Snapshot reads every source's and sink's state, with the owner and
// lease expiry of each, and the live replicas, in one snapshot of the
// database.
func (s *Store) Snapshot() (store.Snapshot, error) {
	var snap store.Snapshot
	ctx, cancel := context.WithTimeout(s.ctx, opTimeout)
	defer cancel()
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var seq int64
		if err := tx.QueryRow(ctx, `SELECT seq, bytes, count FROM spool_head`).Scan(&seq, &snap.SpoolBytes, &snap.SpoolCount); err != nil {
			return err
		}
		snap.LastSeq = uint64(seq)
		b := &pgx.Batch{}
		var c collection
		queueReadDeleted(b, false, &c)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if len(c.deleted) > 0 {
			snap.DeletedThrough = c.deleted
		}
		rows, err := tx.Query(ctx, `SELECT s.name, s.cursor, s.state, l.owner, l.expires_at FROM sources s
			LEFT JOIN leases l ON l.kind = 'source' AND l.name = s.name ORDER BY s.name COLLATE "C"`)
		if err != nil {
			return err
		}
		var name string
		var cur, raw []byte
		var owner *string
		var exp *time.Time
		if _, err := pgx.ForEachRow(rows, []any{&name, &cur, &raw, &owner, &exp}, func() error {
			if name == spoolRow {
				return nil
			}
			st := store.SourceState{}
			_ = json.Unmarshal(raw, &st)
			st.Name = name
			if len(cur) > 0 {
				st.Cursor = append([]byte(nil), cur...)
			}
			if owner != nil {
				st.Owner, st.LeaseExpires = *owner, exp.UTC()
			}
			snap.Sources = append(snap.Sources, st)
			return nil
		}); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT k.name, k.off, k.state, (SELECT count(*) FROM spool WHERE pos > k.off), l.owner, l.expires_at FROM sinks k
			LEFT JOIN leases l ON l.kind = 'sink' AND l.name = k.name ORDER BY k.name COLLATE "C"`)
		if err != nil {
			return err
		}
		var off, backlog int64
		if _, err := pgx.ForEachRow(rows, []any{&name, &off, &raw, &backlog, &owner, &exp}, func() error {
			st := store.SinkState{}
			_ = json.Unmarshal(raw, &st)
			st.Name, st.Offset, st.Backlog = name, uint64(off), uint64(backlog)
			if owner != nil {
				st.Owner, st.LeaseExpires = *owner, exp.UTC()
			}
			snap.Sinks = append(snap.Sinks, st)
			return nil
		}); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT id, seen_at FROM replicas WHERE expires_at > now() ORDER BY id COLLATE "C"`)
		if err != nil {
			return err
		}
		var r store.Replica
		_, err = pgx.ForEachRow(rows, []any{&r.ID, &r.LastSeen}, func() error {
			r.LastSeen = r.LastSeen.UTC()
			snap.Replicas = append(snap.Replicas, r)
			return nil
		})
		return err
	})
	if err != nil {
		return store.Snapshot{}, fmt.Errorf("store: snapshot: %w", s.classify("snapshot", err))
	}
	return snap, nil
}

// Store keeps the store contract.
var _ store.Store = (*Store)(nil)
