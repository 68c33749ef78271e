// Package store is Runnerscaler's durable state: one SQLite file (pure-Go
// modernc.org/sqlite, WAL) holding webhook deliveries, jobs and their
// transitions, runners, and the scaler's decisions. Writes from concurrent
// callers share commits (group commit), and a call returns only once its
// transaction is durable.
package store

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
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
	Pool   string
	Limit  int
}

// Store is an open state file. Safe for concurrent use.
type Store struct{}

// Open opens (creating if needed) the store at path and applies migrations.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	return nil, errors.New("store: not implemented")
}

// Close waits for pending writes and closes the file.
func (s *Store) Close() error { return nil }

// SchemaVersion is the schema version of the open file.
func (s *Store) SchemaVersion() int { return 0 }

// Ingest records a delivery and, when ev is not nil, its job transition, in
// one transaction that is durable when Ingest returns. A known GUID changes
// nothing (Duplicate). A (job, action) already applied is not applied again.
func (s *Store) Ingest(ctx context.Context, d Delivery, ev *JobEvent) (IngestResult, error) {
	return IngestResult{}, errors.New("store: not implemented")
}

// HasDelivery reports whether a delivery GUID is stored.
func (s *Store) HasDelivery(ctx context.Context, guid string) (bool, error) { return false, nil }

// CountDeliveries counts stored deliveries.
func (s *Store) CountDeliveries(ctx context.Context) (int, error) { return 0, nil }

// Job returns a job by id.
func (s *Store) Job(ctx context.Context, id int64) (Job, bool, error) { return Job{}, false, nil }

// Jobs lists jobs matching f, oldest first.
func (s *Store) Jobs(ctx context.Context, f JobFilter) ([]Job, error) { return nil, nil }

// JobTransitions counts the transitions recorded for a job (for tests and audits).
func (s *Store) JobTransitions(ctx context.Context, id int64) (int, error) { return 0, nil }

// SetJobPool records the pool the scaler matched a job to ("" = unmatched).
func (s *Store) SetJobPool(ctx context.Context, id int64, pool string) error { return nil }

// PutRunner inserts or updates a runner; a state change is stamped in StateSince.
func (s *Store) PutRunner(ctx context.Context, r Runner) error { return nil }

// Runners lists runners, all or those of one pool.
func (s *Store) Runners(ctx context.Context, pool string) ([]Runner, error) { return nil, nil }

// AddDecision records a decision (bounded: the oldest beyond the cap are dropped).
func (s *Store) AddDecision(ctx context.Context, d Decision) error { return nil }

// Decisions returns the newest decisions first, at most limit.
func (s *Store) Decisions(ctx context.Context, limit int) ([]Decision, error) { return nil, nil }

// Prune deletes completed jobs, deliveries and decisions older than the
// retention, returning how many rows went.
func (s *Store) Prune(ctx context.Context) (int, error) { return 0, nil }

// RunRetention prunes every interval until ctx ends.
func (s *Store) RunRetention(ctx context.Context, interval time.Duration) error { return nil }
