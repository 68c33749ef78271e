// Package store is Runnerscaler's durable state: one SQLite file (pure-Go
// modernc.org/sqlite, WAL) holding webhook deliveries, jobs and their
// transitions, runners, and the scaler's decisions. Writes from concurrent
// callers share commits (group commit), and a call returns only once its
// transaction is durable.
//
// The schema is versioned in code (migrations, PRAGMA user_version) and
// brought up to date by Open; a file written by a newer binary is refused
// with ErrNewerSchema. Jobs follow a forward-only state machine (see
// applyJobEvent) that tolerates out-of-order and repeated webhooks.
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver (pure Go, no cgo)
)

// ErrNewerSchema means the file was written by a newer Runnerscaler.
var ErrNewerSchema = errors.New("store schema is newer than this binary")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("store is closed")

// Sync modes (config store.sync).
const (
	SyncNormal = "normal" // survives a process crash (SIGKILL); WAL synchronous=NORMAL
	SyncFull   = "full"   // also survives power loss; synchronous=FULL
)

// Options configures Open.
type Options struct {
	Sync      string        // SyncNormal (default) or SyncFull
	Retention time.Duration // completed jobs, deliveries, decisions older than this are pruned; default 7 days
	MaxBatch  int           // most writes sharing one commit; default 256
	Clock     func() time.Time
	Logger    *zap.Logger
}

// Delivery is one webhook delivery as received.
type Delivery struct {
	GUID       string // X-GitHub-Delivery
	Event      string // X-GitHub-Event
	Action     string
	HookID     int64
	ReceivedAt time.Time
	Outcome    string // what the intake did: "job", "ping", "ignored", "installation"
}

// Job actions and statuses, in the order a job moves through them.
const (
	JobWaiting    = "waiting"
	JobQueued     = "queued"
	JobInProgress = "in_progress"
	JobCompleted  = "completed"
)

// JobEvent is one workflow_job transition as a webhook (or reconciliation)
// reports it.
type JobEvent struct {
	Action          string // waiting, queued, in_progress, completed
	JobID           int64
	RunID           int64
	RepoID          int64
	Repo            string // full name
	Org             string // owner login
	InstallationID  int64
	Labels          []string
	Name            string
	WorkflowName    string
	Conclusion      string
	RunnerID        int64
	RunnerName      string
	RunnerGroupID   int64
	RunnerGroupName string
	At              time.Time // when GitHub says it happened (created_at, started_at, completed_at)
}

// Job is what the store knows of a job.
type Job struct {
	ID              int64
	RunID           int64
	RepoID          int64
	Repo            string
	Org             string
	InstallationID  int64
	Labels          []string
	Name            string
	WorkflowName    string
	Status          string
	Conclusion      string
	RunnerID        int64
	RunnerName      string
	RunnerGroupID   int64
	RunnerGroupName string
	Pool            string // matched pool; "" until the scaler matches it
	WaitingAt       time.Time
	QueuedAt        time.Time
	InProgressAt    time.Time
	CompletedAt     time.Time
	UpdatedAt       time.Time
}

// IngestResult says what Ingest did.
type IngestResult struct {
	Duplicate bool // the delivery GUID was known: nothing changed
	Applied   bool // the job transition was new (not seen for this job and action)
	Job       Job  // the job after the transition (zero without a job event)
}

// Runner is one of our runners.
type Runner struct {
	Name        string // our runner name, unique
	Pool        string
	GitHubID    int64
	Scope       string
	Provisioner string
	InstanceID  string
	State       string // starting, idle, busy, draining, removed, failed
	JobID       int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// StateSince maps each state the runner entered to when it entered it.
	StateSince map[string]time.Time
	LastError  string
}

// Decision is one scaler decision, kept for `scaler status` and audits.
type Decision struct {
	At     time.Time
	Pool   string
	Action string // e.g. create, drain, delete
	Count  int
	Reason string
}

// JobFilter selects jobs; zero values mean any.
type JobFilter struct {
	Status string
	// Statuses selects jobs in any of these states (with Status, if set).
	// One query reads them all at one point in time: two queries could see
	// a job in both states, between its transitions.
	Statuses []string
	Pool     string
	// Runner selects the jobs a runner (by name) took.
	Runner string
	Limit  int
}

// ErrNotFound is returned by writes that address a row that does not exist.
var ErrNotFound = errors.New("store: not found")

// Defaults for Options.
const (
	DefaultRetention = 7 * 24 * time.Hour
	DefaultMaxBatch  = 256
	// decisionCap is how many decisions are kept (the newest).
	defaultDecisionCap = 10000
	// pruneChunk bounds the rows one Prune transaction deletes per table,
	// so a large prune never holds the writer (and the webhooks waiting on
	// it) for long: Prune loops, sharing commits with other writes.
	defaultPruneChunk = 2000
	busyTimeoutMS     = 10000
)

// Store is an open state file. Safe for concurrent use.
//
// Writes (Ingest, SetJobPool, PutRunner, AddDecision, Prune) go through one
// writer goroutine that batches concurrent writes into shared transactions
// (see write and Stats); reads use a separate pool of read-only connections,
// which WAL lets run alongside the writer. A write is visible to every read
// that starts after the write's call returned.
type Store struct {
	path        string
	clock       func() time.Time
	log         *zap.Logger
	retention   time.Duration
	maxBatch    int
	decisionCap int
	pruneChunk  int
	hooks       testHooks
	version     int

	wdb                *sql.DB // one read-write connection, owned by the writer goroutine
	rdb                *sql.DB // read-only connections
	rJob, rHasDelivery *sql.Stmt

	reqs       chan *writeReq
	quit       chan struct{} // closed by Close
	writerDone chan struct{} // closed when the writer goroutine has ended
	closeOnce  sync.Once
	closeErr   error
	stats      writerStats
}

// testHooks let tests steer the writer; all zero in production.
type testHooks struct {
	beforeBatch func(n int)            // called by the writer with each batch's size, before BEGIN
	failWrite   func(key string) error // called after each write's fn, inside its savepoint; an error fails that write
	decisionCap int
	pruneChunk  int
}

// Open opens (creating if needed) the store at path and applies migrations.
//
// Durability. The file is in WAL mode. Options.Sync picks PRAGMA
// synchronous:
//   - "normal" (default): synchronous=NORMAL. A COMMIT appends the
//     transaction's pages to the -wal file with write(2) before it returns;
//     the WAL is fsynced only at checkpoints. Once Ingest returns, the write
//     is in the operating system's page cache, so it survives the process
//     crashing or being SIGKILLed (the next Open replays the WAL); a kernel
//     panic or power loss can lose the last commits.
//   - "full": synchronous=FULL. Each COMMIT also fsyncs the WAL before it
//     returns, so acknowledged writes survive power loss too. Group commit
//     shares that fsync among all writes of a batch.
//
// Each connection also gets busy_timeout (so a checkpoint or another
// process holding a lock makes callers wait, not fail) and foreign_keys=ON.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	return open(ctx, path, opts, testHooks{})
}

func open(ctx context.Context, path string, opts Options, hooks testHooks) (_ *Store, err error) {
	if path == "" {
		return nil, errors.New("store: empty path: set store.path to the SQLite file that keeps state")
	}
	if strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("store: path %q: use a plain file path without '?', '#' or a file: prefix", path)
	}
	var synchronous string
	switch strings.ToLower(opts.Sync) {
	case "", SyncNormal:
		synchronous = "NORMAL"
	case SyncFull:
		synchronous = "FULL"
	default:
		return nil, fmt.Errorf("store: sync %q: want %q or %q", opts.Sync, SyncNormal, SyncFull)
	}
	s := &Store{
		path:        path,
		clock:       opts.Clock,
		log:         opts.Logger,
		retention:   opts.Retention,
		maxBatch:    opts.MaxBatch,
		decisionCap: hooks.decisionCap,
		pruneChunk:  hooks.pruneChunk,
		hooks:       hooks,
		quit:        make(chan struct{}),
		writerDone:  make(chan struct{}),
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.retention <= 0 {
		s.retention = DefaultRetention
	}
	if s.maxBatch <= 0 {
		s.maxBatch = DefaultMaxBatch
	}
	if s.decisionCap <= 0 {
		s.decisionCap = defaultDecisionCap
	}
	if s.pruneChunk <= 0 {
		s.pruneChunk = defaultPruneChunk
	}
	s.reqs = make(chan *writeReq, s.maxBatch)

	var wconn *sql.Conn
	var wst *writeStmts
	defer func() {
		if err == nil {
			return
		}
		if wst != nil {
			wst.close()
		}
		if wconn != nil {
			_ = wconn.Close()
		}
		if s.rJob != nil {
			_ = s.rJob.Close()
		}
		if s.rHasDelivery != nil {
			_ = s.rHasDelivery.Close()
		}
		if s.rdb != nil {
			_ = s.rdb.Close()
		}
		if s.wdb != nil {
			_ = s.wdb.Close()
		}
	}()

	// The writer's connection. database/sql never opens a second one.
	wq := url.Values{}
	wq.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	wq.Add("_pragma", "foreign_keys(1)")
	wq.Add("_pragma", "journal_mode(WAL)")
	wq.Add("_pragma", "synchronous("+synchronous+")")
	wq.Add("_pragma", "cache_size(-16384)")           // 16 MiB
	wq.Add("_pragma", "journal_size_limit(67108864)") // truncate the WAL to 64 MiB after checkpoints
	if s.wdb, err = sql.Open("sqlite", path+"?"+wq.Encode()); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	if wconn, err = s.wdb.Conn(ctx); err != nil {
		return nil, fmt.Errorf("store: open %s (does the directory exist and is it writable?): %w", path, err)
	}
	var mode string
	if err = wconn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		err = fmt.Errorf("store: open %s: journal mode is %q, not WAL; put store.path on a local filesystem", path, mode)
		return nil, err
	}
	from, to, err := migrate(ctx, wconn, path, migrations)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s.version = to
	if from != to {
		s.log.Info("store schema migrated", zap.String("path", path), zap.Int("from", from), zap.Int("to", to))
	}
	if wst, err = prepareWriteStmts(ctx, wconn); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}

	// The read pool.
	rq := url.Values{}
	rq.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	rq.Add("_pragma", "foreign_keys(1)")
	rq.Set("_query_only", "1")
	if s.rdb, err = sql.Open("sqlite", path+"?"+rq.Encode()); err != nil {
		return nil, fmt.Errorf("store: open %s for reading: %w", path, err)
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	s.rdb.SetMaxOpenConns(readers)
	s.rdb.SetMaxIdleConns(readers)
	if err = s.rdb.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("store: open %s for reading: %w", path, err)
	}
	if s.rJob, err = s.rdb.PrepareContext(ctx, "SELECT "+jobColumns+" FROM jobs WHERE id = ?"); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if s.rHasDelivery, err = s.rdb.PrepareContext(ctx, "SELECT EXISTS (SELECT 1 FROM deliveries WHERE guid = ?)"); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}

	go s.writer(wconn, wst)
	return s, nil
}

// Close waits for pending writes and closes the file. Writes queued before
// Close are committed; later ones get ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.writerDone
		// Readers first, so that closing the writer's connection, the last
		// one, checkpoints the WAL into the main file.
		s.closeErr = errors.Join(
			s.rJob.Close(),
			s.rHasDelivery.Close(),
			s.rdb.Close(),
			s.wdb.Close(),
		)
	})
	return s.closeErr
}

func (s *Store) closed() bool {
	select {
	case <-s.quit:
		return true
	default:
		return false
	}
}

// readErr wraps a read error, reporting ErrClosed after Close.
func (s *Store) readErr(what string, err error) error {
	if s.closed() {
		return fmt.Errorf("store: %s: %w", what, ErrClosed)
	}
	return fmt.Errorf("store: %s: %w", what, err)
}

// SchemaVersion is the schema version of the open file.
func (s *Store) SchemaVersion() int { return s.version }

// Ingest records a delivery and, when ev is not nil, its job transition, in
// one transaction that is durable when Ingest returns. A known GUID changes
// nothing (Duplicate). A (job, action) already applied is not applied again.
//
// The delivery insert, the transition record and the job upsert run in the
// request's own savepoint inside a shared (group-commit) transaction: all of
// them land or none. If ctx ends while Ingest waits for the commit, Ingest
// returns ctx.Err() but the write may still land; a retry with the same
// GUID is then reported as Duplicate.
//
// Zero times are filled in: d.ReceivedAt and ev.At default to the clock.
func (s *Store) Ingest(ctx context.Context, d Delivery, ev *JobEvent) (IngestResult, error) {
	if d.GUID == "" {
		return IngestResult{}, errors.New("store: ingest: delivery without GUID")
	}
	if ev != nil {
		if ev.JobID <= 0 {
			return IngestResult{}, fmt.Errorf("store: ingest delivery %s: job id %d: want a positive GitHub job id", d.GUID, ev.JobID)
		}
		if !validAction(ev.Action) {
			return IngestResult{}, fmt.Errorf("store: ingest delivery %s: job %d: action %q: want waiting, queued, in_progress or completed",
				d.GUID, ev.JobID, ev.Action)
		}
	}
	now := s.clock()
	if d.ReceivedAt.IsZero() {
		d.ReceivedAt = now
	}
	var res IngestResult
	err := s.write(ctx, d.GUID, func(w *wtx) error {
		res = IngestResult{}
		ctx := context.Background()
		r, err := w.st.insDelivery.ExecContext(ctx, d.GUID, d.Event, d.Action, d.HookID, nanos(d.ReceivedAt), d.Outcome)
		if err != nil {
			return fmt.Errorf("insert delivery: %w", err)
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			res.Duplicate = true
			return nil
		}
		if ev == nil {
			return nil
		}
		at := ev.At
		if at.IsZero() {
			at = now
		}
		r, err = w.st.insTransition.ExecContext(ctx, ev.JobID, ev.Action, d.GUID, nanos(at))
		if err != nil {
			return fmt.Errorf("insert transition: %w", err)
		}
		n, err := r.RowsAffected()
		if err != nil {
			return err
		}
		cur, _, err := scanJob(w.st.selJob.QueryRowContext(ctx, ev.JobID))
		if err != nil {
			return fmt.Errorf("read job %d: %w", ev.JobID, err)
		}
		if n == 0 {
			res.Job = cur // this (job, action) was applied before
			return nil
		}
		j := applyJobEvent(cur, *ev, now)
		if _, err := w.st.upsertJob.ExecContext(ctx, jobArgs(j)...); err != nil {
			return fmt.Errorf("upsert job %d: %w", j.ID, err)
		}
		res.Applied = true
		res.Job = j
		return nil
	})
	if err != nil {
		return IngestResult{}, fmt.Errorf("store: ingest delivery %s: %w", d.GUID, err)
	}
	return res, nil
}

// HasDelivery reports whether a delivery GUID is stored.
func (s *Store) HasDelivery(ctx context.Context, guid string) (bool, error) {
	var ok bool
	if err := s.rHasDelivery.QueryRowContext(ctx, guid).Scan(&ok); err != nil {
		return false, s.readErr("has delivery "+guid, err)
	}
	return ok, nil
}

// CountDeliveries counts stored deliveries.
func (s *Store) CountDeliveries(ctx context.Context) (int, error) {
	var n int
	if err := s.rdb.QueryRowContext(ctx, "SELECT count(*) FROM deliveries").Scan(&n); err != nil {
		return 0, s.readErr("count deliveries", err)
	}
	return n, nil
}

// Job returns a job by id.
func (s *Store) Job(ctx context.Context, id int64) (Job, bool, error) {
	j, ok, err := scanJob(s.rJob.QueryRowContext(ctx, id))
	if err != nil {
		return Job{}, false, s.readErr(fmt.Sprintf("job %d", id), err)
	}
	return j, ok, nil
}

// Jobs lists jobs matching f, oldest (lowest GitHub job id) first.
func (s *Store) Jobs(ctx context.Context, f JobFilter) ([]Job, error) {
	q := "SELECT " + jobColumns + " FROM jobs"
	var where []string
	var args []any
	if f.Status != "" || len(f.Statuses) > 0 {
		statuses := f.Statuses
		if f.Status != "" {
			statuses = append([]string{f.Status}, statuses...)
		}
		where = append(where, "status IN (?"+strings.Repeat(", ?", len(statuses)-1)+")")
		for _, st := range statuses {
			args = append(args, st)
		}
	}
	if f.Pool != "" {
		where = append(where, "pool = ?")
		args = append(args, f.Pool)
	}
	if f.Runner != "" {
		where = append(where, "runner_name = ?")
		args = append(args, f.Runner)
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.readErr("list jobs", err)
	}
	defer rows.Close()
	var jobs []Job
	for rows.Next() {
		j, _, err := scanJob(rows)
		if err != nil {
			return nil, s.readErr("list jobs", err)
		}
		jobs = append(jobs, j)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("list jobs", err)
	}
	return jobs, nil
}

// JobTransitions counts the transitions recorded for a job (for tests and audits).
func (s *Store) JobTransitions(ctx context.Context, id int64) (int, error) {
	var n int
	if err := s.rdb.QueryRowContext(ctx, "SELECT count(*) FROM job_transitions WHERE job_id = ?", id).Scan(&n); err != nil {
		return 0, s.readErr(fmt.Sprintf("count transitions of job %d", id), err)
	}
	return n, nil
}

// SetJobPool records the pool the scaler matched a job to ("" = unmatched).
// An unknown job is ErrNotFound.
func (s *Store) SetJobPool(ctx context.Context, id int64, pool string) error {
	now := nanos(s.clock())
	err := s.write(ctx, "job-pool", func(w *wtx) error {
		r, err := w.exec("UPDATE jobs SET pool = ?, updated_at = ? WHERE id = ?", pool, now, id)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: set pool of job %d: %w", id, err)
	}
	return nil
}

// LoadCursor returns the value stored under name (ok false when none).
func (s *Store) LoadCursor(ctx context.Context, name string) (string, bool, error) {
	var v string
	err := s.rdb.QueryRowContext(ctx, "SELECT value FROM cursors WHERE name = ?", name).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, s.readErr("load cursor "+name, err)
	}
	return v, true, nil
}

// SaveCursor stores value under name, replacing what was there.
func (s *Store) SaveCursor(ctx context.Context, name, value string) error {
	now := nanos(s.clock())
	err := s.write(ctx, "cursor", func(w *wtx) error {
		_, err := w.exec(`INSERT INTO cursors (name, value, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, name, value, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: save cursor %s: %w", name, err)
	}
	return nil
}

// PutRunner inserts or updates a runner; a state change is stamped in StateSince.
//
// The stored CreatedAt is kept (a new runner gets r.CreatedAt, or now);
// UpdatedAt is now. StateSince is the stored map, plus any entries of
// r.StateSince it lacks, plus StateSince[r.State] = now when the runner is
// new or its state changed: each state maps to when the runner last entered
// it.
func (s *Store) PutRunner(ctx context.Context, r Runner) error {
	if r.Name == "" {
		return errors.New("store: put runner: empty name")
	}
	now := s.clock().UTC()
	err := s.write(ctx, r.Name, func(w *wtx) error {
		var (
			state     string
			createdAt int64
			sinceJSON string
		)
		err := w.conn.QueryRowContext(context.Background(),
			"SELECT state, created_at, state_since FROM runners WHERE name = ?", r.Name).
			Scan(&state, &createdAt, &sinceJSON)
		found := true
		if errors.Is(err, sql.ErrNoRows) {
			found = false
		} else if err != nil {
			return err
		}
		since := map[string]int64{}
		if found {
			if err := json.Unmarshal([]byte(sinceJSON), &since); err != nil {
				return fmt.Errorf("decode state_since: %w", err)
			}
		} else {
			createdAt = nanos(r.CreatedAt)
			if createdAt == 0 {
				createdAt = nanos(now)
			}
		}
		for k, v := range r.StateSince {
			if _, ok := since[k]; !ok && !v.IsZero() {
				since[k] = nanos(v)
			}
		}
		if r.State != "" && (!found || state != r.State) {
			since[r.State] = nanos(now)
		}
		b, err := json.Marshal(since)
		if err != nil {
			return err
		}
		_, err = w.exec(`INSERT INTO runners (name, pool, github_id, scope, provisioner, instance_id, state, job_id,
				created_at, updated_at, state_since, last_error)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET pool = excluded.pool, github_id = excluded.github_id,
				scope = excluded.scope, provisioner = excluded.provisioner, instance_id = excluded.instance_id,
				state = excluded.state, job_id = excluded.job_id, created_at = excluded.created_at,
				updated_at = excluded.updated_at, state_since = excluded.state_since, last_error = excluded.last_error`,
			r.Name, r.Pool, r.GitHubID, r.Scope, r.Provisioner, r.InstanceID, r.State, r.JobID,
			createdAt, nanos(now), string(b), r.LastError)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: put runner %s: %w", r.Name, err)
	}
	return nil
}

// Runners lists runners, all or those of one pool, by name.
func (s *Store) Runners(ctx context.Context, pool string) ([]Runner, error) {
	q := `SELECT name, pool, github_id, scope, provisioner, instance_id, state, job_id,
		created_at, updated_at, state_since, last_error FROM runners`
	var args []any
	if pool != "" {
		q += " WHERE pool = ?"
		args = append(args, pool)
	}
	q += " ORDER BY name"
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.readErr("list runners", err)
	}
	defer rows.Close()
	var out []Runner
	for rows.Next() {
		var (
			r                Runner
			created, updated int64
			sinceJSON        string
		)
		if err := rows.Scan(&r.Name, &r.Pool, &r.GitHubID, &r.Scope, &r.Provisioner, &r.InstanceID, &r.State, &r.JobID,
			&created, &updated, &sinceJSON, &r.LastError); err != nil {
			return nil, s.readErr("list runners", err)
		}
		r.CreatedAt, r.UpdatedAt = fromNanos(created), fromNanos(updated)
		var since map[string]int64
		if err := json.Unmarshal([]byte(sinceJSON), &since); err != nil {
			return nil, fmt.Errorf("store: runner %s: decode state_since: %w", r.Name, err)
		}
		r.StateSince = make(map[string]time.Time, len(since))
		for k, v := range since {
			r.StateSince[k] = fromNanos(v)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("list runners", err)
	}
	return out, nil
}

// AddDecision records a decision (bounded: the oldest beyond the cap are dropped).
// A zero d.At is the clock's now. The newest 10,000 decisions are kept.
func (s *Store) AddDecision(ctx context.Context, d Decision) error {
	if d.At.IsZero() {
		d.At = s.clock()
	}
	err := s.write(ctx, "decision", func(w *wtx) error {
		r, err := w.exec("INSERT INTO decisions (at, pool, action, count, reason) VALUES (?, ?, ?, ?, ?)",
			nanos(d.At), d.Pool, d.Action, d.Count, d.Reason)
		if err != nil {
			return err
		}
		id, err := r.LastInsertId()
		if err != nil {
			return err
		}
		// AUTOINCREMENT ids only grow, so the newest decisionCap rows are
		// those with id > id-decisionCap.
		_, err = w.exec("DELETE FROM decisions WHERE id <= ?", id-int64(s.decisionCap))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: add decision: %w", err)
	}
	return nil
}

// Decisions returns the newest decisions first, at most limit (all when
// limit <= 0).
func (s *Store) Decisions(ctx context.Context, limit int) ([]Decision, error) {
	q := "SELECT at, pool, action, count, reason FROM decisions ORDER BY id DESC"
	var args []any
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.readErr("list decisions", err)
	}
	defer rows.Close()
	var out []Decision
	for rows.Next() {
		var d Decision
		var at int64
		if err := rows.Scan(&at, &d.Pool, &d.Action, &d.Count, &d.Reason); err != nil {
			return nil, s.readErr("list decisions", err)
		}
		d.At = fromNanos(at)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("list decisions", err)
	}
	return out, nil
}

// Prune deletes completed jobs, deliveries and decisions older than the
// retention, returning how many rows went.
//
// Completed jobs go by completed_at (with their transitions), deliveries by
// received_at, decisions by at; runners in state "removed" not updated
// within the retention go too. Jobs not completed are kept whatever their
// age: they may still be demand or running. Rows go in chunks, each its own
// write sharing commits with other writes, so a large prune never stalls
// the webhook intake.
func (s *Store) Prune(ctx context.Context) (int, error) {
	cutoff := nanos(s.clock().Add(-s.retention))
	chunk := s.pruneChunk
	total := 0
	for {
		var n int64
		err := s.write(ctx, "prune", func(w *wtx) error {
			n = 0
			for _, q := range []string{
				// The same jobs, picked the same way, for both statements.
				`DELETE FROM job_transitions WHERE job_id IN (SELECT id FROM jobs
					WHERE status = 'completed' AND completed_at < ?1 ORDER BY completed_at, id LIMIT ?2)`,
				`DELETE FROM jobs WHERE id IN (SELECT id FROM jobs
					WHERE status = 'completed' AND completed_at < ?1 ORDER BY completed_at, id LIMIT ?2)`,
				`DELETE FROM deliveries WHERE rowid IN (SELECT rowid FROM deliveries
					WHERE received_at < ?1 ORDER BY received_at LIMIT ?2)`,
				`DELETE FROM decisions WHERE id IN (SELECT id FROM decisions
					WHERE at < ?1 ORDER BY at LIMIT ?2)`,
				`DELETE FROM runners WHERE name IN (SELECT name FROM runners
					WHERE state = 'removed' AND updated_at < ?1 LIMIT ?2)`,
			} {
				r, err := w.exec(q, cutoff, chunk)
				if err != nil {
					return err
				}
				k, err := r.RowsAffected()
				if err != nil {
					return err
				}
				n += k
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("store: prune: %w", err)
		}
		total += int(n)
		if n == 0 {
			return total, nil
		}
	}
}

// RunRetention prunes at once and then every interval until ctx ends (it
// then returns nil) or the store is closed (ErrClosed). A failed prune is
// logged and retried at the next tick.
func (s *Store) RunRetention(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("store: retention interval %v: want a positive duration", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.Prune(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrClosed):
			return err
		case err != nil:
			s.log.Warn("store prune failed", zap.Error(err))
		case n > 0:
			s.log.Info("store pruned", zap.Int("rows", n), zap.Duration("retention", s.retention))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.quit:
			return ErrClosed
		case <-t.C:
		}
	}
}

// Timestamps are stored as unix nanoseconds (UTC by definition); the zero
// time is 0. They read back in UTC, equal (time.Time.Equal) to what was
// written. Times must lie within 1678-2262, which int64 nanoseconds cover.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

const jobColumns = `id, run_id, repo_id, repo, org, installation_id, labels, name, workflow_name, status, conclusion,
	runner_id, runner_name, runner_group_id, runner_group_name, pool,
	waiting_at, queued_at, in_progress_at, completed_at, updated_at`

// upsertJobSQL writes every column but pool, which belongs to SetJobPool.
const upsertJobSQL = `INSERT INTO jobs (id, run_id, repo_id, repo, org, installation_id, labels, name, workflow_name,
		status, conclusion, runner_id, runner_name, runner_group_id, runner_group_name,
		waiting_at, queued_at, in_progress_at, completed_at, updated_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO UPDATE SET run_id = excluded.run_id, repo_id = excluded.repo_id, repo = excluded.repo,
		org = excluded.org, installation_id = excluded.installation_id, labels = excluded.labels,
		name = excluded.name, workflow_name = excluded.workflow_name, status = excluded.status,
		conclusion = excluded.conclusion, runner_id = excluded.runner_id, runner_name = excluded.runner_name,
		runner_group_id = excluded.runner_group_id, runner_group_name = excluded.runner_group_name,
		waiting_at = excluded.waiting_at, queued_at = excluded.queued_at,
		in_progress_at = excluded.in_progress_at, completed_at = excluded.completed_at,
		updated_at = excluded.updated_at`

func jobArgs(j Job) []any {
	return []any{j.ID, j.RunID, j.RepoID, j.Repo, j.Org, j.InstallationID, labelsJSON(j.Labels), j.Name, j.WorkflowName,
		j.Status, j.Conclusion, j.RunnerID, j.RunnerName, j.RunnerGroupID, j.RunnerGroupName,
		nanos(j.WaitingAt), nanos(j.QueuedAt), nanos(j.InProgressAt), nanos(j.CompletedAt), nanos(j.UpdatedAt)}
}

func labelsJSON(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // a []string always marshals
	return string(b)
}

// scanJob reads one row of jobColumns; ok is false (and err nil) when there
// is none.
func scanJob(row interface{ Scan(...any) error }) (j Job, ok bool, err error) {
	var labels string
	var waiting, queued, inProgress, completed, updated int64
	err = row.Scan(&j.ID, &j.RunID, &j.RepoID, &j.Repo, &j.Org, &j.InstallationID, &labels, &j.Name, &j.WorkflowName,
		&j.Status, &j.Conclusion, &j.RunnerID, &j.RunnerName, &j.RunnerGroupID, &j.RunnerGroupName, &j.Pool,
		&waiting, &queued, &inProgress, &completed, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, false, nil
	}
	if err != nil {
		return Job{}, false, err
	}
	if labels != "" && labels != "[]" {
		if err := json.Unmarshal([]byte(labels), &j.Labels); err != nil {
			return Job{}, false, fmt.Errorf("job %d: decode labels: %w", j.ID, err)
		}
	}
	j.WaitingAt, j.QueuedAt, j.InProgressAt = fromNanos(waiting), fromNanos(queued), fromNanos(inProgress)
	j.CompletedAt, j.UpdatedAt = fromNanos(completed), fromNanos(updated)
	return j, true, nil
}
