// Package scaler is Runnerscaler's brain: pools, matching jobs to pools,
// the pure planner, the executor that registers and launches runners, the
// loop that wakes on job events and timers, and runner-group upkeep.
package scaler

import (
	"time"

	"github.com/runnerscaler/runnerscaler/internal/ghapi"
)

// Pool is a configured pool: runners of one scope, runner group and label set.
type Pool struct {
	Name        string
	Scope       ghapi.Scope
	RunnerGroup string   // group name; "Default" for repository scope
	Labels      []string // custom labels from config
	OS, Arch    string   // linux|windows|macos, x64|arm64|arm
	MinIdle     int
	MaxRunners  int
	Ephemeral   bool
	// Registration is "jit" or "token".
	Registration         string
	IdleTimeout          time.Duration
	MaxConcurrentCreates int // creates in flight at once for this pool
	Schedules            []Schedule
	Provisioner          string
	Order                int // position in config, for tie-breaks
}

// Schedule overrides MinIdle while Active(now) holds.
type Schedule struct {
	MinIdle int
	// Active reports whether the window contains t. Built from config's
	// cron-style periods with their time zone.
	Active func(t time.Time) bool
}

// RepoRef identifies the repository a job belongs to, as matching needs it.
type RepoRef struct {
	ID       int64
	FullName string // owner/name
	Owner    string
	Private  bool // unknown privacy is treated as private (the stricter public rule then cannot wrongly admit)
}

// JobView is a job as the planner sees it.
type JobView struct {
	ID       int64
	Repo     RepoRef
	Labels   []string
	Status   string // queued, in_progress (waiting and completed jobs are not demand)
	Pool     string // matched pool; "" unmatched
	QueuedAt time.Time
	Runner   string // runner name once in progress
}

// Runner states as the planner sees them.
const (
	RunnerStarting = "starting" // registered/launched, not yet online
	RunnerIdle     = "idle"
	RunnerBusy     = "busy"
	RunnerDraining = "draining" // being removed
)

// RunnerView is one of our runners as the planner sees it.
type RunnerView struct {
	Name      string
	Pool      string
	State     string
	JobID     int64
	CreatedAt time.Time
	IdleSince time.Time
}

// Action kinds.
const (
	ActionCreate = "create"
	ActionRemove = "remove"
)

// Action is one thing the planner wants done.
type Action struct {
	Kind   string // ActionCreate or ActionRemove
	Pool   string
	Count  int    // creates: how many
	Runner string // removes: which runner
	Reason string // why, for logs and the decisions table
}

// PlanState is everything Plan looks at.
type PlanState struct {
	Pools   []Pool
	Jobs    []JobView    // queued and in-progress jobs with their matched pool
	Runners []RunnerView // our runners that are not gone
	// CreatesInFlight counts creates already started per pool and not yet
	// visible as runners.
	CreatesInFlight map[string]int
	// LaunchesInWindow counts creates started per pool in the current rate
	// window, for the per-pool launch rate.
	LaunchesInWindow map[string]int
	// MaxLaunchesPerWindow bounds LaunchesInWindow per pool; 0 = unbounded.
	MaxLaunchesPerWindow int
}
