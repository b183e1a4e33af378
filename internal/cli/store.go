package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/park"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/store"
	"github.com/auditrelay/auditrelay/internal/store/bolt"
	"github.com/auditrelay/auditrelay/internal/store/postgres"
)

const storeUsage = `usage:
  auditrelay store compact --config FILE
  auditrelay store parked --config FILE [--sink NAME]
  auditrelay store migrate --from DATA_DIR --to DSN   (or --config FILE for either)`

// cmdStore runs the `auditrelay store` commands.
func cmdStore(ctx context.Context, args []string, env Env) int {
	if len(args) > 0 {
		switch args[0] {
		case "compact":
			return storeCompact(args[1:], env)
		case "parked":
			return storeParked(ctx, args[1:], env)
		case "migrate":
			return storeMigrate(ctx, args[1:], env)
		}
	}
	fmt.Fprintln(env.Stderr, storeUsage)
	return exitUsage
}

// storeCompact runs `auditrelay store compact`: the store file rewritten
// without its free pages, with the daemon stopped.
func storeCompact(args []string, env Env) int {
	fs := newFlags("store compact", env)
	path := fs.String("config", "", "configuration `FILE`")
	if fs.Parse(args) != nil {
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

// storeParked runs `auditrelay store parked`: every parked event (and
// unreadable spool record) as one NDJSON line with its sink, from the park
// files under data_dir or, with store.postgres, the parked table. It works
// while the daemon runs.
func storeParked(ctx context.Context, args []string, env Env) int {
	fs := newFlags("store parked", env)
	path := fs.String("config", "", "configuration `FILE`")
	sink := fs.String("sink", "", "list only the parked events of sink `NAME`")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	cfg, ok := loadConfigWith(config.LoadWithoutSecrets, *path, env)
	if !ok {
		return exitUsage
	}
	out := bufio.NewWriter(env.Stdout)
	var buf []byte
	emit := func(e park.Entry) error {
		buf = e.AppendJSON(buf[:0])
		_, err := out.Write(buf)
		return err
	}
	var err error
	if pg := cfg.Store.Postgres; pg != nil {
		var st *postgres.Store
		if st, err = postgres.Open(ctx, *pg, postgres.Options{ReadOnly: true}); err == nil {
			err = st.Parked(*sink, emit)
			st.Close()
		}
	} else {
		err = park.ReadFiles(cfg.DataDir, *sink, emit)
	}
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// storeMigrate runs `auditrelay store migrate`: the state of the embedded
// store in DATA_DIR, and its park files, copied into an empty PostgreSQL
// store in one transaction, with the daemon stopped, so that replicas
// started on PostgreSQL resume where it stopped and send nothing again.
func storeMigrate(ctx context.Context, args []string, env Env) int {
	fs := newFlags("store migrate", env)
	from := fs.String("from", "", "the `DATA_DIR` of the embedded store (default: data_dir of --config)")
	to := fs.String("to", "", "the PostgreSQL `DSN` to migrate into (default: store.postgres.dsn of --config); it must hold no store yet")
	path := fs.String("config", "", "configuration `FILE` to take --from and --to from")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	pg := postgres.Config{ReplicaID: "auditrelay-store-migrate"}
	if *to != "" {
		pg.DSN = secret.New(*to)
	}
	dataDir := *from
	if *path != "" {
		cfg, ok := loadConfigWith(config.LoadWithoutSecrets, *path, env)
		if !ok {
			return exitUsage
		}
		if dataDir == "" {
			dataDir = cfg.DataDir
		}
		if pg.DSN.IsZero() && cfg.Store.Postgres != nil {
			pg.DSN = cfg.Store.Postgres.DSN
		}
	}
	if dataDir == "" || pg.DSN.IsZero() {
		fmt.Fprintf(env.Stderr, "auditrelay: store migrate needs --from DATA_DIR and --to DSN (or a --config FILE with data_dir and store.postgres)\n%s\n", storeUsage)
		return exitUsage
	}
	if _, err := postgres.ParseDSN(pg.DSN); err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay: store migrate: --to: %v\n", err)
		return exitUsage
	}
	src, err := bolt.Open(dataDir, bolt.Options{ReadOnly: true})
	if err != nil {
		if errors.Is(err, bolt.ErrLocked) {
			fmt.Fprintf(env.Stderr, "auditrelay: store migrate needs the daemon stopped: %v\n", err)
		} else {
			fmt.Fprintf(env.Stderr, "auditrelay: store migrate: %v\n", err)
		}
		return exitFailure
	}
	defer src.Close()
	dst, err := postgres.Open(ctx, pg, postgres.Options{})
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay: store migrate: %v\n", err)
		return exitFailure
	}
	defer dst.Close()
	var res postgres.ImportResult
	var ierr error
	err = src.Export(func(ex *store.Export) error {
		res, ierr = dst.Import(ex, func(fn func(park.Entry) error) error { return park.ReadFiles(dataDir, "", fn) })
		return ierr
	})
	if ierr != nil {
		err = ierr
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay: store migrate: nothing was written: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(env.Stdout, "migrated %s into %s: %d sources (%d dedup ids), %d sinks, %d spool entries (positions up to %d), %d parked lines. Set store.postgres in the configuration and start the replicas; keep %s until they run.\n",
		src.Path(), dst.Where(), res.Sources, res.IDs, res.Sinks, res.Entries, res.LastSeq, res.Parked, dataDir)
	return exitOK
}
