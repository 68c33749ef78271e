package scaler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/ghapi"
	"github.com/runnerscaler/runnerscaler/internal/provisioner"
	"github.com/runnerscaler/runnerscaler/internal/store"
)

// RunnerAPI is what the engine needs of GitHub (*ghapi.Client): register a
// runner (JIT config or registration token) and unregister one.
type RunnerAPI interface {
	GenerateJITConfig(ctx context.Context, s ghapi.Scope, req ghapi.JITRequest) (*ghapi.JITConfig, error)
	RegistrationToken(ctx context.Context, s ghapi.Scope) (*ghapi.RegistrationToken, error)
	DeleteRunner(ctx context.Context, s ghapi.Scope, runnerID int64) error
	// For safe removal: read the busy flag, take the labels off (and put
	// them back).
	GetRunner(ctx context.Context, s ghapi.Scope, runnerID int64) (*ghapi.Runner, error)
	RemoveAllRunnerLabels(ctx context.Context, s ghapi.Scope, runnerID int64) ([]*ghapi.RunnerLabel, error)
	AddRunnerLabels(ctx context.Context, s ghapi.Scope, runnerID int64, labels []string) ([]*ghapi.RunnerLabel, error)
}

var _ RunnerAPI = (*ghapi.Client)(nil)

// StateStore is what the engine needs of the store (*store.Store).
type StateStore interface {
	Jobs(ctx context.Context, f store.JobFilter) ([]store.Job, error)
	SetJobPool(ctx context.Context, id int64, pool string) error
	PutRunner(ctx context.Context, r store.Runner) error
	Runners(ctx context.Context, pool string) ([]store.Runner, error)
	AddDecision(ctx context.Context, d store.Decision) error
}

var _ StateStore = (*store.Store)(nil)

// groupResolver turns a runner group name into its id (GroupKeeper does, with
// a cache).
type groupResolver interface {
	GroupID(ctx context.Context, scope ghapi.Scope, name string) (int64, error)
}

// planFunc is the planner's signature (Plan).
type planFunc func(PlanState, time.Time) []Action

// Engine defaults.
const (
	DefaultLoopInterval        = 15 * time.Second
	DefaultMaxCreatesInFlight  = 50
	DefaultCreateAttempts      = 3
	DefaultCreateBackoff       = time.Second
	DefaultExternalCallTimeout = 2 * time.Minute
	DefaultEndedRunnerGrace    = 30 * time.Second
	DefaultConfirmInterval     = 5 * time.Second
	// defaultGroupID is the id of every scope's "Default" runner group.
	defaultGroupID = 1
)

// EngineConfig is what New needs. Pools, Store, GitHub and Provisioners are
// required; the rest have defaults.
type EngineConfig struct {
	Pools  []Pool
	Store  StateStore
	GitHub RunnerAPI
	// Provisioners by name (provisioners.<name>); every pool's Provisioner
	// must be here.
	Provisioners map[string]provisioner.Provisioner
	// Groups resolves runner group names to ids for JIT requests; nil knows
	// only "Default" (id 1), which is all repository-scope pools use.
	Groups groupResolver
	// Access says which repositories may use which pool's runner group; nil
	// lets only repository-scope pools match (see Match).
	Access AccessChecker
	// Plan is the planner; nil is Plan.
	Plan planFunc
	// Logger; nil discards.
	Logger *zap.Logger
	// Clock; nil is time.Now.
	Clock func() time.Time
	// Interval is how often the loop runs without events; default 15 s.
	Interval time.Duration
	// MaxCreatesInFlight bounds creates across all pools; default 50. Each
	// pool is bounded by its MaxConcurrentCreates too.
	MaxCreatesInFlight int
	// CreateAttempts bounds tries per runner (register + create); default 3.
	CreateAttempts int
	// CreateBackoff is the first wait between tries, doubling with full
	// jitter; default 1 s.
	CreateBackoff time.Duration
	// MaxLaunchesPerMinute bounds creates started per pool per minute; 0 is
	// unbounded.
	MaxLaunchesPerMinute int
	// WebURL is GitHub's web root for runner scope URLs; default
	// https://github.com.
	WebURL string
	// CallTimeout bounds each external call the engine makes (GitHub,
	// provisioner); default 2 minutes.
	CallTimeout time.Duration
	// ConfirmInterval separates the busy reads of a removal (see remove);
	// default 5 s.
	ConfirmInterval time.Duration
	// RemovalSettle is how long a removal waits after taking a runner's
	// labels off before its last check, for the webhooks of a job assigned
	// just before; default 10 s.
	RemovalSettle time.Duration
	// DaemonID is this daemon's id; a short form of it goes into every
	// runner name, so that reconciliation knows its own registrations.
	DaemonID string
	// ReconcileInterval is how often GitHub's runners and the instances are
	// compared with the store (default 1 minute); BootstrapTimeout,
	// OfflineTimeout and OrphanGrace are reconciliation's patience
	// (defaults 10 minutes each).
	ReconcileInterval time.Duration
	BootstrapTimeout  time.Duration
	OfflineTimeout    time.Duration
	OrphanGrace       time.Duration
	// ShutdownTimeout is how long Run lets work in flight finish after its
	// context ends; default 30 s.
	ShutdownTimeout time.Duration
	// Metrics receives the engine's events; nil discards them.
	Metrics Metrics
	// EndedRunnerGrace is how long an ephemeral runner whose instance
	// exited cleanly stands in for a queued job while its job's webhooks
	// are late; default 30 s.
	EndedRunnerGrace time.Duration
}

// Engine matches jobs to pools, plans and executes. It implements
// webhook.Notifier: JobChanged never blocks, it queues the job and wakes the
// loop (Run), which does everything else.
type Engine struct {
	shortID  string           // in runner names: <pool>-<shortID>-<random>
	observed chan observation // the reconcile goroutine's latest reading
	passMu   sync.Mutex       // one pass (or reconciliation) at a time
	halted   atomic.Bool      // set by Drain: no pass plans any more
	recon    reconcileState   // guarded by passMu
	cfg      EngineConfig
	pools    map[string]Pool
	log      *zap.Logger
	now      func() time.Time
	plan     planFunc
	wake     chan struct{}
	exec     *executor

	mu      sync.Mutex
	pending []store.Job // job events not yet handled by the loop
	// decided holds jobs already matched (or found unmatched), so each is
	// matched once; value is the pool ("" unmatched). Completed jobs leave.
	decided map[int64]string
	// arrived is when each queued job's event reached JobChanged.
	arrived map[int64]time.Time
	// timed records which of a job's durations the metrics have (see
	// observeJob); a job leaves once both are.
	timed map[int64]jobTimed
	// waiting holds, per pool, matched queued jobs not yet attributed to a
	// Create call, in arrival order, for the queued → create latency.
	waiting   map[string][]int64
	latencies []time.Duration
	unmatched int
	matched   int
	removing  map[string]bool // runners being removed or deleted
	errs      []ErrorEntry    // the newest MaxRecentErrors failures, oldest first
	work      context.Context // Run's context for executor work (see workContext)
	// written holds the runners this engine stored whose write a store
	// read has not shown yet (see putRunner and freshRunners).
	written map[string]store.Runner
}

// New builds an engine. It does no I/O.
func New(cfg EngineConfig) (*Engine, error) {
	if cfg.Store == nil || cfg.GitHub == nil {
		return nil, errors.New("scaler: engine needs a store and a GitHub client")
	}
	pools := make(map[string]Pool, len(cfg.Pools))
	for _, p := range cfg.Pools {
		if _, dup := pools[p.Name]; dup {
			return nil, fmt.Errorf("scaler: pool %q defined twice", p.Name)
		}
		if _, ok := cfg.Provisioners[p.Provisioner]; !ok {
			return nil, fmt.Errorf("scaler: pool %s: provisioner %q not built", p.Name, p.Provisioner)
		}
		pools[p.Name] = p
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Plan == nil {
		cfg.Plan = Plan
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultLoopInterval
	}
	if cfg.MaxCreatesInFlight <= 0 {
		cfg.MaxCreatesInFlight = DefaultMaxCreatesInFlight
	}
	if cfg.CreateAttempts <= 0 {
		cfg.CreateAttempts = DefaultCreateAttempts
	}
	if cfg.CreateBackoff <= 0 {
		cfg.CreateBackoff = DefaultCreateBackoff
	}
	if cfg.WebURL == "" {
		cfg.WebURL = "https://github.com"
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultExternalCallTimeout
	}
	if cfg.ConfirmInterval == 0 {
		cfg.ConfirmInterval = DefaultConfirmInterval
	}
	if cfg.RemovalSettle == 0 {
		cfg.RemovalSettle = 10 * time.Second
	}
	for _, d := range []*time.Duration{&cfg.BootstrapTimeout, &cfg.OfflineTimeout, &cfg.OrphanGrace} {
		if *d <= 0 {
			*d = 10 * time.Minute
		}
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.ReconcileInterval <= 0 {
		cfg.ReconcileInterval = time.Minute
	}
	if cfg.Metrics == nil {
		cfg.Metrics = discardMetrics{}
	}
	if cfg.EndedRunnerGrace <= 0 {
		cfg.EndedRunnerGrace = DefaultEndedRunnerGrace
	}
	e := &Engine{
		shortID:  shortDaemonID(cfg.DaemonID),
		observed: make(chan observation, 1),
		recon:    reconcileState{offlineSince: map[string]time.Time{}, orphanSince: map[string]time.Time{}},
		cfg:      cfg,
		pools:    pools,
		log:      cfg.Logger,
		now:      cfg.Clock,
		plan:     cfg.Plan,
		wake:     make(chan struct{}, 1),
		decided:  map[int64]string{},
		arrived:  map[int64]time.Time{},
		timed:    map[int64]jobTimed{},
		waiting:  map[string][]int64{},
		removing: map[string]bool{},
		written:  map[string]store.Runner{},
	}
	e.exec = newExecutor(e)
	// Provisioners that watch their instances wake the loop on a change,
	// so a runner that comes up or dies is seen within the pass it takes,
	// not at the next tick.
	for _, p := range cfg.Provisioners {
		if w, ok := provisioner.AsWatcher(p); ok {
			w.OnChange(e.Wake)
		}
	}
	return e, nil
}

// shortDaemonID is the last 6 characters of the daemon id (hex digits in
// the ids the daemon makes), or "local" without one.
func shortDaemonID(id string) string {
	id = strings.ToLower(strings.TrimSpace(id))
	var b strings.Builder
	for _, c := range id {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	s := b.String()
	if s == "" {
		return "local"
	}
	return s[max(0, len(s)-6):]
}

// Pools returns the engine's pools.
func (e *Engine) Pools() []Pool { return append([]Pool(nil), e.cfg.Pools...) }

// JobChanged implements webhook.Notifier: it records when a queued job's
// event arrived, queues the job for the loop and wakes it. It never blocks.
func (e *Engine) JobChanged(_ context.Context, job store.Job) {
	now := e.now()
	e.mu.Lock()
	if job.Status == store.JobQueued {
		if _, ok := e.arrived[job.ID]; !ok {
			e.arrived[job.ID] = now
		}
	}
	e.pending = append(e.pending, job)
	e.mu.Unlock()
	e.Wake()
}

// Wake asks the loop for a pass without blocking.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Stats is a snapshot of the engine's counters.
type Stats struct {
	JobsMatched     int // jobs matched to a pool
	JobsUnmatched   int // jobs no pool may run
	RunnersLaunched int // provisioner creates that succeeded
	CreatesFailed   int // runners given up on after every attempt
	CreatesInFlight int
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	s := Stats{JobsMatched: e.matched, JobsUnmatched: e.unmatched}
	e.mu.Unlock()
	s.RunnersLaunched, s.CreatesFailed, s.CreatesInFlight = e.exec.counts()
	return s
}

// CreateLatencies returns, for each provisioner create call attributed to a
// queued job, the time from that job's queued event reaching JobChanged to
// the call (the oldest waiting job of the pool is attributed to each call).
func (e *Engine) CreateLatencies() []time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]time.Duration(nil), e.latencies...)
}

// noteCreateCall attributes a create call in pool to its oldest waiting job.
func (e *Engine) noteCreateCall(pool string, at time.Time) (jobID int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	q := e.waiting[pool]
	for len(q) > 0 {
		id := q[0]
		q = q[1:]
		if t, ok := e.arrived[id]; ok {
			e.latencies = append(e.latencies, at.Sub(t))
			e.cfg.Metrics.QueuedToCreate(pool, at.Sub(t))
			delete(e.arrived, id)
			e.waiting[pool] = q
			return id
		}
	}
	e.waiting[pool] = q
	return 0
}

// putRunner stores r. It notes r before the write, so that a pass that
// read the runners before the write landed still sees r (freshRunners):
// executor goroutines write while passes read.
func (e *Engine) putRunner(ctx context.Context, r store.Runner) error {
	e.noteRunner(r)
	return e.cfg.Store.PutRunner(ctx, r)
}

// noteRunner makes r what later passes see until a store write replaces it:
// a runner handed to an executor goroutine is draining from then on, even
// for a pass that reads the store before the goroutine writes.
func (e *Engine) noteRunner(r store.Runner) {
	e.mu.Lock()
	e.written[r.Name] = r
	e.mu.Unlock()
}

// freshRunners reads the stored runners and lays over them the writes the
// read may have missed; writes the read shows are forgotten.
func (e *Engine) freshRunners(ctx context.Context) (map[string]store.Runner, error) {
	stored, err := e.cfg.Store.Runners(ctx, "")
	if err != nil {
		return nil, err
	}
	runners := make(map[string]store.Runner, len(stored))
	for _, r := range stored {
		runners[r.Name] = r
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for name, w := range e.written {
		if r, ok := runners[name]; ok && r.State == w.State && r.JobID == w.JobID && r.InstanceID == w.InstanceID {
			delete(e.written, name)
			continue
		}
		runners[name] = w
	}
	return runners, nil
}

// MaxRecentErrors is how many failures RecentErrors keeps.
const MaxRecentErrors = 20

// ErrorEntry is one failure the engine met (for scaler status).
type ErrorEntry struct {
	At        time.Time
	Component string
	Message   string
}

// noteError remembers a failure for RecentErrors; the caller logs it.
func (e *Engine) noteError(component string, err error) {
	if err == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errs = append(e.errs, ErrorEntry{At: e.now(), Component: component, Message: err.Error()})
	if n := len(e.errs); n > MaxRecentErrors {
		e.errs = append([]ErrorEntry(nil), e.errs[n-MaxRecentErrors:]...)
	}
}

// RecentErrors returns the newest failures, oldest first.
func (e *Engine) RecentErrors() []ErrorEntry {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]ErrorEntry(nil), e.errs...)
}

// record logs a decision and stores it in the background: the write
// commits with others and no pass or create waits for it (Run waits for it
// before returning).
func (e *Engine) record(ctx context.Context, d store.Decision, fields ...zap.Field) {
	if d.At.IsZero() {
		d.At = e.now()
	}
	e.log.Info("decision", append([]zap.Field{zap.String("pool", d.Pool), zap.String("action", d.Action),
		zap.Int("count", d.Count), zap.String("reason", d.Reason)}, fields...)...)
	e.background(func() {
		if err := e.cfg.Store.AddDecision(context.WithoutCancel(ctx), d); err != nil {
			e.log.Warn("decision not stored", zap.String("pool", d.Pool), zap.String("action", d.Action), zap.Error(err))
		}
	})
}

// background runs fn in a goroutine the executor's wait covers.
func (e *Engine) background(fn func()) {
	e.exec.wg.Add(1)
	go func() {
		defer e.exec.wg.Done()
		fn()
	}()
}

// callCtx bounds one external call; it survives the loop's cancellation
// only as long as the caller's context does.
func (e *Engine) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, e.cfg.CallTimeout)
}

// scopeURL is the scope's web URL, as config.sh --url takes it.
func (e *Engine) scopeURL(s ghapi.Scope) string {
	switch s.Kind {
	case ghapi.ScopeEnterprise:
		return e.cfg.WebURL + "/enterprises/" + s.Name
	case ghapi.ScopeRepo:
		return e.cfg.WebURL + "/" + s.Name + "/" + s.Repo
	default:
		return e.cfg.WebURL + "/" + s.Name
	}
}

// groupID resolves the pool's runner group id.
func (e *Engine) groupID(ctx context.Context, p Pool) (int64, error) {
	if p.Scope.Kind == ghapi.ScopeRepo || p.RunnerGroup == "" || strings.EqualFold(p.RunnerGroup, "Default") {
		return defaultGroupID, nil
	}
	if e.cfg.Groups == nil {
		return 0, fmt.Errorf("runner group %s of pool %s: no group resolver", p.RunnerGroup, p.Name)
	}
	cctx, cancel := e.callCtx(ctx)
	defer cancel()
	id, err := e.cfg.Groups.GroupID(cctx, p.Scope, p.RunnerGroup)
	if err != nil {
		return 0, fmt.Errorf("runner group %s of pool %s: %w", p.RunnerGroup, p.Name, err)
	}
	return id, nil
}

// Warmer is implemented by provisioners with one-time work to do before
// their first create (the local provisioner's runner package); the engine's
// Warm calls it at start.
type Warmer interface {
	Warm(ctx context.Context) error
}

// Warm calls every provisioner's Warm (looking through wrappers with
// Unwrap) concurrently and waits for them; failures are logged, the creates
// retry the work.
func (e *Engine) Warm(ctx context.Context) {
	var wg sync.WaitGroup
	for name, p := range e.cfg.Provisioners {
		var w Warmer
		for cur := p; cur != nil; {
			if ww, ok := cur.(Warmer); ok {
				w = ww
				break
			}
			u, ok := cur.(interface {
				Unwrap() provisioner.Provisioner
			})
			if !ok {
				break
			}
			cur = u.Unwrap()
		}
		if w == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := e.callCtx(ctx)
			defer cancel()
			start := e.now()
			if err := w.Warm(cctx); err != nil {
				e.log.Warn("provisioner not warmed up; its first create will do it", zap.String("provisioner", name), zap.Error(err))
				return
			}
			e.log.Info("provisioner warmed up", zap.String("provisioner", name), zap.Duration("took", e.now().Sub(start)))
		}()
	}
	wg.Wait()
}
