package recovery

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"
	"go.uber.org/zap/zaptest"

	"github.com/runnerscaler/runnerscaler/internal/ghapi"
	"github.com/runnerscaler/runnerscaler/internal/ghsim"
)

// guidsOf returns the GUIDs of the log's records that failed or succeeded.
func guidsOf(log []*ghapi.HookDelivery, failed bool) []string {
	var out []string
	for _, d := range log {
		if succeeded(d) != failed {
			out = append(out, d.GetGUID())
		}
	}
	sort.Strings(out)
	return out
}

// TestRedelivererRedeliversFailedOnce: failed workflow_job deliveries are
// redelivered exactly once, successful ones never; a recent failure waits;
// a cycle with nothing new asks for nothing; and a restarted Redeliverer
// sharing the CursorStore does not ask again.
func TestRedelivererRedeliversFailedOnce(t *testing.T) {
	h := newHarness(t)
	ctx := testCtx(t)

	h.recv.fail.Store(true)
	h.createJobs(3)
	log := h.waitLog(ctx, 3)
	h.recv.fail.Store(false)
	h.createJobs(2)
	log = h.waitLog(ctx, 5)
	failed, ok := guidsOf(log, true), guidsOf(log, false)
	if len(failed) != 3 || len(ok) != 2 {
		t.Fatalf("log has %d failed and %d successful deliveries, want 3 and 2", len(failed), len(ok))
	}

	clk := &offsetClock{}
	cursors := &MemoryCursors{}
	metrics := &countingMetrics{}
	cfg := RedelivererConfig{Clock: clk.Now, Metrics: metrics}
	r := NewRedeliverer(h.gh, cursors, cfg, zaptest.NewLogger(t))

	// Just delivered: too recent to judge.
	var res RedeliveryResult
	var err error
	posts := h.callsDuring(routeRedeliver, func() { res, err = r.Cycle(ctx) })
	if err != nil || res.Pending != 3 || res.Requested != 0 || posts != 0 {
		t.Fatalf("first cycle: %+v, %d redelivery calls, err %v; want 3 pending and no call", res, posts, err)
	}

	clk.Set(time.Minute)
	var lists int
	posts = h.callsDuring(routeRedeliver, func() {
		lists = h.callsDuring(routeListDeliveries, func() { res, err = r.Cycle(ctx) })
	})
	if err != nil || res.Requested != 3 || res.Failed != 3 || posts != 3 || lists != 1 || res.Pages != 1 {
		t.Fatalf("settled cycle: %+v, %d redelivery and %d list calls, err %v; want 3 requested with 3 + 1 calls", res, posts, lists, err)
	}
	if got := metrics.get("redelivery", RedeliveryRequested); got != 3 {
		t.Errorf("requested counted %d times, want 3", got)
	}

	// Each failed delivery arrives once more, each successful one not.
	log = h.waitLog(ctx, 8)
	hits, oks := h.recv.counts()
	for _, g := range failed {
		if hits[g] != 2 || oks[g] != 1 {
			t.Errorf("failed delivery %s: %d requests, %d answered OK; want 2 and 1", g, hits[g], oks[g])
		}
	}
	for _, g := range ok {
		if hits[g] != 1 {
			t.Errorf("successful delivery %s: %d requests, want 1", g, hits[g])
		}
	}
	for _, d := range log[:3] {
		if !d.GetRedelivery() || !succeeded(d) {
			t.Errorf("newest records should be successful redeliveries: %v", d)
		}
	}

	// Nothing new: the redeliveries are read (they succeeded), nothing asked.
	posts = h.callsDuring(routeRedeliver, func() { res, err = r.Cycle(ctx) })
	if err != nil || res.Requested != 0 || res.Examined != 3 || posts != 0 {
		t.Fatalf("cycle after redelivery: %+v, %d calls, err %v; want 3 examined, none asked", res, posts, err)
	}
	posts = h.callsDuring(routeRedeliver, func() { res, err = r.Cycle(ctx) })
	if err != nil || res.Requested != 0 || res.Examined != 0 || posts != 0 {
		t.Fatalf("idle cycle: %+v, %d calls, err %v; want nothing", res, posts, err)
	}

	// A restart continues from the saved watermark.
	r2 := NewRedeliverer(h.gh, cursors, cfg, zaptest.NewLogger(t))
	posts = h.callsDuring(routeRedeliver, func() { res, err = r2.Cycle(ctx) })
	if err != nil || res.Requested != 0 || res.Examined != 0 || posts != 0 {
		t.Fatalf("after restart: %+v, %d calls, err %v; want nothing", res, posts, err)
	}
	if wm := res.Watermark; wm != log[0].GetID() {
		t.Errorf("watermark %d, want the newest delivery %d", wm, log[0].GetID())
	}
}

// TestRedelivererPerCycleBound: at most MaxPerCycle requests per cycle,
// oldest failure first; the rest are asked for by later cycles, each once.
func TestRedelivererPerCycleBound(t *testing.T) {
	h := newHarness(t)
	ctx := testCtx(t)
	h.setDrop(1) // the simulator records the deliveries as failed at once
	h.createJobs(5)
	h.setDrop(0)
	log := h.waitLog(ctx, 5)
	ids := make([]int64, len(log))
	guidByID := map[int64]string{}
	for i, d := range log {
		ids[i] = d.GetID()
		guidByID[d.GetID()] = d.GetGUID()
	}
	slices.Sort(ids)

	clk := &offsetClock{}
	clk.Set(time.Minute)
	metrics := &countingMetrics{}
	r := NewRedeliverer(h.gh, nil, RedelivererConfig{Clock: clk.Now, MaxPerCycle: 2, Metrics: metrics}, zaptest.NewLogger(t))

	want := []struct{ requested, skipped int }{{2, 3}, {2, 1}, {1, 0}, {0, 0}}
	total := 0
	for i, w := range want {
		var res RedeliveryResult
		var err error
		posts := h.callsDuring(routeRedeliver, func() { res, err = r.Cycle(ctx) })
		if err != nil || res.Requested != w.requested || res.SkippedLimit != w.skipped || posts != w.requested {
			t.Fatalf("cycle %d: %+v, %d calls, err %v; want %d requested, %d skipped", i+1, res, posts, err, w.requested, w.skipped)
		}
		// Oldest first: this cycle's redeliveries are the next ids in order.
		done := total + w.requested
		waitFor(t, "redeliveries to arrive", func() bool {
			hits, _ := h.recv.counts()
			return len(hits) == done
		})
		hits, _ := h.recv.counts()
		for _, id := range ids[:done] {
			if hits[guidByID[id]] != 1 {
				t.Errorf("cycle %d: delivery %d (%s) received %d times, want 1", i+1, id, guidByID[id], hits[guidByID[id]])
			}
		}
		total = done
	}
	if got := metrics.get("redelivery", RedeliverySkippedLimit); got != 4 {
		t.Errorf("skipped_limit counted %d, want 3+1", got)
	}
}

// TestRedelivererRetriesFailedRedelivery: a redelivery that fails too is
// asked for again, up to MaxAttempts per GUID; then the GUID is given up.
func TestRedelivererRetriesFailedRedelivery(t *testing.T) {
	h := newHarness(t)
	ctx := testCtx(t)
	h.recv.fail.Store(true) // the daemon stays broken
	h.createJobs(1)
	h.waitLog(ctx, 1)

	clk := &offsetClock{}
	clk.Set(time.Minute)
	metrics := &countingMetrics{}
	r := NewRedeliverer(h.gh, nil, RedelivererConfig{Clock: clk.Now, MaxAttempts: 2, Metrics: metrics}, zaptest.NewLogger(t))
	steps := []struct {
		requested, exhausted, logAfter int
	}{
		{1, 0, 2}, // the original failed: asked once
		{1, 0, 3}, // the redelivery failed: asked again
		{0, 1, 3}, // two attempts used: given up
		{0, 0, 3}, // and not looked at again
	}
	for i, s := range steps {
		var res RedeliveryResult
		var err error
		posts := h.callsDuring(routeRedeliver, func() { res, err = r.Cycle(ctx) })
		if err != nil || res.Requested != s.requested || res.Exhausted != s.exhausted || posts != s.requested {
			t.Fatalf("cycle %d: %+v, %d calls, err %v; want %d requested, %d exhausted", i+1, res, posts, err, s.requested, s.exhausted)
		}
		h.waitLog(ctx, s.logAfter)
	}
	hits, _ := h.recv.counts()
	for g, n := range hits {
		if n != 3 {
			t.Errorf("delivery %s received %d times, want 3 (original and two redeliveries)", g, n)
		}
	}
	if got := metrics.get("redelivery", RedeliveryExhausted); got != 1 {
		t.Errorf("exhausted counted %d, want 1", got)
	}
}

// TestRedelivererGitHubErrors: a failed list leaves the watermark alone; a
// failed redelivery request is retried next cycle (and the watermark stays
// below it, across a restart too); one GitHub refuses (404) is given up.
func TestRedelivererGitHubErrors(t *testing.T) {
	h := newHarness(t)
	ctx := testCtx(t)
	h.setDrop(1)
	h.createJobs(3)
	h.setDrop(0)
	log := h.waitLog(ctx, 3)
	oldest := log[2]

	clk := &offsetClock{}
	clk.Set(time.Minute)
	cursors := &MemoryCursors{}
	cfg := RedelivererConfig{Clock: clk.Now}
	r := NewRedeliverer(h.gh, cursors, cfg, zaptest.NewLogger(t))

	h.addFault(ghsim.FaultSpec{Route: routeListDeliveries, Status: 502, Count: 1})
	res, err := r.Cycle(ctx)
	if err == nil || res.Requested != 0 || res.Watermark != 0 {
		t.Fatalf("cycle with a failing list: %+v, err %v; want an error and nothing done", res, err)
	}
	if _, ok, _ := cursors.LoadCursor(ctx, DefaultRedeliverCursorName); ok {
		t.Errorf("a watermark was saved after a failed list")
	}

	// The oldest failure's request fails (500), the second's is refused
	// (404), the third goes through.
	h.addFault(ghsim.FaultSpec{Route: routeRedeliver, Status: 500, Count: 1})
	h.addFault(ghsim.FaultSpec{Route: routeRedeliver, Status: 404, Count: 1})
	var posts int
	posts = h.callsDuring(routeRedeliver, func() { res, err = r.Cycle(ctx) })
	var apiErr *ghapi.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 500 {
		t.Errorf("cycle error %v, want the 500", err)
	}
	if res.Requested != 1 || res.RequestFailed != 2 || posts != 3 {
		t.Fatalf("cycle with failing requests: %+v, %d calls; want 1 requested, 2 failed", res, posts)
	}
	if res.Watermark != oldest.GetID()-1 {
		t.Errorf("watermark %d, want %d: below the request to retry", res.Watermark, oldest.GetID()-1)
	}

	// A restart retries the failed request only.
	r2 := NewRedeliverer(h.gh, cursors, cfg, zaptest.NewLogger(t))
	posts = h.callsDuring(routeRedeliver, func() { res, err = r2.Cycle(ctx) })
	if err != nil || res.Requested != 1 || posts != 1 {
		t.Fatalf("cycle after restart: %+v, %d calls, err %v; want the failed request retried once", res, posts, err)
	}
	waitFor(t, "two redeliveries", func() bool {
		hits, _ := h.recv.counts()
		return len(hits) == 2
	})
	hits, _ := h.recv.counts()
	if hits[oldest.GetGUID()] != 1 {
		t.Errorf("the retried delivery arrived %d times, want 1", hits[oldest.GetGUID()])
	}
	posts = h.callsDuring(routeRedeliver, func() { res, err = r2.Cycle(ctx) })
	if err != nil || posts != 0 {
		t.Fatalf("last cycle: %+v, %d calls, err %v; want nothing", res, posts, err)
	}
}

// TestRedelivererLookback: on first start deliveries older than Lookback
// are not judged.
func TestRedelivererLookback(t *testing.T) {
	h := newHarness(t)
	ctx := testCtx(t)
	h.setDrop(1)
	h.createJobs(2)
	h.waitLog(ctx, 2)

	clk := &offsetClock{}
	clk.Set(2 * time.Hour)
	r := NewRedeliverer(h.gh, nil, RedelivererConfig{Clock: clk.Now, Lookback: time.Hour}, zaptest.NewLogger(t))
	var res RedeliveryResult
	var err error
	posts := h.callsDuring(routeRedeliver, func() { res, err = r.Cycle(ctx) })
	if err != nil || res.Examined != 0 || posts != 0 {
		t.Fatalf("2h later with a 1h look-back: %+v, %d calls, err %v; want nothing examined", res, posts, err)
	}

	clk.Set(30 * time.Minute)
	r = NewRedeliverer(h.gh, nil, RedelivererConfig{Clock: clk.Now, Lookback: time.Hour}, zaptest.NewLogger(t))
	posts = h.callsDuring(routeRedeliver, func() { res, err = r.Cycle(ctx) })
	if err != nil || res.Requested != 2 || posts != 2 {
		t.Fatalf("30m later with a 1h look-back: %+v, %d calls, err %v; want 2 requested", res, posts, err)
	}
}

// fakeDeliveries is a delivery log under the test's full control, for what
// the simulator cannot produce: other events, and a failure still settling
// below one already judged.
type fakeDeliveries struct {
	mu          sync.Mutex
	log         []*ghapi.HookDelivery // ascending id
	redelivered []int64
}

func (f *fakeDeliveries) add(id int64, guid, event string, code int, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	status := "OK"
	if code < 200 || code > 299 {
		status = "Invalid HTTP Response: " + strconv.Itoa(code)
	}
	f.log = append(f.log, &ghapi.HookDelivery{
		ID: ptr(id), GUID: ptr(guid), Event: ptr(event), Action: ptr("queued"),
		StatusCode: ptr(code), Status: ptr(status), DeliveredAt: &github.Timestamp{Time: at},
	})
}

func ptr[T any](v T) *T { return &v }

func (f *fakeDeliveries) ListHookDeliveries(_ context.Context, opts ghapi.ListDeliveriesOptions) ([]*ghapi.HookDelivery, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	before := int64(1 << 62)
	if opts.Cursor != "" {
		n, err := strconv.ParseInt(opts.Cursor, 10, 64)
		if err != nil {
			return nil, "", err
		}
		before = n
	}
	per := opts.PerPage
	var out []*ghapi.HookDelivery
	for i := len(f.log) - 1; i >= 0; i-- {
		if f.log[i].GetID() >= before {
			continue
		}
		if len(out) == per {
			return out, strconv.FormatInt(out[len(out)-1].GetID(), 10), nil
		}
		out = append(out, f.log[i])
	}
	return out, "", nil
}

func (f *fakeDeliveries) RedeliverHookDelivery(_ context.Context, id int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.redelivered = append(f.redelivered, id)
	return nil
}

func (f *fakeDeliveries) asked() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.redelivered)
}

// TestRedelivererHeldWatermarkSurvivesRestart: a failure still settling
// holds the watermark below it; what was asked above the watermark is saved
// with it, so a restart neither asks twice nor forgets the held failure.
// Other events are never redelivered.
func TestRedelivererHeldWatermarkSurvivesRestart(t *testing.T) {
	ctx := testCtx(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	f := &fakeDeliveries{}
	f.add(1, "g-ok", "workflow_job", 202, now.Add(-time.Minute))
	f.add(2, "g-ping", "ping", 500, now.Add(-time.Minute))
	// Delivery 3 started (delivered_at) after 4 but ended first: an attempt
	// that hangs until the receiver's timeout gets a later id.
	f.add(3, "g-slow", "workflow_job", 504, now.Add(-5*time.Second))
	f.add(4, "g-fail", "workflow_job", 500, now.Add(-30*time.Second))

	cursors := &MemoryCursors{}
	cfg := RedelivererConfig{Clock: clock}
	r := NewRedeliverer(f, cursors, cfg, zaptest.NewLogger(t))
	res, err := r.Cycle(ctx)
	if err != nil || res.Requested != 1 || res.Pending != 1 || res.Watermark != 2 {
		t.Fatalf("first cycle: %+v, err %v; want g-fail asked, g-slow pending, watermark 2", res, err)
	}
	if got := f.asked(); !slices.Equal(got, []int64{4}) {
		t.Fatalf("asked %v, want [4]", got)
	}

	// Restart before g-slow settles: g-fail is not asked again.
	r = NewRedeliverer(f, cursors, cfg, zaptest.NewLogger(t))
	if res, err = r.Cycle(ctx); err != nil || res.Requested != 0 || res.Pending != 1 {
		t.Fatalf("after restart: %+v, err %v; want nothing asked, g-slow pending", res, err)
	}
	now = now.Add(time.Minute)
	if res, err = r.Cycle(ctx); err != nil || res.Requested != 1 || res.Watermark != 4 {
		t.Fatalf("after g-slow settled: %+v, err %v; want it asked, watermark 4", res, err)
	}
	if got := f.asked(); !slices.Equal(got, []int64{4, 3}) {
		t.Fatalf("asked %v, want [4 3]", got)
	}

	// A long log: pages are followed down to the watermark only.
	for i := int64(5); i < 5+250; i++ {
		f.add(i, "g-"+strconv.FormatInt(i, 10), "workflow_job", 200, now.Add(-30*time.Second))
	}
	if res, err = r.Cycle(ctx); err != nil || res.Pages != 3 || res.Examined != 250 || res.Requested != 0 {
		t.Fatalf("long log: %+v, err %v; want 3 pages, 250 examined", res, err)
	}
}

// TestRunEndsWithContext: both loops cycle on their interval and return
// when the context ends.
func TestRunEndsWithContext(t *testing.T) {
	f := &fakeDeliveries{}
	r := NewRedeliverer(f, nil, RedelivererConfig{Interval: time.Millisecond}, nil)
	s := NewStaleJobs(emptyJobs{}, nil, nil, StaleJobsConfig{Interval: time.Millisecond}, nil)

	var mu sync.Mutex
	cycles := map[string]int{}
	r.afterCycle = func(_ RedeliveryResult, err error) {
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		cycles["redeliver"]++
		mu.Unlock()
	}
	s.afterCycle = func(_ StaleJobsResult, err error) {
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		cycles["stale"]++
		mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- r.Run(ctx) }()
	go func() { done <- s.Run(ctx) }()
	waitFor(t, "three cycles of each loop", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return cycles["redeliver"] >= 3 && cycles["stale"] >= 3
	})
	cancel()
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	}
}

// countingMetrics records what the mechanisms count.
type countingMetrics struct {
	mu sync.Mutex
	n  map[string]int
}

func (m *countingMetrics) add(kind, outcome string, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == nil {
		m.n = map[string]int{}
	}
	m.n[kind+"/"+outcome] += n
}

func (m *countingMetrics) Redeliveries(outcome string, n int)   { m.add("redelivery", outcome, n) }
func (m *countingMetrics) StaleJobChecks(outcome string, n int) { m.add("stale", outcome, n) }

func (m *countingMetrics) get(kind, outcome string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n[kind+"/"+outcome]
}
