package scaler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/config"
	"github.com/runnerscaler/runnerscaler/internal/ghapi"
	"github.com/runnerscaler/runnerscaler/internal/provisioner"
	"github.com/runnerscaler/runnerscaler/internal/store"
)

// executor performs the planner's actions with bounded concurrency: creates
// (register with GitHub, then the provisioner's create) and removals.
type executor struct {
	e      *Engine
	global chan struct{} // one token per create in progress, all pools

	wg sync.WaitGroup // every goroutine started

	mu       sync.Mutex
	perPool  map[string]chan struct{}
	inFlight map[string]int  // creates started, not yet stored as runners
	creating map[string]bool // runner names registered or being launched, not yet stored
	// holds: pools whose creates are held back after a give-up, so that a
	// permanently failing provisioner (or pool) does not register runner
	// after runner, spending the API budget of every pool.
	holds    map[string]hold
	launches map[string][]time.Time // create starts per pool, for the launch rate
	launched int
	failed   int
}

func newExecutor(e *Engine) *executor {
	x := &executor{
		e:        e,
		global:   make(chan struct{}, e.cfg.MaxCreatesInFlight),
		perPool:  map[string]chan struct{}{},
		inFlight: map[string]int{},
		creating: map[string]bool{},
		holds:    map[string]hold{},
		launches: map[string][]time.Time{},
	}
	for _, p := range e.cfg.Pools {
		x.perPool[p.Name] = make(chan struct{}, p.maxConcurrentCreates())
	}
	return x
}

// hold is one pool's back-off after failed creates.
type hold struct {
	until time.Time
	next  time.Duration // the next hold, doubling up to maxCreateHold
}

// Create holds: the first after a give-up, and the longest.
const (
	firstCreateHold = 10 * time.Second
	maxCreateHold   = 5 * time.Minute
)

// holdLocked holds pool's creates back and returns until when.
func (x *executor) holdLocked(pool string, now time.Time) time.Time {
	h := x.holds[pool]
	if h.next == 0 {
		h.next = firstCreateHold
	}
	h.until = now.Add(h.next)
	h.next = min(2*h.next, maxCreateHold)
	x.holds[pool] = h
	return h.until
}

// heldUntil returns until when pool's creates are held back (zero: not).
func (x *executor) heldUntil(pool string, now time.Time) time.Time {
	x.mu.Lock()
	defer x.mu.Unlock()
	if h, ok := x.holds[pool]; ok && now.Before(h.until) {
		return h.until
	}
	return time.Time{}
}

// isCreating reports whether a create is under way for the runner name.
func (x *executor) isCreating(name string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.creating[strings.ToLower(name)]
}

// wait blocks until every create and delete started has ended.
func (x *executor) wait() { x.wg.Wait() }

func (x *executor) counts() (launched, failed, inFlight int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, n := range x.inFlight {
		inFlight += n
	}
	return x.launched, x.failed, inFlight
}

func (x *executor) inFlightByPool() map[string]int {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make(map[string]int, len(x.inFlight))
	for k, v := range x.inFlight {
		if v > 0 {
			out[k] = v
		}
	}
	return out
}

// launchWindow is the period of the per-pool launch rate.
const launchWindow = time.Minute

func (x *executor) launchesInWindow(now time.Time) map[string]int {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make(map[string]int, len(x.launches))
	for pool, ts := range x.launches {
		i := 0
		for i < len(ts) && now.Sub(ts[i]) >= launchWindow {
			i++
		}
		ts = ts[i:]
		x.launches[pool] = ts
		if len(ts) > 0 {
			out[pool] = len(ts)
		}
	}
	return out
}

// runnerName is <pool>-<daemon>-<8 random hex digits>.
func (x *executor) runnerName(pool string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return pool + "-" + x.e.shortID + "-" + hex.EncodeToString(b[:])
}

// create starts one runner of pool p in the background; it counts as in
// flight from now until the runner is stored (or given up).
func (x *executor) create(ctx context.Context, p Pool) {
	x.mu.Lock()
	x.inFlight[p.Name]++
	x.launches[p.Name] = append(x.launches[p.Name], x.e.now())
	sem := x.perPool[p.Name]
	x.mu.Unlock()
	started := x.e.now()
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		defer x.e.Wake() // the runner (or its absence) is now visible: plan again
		defer func() {
			x.mu.Lock()
			x.inFlight[p.Name]--
			x.mu.Unlock()
		}()
		select {
		case x.global <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-x.global }()
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-sem }()
		x.createOne(ctx, p, started)
	}()
}

// createOne registers and launches one runner, retrying with back-off: a
// failed create unregisters the runner it registered before trying again.
func (x *executor) createOne(ctx context.Context, p Pool, started time.Time) {
	e := x.e
	prov := e.cfg.Provisioners[p.Provisioner]
	backoff := e.cfg.CreateBackoff
	var jobID int64
	noted := false
	// Reconciliation leaves these names alone until the create is over
	// (stored, or undone).
	var names []string
	defer func() {
		x.mu.Lock()
		for _, n := range names {
			delete(x.creating, n)
		}
		x.mu.Unlock()
	}()
	for attempt := 1; ; attempt++ {
		name := x.runnerName(p.Name)
		x.mu.Lock()
		x.creating[strings.ToLower(name)] = true
		x.mu.Unlock()
		names = append(names, strings.ToLower(name))
		fields := []zap.Field{zap.String("pool", p.Name), zap.String("runner", name), zap.Int("attempt", attempt)}
		regStart := e.now()
		reg, ghID, err := x.register(ctx, p, name)
		if err == nil {
			if !noted {
				jobID, noted = e.noteCreateCall(p.Name, e.now()), true
				if ce := e.log.Check(zap.DebugLevel, "registered; calling the provisioner"); ce != nil {
					ce.Write(append(fields, zap.Int64("job_id", jobID), zap.Duration("waited", regStart.Sub(started)),
						zap.Duration("registration", e.now().Sub(regStart)))...)
				}
			}
			if jobID != 0 {
				fields = append(fields, zap.Int64("job_id", jobID))
			}
			spec := provisioner.Spec{
				RunnerName: name, Pool: p.Name, Labels: p.EffectiveLabels(), RunnerGroup: p.RunnerGroup,
				ScopeURL: e.scopeURL(p.Scope), OS: p.OS, Arch: p.Arch, Registration: reg,
			}
			cctx, cancel := e.callCtx(ctx)
			var inst provisioner.Instance
			inst, err = prov.Create(cctx, spec)
			cancel()
			if err == nil {
				r := store.Runner{
					Name: name, Pool: p.Name, GitHubID: ghID, Scope: p.Scope.String(), Provisioner: p.Provisioner,
					InstanceID: inst.ID, State: RunnerStarting, CreatedAt: e.now(),
				}
				if perr := e.putRunner(context.WithoutCancel(ctx), r); perr != nil {
					// A runner the store does not know would never be
					// removed: undo it.
					e.log.Error("launched runner not stored; removing it", append(fields, zap.Error(perr))...)
					x.undo(ctx, p, name, ghID, prov, inst.ID)
					err = perr
				} else {
					x.mu.Lock()
					x.launched++
					delete(x.holds, p.Name) // the pool launches again
					x.mu.Unlock()
					e.cfg.Metrics.RunnerLaunched(p.Name)
					e.log.Info("runner launched", append(fields, zap.String("instance", inst.ID),
						zap.Int64("github_id", ghID), zap.String("registration", p.Registration))...)
					return
				}
			} else {
				e.log.Warn("provisioner create failed", append(fields, zap.Error(err))...)
				e.noteError("provisioner/"+p.Provisioner, fmt.Errorf("create runner %s: %w", name, err))
				x.undo(ctx, p, name, ghID, nil, "")
			}
		} else {
			e.log.Warn("runner registration failed", append(fields, zap.Error(err))...)
			e.noteError("github", fmt.Errorf("register runner %s: %w", name, err))
		}
		if attempt >= e.cfg.CreateAttempts || provisioner.IsPermanent(err) || ctx.Err() != nil {
			x.mu.Lock()
			x.failed++
			until := x.holdLocked(p.Name, e.now())
			x.mu.Unlock()
			e.log.Warn("pool's creates held back after a runner was given up on", append(fields,
				zap.Time("until", until), zap.Error(err))...)
			e.cfg.Metrics.CreateFailed(p.Name, p.Provisioner)
			e.record(context.WithoutCancel(ctx), store.Decision{Pool: p.Name, Action: "create-failed", Count: 1,
				Reason: fmt.Sprintf("gave up after %d attempts: %v", attempt, err)}, fields...)
			return
		}
		wait := time.Duration(mrand.Float64() * float64(backoff))
		backoff = min(backoff*2, 30*time.Second)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// register asks GitHub for the runner's registration: a JIT config (one
// call; the runner is registered now and its id returned) or the scope's
// cached registration token (id unknown until it registers).
func (x *executor) register(ctx context.Context, p Pool, name string) (provisioner.Registration, int64, error) {
	e := x.e
	if p.Registration == config.RegistrationToken {
		cctx, cancel := e.callCtx(ctx)
		defer cancel()
		tok, err := e.cfg.GitHub.RegistrationToken(cctx, p.Scope)
		if err != nil {
			return provisioner.Registration{}, 0, fmt.Errorf("register runner %s: %w", name, err)
		}
		return provisioner.Registration{Token: tok.Token, Ephemeral: p.Ephemeral}, 0, nil
	}
	gid, err := e.groupID(ctx, p)
	if err != nil {
		return provisioner.Registration{}, 0, fmt.Errorf("register runner %s: %w", name, err)
	}
	cctx, cancel := e.callCtx(ctx)
	defer cancel()
	jit, err := e.cfg.GitHub.GenerateJITConfig(cctx, p.Scope, ghapi.JITRequest{
		Name: name, RunnerGroupID: gid, Labels: p.EffectiveLabels(), WorkFolder: "_work",
	})
	if err != nil {
		return provisioner.Registration{}, 0, fmt.Errorf("register runner %s: %w", name, err)
	}
	return provisioner.Registration{JITConfig: jit.Encoded}, jit.Runner.GetID(), nil
}

// undo unregisters a runner that was registered but did not launch (and
// deletes its instance when one was made).
func (x *executor) undo(ctx context.Context, p Pool, name string, ghID int64, prov provisioner.Provisioner, instanceID string) {
	e := x.e
	cctx, cancel := e.callCtx(context.WithoutCancel(ctx))
	defer cancel()
	if prov != nil && instanceID != "" {
		if err := prov.Delete(cctx, instanceID); err != nil {
			e.log.Error("instance of an unlaunched runner not deleted", zap.String("pool", p.Name),
				zap.String("runner", name), zap.String("instance", instanceID), zap.Error(err))
		}
	}
	if ghID == 0 {
		return
	}
	if err := e.cfg.GitHub.DeleteRunner(cctx, p.Scope, ghID); err != nil && !errors.Is(err, ghapi.ErrNotFound) {
		e.log.Error("registered runner not deleted after a failed create", zap.String("pool", p.Name),
			zap.String("runner", name), zap.Int64("github_id", ghID), zap.Error(err))
	}
}

// claim marks a runner as being removed; false when it already is.
func (x *executor) claim(name string) bool {
	x.e.mu.Lock()
	defer x.e.mu.Unlock()
	if x.e.removing[name] {
		return false
	}
	x.e.removing[name] = true
	return true
}

func (x *executor) release(name string) {
	x.e.mu.Lock()
	delete(x.e.removing, name)
	x.e.mu.Unlock()
}

// remove takes an idle runner out without ever touching one that has a job
// (GitHub's busy flag lags, and deletes have succeeded mid-job):
//
//  1. the store knows no job on it (no in_progress event names it);
//  2. GitHub says busy: false on two reads ConfirmInterval apart;
//  3. its custom labels are removed, so that no new job can be assigned
//     to it, and after another ConfirmInterval (for the in_progress events
//     of jobs assigned just before) the store and GitHub are asked again;
//  4. DELETE: 422 (busy) restores its labels and keeps it;
//  5. only when GitHub no longer has it is its instance deleted.
//
// Any sign of a job at any step aborts: the labels come back and the runner
// is kept (busy when a job was seen). Every outcome is recorded.
func (x *executor) remove(ctx context.Context, r store.Runner, reason string, runners map[string]store.Runner) {
	e := x.e
	fields := []zap.Field{zap.String("pool", r.Pool), zap.String("runner", r.Name)}
	if r.State != RunnerIdle || r.JobID != 0 {
		e.log.Info("not removing a runner that is not idle", append(fields, zap.String("state", r.State))...)
		return
	}
	if !x.claim(r.Name) {
		return
	}
	p := e.pools[r.Pool]
	idle := r
	r.State = RunnerDraining
	if err := e.putRunner(ctx, r); err != nil {
		e.log.Warn("runner not marked draining; not removing it", append(fields, zap.Error(err))...)
		x.release(r.Name)
		return
	}
	runners[r.Name] = r
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		defer e.Wake()
		defer x.release(r.Name)
		code := RemovedIdle
		if reason == drainReason {
			code = RemovedDrain
		}
		rm := &removal{x: x, p: p, r: r, idle: idle, fields: fields, code: code}
		rm.run(ctx, reason)
	}()
}

// removal is one runner's way through remove's steps.
type removal struct {
	x      *executor
	p      Pool
	r      store.Runner // draining
	idle   store.Runner // as it was before
	fields []zap.Field
	code   string   // the removal's reason code, for metrics
	id     int64    // GitHub's id
	labels []string // custom labels taken off, to put back on an abort
	// unlabeledAt is when the labels came off: no job queued after it can
	// be assigned to the runner.
	unlabeledAt time.Time
}

// githubClockSkew is how far GitHub's timestamps (a job's created_at) may
// be from our clock.
const githubClockSkew = 250 * time.Millisecond

func (rm *removal) run(ctx context.Context, reason string) {
	e := rm.x.e
	// The waits end with the loop; the API calls that undo a step do not.
	bg := context.WithoutCancel(ctx)
	rm.id = rm.r.GitHubID
	if rm.id == 0 {
		cctx, cancel := e.callCtx(ctx)
		rm.id = rm.x.lookupID(cctx, rm.p, rm.r.Name)
		cancel()
	}
	if rm.id == 0 {
		// Token-registered and not listed by GitHub yet: config.sh may be
		// registering it right now, and it could take a job the moment it
		// is. Kept; reconciliation retires it if it never comes online.
		rm.abort(bg, "not registered with GitHub yet", 0)
		return
	}
	// Steps 1 and 2.
	for read := 1; read <= 2; read++ {
		if read == 2 && !rm.wait(ctx) {
			rm.abort(bg, "shutting down", 0)
			return
		}
		if gone, stop := rm.check(ctx, bg, fmt.Sprintf("busy read %d of 2", read)); stop {
			return
		} else if gone {
			rm.x.finish(bg, rm.r, runnerRemoved, rm.code, reason+"; GitHub no longer has it")
			return
		}
	}
	// Step 3.
	cctx, cancel := e.callCtx(ctx)
	left, err := e.cfg.GitHub.RemoveAllRunnerLabels(cctx, rm.p.Scope, rm.id)
	cancel()
	if err != nil {
		rm.abort(bg, "labels not removed: "+err.Error(), 0)
		return
	}
	rm.labels = customLabelsGone(rm.p.EffectiveLabels(), left)
	rm.unlabeledAt = e.now()
	// A job GitHub assigned just before the labels came off shows up only
	// through its webhooks (the busy flag lags): give them time to arrive.
	if !rm.waitFor(ctx, max(e.cfg.ConfirmInterval, e.cfg.RemovalSettle)) {
		rm.abort(bg, "shutting down", 0)
		return
	}
	if gone, stop := rm.check(ctx, bg, "check after its labels were removed"); stop {
		return
	} else if gone {
		rm.x.finish(bg, rm.r, runnerRemoved, rm.code, reason+"; GitHub no longer has it")
		return
	}
	// Step 4.
	cctx, cancel = e.callCtx(bg)
	err = e.cfg.GitHub.DeleteRunner(cctx, rm.p.Scope, rm.id)
	cancel()
	switch {
	case errors.Is(err, ghapi.ErrRunnerBusy):
		rm.abort(bg, "GitHub refused the delete: the runner is busy", -1)
		return
	case err != nil && !errors.Is(err, ghapi.ErrNotFound):
		rm.abort(bg, "delete failed: "+err.Error(), 0)
		return
	}
	// Step 5.
	cctx, cancel = e.callCtx(bg)
	_, err = e.cfg.GitHub.GetRunner(cctx, rm.p.Scope, rm.id)
	cancel()
	if !errors.Is(err, ghapi.ErrNotFound) {
		// Still listed (or unknown): the machine stays until GitHub agrees;
		// the reconciler retries.
		r := rm.r
		r.LastError = fmt.Sprintf("deleted at GitHub but still listed (%v); instance kept", err)
		_ = e.putRunner(bg, r)
		e.log.Warn("runner deleted but still listed; instance kept", append(rm.fields, zap.Error(err))...)
		return
	}
	rm.x.finish(bg, rm.r, runnerRemoved, rm.code, reason)
}

// check asks the store and GitHub whether the runner has a job. stop means
// the removal was aborted (a job, or an error); gone that GitHub no longer
// has the runner.
func (rm *removal) check(ctx, bg context.Context, step string) (gone, stop bool) {
	e := rm.x.e
	if jobID, err := rm.x.storeJob(ctx, rm.r.Name); err != nil {
		rm.abort(bg, step+": store not readable: "+err.Error(), 0)
		return false, true
	} else if jobID != 0 {
		rm.abort(bg, fmt.Sprintf("%s: job %d is in progress on it", step, jobID), jobID)
		return false, true
	}
	// A queued job it could take is demand for it, and (its webhooks
	// lagging) may already be running on it. Once its labels are off, only
	// jobs GitHub queued before that (give or take clock skew) could be.
	queuedBefore := time.Time{}
	if !rm.unlabeledAt.IsZero() {
		queuedBefore = rm.unlabeledAt.Add(githubClockSkew)
	}
	if jobID, err := e.queuedFor(ctx, rm.p, queuedBefore); err != nil {
		rm.abort(bg, step+": store not readable: "+err.Error(), 0)
		return false, true
	} else if jobID != 0 {
		rm.abort(bg, fmt.Sprintf("%s: job %d is queued for its pool", step, jobID), 0)
		return false, true
	}
	cctx, cancel := e.callCtx(ctx)
	gr, err := e.cfg.GitHub.GetRunner(cctx, rm.p.Scope, rm.id)
	cancel()
	switch {
	case errors.Is(err, ghapi.ErrNotFound):
		return true, false
	case err != nil:
		rm.abort(bg, step+": "+err.Error(), 0)
		return false, true
	case gr.GetBusy():
		rm.abort(bg, step+": GitHub says it is busy", -1)
		return false, true
	}
	return false, false
}

// wait waits ConfirmInterval; false when ctx ended first.
func (rm *removal) wait(ctx context.Context) bool {
	return rm.waitFor(ctx, rm.x.e.cfg.ConfirmInterval)
}

func (rm *removal) waitFor(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// abort puts the runner back: its labels, and its state (busy when a job
// was seen: jobID > 0 names it, -1 is GitHub's word without a job id).
func (rm *removal) abort(ctx context.Context, why string, jobID int64) {
	e := rm.x.e
	if len(rm.labels) > 0 {
		cctx, cancel := e.callCtx(ctx)
		_, err := e.cfg.GitHub.AddRunnerLabels(cctx, rm.p.Scope, rm.id, rm.labels)
		cancel()
		if err != nil && !errors.Is(err, ghapi.ErrNotFound) {
			e.log.Error("labels of a runner kept not restored; it gets no new jobs until they are",
				append(rm.fields, zap.Strings("labels", rm.labels), zap.Error(err))...)
		}
	}
	r := rm.idle
	if jobID != 0 {
		r.State = RunnerBusy
		if jobID > 0 {
			r.JobID = jobID
		}
	}
	_ = e.putRunner(ctx, r)
	e.record(ctx, store.Decision{Pool: r.Pool, Action: "keep", Count: 1, Reason: r.Name + ": removal aborted: " + why},
		rm.fields...)
}

// queuedFor returns a queued job p's runners could take (queued no later
// than queuedBefore, when set): one matched to p,
// or one not matched yet whose labels p's runners have (scope and group
// access aside: when in doubt, keep the runner). Jobs matched to no pool do
// not count.
func (e *Engine) queuedFor(ctx context.Context, p Pool, queuedBefore time.Time) (int64, error) {
	js, err := e.cfg.Store.Jobs(ctx, store.JobFilter{Status: store.JobQueued})
	if err != nil {
		return 0, err
	}
	have := map[string]bool{}
	for _, l := range p.EffectiveLabels() {
		have[strings.ToLower(l)] = true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, j := range js {
		if !queuedBefore.IsZero() && j.QueuedAt.After(queuedBefore) {
			continue
		}
		pool, decided := e.decided[j.ID]
		if !decided && j.Pool != "" {
			pool, decided = j.Pool, true
		}
		switch {
		case decided && pool == p.Name:
			return j.ID, nil
		case !decided && containsAll(have, normalizeLabels(j.Labels)):
			return j.ID, nil
		}
	}
	return 0, nil
}

// storeJob returns the id of a job the store has in progress on the runner.
func (x *executor) storeJob(ctx context.Context, name string) (int64, error) {
	js, err := x.e.cfg.Store.Jobs(ctx, store.JobFilter{Status: store.JobInProgress, Runner: name, Limit: 1})
	if err != nil || len(js) == 0 {
		return 0, err
	}
	return js[0].ID, nil
}

// customLabelsGone returns the labels of want that are not among left (the
// ones RemoveAllRunnerLabels took off), to add back on an abort.
func customLabelsGone(want []string, left []*ghapi.RunnerLabel) []string {
	kept := map[string]bool{}
	for _, l := range left {
		kept[strings.ToLower(l.GetName())] = true
	}
	var out []string
	for _, l := range want {
		if !kept[strings.ToLower(l)] {
			out = append(out, l)
		}
	}
	return out
}

// lookupID finds a token-registered runner's GitHub id by name (0 if none).
func (x *executor) lookupID(ctx context.Context, p Pool, name string) int64 {
	l, ok := x.e.cfg.GitHub.(interface {
		ListRunners(ctx context.Context, s ghapi.Scope, opts ghapi.ListRunnersOptions) ([]*ghapi.Runner, error)
	})
	if !ok {
		return 0
	}
	rs, err := l.ListRunners(ctx, p.Scope, ghapi.ListRunnersOptions{Name: name})
	if err != nil {
		return 0
	}
	for _, gr := range rs {
		if strings.EqualFold(gr.GetName(), name) {
			return gr.GetID()
		}
	}
	return 0
}

// handOff claims r, shows it in state to every later pass, and runs fn in a
// goroutine the executor waits for; fn's context outlives the loop's.
func (x *executor) handOff(ctx context.Context, r store.Runner, state string, runners map[string]store.Runner, fn func(context.Context, store.Runner)) {
	if !x.claim(r.Name) {
		return
	}
	r.State = state
	runners[r.Name] = r
	x.e.noteRunner(r)
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		defer x.e.Wake()
		defer x.release(r.Name)
		fn(context.WithoutCancel(ctx), r)
	}()
}

// deleteInstance deletes the instance of a runner whose ephemeral job is
// done; GitHub has removed the runner itself.
func (x *executor) deleteInstance(ctx context.Context, r store.Runner, reason string, runners map[string]store.Runner) {
	x.handOff(ctx, r, RunnerDraining, runners, func(ctx context.Context, r store.Runner) {
		x.finish(ctx, r, runnerRemoved, RemovedJobDone, reason)
	})
}

// end deletes the instance of an ephemeral runner that exited cleanly
// without a job event naming it, and stores the runner as ended (see
// runnerEnded). GitHub removed the runner when its job finished, so no API
// call is made now.
func (x *executor) end(ctx context.Context, r store.Runner, runners map[string]store.Runner) {
	x.handOff(ctx, r, runnerEnded, runners, func(ctx context.Context, r store.Runner) {
		// Its job's event may have been stored before the runner was (a
		// create finishing late): then nothing is owed.
		js, err := x.e.cfg.Store.Jobs(ctx, store.JobFilter{Runner: r.Name, Limit: 1})
		if err == nil && len(js) > 0 {
			r.JobID = js[0].ID
			x.finish(ctx, r, runnerRemoved, RemovedJobDone, fmt.Sprintf("ephemeral runner finished job %d", js[0].ID))
			return
		}
		x.finish(ctx, r, runnerEnded, RemovedJobDone, "its instance exited before a job event named it")
	})
}

// retire ends a runner whose instance stopped, failed or vanished while it
// was starting or idle: its registration (if GitHub still has it) and its
// instance go.
func (x *executor) retire(ctx context.Context, r store.Runner, code, why string, runners map[string]store.Runner) {
	p := x.e.pools[r.Pool]
	x.handOff(ctx, r, RunnerDraining, runners, func(ctx context.Context, r store.Runner) {
		if r.GitHubID != 0 && p.Name != "" {
			cctx, cancel := x.e.callCtx(ctx)
			err := x.e.cfg.GitHub.DeleteRunner(cctx, p.Scope, r.GitHubID)
			cancel()
			if err != nil && !errors.Is(err, ghapi.ErrNotFound) {
				x.e.log.Warn("runner of a dead instance not unregistered", zap.String("pool", r.Pool),
					zap.String("runner", r.Name), zap.Error(err))
			}
		}
		x.finish(ctx, r, runnerFailed, code, why)
	})
}

// finish deletes r's instance and stores its final state.
func (x *executor) finish(ctx context.Context, r store.Runner, state, code, reason string) {
	e := x.e
	fields := []zap.Field{zap.String("pool", r.Pool), zap.String("runner", r.Name), zap.String("instance", r.InstanceID)}
	if r.JobID != 0 {
		fields = append(fields, zap.Int64("job_id", r.JobID))
	}
	if prov := e.cfg.Provisioners[r.Provisioner]; prov != nil && r.InstanceID != "" {
		cctx, cancel := e.callCtx(ctx)
		err := prov.Delete(cctx, r.InstanceID)
		cancel()
		if err != nil && !errors.Is(err, provisioner.ErrNotFound) {
			e.log.Error("instance not deleted; left draining for the reaper", append(fields, zap.Error(err))...)
			r.LastError = err.Error()
			_ = e.putRunner(ctx, r)
			return
		}
	}
	r.State = state
	if state == runnerFailed {
		r.LastError = reason
	}
	if err := e.putRunner(ctx, r); err != nil {
		e.log.Warn("runner state not stored", append(fields, zap.Error(err))...)
	}
	e.log.Info("runner "+state, append(fields, zap.String("reason", reason))...)
	e.cfg.Metrics.RunnerRemoved(r.Pool, code)
}
