package daemon

import (
	"github.com/auditrelay/auditrelay/internal/store"
	"github.com/auditrelay/auditrelay/internal/store/bolt"
)

// openStore opens the configured store and says where it is, for the log.
func (d *Daemon) openStore() (store.Store, string, error) {
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
