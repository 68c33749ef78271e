package scaler

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/config"
	"github.com/runnerscaler/runnerscaler/internal/provisioner"
	"github.com/runnerscaler/runnerscaler/internal/store"
)

// Store runner states beyond the planner's (RunnerStarting etc.).
const (
	runnerRemoved = "removed"
	runnerFailed  = "failed"
	// runnerEnded is an ephemeral runner whose instance exited cleanly
	// before its job's webhooks arrived: it almost certainly ran one of
	// the pool's queued jobs, so it offsets one queued job until a job
	// event names it (then it is removed) or EndedRunnerGrace passes (then
	// it is unregistered and the job counts as demand again).
	runnerEnded = "ended"
)

// Run is the loop: a pass at start, then one whenever a job event arrives
// (JobChanged) or an executor finishes, and on the timer otherwise. When ctx
// ends it plans no more, gives the creates and removals in flight
// ShutdownTimeout to finish (they are not cut short by ctx), then cancels
// what is left and returns once everything it started has ended.
func (e *Engine) Run(ctx context.Context) error {
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	e.mu.Lock()
	e.work = work
	e.mu.Unlock()

	// GitHub and the provisioners are read outside the loop (slow calls);
	// the next pass applies what was read.
	observerDone := make(chan struct{})
	go func() {
		defer close(observerDone)
		rt := time.NewTicker(e.cfg.ReconcileInterval)
		defer rt.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-rt.C:
			}
			obs := e.observe(ctx)
			if ctx.Err() != nil {
				return
			}
			select {
			case <-e.observed: // an unapplied older reading goes
			default:
			}
			e.observed <- obs
			e.Wake()
		}
	}()

	t := time.NewTicker(e.cfg.Interval)
	defer t.Stop()
	for ctx.Err() == nil {
		if err := e.Pass(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("scaler pass failed; retrying on the next event or tick", zap.Error(err))
			e.noteError("scaler", err)
		}
		select {
		case <-ctx.Done():
		case <-e.wake:
		case <-t.C:
		}
	}
	<-observerDone
	done := make(chan struct{})
	go func() {
		e.exec.wait()
		close(done)
	}()
	deadline := time.NewTimer(e.cfg.ShutdownTimeout)
	defer deadline.Stop()
	select {
	case <-done:
	case <-deadline.C:
		e.log.Warn("creates or removals still running at the shutdown deadline; cancelling them",
			zap.Duration("shutdown_timeout", e.cfg.ShutdownTimeout))
		cancelWork()
		<-done
	}
	return nil
}

// workContext is the context executor work runs under: Run's, which
// outlives the loop's by up to ShutdownTimeout, or ctx outside Run (tests
// calling Pass).
func (e *Engine) workContext(ctx context.Context) context.Context {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.work != nil {
		return e.work
	}
	return ctx
}

// Drain stops planning for good, removes every idle runner, safely (see
// remove), and waits until the removals (and any other work in flight)
// ended or ctx ends. It returns how many removals it started. For
// drain_on_shutdown: Run should end next.
func (e *Engine) Drain(ctx context.Context) int {
	e.passMu.Lock()
	// No more planning: it would launch replacements for what is drained.
	e.halted.Store(true)
	runners, err := e.freshRunners(ctx)
	n := 0
	if err != nil {
		e.log.Warn("drain: runners not read", zap.Error(err))
	} else {
		work := e.workContext(ctx)
		for _, r := range runners {
			if r.State == RunnerIdle && r.JobID == 0 {
				e.exec.remove(work, r, drainReason, runners)
				n++
			}
		}
	}
	e.passMu.Unlock()
	done := make(chan struct{})
	go func() {
		e.exec.wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		e.log.Warn("drain: removals still running at the deadline")
	}
	return n
}

// Pass handles the job events queued since the last pass, brings runner
// states up to date from the provisioners, plans and starts the actions.
func (e *Engine) Pass(ctx context.Context) error {
	e.passMu.Lock()
	defer e.passMu.Unlock()
	if e.halted.Load() {
		return nil
	}
	ctx = e.workContext(ctx)
	e.mu.Lock()
	events := e.pending
	e.pending = nil
	e.mu.Unlock()

	// Creates in flight are counted before the store is read: a create
	// that lands in between is counted twice (one create too few, healed by
	// the pass its completion triggers), never missed.
	start := e.now()
	inFlight := e.exec.inFlightByPool()
	launches := e.exec.launchesInWindow(e.now())

	runners, err := e.freshRunners(ctx)
	if err != nil {
		return err
	}
	b := &passBatch{writes: map[string]store.Runner{}}
	for _, j := range events {
		e.applyJobEvent(j, runners, b)
	}
	jobs, err := e.demand(ctx)
	if err != nil {
		return err
	}
	e.busyFromJobs(jobs, runners, b)
	e.syncInstances(ctx, runners, b)
	e.flush(ctx, b, runners)
	select {
	case obs := <-e.observed:
		res := e.apply(ctx, obs, runners)
		res.ScopesMissing = len(e.scopeKeys()) - res.ScopesListed
		e.logReconcile(res)
	default:
	}
	ended := e.endedRunners(ctx, runners)

	state := PlanState{
		Pools:                e.cfg.Pools,
		Jobs:                 offsetEnded(jobs, ended),
		CreatesInFlight:      inFlight,
		LaunchesInWindow:     launches,
		MaxLaunchesPerWindow: e.cfg.MaxLaunchesPerMinute,
	}
	for _, r := range runners {
		if v, ok := runnerView(r, e.pools[r.Pool]); ok {
			state.Runners = append(state.Runners, v)
		}
	}
	sort.Slice(state.Runners, func(i, k int) bool { return state.Runners[i].Name < state.Runners[k].Name })
	planned := e.now()
	actions := e.plan(state, planned)
	for _, a := range actions {
		e.execute(ctx, a, runners)
	}
	if ce := e.log.Check(zap.DebugLevel, "pass"); ce != nil {
		ce.Write(zap.Int("events", len(events)), zap.Int("actions", len(actions)),
			zap.Duration("to_plan", planned.Sub(start)), zap.Duration("took", e.now().Sub(start)))
	}
	return nil
}

// runnerView is the planner's view of a stored runner; removed and failed
// runners are not seen.
func runnerView(r store.Runner, p Pool) (RunnerView, bool) {
	switch r.State {
	case RunnerStarting, RunnerIdle, RunnerBusy, RunnerDraining:
	default:
		return RunnerView{}, false
	}
	state := r.State
	if state == RunnerIdle && r.GitHubID == 0 && p.Registration == config.RegistrationToken {
		// A token runner's process runs before config.sh has registered
		// it: until GitHub's id for it is known (from a job event or a
		// reconcile) it is starting, which the planner never removes.
		state = RunnerStarting
	}
	return RunnerView{
		Name: r.Name, Pool: r.Pool, State: state, JobID: r.JobID,
		CreatedAt: r.CreatedAt, IdleSince: r.StateSince[RunnerIdle],
	}, true
}

// demand reads the queued and in-progress jobs, matching queued jobs not
// matched yet (new ones, or ones from before a restart) and storing the
// result.
func (e *Engine) demand(ctx context.Context) ([]JobView, error) {
	// One read for both states: two could see a job that moved between
	// them twice, as queued demand and on its busy runner.
	all, err := e.cfg.Store.Jobs(ctx, store.JobFilter{Statuses: []string{store.JobQueued, store.JobInProgress}})
	if err != nil {
		return nil, err
	}
	type decision struct {
		job    store.Job
		pool   string
		reason string
	}
	var fresh []decision
	views := make([]JobView, 0, len(all))
	e.mu.Lock()
	for _, j := range all {
		pool, ok := e.decided[j.ID]
		if !ok && j.Pool != "" {
			pool, ok = j.Pool, true
			e.decided[j.ID] = pool
		}
		if !ok && j.Status == store.JobQueued {
			v := jobView(j)
			var reason string
			pool, reason = Match(v.Labels, v.Repo, e.cfg.Pools, e.cfg.Access)
			if pool != "" || !accessUnknown(reason) {
				e.decided[j.ID] = pool
			}
			fresh = append(fresh, decision{j, pool, reason})
			switch {
			case pool != "":
				e.cfg.Metrics.JobMatched(pool)
			case !accessUnknown(reason):
				e.cfg.Metrics.JobUnmatched()
			}
			if pool != "" {
				e.matched++
				e.waiting[pool] = append(e.waiting[pool], j.ID)
			} else if !accessUnknown(reason) {
				e.unmatched++
				delete(e.arrived, j.ID)
			}
		}
		v := jobView(j)
		v.Pool = pool
		views = append(views, v)
	}
	e.mu.Unlock()

	// The matches are kept in memory (decided); storing them is for
	// restarts and reports, so no pass waits for it.
	for _, d := range fresh {
		fields := []zap.Field{zap.Int64("job_id", d.job.ID), zap.String("repo", d.job.Repo), zap.Strings("labels", d.job.Labels)}
		if d.pool != "" {
			e.log.Info("job matched", append(fields, zap.String("pool", d.pool), zap.String("reason", d.reason))...)
			e.background(func() {
				if err := e.cfg.Store.SetJobPool(context.WithoutCancel(ctx), d.job.ID, d.pool); err != nil {
					e.log.Warn("job pool not stored", zap.Int64("job_id", d.job.ID), zap.String("pool", d.pool), zap.Error(err))
				}
			})
			continue
		}
		if accessUnknown(d.reason) {
			e.log.Info("job not matched yet", append(fields, zap.String("reason", d.reason))...)
			continue
		}
		e.record(ctx, store.Decision{Action: "unmatched", Count: 1,
			Reason: fmt.Sprintf("job %d from %s: %s", d.job.ID, d.job.Repo, d.reason)},
			zap.Int64("job_id", d.job.ID), zap.String("repo", d.job.Repo), zap.Strings("labels", d.job.Labels))
	}
	return views, nil
}

// accessUnknown reports a Match reason saying group access is not known yet
// (the job is matched again on a later pass).
func accessUnknown(reason string) bool {
	return strings.Contains(reason, "not known yet")
}

func jobView(j store.Job) JobView {
	owner, _, _ := strings.Cut(j.Repo, "/")
	if j.Org != "" {
		owner = j.Org
	}
	return JobView{
		ID:       j.ID,
		Repo:     RepoRef{ID: j.RepoID, FullName: j.Repo, Owner: owner, Private: true},
		Labels:   j.Labels,
		Status:   j.Status,
		Pool:     j.Pool,
		QueuedAt: j.QueuedAt,
		Runner:   j.RunnerName,
	}
}

// applyJobEvent updates our runner's state from a job transition: a job in
// progress on it makes it busy; a completed job ends an ephemeral runner
// (its machine is deleted) and makes a persistent one idle again.
func (e *Engine) applyJobEvent(j store.Job, runners map[string]store.Runner, b *passBatch) {
	e.observeJob(j)
	if j.Status == store.JobInProgress || j.Status == store.JobCompleted {
		e.mu.Lock()
		delete(e.arrived, j.ID)
		if j.Status == store.JobCompleted {
			delete(e.decided, j.ID)
		}
		e.mu.Unlock()
	}
	r, ours := runners[j.RunnerName]
	if j.RunnerName == "" || !ours || r.State == runnerRemoved || r.State == runnerFailed {
		return
	}
	fields := []zap.Field{zap.String("pool", r.Pool), zap.String("runner", r.Name), zap.Int64("job_id", j.ID)}
	if r.State == runnerEnded {
		// The job it was standing in for is accounted for now.
		if j.Status == store.JobInProgress || j.Status == store.JobCompleted {
			r.State, r.JobID, r.GitHubID = runnerRemoved, j.ID, orID(r.GitHubID, j.RunnerID)
			b.put(r, runners)
			e.log.Info("ended runner's job seen", fields...)
		}
		return
	}
	switch j.Status {
	case store.JobInProgress:
		if r.State == RunnerBusy && r.JobID == j.ID {
			return
		}
		e.online(r)
		r.State, r.JobID, r.GitHubID = RunnerBusy, j.ID, orID(r.GitHubID, j.RunnerID)
		b.put(r, runners)
		e.log.Info("runner busy", fields...)
	case store.JobCompleted:
		p, ok := e.pools[r.Pool]
		if ok && !p.Ephemeral {
			r.State, r.JobID = RunnerIdle, 0
			b.put(r, runners)
			e.log.Info("runner idle after its job", fields...)
			return
		}
		// GitHub removes an ephemeral runner after its job; its machine
		// goes too.
		e.log.Info("ephemeral runner done; deleting its instance", fields...)
		delete(b.writes, r.Name)
		r.JobID = j.ID
		runners[r.Name] = r
		b.deletes = append(b.deletes, deletion{r, fmt.Sprintf("ephemeral runner finished job %d", j.ID)})
	}
}

// observeJob feeds the queue and run time metrics of a job of one of our
// pools from GitHub's timestamps.
func (e *Engine) observeJob(j store.Job) {
	e.mu.Lock()
	pool, ok := e.decided[j.ID]
	e.mu.Unlock()
	if !ok {
		pool = j.Pool
	}
	if pool == "" && (j.Status == store.JobInProgress || j.Status == store.JobCompleted) {
		// Its event came before a pass matched it (events are handled
		// before matching): match it now.
		v := jobView(j)
		pool, _ = Match(v.Labels, v.Repo, e.cfg.Pools, e.cfg.Access)
	}
	if pool == "" {
		return
	}
	// Webhooks arrive out of order: an in_progress after its completed
	// brings the start time to a job already completed. Each duration is
	// observed once, as soon as both its ends are known.
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.timed[j.ID]
	if !t.queue && !j.QueuedAt.IsZero() && !j.InProgressAt.IsZero() {
		e.cfg.Metrics.JobQueued(pool, j.InProgressAt.Sub(j.QueuedAt))
		t.queue = true
	}
	if !t.run && !j.InProgressAt.IsZero() && !j.CompletedAt.IsZero() {
		e.cfg.Metrics.JobRan(pool, j.CompletedAt.Sub(j.InProgressAt))
		t.run = true
	}
	switch {
	case t.queue && t.run:
		delete(e.timed, j.ID)
	case t.queue || t.run:
		e.timed[j.ID] = t
	}
}

// jobTimed: which of a job's durations were observed.
type jobTimed struct{ queue, run bool }

// online observes a runner's start-up time as it leaves "starting".
func (e *Engine) online(r store.Runner) {
	if r.State != RunnerStarting || r.CreatedAt.IsZero() {
		return
	}
	e.cfg.Metrics.RunnerStarted(r.Pool, r.Provisioner, e.now().Sub(r.CreatedAt))
}

func orID(a, b int64) int64 {
	if a != 0 {
		return a
	}
	return b
}

// passBatch collects a pass's runner writes, made together (the store
// commits them at once) before the instance deletions start.
type passBatch struct {
	writes  map[string]store.Runner
	deletes []deletion
}

type deletion struct {
	r      store.Runner
	reason string
}

// put queues a write of r and updates the pass's copy.
func (b *passBatch) put(r store.Runner, runners map[string]store.Runner) {
	b.writes[r.Name] = r
	runners[r.Name] = r
}

// flush stores the queued writes concurrently, then starts the deletions.
func (e *Engine) flush(ctx context.Context, b *passBatch, runners map[string]store.Runner) {
	var wg sync.WaitGroup
	for _, r := range b.writes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.putRunner(ctx, r); err != nil {
				e.log.Warn("runner state not stored", zap.String("pool", r.Pool), zap.String("runner", r.Name),
					zap.String("state", r.State), zap.Error(err))
			}
		}()
	}
	wg.Wait()
	for _, d := range b.deletes {
		e.exec.deleteInstance(ctx, d.r, d.reason, runners)
	}
}

// busyFromJobs marks busy the starting or idle runners that a stored
// in-progress job names: the job's event may still be on its way to the
// loop, or may have been handled before the runner was stored (its create
// still finishing). A runner with a job must never look idle to the planner.
func (e *Engine) busyFromJobs(jobs []JobView, runners map[string]store.Runner, b *passBatch) {
	for _, j := range jobs {
		if j.Status != store.JobInProgress || j.Runner == "" {
			continue
		}
		r, ok := runners[j.Runner]
		if !ok || (r.State != RunnerStarting && r.State != RunnerIdle) {
			continue
		}
		e.online(r)
		r.State, r.JobID = RunnerBusy, j.ID
		b.put(r, runners)
		e.log.Info("runner busy (from its stored job)", zap.String("pool", r.Pool),
			zap.String("runner", r.Name), zap.Int64("job_id", j.ID))
	}
}

// endedRunners returns, per pool, how many ended runners still stand in for
// a queued job, and unregisters those whose grace has passed.
func (e *Engine) endedRunners(ctx context.Context, runners map[string]store.Runner) map[string]int {
	now := e.now()
	out := map[string]int{}
	for _, r := range runners {
		if r.State != runnerEnded {
			continue
		}
		if since, ok := r.StateSince[runnerEnded]; !ok || now.Sub(since) < e.cfg.EndedRunnerGrace {
			out[r.Pool]++
			continue
		}
		e.exec.retire(ctx, r, RemovedEndedUnclaimed, fmt.Sprintf("its instance exited and no job named it within %s", e.cfg.EndedRunnerGrace), runners)
	}
	return out
}

// offsetEnded drops, per pool, as many of the oldest queued jobs as the
// pool has ended runners standing in for them.
func offsetEnded(jobs []JobView, ended map[string]int) []JobView {
	if len(ended) == 0 {
		return jobs
	}
	order := make([]int, 0, len(jobs))
	for i, j := range jobs {
		if j.Status == store.JobQueued && ended[j.Pool] > 0 {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return jobs[order[a]].QueuedAt.Before(jobs[order[b]].QueuedAt) })
	left := maps.Clone(ended)
	drop := map[int]bool{}
	for _, i := range order {
		if p := jobs[i].Pool; left[p] > 0 {
			left[p]--
			drop[i] = true
		}
	}
	out := make([]JobView, 0, len(jobs)-len(drop))
	for i, j := range jobs {
		if !drop[i] {
			out = append(out, j)
		}
	}
	return out
}

// syncInstances brings runner states up to date from the provisioners'
// instances: a starting runner whose instance runs is idle; one whose
// instance stopped, failed or is gone (and that is not busy) is over.
func (e *Engine) syncInstances(ctx context.Context, runners map[string]store.Runner, b *passBatch) {
	byProv := map[string][]store.Runner{}
	for _, r := range runners {
		switch r.State {
		case RunnerStarting, RunnerIdle:
			if r.InstanceID != "" {
				byProv[r.Provisioner] = append(byProv[r.Provisioner], r)
			}
		}
	}
	for name, rs := range byProv {
		p := e.cfg.Provisioners[name]
		if p == nil {
			continue
		}
		cctx, cancel := e.callCtx(ctx)
		insts, err := p.List(cctx)
		cancel()
		if err != nil {
			e.log.Warn("provisioner list failed", zap.String("provisioner", name), zap.Error(err))
			continue
		}
		byID := make(map[string]provisioner.Instance, len(insts))
		for _, in := range insts {
			byID[in.ID] = in
		}
		for _, r := range rs {
			e.mu.Lock()
			busyRemoving := e.removing[r.Name]
			e.mu.Unlock()
			if busyRemoving {
				continue
			}
			in, ok := byID[r.InstanceID]
			switch {
			case ok && in.State == provisioner.StateRunning && r.State == RunnerStarting:
				e.online(r)
				r.State = RunnerIdle
				b.put(r, runners)
			case ok && in.State == provisioner.StateStopped && in.LastError == "" && e.pools[r.Pool].Ephemeral:
				// An ephemeral runner exits cleanly after its one job; the
				// job's events are late.
				e.exec.end(ctx, r, runners)
			case !ok || in.State == provisioner.StateStopped || in.State == provisioner.StateFailed || in.State == provisioner.StateGone:
				why := "instance gone"
				if ok {
					why = "instance " + string(in.State)
					if in.LastError != "" {
						why += ": " + in.LastError
					}
				}
				if ok && in.State == provisioner.StateFailed {
					// A start that failed (an unschedulable pod, an image
					// that cannot be pulled) is for the operator to fix:
					// it goes in scaler status's recent errors.
					e.noteError("provisioner/"+name, fmt.Errorf("runner %s: %s", r.Name, why))
				}
				e.exec.retire(ctx, r, RemovedInstanceLost, why, runners)
			}
		}
	}
}

// execute starts one planned action and records the decision.
func (e *Engine) execute(ctx context.Context, a Action, runners map[string]store.Runner) {
	switch a.Kind {
	case ActionCreate:
		p, ok := e.pools[a.Pool]
		if !ok || a.Count <= 0 {
			return
		}
		if until := e.exec.heldUntil(p.Name, e.now()); !until.IsZero() {
			e.log.Debug("creates held back after failures", zap.String("pool", p.Name), zap.Int("count", a.Count),
				zap.Time("until", until))
			return
		}
		for i := 0; i < a.Count; i++ {
			e.exec.create(ctx, p)
		}
		e.record(ctx, store.Decision{Pool: a.Pool, Action: ActionCreate, Count: a.Count, Reason: a.Reason})
	case ActionRemove:
		r, ok := runners[a.Runner]
		if !ok {
			return
		}
		e.record(ctx, store.Decision{Pool: a.Pool, Action: ActionRemove, Count: 1, Reason: a.Runner + ": " + a.Reason},
			zap.String("runner", a.Runner))
		e.exec.remove(ctx, r, a.Reason, runners)
	default:
		e.log.Error("unknown action from the planner", zap.String("kind", a.Kind), zap.String("pool", a.Pool))
	}
}
