package main

import (
	"context"
	"fmt"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/admin"
	"github.com/runnerscaler/runnerscaler/internal/recovery"
	"github.com/runnerscaler/runnerscaler/internal/scaler"
	"github.com/runnerscaler/runnerscaler/internal/store"
)

// statusSource answers the admin endpoint from the store (runners, jobs)
// and the engine (pools, recent errors).
type statusSource struct {
	engine   *scaler.Engine
	st       *store.Store
	daemonID string
	started  time.Time
}

var _ admin.Source = (*statusSource)(nil)

func (s *statusSource) Status(ctx context.Context) (admin.Status, error) {
	now := time.Now()
	runners, err := s.st.Runners(ctx, "")
	if err != nil {
		return admin.Status{}, fmt.Errorf("read runners: %w", err)
	}
	jobs, err := s.st.Jobs(ctx, store.JobFilter{Statuses: []string{store.JobQueued, store.JobInProgress}})
	if err != nil {
		return admin.Status{}, fmt.Errorf("read jobs: %w", err)
	}
	out := admin.Status{
		GeneratedAt: now,
		Daemon:      admin.Daemon{Version: version, StartedAt: s.started, DaemonID: s.daemonID},
	}
	byPool := map[string]*admin.PoolStatus{}
	for _, p := range s.engine.Pools() {
		ps := admin.PoolStatus{
			Name: p.Name, Scope: p.Scope.String(), RunnerGroup: p.RunnerGroup, Labels: p.EffectiveLabels(),
			Provisioner: p.Provisioner, MinIdle: p.MinIdleAt(now), MaxRunners: p.MaxRunners, Runners: map[string]int{},
		}
		out.Pools = append(out.Pools, ps)
	}
	for i := range out.Pools {
		byPool[out.Pools[i].Name] = &out.Pools[i]
	}
	for _, r := range runners {
		if ps := byPool[r.Pool]; ps != nil {
			switch r.State {
			case admin.RunnerStarting, admin.RunnerIdle, admin.RunnerBusy, admin.RunnerDraining:
				ps.Runners[r.State]++
			}
		}
	}
	for _, j := range jobs {
		entry := admin.JobEntry{ID: j.ID, Repo: j.Repo, Labels: j.Labels, Pool: j.Pool, QueuedAt: j.QueuedAt, StartedAt: j.InProgressAt, Runner: j.RunnerName}
		ps := byPool[j.Pool]
		switch j.Status {
		case store.JobQueued:
			out.Jobs.Queued++
			out.Jobs.OldestQueued = append(out.Jobs.OldestQueued, entry)
			if ps != nil {
				ps.Queued++
			} else {
				out.Jobs.Unmatched++
			}
		case store.JobInProgress:
			out.Jobs.Running++
			out.Jobs.RunningJobs = append(out.Jobs.RunningJobs, entry)
			if ps != nil {
				ps.Running++
			}
		}
	}
	for _, p := range s.engine.Pools() {
		ps := byPool[p.Name]
		ps.Desired = p.Desired(ps.Runners[admin.RunnerBusy], ps.Queued, now)
	}
	for _, e := range s.engine.RecentErrors() {
		out.RecentErrors = append(out.RecentErrors, admin.ErrorEntry{Time: e.At, Component: e.Component, Message: e.Message})
	}
	return out, nil
}

// jobApplier stores a transition the stale-job checker learned from GitHub
// (its webhook was lost) and tells the engine, as the webhook intake does.
type jobApplier struct {
	st     *store.Store
	engine *scaler.Engine
}

var _ recovery.JobApplier = (*jobApplier)(nil)

func (a *jobApplier) ApplyJobEvent(ctx context.Context, ev store.JobEvent) error {
	res, err := a.st.Ingest(ctx, recovery.SyntheticDelivery(ev), &ev)
	if err != nil {
		return fmt.Errorf("apply job %d %s: %w", ev.JobID, ev.Action, err)
	}
	if res.Applied {
		a.engine.JobChanged(ctx, res.Job)
	}
	return nil
}
