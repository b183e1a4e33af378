package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/park"
)

// Parker returns the keeper of a sink's parked events and unreadable spool
// records: rows of the parked table, each holding the line a park file
// would (park.EventLine, park.RecordLine). Each line is committed on its own
// before Keep returns, as durable as a page of events. Parking is not
// fenced: a line kept twice by two replicas is a harmless repeat.
func (s *Store) Parker(sink string) park.Keeper { return &parker{s: s, sink: sink} }

type parker struct {
	s    *Store
	sink string
}

func (p *parker) Keep(ev *event.Raw, reason string) error {
	return p.put(park.EventLine(ev, reason))
}

func (p *parker) KeepRecord(seq uint64, record []byte, reason string) error {
	return p.put(park.RecordLine(seq, record, reason))
}

func (p *parker) Where() string { return "the PostgreSQL table parked (sink " + p.sink + ")" }

func (p *parker) put(line []byte) error {
	ctx, cancel := context.WithTimeout(p.s.ctx, opTimeout)
	defer cancel()
	if _, err := p.s.pool.Exec(ctx, `INSERT INTO parked (sink, line) VALUES ($1, $2)`, p.sink, trimNewline(line)); err != nil {
		return fmt.Errorf("park: %w", p.s.classify("keep a parked line of "+p.sink, err))
	}
	return nil
}

func trimNewline(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		return line[:n-1]
	}
	return line
}

// Parked calls fn with every parked line of the named sink, or of every
// sink when sink is empty: sink by sink in name order, each oldest first.
func (s *Store) Parked(sink string, fn func(park.Entry) error) error {
	ctx, cancel := context.WithTimeout(s.ctx, opTimeout)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT sink, parked_at, line FROM parked WHERE $1 = '' OR sink = $1 ORDER BY sink COLLATE "C", id`, sink)
	if err != nil {
		return fmt.Errorf("store: list parked events: %w", s.classify("list parked events", err))
	}
	var e park.Entry
	var at time.Time
	if _, err := pgx.ForEachRow(rows, []any{&e.Sink, &at, &e.Line}, func() error {
		e.ParkedAt = at.UTC()
		return fn(e)
	}); err != nil {
		return fmt.Errorf("store: list parked events: %w", s.classify("list parked events", err))
	}
	return nil
}
