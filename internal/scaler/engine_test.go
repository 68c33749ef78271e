package scaler

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/runnerscaler/runnerscaler/internal/clocktest"
	"github.com/runnerscaler/runnerscaler/internal/ghapi"
	"github.com/runnerscaler/runnerscaler/internal/provisioner"
	"github.com/runnerscaler/runnerscaler/internal/secret"
	"github.com/runnerscaler/runnerscaler/internal/store"
)

type fakeGitHub struct {
	mu       sync.Mutex
	nextID   int64
	jit      []ghapi.JITRequest
	deleted  []int64
	busy     map[int64]bool
	tokens   int
	jitError error
	// calls lists the removal calls in order: "get 3", "unlabel 3",
	// "label 3", "delete 3".
	calls []string
	// lyingBusy: GetRunner says busy: false for these even when busy (the
	// lagging flag); DELETE still answers 422.
	lyingBusy map[int64]bool
	// onGet, when set, runs on every GetRunner (tests use it to make a job
	// arrive between two reads).
	onGet func(id int64, n int)
	gets  int
	// listed is what ListRunners returns.
	listed []*ghapi.Runner
}

func (f *fakeGitHub) ListRunners(context.Context, ghapi.Scope, ghapi.ListRunnersOptions) ([]*ghapi.Runner, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*ghapi.Runner
	for _, r := range f.listed {
		if !slices.Contains(f.deleted, r.GetID()) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeGitHub) GetRunner(_ context.Context, _ ghapi.Scope, id int64) (*ghapi.Runner, error) {
	f.mu.Lock()
	f.gets++
	n, hook := f.gets, f.onGet
	f.calls = append(f.calls, fmt.Sprintf("get %d", id))
	f.mu.Unlock()
	if hook != nil {
		hook(id, n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if slices.Contains(f.deleted, id) {
		return nil, ghapi.ErrNotFound
	}
	return &github.Runner{ID: github.Int64(id), Busy: github.Bool(f.busy[id] && !f.lyingBusy[id])}, nil
}

func (f *fakeGitHub) RemoveAllRunnerLabels(_ context.Context, _ ghapi.Scope, id int64) ([]*ghapi.RunnerLabel, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("unlabel %d", id))
	return []*ghapi.RunnerLabel{{Name: github.String("self-hosted")}, {Name: github.String("linux")}, {Name: github.String("x64")}}, nil
}

func (f *fakeGitHub) AddRunnerLabels(_ context.Context, _ ghapi.Scope, id int64, labels []string) ([]*ghapi.RunnerLabel, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("label %d %s", id, strings.Join(labels, ",")))
	return nil, nil
}

func (f *fakeGitHub) GenerateJITConfig(_ context.Context, _ ghapi.Scope, req ghapi.JITRequest) (*ghapi.JITConfig, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.jitError != nil {
		return nil, f.jitError
	}
	f.nextID++
	f.jit = append(f.jit, req)
	return &ghapi.JITConfig{Runner: &github.Runner{ID: github.Int64(f.nextID), Name: github.String(req.Name)},
		Encoded: secret.String("JITSECRET-" + req.Name)}, nil
}

func (f *fakeGitHub) RegistrationToken(context.Context, ghapi.Scope) (*ghapi.RegistrationToken, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens++
	return &ghapi.RegistrationToken{Token: "TOKENSECRET", ExpiresAt: time.Now().Add(time.Hour)}, nil
}

func (f *fakeGitHub) DeleteRunner(_ context.Context, _ ghapi.Scope, id int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("delete %d", id))
	if f.busy[id] {
		return ghapi.ErrRunnerBusy
	}
	f.deleted = append(f.deleted, id)
	return nil
}

type fakeProv struct {
	mu      sync.Mutex
	fail    int // creates left to fail
	specs   []provisioner.Spec
	insts   map[string]provisioner.Instance
	deleted []string
}

func (p *fakeProv) Create(_ context.Context, s provisioner.Spec) (provisioner.Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.specs = append(p.specs, s)
	if p.fail > 0 {
		p.fail--
		return provisioner.Instance{}, errors.New("boom")
	}
	in := provisioner.Instance{ID: "i-" + s.RunnerName, Pool: s.Pool, RunnerName: s.RunnerName, State: provisioner.StateRunning}
	if p.insts == nil {
		p.insts = map[string]provisioner.Instance{}
	}
	p.insts[in.ID] = in
	return in, nil
}

func (p *fakeProv) Delete(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.insts, id)
	p.deleted = append(p.deleted, id)
	return nil
}

func (p *fakeProv) List(context.Context) ([]provisioner.Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []provisioner.Instance
	for _, in := range p.insts {
		out = append(out, in)
	}
	return out, nil
}

func (p *fakeProv) Get(_ context.Context, id string) (provisioner.Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	in, ok := p.insts[id]
	if !ok {
		return provisioner.Instance{}, provisioner.ErrNotFound
	}
	return in, nil
}

type engineEnv struct {
	e    *Engine
	st   *store.Store
	gh   *fakeGitHub
	prov *fakeProv
}

func newEngineEnv(t *testing.T, pools ...Pool) *engineEnv {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	env := &engineEnv{st: st, gh: &fakeGitHub{busy: map[int64]bool{}}, prov: &fakeProv{}}
	env.e, err = New(EngineConfig{
		Pools: pools, Store: st, GitHub: env.gh,
		Provisioners: map[string]provisioner.Provisioner{"p": env.prov},
		Access:       AllowAll{}, CreateBackoff: time.Millisecond, ConfirmInterval: time.Millisecond, RemovalSettle: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// event stores a job transition and tells the engine, as the webhook intake does.
func (env *engineEnv) event(t *testing.T, ev store.JobEvent) {
	t.Helper()
	res, err := env.st.Ingest(context.Background(), store.Delivery{GUID: strings.Repeat("x", 3) + ev.Action + time.Now().String(),
		Event: "workflow_job", Action: ev.Action, ReceivedAt: time.Now(), Outcome: "job"}, &ev)
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied {
		env.e.JobChanged(context.Background(), res.Job)
	}
}

func (env *engineEnv) pass(t *testing.T) {
	t.Helper()
	if err := env.e.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	env.e.exec.wait()
}

func orgPool() Pool {
	return Pool{Name: "small", Scope: ghapi.Org("octo-org"), RunnerGroup: "Default", Labels: []string{"small"},
		OS: "linux", Arch: "x64", MaxRunners: 5, Ephemeral: true, Registration: "jit", Provisioner: "p"}
}

func TestEngineLaunchesForAQueuedJob(t *testing.T) {
	env := newEngineEnv(t, orgPool())
	env.event(t, store.JobEvent{Action: store.JobQueued, JobID: 1, Repo: "octo-org/app", Org: "octo-org", Labels: []string{"small"}})
	env.event(t, store.JobEvent{Action: store.JobQueued, JobID: 2, Repo: "octo-org/app", Org: "octo-org", Labels: []string{"ubuntu-latest"}})
	env.pass(t)

	if len(env.gh.jit) != 1 || len(env.prov.specs) != 1 {
		t.Fatalf("%d JIT calls, %d creates; want 1 and 1", len(env.gh.jit), len(env.prov.specs))
	}
	req, spec := env.gh.jit[0], env.prov.specs[0]
	if !strings.HasPrefix(req.Name, "small-") || req.RunnerGroupID != 1 || strings.Join(req.Labels, ",") != "self-hosted,linux,x64,small" {
		t.Errorf("JIT request %+v", req)
	}
	if spec.RunnerName != req.Name || spec.ScopeURL != "https://github.com/octo-org" || spec.Registration.JITConfig.Reveal() != "JITSECRET-"+req.Name {
		t.Errorf("spec %+v", spec)
	}
	rs, _ := env.st.Runners(context.Background(), "small")
	if len(rs) != 1 || rs[0].State != RunnerStarting || rs[0].GitHubID != 1 || rs[0].InstanceID != "i-"+req.Name {
		t.Fatalf("stored runners %+v", rs)
	}
	if j, _, _ := env.st.Job(context.Background(), 1); j.Pool != "small" {
		t.Errorf("job 1 pool %q", j.Pool)
	}
	st := env.e.Stats()
	if st.JobsMatched != 1 || st.JobsUnmatched != 1 || st.RunnersLaunched != 1 {
		t.Errorf("stats %+v", st)
	}
	if lat := env.e.CreateLatencies(); len(lat) != 1 || lat[0] < 0 {
		t.Errorf("latencies %v", lat)
	}
	ds, _ := env.st.Decisions(context.Background(), 0)
	var unmatched, creates int
	for _, d := range ds {
		switch d.Action {
		case "unmatched":
			unmatched++
			if !strings.Contains(d.Reason, "job 2") {
				t.Errorf("unmatched reason %q", d.Reason)
			}
		case ActionCreate:
			creates++
		}
	}
	if unmatched != 1 || creates != 1 {
		t.Errorf("decisions %+v", ds)
	}

	// A second pass changes nothing: the runner covers the job.
	env.pass(t)
	if len(env.prov.specs) != 1 {
		t.Errorf("%d creates after a second pass", len(env.prov.specs))
	}

	// The runner takes the job, finishes it, and its instance goes.
	name := req.Name
	env.event(t, store.JobEvent{Action: store.JobInProgress, JobID: 1, RunnerName: name, RunnerID: 1})
	env.pass(t)
	rs, _ = env.st.Runners(context.Background(), "small")
	if rs[0].State != RunnerBusy || rs[0].JobID != 1 {
		t.Fatalf("after in_progress: %+v", rs[0])
	}
	env.event(t, store.JobEvent{Action: store.JobCompleted, JobID: 1, RunnerName: name, RunnerID: 1, Conclusion: "success"})
	env.pass(t)
	rs, _ = env.st.Runners(context.Background(), "small")
	if rs[0].State != runnerRemoved || len(env.prov.deleted) != 1 || len(env.prov.insts) != 0 {
		t.Fatalf("after completed: %+v, deleted %v", rs[0], env.prov.deleted)
	}
	if len(env.prov.specs) != 1 {
		t.Errorf("%d creates in all, want 1", len(env.prov.specs))
	}
}

func TestEngineFailedCreateUnregistersAndRetries(t *testing.T) {
	env := newEngineEnv(t, orgPool())
	env.prov.fail = 1
	env.event(t, store.JobEvent{Action: store.JobQueued, JobID: 7, Repo: "octo-org/app", Org: "octo-org", Labels: []string{"small"}})
	env.pass(t)
	if len(env.gh.jit) != 2 || len(env.prov.specs) != 2 {
		t.Fatalf("%d JIT calls, %d creates; want 2 and 2", len(env.gh.jit), len(env.prov.specs))
	}
	if len(env.gh.deleted) != 1 || env.gh.deleted[0] != 1 {
		t.Errorf("deleted runners %v, want [1] (the first registration)", env.gh.deleted)
	}
	rs, _ := env.st.Runners(context.Background(), "")
	if len(rs) != 1 || rs[0].GitHubID != 2 {
		t.Errorf("runners %+v", rs)
	}
}

func TestEngineRemovesIdleRunnersButNotBusyOnes(t *testing.T) {
	p := orgPool()
	p.IdleTimeout = 0
	env := newEngineEnv(t, p)
	ctx := context.Background()
	old := time.Now().Add(-time.Hour)
	for i, name := range []string{"small-a", "small-b"} {
		env.prov.insts = map[string]provisioner.Instance{}
		if err := env.st.PutRunner(ctx, store.Runner{Name: name, Pool: "small", GitHubID: int64(10 + i), Provisioner: "p",
			InstanceID: "i-" + name, State: RunnerIdle, CreatedAt: old}); err != nil {
			t.Fatal(err)
		}
	}
	env.prov.insts = map[string]provisioner.Instance{
		"i-small-a": {ID: "i-small-a", State: provisioner.StateRunning},
		"i-small-b": {ID: "i-small-b", State: provisioner.StateRunning},
	}
	env.gh.busy[11] = true // GitHub says small-b took a job
	env.pass(t)
	rs, _ := env.st.Runners(ctx, "small")
	got := map[string]string{}
	for _, r := range rs {
		got[r.Name] = r.State
	}
	if got["small-a"] != runnerRemoved || got["small-b"] != RunnerBusy {
		t.Errorf("states %v", got)
	}
	if len(env.prov.deleted) != 1 || env.prov.deleted[0] != "i-small-a" {
		t.Errorf("deleted instances %v", env.prov.deleted)
	}
}

func TestEngineRunWakesOnEvents(t *testing.T) {
	env := newEngineEnv(t, orgPool())
	env.e.cfg.Interval = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- env.e.Run(ctx) }()
	env.event(t, store.JobEvent{Action: store.JobQueued, JobID: 3, Repo: "octo-org/app", Org: "octo-org", Labels: []string{"small"}})
	deadline := time.Now().Add(5 * time.Second)
	for env.e.Stats().RunnersLaunched == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if env.e.Stats().RunnersLaunched != 1 {
		t.Fatal("no runner launched without a timer tick")
	}
}

// stopInstance makes the fake instance of runner name exit cleanly, as an
// ephemeral runner does after its job.
func (env *engineEnv) stopInstance(t *testing.T, name string) {
	t.Helper()
	env.prov.mu.Lock()
	defer env.prov.mu.Unlock()
	in, ok := env.prov.insts["i-"+name]
	if !ok {
		t.Fatalf("no instance for %s", name)
	}
	in.State = provisioner.StateStopped
	env.prov.insts[in.ID] = in
}

func (env *engineEnv) runner(t *testing.T, name string) store.Runner {
	t.Helper()
	rs, err := env.st.Runners(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("runner %s not stored", name)
	return store.Runner{}
}

// An ephemeral runner that finished its job before the job's webhooks
// arrived stands in for a queued job: no surplus runner is launched for a
// job that already ran, and its instance goes at once.
func TestEngineEndedRunnerStandsInForItsLateJob(t *testing.T) {
	env := newEngineEnv(t, orgPool())
	queued := func(id int64) store.JobEvent {
		return store.JobEvent{Action: store.JobQueued, JobID: id, Repo: "octo-org/app", Org: "octo-org", Labels: []string{"small"}}
	}
	env.event(t, queued(1))
	env.pass(t)
	env.pass(t) // instance running: idle
	if len(env.prov.specs) != 1 {
		t.Fatalf("%d creates, want 1", len(env.prov.specs))
	}
	first := env.prov.specs[0].RunnerName
	env.stopInstance(t, first)
	env.pass(t)
	if r := env.runner(t, first); r.State != runnerEnded {
		t.Fatalf("runner %s is %s, want %s", first, r.State, runnerEnded)
	}
	if len(env.prov.specs) != 1 {
		t.Errorf("%d creates after the runner ended before its job's events, want 1", len(env.prov.specs))
	}
	if len(env.prov.deleted) != 1 || len(env.gh.deleted) != 0 {
		t.Errorf("instances deleted %v, runners unregistered %v; want its instance only", env.prov.deleted, env.gh.deleted)
	}

	// A second job is demand of its own.
	env.event(t, queued(2))
	env.pass(t)
	if len(env.prov.specs) != 2 {
		t.Fatalf("%d creates with a second job queued, want 2", len(env.prov.specs))
	}

	// The late events name the ended runner: it is accounted for.
	env.event(t, store.JobEvent{Action: store.JobInProgress, JobID: 1, RunnerName: first, RunnerID: 1})
	env.event(t, store.JobEvent{Action: store.JobCompleted, JobID: 1, RunnerName: first, RunnerID: 1, Conclusion: "success"})
	env.pass(t)
	if r := env.runner(t, first); r.State != runnerRemoved || r.JobID != 1 {
		t.Errorf("after its job's events: %s job %d, want %s job 1", r.State, r.JobID, runnerRemoved)
	}
	if len(env.prov.specs) != 2 || len(env.gh.deleted) != 0 {
		t.Errorf("%d creates, runners unregistered %v; want 2 and none", len(env.prov.specs), env.gh.deleted)
	}
}

// When no job event names an ended runner within the grace, the runner is
// unregistered and its queued job counts as demand again.
func TestEngineEndedRunnerGraceExpires(t *testing.T) {
	env := newEngineEnv(t, orgPool())
	clk := clocktest.New(time.Now())
	env.e.now = clk.Now
	env.event(t, store.JobEvent{Action: store.JobQueued, JobID: 1, Repo: "octo-org/app", Org: "octo-org", Labels: []string{"small"}})
	env.pass(t)
	first := env.prov.specs[0].RunnerName
	env.stopInstance(t, first)
	env.pass(t)
	env.pass(t)
	if len(env.prov.specs) != 1 {
		t.Fatalf("%d creates within the grace, want 1", len(env.prov.specs))
	}
	clk.Advance(DefaultEndedRunnerGrace + time.Second)
	env.pass(t) // unregisters the ended runner
	env.pass(t) // the job is demand again
	if r := env.runner(t, first); r.State != runnerFailed || !strings.Contains(r.LastError, "no job named it") {
		t.Errorf("runner %s after the grace: %s %q", first, r.State, r.LastError)
	}
	if len(env.gh.deleted) != 1 || env.gh.deleted[0] != 1 {
		t.Errorf("runners unregistered %v, want [1]", env.gh.deleted)
	}
	if len(env.prov.specs) != 2 {
		t.Errorf("%d creates after the grace, want 2", len(env.prov.specs))
	}
}

// A job's in_progress event handled before its runner was stored still
// makes the runner busy: it is never removed as idle.
func TestEngineRunnerBusyFromAnEarlierJobEvent(t *testing.T) {
	p := orgPool()
	p.IdleTimeout = 0
	env := newEngineEnv(t, p)
	ctx := context.Background()
	env.event(t, store.JobEvent{Action: store.JobQueued, JobID: 5, Repo: "octo-org/app", Org: "octo-org", Labels: []string{"small"}})
	env.event(t, store.JobEvent{Action: store.JobInProgress, JobID: 5, RunnerName: "small-early", RunnerID: 9})
	if err := env.st.PutRunner(ctx, store.Runner{Name: "small-early", Pool: "small", GitHubID: 9, Provisioner: "p",
		InstanceID: "i-small-early", State: RunnerIdle, CreatedAt: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	env.prov.insts = map[string]provisioner.Instance{"i-small-early": {ID: "i-small-early", State: provisioner.StateRunning}}
	env.pass(t)
	if r := env.runner(t, "small-early"); r.State != RunnerBusy || r.JobID != 5 {
		t.Errorf("runner %s job %d, want busy with job 5", r.State, r.JobID)
	}
	if len(env.gh.deleted) != 0 || len(env.prov.deleted) != 0 || len(env.prov.specs) != 0 {
		t.Errorf("unregistered %v, instances deleted %v, creates %d; want none", env.gh.deleted, env.prov.deleted, len(env.prov.specs))
	}
}

func TestOffsetEnded(t *testing.T) {
	t0 := time.Now()
	jobs := []JobView{
		{ID: 1, Pool: "a", Status: store.JobQueued, QueuedAt: t0.Add(3 * time.Second)},
		{ID: 2, Pool: "a", Status: store.JobQueued, QueuedAt: t0.Add(1 * time.Second)},
		{ID: 3, Pool: "a", Status: store.JobInProgress, QueuedAt: t0},
		{ID: 4, Pool: "b", Status: store.JobQueued, QueuedAt: t0},
		{ID: 5, Pool: "a", Status: store.JobQueued, QueuedAt: t0.Add(2 * time.Second)},
	}
	ids := func(js []JobView) []int64 {
		var out []int64
		for _, j := range js {
			out = append(out, j.ID)
		}
		return out
	}
	for _, tt := range []struct {
		ended map[string]int
		want  []int64
	}{
		{nil, []int64{1, 2, 3, 4, 5}},
		{map[string]int{"a": 1}, []int64{1, 3, 4, 5}},
		{map[string]int{"a": 2, "b": 1}, []int64{1, 3}},
		{map[string]int{"a": 9}, []int64{3, 4}},
		{map[string]int{"c": 1}, []int64{1, 2, 3, 4, 5}},
	} {
		if got := ids(offsetEnded(jobs, tt.ended)); !slices.Equal(got, tt.want) {
			t.Errorf("offsetEnded(%v) = %v, want %v", tt.ended, got, tt.want)
		}
	}
}

// A pass that reads the store before an executor goroutine's write lands
// still sees what the goroutine was handed; once the store shows the write,
// the note is forgotten.
func TestFreshRunnersSeeWritesInFlight(t *testing.T) {
	env := newEngineEnv(t, orgPool())
	ctx := context.Background()
	r := store.Runner{Name: "small-a", Pool: "small", Provisioner: "p", InstanceID: "i-small-a", State: RunnerStarting, CreatedAt: time.Now()}
	if err := env.st.PutRunner(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.State = RunnerDraining
	env.e.noteRunner(r) // handed to a goroutine; not written yet
	got, err := env.e.freshRunners(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got["small-a"].State != RunnerDraining {
		t.Fatalf("before the write: %s, want %s", got["small-a"].State, RunnerDraining)
	}
	r.State = runnerRemoved
	if err := env.e.putRunner(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, _ = env.e.freshRunners(ctx); got["small-a"].State != runnerRemoved {
		t.Fatalf("after the write: %s", got["small-a"].State)
	}
	env.e.mu.Lock()
	left := len(env.e.written)
	env.e.mu.Unlock()
	if left != 0 {
		t.Errorf("%d notes left after the store caught up", left)
	}
}

func TestEngineMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := NewPrometheusMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	env := newEngineEnv(t, orgPool())
	env.e.cfg.Metrics = m
	env.event(t, store.JobEvent{Action: store.JobQueued, JobID: 1, Repo: "octo-org/app", Org: "octo-org", Labels: []string{"small"}})
	env.event(t, store.JobEvent{Action: store.JobQueued, JobID: 2, Repo: "octo-org/app", Org: "octo-org", Labels: []string{"ubuntu-latest"}})
	env.pass(t)
	for _, tt := range []struct {
		name string
		got  float64
		want float64
	}{
		{"matched small", testutil.ToFloat64(m.matched.WithLabelValues("small")), 1},
		{"unmatched", testutil.ToFloat64(m.unmatched), 1},
		{"launched", testutil.ToFloat64(m.launched.WithLabelValues("small")), 1},
		{"failed", testutil.ToFloat64(m.failed.WithLabelValues("small", "p")), 0},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if n := testutil.CollectAndCount(m.latency, "runnerscaler_queued_to_create_seconds"); n != 1 {
		t.Errorf("%d latency series, want 1", n)
	}
	// The job runs on the runner and ends: queue, run and start-up times,
	// and the removal of the ephemeral runner.
	name := env.prov.specs[0].RunnerName
	t0 := time.Now().Add(-time.Minute)
	env.event(t, store.JobEvent{Action: store.JobInProgress, JobID: 1, RunnerName: name, RunnerID: 1, At: t0.Add(5 * time.Second)})
	env.event(t, store.JobEvent{Action: store.JobCompleted, JobID: 1, RunnerName: name, RunnerID: 1, Conclusion: "success", At: t0.Add(35 * time.Second)})
	env.pass(t)
	if got := testutil.ToFloat64(m.removed.WithLabelValues("small", RemovedJobDone)); got != 1 {
		t.Errorf("runners removed (job_done) = %v, want 1", got)
	}
	for _, h := range []struct {
		name string
		c    prometheus.Collector
	}{{"runnerscaler_job_queue_duration_seconds", m.queue}, {"runnerscaler_job_run_duration_seconds", m.run},
		{"runnerscaler_runner_startup_duration_seconds", m.startup}} {
		if n := testutil.CollectAndCount(h.c, h.name); n != 1 {
			t.Errorf("%s: %d series, want 1", h.name, n)
		}
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "runnerscaler_queued_to_create_seconds" {
			if c := mf.GetMetric()[0].GetHistogram().GetSampleCount(); c != 1 {
				t.Errorf("latency observations %d, want 1", c)
			}
		}
	}
}

// removalEnv is one idle runner (GitHub id 10, idle for an hour) in a pool
// whose idle_timeout has passed, so the planner removes it.
func removalEnv(t *testing.T) *engineEnv {
	t.Helper()
	p := orgPool()
	p.IdleTimeout = 0
	env := newEngineEnv(t, p)
	env.gh.lyingBusy = map[int64]bool{}
	if err := env.st.PutRunner(context.Background(), store.Runner{Name: "small-a", Pool: "small", GitHubID: 10, Provisioner: "p",
		InstanceID: "i-small-a", State: RunnerIdle, CreatedAt: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	env.prov.insts = map[string]provisioner.Instance{"i-small-a": {ID: "i-small-a", State: provisioner.StateRunning}}
	return env
}

func TestRemovalSteps(t *testing.T) {
	env := removalEnv(t)
	env.pass(t)
	if want := []string{"get 10", "get 10", "unlabel 10", "get 10", "delete 10", "get 10"}; !slices.Equal(env.gh.calls, want) {
		t.Errorf("calls %q, want %q", env.gh.calls, want)
	}
	if r := env.runner(t, "small-a"); r.State != runnerRemoved {
		t.Errorf("runner %s, want removed", r.State)
	}
	if !slices.Equal(env.prov.deleted, []string{"i-small-a"}) {
		t.Errorf("instances deleted %v", env.prov.deleted)
	}
}

// Each way a job shows up during a removal aborts it, puts the labels back
// when they were taken, and keeps the runner and its machine.
func TestRemovalAbortsOnAnySignOfAJob(t *testing.T) {
	inProgress := func(env *engineEnv) {
		env.event(t, store.JobEvent{Action: store.JobQueued, JobID: 77, Repo: "octo-org/app", Org: "octo-org", Labels: []string{"small"}})
		env.event(t, store.JobEvent{Action: store.JobInProgress, JobID: 77, RunnerName: "small-a", RunnerID: 10})
	}
	for _, tt := range []struct {
		name      string
		setup     func(env *engineEnv)
		wantCalls []string
		wantJob   int64
	}{
		{
			name:      "GitHub says busy on the first read",
			setup:     func(env *engineEnv) { env.gh.busy[10] = true },
			wantCalls: []string{"get 10"},
		},
		{
			name: "in_progress arrives between the two reads (busy flag lagging)",
			setup: func(env *engineEnv) {
				env.gh.onGet = func(_ int64, n int) {
					if n == 1 {
						env.gh.busy[10], env.gh.lyingBusy[10] = true, true
						inProgress(env)
					}
				}
			},
			wantCalls: []string{"get 10"},
			wantJob:   77,
		},
		{
			name: "in_progress arrives after the labels came off",
			setup: func(env *engineEnv) {
				env.gh.onGet = func(_ int64, n int) {
					if n == 2 {
						env.gh.busy[10], env.gh.lyingBusy[10] = true, true
						inProgress(env)
					}
				}
			},
			wantCalls: []string{"get 10", "get 10", "unlabel 10", "label 10 small"},
			wantJob:   77,
		},
		{
			name: "the delete is refused: busy, though every read said idle",
			setup: func(env *engineEnv) {
				env.gh.busy[10], env.gh.lyingBusy[10] = true, true
			},
			wantCalls: []string{"get 10", "get 10", "unlabel 10", "get 10", "delete 10", "label 10 small"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := removalEnv(t)
			tt.setup(env)
			env.pass(t)
			env.gh.mu.Lock()
			calls := slices.Clone(env.gh.calls)
			env.gh.mu.Unlock()
			if !slices.Equal(calls, tt.wantCalls) {
				t.Errorf("calls %q, want %q", calls, tt.wantCalls)
			}
			r := env.runner(t, "small-a")
			if r.State != RunnerBusy || r.JobID != tt.wantJob {
				t.Errorf("runner %s job %d, want busy job %d", r.State, r.JobID, tt.wantJob)
			}
			if len(env.prov.deleted) != 0 || len(env.gh.deleted) != 0 {
				t.Errorf("instances deleted %v, runners deleted %v; want none", env.prov.deleted, env.gh.deleted)
			}
			ds, _ := env.st.Decisions(context.Background(), 0)
			kept := false
			for _, d := range ds {
				kept = kept || d.Action == "keep" && strings.Contains(d.Reason, "removal aborted")
			}
			if !kept {
				t.Errorf("no keep decision recorded: %+v", ds)
			}
		})
	}
}

func ghRunner(id int64, name, status string, busy bool) *ghapi.Runner {
	return &github.Runner{ID: github.Int64(id), Name: github.String(name), Status: github.String(status), Busy: github.Bool(busy)}
}

// reconcileEnv has the daemon id "rs-00000000abcdef" (short "abcdef") and a
// clock the test moves.
func reconcileEnv(t *testing.T) (*engineEnv, *clocktest.Clock) {
	t.Helper()
	env := newEngineEnv(t, orgPool())
	clk := clocktest.New(time.Now())
	env.e.now = clk.Now
	env.e.shortID = shortDaemonID("rs-00000000abcdef")
	return env, clk
}

func (env *engineEnv) reconcile(t *testing.T) ReconcileResult {
	t.Helper()
	res, err := env.e.Reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	env.e.exec.wait()
	return res
}

func TestReconcileRetiresRunnersWhoseMachineOrRegistrationIsGone(t *testing.T) {
	env, clk := reconcileEnv(t)
	ctx := context.Background()
	old := clk.Now().Add(-time.Hour)
	put := func(r store.Runner) {
		t.Helper()
		r.Pool, r.Provisioner, r.Scope = "small", "p", ghapi.Org("octo-org").String()
		if err := env.st.PutRunner(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// busy, but its machine is gone
	put(store.Runner{Name: "small-abcdef-00000001", GitHubID: 1, InstanceID: "i-1", State: RunnerBusy, JobID: 9, CreatedAt: old})
	// never came online
	put(store.Runner{Name: "small-abcdef-00000002", GitHubID: 2, InstanceID: "i-2", State: RunnerStarting, CreatedAt: old})
	// offline (its process hung)
	put(store.Runner{Name: "small-abcdef-00000003", GitHubID: 3, InstanceID: "i-3", State: RunnerIdle, CreatedAt: old})
	// fine
	put(store.Runner{Name: "small-abcdef-00000004", GitHubID: 4, InstanceID: "i-4", State: RunnerIdle, CreatedAt: old})
	env.prov.insts = map[string]provisioner.Instance{}
	for _, id := range []string{"i-2", "i-3", "i-4"} {
		env.prov.insts[id] = provisioner.Instance{ID: id, Pool: "small", State: provisioner.StateRunning, CreatedAt: old}
	}
	env.gh.listed = []*ghapi.Runner{
		ghRunner(1, "small-abcdef-00000001", "online", true),
		ghRunner(2, "small-abcdef-00000002", "offline", false),
		ghRunner(3, "small-abcdef-00000003", "offline", false),
		ghRunner(4, "small-abcdef-00000004", "online", false),
	}
	res := env.reconcile(t)
	if res.Retired != 2 {
		t.Errorf("first reconcile retired %d, want 2 (machine gone, never online): %+v", res.Retired, res)
	}
	for name, want := range map[string]string{"small-abcdef-00000001": runnerFailed, "small-abcdef-00000002": runnerFailed,
		"small-abcdef-00000003": RunnerIdle, "small-abcdef-00000004": RunnerIdle} {
		if r := env.runner(t, name); r.State != want {
			t.Errorf("%s: %s, want %s", name, r.State, want)
		}
	}
	// Offline for longer than offline_timeout: retired on a later reading.
	clk.Advance(env.e.cfg.OfflineTimeout + time.Second)
	if res := env.reconcile(t); res.Retired != 1 {
		t.Errorf("second reconcile retired %d, want 1 (offline too long)", res.Retired)
	}
	if r := env.runner(t, "small-abcdef-00000003"); r.State != runnerFailed || !strings.Contains(r.LastError, "offline") {
		t.Errorf("offline runner: %s %q", r.State, r.LastError)
	}
	if r := env.runner(t, "small-abcdef-00000004"); r.State != RunnerIdle {
		t.Errorf("healthy runner: %s", r.State)
	}
	slices.Sort(env.gh.deleted)
	if !slices.Equal(env.gh.deleted, []int64{1, 2, 3}) {
		t.Errorf("registrations deleted %v, want [1 2 3]", env.gh.deleted)
	}
}

func TestReconcileAdoptsAndCleansUpButNeverTouchesForeignRunners(t *testing.T) {
	env, clk := reconcileEnv(t)
	old := clk.Now().Add(-time.Hour)
	env.prov.insts = map[string]provisioner.Instance{
		// a create cut short after the provisioner made it: GitHub has its runner
		"i-adopt": {ID: "i-adopt", Pool: "small", RunnerName: "small-abcdef-0000000a", State: provisioner.StateRunning, CreatedAt: old},
		// ours, but nobody knows its runner
		"i-orphan": {ID: "i-orphan", Pool: "small", RunnerName: "small-abcdef-0000000b", State: provisioner.StateRunning, CreatedAt: old},
	}
	env.gh.listed = []*ghapi.Runner{
		ghRunner(10, "small-abcdef-0000000a", "online", false),
		ghRunner(11, "small-abcdef-0000000c", "offline", false), // registered, machine never made
		ghRunner(12, "small-abcdef-0000000d", "online", true),   // same, but busy: never touched
		ghRunner(20, "small-123456-0000000e", "offline", false), // another daemon's
		ghRunner(21, "build-box", "offline", false),             // someone's own runner
		ghRunner(22, "small-0000000f", "offline", false),        // our pool's prefix without our id
	}
	res := env.reconcile(t)
	if res.Adopted != 1 || res.OrphansGone != 0 {
		t.Errorf("first reconcile: %+v, want 1 adopted and no deletion before the grace", res)
	}
	if r := env.runner(t, "small-abcdef-0000000a"); r.State != RunnerIdle || r.GitHubID != 10 || r.InstanceID != "i-adopt" {
		t.Errorf("adopted runner %+v", r)
	}
	clk.Advance(env.e.cfg.OrphanGrace + time.Second)
	res = env.reconcile(t)
	if res.OrphansGone != 2 {
		t.Errorf("after the grace: %+v, want 2 orphans deleted (one instance, one registration)", res)
	}
	if !slices.Equal(env.prov.deleted, []string{"i-orphan"}) {
		t.Errorf("instances deleted %v, want [i-orphan]", env.prov.deleted)
	}
	if !slices.Equal(env.gh.deleted, []int64{11}) {
		t.Errorf("registrations deleted %v, want [11]: foreign and busy ones are never touched", env.gh.deleted)
	}
}

// A pool whose creates keep failing is held back between give-ups (10 s,
// doubling): it must not register runner after runner.
func TestEngineHoldsBackAFailingPool(t *testing.T) {
	env := newEngineEnv(t, orgPool())
	clk := clocktest.New(time.Now())
	env.e.now = clk.Now
	env.prov.fail = 1000
	env.event(t, store.JobEvent{Action: store.JobQueued, JobID: 1, Repo: "octo-org/app", Org: "octo-org", Labels: []string{"small"}})
	env.pass(t)
	attempts := len(env.prov.specs)
	if attempts != DefaultCreateAttempts {
		t.Fatalf("%d create attempts, want %d", attempts, DefaultCreateAttempts)
	}
	for i := 0; i < 5; i++ {
		env.pass(t)
	}
	if n := len(env.prov.specs); n != attempts {
		t.Fatalf("%d create attempts after more passes while held, want %d", n, attempts)
	}
	clk.Advance(firstCreateHold + time.Second)
	env.pass(t)
	if n := len(env.prov.specs); n != 2*attempts {
		t.Fatalf("%d create attempts after the hold, want %d", n, 2*attempts)
	}
	// The next hold is twice as long.
	clk.Advance(firstCreateHold + time.Second)
	env.pass(t)
	if n := len(env.prov.specs); n != 2*attempts {
		t.Errorf("%d create attempts %s into the second hold, want %d", n, firstCreateHold+time.Second, 2*attempts)
	}
	// Every registration of a failed create was undone.
	if len(env.gh.deleted) != len(env.gh.jit) {
		t.Errorf("%d registrations, %d deleted", len(env.gh.jit), len(env.gh.deleted))
	}
}

// watchingProv is a provisioner that reports its changes (as the
// kubernetes provisioner's watch does).
type watchingProv struct {
	fakeProv
	fns []func()
}

func (w *watchingProv) OnChange(fn func()) { w.fns = append(w.fns, fn) }

func TestWatchingProvisionerWakesTheLoop(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	wp := &watchingProv{}
	// Wrapped as the daemon wraps every provisioner: the engine must find
	// the watcher inside.
	wrapped := provisioner.Instrument("p", wp, nil, provisioner.RetryPolicy{}, nil)
	e, err := New(EngineConfig{Pools: []Pool{orgPool()}, Store: st, GitHub: &fakeGitHub{busy: map[int64]bool{}},
		Provisioners: map[string]provisioner.Provisioner{"p": wrapped}, Access: AllowAll{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(wp.fns) != 1 {
		t.Fatalf("%d change callbacks registered, want 1", len(wp.fns))
	}
	select {
	case <-e.wake:
		t.Fatal("woken before any change")
	default:
	}
	wp.fns[0]()
	wp.fns[0]() // never blocks, however many changes come
	select {
	case <-e.wake:
	default:
		t.Fatal("a change did not wake the loop")
	}
}

// Out-of-order webhooks (completed before in_progress, queued last) still
// give each job exactly one queue time and one run time.
func TestJobDurationsObservedOnceWhateverTheOrder(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := NewPrometheusMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	env := newEngineEnv(t, orgPool())
	env.e.cfg.Metrics = m
	t0 := time.Now().Add(-time.Minute)
	base := store.JobEvent{Repo: "octo-org/app", Org: "octo-org", Labels: []string{"small"}}
	ev := func(id int64, action string, at time.Time) store.JobEvent {
		e := base
		e.JobID, e.Action, e.At = id, action, at
		return e
	}
	orders := [][]string{
		{store.JobQueued, store.JobInProgress, store.JobCompleted},
		{store.JobQueued, store.JobCompleted, store.JobInProgress},
		{store.JobInProgress, store.JobCompleted, store.JobQueued},
		{store.JobCompleted, store.JobInProgress, store.JobQueued},
	}
	at := map[string]time.Time{store.JobQueued: t0, store.JobInProgress: t0.Add(2 * time.Second), store.JobCompleted: t0.Add(5 * time.Second)}
	for i, order := range orders {
		for _, action := range order {
			env.event(t, ev(int64(100+i), action, at[action]))
			env.pass(t)
		}
	}
	count := func(h *prometheus.HistogramVec) uint64 {
		var mm dto.Metric
		if err := h.WithLabelValues("small").(prometheus.Histogram).Write(&mm); err != nil {
			t.Fatal(err)
		}
		return mm.GetHistogram().GetSampleCount()
	}
	if q, r := count(m.queue), count(m.run); q != uint64(len(orders)) || r != uint64(len(orders)) {
		t.Errorf("queue times %d, run times %d; want %d each", q, r, len(orders))
	}
	env.e.mu.Lock()
	left := len(env.e.timed)
	env.e.mu.Unlock()
	if left != 0 {
		t.Errorf("%d jobs still tracked after all their events", left)
	}
}

// A starting runner whose instance fails (a pod that cannot be scheduled)
// is retired, and the provisioner's reason is in the recent errors that
// scaler status shows.
func TestFailedStartReasonInRecentErrors(t *testing.T) {
	env := newEngineEnv(t, orgPool())
	env.event(t, store.JobEvent{Action: store.JobQueued, JobID: 1, Repo: "octo-org/app", Org: "octo-org", Labels: []string{"small"}})
	env.pass(t)
	if len(env.prov.specs) != 1 {
		t.Fatalf("%d creates, want 1", len(env.prov.specs))
	}
	name := env.prov.specs[0].RunnerName
	env.prov.mu.Lock()
	in := env.prov.insts["i-"+name]
	in.State, in.LastError = provisioner.StateFailed, "pod still Pending after 10m0s (bootstrap_timeout 10m0s): Unschedulable: 0/3 nodes are available"
	env.prov.insts[in.ID] = in
	env.prov.mu.Unlock()
	env.pass(t)
	if r := env.runner(t, name); r.State != runnerFailed || !strings.Contains(r.LastError, "Unschedulable") {
		t.Errorf("runner after its instance failed: state %s, last error %q", r.State, r.LastError)
	}
	var found bool
	for _, e := range env.e.RecentErrors() {
		if e.Component == "provisioner/p" && strings.Contains(e.Message, name) && strings.Contains(e.Message, "Unschedulable: 0/3 nodes") {
			found = true
		}
	}
	if !found {
		t.Errorf("reason not in recent errors: %+v", env.e.RecentErrors())
	}
}
