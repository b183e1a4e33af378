package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/auditrelay/auditrelay/internal/park"
	"github.com/auditrelay/auditrelay/internal/store"
)

// ErrNotEmpty is returned by Import when the database already holds a
// store's state.
var ErrNotEmpty = errors.New("the PostgreSQL store is not empty")

// ImportResult counts what Import wrote.
type ImportResult struct {
	Sources, IDs, Sinks, Entries, Parked int
	// LastSeq is the spool position the store continues after.
	LastSeq uint64
}

// importChunk is how many spool rows Import copies per COPY.
const importChunk = 5000

// importTimeout bounds an Import, which copies a whole spool in one
// transaction.
const importTimeout = time.Hour

// Import writes ex, and the parked lines parked lists (nil for none), into
// an empty store in one transaction: the sources' cursors, states and
// dedup ids, the sinks' offsets and states, the spool at its positions and
// the spool head after them, so that replicas started on it resume where
// the exported store stopped. It refuses (with ErrNotEmpty) a store that
// already holds sources, sinks, spool entries or parked lines, or that a
// replica is running on.
func (s *Store) Import(ex *store.Export, parked func(fn func(park.Entry) error) error) (ImportResult, error) {
	var res ImportResult
	ctx, cancel := context.WithTimeout(s.ctx, importTimeout)
	defer cancel()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		res = ImportResult{}
		if err := checkEmpty(ctx, tx); err != nil {
			return err
		}
		for _, src := range ex.Sources {
			if err := writeSource(ctx, tx, src.State.Name, src.State.Cursor, src.State); err != nil {
				return err
			}
			res.Sources++
			if len(src.IDs) > 0 {
				rows := make([][]any, len(src.IDs))
				for i, id := range src.IDs {
					rows[i] = []any{src.State.Name, id.Time, id.ID}
				}
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{"source_ids"}, []string{"source", "t", "id"}, pgx.CopyFromRows(rows)); err != nil {
					return fmt.Errorf("store the dedup ids of %s: %w", src.State.Name, err)
				}
				res.IDs += len(rows)
			}
		}
		if len(ex.DeletedThrough) > 0 {
			c := collection{deleted: ex.DeletedThrough}
			if err := c.record(ctx, tx); err != nil {
				return err
			}
		}
		for _, k := range ex.Sinks {
			if _, err := tx.Exec(ctx, `INSERT INTO sinks (name, off, state) VALUES ($1, 0, '{}')`, k.Name); err != nil {
				return fmt.Errorf("add sink %s: %w", k.Name, err)
			}
			if err := writeSink(ctx, tx, k.Name, k.Offset, k); err != nil {
				return err
			}
			res.Sinks++
		}
		var bytes int64
		var rows [][]any
		flush := func() error {
			if len(rows) == 0 {
				return nil
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"spool"}, []string{"pos", "rec"}, pgx.CopyFromRows(rows)); err != nil {
				return fmt.Errorf("spool the events: %w", err)
			}
			rows = rows[:0]
			return nil
		}
		if ex.Spool != nil {
			if err := ex.Spool(func(seq uint64, rec []byte) error {
				if seq > ex.LastSeq {
					return fmt.Errorf("spool entry %d is past the last position given out, %d: the exported store is inconsistent", seq, ex.LastSeq)
				}
				rows = append(rows, []any{int64(seq), append([]byte(nil), rec...)})
				bytes += int64(len(rec))
				res.Entries++
				if len(rows) == importChunk {
					return flush()
				}
				return nil
			}); err != nil {
				return err
			}
		}
		if err := flush(); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE spool_head SET seq = $1, bytes = $2, count = $3`, int64(ex.LastSeq), bytes, res.Entries); err != nil {
			return fmt.Errorf("set the spool head: %w", err)
		}
		res.LastSeq = ex.LastSeq
		if parked != nil {
			if err := parked(func(e park.Entry) error {
				at := e.ParkedAt
				if at.IsZero() {
					at = time.Now()
				}
				if _, err := tx.Exec(ctx, `INSERT INTO parked (sink, parked_at, line) VALUES ($1, $2, $3)`, e.Sink, at, e.Line); err != nil {
					return fmt.Errorf("keep a parked line of %s: %w", e.Sink, err)
				}
				res.Parked++
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrNotEmpty) {
			return ImportResult{}, fmt.Errorf("store: import: %w", err)
		}
		return ImportResult{}, fmt.Errorf("store: import: %w", s.classify("import", err))
	}
	if err := s.refresh(ctx); err != nil {
		return res, fmt.Errorf("store: read the spool head: %w", s.classify("read the spool head", err))
	}
	return res, nil
}

// checkEmpty locks the spool head and fails with ErrNotEmpty, saying what
// the store holds, unless it holds nothing and no replica runs on it.
func checkEmpty(ctx context.Context, tx pgx.Tx) error {
	var seq int64
	if err := tx.QueryRow(ctx, `SELECT seq FROM spool_head FOR UPDATE`).Scan(&seq); err != nil {
		return fmt.Errorf("lock the spool head: %w", err)
	}
	var sources, sinks, entries, parked, replicas int64
	if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM sources WHERE name <> $1), (SELECT count(*) FROM sinks), (SELECT count(*) FROM spool),
		(SELECT count(*) FROM parked), (SELECT count(*) FROM replicas WHERE expires_at > now())`, spoolRow).Scan(&sources, &sinks, &entries, &parked, &replicas); err != nil {
		return fmt.Errorf("check that the store is empty: %w", err)
	}
	if replicas > 0 {
		return fmt.Errorf("%w: %d replica(s) of auditrelay run on it: stop them, and migrate only into a new database or schema", ErrNotEmpty, replicas)
	}
	var held []string
	for _, c := range []struct {
		n    int64
		what string
	}{{sources, "sources"}, {sinks, "sinks"}, {entries, "spool entries"}, {parked, "parked lines"}} {
		if c.n > 0 {
			held = append(held, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	if seq > 0 && entries == 0 {
		held = append(held, fmt.Sprintf("spool positions up to %d", seq))
	}
	if len(held) > 0 {
		return fmt.Errorf("%w: it holds %s: migrate only into an empty database or schema (a new database, or options=-csearch_path=NEW_SCHEMA in the DSN), never over a store in use", ErrNotEmpty, strings.Join(held, ", "))
	}
	return nil
}
