// Package world is the GitHub simulator's model: the enterprise, its
// organizations and repositories, runner groups, runners and jobs, and the
// rules GitHub applies to them (which runner may take which job, what a
// delete of a busy runner does). It does no I/O; the HTTP layer in
// internal/ghsim serves it. Every method is safe for concurrent use.
package world

import (
	"errors"
	"strings"
	"time"
)

// Clock tells the model the time; the simulator may run on a virtual clock.
type Clock interface{ Now() time.Time }

// Errors the HTTP layer maps to GitHub's status codes.
var (
	ErrNotFound   = errors.New("not found")         // 404
	ErrConflict   = errors.New("already exists")    // 409
	ErrBusy       = errors.New("runner is busy")    // 422 on delete
	ErrValidation = errors.New("validation failed") // 422
)

// ScopeKind is where a runner or group lives.
type ScopeKind string

// Scope kinds.
const (
	Enterprise ScopeKind = "enterprise"
	Org        ScopeKind = "org"
	Repo       ScopeKind = "repo"
)

// Scope is an enterprise slug, an org login, or a repository full name.
type Scope struct {
	Kind ScopeKind
	Name string // enterprise slug, org login, or "owner/repo"
}

func (s Scope) String() string { return string(s.Kind) + ":" + s.Name }

// ParseScope reads "org:octo-org", "repo:octo-org/app" or "enterprise:octo-ent".
func ParseScope(v string) (Scope, error) {
	kind, name, ok := strings.Cut(v, ":")
	if !ok || name == "" {
		return Scope{}, errors.New("scope " + v + ": want org:NAME, repo:OWNER/NAME or enterprise:SLUG")
	}
	switch ScopeKind(kind) {
	case Enterprise, Org, Repo:
		return Scope{Kind: ScopeKind(kind), Name: name}, nil
	}
	return Scope{}, errors.New("scope " + v + ": unknown kind " + kind)
}

// Organization is a GitHub organization.
type Organization struct {
	ID    int64
	Login string
}

// Repository is a repository of an organization.
type Repository struct {
	ID      int64
	Owner   string // org login
	OwnerID int64
	Name    string
	Private bool
}

// FullName is "owner/name".
func (r Repository) FullName() string { return r.Owner + "/" + r.Name }

// Group visibilities.
const (
	VisibilityAll      = "all"
	VisibilitySelected = "selected"
	VisibilityPrivate  = "private"
)

// DefaultGroupID is the id of every scope's built-in "Default" group.
const DefaultGroupID = 1

// Group is a runner group of an org or the enterprise.
type Group struct {
	ID                       int64
	Scope                    Scope
	Name                     string
	Visibility               string
	Default                  bool
	AllowsPublicRepositories bool
	RestrictedToWorkflows    bool
	SelectedWorkflows        []string
	SelectedRepositoryIDs    []int64 // org groups with visibility selected
	SelectedOrganizationIDs  []int64 // enterprise groups with visibility selected
	// Inherited marks an enterprise group listed for an org it is shared with.
	Inherited bool
}

// Label types as GitHub reports them.
const (
	LabelReadOnly = "read-only"
	LabelCustom   = "custom"
)

// Label is one runner label.
type Label struct {
	ID   int64
	Name string
	Type string
}

// Runner statuses.
const (
	StatusOnline  = "online"
	StatusOffline = "offline"
)

// Runner is a registered self-hosted runner.
type Runner struct {
	ID        int64
	Name      string
	Scope     Scope
	GroupID   int64
	OS        string
	Labels    []Label
	Status    string
	Ephemeral bool
	// Busy is the truth: the runner is running JobID. What GitHub reports
	// is VisibleBusy, which lags (see World.SetBusyLag).
	Busy       bool
	BusySince  time.Time
	JobID      int64
	JIT        bool
	CreatedAt  time.Time
	LastOnline time.Time
}

// LabelNames returns the runner's label names.
func (r Runner) LabelNames() []string {
	out := make([]string, len(r.Labels))
	for i, l := range r.Labels {
		out[i] = l.Name
	}
	return out
}

// Job statuses.
const (
	JobWaiting    = "waiting"
	JobQueued     = "queued"
	JobInProgress = "in_progress"
	JobCompleted  = "completed"
)

// Job is a workflow job.
type Job struct {
	ID          int64
	RunID       int64
	Name        string
	RepoID      int64
	Labels      []string
	Status      string
	Conclusion  string // "" until completed; success, failure or cancelled
	Duration    time.Duration
	RunnerID    int64
	RunnerName  string
	GroupID     int64
	GroupName   string
	HeadSHA     string
	HeadBranch  string
	CreatedAt   time.Time
	StartedAt   time.Time
	CompletedAt time.Time
}

// Event is a job transition, reported to the observer after the change.
type Event struct {
	Action string // queued, waiting, in_progress, completed
	Job    Job
	Repo   Repository
	Org    Organization
}

// Assignment is a job handed to a runner by Assign.
type Assignment struct {
	Job    Job
	Runner Runner
}

// Violations count what a correct autoscaler must never cause.
type Violations struct {
	BusyRunnerDeleted int // a runner deleted while it ran a job
	JobRunnerKilled   int // a runner process gone while it ran a job
}

// JobCounts counts jobs by status.
type JobCounts struct {
	Waiting, Queued, InProgress, Completed int
}
