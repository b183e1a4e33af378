package daemon

import (
	"context"
	"time"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/store"
	"github.com/auditrelay/auditrelay/internal/store/bolt"
	"github.com/auditrelay/auditrelay/internal/store/postgres"
)

// openStore opens the configured store and says where it is, for the log:
// the bbolt file in data_dir, or PostgreSQL with store.postgres, whose
// transient failures (the database is down or unreachable) are retried
// until ctx is done.
func (d *Daemon) openStore(ctx context.Context) (store.Store, string, error) {
	if pg := d.cfg.Store.Postgres; pg != nil {
		backoff := delivery.Backoff{Base: time.Second, Max: 30 * time.Second}
		for attempt := 1; ; attempt++ {
			st, err := postgres.Open(ctx, *pg, postgres.Options{Logger: d.log, Fenced: true})
			if err == nil {
				return st, st.Where(), nil
			}
			if c, _ := delivery.ClassOf(err); c == delivery.Permanent || ctx.Err() != nil {
				return nil, "", err
			}
			wait := backoff.Delay(attempt)
			d.log.Warn("cannot reach the PostgreSQL store; retrying", "err", err, "attempt", attempt, "delay", wait)
			if !delivery.Sleep(ctx, wait) {
				return nil, "", err
			}
		}
	}
	st, err := bolt.Open(d.cfg.DataDir, bolt.Options{})
	if err != nil {
		return nil, "", err
	}
	if res, err := st.Compacted(); err != nil {
		d.log.Warn("store not compacted; it keeps its size", "err", err)
	} else if res.Before > 0 {
		d.log.Info("store compacted", "before_bytes", res.Before, "after_bytes", res.After)
	}
	return st, st.Path(), nil
}
