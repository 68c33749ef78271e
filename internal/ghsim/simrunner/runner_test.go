package simrunner_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/runnerscaler/runnerscaler/internal/ghsim"
	"github.com/runnerscaler/runnerscaler/internal/ghsim/simrunner"
	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
	"github.com/runnerscaler/runnerscaler/internal/secret"
)

var org = world.Scope{Kind: world.Org, Name: "octo-org"}

// simulator serves the default world on loopback; the REST layer is not
// used, so these tests depend only on the runner protocol.
func simulator(t *testing.T) *ghsim.Server {
	t.Helper()
	s, err := ghsim.New(ghsim.Options{RunnerCommand: "/bin/false"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	s.SetURL(ts.URL)
	t.Cleanup(func() {
		_ = s.Close()
		ts.Close()
	})
	return s
}

// logBuffer collects a runner's logs, to check no secret reaches them.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) Sync() error { return nil }

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func options(logs *logBuffer) simrunner.Options {
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logs, zap.DebugLevel)
	return simrunner.Options{Logger: zap.New(core), ReconnectFor: time.Second}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// start runs a runner in the background; wait returns its result.
func start(ctx context.Context, cfg simrunner.Config, opts simrunner.Options) (wait func(t *testing.T) error) {
	done := make(chan error, 1)
	go func() { done <- simrunner.Run(ctx, cfg, opts) }()
	return func(t *testing.T) error {
		t.Helper()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("runner did not stop within 10s")
			return nil
		}
	}
}

func online(s *ghsim.Server, id int64) func() bool {
	return func() bool { r, ok := s.World().RunnerByID(id); return ok && r.Status == world.StatusOnline }
}

func TestEphemeralJITRunnerRunsOneJobAndExits(t *testing.T) {
	s := simulator(t)
	r, enc, err := s.GenerateJITConfig(world.RunnerInput{Scope: org, Name: "jit-1", Labels: []string{"gpu"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := simrunner.DecodeJIT(enc)
	if err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	wait := start(context.Background(), cfg, options(&logs))
	eventually(t, "runner online", online(s, r.ID))
	ids, err := s.World().CreateJobs(world.JobInput{Repo: "octo-org/app", Labels: []string{"self-hosted", "gpu"}, Duration: 50 * time.Millisecond, Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := wait(t); err != nil {
		t.Fatalf("ephemeral runner: %v", err)
	}
	if _, ok := s.World().RunnerByID(r.ID); ok {
		t.Error("the world still lists the ephemeral runner after its job")
	}
	j, _, _ := s.World().Job(ids[0])
	if j.Status != world.JobCompleted || j.Conclusion != "success" || j.RunnerName != "jit-1" {
		t.Errorf("job %+v", j)
	}
	if j2, _, _ := s.World().Job(ids[1]); j2.Status != world.JobQueued {
		t.Errorf("the second job went somewhere: %+v", j2)
	}
	if v := s.World().Violations(); v != (world.Violations{}) {
		t.Errorf("violations %+v", v)
	}
	if strings.Contains(logs.String(), cfg.Token.Reveal()) || strings.Contains(logs.String(), enc) {
		t.Error("a credential reached the logs")
	}

	// The same JIT config cannot start a second runner.
	err = simrunner.Run(context.Background(), cfg, options(&logs))
	if !errors.Is(err, simrunner.ErrUnauthorized) && !errors.Is(err, simrunner.ErrRunnerNotFound) {
		t.Errorf("reusing a JIT config: %v", err)
	}
}

func TestJITConfigUsableOnce(t *testing.T) {
	s := simulator(t)
	r, enc, _ := s.GenerateJITConfig(world.RunnerInput{Scope: org, Name: "once"})
	cfg, _ := simrunner.DecodeJIT(enc)
	ctx, cancel := context.WithCancel(context.Background())
	wait := start(ctx, cfg, options(&logBuffer{}))
	eventually(t, "online", online(s, r.ID))
	err := simrunner.Run(context.Background(), cfg, options(&logBuffer{}))
	if !errors.Is(err, simrunner.ErrUnauthorized) {
		t.Errorf("second runner with the same JIT config: %v, want ErrUnauthorized", err)
	}
	cancel()
	if err := wait(t); err != nil {
		t.Errorf("first runner: %v", err)
	}
}

func TestSIGTERMWhileIdleGoesOfflineWithoutHarm(t *testing.T) {
	s := simulator(t)
	r, enc, _ := s.GenerateJITConfig(world.RunnerInput{Scope: org, Name: "idle"})
	cfg, _ := simrunner.DecodeJIT(enc)
	ctx, cancel := context.WithCancel(context.Background())
	wait := start(ctx, cfg, options(&logBuffer{}))
	eventually(t, "online", online(s, r.ID))
	cancel() // what SIGTERM does through signal.NotifyContext
	if err := wait(t); err != nil {
		t.Fatalf("runner after SIGTERM: %v", err)
	}
	eventually(t, "offline", func() bool { got, ok := s.World().RunnerByID(r.ID); return ok && got.Status == world.StatusOffline })
	if v := s.World().Violations(); v != (world.Violations{}) {
		t.Errorf("violations %+v", v)
	}
}

func TestStoppingABusyRunnerCountsKilledRunner(t *testing.T) {
	s := simulator(t)
	r, enc, _ := s.GenerateJITConfig(world.RunnerInput{Scope: org, Name: "busy"})
	cfg, _ := simrunner.DecodeJIT(enc)
	ctx, cancel := context.WithCancel(context.Background())
	wait := start(ctx, cfg, options(&logBuffer{}))
	eventually(t, "online", online(s, r.ID))
	ids, _ := s.World().CreateJobs(world.JobInput{Repo: "octo-org/app", Labels: []string{"self-hosted"}, Duration: time.Hour})
	eventually(t, "busy", func() bool { got, _ := s.World().RunnerByID(r.ID); return got.Busy })
	cancel()
	if err := wait(t); err != nil {
		t.Fatal(err)
	}
	eventually(t, "job_runner_killed", func() bool { return s.World().Violations().JobRunnerKilled == 1 })
	if j, _, _ := s.World().Job(ids[0]); j.Conclusion != "failure" {
		t.Errorf("job %+v", j)
	}
}

func TestConfigureRunRemove(t *testing.T) {
	s := simulator(t)
	dir := t.TempDir()
	tok, _ := s.RegistrationToken(org)
	var logs logBuffer
	opts := options(&logs)
	reg := simrunner.Registration{
		ServerURL: s.URL(), URL: "https://github.com/octo-org", Token: secret.String(tok), Name: "persistent",
		Labels: []string{"big"}, OS: "linux", Arch: "x64", Work: "_work",
	}
	cfg, err := simrunner.Register(context.Background(), reg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := simrunner.Save(dir, cfg); err != nil {
		t.Fatal(err)
	}
	if err := simrunner.Save(dir, cfg); !errors.Is(err, simrunner.ErrAlreadyConfigured) {
		t.Errorf("second Save: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, ".credentials")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf(".credentials: %v %v", fi, err)
	}
	loaded, err := simrunner.Load(dir)
	if err != nil || loaded.Token.Reveal() != cfg.Token.Reveal() || loaded.Settings != cfg.Settings || loaded.JIT {
		t.Fatalf("Load: %+v %v", loaded, err)
	}
	id := loaded.Settings.AgentID

	ctx, cancel := context.WithCancel(context.Background())
	wait := start(ctx, loaded, opts)
	eventually(t, "online", online(s, id))
	ids, _ := s.World().CreateJobs(world.JobInput{Repo: "octo-org/app", Labels: []string{"big"}, Duration: 20 * time.Millisecond, Count: 3})
	eventually(t, "three jobs done", func() bool { return s.World().JobCounts().Completed == 3 })
	for _, jid := range ids {
		if j, _, _ := s.World().Job(jid); j.RunnerID != id || j.Conclusion != "success" {
			t.Errorf("job %+v", j)
		}
	}
	cancel()
	if err := wait(t); err != nil {
		t.Fatal(err)
	}
	eventually(t, "offline", func() bool { got, ok := s.World().RunnerByID(id); return ok && got.Status == world.StatusOffline })

	// A persistent runner may come back.
	ctx, cancel = context.WithCancel(context.Background())
	wait = start(ctx, loaded, opts)
	eventually(t, "online again", online(s, id))
	cancel()
	if err := wait(t); err != nil {
		t.Fatal(err)
	}
	eventually(t, "offline again", func() bool { got, _ := s.World().RunnerByID(id); return got.Status == world.StatusOffline })

	if err := simrunner.Remove(context.Background(), dir, "WRONG", opts); !errors.Is(err, simrunner.ErrUnauthorized) {
		t.Errorf("remove with a bad token: %v", err)
	}
	rm, _ := s.RemoveToken(org)
	if err := simrunner.Remove(context.Background(), dir, secret.String(rm), opts); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.World().RunnerByID(id); ok {
		t.Error("runner still registered")
	}
	if _, err := simrunner.Load(dir); !errors.Is(err, simrunner.ErrNotConfigured) {
		t.Errorf("Load after remove: %v", err)
	}
	if v := s.World().Violations(); v != (world.Violations{}) {
		t.Errorf("violations %+v", v)
	}
	if strings.Contains(logs.String(), tok) || strings.Contains(logs.String(), cfg.Token.Reveal()) {
		t.Error("a credential reached the logs")
	}
}

func TestDeletedRunnerExits(t *testing.T) {
	s := simulator(t)
	tok, _ := s.RegistrationToken(org)
	cfg, err := simrunner.Register(context.Background(), simrunner.Registration{
		ServerURL: s.URL(), URL: "https://github.com/octo-org", Token: secret.String(tok), Name: "del",
	}, options(&logBuffer{}))
	if err != nil {
		t.Fatal(err)
	}
	wait := start(context.Background(), cfg, options(&logBuffer{}))
	eventually(t, "online", online(s, cfg.Settings.AgentID))
	if err := s.World().DeleteRunner(org, cfg.Settings.AgentID); err != nil {
		t.Fatal(err)
	}
	if err := wait(t); err != nil {
		t.Errorf("deleted runner: %v", err)
	}
}

func TestSimulatorGoneEndsRunner(t *testing.T) {
	s := simulator(t)
	r, enc, _ := s.GenerateJITConfig(world.RunnerInput{Scope: org, Name: "orphan"})
	cfg, _ := simrunner.DecodeJIT(enc)
	wait := start(context.Background(), cfg, options(&logBuffer{}))
	eventually(t, "online", online(s, r.ID))
	_ = s.Close()
	if err := wait(t); err == nil {
		t.Error("a JIT runner whose simulator went away exits with an error")
	}
}

func TestRegisterErrors(t *testing.T) {
	s := simulator(t)
	_, err := simrunner.Register(context.Background(), simrunner.Registration{
		ServerURL: s.URL(), URL: "https://github.com/octo-org", Token: "NOPE", Name: "x",
	}, simrunner.Options{})
	if !errors.Is(err, simrunner.ErrUnauthorized) || strings.Contains(err.Error(), "NOPE") {
		t.Errorf("bad token: %v", err)
	}
	if _, err := simrunner.Register(context.Background(), simrunner.Registration{URL: "https://github.com/octo-org"}, simrunner.Options{}); !errors.Is(err, simrunner.ErrNoServerURL) {
		t.Errorf("no server URL: %v", err)
	}
}

func TestDecodeJITRejectsJunk(t *testing.T) {
	for _, in := range []string{"", "%%%", "bm90IGpzb24=", "e30=", "eyIucnVubmVyIjoiZTMwPSJ9"} {
		if _, err := simrunner.DecodeJIT(in); !errors.Is(err, simrunner.ErrBadJITConfig) && err == nil {
			t.Errorf("%q decoded", in)
		}
	}
	enc, err := simrunner.EncodeJIT(simrunner.Settings{AgentID: 3, AgentName: "n", ServerURL: "http://x"},
		simrunner.Credentials{Scheme: simrunner.CredentialScheme, Data: simrunner.CredentialsData{Token: "tok"}}, simrunner.RSAParams{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := simrunner.DecodeJIT(enc)
	if err != nil || cfg.Settings.ServerURL != "http://x/" || cfg.Token.Reveal() != "tok" || !cfg.JIT {
		t.Errorf("round trip: %+v %v", cfg, err)
	}
}

func TestResolveServerURL(t *testing.T) {
	for _, tc := range []struct{ explicit, env, gh, want string }{
		{"http://a:1", "http://b/", "https://github.com/o", "http://a:1/"},
		{"", "http://b/", "https://github.com/o", "http://b/"},
		{"", "", "http://127.0.0.1:9/octo-org", "http://127.0.0.1:9/"},
		{"", "", "https://github.com/octo-org", ""},
	} {
		got, err := simrunner.ResolveServerURL(tc.explicit, tc.env, tc.gh)
		if got != tc.want || (tc.want == "") != errors.Is(err, simrunner.ErrNoServerURL) {
			t.Errorf("%+v: %q %v", tc, got, err)
		}
	}
}
