package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/ghsim"
	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

// Process-level tests: the test binary re-executes itself as scaler (see
// TestMain), so `scaler sim`, `scaler sim-runner` and the runner package's
// scripts run as real processes over loopback, with no separate build.

// execMainEnv makes the test binary behave as the scaler binary.
const execMainEnv = "SCALER_TEST_EXEC_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(execMainEnv) == "1" {
		main() // exits
	}
	os.Exit(m.Run())
}

// scalerExe is the program that behaves as scaler (with execMainEnv=1).
func scalerExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func skipWithoutProcesses(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("signals and the runner's shell scripts need a POSIX system")
	}
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
}

// proc is a child process whose output is kept.
type proc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	done           chan struct{}
	err            error
}

// startProc runs program (a script, or scalerExe) in dir with execMainEnv set.
func startProc(t *testing.T, name, dir string, env []string, program string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(program, args...)
	p.cmd.Dir = dir
	// A race-enabled binary sleeps a second at exit unless told not to.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	p.cmd.Env = append(append(os.Environ(), execMainEnv+"=1", "GORACE="+gorace), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", p.name, p.stdout.String(), p.name, p.stderr.String())
		}
	})
	return p
}

// exitCode waits for the process to end (at most 20s).
func (p *proc) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s still running after 20s", p.name)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("%s: %v", p.name, p.err)
	}
	return 0
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// waitFor polls cond every 10ms until it holds, failing after 20s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// inProcessSim starts a simulator in this process whose runner packages run
// this test binary as scaler.
func inProcessSim(t *testing.T) *ghsim.Server {
	t.Helper()
	s, err := ghsim.New(ghsim.Options{RunnerCommand: scalerExe(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// downloadRunnerPackage fetches a package, checks its sha256 against the
// downloads list and unpacks it into a new directory, as a provisioner does.
func downloadRunnerPackage(t *testing.T, app ghsim.RunnerApplication) string {
	t.Helper()
	resp, err := http.Get(app.DownloadURL)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("download %s: %d %v", app.DownloadURL, resp.StatusCode, err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != app.SHA256 {
		t.Fatalf("sha256 %s, the list says %s", got, app.SHA256)
	}
	dir := t.TempDir()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			t.Fatalf("package entry %q escapes the directory", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(p, b, h.FileInfo().Mode().Perm())
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runnerStatus(s *ghsim.Server, id int64) string {
	r, ok := s.World().RunnerByID(id)
	if !ok {
		return "gone"
	}
	return r.Status
}

// TestRunnerProcessesCompleteJobs runs two sim-runner processes against a
// simulator over loopback: a JIT runner given its config through
// ACTIONS_RUNNER_INPUT_JITCONFIG, and a persistent runner installed the way
// a provisioner installs the real runner application: download, verify the
// checksum, unpack, config.sh, run.sh. Then SIGTERM and config.sh remove.
func TestRunnerProcessesCompleteJobs(t *testing.T) {
	skipWithoutProcesses(t)
	s := inProcessSim(t)
	org := world.Scope{Kind: world.Org, Name: "octo-org"}

	jitRunner, jit, err := s.GenerateJITConfig(world.RunnerInput{Scope: org, Name: "jit-a", Labels: []string{"e2e"}})
	if err != nil {
		t.Fatal(err)
	}
	a := startProc(t, "jit runner", t.TempDir(), []string{"ACTIONS_RUNNER_INPUT_JITCONFIG=" + jit}, scalerExe(t), "sim-runner")

	var pkg ghsim.RunnerApplication
	for _, app := range s.RunnerDownloads() {
		if app.OS == "linux" && app.Architecture == "x64" {
			pkg = app
		}
	}
	dir := downloadRunnerPackage(t, pkg)
	regToken, _ := s.RegistrationToken(org)
	cfg := startProc(t, "config.sh", dir, nil, filepath.Join(dir, "config.sh"), "--unattended", "--url", "https://github.com/octo-org",
		"--token", regToken, "--name", "pkg-b", "--labels", "e2e,big", "--work", "_work", "--disableupdate")
	if code := cfg.exitCode(t); code != 0 {
		t.Fatalf("config.sh exit %d: %s", code, cfg.stderr.String())
	}
	if !strings.Contains(cfg.stdout.String(), "Runner successfully added") {
		t.Errorf("config.sh said %q", cfg.stdout.String())
	}
	var settings struct {
		AgentID int64 `json:"agentId"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, ".runner"))
	if err != nil || json.Unmarshal(raw, &settings) != nil || settings.AgentID == 0 {
		t.Fatalf(".runner: %s %v", raw, err)
	}
	b := startProc(t, "run.sh", dir, nil, filepath.Join(dir, "run.sh"))

	waitFor(t, "both runners online", func() bool {
		return runnerStatus(s, jitRunner.ID) == world.StatusOnline && runnerStatus(s, settings.AgentID) == world.StatusOnline
	})
	ids, err := s.World().CreateJobs(world.JobInput{Repo: "octo-org/app", Labels: []string{"self-hosted", "linux", "E2E"}, Duration: 200 * time.Millisecond, Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "three jobs completed", func() bool { return s.World().JobCounts().Completed == 3 })
	var names []string
	for _, id := range ids {
		j, _, _ := s.World().Job(id)
		if j.Conclusion != "success" {
			t.Errorf("job %d: %s", id, j.Conclusion)
		}
		if !slices.Contains(names, j.RunnerName) {
			names = append(names, j.RunnerName)
		}
	}
	slices.Sort(names)
	if strings.Join(names, ",") != "jit-a,pkg-b" {
		t.Errorf("jobs ran on %v, want both runners", names)
	}
	if code := a.exitCode(t); code != 0 {
		t.Errorf("ephemeral runner exit %d", code)
	}
	if runnerStatus(s, jitRunner.ID) != "gone" {
		t.Error("the ephemeral runner is still registered after its job")
	}

	// SIGTERM while idle: offline, exit 0, no harm done.
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := b.exitCode(t); code != 0 {
		t.Errorf("run.sh exit %d after SIGTERM", code)
	}
	waitFor(t, "persistent runner offline", func() bool { return runnerStatus(s, settings.AgentID) == world.StatusOffline })
	if v := s.World().Violations(); v != (world.Violations{}) {
		t.Errorf("violations %+v", v)
	}

	rmToken, _ := s.RemoveToken(org)
	rm := startProc(t, "config.sh remove", dir, nil, filepath.Join(dir, "config.sh"), "remove", "--token", rmToken)
	if code := rm.exitCode(t); code != 0 {
		t.Fatalf("config.sh remove exit %d", code)
	}
	if runnerStatus(s, settings.AgentID) != "gone" {
		t.Error("runner still registered after config.sh remove")
	}
	if _, err := os.Stat(filepath.Join(dir, ".runner")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf(".runner left behind: %v", err)
	}
	for _, p := range []*proc{a, b, cfg, rm} {
		for _, secret := range []string{jit, regToken, rmToken} {
			if strings.Contains(p.stdout.String()+p.stderr.String(), secret) {
				t.Errorf("%s printed a credential", p.name)
			}
		}
	}
}

// TestKillingBusyRunnerProcessCountsViolation: SIGKILL of a sim-runner
// running a job is a runner killed under its job.
func TestKillingBusyRunnerProcessCountsViolation(t *testing.T) {
	skipWithoutProcesses(t)
	s := inProcessSim(t)
	r, jit, err := s.GenerateJITConfig(world.RunnerInput{Scope: world.Scope{Kind: world.Org, Name: "octo-org"}, Name: "victim"})
	if err != nil {
		t.Fatal(err)
	}
	p := startProc(t, "sim-runner", t.TempDir(), nil, scalerExe(t), "sim-runner", "--jitconfig", jit)
	waitFor(t, "runner online", func() bool { return runnerStatus(s, r.ID) == world.StatusOnline })
	if _, err := s.World().CreateJobs(world.JobInput{Repo: "octo-org/app", Labels: []string{"self-hosted"}, Duration: time.Hour}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "runner busy", func() bool { got, _ := s.World().RunnerByID(r.ID); return got.Busy })
	time.Sleep(50 * time.Millisecond) // let the process receive the job (not needed for the count)
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	waitFor(t, "job_runner_killed == 1", func() bool { return s.World().Violations().JobRunnerKilled == 1 })
	if v := s.World().Violations(); v.BusyRunnerDeleted != 0 || v.JobRunnerKilled != 1 {
		t.Errorf("violations %+v", v)
	}
}

// simHTTP is a client for a simulator process.
type simHTTP struct {
	t    *testing.T
	base string
	pat  string
}

// do sends a request and decodes the answer, which must have status want.
func (c simHTTP) do(method, path string, body any, want int, out any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("Content-Type", "application/json")
	if c.pat != "" && !strings.HasPrefix(path, "_sim/") {
		req.Header.Set("Authorization", "Bearer "+c.pat)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
}

// simJob is what GET /_sim/jobs lists for a job.
type simJob struct {
	ID         int64   `json:"id"`
	Status     string  `json:"status"`
	Conclusion *string `json:"conclusion"`
	RunnerName *string `json:"runner_name"`
}

// simRunner is what GET /_sim/runners lists for a runner.
type simRunner struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

// TestSimProcessWithRunnerProcesses is the acceptance test of issue #3: scaler
// sim and two scaler sim-runner processes, separate processes over loopback,
// complete jobs created through the control API. One runner is JIT (its
// config from the REST API), the other registers with a registration token
// from the REST API using config.sh-style flags.
func TestSimProcessWithRunnerProcesses(t *testing.T) {
	skipWithoutProcesses(t)
	const pat = "ghp_simprocesstest"
	sim := startProc(t, "scaler sim", t.TempDir(), []string{"SCALER_SIM_WEBHOOK_SECRET=whsec_test"}, scalerExe(t),
		"sim", "-listen", "127.0.0.1:0", "-pat", pat, "-seed", "7")
	urlLine := regexp.MustCompile(`simulator listening on (\S+)`)
	var base string
	waitFor(t, "the simulator's URL on stdout", func() bool {
		if !sim.running() {
			t.Fatalf("scaler sim exited: %s", sim.stderr.String())
		}
		m := urlLine.FindStringSubmatch(sim.stdout.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	})
	c := simHTTP{t: t, base: base, pat: pat}

	var jit struct {
		Runner struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
		} `json:"runner"`
		EncodedJITConfig string `json:"encoded_jit_config"`
	}
	c.do("POST", "orgs/octo-org/actions/runners/generate-jitconfig",
		map[string]any{"name": "proc-jit", "runner_group_id": 1, "labels": []string{"self-hosted", "proc"}, "work_folder": "_work"},
		http.StatusCreated, &jit)
	var reg struct {
		Token string `json:"token"`
	}
	c.do("POST", "orgs/octo-org/actions/runners/registration-token", nil, http.StatusCreated, &reg)

	a := startProc(t, "jit sim-runner", t.TempDir(), []string{"ACTIONS_RUNNER_INPUT_JITCONFIG=" + jit.EncodedJITConfig}, scalerExe(t), "sim-runner")
	b := startProc(t, "registered sim-runner", t.TempDir(), nil, scalerExe(t), "sim-runner",
		"--url", base+"octo-org", "--token", reg.Token, "--name", "proc-reg", "--labels", "proc", "--work", "_work")

	runners := func() map[string]simRunner {
		var out struct {
			Runners []simRunner `json:"runners"`
		}
		c.do("GET", "_sim/runners", nil, http.StatusOK, &out)
		m := map[string]simRunner{}
		for _, r := range out.Runners {
			m[r.Name] = r
		}
		return m
	}
	waitFor(t, "both runners online", func() bool {
		rs := runners()
		return rs["proc-jit"].Status == "online" && rs["proc-reg"].Status == "online"
	})

	var created struct {
		IDs []int64 `json:"ids"`
	}
	c.do("POST", "_sim/jobs", map[string]any{"repo": "octo-org/app", "labels": []string{"self-hosted", "proc"}, "duration_ms": 200, "count": 3},
		http.StatusCreated, &created)
	if len(created.IDs) != 3 {
		t.Fatalf("created %v", created.IDs)
	}
	var ranOn []string
	waitFor(t, "the jobs completed", func() bool {
		var out struct {
			Jobs []simJob `json:"jobs"`
		}
		c.do("GET", "_sim/jobs?status=completed", nil, http.StatusOK, &out)
		ranOn = ranOn[:0]
		n := 0
		for _, j := range out.Jobs {
			if slices.Contains(created.IDs, j.ID) {
				n++
				if j.Conclusion == nil || *j.Conclusion != "success" || j.RunnerName == nil {
					t.Fatalf("job %d completed as %+v", j.ID, j)
				}
				if !slices.Contains(ranOn, *j.RunnerName) {
					ranOn = append(ranOn, *j.RunnerName)
				}
			}
		}
		return n == len(created.IDs)
	})
	slices.Sort(ranOn)
	if strings.Join(ranOn, ",") != "proc-jit,proc-reg" {
		t.Errorf("jobs ran on %v, want both runners", ranOn)
	}
	if code := a.exitCode(t); code != 0 {
		t.Errorf("ephemeral JIT runner exit %d", code)
	}
	if _, ok := runners()["proc-jit"]; ok {
		t.Error("the simulator still lists the ephemeral runner after its job")
	}
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := b.exitCode(t); code != 0 {
		t.Errorf("registered runner exit %d after SIGTERM", code)
	}
	waitFor(t, "registered runner offline", func() bool { return runners()["proc-reg"].Status == "offline" })
	var stats ghsim.StatsSnapshot
	c.do("GET", "_sim/stats", nil, http.StatusOK, &stats)
	if stats.Violations.JobRunnerKilled != 0 || stats.Violations.BusyRunnerDeleted != 0 {
		t.Errorf("violations %+v", stats.Violations)
	}

	if err := sim.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := sim.exitCode(t); code != 0 {
		t.Errorf("scaler sim exit %d after SIGTERM", code)
	}
	for _, p := range []*proc{sim, a, b} {
		out := p.stdout.String() + p.stderr.String()
		for _, secret := range []string{pat, "whsec_test", jit.EncodedJITConfig, reg.Token} {
			if strings.Contains(out, secret) {
				t.Errorf("%s printed a credential", p.name)
			}
		}
	}
}
