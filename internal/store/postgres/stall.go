package postgres

import "context"

// endStalledCopies ends the sessions of the store's database that have
// been waiting for their client in the middle of a COPY for a third of
// lease_ttl: a replica paused (SIGSTOP, a frozen VM) while it streamed a
// page's rows. Its transaction holds the spool head's row lock and its
// lease rows, and the server does not count a session in COPY as idle, so
// idle_in_transaction_session_timeout never ends it (and a
// statement_timeout would end legitimate long statements too). A
// healthy replica streams a page in milliseconds; the one ended here
// commits nothing, and retries when it runs again. Ending another
// session needs the same database role (or pg_signal_backend); without
// it, nothing is ended and the error is only logged at debug level.
func (s *Store) endStalledCopies(ctx context.Context) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'
			AND wait_event_type = 'Client' AND wait_event = 'ClientRead' AND query ILIKE 'copy %'
			AND state_change < now() - $1 * interval '1 millisecond'`, (s.ttl / 3).Milliseconds()).Scan(&n)
	if err != nil {
		s.log.Debug("store: cannot look for sessions stalled in a COPY", "err", s.scrub(err.Error()))
		return
	}
	if n > 0 {
		s.log.Warn("store: ended a transaction stalled in the middle of a COPY for longer than a third of lease_ttl (a replica paused while it wrote); it committed nothing", "sessions", n)
	}
}
