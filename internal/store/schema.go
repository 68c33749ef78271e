package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are the schema, one step per version: step i takes a file from
// version i to version i+1, and the file's version is PRAGMA user_version.
// Steps are only ever appended; an applied step is never edited, because
// files in the field already carry it.
//
// Conventions: timestamps are INTEGER unix nanoseconds in UTC, 0 meaning
// "not yet"; lists and maps are JSON text.
var migrations = []string{
	// 1: deliveries, jobs and their transitions, runners, decisions.
	`
CREATE TABLE deliveries (
	guid        TEXT PRIMARY KEY,
	event       TEXT NOT NULL,
	action      TEXT NOT NULL DEFAULT '',
	hook_id     INTEGER NOT NULL DEFAULT 0,
	received_at INTEGER NOT NULL,
	outcome     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX deliveries_received_at ON deliveries(received_at);

CREATE TABLE jobs (
	id                INTEGER PRIMARY KEY,
	run_id            INTEGER NOT NULL DEFAULT 0,
	repo_id           INTEGER NOT NULL DEFAULT 0,
	repo              TEXT NOT NULL DEFAULT '',
	org               TEXT NOT NULL DEFAULT '',
	installation_id   INTEGER NOT NULL DEFAULT 0,
	labels            TEXT NOT NULL DEFAULT '[]',
	name              TEXT NOT NULL DEFAULT '',
	workflow_name     TEXT NOT NULL DEFAULT '',
	status            TEXT NOT NULL,
	conclusion        TEXT NOT NULL DEFAULT '',
	runner_id         INTEGER NOT NULL DEFAULT 0,
	runner_name       TEXT NOT NULL DEFAULT '',
	runner_group_id   INTEGER NOT NULL DEFAULT 0,
	runner_group_name TEXT NOT NULL DEFAULT '',
	pool              TEXT NOT NULL DEFAULT '',
	waiting_at        INTEGER NOT NULL DEFAULT 0,
	queued_at         INTEGER NOT NULL DEFAULT 0,
	in_progress_at    INTEGER NOT NULL DEFAULT 0,
	completed_at      INTEGER NOT NULL DEFAULT 0,
	updated_at        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_status ON jobs(status, id);
CREATE INDEX jobs_completed_at ON jobs(completed_at) WHERE status = 'completed';

-- One row per (job, action) ever applied: the idempotence key. No foreign
-- key to jobs: the transition is inserted first (its conflict is what says
-- "seen already"), and Prune deletes a job's transitions with the job.
CREATE TABLE job_transitions (
	job_id        INTEGER NOT NULL,
	action        TEXT NOT NULL,
	delivery_guid TEXT NOT NULL,
	at            INTEGER NOT NULL,
	PRIMARY KEY (job_id, action)
) WITHOUT ROWID;

CREATE TABLE runners (
	name        TEXT PRIMARY KEY,
	pool        TEXT NOT NULL DEFAULT '',
	github_id   INTEGER NOT NULL DEFAULT 0,
	scope       TEXT NOT NULL DEFAULT '',
	provisioner TEXT NOT NULL DEFAULT '',
	instance_id TEXT NOT NULL DEFAULT '',
	state       TEXT NOT NULL DEFAULT '',
	job_id      INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL DEFAULT 0,
	updated_at  INTEGER NOT NULL DEFAULT 0,
	state_since TEXT NOT NULL DEFAULT '{}',
	last_error  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runners_pool ON runners(pool, name);

CREATE TABLE decisions (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	at     INTEGER NOT NULL,
	pool   TEXT NOT NULL DEFAULT '',
	action TEXT NOT NULL DEFAULT '',
	count  INTEGER NOT NULL DEFAULT 0,
	reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX decisions_at ON decisions(at);
`,
	// 2: jobs by the runner that took them (the engine and the reaper ask
	// whether a runner has a job).
	`
CREATE INDEX jobs_runner_name ON jobs(runner_name) WHERE runner_name != '';
`,
	// 3: small named values that must survive a restart (the redelivery
	// watermark).
	`
CREATE TABLE cursors (
	name       TEXT PRIMARY KEY,
	value      TEXT NOT NULL,
	updated_at INTEGER NOT NULL
);
`,
}

// latestVersion is the schema version this binary writes.
func latestVersion() int { return len(migrations) }

// migrate brings the file on conn up to len(steps), one transaction per step
// (BEGIN IMMEDIATE, so two processes opening the same new file do not both
// apply a step). It returns the version found and the version left. A file
// newer than len(steps) is refused with ErrNewerSchema.
func migrate(ctx context.Context, conn *sql.Conn, path string, steps []string) (from, to int, err error) {
	from, err = userVersion(ctx, conn)
	if err != nil {
		return 0, 0, err
	}
	if from > len(steps) {
		return from, from, fmt.Errorf("%w: %s has schema version %d but this binary knows versions up to %d; "+
			"run a Runnerscaler release at least as new as the one that wrote the file, or point store.path at another file",
			ErrNewerSchema, path, from, len(steps))
	}
	to = from
	for to < len(steps) {
		next, err := migrateStep(ctx, conn, steps)
		if err != nil {
			return from, to, err
		}
		to = next
	}
	return from, to, nil
}

// migrateStep applies the step after the file's current version in one
// transaction and returns the new version.
func migrateStep(ctx context.Context, conn *sql.Conn, steps []string) (v int, err error) {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return 0, fmt.Errorf("begin migration: %w", err)
	}
	defer func() {
		if err != nil {
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	// Read the version again under the write lock: another process may have
	// migrated the file since we looked.
	v, err = userVersion(ctx, conn)
	if err != nil {
		return 0, err
	}
	if v > len(steps) {
		return 0, fmt.Errorf("%w: schema version %d appeared while migrating, this binary knows up to %d",
			ErrNewerSchema, v, len(steps))
	}
	if v == len(steps) {
		_, err = conn.ExecContext(ctx, "COMMIT")
		return v, err
	}
	if _, err = conn.ExecContext(ctx, steps[v]); err != nil {
		return 0, fmt.Errorf("migrate schema %d to %d: %w", v, v+1, err)
	}
	// PRAGMA takes no bind parameters; v+1 is an int we computed.
	if _, err = conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
		return 0, fmt.Errorf("migrate schema %d to %d: set version: %w", v, v+1, err)
	}
	if _, err = conn.ExecContext(ctx, "COMMIT"); err != nil {
		return 0, fmt.Errorf("migrate schema %d to %d: commit: %w", v, v+1, err)
	}
	return v + 1, nil
}

func userVersion(ctx context.Context, conn *sql.Conn) (int, error) {
	var v int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}
