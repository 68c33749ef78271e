package main

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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

// stateCollector exports the state the store and the engine hold, read at
// scrape time: runnerscaler_jobs, runnerscaler_runners and the pools' desired,
// min_idle and max_runners.
type stateCollector struct {
	src *statusSource

	jobs, runners, desired, minIdle, maxRunners *prometheus.Desc
}

func newStateCollector(src *statusSource) *stateCollector {
	return &stateCollector{
		src: src,
		jobs: prometheus.NewDesc("runnerscaler_jobs", "Jobs the daemon knows, by pool (\"\" for none matched) and state (waiting, queued, in_progress).",
			[]string{"pool", "state"}, nil),
		runners: prometheus.NewDesc("runnerscaler_runners", "Runners by pool and state (starting, idle, busy, draining).",
			[]string{"pool", "state"}, nil),
		desired: prometheus.NewDesc("runnerscaler_pool_desired_runners", "The planner's target: min(max_runners, busy + queued + min_idle).",
			[]string{"pool"}, nil),
		minIdle:    prometheus.NewDesc("runnerscaler_pool_min_idle", "The pool's min_idle now (schedules applied).", []string{"pool"}, nil),
		maxRunners: prometheus.NewDesc("runnerscaler_pool_max_runners", "The pool's max_runners.", []string{"pool"}, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.jobs, c.runners, c.desired, c.minIdle, c.maxRunners} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	// A scrape must not hang on a busy store.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.src.Status(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.runners, err)
		return
	}
	waiting, err := c.src.st.Jobs(ctx, store.JobFilter{Status: store.JobWaiting})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.jobs, err)
		return
	}
	jobs := map[[2]string]int{}
	for _, p := range st.Pools {
		jobs[[2]string{p.Name, store.JobWaiting}] = 0
		jobs[[2]string{p.Name, store.JobQueued}] = p.Queued
		jobs[[2]string{p.Name, store.JobInProgress}] = p.Running
		for _, state := range admin.RunnerStates() {
			ch <- prometheus.MustNewConstMetric(c.runners, prometheus.GaugeValue, float64(p.Runners[state]), p.Name, state)
		}
		ch <- prometheus.MustNewConstMetric(c.desired, prometheus.GaugeValue, float64(p.Desired), p.Name)
		ch <- prometheus.MustNewConstMetric(c.minIdle, prometheus.GaugeValue, float64(p.MinIdle), p.Name)
		ch <- prometheus.MustNewConstMetric(c.maxRunners, prometheus.GaugeValue, float64(p.MaxRunners), p.Name)
	}
	jobs[[2]string{"", store.JobQueued}] = st.Jobs.Unmatched
	for _, j := range waiting {
		jobs[[2]string{j.Pool, store.JobWaiting}]++
	}
	for k, n := range jobs {
		ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
}
