// Package admin serves the daemon's read-only admin endpoint: a JSON snapshot
// of pools, runners, jobs and recent errors that `scaler status` prints.
package admin

import (
	"context"
	"time"
)

// Path is where Handler serves the status.
const Path = "/admin/v1/status"

// Bounds on the lists in a served Status. The handler enforces them, so a
// Source may hand over longer lists; the counts in JobSummary stay exact.
const (
	MaxQueuedJobs   = 20
	MaxRunningJobs  = 100
	MaxRecentErrors = 20
)

// Source provides the status; the scaling engine implements it. Status is
// called once per request, concurrently with everything else the engine does,
// and must not block for long: the request's context carries a deadline.
//
// The handler copies before it sorts or fills in defaults, so a Source may
// return slices and maps it keeps (a cached snapshot), as long as it does not
// modify them afterwards.
type Source interface {
	Status(ctx context.Context) (Status, error)
}

// Status is one snapshot of the daemon.
type Status struct {
	// GeneratedAt is when the snapshot was taken (the daemon's clock). The
	// handler sets it when the Source leaves it zero. Ages in `scaler status`
	// are measured from it, so a skewed client clock does not distort them.
	GeneratedAt  time.Time    `json:"generated_at"`
	Daemon       Daemon       `json:"daemon"`
	Pools        []PoolStatus `json:"pools"`
	Jobs         JobSummary   `json:"jobs"`
	RecentErrors []ErrorEntry `json:"recent_errors"`
}

// Daemon identifies the running daemon.
type Daemon struct {
	Version   string    `json:"version"`
	StartedAt time.Time `json:"started_at"`
	DaemonID  string    `json:"daemon_id"`
}

// Runner states, the keys of PoolStatus.Runners (those of the planner).
const (
	RunnerStarting = "starting"
	RunnerIdle     = "idle"
	RunnerBusy     = "busy"
	RunnerDraining = "draining"
)

// RunnerStates lists the states every served PoolStatus.Runners has a key
// for, in the order `scaler status` prints them.
func RunnerStates() []string {
	return []string{RunnerStarting, RunnerIdle, RunnerBusy, RunnerDraining}
}

// PoolStatus is one configured pool and what it has now.
type PoolStatus struct {
	Name        string   `json:"name"`
	Scope       string   `json:"scope"`
	RunnerGroup string   `json:"runner_group"`
	Labels      []string `json:"labels"`
	Provisioner string   `json:"provisioner"`
	// MinIdle is the minimum in force now (a schedule may override the
	// configured one).
	MinIdle    int `json:"min_idle"`
	MaxRunners int `json:"max_runners"`
	// Desired is the planner's target: min(max_runners, busy + queued + min_idle).
	Desired int `json:"desired"`
	// Runners counts the pool's runners by state. The handler adds a zero
	// for each of RunnerStates that is missing; other states are passed on.
	Runners map[string]int `json:"runners"`
	Queued  int            `json:"queued"`
	Running int            `json:"running"`
}

// JobSummary counts the jobs the daemon tracks and lists some of them.
type JobSummary struct {
	// Queued counts every queued job, those matched to no pool included.
	Queued int `json:"queued"`
	// Unmatched counts the queued jobs no pool serves: a common reason a
	// job waits forever, so it is worth showing on its own.
	Unmatched int `json:"unmatched"`
	Running   int `json:"running"`
	// OldestQueued holds the longest-waiting queued jobs, oldest first, at
	// most MaxQueuedJobs.
	OldestQueued []JobEntry `json:"oldest_queued"`
	// RunningJobs holds in-progress jobs, longest-running first, at most
	// MaxRunningJobs.
	RunningJobs []JobEntry `json:"running_jobs"`
}

// JobEntry is one job.
type JobEntry struct {
	ID     int64    `json:"id"`
	Repo   string   `json:"repo"` // owner/name
	Labels []string `json:"labels"`
	Pool   string   `json:"pool"` // "" when no pool matches
	// QueuedAt is when GitHub queued the job.
	QueuedAt time.Time `json:"queued_at"`
	// StartedAt and Runner are set once the job is in progress.
	StartedAt time.Time `json:"started_at,omitzero"`
	Runner    string    `json:"runner,omitempty"`
}

// ErrorEntry is one recent error. Message must already be fit to show an
// operator: no secrets (it is served to anyone who may read the status).
type ErrorEntry struct {
	Time      time.Time `json:"time"`
	Component string    `json:"component"` // e.g. executor, provisioner/ec2, github
	Message   string    `json:"message"`
}
