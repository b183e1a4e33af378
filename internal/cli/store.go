package cli

import (
	"errors"
	"fmt"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/store/bolt"
)

// cmdStore runs `auditrelay store compact`: the store file rewritten
// without its free pages, with the daemon stopped.
func cmdStore(args []string, env Env) int {
	if len(args) == 0 || args[0] != "compact" {
		fmt.Fprintln(env.Stderr, "usage: auditrelay store compact --config FILE")
		return exitUsage
	}
	fs := newFlags("store compact", env)
	path := fs.String("config", "", "configuration `FILE`")
	if fs.Parse(args[1:]) != nil {
		return exitUsage
	}
	cfg, ok := loadConfigWith(config.LoadWithoutSecrets, *path, env) // the store only: no secret needed
	if !ok {
		return exitUsage
	}
	st, err := bolt.Open(cfg.DataDir, bolt.Options{CompactFree: -1})
	if err != nil {
		if errors.Is(err, bolt.ErrLocked) {
			fmt.Fprintf(env.Stderr, "auditrelay: store compact needs the daemon stopped: %v\n", err)
		} else {
			fmt.Fprintf(env.Stderr, "auditrelay: %v\n", err)
		}
		return exitFailure
	}
	res, err := st.Compact()
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(env.Stdout, "%s compacted: %d bytes, was %d\n", st.Path(), res.After, res.Before)
	return exitOK
}
