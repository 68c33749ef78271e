package recovery

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/runnerscaler/runnerscaler/internal/clocktest"
	"github.com/runnerscaler/runnerscaler/internal/ghsim"
	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
	"github.com/runnerscaler/runnerscaler/internal/store"
)

type emptyJobs struct{}

func (emptyJobs) Jobs(context.Context, store.JobFilter) ([]store.Job, error) { return nil, nil }

// storeApplier is the JobApplier the daemon will have: it records each
// transition in the real store (and here in a list); failNext makes the
// next calls fail, as an engine that cannot take the event would.
type storeApplier struct {
	st *store.Store

	mu       sync.Mutex
	events   []store.JobEvent
	failNext int
}

func (a *storeApplier) ApplyJobEvent(ctx context.Context, ev store.JobEvent) error {
	a.mu.Lock()
	if a.failNext > 0 {
		a.failNext--
		a.mu.Unlock()
		return errors.New("engine is not taking events")
	}
	a.events = append(a.events, ev)
	a.mu.Unlock()
	if _, err := a.st.Ingest(ctx, SyntheticDelivery(ev), &ev); err != nil {
		return err
	}
	return nil
}

func (a *storeApplier) take() []store.JobEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.events
	a.events = nil
	return out
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"), store.Options{Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// ingestQueued records a queued webhook for job id, queued at at.
func ingestQueued(t *testing.T, st *store.Store, id int64, at time.Time) {
	t.Helper()
	ev := store.JobEvent{
		Action: store.JobQueued, JobID: id, RunID: 1, RepoID: 7, Repo: testRepo, Org: "octo-org",
		InstallationID: 99, Labels: testLabels, Name: "build", At: at,
	}
	d := store.Delivery{GUID: fmt.Sprintf("queued-%d", id), Event: "workflow_job", Action: store.JobQueued}
	if _, err := st.Ingest(context.Background(), d, &ev); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) runner(name string, ephemeral bool) world.Runner {
	h.t.Helper()
	w := h.sim.World()
	r, err := w.RegisterRunner(world.RunnerInput{Scope: world.Scope{Kind: world.Repo, Name: testRepo}, Name: name, Ephemeral: ephemeral})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := w.RunnerOnline(r.ID); err != nil {
		h.t.Fatal(err)
	}
	return r
}

type evKey struct {
	job        int64
	action     string
	conclusion string
	runner     string
}

func keys(evs []store.JobEvent) []evKey {
	out := make([]evKey, len(evs))
	for i, e := range evs {
		out[i] = evKey{e.JobID, e.Action, e.Conclusion, e.RunnerName}
	}
	return out
}

// TestStaleJobsAppliesGitHubState: stale queued jobs that GitHub has
// started, finished, cancelled or forgotten are closed with the transitions
// GitHub's answer implies; a job still queued is left alone and rechecked
// only after the back-off; fresh jobs are not checked.
func TestStaleJobsAppliesGitHubState(t *testing.T) {
	h := newHarness(t)
	ctx := testCtx(t)
	w := h.sim.World()

	a := h.createJobs(1)[0]
	r1 := h.runner("r1", false) // takes a and keeps running it
	b := h.createJobs(1)[0]
	r2 := h.runner("r2", true) // takes b
	if err := w.FinishJob(r2.ID, b); err != nil {
		t.Fatal(err)
	}
	c := h.createJobs(1)[0]
	if err := w.CancelJob(c); err != nil {
		t.Fatal(err)
	}
	d := h.createJobs(1)[0] // r1 is busy: stays queued
	e := h.createJobs(1)[0]
	const gone = 999_999

	st := openStore(t)
	clk := clocktest.New(time.Now())
	now := clk.Now()
	ingestQueued(t, st, a, now.Add(-60*time.Minute))
	ingestQueued(t, st, b, now.Add(-50*time.Minute))
	ingestQueued(t, st, c, now.Add(-40*time.Minute))
	ingestQueued(t, st, d, now.Add(-30*time.Minute))
	ingestQueued(t, st, gone, now.Add(-20*time.Minute))
	ingestQueued(t, st, e, now.Add(-2*time.Minute)) // fresh

	ap := &storeApplier{st: st}
	metrics := &countingMetrics{}
	s := NewStaleJobs(st, h.gh, ap, StaleJobsConfig{Clock: clk.Now, Metrics: metrics}, zaptest.NewLogger(t))

	var res StaleJobsResult
	var err error
	calls := h.callsDuring(routeGetJob, func() { res, err = s.Cycle(ctx) })
	if err != nil {
		t.Fatal(err)
	}
	want := StaleJobsResult{Queued: 6, Fresh: 1, Checked: 5, InProgress: 1, Completed: 2, Gone: 1, StillQueued: 1, Events: 5}
	if res != want || calls != 5 {
		t.Fatalf("cycle: %+v with %d job calls, want %+v with 5", res, calls, want)
	}
	evs := ap.take()
	wantKeys := []evKey{
		{a, store.JobInProgress, "", "r1"},
		{b, store.JobInProgress, "", "r2"},
		{b, store.JobCompleted, "success", "r2"},
		{c, store.JobCompleted, "cancelled", ""},
		{gone, store.JobCompleted, ConclusionGone, ""},
	}
	if got := keys(evs); !slices.Equal(got, wantKeys) {
		t.Fatalf("events %+v, want %+v", got, wantKeys)
	}
	for _, ev := range evs {
		if ev.Repo != testRepo || ev.Org != "octo-org" || ev.RepoID != 7 || ev.InstallationID != 99 || ev.At.IsZero() {
			t.Errorf("event %+v lacks the stored job's identity or a time", ev)
		}
		if ev.RunnerName == "r1" && (ev.RunnerID != r1.ID || ev.RunnerGroupID != 1 || ev.RunnerGroupName != "Default") {
			t.Errorf("in_progress of job %d: runner %d group %d %q, want %d group 1 Default",
				ev.JobID, ev.RunnerID, ev.RunnerGroupID, ev.RunnerGroupName, r1.ID)
		}
		if ev.JobID == gone && !ev.At.Equal(now) {
			t.Errorf("gone job stamped %v, want the clock's %v", ev.At, now)
		}
	}
	if got := metrics.get("stale", StaleCompleted); got != 2 {
		t.Errorf("completed counted %d, want 2", got)
	}

	// The store now agrees with GitHub.
	for id, status := range map[int64]string{a: store.JobInProgress, b: store.JobCompleted, c: store.JobCompleted, gone: store.JobCompleted, d: store.JobQueued, e: store.JobQueued} {
		j, ok, err := st.Job(ctx, id)
		if err != nil || !ok || j.Status != status {
			t.Errorf("job %d: %q (found %v, err %v), want %q", id, j.Status, ok, err, status)
		}
	}
	if j, _, _ := st.Job(ctx, b); j.InProgressAt.IsZero() || j.Conclusion != "success" || j.RunnerName != "r2" {
		t.Errorf("job b after recovery: %+v, want its start, runner and conclusion", j)
	}

	// Right after: d was just checked, e is fresh: no call.
	calls = h.callsDuring(routeGetJob, func() { res, err = s.Cycle(ctx) })
	if err != nil || res.Checked != 0 || res.Backoff != 1 || res.Fresh != 1 || calls != 0 {
		t.Fatalf("next cycle: %+v, %d calls, err %v; want nothing checked", res, calls, err)
	}
	// After the back-off (stale_job_after/2) d is checked again; e (7m) is still fresh.
	clk.Advance(5 * time.Minute)
	calls = h.callsDuring(routeGetJob, func() { res, err = s.Cycle(ctx) })
	if err != nil || res.Checked != 1 || res.StillQueued != 1 || res.Fresh != 1 || calls != 1 {
		t.Fatalf("after the back-off: %+v, %d calls, err %v; want d checked again", res, calls, err)
	}
	clk.Advance(5 * time.Minute)
	calls = h.callsDuring(routeGetJob, func() { res, err = s.Cycle(ctx) })
	if err != nil || res.Checked != 2 || res.StillQueued != 2 || calls != 2 {
		t.Fatalf("e stale too: %+v, %d calls, err %v; want d and e checked", res, calls, err)
	}
	if evs := ap.take(); len(evs) != 0 {
		t.Errorf("events for jobs still queued: %+v", evs)
	}
}

// TestStaleJobsPerCycleBound: at most MaxChecksPerCycle calls per cycle,
// the longest-queued jobs first.
func TestStaleJobsPerCycleBound(t *testing.T) {
	h := newHarness(t)
	ctx := testCtx(t)
	ids := h.createJobs(7)
	for _, id := range ids {
		if err := h.sim.World().CancelJob(id); err != nil {
			t.Fatal(err)
		}
	}
	st := openStore(t)
	clk := clocktest.New(time.Now())
	// Queue times out of id order, so "oldest" is by time, not by id.
	ages := []time.Duration{30, 70, 10, 50, 60, 20, 40}
	byAge := map[time.Duration]int64{}
	for i, id := range ids {
		ingestQueued(t, st, id, clk.Now().Add(-(ages[i]+15)*time.Minute))
		byAge[ages[i]] = id
	}
	ap := &storeApplier{st: st}
	s := NewStaleJobs(st, h.gh, ap, StaleJobsConfig{Clock: clk.Now, MaxChecksPerCycle: 3}, zaptest.NewLogger(t))

	steps := []struct {
		ages    []time.Duration
		skipped int
	}{
		{[]time.Duration{70, 60, 50}, 4},
		{[]time.Duration{40, 30, 20}, 1},
		{[]time.Duration{10}, 0},
		{nil, 0},
	}
	for i, step := range steps {
		var res StaleJobsResult
		var err error
		calls := h.callsDuring(routeGetJob, func() { res, err = s.Cycle(ctx) })
		if err != nil || res.Checked != len(step.ages) || res.SkippedLimit != step.skipped || calls != len(step.ages) {
			t.Fatalf("cycle %d: %+v, %d calls, err %v; want %d checked, %d skipped", i+1, res, calls, err, len(step.ages), step.skipped)
		}
		var want []evKey
		for _, age := range step.ages {
			want = append(want, evKey{byAge[age], store.JobCompleted, "cancelled", ""})
		}
		if got := keys(ap.take()); !slices.Equal(got, want) {
			t.Errorf("cycle %d: events %+v, want %+v", i+1, got, want)
		}
	}
}

// TestStaleJobsRetriesFailures: a failed GitHub call, or an applier that
// fails, leaves the job to the next cycle, without waiting for the back-off.
func TestStaleJobsRetriesFailures(t *testing.T) {
	h := newHarness(t)
	ctx := testCtx(t)
	ids := h.createJobs(2)
	for _, id := range ids {
		if err := h.sim.World().CancelJob(id); err != nil {
			t.Fatal(err)
		}
	}
	st := openStore(t)
	clk := clocktest.New(time.Now())
	ingestQueued(t, st, ids[0], clk.Now().Add(-40*time.Minute))
	ingestQueued(t, st, ids[1], clk.Now().Add(-30*time.Minute))
	ap := &storeApplier{st: st}
	metrics := &countingMetrics{}
	s := NewStaleJobs(st, h.gh, ap, StaleJobsConfig{Clock: clk.Now, Metrics: metrics}, zaptest.NewLogger(t))

	h.addFault(ghsim.FaultSpec{Route: routeGetJob, Status: 502, Count: 1})
	res, err := s.Cycle(ctx)
	if err == nil || res.Errors != 1 || res.Completed != 1 {
		t.Fatalf("cycle with a failing call: %+v, err %v; want 1 error, 1 completed", res, err)
	}
	if got := keys(ap.take()); !slices.Equal(got, []evKey{{ids[1], store.JobCompleted, "cancelled", ""}}) {
		t.Errorf("events %+v, want the second job's", got)
	}
	res, err = s.Cycle(ctx)
	if err != nil || res.Checked != 1 || res.Completed != 1 {
		t.Fatalf("retry: %+v, err %v; want the first job checked again", res, err)
	}
	ap.take()

	// The applier fails: the job is checked and applied again next cycle.
	more := h.createJobs(1)
	if err := h.sim.World().CancelJob(more[0]); err != nil {
		t.Fatal(err)
	}
	ingestQueued(t, st, more[0], clk.Now().Add(-20*time.Minute))
	ap.mu.Lock()
	ap.failNext = 1
	ap.mu.Unlock()
	if res, err = s.Cycle(ctx); err == nil || res.ApplyFailed != 1 || res.Events != 0 {
		t.Fatalf("cycle with a failing applier: %+v, err %v; want 1 apply failure", res, err)
	}
	if res, err = s.Cycle(ctx); err != nil || res.Completed != 1 || res.Events != 1 {
		t.Fatalf("retry after the applier failed: %+v, err %v; want it applied", res, err)
	}
	if q, err := st.Jobs(ctx, store.JobFilter{Status: store.JobQueued}); err != nil || len(q) != 0 {
		t.Errorf("queued jobs left: %v (err %v)", q, err)
	}
	if metrics.get("stale", StaleError) != 1 || metrics.get("stale", StaleApplyFailed) != 1 {
		t.Errorf("metrics %v, want one error and one apply failure", metrics.n)
	}
}
