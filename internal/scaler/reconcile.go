package scaler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/ghapi"
	"github.com/runnerscaler/runnerscaler/internal/provisioner"
	"github.com/runnerscaler/runnerscaler/internal/store"
)

// Reconciliation compares three views that drift apart: the store (what we
// launched), GitHub (what is registered, online, busy) and the provisioners
// (what machines exist). Webhooks get lost, processes die, creates are cut
// short by a crash. Observe reads GitHub and the provisioners (slow, and
// done outside the loop); apply decides from a snapshot in the loop, so it
// sees the same runners the planner does and acts through the executor's
// claims.
//
// What is ours: runners the store knows, instances the provisioners list
// (they list only this daemon's), and GitHub runners whose name carries one
// of our pools and this daemon's id (<pool>-<daemon>-<random>). Nothing else
// is ever modified or deleted.

// observation is one read of GitHub's runners and the provisioners'
// instances. A scope or provisioner whose read failed is absent, and nothing
// is concluded about its runners.
type observation struct {
	at        time.Time
	github    map[string]map[string]*ghapi.Runner // scope key -> lower-case name -> runner
	instances map[string][]provisioner.Instance   // provisioner -> its instances
}

// observe lists the runners of every pool scope (all pages) and every
// provisioner's instances. Failures are logged and leave their part out.
func (e *Engine) observe(ctx context.Context) observation {
	start := time.Now()
	defer func() { e.cfg.Metrics.Reconciled(time.Since(start)) }()
	obs := observation{at: e.now(), github: map[string]map[string]*ghapi.Runner{}, instances: map[string][]provisioner.Instance{}}
	lister, ok := e.cfg.GitHub.(runnerLister)
	scopes := map[string]ghapi.Scope{}
	provs := map[string]bool{}
	for _, p := range e.cfg.Pools {
		scopes[groupScopeKey(p.Scope)] = p.Scope
		provs[p.Provisioner] = true
	}
	if ok {
		for key, s := range scopes {
			cctx, cancel := e.callCtx(ctx)
			rs, err := lister.ListRunners(cctx, s, ghapi.ListRunnersOptions{})
			cancel()
			if err != nil {
				e.log.Warn("reconcile: runners not listed; nothing concluded about them this time",
					zap.String("scope", s.String()), zap.Error(err))
				e.noteError("github", err)
				continue
			}
			byName := make(map[string]*ghapi.Runner, len(rs))
			for _, r := range rs {
				byName[strings.ToLower(r.GetName())] = r
			}
			obs.github[key] = byName
		}
	}
	for name := range provs {
		p := e.cfg.Provisioners[name]
		if p == nil {
			continue
		}
		cctx, cancel := e.callCtx(ctx)
		insts, err := p.List(cctx)
		cancel()
		if err != nil {
			e.log.Warn("reconcile: instances not listed; nothing concluded about them this time",
				zap.String("provisioner", name), zap.Error(err))
			e.noteError("provisioner/"+name, err)
			continue
		}
		obs.instances[name] = insts
	}
	return obs
}

type runnerLister interface {
	ListRunners(ctx context.Context, s ghapi.Scope, opts ghapi.ListRunnersOptions) ([]*ghapi.Runner, error)
}

// reconcileState is what apply remembers between observations: when a
// runner was first seen offline, when an unknown instance or registration
// was first seen.
type reconcileState struct {
	offlineSince map[string]time.Time // runner name
	orphanSince  map[string]time.Time // "i:" + provisioner + "/" + instance id, or "r:" + scope key + "/" + runner name
}

// ReconcileResult counts what one reconciliation did.
type ReconcileResult struct {
	Retired       int // runners (and their machines) ended: instance gone, never online, offline too long
	Adopted       int // instances with a registered runner the store did not know
	OrphansGone   int // unknown instances and registrations deleted after the grace
	Unregistered  int // ended runners GitHub still listed, deleted there
	ScopesListed  int
	ScopesMissing int
}

// ours returns the pool of a runner name this daemon made.
func (e *Engine) ours(name string) (string, bool) {
	for _, p := range e.cfg.Pools {
		if strings.HasPrefix(strings.ToLower(name), strings.ToLower(p.Name+"-"+e.shortID+"-")) {
			return p.Name, true
		}
	}
	return "", false
}

// apply fixes the drift obs shows. runners is the pass's view; it is updated
// with what apply decides.
func (e *Engine) apply(ctx context.Context, obs observation, runners map[string]store.Runner) ReconcileResult {
	var res ReconcileResult
	res.ScopesListed = len(obs.github)
	now := obs.at
	rs := &e.recon
	known := map[string]bool{} // runner names the store knows (any state)
	instByID := map[string]map[string]provisioner.Instance{}
	for prov, insts := range obs.instances {
		m := make(map[string]provisioner.Instance, len(insts))
		for _, in := range insts {
			m[in.ID] = in
		}
		instByID[prov] = m
	}
	lookup := func(r store.Runner) (gr *ghapi.Runner, listed bool) {
		byName, ok := obs.github[strings.ToLower(r.Scope)]
		if !ok {
			if p, found := e.pools[r.Pool]; found {
				byName, ok = obs.github[groupScopeKey(p.Scope)]
			}
		}
		if !ok {
			return nil, false
		}
		return byName[strings.ToLower(r.Name)], true
	}

	for name, r := range runners {
		known[strings.ToLower(name)] = true
		e.mu.Lock()
		busyRemoving := e.removing[name]
		e.mu.Unlock()
		if busyRemoving {
			continue
		}
		gr, listed := lookup(r)
		insts, provListed := instByID[r.Provisioner]
		switch r.State {
		case runnerRemoved, runnerFailed, runnerEnded:
			// Ended here; still registered there (an ephemeral runner that
			// never got its job, a delete that failed): unregister.
			if listed && gr != nil && !gr.GetBusy() && r.State != runnerEnded {
				e.exec.unregister(ctx, r, gr.GetID(), "reconcile: ended runner still registered")
				res.Unregistered++
			}
			continue
		case RunnerDraining:
			continue
		}
		if provListed && r.InstanceID != "" {
			// A runner stored after the listing began may be missing from
			// it without being gone.
			if _, ok := insts[r.InstanceID]; !ok && r.CreatedAt.Before(now) {
				e.exec.retire(ctx, r, RemovedInstanceLost, "reconcile: its instance is gone", runners)
				res.Retired++
				continue
			}
		}
		if !listed {
			continue
		}
		if gr != nil && r.GitHubID == 0 {
			// A token-registered runner's id is learnt here; until then
			// the planner sees it starting (see runnerView).
			r.GitHubID = gr.GetID()
			if err := e.putRunner(ctx, r); err == nil {
				runners[name] = r
			}
		}
		online := gr != nil && strings.EqualFold(gr.GetStatus(), "online")
		if r.State == RunnerStarting && !online && now.Sub(r.CreatedAt) > e.cfg.BootstrapTimeout {
			e.exec.retire(ctx, r, RemovedBootstrapTimeout, fmt.Sprintf("reconcile: not online within bootstrap_timeout %s", e.cfg.BootstrapTimeout), runners)
			res.Retired++
			continue
		}
		if gr != nil && !online && (r.State == RunnerIdle || r.State == RunnerBusy) {
			since, seen := rs.offlineSince[name]
			if !seen {
				rs.offlineSince[name] = now
				continue
			}
			if now.Sub(since) >= e.cfg.OfflineTimeout {
				e.exec.retire(ctx, r, RemovedOffline, fmt.Sprintf("reconcile: offline for %s (offline_timeout %s)", now.Sub(since).Round(time.Second), e.cfg.OfflineTimeout), runners)
				delete(rs.offlineSince, name)
				res.Retired++
			}
			continue
		}
		delete(rs.offlineSince, name)
	}

	// Instances the store does not know: adopt them when GitHub has their
	// runner, delete them after the grace otherwise.
	withInstance := map[string]bool{}
	for prov, insts := range obs.instances {
		for _, in := range insts {
			withInstance[strings.ToLower(in.RunnerName)] = true
			if known[strings.ToLower(in.RunnerName)] || e.exec.isCreating(in.RunnerName) {
				continue
			}
			pool, ok := e.pools[in.Pool]
			if !ok {
				if name, mine := e.ours(in.RunnerName); mine {
					pool, ok = e.pools[name], true
				}
			}
			var gr *ghapi.Runner
			if ok {
				if byName, listed := obs.github[groupScopeKey(pool.Scope)]; listed {
					gr = byName[strings.ToLower(in.RunnerName)]
				}
			}
			key := "i:" + prov + "/" + in.ID
			if gr != nil && (in.State == provisioner.StateRunning || in.State == provisioner.StatePending) {
				r := store.Runner{
					Name: in.RunnerName, Pool: pool.Name, GitHubID: gr.GetID(), Scope: pool.Scope.String(),
					Provisioner: prov, InstanceID: in.ID, State: RunnerStarting, CreatedAt: in.CreatedAt,
				}
				switch {
				case gr.GetBusy():
					r.State = RunnerBusy
				case strings.EqualFold(gr.GetStatus(), "online"):
					r.State = RunnerIdle
				}
				if r.CreatedAt.IsZero() {
					r.CreatedAt = now
				}
				if err := e.putRunner(ctx, r); err != nil {
					e.log.Warn("reconcile: instance not adopted", zap.String("instance", in.ID), zap.Error(err))
					continue
				}
				runners[r.Name] = r
				known[strings.ToLower(r.Name)] = true
				delete(rs.orphanSince, key)
				res.Adopted++
				e.log.Info("reconcile: instance adopted", zap.String("pool", r.Pool), zap.String("runner", r.Name),
					zap.String("instance", in.ID), zap.String("state", r.State))
				continue
			}
			since, seen := rs.orphanSince[key]
			if !seen {
				rs.orphanSince[key] = now
				continue
			}
			if now.Sub(since) >= e.cfg.OrphanGrace {
				e.exec.deleteOrphan(ctx, prov, in, fmt.Sprintf("reconcile: instance known neither to the store nor to GitHub for %s", now.Sub(since).Round(time.Second)))
				delete(rs.orphanSince, key)
				res.OrphansGone++
			}
		}
	}

	// Registrations of ours (by name) with no runner in the store and no
	// instance: a create cut short after registering. Deleted after the
	// grace, never while busy.
	for _, p := range e.cfg.Pools {
		key := groupScopeKey(p.Scope)
		for lname, gr := range obs.github[key] {
			pool, mine := e.ours(gr.GetName())
			if !mine || pool != p.Name || known[lname] || withInstance[lname] || gr.GetBusy() || e.exec.isCreating(lname) {
				continue
			}
			okey := "r:" + key + "/" + lname
			since, seen := rs.orphanSince[okey]
			if !seen {
				rs.orphanSince[okey] = now
				continue
			}
			if now.Sub(since) >= e.cfg.OrphanGrace {
				r := store.Runner{Name: gr.GetName(), Pool: p.Name, Scope: p.Scope.String(), GitHubID: gr.GetID(), State: runnerRemoved}
				e.exec.unregister(ctx, r, gr.GetID(), "reconcile: registration of ours with no runner and no instance")
				delete(rs.orphanSince, okey)
				res.OrphansGone++
			}
		}
	}
	// Forget what was not seen this time.
	for key, since := range rs.orphanSince {
		if now.Sub(since) > 2*e.cfg.OrphanGrace+e.cfg.ReconcileInterval*2 {
			delete(rs.orphanSince, key)
		}
	}
	return res
}

// unregister deletes a runner at GitHub that has no machine (and no job).
func (x *executor) unregister(ctx context.Context, r store.Runner, id int64, reason string) {
	if !x.claim(r.Name) {
		return
	}
	p, ok := x.e.pools[r.Pool]
	if !ok {
		x.release(r.Name)
		return
	}
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		defer x.release(r.Name)
		ctx := context.WithoutCancel(ctx)
		cctx, cancel := x.e.callCtx(ctx)
		err := x.e.cfg.GitHub.DeleteRunner(cctx, p.Scope, id)
		cancel()
		fields := []zap.Field{zap.String("pool", r.Pool), zap.String("runner", r.Name), zap.Int64("github_id", id), zap.String("reason", reason)}
		switch {
		case errors.Is(err, ghapi.ErrRunnerBusy):
			x.e.log.Warn("registration not deleted: GitHub says it is busy", fields...)
		case err != nil && !errors.Is(err, ghapi.ErrNotFound):
			x.e.log.Warn("registration not deleted; retrying on the next reconcile", append(fields, zap.Error(err))...)
		default:
			x.e.log.Info("registration deleted", fields...)
			x.e.record(ctx, store.Decision{Pool: r.Pool, Action: "unregister", Count: 1, Reason: r.Name + ": " + reason})
		}
	}()
}

// deleteOrphan deletes an instance of ours that nothing else knows.
func (x *executor) deleteOrphan(ctx context.Context, prov string, in provisioner.Instance, reason string) {
	p := x.e.cfg.Provisioners[prov]
	if p == nil || !x.claim("instance:"+in.ID) {
		return
	}
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		defer x.release("instance:" + in.ID)
		ctx := context.WithoutCancel(ctx)
		cctx, cancel := x.e.callCtx(ctx)
		err := p.Delete(cctx, in.ID)
		cancel()
		fields := []zap.Field{zap.String("provisioner", prov), zap.String("instance", in.ID), zap.String("runner", in.RunnerName), zap.String("reason", reason)}
		if err != nil && !errors.Is(err, provisioner.ErrNotFound) {
			x.e.log.Warn("orphaned instance not deleted; retrying on the next reconcile", append(fields, zap.Error(err))...)
			return
		}
		x.e.log.Info("orphaned instance deleted", fields...)
		x.e.record(ctx, store.Decision{Pool: in.Pool, Action: "delete-orphan", Count: 1, Reason: in.ID + ": " + reason})
	}()
}

// Reconcile observes GitHub and the provisioners and fixes the drift at
// once. The daemon calls it at start, before taking webhooks, so that
// runners and instances from before a restart are accounted for; the loop
// does the same every ReconcileInterval.
func (e *Engine) Reconcile(ctx context.Context) (ReconcileResult, error) {
	obs := e.observe(ctx)
	runners, err := e.freshRunners(ctx)
	if err != nil {
		return ReconcileResult{}, err
	}
	e.passMu.Lock()
	defer e.passMu.Unlock()
	res := e.apply(ctx, obs, runners)
	res.ScopesMissing = len(e.scopeKeys()) - res.ScopesListed
	e.logReconcile(res)
	return res, nil
}

func (e *Engine) scopeKeys() map[string]bool {
	out := map[string]bool{}
	for _, p := range e.cfg.Pools {
		out[groupScopeKey(p.Scope)] = true
	}
	return out
}

func (e *Engine) logReconcile(res ReconcileResult) {
	level := zap.DebugLevel
	if res.Retired+res.Adopted+res.OrphansGone+res.Unregistered > 0 || res.ScopesMissing > 0 {
		level = zap.InfoLevel
	}
	if ce := e.log.Check(level, "reconciled"); ce != nil {
		ce.Write(zap.Int("retired", res.Retired), zap.Int("adopted", res.Adopted), zap.Int("orphans_deleted", res.OrphansGone),
			zap.Int("unregistered", res.Unregistered), zap.Int("scopes_listed", res.ScopesListed), zap.Int("scopes_not_listed", res.ScopesMissing))
	}
}
