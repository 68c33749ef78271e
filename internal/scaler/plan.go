package scaler

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Plan decides, from absolute state alone, what to create and what to remove.
// It is pure: no I/O, no clock but now, no randomness; the same state and now
// always give the same actions, in the same order.
//
// Per pool (runners and jobs of pools not in s.Pools are ignored):
//
//	busy     = runners busy, or with a job whatever their state says
//	queued   = queued jobs matched to the pool (a queued job is not on a runner yet)
//	idle     = idle runners without a job
//	starting = starting runners + s.CreatesInFlight[pool]
//	desired  = min(MaxRunners, busy + queued + MinIdleAt(now))
//	creates  = desired - (idle + starting + busy), at least 0, and at most
//	           MaxConcurrentCreates - CreatesInFlight,
//	           MaxLaunchesPerWindow - LaunchesInWindow (when MaxLaunchesPerWindow > 0),
//	           MaxRunners - (idle + starting + busy + draining + other)
//
// Draining runners (and runners in states the planner does not know) are not
// capacity, but their machines exist, so they count toward MaxRunners.
//
// Removal candidates are idle runners without a job beyond
// MinIdleAt(now) + queued that have been idle for at least IdleTimeout
// (since IdleSince, or CreatedAt when IdleSince is unset; a runner with
// neither is never removed), oldest first. Busy, starting and draining
// runners and runners with a job are never removal candidates.
//
// Actions come pool by pool in config order (Order), a pool's create before
// its removes, one ActionRemove per runner.
func Plan(s PlanState, now time.Time) []Action {
	pools := slices.Clone(s.Pools)
	slices.SortStableFunc(pools, func(a, b Pool) int { return cmp.Compare(a.Order, b.Order) })

	byPool := make(map[string]*poolState, len(pools))
	for _, p := range pools {
		byPool[p.Name] = &poolState{inFlight: max(0, s.CreatesInFlight[p.Name])}
	}
	for _, r := range s.Runners {
		ps := byPool[r.Pool]
		if ps == nil {
			continue
		}
		switch {
		case r.State == RunnerDraining:
			ps.draining++
		case r.State == RunnerBusy || r.JobID != 0:
			ps.busy++
		case r.State == RunnerStarting:
			ps.starting++
		case r.State == RunnerIdle:
			ps.idle = append(ps.idle, r)
		default:
			ps.other++
		}
	}
	for _, j := range s.Jobs {
		if ps := byPool[j.Pool]; ps != nil && j.Status == jobQueued {
			ps.queued++
		}
	}

	var actions []Action
	for _, p := range pools {
		ps := byPool[p.Name]
		if a, ok := planCreate(p, ps, s, now); ok {
			actions = append(actions, a)
		}
		actions = append(actions, planRemoves(p, ps, now)...)
	}
	return actions
}

// jobQueued is the JobView status that counts as demand.
const jobQueued = "queued"

// poolState is one pool's share of the PlanState, counted.
type poolState struct {
	busy, starting, draining, other int
	inFlight                        int
	queued                          int
	idle                            []RunnerView // idle, no job
}

// capacity is idle + starting (with creates in flight) + busy: runners that
// serve or will serve jobs.
func (ps *poolState) capacity() int {
	return len(ps.idle) + ps.starting + ps.inFlight + ps.busy
}

// total is every runner whose machine exists or is being made.
func (ps *poolState) total() int { return ps.capacity() + ps.draining + ps.other }

// Desired is the planner's target for a pool: min(MaxRunners, busy +
// queued + MinIdleAt(now)).
func (p Pool) Desired(busy, queued int, now time.Time) int {
	return min(max(0, p.MaxRunners), busy+queued+max(0, p.MinIdleAt(now)))
}

func planCreate(p Pool, ps *poolState, s PlanState, now time.Time) (Action, bool) {
	minIdle := max(0, p.MinIdleAt(now))
	want := ps.busy + ps.queued + minIdle
	desired := p.Desired(ps.busy, ps.queued, now)
	need := desired - ps.capacity()
	if need <= 0 {
		return Action{}, false
	}
	n := need
	var limits []string
	if room := p.maxConcurrentCreates() - ps.inFlight; room < n {
		n = max(0, room)
		limits = append(limits, fmt.Sprintf("max_concurrent_creates %d with %d in flight", p.maxConcurrentCreates(), ps.inFlight))
	}
	if s.MaxLaunchesPerWindow > 0 {
		launched := max(0, s.LaunchesInWindow[p.Name])
		if room := s.MaxLaunchesPerWindow - launched; room < n {
			n = max(0, room)
			limits = append(limits, fmt.Sprintf("launch rate %d per window with %d launched", s.MaxLaunchesPerWindow, launched))
		}
	}
	if room := p.MaxRunners - ps.total(); room < n {
		n = max(0, room)
		limits = append(limits, fmt.Sprintf("max_runners %d with %d runners, %d of them draining", p.MaxRunners, ps.total(), ps.draining+ps.other))
	}
	if n == 0 {
		return Action{}, false
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d queued, %d busy, %d idle, %d starting", ps.queued, ps.busy, len(ps.idle), ps.starting+ps.inFlight)
	if ps.inFlight > 0 {
		fmt.Fprintf(&b, " (%d in flight)", ps.inFlight)
	}
	fmt.Fprintf(&b, ", min_idle %d → desired %d", minIdle, desired)
	if desired < want {
		fmt.Fprintf(&b, " (max_runners %d)", p.MaxRunners)
	}
	fmt.Fprintf(&b, ", create %d", n)
	if n < need {
		fmt.Fprintf(&b, " of %d (limited by %s)", need, strings.Join(limits, ", "))
	}
	return Action{Kind: ActionCreate, Pool: p.Name, Count: n, Reason: b.String()}, true
}

func planRemoves(p Pool, ps *poolState, now time.Time) []Action {
	minIdle := max(0, p.MinIdleAt(now))
	keep := minIdle + ps.queued
	surplus := len(ps.idle) - keep
	if surplus <= 0 {
		return nil
	}
	type cand struct {
		r     RunnerView
		since time.Time
	}
	var cands []cand
	for _, r := range ps.idle {
		since := r.IdleSince
		if since.IsZero() {
			since = r.CreatedAt
		}
		if since.IsZero() || now.Sub(since) < p.IdleTimeout {
			continue
		}
		cands = append(cands, cand{r, since})
	}
	slices.SortFunc(cands, func(a, b cand) int {
		if c := a.since.Compare(b.since); c != 0 {
			return c
		}
		return cmp.Compare(a.r.Name, b.r.Name)
	})
	if len(cands) > surplus {
		cands = cands[:surplus]
	}
	out := make([]Action, 0, len(cands))
	for _, c := range cands {
		out = append(out, Action{
			Kind:   ActionRemove,
			Pool:   p.Name,
			Runner: c.r.Name,
			Reason: fmt.Sprintf("idle %s (idle_timeout %s); %d idle, min_idle %d, %d queued → %d surplus",
				now.Sub(c.since).Round(time.Second), p.IdleTimeout, len(ps.idle), minIdle, ps.queued, surplus),
		})
	}
	return out
}
