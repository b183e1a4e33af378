package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/auditrelay/auditrelay/internal/store/postgres/pgtest"
)

// envBenchDSN names the variable that may hold the DSN of the PostgreSQL
// server -store postgres measures on. It is read from the environment, not
// a flag, so that a password never shows in a process list; bench never
// prints it.
const envBenchDSN = "AUDITRELAY_BENCH_POSTGRES_DSN"

// childDSNVar is the child's variable holding its database's DSN, which
// its configuration references as ${env:…}.
const childDSNVar = "BENCH_POSTGRES_DSN"

// pgStore is the PostgreSQL server the children keep their state in, one
// new database per child.
type pgStore struct {
	srv *pgtest.Server
	// started is set when bench started the cluster itself.
	started bool
}

// openStore returns the store the children use: nil for bbolt in their
// data_dir, or a PostgreSQL server: the one $AUDITRELAY_BENCH_POSTGRES_DSN
// names (its user must be allowed to create databases), else a throwaway
// cluster started here with fsync and synchronous_commit on.
func openStore(kind string) (*pgStore, error) {
	switch kind {
	case "bolt":
		return nil, nil
	case "postgres":
	default:
		return nil, fmt.Errorf("-store %q: want bolt or postgres", kind)
	}
	if dsn := os.Getenv(envBenchDSN); dsn != "" {
		return &pgStore{srv: &pgtest.Server{DSN: dsn}}, nil
	}
	srv, err := pgtest.StartCluster(pgtest.Options{Durable: true})
	if err != nil {
		return nil, fmt.Errorf("start a PostgreSQL cluster for -store postgres (or set %s to a server's DSN): %w", envBenchDSN, err)
	}
	return &pgStore{srv: srv, started: true}, nil
}

// describe says which store the children use, without any DSN.
func (p *pgStore) describe() string {
	switch {
	case p == nil:
		return "bolt (in the run's data_dir, fsync on)"
	case p.started:
		return "postgres (throwaway local cluster, unix socket, fsync and synchronous_commit on)"
	default:
		return "postgres (the server $" + envBenchDSN + " names, as it is configured)"
	}
}

// close stops a cluster started here.
func (p *pgStore) close() {
	if p != nil && p.started {
		p.srv.Close()
	}
}

// newDatabase creates an empty database for one child and returns its
// DSN and the function that drops it.
func (p *pgStore) newDatabase(ctx context.Context) (string, func(), error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	dsn, drop, err := p.srv.CreateDatabase(cctx, "auditrelay_bench")
	if err != nil {
		return "", nil, fmt.Errorf("store postgres: %w", err)
	}
	return dsn, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := drop(ctx); err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(os.Stderr, "bench: store postgres: %v\n", err)
		}
	}, nil
}
