package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// schemaVersion is the schema this code reads and writes. A database with
// a higher version was migrated by a newer auditrelay.
const schemaVersion = 2

// migration returns the statements taking the schema from version v to
// v+1.
func migration(v int) string {
	switch v {
	case 0:
		return schemaV1
	case 1:
		return schemaV2
	}
	return ""
}

// schemaV1 is the first schema.
const schemaV1 = `
-- The spool's head: the last position given out, and the size of the
-- spool. Its one row is locked from the moment an append takes positions
-- until it commits, so appends commit in the order of their positions.
CREATE TABLE spool_head (
	id    boolean PRIMARY KEY DEFAULT true CHECK (id),
	seq   bigint NOT NULL,
	bytes bigint NOT NULL,
	count bigint NOT NULL
);
INSERT INTO spool_head VALUES (true, 0, 0, 0);

-- One spooled event per row, in the record format of internal/store.
CREATE TABLE spool (
	pos bigint PRIMARY KEY,
	rec bytea NOT NULL
);

-- Per source: its cursor and its state as JSON (fingerprint, watermark,
-- counters, gaps, last error).
CREATE TABLE sources (
	name   text PRIMARY KEY,
	cursor bytea,
	state  jsonb NOT NULL
);

-- Per source, the ids of the events stored within its dedup horizon, by
-- event time (Unix ns) so that the ones behind the horizon go in one range.
CREATE TABLE source_ids (
	source text NOT NULL,
	t      bigint NOT NULL,
	id     text NOT NULL,
	PRIMARY KEY (source, t, id)
);

-- Per sink: its offset (the last position acknowledged or skipped) and its
-- state as JSON.
CREATE TABLE sinks (
	name  text PRIMARY KEY,
	off   bigint NOT NULL,
	state jsonb NOT NULL
);

-- Who runs which source and sink: the owner renews its lease in the
-- transaction that commits the work, and only while epoch is the one it
-- took; a takeover increments epoch, so a former owner can never commit.
CREATE TABLE leases (
	kind       text NOT NULL,
	name       text NOT NULL,
	owner      text NOT NULL,
	epoch      bigint NOT NULL,
	expires_at timestamptz NOT NULL,
	PRIMARY KEY (kind, name)
);

-- The live replicas, each renewing its row while it runs.
CREATE TABLE replicas (
	id         text PRIMARY KEY,
	started_at timestamptz NOT NULL,
	seen_at    timestamptz NOT NULL,
	expires_at timestamptz NOT NULL
);
`

// schemaV2 adds the parked table.
const schemaV2 = `
-- The events a sink can never send and the spool records that cannot be
-- decoded, each as the line a park file holds (see internal/park), kept
-- for the operator (auditrelay store parked): they outlive the replica
-- that parked them.
CREATE TABLE parked (
	id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	sink      text NOT NULL,
	parked_at timestamptz NOT NULL DEFAULT now(),
	line      bytea NOT NULL
);
CREATE INDEX parked_sink ON parked (sink, id);
`

// errNewerSchema says the database was migrated by a newer auditrelay.
var errNewerSchema = errors.New("the database was migrated by a newer auditrelay")

// errOlderSchema says a command that only reads met a database its
// replicas have not migrated to this version's schema yet.
var errOlderSchema = errors.New("the database's schema is older than this auditrelay's")

// migrate creates or upgrades the schema in one transaction, serialized
// between replicas starting at once by a transaction-scoped advisory lock
// (which works through a transaction-mode pooler too). Without allow it
// only checks that the schema is this version's.
func migrate(ctx context.Context, tx pgx.Tx, allow bool) error {
	if !allow {
		var v int
		err := tx.QueryRow(ctx, `SELECT coalesce((SELECT max(version) FROM schema_version), 0)`).Scan(&v)
		var pe *pgconn.PgError
		switch {
		case errors.As(err, &pe) && pe.Code == "42P01": // no schema_version table
			v = 0
		case err != nil:
			return fmt.Errorf("read schema_version: %w", err)
		}
		switch {
		case v > schemaVersion:
			return fmt.Errorf("%w (schema version %d, this version reads %d): use the auditrelay the replicas run", errNewerSchema, v, schemaVersion)
		case v == 0:
			return fmt.Errorf("%w: the database holds no auditrelay schema yet: start a replica (`auditrelay run`), which creates it", errOlderSchema)
		case v < schemaVersion:
			return fmt.Errorf("%w (schema version %d, this version reads %d): use the auditrelay the replicas run, or upgrade them (a replica of this version migrates the schema at its start)", errOlderSchema, v, schemaVersion)
		}
		return nil
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7166907512340981823)`); err != nil {
		return fmt.Errorf("lock the schema: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	var v int
	var rows int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0), count(*) FROM schema_version`).Scan(&v, &rows); err != nil {
		return fmt.Errorf("read schema_version: %w", err)
	}
	if v > schemaVersion {
		return fmt.Errorf("%w (schema version %d, this version reads %d): upgrade auditrelay on every replica, or point dsn at another database", errNewerSchema, v, schemaVersion)
	}
	for ; v < schemaVersion; v++ {
		if _, err := tx.Exec(ctx, migration(v)); err != nil {
			return fmt.Errorf("migrate the schema from version %d to %d: %w", v, v+1, err)
		}
	}
	if rows == 1 {
		_, err := tx.Exec(ctx, `UPDATE schema_version SET version = $1`, v)
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM schema_version`); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO schema_version VALUES ($1)`, v)
	return err
}
