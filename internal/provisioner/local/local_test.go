//go:build linux

package local

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
	"github.com/runnerscaler/runnerscaler/internal/secret"
)

// Tests with a runner application made by the test (shell scripts), for
// what the simulator's runner cannot show: escalation to SIGKILL, failures,
// the environment, the cache across versions.

const idleScript = "exec sleep 300\n"

func TestDeleteEscalatesToSIGKILLForTheWholeGroup(t *testing.T) {
	app := newFakeApp(t)
	// The runner and its children ignore SIGTERM (an ignored signal stays
	// ignored across fork and exec), so only SIGKILL after the grace period
	// ends them.
	app.publish("actions-runner-test-1.tar.gz", scriptApp(t, `trap '' TERM
sleep 300 &
sh -c 'sleep 300 & while :; do sleep 1; done' &
echo up > up
while :; do sleep 1; done
`))
	l := newLogs()
	p := newProvisioner(t, map[string]any{"grace_period": "300ms"}, testEnv(t, "lp", app, l))
	ctx := ctxT(t)
	const jit = "jit-secret-escalate"
	in, err := p.Create(ctx, jitSpec("r-stubborn", jit))
	if err != nil {
		t.Fatal(err)
	}
	if in.ID != "local-r-stubborn" || in.State != provisioner.StateRunning || in.Pool != "pool-a" || in.RunnerName != "r-stubborn" {
		t.Errorf("created %+v", in)
	}
	pid, _ := pidOf(t, p, in.ID)
	var ms []member
	waitFor(t, 10*time.Second, "the runner's processes", func() bool {
		ms = members(pid)
		return len(ms) >= 5 // sh, sleep, sh, its sleep, a loop sleep
	})
	if n := assertArgvClean(t, pid, jit); n == 0 {
		t.Fatal("no processes checked")
	}
	dir := filepath.Join(p.cfg.workDir, instancesDir, "r-stubborn")
	start := time.Now()
	if err := p.Delete(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("Delete took %s: the grace period was not given", took)
	}
	for _, m := range ms {
		if processAlive(m.pid, m.start) {
			t.Errorf("process %d (%s) survived Delete", m.pid, procFile(m.pid, "cmdline"))
		}
	}
	if !l.has("runner still alive after the grace period; killing it") {
		t.Error("no log of the escalation")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("instance directory left behind: %v", err)
	}
	if _, err := p.Get(ctx, in.ID); !errors.Is(err, provisioner.ErrNotFound) {
		t.Errorf("Get after Delete: %v", err)
	}
	if err := p.Delete(ctx, in.ID); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	l.assertNoSecret(t, jit)
}

func TestFailedRunnerKeepsTheEndOfItsLogWithoutSecrets(t *testing.T) {
	app := newFakeApp(t)
	app.publish("actions-runner-test-1.tar.gz", scriptApp(t, `echo "starting with $ACTIONS_RUNNER_INPUT_JITCONFIG"
echo "fatal: cannot connect" >&2
exit 3
`))
	l := newLogs()
	p := newProvisioner(t, nil, testEnv(t, "lp", app, l))
	ctx := ctxT(t)
	const jit = "jit-secret-fails"
	in, err := p.Create(ctx, jitSpec("r-fails", jit))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the runner to fail", stateIs(p, in.ID, provisioner.StateFailed))
	got := get(t, p, in.ID)
	if !strings.Contains(got.LastError, "exit status 3") || !strings.Contains(got.LastError, "fatal: cannot connect") {
		t.Errorf("LastError %q: want the exit status and the end of the log", got.LastError)
	}
	if strings.Contains(got.LastError, jit) || !strings.Contains(got.LastError, secret.Redacted) {
		t.Errorf("LastError %q: the JIT config must be redacted", got.LastError)
	}
	// A failed instance holds no process: it does not count against
	// max_instances, and it stays listed until deleted.
	if insts, _ := p.List(ctx); len(insts) != 1 || insts[0].State != provisioner.StateFailed {
		t.Errorf("List: %+v", insts)
	}
	b, _ := os.ReadFile(filepath.Join(p.cfg.workDir, stateFile))
	if strings.Contains(string(b), jit) || !strings.Contains(string(b), `"state": "failed"`) {
		t.Errorf("state file: %s", b)
	}
	if err := p.Delete(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	l.assertNoSecret(t, jit)
}

func TestRunnerEnvironmentIsAllowListed(t *testing.T) {
	app := newFakeApp(t)
	app.publish("actions-runner-test-1.tar.gz", scriptApp(t, idleScript))
	l := newLogs()
	t.Setenv("LANG", "C.UTF-8")
	p := newProvisioner(t, map[string]any{"extra_env": map[string]any{"RUNNER_EXTRA": "yes"}}, testEnv(t, "lp", app, l))
	ctx := ctxT(t)
	in, err := p.Create(ctx, jitSpec("r-env", "jit-secret-env"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := pidOf(t, p, in.ID)
	var env map[string]string
	// Read the environment only once the process image is the runner's
	// sleep: during the exec /proc/<pid>/environ can read empty.
	waitFor(t, 5*time.Second, "sleep to start", func() bool {
		if !strings.Contains(procFile(pid, "cmdline"), "sleep") {
			return false
		}
		env = envKeys(pid)
		return len(env) > 0
	})
	allowed := map[string]bool{"PATH": true, "HOME": true, "LANG": true, "RUNNER_EXTRA": true, envJITConfig: true, "PWD": true}
	for k := range env {
		if !allowed[k] {
			t.Errorf("the runner's environment holds %s", k)
		}
	}
	if env[envJITConfig] != "jit-secret-env" || env["RUNNER_EXTRA"] != "yes" || env["LANG"] != "C.UTF-8" || env["PATH"] == "" {
		t.Errorf("environment %v", env)
	}
	if _, leaked := env[daemonSecretEnv]; leaked {
		t.Error("the daemon's environment reached the runner")
	}
	if !strings.Contains(procFile(pid, "stat"), " S ") && !strings.Contains(procFile(pid, "stat"), " R ") {
		t.Logf("stat: %s", procFile(pid, "stat"))
	}
	// Its own process group.
	if st, err := readProcStat(pid); err != nil || st.pgrp != pid {
		t.Errorf("process group %d, want %d (its own): %v", st.pgrp, pid, err)
	}
}

func TestMaxInstances(t *testing.T) {
	app := newFakeApp(t)
	app.publish("actions-runner-test-1.tar.gz", scriptApp(t, idleScript))
	p := newProvisioner(t, map[string]any{"max_instances": 2}, testEnv(t, "lp", app, newLogs()))
	ctx := ctxT(t)
	for _, n := range []string{"r-1", "r-2"} {
		if _, err := p.Create(ctx, jitSpec(n, "j")); err != nil {
			t.Fatal(err)
		}
	}
	_, err := p.Create(ctx, jitSpec("r-3", "j"))
	if !errors.Is(err, ErrMaxInstances) || !provisioner.IsNotCreated(err) {
		t.Fatalf("third Create: %v; want ErrMaxInstances marked NotCreated", err)
	}
	if _, err := os.Stat(filepath.Join(p.cfg.workDir, instancesDir, "r-3")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a refused Create left a directory")
	}
	// A duplicate name is refused for good.
	if _, err := p.Create(ctx, jitSpec("r-1", "j")); !provisioner.IsPermanent(err) {
		t.Errorf("duplicate: %v", err)
	}
	if err := p.Delete(ctx, "local-r-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Create(ctx, jitSpec("r-3", "j")); err != nil {
		t.Errorf("Create after a Delete freed a slot: %v", err)
	}
}

// nice: N puts the runner's process group at that niceness.
func TestNice(t *testing.T) {
	app := newFakeApp(t)
	app.publish("actions-runner-test-1.tar.gz", scriptApp(t, idleScript))
	p := newProvisioner(t, map[string]any{"nice": 7}, testEnv(t, "lp", app, newLogs()))
	in, err := p.Create(ctxT(t), jitSpec("r-nice", "j"))
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	pid := p.entries[in.ID].rec.PID
	p.mu.Unlock()
	// /proc/<pid>/stat: field 19 is the niceness; fields after the
	// command name (in parentheses) are space-separated.
	stat := procFile(pid, "stat")
	fields := strings.Fields(stat[strings.LastIndex(stat, ")")+1:])
	if len(fields) < 17 || fields[16] != "7" {
		t.Errorf("niceness field %q of %q, want 7", fields[16], stat)
	}
}

func TestCreateRefusesBadSpecs(t *testing.T) {
	app := newFakeApp(t)
	app.publish("actions-runner-test-1.tar.gz", scriptApp(t, idleScript))
	p := newProvisioner(t, nil, testEnv(t, "lp", app, newLogs()))
	tok := provisioner.Registration{Token: "tok-secret-bad"}
	otherOS, otherArch := "windows", "arm64"
	if hostOS() == "win" {
		otherOS = "linux"
	}
	if hostArch() == "arm64" {
		otherArch = "x64"
	}
	for name, spec := range map[string]provisioner.Spec{
		"path in name":   jitSpec("../evil", "j"),
		"empty name":     jitSpec("", "j"),
		"no secret":      {RunnerName: "r"},
		"both":           {RunnerName: "r", Registration: provisioner.Registration{JITConfig: "j", Token: "t"}},
		"token, no url":  {RunnerName: "r", Registration: tok},
		"comma in label": {RunnerName: "r", ScopeURL: "https://github.com/o", Labels: []string{"a,b"}, Registration: tok},
		"another os":     withPlatform(jitSpec("r", "j"), otherOS, ""),
		"another arch":   withPlatform(jitSpec("r", "j"), "", otherArch),
	} {
		_, err := p.Create(context.Background(), spec)
		if !provisioner.IsPermanent(err) || !provisioner.IsNotCreated(err) {
			t.Errorf("%s: %v; want a permanent not-created error", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "tok-secret-bad") {
			t.Errorf("%s: the error holds the token", name)
		}
	}
	if app.lists.Load() != 0 {
		t.Error("a refused spec reached the downloads list")
	}
	// The pool's os and arch, when they are this host's, are fine.
	hostOSName := map[string]string{"linux": "linux", "osx": "macos", "win": "windows"}[hostOS()]
	if _, err := p.Create(context.Background(), withPlatform(jitSpec("r-ok", "j"), hostOSName, hostArch())); err != nil {
		t.Errorf("Create for this host's os and arch: %v", err)
	}
}

func withPlatform(s provisioner.Spec, os, arch string) provisioner.Spec {
	s.OS, s.Arch = os, arch
	return s
}

func TestRunnerApplicationCache(t *testing.T) {
	app := newFakeApp(t)
	app.publish("actions-runner-linux-x64-1.0.0.tar.gz", scriptApp(t, "echo v1 > version\n"+idleScript))
	var now atomic.Int64
	now.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	env := testEnv(t, "lp", app, newLogs())
	env.Clock = func() time.Time { return time.Unix(0, now.Load()) }
	p := newProvisioner(t, nil, env)
	ctx := ctxT(t)
	version := func(name string) string {
		var b []byte
		waitFor(t, 5*time.Second, name+" to write its version", func() bool {
			b, _ = os.ReadFile(filepath.Join(p.cfg.workDir, instancesDir, name, "version"))
			return len(b) > 0
		})
		return strings.TrimSpace(string(b))
	}
	if _, err := p.Create(ctx, jitSpec("r-a", "j")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Create(ctx, jitSpec("r-b", "j")); err != nil {
		t.Fatal(err)
	}
	if d, l := app.downloads.Load(), app.lists.Load(); d != 1 || l != 1 {
		t.Errorf("%d downloads and %d list calls for two Creates, want 1 and 1", d, l)
	}
	if v := version("r-b"); v != "v1" {
		t.Errorf("r-b runs %q", v)
	}
	// The archive is not kept; the unpacked build is.
	entries, _ := os.ReadDir(p.cfg.cacheDir)
	if len(entries) != 1 || !entries[0].IsDir() || !appKeyRE.MatchString(entries[0].Name()) {
		t.Errorf("cache holds %v", entries)
	}
	old := entries[0].Name()

	// After the check interval the list is asked again; the same build is not
	// downloaded again.
	now.Add(int64(2 * appCheckInterval))
	if _, err := p.Create(ctx, jitSpec("r-c", "j")); err != nil {
		t.Fatal(err)
	}
	if d, l := app.downloads.Load(), app.lists.Load(); d != 1 || l != 2 {
		t.Errorf("%d downloads and %d list calls, want 1 and 2", d, l)
	}
	// When the list cannot be read the cached build serves.
	now.Add(int64(2 * appCheckInterval))
	app.setListErr(errors.New("github is down"))
	if _, err := p.Create(ctx, jitSpec("r-d", "j")); err != nil {
		t.Fatalf("Create with the list down: %v", err)
	}
	app.setListErr(nil)
	// A new version is downloaded, and the old one pruned.
	now.Add(int64(2 * appCheckInterval))
	app.publish("actions-runner-linux-x64-1.1.0.tar.gz", scriptApp(t, "echo v2 > version\n"+idleScript))
	if _, err := p.Create(ctx, jitSpec("r-e", "j")); err != nil {
		t.Fatal(err)
	}
	if v := version("r-e"); v != "v2" {
		t.Errorf("r-e runs %q, want the new build", v)
	}
	if d := app.downloads.Load(); d != 2 {
		t.Errorf("%d downloads, want 2", d)
	}
	if _, err := os.Stat(filepath.Join(p.cfg.cacheDir, old)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old build still cached: %v", err)
	}
	// Runners made from the old build are unaffected (hard links or copies).
	if v := version("r-a"); v != "v1" {
		t.Errorf("r-a runs %q", v)
	}
	if in := get(t, p, "local-r-a"); in.State != provisioner.StateRunning {
		t.Errorf("r-a is %s", in.State)
	}
	// A cache emptied behind the provisioner's back is filled again.
	if err := os.RemoveAll(p.cfg.cacheDir); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Create(ctx, jitSpec("r-f", "j")); err != nil {
		t.Fatalf("Create after the cache was emptied: %v", err)
	}
	if d := app.downloads.Load(); d != 3 {
		t.Errorf("%d downloads, want 3", d)
	}
}

func TestRestartAdoptsLiveRunnersAndCleansDeadOnes(t *testing.T) {
	app := newFakeApp(t)
	app.publish("actions-runner-test-1.tar.gz", scriptApp(t, idleScript))
	l := newLogs()
	env := testEnv(t, "lp", app, l)
	p1, err := New(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	live, err := p1.Create(ctx, jitSpec("r-live", "j"))
	if err != nil {
		t.Fatal(err)
	}
	doomed, err := p1.Create(ctx, jitSpec("r-doomed", "j"))
	if err != nil {
		t.Fatal(err)
	}
	livePID, liveStart := pidOf(t, p1, live.ID)
	doomedPID, doomedStart := pidOf(t, p1, doomed.ID)
	if err := p1.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p1.List(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("List after Close: %v", err)
	}
	// Close leaves the runners running.
	if !processAlive(livePID, liveStart) {
		t.Fatal("Close stopped a runner")
	}
	// While the daemon is down, one runner ends, and another daemon's record
	// appears in the file.
	if err := signalGroup(doomedPID, 9); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the doomed runner to die", func() bool { return !processAlive(doomedPID, doomedStart) })
	statePath := filepath.Join(p1.cfg.workDir, stateFile)
	var body stateFileBody
	b, _ := os.ReadFile(statePath)
	if err := json.Unmarshal(b, &body); err != nil || len(body.Instances) != 2 {
		t.Fatalf("state file %s: %v", b, err)
	}
	foreignDir := filepath.Join(p1.cfg.workDir, instancesDir, "r-foreign")
	_ = os.Mkdir(foreignDir, 0o700)
	body.Instances = append(body.Instances, record{ID: "local-r-foreign", RunnerName: "r-foreign", DaemonID: "another-daemon",
		PID: livePID, StartTime: liveStart, Dir: foreignDir, State: provisioner.StateRunning})
	b, _ = json.Marshal(body)
	_ = os.WriteFile(statePath, b, 0o600)
	stray := filepath.Join(p1.cfg.workDir, instancesDir, "r-stray")
	_ = os.Mkdir(stray, 0o700)

	p2 := newProvisioner(t, nil, env)
	insts, err := p2.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(insts) != 1 || insts[0].ID != live.ID || insts[0].State != provisioner.StateRunning || insts[0].Pool != "pool-a" {
		t.Fatalf("after the restart List = %+v; want only the live runner, running", insts)
	}
	if _, err := os.Stat(filepath.Join(p2.cfg.workDir, instancesDir, "r-doomed")); !errors.Is(err, os.ErrNotExist) {
		t.Error("the dead runner's directory is still there")
	}
	if _, err := os.Stat(stray); !errors.Is(err, os.ErrNotExist) {
		t.Error("a stray directory is still there")
	}
	if _, err := os.Stat(foreignDir); err != nil {
		t.Error("another daemon's directory was removed")
	}
	if _, err := p2.Get(ctx, "local-r-foreign"); !errors.Is(err, provisioner.ErrNotFound) {
		t.Errorf("another daemon's instance is visible: %v", err)
	}
	if _, err := p2.Create(ctx, jitSpec("r-foreign", "j")); !provisioner.IsPermanent(err) {
		t.Errorf("Create over another daemon's instance directory: %v", err)
	}
	if _, err := os.Stat(foreignDir); err != nil {
		t.Error("another daemon's directory was removed by a Create")
	}
	if !l.has("runner adopted") || !l.has("ended runner cleaned up") {
		t.Error("no log of the adoption and the clean-up")
	}
	if err := p2.Delete(ctx, live.ID); err != nil {
		t.Fatalf("Delete of an adopted runner: %v", err)
	}
	if processAlive(livePID, liveStart) {
		t.Error("the adopted runner survived Delete")
	}
	b, _ = os.ReadFile(statePath)
	if !strings.Contains(string(b), "another-daemon") || strings.Contains(string(b), "r-live") {
		t.Errorf("state file after Delete: %s", b)
	}
}

func TestAdoptedRunnerEndIsNoticed(t *testing.T) {
	app := newFakeApp(t)
	app.publish("actions-runner-test-1.tar.gz", scriptApp(t, "while [ ! -f ../../exit-now ]; do sleep 0.05; done\nexit 0\n"))
	env := testEnv(t, "lp", app, newLogs())
	p1, err := New(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	in, err := p1.Create(ctx, jitSpec("r-1", "j"))
	if err != nil {
		t.Fatal(err)
	}
	_ = p1.Close()
	p2 := newProvisioner(t, nil, env)
	if got := get(t, p2, in.ID); got.State != provisioner.StateRunning {
		t.Fatalf("adopted runner is %s", got.State)
	}
	_ = os.WriteFile(filepath.Join(p2.cfg.workDir, "exit-now"), nil, 0o644)
	waitFor(t, 10*time.Second, "the adopted runner's end", stateIs(p2, in.ID, provisioner.StateStopped))
	if err := p2.Delete(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
}

func TestRunAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	if _, err := lookupUser("nobody"); err != nil {
		t.Skip("no user nobody")
	}
	app := newFakeApp(t)
	app.publish("actions-runner-test-1.tar.gz", scriptApp(t, "id -u > uid\n"+idleScript))
	env := testEnv(t, "lp", app, newLogs())
	// nobody must reach its directory under the test's temporary directory.
	for d := env.StateDir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o755)
	}
	p := newProvisioner(t, map[string]any{"run_as_user": "nobody"}, env)
	ctx := ctxT(t)
	in, err := p.Create(ctx, jitSpec("r-nobody", "j"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := pidOf(t, p, in.ID)
	nobody, _ := lookupUser("nobody")
	var b []byte
	waitFor(t, 5*time.Second, "the runner to write its uid", func() bool {
		b, _ = os.ReadFile(filepath.Join(p.cfg.workDir, instancesDir, "r-nobody", "uid"))
		return len(b) > 0
	})
	if strings.TrimSpace(string(b)) != nobody.Uid {
		t.Errorf("runner ran as uid %s, want %s", b, nobody.Uid)
	}
	if !strings.Contains(procFile(pid, "status"), "Uid:\t"+nobody.Uid+"\t") {
		t.Errorf("process status: %s", procFile(pid, "status"))
	}
	var runnerEnv map[string]string
	waitFor(t, 5*time.Second, "the runner's environment to be readable", func() bool {
		runnerEnv = envKeys(pid)
		return len(runnerEnv) > 0
	})
	if runnerEnv["HOME"] != nobody.HomeDir {
		t.Errorf("HOME %q", runnerEnv["HOME"])
	}
	if err := p.Delete(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
}
