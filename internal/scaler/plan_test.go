package scaler

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/ghapi"
)

var planNow = time.Date(2025, 6, 2, 12, 0, 0, 0, time.UTC)

func planPool(name string, order, minIdle, maxRunners int) Pool {
	return Pool{
		Name: name, Scope: ghapi.Org("octo-org"), RunnerGroup: "Default", OS: "linux", Arch: "x64",
		MinIdle: minIdle, MaxRunners: maxRunners, Ephemeral: true, Registration: "jit",
		IdleTimeout: 10 * time.Minute, MaxConcurrentCreates: 10, Order: order,
	}
}

// planRunners makes n runners of pool in state; idle ones have been idle
// since idleFor ago.
func planRunners(pool, state string, n int, idleFor time.Duration) []RunnerView {
	out := make([]RunnerView, n)
	for i := range out {
		out[i] = RunnerView{
			Name: fmt.Sprintf("%s-%s-%d", pool, state, i), Pool: pool, State: state,
			CreatedAt: planNow.Add(-time.Hour),
		}
		if state == RunnerIdle {
			out[i].IdleSince = planNow.Add(-idleFor)
		}
	}
	return out
}

func planJobs(pool, status string, n int) []JobView {
	out := make([]JobView, n)
	for i := range out {
		out[i] = JobView{ID: int64(i + 1), Pool: pool, Status: status, Labels: []string{"self-hosted"}, QueuedAt: planNow.Add(-time.Minute)}
	}
	return out
}

func cat[T any](parts ...[]T) []T {
	var out []T
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// summary renders actions compactly: "create p 3", "remove p r".
func summary(actions []Action) []string {
	out := make([]string, 0, len(actions))
	for _, a := range actions {
		switch a.Kind {
		case ActionCreate:
			out = append(out, fmt.Sprintf("create %s %d", a.Pool, a.Count))
		default:
			out = append(out, fmt.Sprintf("%s %s %s", a.Kind, a.Pool, a.Runner))
		}
	}
	return out
}

func TestPlan(t *testing.T) {
	p := planPool("p", 0, 0, 10)
	withMin := func(p Pool, n int) Pool { p.MinIdle = n; return p }
	withMCC := func(p Pool, n int) Pool { p.MaxConcurrentCreates = n; return p }
	withTimeout := func(p Pool, d time.Duration) Pool { p.IdleTimeout = d; return p }
	withSchedule := func(p Pool, minIdle int, active bool) Pool {
		p.Schedules = []Schedule{{MinIdle: minIdle, Active: func(time.Time) bool { return active }}}
		return p
	}
	at := func(rs []RunnerView, i int, f func(*RunnerView)) []RunnerView { f(&rs[i]); return rs }

	tests := []struct {
		name      string
		state     PlanState
		want      []string
		reasonHas []string
	}{
		{
			name:      "queued jobs are demand",
			state:     PlanState{Pools: []Pool{p}, Jobs: planJobs("p", "queued", 3)},
			want:      []string{"create p 3"},
			reasonHas: []string{"3 queued, 0 busy, 0 idle, 0 starting, min_idle 0 → desired 3, create 3"},
		},
		{
			name: "every term",
			state: PlanState{Pools: []Pool{withMin(p, 1)}, Jobs: cat(planJobs("p", "queued", 3), planJobs("p", "in_progress", 1)),
				Runners: cat(planRunners("p", RunnerBusy, 1, 0), planRunners("p", RunnerStarting, 1, 0))},
			want:      []string{"create p 3"},
			reasonHas: []string{"3 queued, 1 busy, 0 idle, 1 starting, min_idle 1 → desired 5, create 3"},
		},
		{
			name:  "min_idle alone",
			state: PlanState{Pools: []Pool{withMin(p, 2)}},
			want:  []string{"create p 2"},
		},
		{
			name:  "idle runners serve queued jobs",
			state: PlanState{Pools: []Pool{p}, Jobs: planJobs("p", "queued", 2), Runners: planRunners("p", RunnerIdle, 2, time.Hour)},
			want:  nil,
		},
		{
			name:  "in-progress jobs are not extra demand",
			state: PlanState{Pools: []Pool{p}, Jobs: planJobs("p", "in_progress", 2), Runners: planRunners("p", RunnerBusy, 2, 0)},
			want:  nil,
		},
		{
			name:  "waiting and completed jobs are not demand",
			state: PlanState{Pools: []Pool{p}, Jobs: cat(planJobs("p", "waiting", 2), planJobs("p", "completed", 2))},
			want:  nil,
		},
		{
			name:      "creates in flight count as starting",
			state:     PlanState{Pools: []Pool{p}, Jobs: planJobs("p", "queued", 3), CreatesInFlight: map[string]int{"p": 2}},
			want:      []string{"create p 1"},
			reasonHas: []string{"2 starting (2 in flight)"},
		},
		{
			name:      "desired capped by max_runners",
			state:     PlanState{Pools: []Pool{planPool("p", 0, 0, 4)}, Jobs: planJobs("p", "queued", 10)},
			want:      []string{"create p 4"},
			reasonHas: []string{"desired 4 (max_runners 4), create 4"},
		},
		{
			name:      "bounded by max_concurrent_creates",
			state:     PlanState{Pools: []Pool{withMCC(planPool("p", 0, 0, 20), 3)}, Jobs: planJobs("p", "queued", 10), CreatesInFlight: map[string]int{"p": 1}},
			want:      []string{"create p 2"},
			reasonHas: []string{"create 2 of 9 (limited by max_concurrent_creates 3 with 1 in flight)"},
		},
		{
			name:  "max_concurrent_creates exhausted",
			state: PlanState{Pools: []Pool{withMCC(p, 3)}, Jobs: planJobs("p", "queued", 10), CreatesInFlight: map[string]int{"p": 3}},
			want:  nil,
		},
		{
			name:  "zero max_concurrent_creates means the default",
			state: PlanState{Pools: []Pool{withMCC(planPool("p", 0, 0, 50), 0)}, Jobs: planJobs("p", "queued", 30)},
			want:  []string{fmt.Sprintf("create p %d", DefaultMaxConcurrentCreates)},
		},
		{
			name: "bounded by launch rate",
			state: PlanState{Pools: []Pool{p}, Jobs: planJobs("p", "queued", 5),
				MaxLaunchesPerWindow: 5, LaunchesInWindow: map[string]int{"p": 4}},
			want:      []string{"create p 1"},
			reasonHas: []string{"launch rate 5 per window with 4 launched"},
		},
		{
			name: "launch rate exhausted",
			state: PlanState{Pools: []Pool{p}, Jobs: planJobs("p", "queued", 5),
				MaxLaunchesPerWindow: 5, LaunchesInWindow: map[string]int{"p": 7}},
			want: nil,
		},
		{
			name:  "launch rate unset is unbounded",
			state: PlanState{Pools: []Pool{p}, Jobs: planJobs("p", "queued", 5), LaunchesInWindow: map[string]int{"p": 100}},
			want:  []string{"create p 5"},
		},
		{
			name:      "draining runners count toward max_runners",
			state:     PlanState{Pools: []Pool{planPool("p", 0, 0, 5)}, Jobs: planJobs("p", "queued", 5), Runners: planRunners("p", RunnerDraining, 2, 0)},
			want:      []string{"create p 3"},
			reasonHas: []string{"limited by max_runners 5 with 2 runners, 2 of them draining"},
		},
		{
			name:  "draining runners fill max_runners",
			state: PlanState{Pools: []Pool{planPool("p", 0, 0, 2)}, Jobs: planJobs("p", "queued", 1), Runners: planRunners("p", RunnerDraining, 2, 0)},
			want:  nil,
		},
		{
			name:  "runners in unknown states count toward max_runners",
			state: PlanState{Pools: []Pool{planPool("p", 0, 0, 3)}, Jobs: planJobs("p", "queued", 3), Runners: planRunners("p", "offline", 2, 0)},
			want:  []string{"create p 1"},
		},
		{
			name: "already above max_runners (lowered on reload)",
			state: PlanState{Pools: []Pool{planPool("p", 0, 0, 4)}, Jobs: planJobs("p", "queued", 3),
				Runners: cat(planRunners("p", RunnerBusy, 4, 0), planRunners("p", RunnerStarting, 2, 0))},
			want: nil,
		},
		{
			name:  "other pools' jobs and runners are ignored",
			state: PlanState{Pools: []Pool{p}, Jobs: cat(planJobs("q", "queued", 4), planJobs("", "queued", 4)), Runners: planRunners("q", RunnerIdle, 3, time.Hour)},
			want:  nil,
		},
		{
			name:      "active schedule sets min_idle",
			state:     PlanState{Pools: []Pool{withSchedule(withMin(p, 1), 3, true)}},
			want:      []string{"create p 3"},
			reasonHas: []string{"min_idle 3"},
		},
		{
			name:  "inactive schedule leaves min_idle",
			state: PlanState{Pools: []Pool{withSchedule(withMin(p, 1), 3, false)}},
			want:  []string{"create p 1"},
		},
		{
			name:  "schedule ending removes surplus warm runners",
			state: PlanState{Pools: []Pool{withSchedule(withMin(p, 3), 0, true)}, Runners: planRunners("p", RunnerIdle, 3, 20*time.Minute)},
			want:  []string{"remove p p-idle-0", "remove p p-idle-1", "remove p p-idle-2"},
		},
		{
			name: "idle timeout: only runners idle long enough, oldest first",
			state: PlanState{Pools: []Pool{withMin(p, 0)}, Runners: cat(
				at(planRunners("p", RunnerIdle, 1, 0), 0, func(r *RunnerView) { r.Name = "young"; r.IdleSince = planNow.Add(-5 * time.Minute) }),
				at(planRunners("p", RunnerIdle, 1, 0), 0, func(r *RunnerView) { r.Name = "mid"; r.IdleSince = planNow.Add(-15 * time.Minute) }),
				at(planRunners("p", RunnerIdle, 1, 0), 0, func(r *RunnerView) { r.Name = "exact"; r.IdleSince = planNow.Add(-10 * time.Minute) }),
				at(planRunners("p", RunnerIdle, 1, 0), 0, func(r *RunnerView) { r.Name = "old"; r.IdleSince = planNow.Add(-40 * time.Minute) }),
			)},
			want:      []string{"remove p old", "remove p mid", "remove p exact"},
			reasonHas: []string{"idle 40m0s (idle_timeout 10m0s); 4 idle, min_idle 0, 0 queued → 4 surplus"},
		},
		{
			name:  "idle but not long enough",
			state: PlanState{Pools: []Pool{p}, Runners: planRunners("p", RunnerIdle, 3, 9*time.Minute)},
			want:  nil,
		},
		{
			name: "removals keep min_idle and queued, oldest go",
			state: PlanState{Pools: []Pool{withMin(p, 1)}, Jobs: planJobs("p", "queued", 1), Runners: cat(
				at(planRunners("p", RunnerIdle, 1, 0), 0, func(r *RunnerView) { r.Name = "a"; r.IdleSince = planNow.Add(-20 * time.Minute) }),
				at(planRunners("p", RunnerIdle, 1, 0), 0, func(r *RunnerView) { r.Name = "b"; r.IdleSince = planNow.Add(-50 * time.Minute) }),
				at(planRunners("p", RunnerIdle, 1, 0), 0, func(r *RunnerView) { r.Name = "c"; r.IdleSince = planNow.Add(-30 * time.Minute) }),
				at(planRunners("p", RunnerIdle, 1, 0), 0, func(r *RunnerView) { r.Name = "d"; r.IdleSince = planNow.Add(-40 * time.Minute) }),
			)},
			want: []string{"remove p b", "remove p d"},
		},
		{
			name: "same idle time: by name",
			state: PlanState{Pools: []Pool{p}, Runners: cat(
				at(planRunners("p", RunnerIdle, 1, time.Hour), 0, func(r *RunnerView) { r.Name = "z" }),
				at(planRunners("p", RunnerIdle, 1, time.Hour), 0, func(r *RunnerView) { r.Name = "y" }),
			)},
			want: []string{"remove p y", "remove p z"},
		},
		{
			name:  "zero idle timeout removes surplus at once",
			state: PlanState{Pools: []Pool{withTimeout(p, 0)}, Runners: planRunners("p", RunnerIdle, 1, 0)},
			want:  []string{"remove p p-idle-0"},
		},
		{
			name: "idle since unknown: created at, else never",
			state: PlanState{Pools: []Pool{p}, Runners: cat(
				at(planRunners("p", RunnerIdle, 1, 0), 0, func(r *RunnerView) { r.Name = "created-old"; r.IdleSince = time.Time{} }),
				at(planRunners("p", RunnerIdle, 1, 0), 0, func(r *RunnerView) { r.Name = "unknown"; r.IdleSince = time.Time{}; r.CreatedAt = time.Time{} }),
			)},
			want: []string{"remove p created-old"},
		},
		{
			name: "never removes busy, starting, draining or runners with a job",
			state: PlanState{Pools: []Pool{withTimeout(p, 0)}, Runners: cat(
				planRunners("p", RunnerBusy, 2, 0),
				planRunners("p", RunnerStarting, 2, 0),
				planRunners("p", RunnerDraining, 2, 0),
				planRunners("p", "offline", 1, 0),
				at(planRunners("p", RunnerIdle, 1, time.Hour), 0, func(r *RunnerView) { r.Name = "idle-with-job"; r.JobID = 7 }),
			)},
			want: nil,
		},
		{
			name: "pools in config order, whatever the slice order",
			state: PlanState{
				Pools: []Pool{withMin(planPool("second", 1, 0, 5), 1), planPool("third", 2, 0, 5), withMin(planPool("first", 0, 0, 5), 2)},
				Runners: cat(
					planRunners("third", RunnerIdle, 2, time.Hour),
				),
			},
			want: []string{"create first 2", "create second 1", "remove third third-idle-0", "remove third third-idle-1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			actions := Plan(tt.state, planNow)
			if got := summary(actions); strings.Join(got, "; ") != strings.Join(tt.want, "; ") {
				t.Fatalf("Plan = %q, want %q\n%s", got, tt.want, reasons(actions))
			}
			for _, a := range actions {
				if a.Reason == "" {
					t.Errorf("action %+v has no reason", a)
				}
			}
			all := reasons(actions)
			for _, want := range tt.reasonHas {
				if !strings.Contains(all, want) {
					t.Errorf("reasons do not contain %q:\n%s", want, all)
				}
			}
		})
	}
}

func reasons(actions []Action) string {
	var b strings.Builder
	for _, a := range actions {
		fmt.Fprintf(&b, "%s %s %s: %s\n", a.Kind, a.Pool, a.Runner, a.Reason)
	}
	return b.String()
}

// randomPlanState builds a random but well-formed state: unique runner
// names, unique pool orders, runners and jobs sometimes in unknown pools.
func randomPlanState(rng *rand.Rand) (PlanState, time.Time) {
	now := planNow.Add(time.Duration(rng.IntN(120)) * time.Minute)
	var s PlanState
	nPools := 1 + rng.IntN(3)
	names := []string{"a", "b", "c", "ghost"}
	orders := rng.Perm(nPools)
	for i := range nPools {
		p := planPool(names[i], orders[i], rng.IntN(4), rng.IntN(9))
		p.MaxConcurrentCreates = rng.IntN(6) // 0 = default
		p.IdleTimeout = time.Duration(rng.IntN(20)) * time.Minute
		if rng.IntN(2) == 0 {
			minIdle, mod := rng.IntN(5), 1+rng.IntN(3)
			p.Schedules = []Schedule{{MinIdle: minIdle, Active: func(t time.Time) bool { return t.Minute()%mod == 0 }}}
		}
		s.Pools = append(s.Pools, p)
	}
	states := []string{RunnerStarting, RunnerIdle, RunnerIdle, RunnerBusy, RunnerDraining, "offline"}
	nRunners := rng.IntN(14)
	for i := range nRunners {
		r := RunnerView{
			Name:  fmt.Sprintf("r%02d", i),
			Pool:  names[rng.IntN(nPools+1)], // sometimes "ghost" or beyond the pools
			State: states[rng.IntN(len(states))],
		}
		if rng.IntN(6) > 0 {
			r.CreatedAt = now.Add(-time.Duration(rng.IntN(60)) * time.Minute)
		}
		if r.State == RunnerIdle && rng.IntN(6) > 0 {
			r.IdleSince = now.Add(-time.Duration(rng.IntN(30)) * time.Minute)
		}
		if r.State == RunnerBusy || rng.IntN(10) == 0 {
			r.JobID = int64(1000 + i)
		}
		s.Runners = append(s.Runners, r)
	}
	jobStatuses := []string{"queued", "queued", "in_progress", "waiting"}
	for i := range rng.IntN(12) {
		pool := names[rng.IntN(nPools+1)]
		if rng.IntN(8) == 0 {
			pool = "" // unmatched
		}
		s.Jobs = append(s.Jobs, JobView{ID: int64(i + 1), Pool: pool, Status: jobStatuses[rng.IntN(len(jobStatuses))]})
	}
	s.CreatesInFlight = map[string]int{}
	s.LaunchesInWindow = map[string]int{}
	for _, p := range s.Pools {
		if rng.IntN(2) == 0 {
			s.CreatesInFlight[p.Name] = rng.IntN(4)
		}
		s.LaunchesInWindow[p.Name] = rng.IntN(6)
	}
	if rng.IntN(2) == 0 {
		s.MaxLaunchesPerWindow = 1 + rng.IntN(6)
	}
	return s, now
}

// poolTotals counts, per pool, every runner whose machine exists or is being
// made: runners in any state plus creates in flight.
func poolTotals(s PlanState) map[string]int {
	out := map[string]int{}
	for _, p := range s.Pools {
		out[p.Name] = s.CreatesInFlight[p.Name]
	}
	for _, r := range s.Runners {
		if _, ok := out[r.Pool]; ok {
			out[r.Pool]++
		}
	}
	return out
}

// applyPlan performs actions on a copy of s. Creates become creates in flight
// (what the executor has started, not yet visible as runners), or starting
// runners when asStarting; both count as launches in the rate window. Removes
// take the runner away.
func applyPlan(s PlanState, actions []Action, asStarting bool, step int) PlanState {
	out := s
	out.Runners = nil
	out.CreatesInFlight = map[string]int{}
	out.LaunchesInWindow = map[string]int{}
	for k, v := range s.CreatesInFlight {
		out.CreatesInFlight[k] = v
	}
	for k, v := range s.LaunchesInWindow {
		out.LaunchesInWindow[k] = v
	}
	removed := map[string]bool{}
	for _, a := range actions {
		if a.Kind == ActionRemove {
			removed[a.Runner] = true
		}
	}
	for _, r := range s.Runners {
		if !removed[r.Name] {
			out.Runners = append(out.Runners, r)
		}
	}
	for _, a := range actions {
		if a.Kind != ActionCreate {
			continue
		}
		out.LaunchesInWindow[a.Pool] += a.Count
		if !asStarting {
			out.CreatesInFlight[a.Pool] += a.Count
			continue
		}
		for i := range a.Count {
			out.Runners = append(out.Runners, RunnerView{Name: fmt.Sprintf("new-%d-%s-%d", step, a.Pool, i), Pool: a.Pool, State: RunnerStarting, CreatedAt: planNow})
		}
	}
	return out
}

func checkPlanInvariants(t *testing.T, s PlanState, now time.Time, actions []Action) {
	t.Helper()
	pools := map[string]Pool{}
	for _, p := range s.Pools {
		pools[p.Name] = p
	}
	runners := map[string]RunnerView{}
	for _, r := range s.Runners {
		runners[r.Name] = r
	}
	before := poolTotals(s)
	creates := map[string]int{}
	removed := map[string]bool{}
	for _, a := range actions {
		p, ok := pools[a.Pool]
		if !ok {
			t.Fatalf("action for unknown pool: %+v", a)
		}
		if a.Reason == "" {
			t.Fatalf("action without reason: %+v", a)
		}
		switch a.Kind {
		case ActionCreate:
			if a.Count <= 0 {
				t.Fatalf("create of %d: %+v", a.Count, a)
			}
			if creates[a.Pool] > 0 {
				t.Fatalf("two creates for pool %s", a.Pool)
			}
			creates[a.Pool] += a.Count
			if inFlight := s.CreatesInFlight[a.Pool]; inFlight+a.Count > max(p.maxConcurrentCreates(), inFlight) {
				t.Fatalf("create %d with %d in flight exceeds max_concurrent_creates %d", a.Count, inFlight, p.maxConcurrentCreates())
			}
			if s.MaxLaunchesPerWindow > 0 && s.LaunchesInWindow[a.Pool]+a.Count > s.MaxLaunchesPerWindow {
				t.Fatalf("create %d exceeds the launch rate %d with %d launched", a.Count, s.MaxLaunchesPerWindow, s.LaunchesInWindow[a.Pool])
			}
		case ActionRemove:
			r, ok := runners[a.Runner]
			if !ok || removed[a.Runner] {
				t.Fatalf("remove of unknown or repeated runner: %+v", a)
			}
			removed[a.Runner] = true
			if r.Pool != a.Pool || r.State != RunnerIdle || r.JobID != 0 {
				t.Fatalf("removes a runner that is not an idle runner of %s without a job: %+v", a.Pool, r)
			}
			since := r.IdleSince
			if since.IsZero() {
				since = r.CreatedAt
			}
			if since.IsZero() || now.Sub(since) < p.IdleTimeout {
				t.Fatalf("removes %s before its idle timeout %s (idle since %s, now %s)", r.Name, p.IdleTimeout, since, now)
			}
		default:
			t.Fatalf("unknown action kind: %+v", a)
		}
	}
	for name, p := range pools {
		if before[name] <= p.MaxRunners {
			if before[name]+creates[name] > p.MaxRunners {
				t.Fatalf("pool %s: %d runners + %d creates > max_runners %d", name, before[name], creates[name], p.MaxRunners)
			}
		} else if creates[name] > 0 {
			t.Fatalf("pool %s above max_runners (%d > %d) and still creates %d", name, before[name], p.MaxRunners, creates[name])
		}
	}
}

func TestPlanProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 2025))
	for i := range 2000 {
		s, now := randomPlanState(rng)
		actions := Plan(s, now)
		ok := t.Run(fmt.Sprint("state-", i), func(t *testing.T) {
			checkPlanInvariants(t, s, now, actions)

			// Deterministic, and blind to the order of its inputs.
			if again := Plan(s, now); !reflect.DeepEqual(actions, again) {
				t.Fatalf("Plan not deterministic:\n%v\n%v", summary(actions), summary(again))
			}
			shuffled := s
			shuffled.Pools = shuffledCopy(rng, s.Pools)
			shuffled.Runners = shuffledCopy(rng, s.Runners)
			shuffled.Jobs = shuffledCopy(rng, s.Jobs)
			if again := Plan(shuffled, now); !reflect.DeepEqual(actions, again) {
				t.Fatalf("Plan depends on input order:\n%v\n%v", summary(actions), summary(again))
			}

			// Converges at once: with creates in flight and removed
			// runners gone, there is nothing left to do.
			next := applyPlan(s, actions, false, 1)
			if second := Plan(next, now); len(second) != 0 {
				t.Fatalf("second plan not empty: %v\nfirst: %v", summary(second), summary(actions))
			}

			// Converges as creates land as starting runners: the plan
			// reaches a fixed point within a bounded number of rounds,
			// never above max_runners on the way.
			cur, curActions := s, actions
			for round := 1; len(curActions) > 0; round++ {
				if round > 20 {
					t.Fatalf("no fixed point after 20 rounds; last %v", summary(curActions))
				}
				cur = applyPlan(cur, curActions, true, round)
				curActions = Plan(cur, now)
				checkPlanInvariants(t, cur, now, curActions)
			}
			// At the fixed point, demand is met unless a bound stops it.
			totals := poolTotals(cur)
			for _, p := range cur.Pools {
				ps := countFor(cur, p.Name)
				desired := min(p.MaxRunners, ps.busy+ps.queued+max(0, p.MinIdleAt(now)))
				rateLeft := cur.MaxLaunchesPerWindow == 0 || cur.LaunchesInWindow[p.Name] < cur.MaxLaunchesPerWindow
				mccLeft := cur.CreatesInFlight[p.Name] < p.maxConcurrentCreates()
				if ps.capacity() < desired && totals[p.Name] < p.MaxRunners && rateLeft && mccLeft {
					t.Fatalf("pool %s at fixed point with capacity %d < desired %d and room to create", p.Name, ps.capacity(), desired)
				}
			}
		})
		if !ok {
			t.Logf("state %d: %+v at %s", i, s, now)
			break
		}
	}
}

// countFor counts a pool the way Plan does, for checking it from outside.
func countFor(s PlanState, pool string) poolState {
	ps := poolState{inFlight: s.CreatesInFlight[pool]}
	for _, r := range s.Runners {
		if r.Pool != pool {
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
		if j.Pool == pool && j.Status == "queued" {
			ps.queued++
		}
	}
	return ps
}

func shuffledCopy[T any](rng *rand.Rand, in []T) []T {
	out := append([]T(nil), in...)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}
