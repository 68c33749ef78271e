package recovery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/ghapi"
	"github.com/runnerscaler/runnerscaler/internal/store"
)

// Defaults of StaleJobsConfig.
const (
	DefaultStaleInterval     = time.Minute
	DefaultStaleJobAfter     = 10 * time.Minute
	DefaultMaxChecksPerCycle = 50
)

// ConclusionGone is the conclusion of the completed transition reported for
// a job GitHub answers 404 for (its run or repository was deleted, or the
// App lost access to it). It is not one of GitHub's conclusions, so audits
// can tell these apart.
const ConclusionGone = "gone"

// GitHub's workflow job statuses the checker acts on; any other status
// (queued, waiting, pending, requested) means the job still waits.
const (
	ghStatusInProgress = "in_progress"
	ghStatusCompleted  = "completed"
)

// StaleJobsConfig tunes a StaleJobs checker; zero values take the defaults.
type StaleJobsConfig struct {
	// Interval separates cycles in Run.
	Interval time.Duration
	// StaleAfter: a job queued for longer is checked (lifecycle.stale_job_after).
	StaleAfter time.Duration
	// Recheck: a job checked less than this ago is not checked again; default
	// StaleAfter/2.
	Recheck time.Duration
	// MaxChecksPerCycle bounds the GitHub calls of one cycle.
	MaxChecksPerCycle int
	// Clock tells the time; nil is time.Now.
	Clock func() time.Time
	// Metrics counts outcomes; nil counts nothing.
	Metrics Metrics
}

func (c StaleJobsConfig) withDefaults() StaleJobsConfig {
	if c.Interval <= 0 {
		c.Interval = DefaultStaleInterval
	}
	if c.StaleAfter <= 0 {
		c.StaleAfter = DefaultStaleJobAfter
	}
	if c.Recheck <= 0 {
		c.Recheck = c.StaleAfter / 2
	}
	if c.MaxChecksPerCycle <= 0 {
		c.MaxChecksPerCycle = DefaultMaxChecksPerCycle
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Metrics == nil {
		c.Metrics = discardMetrics{}
	}
	return c
}

// StaleJobs checks with GitHub the jobs queued for too long in the store and
// reports the transitions whose webhooks were lost (see the package
// documentation). It is safe for concurrent use; cycles run one at a time.
type StaleJobs struct {
	jobs  QueuedJobs
	api   JobsAPI
	apply JobApplier
	cfg   StaleJobsConfig
	log   *zap.Logger

	mu      sync.Mutex          // held by Cycle; guards checked
	checked map[int64]time.Time // job id -> last check that got an answer
	// afterCycle, when set (tests), is called by Run after every cycle.
	afterCycle func(StaleJobsResult, error)
}

// StaleJobsResult says what one cycle did.
type StaleJobsResult struct {
	Queued       int // queued jobs in the store
	Fresh        int // queued for less than StaleAfter: not checked
	Backoff      int // checked less than Recheck ago: not checked
	Checked      int // GitHub calls made
	InProgress   int // reported in progress
	Completed    int // reported completed
	Gone         int // 404: reported completed with ConclusionGone
	StillQueued  int // GitHub says still queued
	Errors       int // the GitHub call failed (retried next cycle), or the job names no repository
	ApplyFailed  int // the applier failed (retried next cycle)
	SkippedLimit int // stale, but over MaxChecksPerCycle (or left after a rate limit)
	Events       int // transitions applied
}

// NewStaleJobs returns a checker reading queued jobs from jobs, asking api,
// and reporting transitions to apply. A nil logger logs nothing. It does no
// I/O.
func NewStaleJobs(jobs QueuedJobs, api JobsAPI, apply JobApplier, cfg StaleJobsConfig, logger *zap.Logger) *StaleJobs {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &StaleJobs{
		jobs:    jobs,
		api:     api,
		apply:   apply,
		cfg:     cfg.withDefaults(),
		log:     logger,
		checked: map[int64]time.Time{},
	}
}

// Run runs a cycle at once and then every Interval until ctx ends. A failed
// cycle is logged and the next one retries. It returns nil when ctx ends.
func (s *StaleJobs) Run(ctx context.Context) error {
	return runEvery(ctx, s.cfg.Interval, func(ctx context.Context) {
		res, err := s.Cycle(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("stale job check failed; retrying on the next cycle",
				zap.Int("checked", res.Checked), zap.Int("errors", res.Errors), zap.Error(err))
		}
		s.mu.Lock()
		after := s.afterCycle
		s.mu.Unlock()
		if after != nil {
			after(res, err)
		}
	})
}

// Cycle makes one pass over the queued jobs. Errors are returned joined; a
// job whose check or apply failed is checked again next cycle.
func (s *StaleJobs) Cycle(ctx context.Context) (StaleJobsResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Clock()
	var res StaleJobsResult
	queued, err := s.jobs.Jobs(ctx, store.JobFilter{Status: store.JobQueued})
	if err != nil {
		return res, fmt.Errorf("check stale jobs: list queued jobs: %w", err)
	}
	res.Queued = len(queued)

	live := make(map[int64]bool, len(queued))
	var stale []store.Job
	for _, j := range queued {
		live[j.ID] = true
		if now.Sub(queuedSince(j)) < s.cfg.StaleAfter {
			res.Fresh++
			continue
		}
		if last, ok := s.checked[j.ID]; ok && now.Sub(last) < s.cfg.Recheck {
			res.Backoff++
			continue
		}
		stale = append(stale, j)
	}
	for id := range s.checked {
		if !live[id] {
			delete(s.checked, id) // no longer queued: nothing to remember
		}
	}
	// Oldest first: the job that waited longest is the likeliest to have
	// lost its webhook, and the per-cycle bound must not starve it.
	slices.SortStableFunc(stale, func(a, b store.Job) int {
		return cmp.Or(queuedSince(a).Compare(queuedSince(b)), cmp.Compare(a.ID, b.ID))
	})

	var errs []error
	for i, j := range stale {
		if i == s.cfg.MaxChecksPerCycle {
			res.SkippedLimit += len(stale) - i
			break
		}
		if err := ctx.Err(); err != nil {
			res.SkippedLimit += len(stale) - i
			errs = append(errs, fmt.Errorf("check stale jobs: %w", err))
			break
		}
		err := s.check(ctx, j, now, &res)
		if err == nil {
			continue
		}
		errs = append(errs, err)
		var rl *ghapi.RateLimitError
		if errors.As(err, &rl) {
			// The budget is gone: the rest would only fail the same way.
			res.SkippedLimit += len(stale) - i - 1
			break
		}
	}

	m := s.cfg.Metrics
	m.StaleJobChecks(StaleInProgress, res.InProgress)
	m.StaleJobChecks(StaleCompleted, res.Completed)
	m.StaleJobChecks(StaleGone, res.Gone)
	m.StaleJobChecks(StaleStillQueued, res.StillQueued)
	m.StaleJobChecks(StaleError, res.Errors)
	m.StaleJobChecks(StaleApplyFailed, res.ApplyFailed)
	m.StaleJobChecks(StaleSkippedLimit, res.SkippedLimit)
	logAt := s.log.Debug
	if res.Events+res.Errors+res.ApplyFailed+res.SkippedLimit > 0 {
		logAt = s.log.Info
	}
	logAt("stale job check",
		zap.Int("queued", res.Queued), zap.Int("checked", res.Checked), zap.Int("events", res.Events),
		zap.Int("in_progress", res.InProgress), zap.Int("completed", res.Completed), zap.Int("gone", res.Gone),
		zap.Int("still_queued", res.StillQueued), zap.Int("errors", res.Errors),
		zap.Int("apply_failed", res.ApplyFailed), zap.Int("skipped_limit", res.SkippedLimit))
	return res, errors.Join(errs...)
}

// check asks GitHub about one job and applies what it learned. The job is
// remembered as checked only when nothing failed, so a failure is retried
// on the next cycle.
func (s *StaleJobs) check(ctx context.Context, j store.Job, now time.Time, res *StaleJobsResult) error {
	scope, err := ghapi.ParseRepo(j.Repo)
	if err != nil {
		// Nothing to ask GitHub with; asking again would not help.
		s.checked[j.ID] = now
		res.Errors++
		return fmt.Errorf("check stale job %d: %w", j.ID, err)
	}
	res.Checked++
	gj, err := s.api.GetWorkflowJob(ctx, scope, j.ID)
	var events []store.JobEvent
	outcome := &res.Completed
	switch {
	case errors.Is(err, ghapi.ErrNotFound):
		outcome = &res.Gone
		ev := baseEvent(j, nil)
		ev.Action, ev.Conclusion, ev.At = store.JobCompleted, ConclusionGone, now
		events = append(events, ev)
	case err != nil:
		res.Errors++
		return fmt.Errorf("check stale job %d of %s: %w", j.ID, j.Repo, err)
	case gj.GetStatus() == ghStatusInProgress:
		outcome = &res.InProgress
		events = append(events, startedEvent(j, gj))
	case gj.GetStatus() == ghStatusCompleted:
		// Both webhooks were lost when the job had a runner: report the
		// start too, so the runner's job and the start time are recorded
		// as they would have been.
		if gj.GetRunnerID() != 0 || gj.GetRunnerName() != "" {
			events = append(events, startedEvent(j, gj))
		}
		ev := baseEvent(j, gj)
		ev.Action, ev.Conclusion = store.JobCompleted, gj.GetConclusion()
		ev.At = gj.GetCompletedAt().Time
		events = append(events, ev)
	default:
		s.checked[j.ID] = now
		res.StillQueued++
		s.log.Debug("stale job still queued on GitHub", zap.Int64("job_id", j.ID), zap.String("repo", j.Repo),
			zap.String("status", gj.GetStatus()), zap.Duration("queued_for", now.Sub(queuedSince(j))))
		return nil
	}
	for _, ev := range events {
		if err := s.apply.ApplyJobEvent(ctx, ev); err != nil {
			res.ApplyFailed++
			return fmt.Errorf("check stale job %d: apply %s: %w", j.ID, ev.Action, err)
		}
		res.Events++
	}
	s.checked[j.ID] = now
	*outcome++
	last := events[len(events)-1]
	s.log.Info("stale queued job closed from GitHub's answer",
		zap.Int64("job_id", j.ID), zap.String("repo", j.Repo), zap.String("action", last.Action),
		zap.String("conclusion", last.Conclusion), zap.String("runner", last.RunnerName),
		zap.Duration("queued_for", now.Sub(queuedSince(j))))
	return nil
}

// queuedSince is when the job was queued as far as the store knows.
func queuedSince(j store.Job) time.Time {
	if !j.QueuedAt.IsZero() {
		return j.QueuedAt
	}
	return j.UpdatedAt
}

// startedEvent is the in_progress transition GitHub's answer implies.
func startedEvent(j store.Job, gj *ghapi.WorkflowJob) store.JobEvent {
	ev := baseEvent(j, gj)
	ev.Action = store.JobInProgress
	ev.At = gj.GetStartedAt().Time
	return ev
}

// baseEvent fills a transition from the stored job and, when gj is not nil,
// GitHub's answer, which wins where it says something.
func baseEvent(j store.Job, gj *ghapi.WorkflowJob) store.JobEvent {
	ev := store.JobEvent{
		JobID:          j.ID,
		RunID:          j.RunID,
		RepoID:         j.RepoID,
		Repo:           j.Repo,
		Org:            j.Org,
		InstallationID: j.InstallationID,
		Labels:         slices.Clone(j.Labels),
		Name:           j.Name,
		WorkflowName:   j.WorkflowName,
	}
	if gj == nil {
		return ev
	}
	if id := gj.GetRunID(); id != 0 {
		ev.RunID = id
	}
	if len(gj.Labels) > 0 {
		ev.Labels = slices.Clone(gj.Labels)
	}
	ev.Name = cmp.Or(gj.GetName(), ev.Name)
	ev.WorkflowName = cmp.Or(gj.GetWorkflowName(), ev.WorkflowName)
	ev.RunnerID = gj.GetRunnerID()
	ev.RunnerName = gj.GetRunnerName()
	ev.RunnerGroupID = gj.GetRunnerGroupID()
	ev.RunnerGroupName = gj.GetRunnerGroupName()
	return ev
}
