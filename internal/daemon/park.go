package daemon

import (
	"errors"
	"sync"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/park"
	"github.com/auditrelay/auditrelay/internal/store"
	"github.com/auditrelay/auditrelay/internal/store/postgres"
)

// keeperFor returns the keeper of a sink's parked events: its park file
// under data_dir, or, with store.postgres, the store's parked table (bound
// when Run opens the store), because a replica's data_dir may not outlive
// it.
func keeperFor(cfg *config.Config, sink string) park.Keeper {
	if cfg.Store.Postgres != nil {
		return &storeKeeper{sink: sink}
	}
	return park.New(ParkPath(cfg.DataDir, sink))
}

// ParkedIn says where a sink's parked events are kept, for status: its
// park file, or the PostgreSQL store's parked table.
func ParkedIn(cfg *config.Config, sink string) string {
	if cfg.Store.Postgres != nil {
		return "the PostgreSQL table parked (auditrelay store parked --sink " + sink + ")"
	}
	return ParkPath(cfg.DataDir, sink)
}

// storeKeeper keeps a sink's parked lines in the PostgreSQL store the
// daemon opened. Until the store is open it refuses them, and the sink
// retries its batch.
type storeKeeper struct {
	sink string
	mu   sync.Mutex
	k    park.Keeper
}

func (s *storeKeeper) bind(k park.Keeper) {
	s.mu.Lock()
	s.k = k
	s.mu.Unlock()
}

func (s *storeKeeper) get() (park.Keeper, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.k == nil {
		return nil, errors.New("park: the PostgreSQL store is not open; the batch is retried")
	}
	return s.k, nil
}

// Keep keeps ev in the store's parked table.
func (s *storeKeeper) Keep(ev *event.Raw, reason string) error {
	k, err := s.get()
	if err != nil {
		return err
	}
	return k.Keep(ev, reason)
}

// KeepRecord keeps an unreadable spool record in the store's parked table.
func (s *storeKeeper) KeepRecord(seq uint64, record []byte, reason string) error {
	k, err := s.get()
	if err != nil {
		return err
	}
	return k.KeepRecord(seq, record, reason)
}

// Where names the store's parked table.
func (s *storeKeeper) Where() string {
	if k, err := s.get(); err == nil {
		return k.Where()
	}
	return "the PostgreSQL table parked (sink " + s.sink + ")"
}

// bindKeepers points the sinks' store keepers at st while it is open; the
// returned function unbinds them.
func bindKeepers(sinks []Sink, st store.Store) (unbind func()) {
	pg, ok := st.(*postgres.Store)
	var bound []*storeKeeper
	for _, s := range sinks {
		if k, isStore := s.Park.(*storeKeeper); isStore && ok {
			k.bind(pg.Parker(s.Name))
			bound = append(bound, k)
		}
	}
	return func() {
		for _, k := range bound {
			k.bind(nil)
		}
	}
}
