package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/clocktest"
)

func openTest(t testing.TB, opts Options, hooks testHooks) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := open(context.Background(), path, opts, hooks)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s, path
}

func delivery(guid string) Delivery {
	return Delivery{GUID: guid, Event: "workflow_job", Action: "queued", HookID: 7, Outcome: "job"}
}

// stall makes the writer block at the start of its first batch until
// release is called, so a test can queue writes behind it and know they
// form the next batch. sizes receives every batch's size.
type stall struct {
	stalled chan struct{}
	gate    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	sizes   []int
}

func newStall() *stall {
	return &stall{stalled: make(chan struct{}), gate: make(chan struct{})}
}

func (st *stall) hook(n int) {
	st.mu.Lock()
	st.sizes = append(st.sizes, n)
	first := len(st.sizes) == 1
	st.mu.Unlock()
	if first {
		close(st.stalled)
		<-st.gate
	}
}

func (st *stall) release() { st.once.Do(func() { close(st.gate) }) }

func (st *stall) batchSizes() []int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]int(nil), st.sizes...)
}

// waitQueued waits (yielding, with a deadline) until n requests wait in the
// writer's channel.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.reqs) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued, want %d", len(s.reqs), n)
		}
		runtime.Gosched()
	}
}

// stallWriter starts a write that holds the writer in its first batch.
func stallWriter(t *testing.T, s *Store, st *stall) <-chan error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := s.Ingest(context.Background(), delivery("stall"), nil)
		errc <- err
	}()
	<-st.stalled
	return errc
}

func TestOpenMigrates(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t, Options{}, testHooks{})
	if got, want := s.SchemaVersion(), latestVersion(); got != want || want < 1 {
		t.Fatalf("fresh file at version %d, want %d", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopen: nothing to do.
	s2, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if s2.SchemaVersion() != latestVersion() {
		t.Fatalf("reopened at %d", s2.SchemaVersion())
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}

	db, conn := rawConn(t, path)
	from, to, err := migrate(ctx, conn, path, migrations)
	if err != nil || from != latestVersion() || to != latestVersion() {
		t.Fatalf("migrate on a current file: from %d to %d, %v; want a no-op", from, to, err)
	}

	// A later binary's step applies on top, in its own transaction.
	more := append(append([]string(nil), migrations...), "CREATE TABLE extra (x INTEGER); INSERT INTO extra VALUES (1);")
	from, to, err = migrate(ctx, conn, path, more)
	if err != nil || from != latestVersion() || to != latestVersion()+1 {
		t.Fatalf("migrate one step: from %d to %d, %v", from, to, err)
	}
	var x int
	if err := conn.QueryRowContext(ctx, "SELECT x FROM extra").Scan(&x); err != nil || x != 1 {
		t.Fatalf("extra table: %d, %v", x, err)
	}

	// A failing step leaves nothing behind and the version unchanged.
	broken := append(append([]string(nil), more...), "CREATE TABLE half (x INTEGER); CREATE TABL oops (y);")
	if _, _, err := migrate(ctx, conn, path, broken); err == nil {
		t.Fatal("broken step applied")
	}
	if v, _ := userVersion(ctx, conn); v != len(more) {
		t.Fatalf("version %d after a failed step, want %d", v, len(more))
	}
	var n int
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE name = 'half'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("half-applied step left table half: %d, %v", n, err)
	}
	_ = conn.Close()
	_ = db.Close()

	// The file is now newer than this binary.
	_, err = Open(ctx, path, Options{})
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("open newer file: %v, want ErrNewerSchema", err)
	}
	for _, want := range []string{fmt.Sprint(latestVersion() + 1), fmt.Sprintf("up to %d", latestVersion()), "store.path"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func rawConn(t *testing.T, path string) (*sql.DB, *sql.Conn) {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return db, conn
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, tt := range []struct {
		name, path string
		opts       Options
		want       string
	}{
		{"empty path", "", Options{}, "empty path"},
		{"query in path", filepath.Join(dir, "a.db?mode=ro"), Options{}, "plain file path"},
		{"bad sync", filepath.Join(dir, "b.db"), Options{Sync: "sometimes"}, `sync "sometimes"`},
		{"missing directory", filepath.Join(dir, "no", "such", "c.db"), Options{}, "directory exist"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(ctx, tt.path, tt.opts)
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestOpenSyncModes(t *testing.T) {
	for _, tt := range []struct{ sync, want string }{{"", "1"}, {SyncNormal, "1"}, {SyncFull, "2"}} {
		s, _ := openTest(t, Options{Sync: tt.sync}, testHooks{})
		var got, mode string
		err := s.write(context.Background(), "pragma", func(w *wtx) error {
			if err := w.conn.QueryRowContext(context.Background(), "PRAGMA synchronous").Scan(&got); err != nil {
				return err
			}
			return w.conn.QueryRowContext(context.Background(), "PRAGMA journal_mode").Scan(&mode)
		})
		if err != nil || got != tt.want || mode != "wal" {
			t.Errorf("sync %q: synchronous=%s journal_mode=%s (%v), want %s and wal", tt.sync, got, mode, err, tt.want)
		}
	}
}

func TestIngestEveryOrder(t *testing.T) {
	ctx := context.Background()
	clock := clocktest.New(evBase.Add(time.Hour))
	s, _ := openTest(t, Options{Clock: clock.Now}, testHooks{})
	now := clock.Now()
	for i, order := range permutations(actions) {
		id := int64(1000 + i)
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			for k, a := range order {
				ev := testEvent(id, a)
				res, err := s.Ingest(ctx, delivery(fmt.Sprintf("g-%d-%s", id, a)), &ev)
				if err != nil {
					t.Fatal(err)
				}
				want := expectJob(id, order[:k+1], now)
				if res.Duplicate || !res.Applied || !reflect.DeepEqual(res.Job, want) {
					t.Fatalf("after %v: %+v\nwant job %+v", order[:k+1], res, want)
				}
				got, ok, err := s.Job(ctx, id)
				if err != nil || !ok || !reflect.DeepEqual(got, want) {
					t.Fatalf("stored after %v (%v %v):\n got %+v\nwant %+v", order[:k+1], ok, err, got, want)
				}
			}
			// The same transitions again, under new GUIDs: recorded as
			// deliveries, not applied, the job untouched.
			before, _, _ := s.Job(ctx, id)
			for _, a := range order {
				ev := testEvent(id, a)
				ev.RunnerName = "someone-else"
				res, err := s.Ingest(ctx, delivery(fmt.Sprintf("again-%d-%s", id, a)), &ev)
				if err != nil || res.Duplicate || res.Applied || !reflect.DeepEqual(res.Job, before) {
					t.Fatalf("repeat %s: %+v, %v", a, res, err)
				}
			}
			if after, _, _ := s.Job(ctx, id); !reflect.DeepEqual(after, before) {
				t.Fatalf("repeats changed the job:\n%+v\n%+v", before, after)
			}
			if n, err := s.JobTransitions(ctx, id); err != nil || n != 4 {
				t.Fatalf("%d transitions (%v), want 4", n, err)
			}
		})
	}
	if n, err := s.CountDeliveries(ctx); err != nil || n != 24*8 {
		t.Fatalf("%d deliveries (%v), want %d", n, err, 24*8)
	}
}

func TestIngestCompletedBeforeQueuedNeverDemand(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{}, testHooks{})
	c := testEvent(5, JobCompleted)
	q := testEvent(5, JobQueued)
	if _, err := s.Ingest(ctx, delivery("c"), &c); err != nil {
		t.Fatal(err)
	}
	res, err := s.Ingest(ctx, delivery("q"), &q)
	if err != nil || !res.Applied || res.Job.Status != JobCompleted || res.Job.Demand() || !res.Job.QueuedAt.Equal(q.At) {
		t.Fatalf("%+v %v", res, err)
	}
	queued, err := s.Jobs(ctx, JobFilter{Status: JobQueued})
	if err != nil || len(queued) != 0 {
		t.Fatalf("queued jobs %+v (%v), want none", queued, err)
	}
}

func TestIngestDuplicates(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{}, testHooks{})

	ev := testEvent(1, JobQueued)
	res, err := s.Ingest(ctx, delivery("guid-1"), &ev)
	if err != nil || res.Duplicate || !res.Applied {
		t.Fatalf("first: %+v %v", res, err)
	}
	// The same GUID again, even carrying another transition: nothing.
	ev2 := testEvent(1, JobInProgress)
	res, err = s.Ingest(ctx, delivery("guid-1"), &ev2)
	if err != nil || !res.Duplicate || res.Applied {
		t.Fatalf("duplicate: %+v %v", res, err)
	}
	if n, _ := s.JobTransitions(ctx, 1); n != 1 {
		t.Fatalf("%d transitions after a duplicate GUID, want 1", n)
	}
	if j, _, _ := s.Job(ctx, 1); j.Status != JobQueued {
		t.Fatalf("duplicate moved the job to %s", j.Status)
	}

	// The same (job, action) under a second GUID: two deliveries, one
	// transition.
	res, err = s.Ingest(ctx, delivery("guid-2"), &ev)
	if err != nil || res.Duplicate || res.Applied || res.Job.Status != JobQueued {
		t.Fatalf("same transition, new GUID: %+v %v", res, err)
	}
	if n, _ := s.CountDeliveries(ctx); n != 2 {
		t.Fatalf("%d deliveries, want 2", n)
	}
	if n, _ := s.JobTransitions(ctx, 1); n != 1 {
		t.Fatalf("%d transitions, want 1", n)
	}

	// A delivery without a job event (a ping) is stored and deduplicated too.
	ping := Delivery{GUID: "ping-1", Event: "ping", Outcome: "ping"}
	if res, err := s.Ingest(ctx, ping, nil); err != nil || res.Duplicate || res.Applied {
		t.Fatalf("ping: %+v %v", res, err)
	}
	if res, err := s.Ingest(ctx, ping, nil); err != nil || !res.Duplicate {
		t.Fatalf("ping again: %+v %v", res, err)
	}
	if ok, err := s.HasDelivery(ctx, "ping-1"); err != nil || !ok {
		t.Fatalf("HasDelivery(ping-1) = %v, %v", ok, err)
	}
	if ok, err := s.HasDelivery(ctx, "never"); err != nil || ok {
		t.Fatalf("HasDelivery(never) = %v, %v", ok, err)
	}
}

func TestIngestSameGUIDConcurrently(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{}, testHooks{})
	const n = 100
	var wg sync.WaitGroup
	var applied, dups atomic.Int32
	errs := make(chan error, n)
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ev := testEvent(77, JobQueued)
			res, err := s.Ingest(ctx, delivery("same-guid"), &ev)
			if err != nil {
				errs <- err
				return
			}
			if res.Applied {
				applied.Add(1)
			}
			if res.Duplicate {
				dups.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if applied.Load() != 1 || dups.Load() != n-1 {
		t.Fatalf("applied %d, duplicates %d; want 1 and %d", applied.Load(), dups.Load(), n-1)
	}
	if c, err := s.CountDeliveries(ctx); err != nil || c != 1 {
		t.Fatalf("%d deliveries (%v), want 1", c, err)
	}
	if c, err := s.JobTransitions(ctx, 77); err != nil || c != 1 {
		t.Fatalf("%d transitions (%v), want 1", c, err)
	}
}

func TestIngestRejectsInvalid(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{}, testHooks{})
	good := testEvent(1, JobQueued)
	bad := func(f func(*JobEvent)) *JobEvent { e := good; f(&e); return &e }
	for _, tt := range []struct {
		name string
		d    Delivery
		ev   *JobEvent
	}{
		{"no guid", Delivery{Event: "workflow_job"}, &good},
		{"no job id", delivery("x1"), bad(func(e *JobEvent) { e.JobID = 0 })},
		{"unknown action", delivery("x2"), bad(func(e *JobEvent) { e.Action = "requested" })},
	} {
		if _, err := s.Ingest(ctx, tt.d, tt.ev); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	if n, _ := s.CountDeliveries(ctx); n != 0 {
		t.Fatalf("%d deliveries stored from invalid input", n)
	}
	if s.Stats().Writes != 0 {
		t.Fatalf("invalid input reached the writer: %+v", s.Stats())
	}
}

func TestTimestampsRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{}, testHooks{})
	loc := time.FixedZone("UTC+5:30", 5*3600+1800)
	at := time.Date(2024, 2, 29, 23, 59, 59, 999999999, loc)
	for i, a := range actions {
		ev := testEvent(9, a)
		ev.At = at.Add(time.Duration(i) * time.Nanosecond)
		if _, err := s.Ingest(ctx, delivery("ts-"+a), &ev); err != nil {
			t.Fatal(err)
		}
	}
	j, _, err := s.Job(ctx, 9)
	if err != nil {
		t.Fatal(err)
	}
	for i, got := range []time.Time{j.WaitingAt, j.QueuedAt, j.InProgressAt, j.CompletedAt} {
		want := at.Add(time.Duration(i) * time.Nanosecond)
		if !got.Equal(want) || got.UnixNano() != want.UnixNano() || got.Location() != time.UTC {
			t.Errorf("%s: got %v, want %v in UTC", actions[i], got, want)
		}
	}
	d := Decision{At: at, Pool: "p", Action: "create", Count: 3, Reason: "2 queued"}
	if err := s.AddDecision(ctx, d); err != nil {
		t.Fatal(err)
	}
	ds, err := s.Decisions(ctx, 1)
	if err != nil || len(ds) != 1 || !ds[0].At.Equal(at) || ds[0].At.Location() != time.UTC {
		t.Fatalf("decision %+v %v", ds, err)
	}
	d.At = ds[0].At
	if ds[0] != d {
		t.Fatalf("decision %+v, want %+v", ds[0], d)
	}
}

func TestJobsAndPool(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{}, testHooks{})
	for id := int64(1); id <= 5; id++ {
		ev := testEvent(id, JobQueued)
		if _, err := s.Ingest(ctx, delivery(fmt.Sprint("q", id)), &ev); err != nil {
			t.Fatal(err)
		}
	}
	ev := testEvent(2, JobCompleted)
	if _, err := s.Ingest(ctx, delivery("c2"), &ev); err != nil {
		t.Fatal(err)
	}
	if err := s.SetJobPool(ctx, 3, "linux"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetJobPool(ctx, 4, "linux"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetJobPool(ctx, 404, "linux"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetJobPool on an unknown job: %v, want ErrNotFound", err)
	}
	// A later transition keeps the pool.
	ev = testEvent(4, JobInProgress)
	if res, err := s.Ingest(ctx, delivery("ip4"), &ev); err != nil || res.Job.Pool != "linux" {
		t.Fatalf("in_progress on a matched job: %+v %v", res, err)
	}
	ids := func(f JobFilter) []int64 {
		js, err := s.Jobs(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, j := range js {
			out = append(out, j.ID)
		}
		return out
	}
	for _, tt := range []struct {
		f    JobFilter
		want []int64
	}{
		{JobFilter{}, []int64{1, 2, 3, 4, 5}},
		{JobFilter{Status: JobQueued}, []int64{1, 3, 5}},
		{JobFilter{Status: JobQueued, Limit: 2}, []int64{1, 3}},
		{JobFilter{Pool: "linux"}, []int64{3, 4}},
		{JobFilter{Pool: "linux", Status: JobQueued}, []int64{3}},
		{JobFilter{Status: JobCompleted}, []int64{2}},
		{JobFilter{Statuses: []string{JobQueued, JobInProgress}}, []int64{1, 3, 4, 5}},
		{JobFilter{Status: JobCompleted, Statuses: []string{JobInProgress}}, []int64{2, 4}},
		{JobFilter{Runner: "rs-ip"}, []int64{4}},
		{JobFilter{Runner: "rs-done"}, []int64{2}},
		{JobFilter{Runner: "rs-done", Status: JobInProgress}, nil},
		{JobFilter{Runner: "nobody"}, nil},
	} {
		if got := ids(tt.f); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Jobs(%+v) = %v, want %v", tt.f, got, tt.want)
		}
	}
	if _, ok, err := s.Job(ctx, 404); ok || err != nil {
		t.Fatalf("Job(404) = %v, %v", ok, err)
	}
}

func TestGroupCommitBatches(t *testing.T) {
	ctx := context.Background()
	st := newStall()
	s, _ := openTest(t, Options{MaxBatch: 64}, testHooks{beforeBatch: st.hook})
	first := stallWriter(t, s, st)

	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := testEvent(int64(100+i), JobQueued)
			guid := fmt.Sprint("batch-", i)
			if _, err := s.Ingest(ctx, delivery(guid), &ev); err != nil {
				errs <- err
				return
			}
			// Visible as soon as the call returns.
			if ok, err := s.HasDelivery(ctx, guid); err != nil || !ok {
				errs <- fmt.Errorf("%s not visible after Ingest returned (%v)", guid, err)
			}
			if j, ok, err := s.Job(ctx, int64(100+i)); err != nil || !ok || j.Status != JobQueued {
				errs <- fmt.Errorf("job %d not visible after Ingest returned (%v)", 100+i, err)
			}
		}()
	}
	waitQueued(t, s, n)
	st.release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := st.batchSizes(); !reflect.DeepEqual(got, []int{1, n}) {
		t.Fatalf("batch sizes %v, want [1 %d]", got, n)
	}
	if stats := s.Stats(); stats.Commits != 2 || stats.Writes != n+1 || stats.Failed != 0 {
		t.Fatalf("stats %+v, want 2 commits for %d writes", stats, n+1)
	}
}

func TestGroupCommitMaxBatch(t *testing.T) {
	ctx := context.Background()
	st := newStall()
	s, _ := openTest(t, Options{MaxBatch: 8}, testHooks{beforeBatch: st.hook})
	first := stallWriter(t, s, st)
	const n = 8 // fills the channel (capacity MaxBatch)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Ingest(ctx, delivery(fmt.Sprint("mb-", i)), nil); err != nil {
				t.Error(err)
			}
		}()
	}
	waitQueued(t, s, n)
	// Two more that wait to get into the channel.
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Ingest(ctx, delivery(fmt.Sprint("late-", i)), nil); err != nil {
				t.Error(err)
			}
		}()
	}
	st.release()
	<-first
	wg.Wait()
	for _, size := range st.batchSizes() {
		if size > 8 {
			t.Fatalf("batch of %d with MaxBatch 8: %v", size, st.batchSizes())
		}
	}
	if c, _ := s.CountDeliveries(ctx); c != n+3 {
		t.Fatalf("%d deliveries, want %d", c, n+3)
	}
}

func TestGroupCommitConcurrent(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{}, testHooks{})
	const workers, each = 64, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := int64(w*each + i + 1)
				guid := fmt.Sprintf("c-%d", id)
				ev := testEvent(id, JobQueued)
				if _, err := s.Ingest(ctx, delivery(guid), &ev); err != nil {
					errs <- err
					return
				}
				if ok, err := s.HasDelivery(ctx, guid); err != nil || !ok {
					errs <- fmt.Errorf("%s not visible after Ingest returned (%v)", guid, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	stats := s.Stats()
	t.Logf("%d writes in %d commits", stats.Writes, stats.Commits)
	if stats.Writes != workers*each || stats.Commits >= stats.Writes {
		t.Fatalf("stats %+v: want %d writes sharing fewer commits", stats, workers*each)
	}
	if n, _ := s.CountDeliveries(ctx); n != workers*each {
		t.Fatalf("%d deliveries, want %d", n, workers*each)
	}
}

func TestFailingWriteDoesNotFailBatch(t *testing.T) {
	ctx := context.Background()
	st := newStall()
	errBoom := errors.New("boom")
	s, _ := openTest(t, Options{}, testHooks{
		beforeBatch: st.hook,
		failWrite: func(key string) error {
			if strings.HasPrefix(key, "bad") {
				return errBoom
			}
			return nil
		},
	})
	first := stallWriter(t, s, st)

	const n = 20
	results := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			guid := fmt.Sprint("good-", i)
			if i%5 == 2 {
				guid = fmt.Sprint("bad-", i)
			}
			ev := testEvent(int64(500+i), JobQueued)
			_, results[i] = s.Ingest(ctx, delivery(guid), &ev)
		}()
	}
	waitQueued(t, s, n)
	st.release()
	<-first
	wg.Wait()
	if got := st.batchSizes(); !reflect.DeepEqual(got, []int{1, n}) {
		t.Fatalf("batch sizes %v, want [1 %d]", got, n)
	}
	for i, err := range results {
		bad := i%5 == 2
		switch {
		case bad && !errors.Is(err, errBoom):
			t.Errorf("write %d: %v, want boom", i, err)
		case !bad && err != nil:
			t.Errorf("write %d failed with its batch-mate: %v", i, err)
		}
		// The failed write's delivery, transition and job were rolled back.
		_, ok, _ := s.Job(ctx, int64(500+i))
		tr, _ := s.JobTransitions(ctx, int64(500+i))
		if ok == bad || (tr == 1) == bad {
			t.Errorf("write %d (bad=%v): job stored %v, transitions %d", i, bad, ok, tr)
		}
	}
	if c, _ := s.CountDeliveries(ctx); c != 1+n-4 {
		t.Fatalf("%d deliveries, want %d", c, 1+n-4)
	}
	if stats := s.Stats(); stats.Commits != 2 || stats.Failed != 4 {
		t.Fatalf("stats %+v", stats)
	}
}

func TestCanceledCallerIsSkipped(t *testing.T) {
	st := newStall()
	s, _ := openTest(t, Options{}, testHooks{beforeBatch: st.hook})
	first := stallWriter(t, s, st)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := s.Ingest(ctx, delivery("impatient"), nil)
		errc <- err
	}()
	waitQueued(t, s, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled caller got %v", err)
	}
	st.release()
	<-first
	// The writer had not reached it, so it skipped it. (Had it started, the
	// write would have landed: callers cannot tell, and need not.)
	if _, err := s.Ingest(context.Background(), delivery("after"), nil); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.HasDelivery(context.Background(), "impatient"); ok {
		t.Fatal("a request canceled before the writer reached it was written")
	}
	// A context already done never gets in.
	if _, err := s.Ingest(ctx, delivery("dead"), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("done context: %v", err)
	}
}

func TestCloseDrainsPendingWrites(t *testing.T) {
	ctx := context.Background()
	st := newStall()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := open(ctx, path, Options{}, testHooks{beforeBatch: st.hook})
	if err != nil {
		t.Fatal(err)
	}
	first := stallWriter(t, s, st)
	const n = 30
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Ingest(ctx, delivery(fmt.Sprint("pending-", i)), nil)
			errs <- err
		}()
	}
	waitQueued(t, s, n)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	for !s.closed() {
		runtime.Gosched()
	}
	st.release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	<-first
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a write queued before Close failed: %v", err)
		}
	}
	// After Close: writes and reads say ErrClosed; Close again is fine.
	if _, err := s.Ingest(ctx, delivery("late"), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ingest after Close: %v", err)
	}
	if _, err := s.CountDeliveries(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if c, _ := s2.CountDeliveries(ctx); c != n+1 {
		t.Fatalf("%d deliveries after reopen, want %d", c, n+1)
	}
}

func TestReopenWithoutClose(t *testing.T) {
	// Drop the handle without Close (as a crash would), open the file
	// again: everything acknowledged is there. crash_test.go does the same
	// with a real SIGKILL.
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s1, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s1.Close() })
	for i := range 50 {
		ev := testEvent(int64(i+1), actions[i%4])
		if _, err := s1.Ingest(ctx, delivery(fmt.Sprint("d-", i)), &ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s1.PutRunner(ctx, Runner{Name: "r1", Pool: "p", State: "idle"}); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if c, _ := s2.CountDeliveries(ctx); c != 50 {
		t.Fatalf("%d deliveries, want 50", c)
	}
	for i := range 50 {
		j, ok, err := s2.Job(ctx, int64(i+1))
		if err != nil || !ok || j.Status != actions[i%4] {
			t.Fatalf("job %d: %+v %v %v", i+1, j, ok, err)
		}
	}
	if rs, _ := s2.Runners(ctx, ""); len(rs) != 1 {
		t.Fatalf("runners %+v", rs)
	}
}

func TestRunners(t *testing.T) {
	ctx := context.Background()
	clock := clocktest.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	s, _ := openTest(t, Options{Clock: clock.Now}, testHooks{})
	t0 := clock.Now()

	r := Runner{Name: "rs-linux-1", Pool: "linux", Scope: "org/acme", Provisioner: "local", InstanceID: "i-1", State: "starting"}
	if err := s.PutRunner(ctx, r); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	t1 := clock.Now()
	r.State, r.GitHubID = "idle", 31
	if err := s.PutRunner(ctx, r); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	t2 := clock.Now()
	r.LastError = "nothing really"
	if err := s.PutRunner(ctx, r); err != nil { // same state: no new stamp
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	t3 := clock.Now()
	r.State, r.JobID = "busy", 77
	if err := s.PutRunner(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRunner(ctx, Runner{Name: "rs-mac-1", Pool: "mac", State: "starting"}); err != nil {
		t.Fatal(err)
	}

	rs, err := s.Runners(ctx, "linux")
	if err != nil || len(rs) != 1 {
		t.Fatalf("%+v %v", rs, err)
	}
	want := r
	want.CreatedAt, want.UpdatedAt = t0, t3
	want.StateSince = map[string]time.Time{"starting": t0, "idle": t1, "busy": t3}
	if !reflect.DeepEqual(rs[0], want) {
		t.Fatalf("runner\n got %+v\nwant %+v", rs[0], want)
	}
	_ = t2

	all, err := s.Runners(ctx, "")
	if err != nil || len(all) != 2 || all[0].Name != "rs-linux-1" || all[1].Name != "rs-mac-1" {
		t.Fatalf("all runners %+v %v", all, err)
	}
	if err := s.PutRunner(ctx, Runner{}); err == nil {
		t.Fatal("runner without a name accepted")
	}
}

func TestDecisionsBounded(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{}, testHooks{decisionCap: 5})
	for i := range 12 {
		if err := s.AddDecision(ctx, Decision{Pool: "p", Action: "create", Count: i, Reason: "queued"}); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := s.Decisions(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var counts []int
	for _, d := range ds {
		counts = append(counts, d.Count)
	}
	if want := []int{11, 10, 9, 8, 7}; !reflect.DeepEqual(counts, want) {
		t.Fatalf("kept %v, want %v", counts, want)
	}
	if ds, _ := s.Decisions(ctx, 2); len(ds) != 2 || ds[0].Count != 11 {
		t.Fatalf("Decisions(2) = %+v", ds)
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	clock := clocktest.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	// A small chunk so Prune has to loop.
	s, _ := openTest(t, Options{Clock: clock.Now, Retention: 24 * time.Hour}, testHooks{pruneChunk: 2})
	old := clock.Now()

	ingest := func(guid string, id int64, action string, at time.Time) {
		t.Helper()
		ev := testEvent(id, action)
		ev.At = at
		d := delivery(guid)
		d.ReceivedAt = at
		if _, err := s.Ingest(ctx, d, &ev); err != nil {
			t.Fatal(err)
		}
	}
	// Old: five jobs completed, one still queued (kept: not completed).
	for id := int64(1); id <= 5; id++ {
		ingest(fmt.Sprint("oq", id), id, JobQueued, old)
		ingest(fmt.Sprint("oc", id), id, JobCompleted, old)
	}
	ingest("oq6", 6, JobQueued, old)
	if err := s.AddDecision(ctx, Decision{At: old, Pool: "p", Action: "create", Count: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRunner(ctx, Runner{Name: "gone", State: "removed"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRunner(ctx, Runner{Name: "idle-old", State: "idle"}); err != nil {
		t.Fatal(err)
	}

	clock.Advance(47 * time.Hour)
	recent := clock.Now()
	// Recent: a job queued long ago but completed within the retention.
	ingest("rc1", 1001, JobQueued, old)
	ingest("rc2", 1001, JobCompleted, recent)
	if err := s.AddDecision(ctx, Decision{At: recent, Pool: "p", Action: "drain", Count: 1}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour) // now: old is 49h ago, recent 2h ago

	n, err := s.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 5 jobs + 10 transitions + 11 old deliveries + rc1 (received long ago)
	// + 1 decision + 1 removed runner.
	if want := 5 + 10 + 12 + 1 + 1; n != want {
		t.Fatalf("pruned %d rows, want %d", n, want)
	}
	jobs, _ := s.Jobs(ctx, JobFilter{})
	if len(jobs) != 2 || jobs[0].ID != 6 || jobs[1].ID != 1001 {
		t.Fatalf("jobs left %+v", jobs)
	}
	for id := int64(1); id <= 5; id++ {
		if tr, _ := s.JobTransitions(ctx, id); tr != 0 {
			t.Fatalf("job %d: %d transitions left", id, tr)
		}
	}
	if tr, _ := s.JobTransitions(ctx, 6); tr != 1 {
		t.Fatalf("job 6 lost its transition")
	}
	if c, _ := s.CountDeliveries(ctx); c != 1 {
		t.Fatalf("%d deliveries left, want 1 (rc2)", c)
	}
	if ds, _ := s.Decisions(ctx, 0); len(ds) != 1 || ds[0].Action != "drain" {
		t.Fatalf("decisions left %+v", ds)
	}
	if rs, _ := s.Runners(ctx, ""); len(rs) != 1 || rs[0].Name != "idle-old" {
		t.Fatalf("runners left %+v", rs)
	}
	if n, err := s.Prune(ctx); n != 0 || err != nil {
		t.Fatalf("second prune: %d, %v", n, err)
	}
}

func TestRunRetention(t *testing.T) {
	clock := clocktest.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	s, _ := openTest(t, Options{Clock: clock.Now, Retention: time.Hour}, testHooks{})
	for i := range 3 {
		if _, err := s.Ingest(context.Background(), delivery(fmt.Sprint("r", i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(2 * time.Hour)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.RunRetention(ctx, time.Hour) }()
	// It prunes at once.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := s.CountDeliveries(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries still there", n)
		}
		runtime.Gosched()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunRetention after cancel: %v", err)
	}

	// It also ends when the store closes.
	go func() { done <- s.RunRetention(context.Background(), time.Hour) }()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("RunRetention after Close: %v", err)
	}
	if err := s.RunRetention(context.Background(), 0); err == nil {
		t.Fatal("zero interval accepted")
	}
}

func TestCursors(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.LoadCursor(ctx, "redeliverer"); ok || err != nil {
		t.Fatalf("empty store: ok %v, err %v", ok, err)
	}
	for _, v := range []string{`{"id":1}`, `{"id":2}`} {
		if err := s.SaveCursor(ctx, "redeliverer", v); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// It survives a restart.
	s, err = Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, ok, err := s.LoadCursor(ctx, "redeliverer"); !ok || err != nil || v != `{"id":2}` {
		t.Fatalf("after reopening: %q %v %v", v, ok, err)
	}
}
