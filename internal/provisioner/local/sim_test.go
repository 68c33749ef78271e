//go:build linux

package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/ghapi"
	"github.com/runnerscaler/runnerscaler/internal/ghsim"
	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
	"github.com/runnerscaler/runnerscaler/internal/provisioner"
	"github.com/runnerscaler/runnerscaler/internal/scaler"
	"github.com/runnerscaler/runnerscaler/internal/secret"
)

// End-to-end tests against the GitHub simulator over loopback: the runner
// application is the simulator's tarball, whose run.sh and config.sh exec
// the scaler binary TestMain built as `scaler sim-runner`.

const simPAT = "ghp_localprovisionertest"

var octoOrg = world.Scope{Kind: world.Org, Name: "octo-org"}

type simEnv struct {
	sim       *ghsim.Server
	url       string
	gh        *ghapi.Client
	downloads atomic.Int64 // GET /_downloads/ requests
}

func startSim(t *testing.T) *simEnv {
	t.Helper()
	sim, err := ghsim.New(ghsim.Options{PAT: simPAT, RunnerCommand: scalerBin})
	if err != nil {
		t.Fatal(err)
	}
	s := &simEnv{sim: sim}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.url = "http://" + ln.Addr().String() + "/"
	sim.SetURL(s.url)
	h := sim.Handler()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_downloads/") {
			s.downloads.Add(1)
		}
		h.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = sim.Close()
		_ = srv.Close()
	})
	if s.gh, err = ghapi.New(ghapi.Options{APIURL: s.url, Token: simPAT}); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *simEnv) runnerDownloads() provisioner.RunnerDownloads {
	return scaler.RunnerDownloads(s.gh, ghapi.Org("octo-org"))
}

// jit registers a JIT runner in the simulator and returns its spec.
func (s *simEnv) jit(t *testing.T, name, label string) provisioner.Spec {
	t.Helper()
	cfg, err := s.gh.GenerateJITConfig(context.Background(), ghapi.Org("octo-org"),
		ghapi.JITRequest{Name: name, RunnerGroupID: world.DefaultGroupID, Labels: []string{label}, WorkFolder: "_work"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Encoded == "" {
		t.Fatal("empty JIT config")
	}
	return provisioner.Spec{
		RunnerName: name, Pool: "pool-sim", Labels: []string{label}, RunnerGroup: "Default",
		ScopeURL: "https://github.com/octo-org", Registration: provisioner.Registration{JITConfig: cfg.Encoded},
	}
}

// runner returns the simulator's runner by name.
func (s *simEnv) runner(name string) (world.Runner, bool) {
	for _, r := range s.sim.World().Runners(octoOrg) {
		if r.Name == name {
			return r, true
		}
	}
	return world.Runner{}, false
}

func (s *simEnv) online(name string) func() bool {
	return func() bool {
		r, ok := s.runner(name)
		return ok && r.Status == world.StatusOnline
	}
}

func TestEndToEndJIT(t *testing.T) {
	s := startSim(t)
	l := newLogs()
	p := newProvisioner(t, map[string]any{"grace_period": "5s"}, testEnv(t, "lp", s.runnerDownloads(), l))
	ctx := ctxT(t)
	const n = 5
	const label = "local-e2e"
	specs := make([]provisioner.Spec, n)
	for i := range specs {
		specs[i] = s.jit(t, fmt.Sprintf("local-e2e-%d", i), label)
	}
	// All five at once: one download between them.
	var wg sync.WaitGroup
	insts := make([]provisioner.Instance, n)
	errs := make([]error, n)
	for i := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			insts[i], errs[i] = p.Create(ctx, specs[i])
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("create %s: %v", specs[i].RunnerName, err)
		}
		if insts[i].State != provisioner.StateRunning || insts[i].ID != "local-"+specs[i].RunnerName {
			t.Errorf("created %+v", insts[i])
		}
	}
	if got := s.downloads.Load(); got != 1 {
		t.Errorf("%d downloads of the runner application, want exactly 1", got)
	}
	for _, sp := range specs {
		waitFor(t, 15*time.Second, sp.RunnerName+" online in the simulator", s.online(sp.RunnerName))
	}
	// No secret in any process's arguments; no daemon environment.
	for i, sp := range specs {
		pid, _ := pidOf(t, p, insts[i].ID)
		if assertArgvClean(t, pid, sp.Registration.JITConfig.Reveal()) == 0 {
			t.Errorf("%s: no process in its group", sp.RunnerName)
		}
		for _, m := range groupMembers(pid) {
			if _, leaked := envKeys(m)[daemonSecretEnv]; leaked {
				t.Errorf("%s: the daemon's environment reached process %d", sp.RunnerName, m)
			}
		}
	}
	// Five jobs: each runner takes one, runs it and exits; the simulator
	// removes the ephemeral runners.
	ids, err := s.sim.World().CreateJobs(world.JobInput{Repo: "octo-org/app", Labels: []string{label}, Duration: 200 * time.Millisecond, Count: n})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range insts {
		waitFor(t, 20*time.Second, in.ID+" to stop after its job", stateIs(p, in.ID, provisioner.StateStopped))
	}
	for _, id := range ids {
		j, _, ok := s.sim.World().Job(id)
		if !ok || j.Status != world.JobCompleted || !strings.HasPrefix(j.RunnerName, "local-e2e-") {
			t.Errorf("job %d: %+v", id, j)
		}
	}
	for _, sp := range specs {
		if _, ok := s.runner(sp.RunnerName); ok {
			t.Errorf("%s still registered in the simulator after its job", sp.RunnerName)
		}
	}
	list, err := p.List(ctx)
	if err != nil || len(list) != n {
		t.Fatalf("List: %d instances, %v", len(list), err)
	}
	for _, in := range list {
		if in.State != provisioner.StateStopped || in.LastError != "" || in.Pool != "pool-sim" {
			t.Errorf("listed %+v", in)
		}
		if err := p.Delete(ctx, in.ID); err != nil {
			t.Error(err)
		}
	}
	for _, sp := range specs {
		sec := sp.Registration.JITConfig.Reveal()
		l.assertNoSecret(t, sec)
		b, _ := os.ReadFile(filepath.Join(p.cfg.workDir, stateFile))
		if strings.Contains(string(b), sec) {
			t.Error("the state file holds a JIT config")
		}
	}
}

func TestDeleteOfAnIdleSimRunnerKillsItsGroup(t *testing.T) {
	s := startSim(t)
	l := newLogs()
	p := newProvisioner(t, map[string]any{"grace_period": "5s"}, testEnv(t, "lp", s.runnerDownloads(), l))
	ctx := ctxT(t)
	spec := s.jit(t, "local-idle", "no-job-has-this-label")
	in, err := p.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the runner online", s.online(spec.RunnerName))
	pid, _ := pidOf(t, p, in.ID)
	ms := members(pid)
	if len(ms) == 0 {
		t.Fatal("no process in the runner's group")
	}
	assertArgvClean(t, pid, spec.Registration.JITConfig.Reveal())
	if err := p.Delete(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if processAlive(m.pid, m.start) {
			t.Errorf("process %d survived Delete", m.pid)
		}
	}
	if left := groupMembers(pid); len(left) > 0 {
		t.Errorf("stray processes in the group: %v", left)
	}
	if _, err := os.Stat(filepath.Join(p.cfg.workDir, instancesDir, spec.RunnerName)); !errors.Is(err, os.ErrNotExist) {
		t.Error("directory left behind")
	}
	// SIGTERM took the runner offline in the simulator.
	waitFor(t, 5*time.Second, "the runner offline", func() bool {
		r, ok := s.runner(spec.RunnerName)
		return !ok || r.Status == world.StatusOffline
	})
	l.assertNoSecret(t, spec.Registration.JITConfig.Reveal())
}

func TestTamperedRunnerApplicationIsRefused(t *testing.T) {
	s := startSim(t)
	real, err := s.runnerDownloads().RunnerApplications(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const bad = "0000000000000000000000000000000000000000000000000000000000000bad"
	tampered := make([]provisioner.RunnerApplication, len(real))
	var want string
	for i, a := range real {
		if a.OS == hostOS() && a.Architecture == hostArch() {
			want = a.SHA256
			a.SHA256 = bad
		}
		tampered[i] = a
	}
	l := newLogs()
	p := newProvisioner(t, nil, testEnv(t, "lp", staticDownloads(tampered), l))
	ctx := ctxT(t)
	_, err = p.Create(ctx, s.jit(t, "local-tampered", "x"))
	if err == nil {
		t.Fatal("Create succeeded with a wrong checksum")
	}
	t.Logf("refused: %v", err)
	if !strings.Contains(err.Error(), "expected sha256 "+bad) || !strings.Contains(err.Error(), "got "+want) ||
		!strings.Contains(err.Error(), "removed") {
		t.Errorf("error %q: want both checksums and that the file was removed", err)
	}
	if !provisioner.IsPermanent(err) || !provisioner.IsNotCreated(err) {
		t.Errorf("error %v: want permanent and not-created", err)
	}
	if s.downloads.Load() != 1 {
		t.Errorf("%d downloads, want 1", s.downloads.Load())
	}
	entries, _ := os.ReadDir(p.cfg.cacheDir)
	if len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("cache holds %v after a refused download", names)
	}
	if insts, _ := p.List(ctx); len(insts) != 0 {
		t.Errorf("instances after a refused download: %+v", insts)
	}
	if dirs, _ := os.ReadDir(filepath.Join(p.cfg.workDir, instancesDir)); len(dirs) != 0 {
		t.Errorf("instance directories after a refused download: %v", dirs)
	}
	if !l.has("runner application checksum mismatch") {
		t.Error("no log of the mismatch")
	}
}

type staticDownloads []provisioner.RunnerApplication

func (d staticDownloads) RunnerApplications(context.Context) ([]provisioner.RunnerApplication, error) {
	return d, nil
}

func TestRestartAdoptsASimRunner(t *testing.T) {
	s := startSim(t)
	env := testEnv(t, "lp", s.runnerDownloads(), newLogs())
	p1, err := New(map[string]any{"grace_period": "5s"}, env)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	spec := s.jit(t, "local-restart", "no-job-has-this-label")
	in, err := p1.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the runner online", s.online(spec.RunnerName))
	pid, start := pidOf(t, p1, in.ID)
	if err := p1.Close(); err != nil {
		t.Fatal(err)
	}
	p2 := newProvisioner(t, map[string]any{"grace_period": "5s"}, env)
	list, err := p2.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != in.ID || list[0].State != provisioner.StateRunning {
		t.Fatalf("List after the restart: %+v, %v", list, err)
	}
	if r, _ := s.runner(spec.RunnerName); r.Status != world.StatusOnline {
		t.Errorf("the runner is %s in the simulator across the restart", r.Status)
	}
	ms := members(pid)
	if err := p2.Delete(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if processAlive(pid, start) {
		t.Error("the adopted runner survived Delete")
	}
	for _, m := range ms {
		if processAlive(m.pid, m.start) {
			t.Errorf("process %d survived Delete", m.pid)
		}
	}
}

func TestEndToEndToken(t *testing.T) {
	s := startSim(t)
	l := newLogs()
	p := newProvisioner(t, map[string]any{"grace_period": "5s"}, testEnv(t, "lp", s.runnerDownloads(), l))
	ctx := ctxT(t)
	tok, err := s.gh.CreateRegistrationToken(ctx, ghapi.Org("octo-org"))
	if err != nil {
		t.Fatal(err)
	}
	const label = "local-token"
	spec := provisioner.Spec{
		RunnerName: "local-token-1", Pool: "pool-tok", Labels: []string{label, "extra"}, RunnerGroup: "Default",
		ScopeURL:     "https://github.com/octo-org",
		Registration: provisioner.Registration{Token: tok.Token, Ephemeral: true},
	}
	sec := tok.Token.Reveal()
	in, err := p.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := pidOf(t, p, in.ID)
	// config.sh runs first: watch the group's arguments while it does.
	seen := map[int]bool{}
	waitFor(t, 15*time.Second, "the runner online (or failed)", func() bool {
		for _, m := range groupMembers(pid) {
			if !seen[m] {
				seen[m] = true
			}
			if strings.Contains(procFile(m, "cmdline"), sec) {
				t.Errorf("process %d has the registration token in its arguments", m)
			}
		}
		return s.online(spec.RunnerName)() || get(t, p, in.ID).State == provisioner.StateFailed
	})
	if got := get(t, p, in.ID); got.State == provisioner.StateFailed {
		if b, _ := os.ReadFile(filepath.Join(p.cfg.workDir, instancesDir, spec.RunnerName, logFile)); strings.Contains(string(b), "--url and --token are required") {
			t.Skipf("scaler sim-runner does not read %s yet (cmd/scaler/simrunner.go must call simrunner.ApplyEnvInputs): %s", envToken, got.LastError)
		}
		t.Fatalf("token runner failed: %s", got.LastError)
	}
	r, _ := s.runner(spec.RunnerName)
	if !r.Ephemeral || r.JIT || !strings.Contains(strings.Join(r.LabelNames(), ","), label) {
		t.Errorf("registered runner %+v", r)
	}
	// Once run.sh runs, the token is gone from the environment too.
	for _, m := range groupMembers(pid) {
		if v, ok := envKeys(m)[envToken]; ok || strings.Contains(procFile(m, "environ"), sec) {
			t.Errorf("process %d (%s) still holds the token in its environment (%q)", m, procFile(m, "cmdline"), secret.String(v))
		}
	}
	if _, err := s.sim.World().CreateJobs(world.JobInput{Repo: "octo-org/app", Labels: []string{label}, Duration: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the ephemeral runner to stop after its job", stateIs(p, in.ID, provisioner.StateStopped))
	if _, ok := s.runner(spec.RunnerName); ok {
		t.Error("the ephemeral runner is still registered")
	}
	if err := p.Delete(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	l.assertNoSecret(t, sec)
}
