//go:build linux

package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
)

// Tests of the state file's writes: shared by concurrent callers, made
// outside mu, and failing the Creates they hold.

// hookWrites makes p write its state file through write.
func hookWrites(p *Provisioner, write func(path string, data []byte) error) {
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	p.writeFile = write
}

// gate blocks state file writes until opened; it opens at the end of the
// test at the latest, so that no goroutine stays blocked.
type gate struct {
	entered chan struct{} // receives once per write that reaches the gate
	release chan struct{}
	once    sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{entered: make(chan struct{}, 1), release: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// pass blocks until the gate opens, after telling the test it got there.
func (g *gate) pass() {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.release
}

// await waits for a write to reach the gate.
func (g *gate) await(t *testing.T) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no state file write reached the gate")
	}
}

// readState reads p's state file.
func readState(t *testing.T, p *Provisioner) map[string]record {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.cfg.workDir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	var body stateFileBody
	if err := json.Unmarshal(b, &body); err != nil || body.Version != 1 {
		t.Fatalf("state file (version %d): %v\n%s", body.Version, err, b)
	}
	out := map[string]record{}
	for _, r := range body.Instances {
		out[r.ID] = r
	}
	return out
}

// addRecorded adds an instance the state file is to hold, as a started
// Create does, and returns the generation to persist.
func addRecorded(p *Provisioner, name string) uint64 {
	id := "local-" + name
	p.mu.Lock()
	defer p.mu.Unlock()
	p.entries[id] = &entry{
		rec: record{ID: id, Pool: "pool-a", RunnerName: name, DaemonID: p.daemonID,
			Dir: filepath.Join(p.cfg.workDir, instancesDir, name), State: provisioner.StateRunning},
		recorded: true,
		exited:   make(chan struct{}),
	}
	return p.changedLocked()
}

// persistBehindAWrite persists one change whose write is held at g, then n
// more changes made while it is held, and returns the errors of the n
// callers and of the first.
func persistBehindAWrite(t *testing.T, p *Provisioner, g *gate, n int) (rest []error, first error) {
	t.Helper()
	firstErr := make(chan error, 1)
	go func() { firstErr <- p.persist(addRecorded(p, "r-first")) }()
	g.await(t)
	var changed sync.WaitGroup
	changed.Add(n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			need := addRecorded(p, fmt.Sprintf("r-%02d", i))
			changed.Done()
			errs <- p.persist(need)
		}()
	}
	// Every change is made before the held write ends, so the next write's
	// snapshot holds them all, whatever order the callers queue in.
	changed.Wait()
	g.open()
	first = <-firstErr
	for range n {
		rest = append(rest, <-errs)
	}
	return rest, first
}

func TestConcurrentPersistsShareWrites(t *testing.T) {
	p := newProvisioner(t, nil, testEnv(t, "lp", newFakeApp(t), newLogs()))
	g := newGate(t)
	var writes atomic.Int32
	hookWrites(p, func(path string, data []byte) error {
		if writes.Add(1) == 1 {
			g.pass()
		}
		return writeFileAtomic(path, data)
	})
	const n = 32
	rest, firstErr := persistBehindAWrite(t, p, g, n)
	if firstErr != nil {
		t.Fatalf("first persist: %v", firstErr)
	}
	for i, err := range rest {
		if err != nil {
			t.Errorf("persist %d: %v", i, err)
		}
	}
	if w := writes.Load(); w != 2 {
		t.Errorf("%d state file writes for %d concurrent persists, want 2 (the held one, then one for all the others)", w, n+1)
	}
	recs := readState(t, p)
	if len(recs) != n+1 {
		t.Errorf("state file holds %d records, want %d", len(recs), n+1)
	}
	for i := range n {
		if r, ok := recs[fmt.Sprintf("local-r-%02d", i)]; !ok || r.State != provisioner.StateRunning {
			t.Errorf("record %d: %+v, %v", i, r, ok)
		}
	}
	// Nothing changed since: no write.
	p.mu.Lock()
	need := p.gen
	p.mu.Unlock()
	if err := p.persist(need); err != nil || writes.Load() != 2 {
		t.Errorf("persist with nothing new: %v, %d writes", err, writes.Load())
	}
}

func TestFailedWriteFailsEveryCallerItHeld(t *testing.T) {
	p := newProvisioner(t, nil, testEnv(t, "lp", newFakeApp(t), newLogs()))
	g := newGate(t)
	errDisk := errors.New("write state file: disk full")
	var writes atomic.Int32
	hookWrites(p, func(path string, data []byte) error {
		switch writes.Add(1) {
		case 1:
			g.pass()
		case 2:
			return errDisk
		}
		return writeFileAtomic(path, data)
	})
	const n = 8
	rest, firstErr := persistBehindAWrite(t, p, g, n)
	if firstErr != nil {
		t.Fatalf("first persist: %v", firstErr)
	}
	for i, err := range rest {
		if !errors.Is(err, errDisk) {
			t.Errorf("persist %d: %v, want the failed write's error", i, err)
		}
	}
	if w := writes.Load(); w != 2 {
		t.Errorf("%d writes, want 2: the callers of a failed write share its error", w)
	}
	if recs := readState(t, p); len(recs) != 1 {
		t.Errorf("state file holds %d records after the failed write, want the first only", len(recs))
	}
	// The next change writes again, and its write holds the earlier ones.
	if err := p.persist(addRecorded(p, "r-next")); err != nil {
		t.Fatalf("persist after a failed write: %v", err)
	}
	if recs := readState(t, p); len(recs) != n+2 {
		t.Errorf("state file holds %d records, want %d", len(recs), n+2)
	}
}

func TestListDoesNotWaitForTheStateFileWrite(t *testing.T) {
	app := newFakeApp(t)
	app.publish("actions-runner-test-1.tar.gz", scriptApp(t, idleScript))
	p := newProvisioner(t, nil, testEnv(t, "lp", app, newLogs()))
	ctx := ctxT(t)
	g := newGate(t)
	hookWrites(p, func(path string, data []byte) error {
		g.pass()
		return writeFileAtomic(path, data)
	})
	created := make(chan error, 1)
	go func() {
		_, err := p.Create(ctx, jitSpec("r-slow-disk", "j"))
		created <- err
	}()
	g.await(t)

	type listed struct {
		insts []provisioner.Instance
		err   error
	}
	done := make(chan listed, 1)
	go func() {
		insts, err := p.List(ctx)
		done <- listed{insts, err}
	}()
	select {
	case l := <-done:
		// Not running before the state file holds it.
		if l.err != nil || len(l.insts) != 1 || l.insts[0].State != provisioner.StatePending {
			t.Errorf("List during the write: %+v, %v; want the instance pending", l.insts, l.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("List waits for the state file write")
	}
	select {
	case err := <-created:
		t.Fatalf("Create returned (%v) before the state file held its instance", err)
	default:
	}
	if err := p.Delete(ctx, "local-r-slow-disk"); err == nil {
		t.Error("Delete took on an instance whose Create has not returned")
	}

	g.open()
	if err := <-created; err != nil {
		t.Fatalf("Create: %v", err)
	}
	if in := get(t, p, "local-r-slow-disk"); in.State != provisioner.StateRunning {
		t.Errorf("after Create: %s", in.State)
	}
	pid, start := pidOf(t, p, "local-r-slow-disk")
	if r := readState(t, p)["local-r-slow-disk"]; r.PID != pid || r.StartTime != start || r.State != provisioner.StateRunning {
		t.Errorf("state file record %+v; want running, pid %d", r, pid)
	}
}

func TestFailedStateFileWriteFailsTheCreate(t *testing.T) {
	app := newFakeApp(t)
	app.publish("actions-runner-test-1.tar.gz", scriptApp(t, idleScript))
	p := newProvisioner(t, nil, testEnv(t, "lp", app, newLogs()))
	ctx := ctxT(t)
	if _, err := p.Create(ctx, jitSpec("r-before", "j")); err != nil {
		t.Fatal(err)
	}
	var failing atomic.Bool
	failing.Store(true)
	attempted := make(chan []byte, 1) // the first failed write's content
	hookWrites(p, func(path string, data []byte) error {
		if failing.Load() {
			select {
			case attempted <- data:
			default:
			}
			return errors.New("write state file: no space left on device")
		}
		return writeFileAtomic(path, data)
	})
	_, err := p.Create(ctx, jitSpec("r-no-disk", "j"))
	if err == nil || !provisioner.IsNotCreated(err) {
		t.Fatalf("Create with a failing state file: %v; want a not-created error", err)
	}
	var body stateFileBody
	if err := json.Unmarshal(<-attempted, &body); err != nil {
		t.Fatal(err)
	}
	var rec record
	for _, r := range body.Instances {
		if r.ID == "local-r-no-disk" {
			rec = r
		}
	}
	if rec.PID <= 1 || rec.State != provisioner.StateRunning {
		t.Fatalf("the failed write did not hold the started runner: %+v", body.Instances)
	}
	if processAlive(rec.PID, rec.StartTime) || groupAlive(rec.PID) {
		t.Errorf("the runner of a failed Create (pid %d) is still alive", rec.PID)
	}
	if _, err := p.Get(ctx, rec.ID); !errors.Is(err, provisioner.ErrNotFound) {
		t.Errorf("Get after the failed Create: %v", err)
	}
	if insts, err := p.List(ctx); err != nil || len(insts) != 1 || insts[0].ID != "local-r-before" || insts[0].State != provisioner.StateRunning {
		t.Errorf("List after the failed Create: %+v, %v", insts, err)
	}
	if _, err := os.Stat(rec.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed Create left its directory: %v", err)
	}
	if recs := readState(t, p); len(recs) != 1 || recs["local-r-before"].State != provisioner.StateRunning {
		t.Errorf("state file after the failed Create: %+v", recs)
	}

	// Once the file can be written again, so can the same runner.
	failing.Store(false)
	if _, err := p.Create(ctx, jitSpec("r-no-disk", "j")); err != nil {
		t.Fatalf("Create once the state file can be written: %v", err)
	}
	if recs := readState(t, p); len(recs) != 2 || recs["local-r-no-disk"].State != provisioner.StateRunning {
		t.Errorf("state file: %+v", recs)
	}
}

func TestCreateBurstSharesStateFileWrites(t *testing.T) {
	app := newFakeApp(t)
	app.publish("actions-runner-test-1.tar.gz", scriptApp(t, idleScript))
	const n = 16
	p := newProvisioner(t, map[string]any{"max_instances": n}, testEnv(t, "lp", app, newLogs()))
	ctx := ctxT(t)
	g := newGate(t)
	var writes atomic.Int32
	hookWrites(p, func(path string, data []byte) error {
		if writes.Add(1) == 1 {
			g.pass()
		}
		return writeFileAtomic(path, data)
	})
	p.mu.Lock()
	base := p.gen
	p.mu.Unlock()
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := p.Create(ctx, jitSpec(fmt.Sprintf("r-burst-%02d", i), "j"))
			errs <- err
		}()
	}
	// Hold the first write until every runner has started: the second write
	// then serves all the other Creates.
	g.await(t)
	waitFor(t, 30*time.Second, "every runner to start", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.gen == base+n
	})
	g.open()
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("Create: %v", err)
		}
	}
	if w := writes.Load(); w != 2 {
		t.Errorf("%d state file writes for %d concurrent Creates, want 2", w, n)
	}
	recs := readState(t, p)
	for i := range n {
		id := fmt.Sprintf("local-r-burst-%02d", i)
		pid, _ := pidOf(t, p, id)
		if r := recs[id]; r.State != provisioner.StateRunning || r.PID != pid {
			t.Errorf("state file record of %s: %+v", id, r)
		}
	}
}

// BenchmarkPersistParallel measures state file writes under concurrent
// changes; writes/op below 1 is group commit at work.
func BenchmarkPersistParallel(b *testing.B) {
	p, err := New(nil, provisioner.Env{Name: "lp", DaemonID: "daemon-bench", StateDir: b.TempDir(), Downloads: &fakeApp{}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	for i := range 36 {
		addRecorded(p, fmt.Sprintf("r-%02d", i))
	}
	var writes atomic.Int64
	hookWrites(p, func(path string, data []byte) error {
		writes.Add(1)
		return writeFileAtomic(path, data)
	})
	b.SetParallelism(16) // callers well beyond the CPUs, as in a burst of Creates
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.mu.Lock()
			need := p.changedLocked()
			p.mu.Unlock()
			if err := p.persist(need); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(writes.Load())/float64(b.N), "writes/op")
}
