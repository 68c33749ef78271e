package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/admin"
	"github.com/runnerscaler/runnerscaler/internal/ghapi"
	"github.com/runnerscaler/runnerscaler/internal/ghsim"
	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
	"github.com/runnerscaler/runnerscaler/internal/provisioner"
	"github.com/runnerscaler/runnerscaler/internal/provisioner/local"
	"github.com/runnerscaler/runnerscaler/internal/scaler"
	"github.com/runnerscaler/runnerscaler/internal/secret"
)

// End-to-end acceptance tests of issue #7 (runner lifecycle): `scaler sim`
// and `scaler run` as processes over loopback, the daemon authenticated as a
// GitHub App (the delivery log, and so redelivery, needs the App's JWT), its
// local provisioner running the simulator's runner package as real
// processes (see TestMain).

const (
	lcAppID = 4242
	// Secrets: none may appear in the daemon's or the simulator's output.
	lcPAT           = "ghp_lifecycle_DONOTLEAK"
	lcWebhookSecret = "whsec_lifecycle_DONOTLEAK"
)

var (
	lcKeyOnce         sync.Once
	lcKeyPEM, lcPubPK []byte
	lcKeyErr          error
)

// lcAppKey is the App's key pair, made once for every test (the slow part):
// the private key as PEM (PKCS #1) and the public key as PEM (PKIX).
func lcAppKey(t *testing.T) (private, public []byte) {
	t.Helper()
	lcKeyOnce.Do(func() {
		var k *rsa.PrivateKey
		if k, lcKeyErr = rsa.GenerateKey(rand.Reader, 2048); lcKeyErr != nil {
			return
		}
		lcKeyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
		var der []byte
		if der, lcKeyErr = x509.MarshalPKIXPublicKey(&k.PublicKey); lcKeyErr == nil {
			lcPubPK = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		}
	})
	if lcKeyErr != nil {
		t.Fatal(lcKeyErr)
	}
	return lcKeyPEM, lcPubPK
}

// lcConfig is the daemon's configuration; POOLS and LIFECYCLE are filled in
// per test.
const lcConfig = `
github:
  api_url: SIMURL
  app:
    id: APPID
    private_key_file: DIR/app.pem
webhook:
  listen: WEBHOOK
  path: /webhook
metrics:
  listen: METRICS
admin:
  listen: ADMIN
store:
  path: DIR/state.db
log:
  level: info
lifecycle:
LIFECYCLE
pools:
POOLS
provisioners:
  local:
    type: local
    settings:
      work_dir: DIR/local
      cache_dir: DIR/cache
      max_instances: MAXINST
      grace_period: 5s
      extra_env:
        SCALER_TEST_EXEC_MAIN: "1"
        GORACE: atexit_sleep_ms=0
PROVISIONERS
`

// lcSetup describes one test's simulator and daemon.
type lcSetup struct {
	seed         int64
	busyLag      time.Duration
	pools        string // YAML list items under pools:, indented two spaces
	lifecycle    string // YAML keys under lifecycle:, indented two spaces
	provisioners string // more YAML entries under provisioners:, indented two spaces
	maxInstances int
	daemonID     string // written to <dir>/daemon-id when set
}

// lcEnv is a running simulator and the files a daemon needs.
type lcEnv struct {
	t                                   *testing.T
	dir                                 string // the daemon's state directory; runner processes live under it
	base                                string // simulator URL
	sim                                 *proc
	c                                   simHTTP // with the PAT
	webhookAddr, metricsAddr, adminAddr string
	cfgPath                             string
	procs                               []*proc // everything started, for the leak check
	start                               time.Time
}

func newLCEnv(t *testing.T, s lcSetup) *lcEnv {
	t.Helper()
	skipWithoutProcesses(t)
	e := &lcEnv{t: t, dir: t.TempDir(), start: time.Now()}
	// Last of all: no runner process outlives the test.
	t.Cleanup(func() { signalRunnersUnder(e.dir, syscall.SIGKILL) })
	e.webhookAddr = freePort(t)
	for e.metricsAddr = freePort(t); e.metricsAddr == e.webhookAddr; {
		e.metricsAddr = freePort(t)
	}
	for e.adminAddr = freePort(t); e.adminAddr == e.webhookAddr || e.adminAddr == e.metricsAddr; {
		e.adminAddr = freePort(t)
	}
	priv, pub := lcAppKey(t)
	if err := os.WriteFile(filepath.Join(e.dir, "app.pem"), priv, 0o600); err != nil {
		t.Fatal(err)
	}
	simDir := t.TempDir()
	pubPath := filepath.Join(simDir, "app.pub")
	if err := os.WriteFile(pubPath, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	if s.daemonID != "" {
		if err := os.WriteFile(filepath.Join(e.dir, "daemon-id"), []byte(s.daemonID+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"sim", "-listen", "127.0.0.1:0", "-seed", strconv.FormatInt(s.seed, 10),
		"-webhook-url", "http://" + e.webhookAddr + "/webhook", "-runner-command", scalerExe(t),
		"-app-id", strconv.Itoa(lcAppID), "-app-public-key", pubPath, "-rate-limit", "1000000"}
	if s.busyLag > 0 {
		args = append(args, "-busy-lag", s.busyLag.String())
	}
	e.sim = startProc(t, "scaler sim", simDir,
		[]string{"SCALER_SIM_PAT=" + lcPAT, "SCALER_SIM_WEBHOOK_SECRET=" + lcWebhookSecret}, scalerExe(t), args...)
	e.procs = append(e.procs, e.sim)
	urlLine := regexp.MustCompile(`simulator listening on (\S+)`)
	waitFor(t, "the simulator's URL on stdout", func() bool {
		if !e.sim.running() {
			t.Fatalf("scaler sim exited: %s", e.sim.stderr.String())
		}
		if m := urlLine.FindStringSubmatch(e.sim.stdout.String()); m != nil {
			e.base = m[1]
		}
		return e.base != ""
	})
	waitFor(t, "the simulator answering", func() bool {
		var st ghsim.StatsSnapshot
		return e2eGet(e.base, "_sim/stats", "", &st) == nil
	})
	e.c = simHTTP{t: t, base: e.base, pat: lcPAT}

	maxInst := s.maxInstances
	if maxInst == 0 {
		maxInst = 30
	}
	cfg := strings.NewReplacer("POOLS", strings.TrimRight(s.pools, "\n"), "LIFECYCLE", strings.TrimRight(s.lifecycle, "\n"),
		"PROVISIONERS", strings.TrimRight(s.provisioners, "\n")).Replace(lcConfig)
	cfg = strings.NewReplacer("SIMURL", e.base, "APPID", strconv.Itoa(lcAppID), "WEBHOOK", e.webhookAddr,
		"METRICS", e.metricsAddr, "ADMIN", e.adminAddr, "DIR", e.dir, "MAXINST", strconv.Itoa(maxInst)).Replace(cfg)
	e.cfgPath = filepath.Join(e.dir, "config.yaml")
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// startDaemon starts `scaler run` on the test's config and state directory
// and waits until it is healthy.
func (e *lcEnv) startDaemon(name string) daemon {
	e.t.Helper()
	d := startDaemon(e.t, name, e.dir, e.cfgPath, []string{"SCALER_WEBHOOK_SECRET=" + lcWebhookSecret}, e.webhookAddr, e.metricsAddr)
	e.procs = append(e.procs, d.proc)
	return d
}

// appClient is a GitHub client authenticated as the App (for the delivery
// log).
func (e *lcEnv) appClient() *ghapi.Client {
	e.t.Helper()
	priv, _ := lcAppKey(e.t)
	gh, err := ghapi.New(ghapi.Options{APIURL: e.base, App: &ghapi.AppAuth{ID: lcAppID, PrivateKey: priv}, MaxAttempts: 2})
	if err != nil {
		e.t.Fatal(err)
	}
	return gh
}

// patClient is a GitHub client with the PAT.
func (e *lcEnv) patClient() *ghapi.Client {
	e.t.Helper()
	gh, err := ghapi.New(ghapi.Options{APIURL: e.base, Token: lcPAT, MaxAttempts: 2})
	if err != nil {
		e.t.Fatal(err)
	}
	return gh
}

func (e *lcEnv) stats() ghsim.StatsSnapshot {
	e.t.Helper()
	var st ghsim.StatsSnapshot
	e.c.do("GET", "_sim/stats", nil, http.StatusOK, &st)
	return st
}

func (e *lcEnv) jobs() map[int64]ghsim.CtlJob {
	e.t.Helper()
	var out struct {
		Jobs []ghsim.CtlJob `json:"jobs"`
	}
	e.c.do("GET", "_sim/jobs", nil, http.StatusOK, &out)
	m := map[int64]ghsim.CtlJob{}
	for _, j := range out.Jobs {
		m[j.ID] = j
	}
	return m
}

// runnersOf lists the simulator's runners whose names start with one of the
// pools' prefixes ("<pool>-").
func (e *lcEnv) runnersOf(pools ...string) []ghsim.CtlRunner {
	e.t.Helper()
	rs, err := e2eRunners(e.base)
	if err != nil {
		e.t.Fatalf("list runners: %v", err)
	}
	var out []ghsim.CtlRunner
	for _, r := range rs {
		if lcPoolOf(r.Name, pools) != "" {
			out = append(out, r)
		}
	}
	return out
}

func lcPoolOf(name string, pools []string) string {
	for _, p := range pools {
		if strings.HasPrefix(name, p+"-") {
			return p
		}
	}
	return ""
}

// lcSubmit creates jobs through the control API (no t: goroutines call it).
func lcSubmit(base, repo string, labels []string, n, durationMS int) ([]int64, error) {
	body, _ := json.Marshal(map[string]any{"repo": repo, "labels": labels, "duration_ms": durationMS, "count": n})
	resp, err := http.Post(base+"_sim/jobs", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		IDs []int64 `json:"ids"`
	}
	if resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("POST _sim/jobs: %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	if len(out.IDs) != n {
		return nil, fmt.Errorf("created %d jobs, want %d", len(out.IDs), n)
	}
	return out.IDs, nil
}

func (e *lcEnv) submit(repo string, labels []string, n, durationMS int) []int64 {
	e.t.Helper()
	ids, err := lcSubmit(e.base, repo, labels, n, durationMS)
	if err != nil {
		e.t.Fatal(err)
	}
	return ids
}

// waitJobs waits until every job in ids completed, failing after timeout or
// when the daemon (if given) exits.
func (e *lcEnv) waitJobs(ids []int64, timeout time.Duration, d *daemon) map[int64]ghsim.CtlJob {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		js := e.jobs()
		done := 0
		for _, id := range ids {
			if js[id].Status == "completed" {
				done++
			}
		}
		if done == len(ids) {
			return js
		}
		if d != nil && !d.running() {
			e.t.Fatalf("%d of %d jobs completed; %s exited", done, len(ids), d.name)
		}
		if time.Now().After(deadline) {
			var left []string
			for _, id := range ids {
				if j := js[id]; j.Status != "completed" {
					left = append(left, fmt.Sprintf("%d:%s", id, j.Status))
				}
			}
			e.t.Fatalf("%d of %d jobs completed after %s; not completed: %v", done, len(ids), timeout, left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkSucceeded reports jobs that did not succeed, or ran on runners of
// other pools than want.
func (e *lcEnv) checkSucceeded(js map[int64]ghsim.CtlJob, ids []int64, pools []string) {
	e.t.Helper()
	for _, id := range ids {
		j := js[id]
		if j.Conclusion == nil || *j.Conclusion != "success" || j.RunnerName == nil {
			e.t.Errorf("job %d: %+v", id, j)
			continue
		}
		if lcPoolOf(*j.RunnerName, pools) == "" {
			e.t.Errorf("job %d ran on %s, not a runner of %v", id, *j.RunnerName, pools)
		}
	}
}

// status reads the daemon's state through `scaler status -json`.
func (e *lcEnv) status() (admin.Status, error) {
	var out, errOut strings.Builder
	if code := cli(context.Background(), []string{"status", "-addr", e.adminAddr, "-json"}, map[string]string{}, &out, &errOut); code != 0 {
		return admin.Status{}, fmt.Errorf("scaler status -json: exit %d: %s", code, errOut.String())
	}
	var st admin.Status
	if err := json.Unmarshal([]byte(out.String()), &st); err != nil {
		return admin.Status{}, fmt.Errorf("scaler status -json: %v", err)
	}
	return st, nil
}

// waitDaemonEmpty waits until the daemon tracks no queued or running job and no
// runner in any state: nothing left behind in its own account either.
func (e *lcEnv) waitDaemonEmpty(timeout time.Duration) admin.Status {
	e.t.Helper()
	var st admin.Status
	var err error
	waitUntil(e.t, "the daemon tracking no jobs and no runners", timeout, func() bool {
		if st, err = e.status(); err != nil {
			return false
		}
		if st.Jobs.Queued != 0 || st.Jobs.Running != 0 {
			return false
		}
		for _, p := range st.Pools {
			for _, n := range p.Runners {
				if n != 0 {
					return false
				}
			}
		}
		return true
	}, func() string { return fmt.Sprintf("last status %+v, err %v", st, err) })
	return st
}

// waitNothingLeft waits until the simulator lists no runner of pools and no
// runner process is left under the state directory.
func (e *lcEnv) waitNothingLeft(timeout time.Duration, pools ...string) {
	e.t.Helper()
	var left []ghsim.CtlRunner
	procs := 0
	waitUntil(e.t, "no runners of "+strings.Join(pools, ", ")+" and no runner processes left", timeout, func() bool {
		left = e.runnersOf(pools...)
		procs = signalRunnersUnder(e.dir, 0)
		return len(left) == 0 && procs == 0
	}, func() string { return fmt.Sprintf("runners %+v, %d processes", left, procs) })
}

// metric reads one series from the daemon's /metrics, e.g.
// `runnerscaler_webhook_redeliveries_total{outcome="requested"}`.
func (e *lcEnv) metric(series string) (float64, error) {
	resp, err := http.Get("http://" + e.metricsAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no series %s", series)
}

const lcRequested = `runnerscaler_webhook_redeliveries_total{outcome="requested"}`

// stop ends the daemon (SIGTERM, exit 0), then the runner processes it
// leaves running, then the simulator, and checks that no secret was
// printed.
func (e *lcEnv) stop(d daemon) {
	e.t.Helper()
	if d.running() {
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			e.t.Fatal(err)
		}
		if code := d.exitCode(e.t); code != 0 {
			e.t.Errorf("%s exit %d after SIGTERM", d.name, code)
		}
	}
	signalRunnersUnder(e.dir, syscall.SIGTERM)
	waitFor(e.t, "the runner processes gone", func() bool { return signalRunnersUnder(e.dir, 0) == 0 })
	if err := e.sim.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		e.t.Fatal(err)
	}
	if code := e.sim.exitCode(e.t); code != 0 {
		e.t.Errorf("scaler sim exit %d after SIGTERM", code)
	}
	e.checkNoLeak()
	e.t.Logf("total %s", time.Since(e.start).Round(time.Millisecond))
}

// checkNoLeak looks for the PAT, the webhook secret and the App key in the
// output of every process started.
func (e *lcEnv) checkNoLeak() {
	e.t.Helper()
	priv, _ := lcAppKey(e.t)
	secrets := []string{"DONOTLEAK", "PRIVATE KEY"}
	// A line from the middle of the key's base64 body.
	if lines := strings.Split(strings.TrimSpace(string(priv)), "\n"); len(lines) > 4 {
		secrets = append(secrets, lines[len(lines)/2])
	}
	for _, p := range e.procs {
		out := p.stdout.String() + p.stderr.String()
		for _, s := range secrets {
			if strings.Contains(out, s) {
				e.t.Errorf("%s printed a secret (%.12s...)", p.name, s)
			}
		}
		if strings.HasPrefix(p.name, "scaler run") {
			for what, re := range daemonSecretShapes {
				if m := re.FindString(out); m != "" {
					e.t.Errorf("%s printed what looks like %s (%.8s...)", p.name, what, m)
				}
			}
		}
	}
}

// daemonSecretShapes are the credentials the daemon handles but never
// writes, by the simulator's formats: installation tokens, JIT configs (a
// base64 document), registration tokens, runner session credentials.
var daemonSecretShapes = map[string]*regexp.Regexp{
	"an installation token": regexp.MustCompile(`ghs_[A-Za-z0-9]{20,}`),
	"a JIT config":          regexp.MustCompile(`ey[A-Za-z0-9+/=]{200,}`),
	"a registration token":  regexp.MustCompile(`\b[A-Z2-7]{29}\b`),
	"a runner credential":   regexp.MustCompile(`simr_[A-Za-z0-9_-]{10,}`),
}

// waitUntil polls cond every 20 ms until it holds, failing after timeout
// with what describe says.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			msg := ""
			if describe != nil {
				msg = ": " + describe()
			}
			t.Fatalf("timed out after %s waiting for %s%s", timeout, what, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lcLine is one line of the daemon's JSON log.
type lcLine struct {
	Level    string `json:"level"`
	Msg      string `json:"msg"`
	Action   string `json:"action"`
	Reason   string `json:"reason"`
	Runner   string `json:"runner"`
	Pool     string `json:"pool"`
	Instance string `json:"instance"`
	JobID    int64  `json:"job_id"`
	Error    string `json:"error"`
}

func lcLog(p *proc) []lcLine {
	var out []lcLine
	for _, line := range strings.Split(p.stderr.String(), "\n") {
		var l lcLine
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg != "" {
			out = append(out, l)
		}
	}
	return out
}

// lcProcsIn returns the live (not zombie) processes whose working
// directory is dir or under it. Linux only (/proc).
func lcProcsIn(dir string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", ent.Name(), "cwd"))
		if err != nil || (cwd != dir && !strings.HasPrefix(cwd, dir+string(filepath.Separator))) {
			continue
		}
		if !lcAlive(pid) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// lcAlive reports whether pid is a live process (not a zombie).
func lcAlive(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] != 'Z' && stat[i+2] != 'X'
}

// lcRecord is a record of the local provisioner's state file.
type lcRecord struct {
	ID         string `json:"id"`
	RunnerName string `json:"runner_name"`
	DaemonID   string `json:"daemon_id"`
	PID        int    `json:"pid"`
	Dir        string `json:"dir"`
	State      string `json:"state"`
}

// instanceRecords reads the local provisioner's state file.
func (e *lcEnv) instanceRecords() []lcRecord {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, "local", "instances.json"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		e.t.Fatal(err)
	}
	var body struct {
		Instances []lcRecord `json:"instances"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		// Replaced atomically, so never half written.
		e.t.Fatalf("instances.json: %v\n%s", err, b)
	}
	return body.Instances
}

// lcSampler records, every ~50 ms, the most runners each pool had in the
// simulator.
type lcSampler struct {
	pools   []string
	mu      sync.Mutex
	samples int
	most    map[string]int
	errs    []error
	stop    chan struct{}
	done    chan struct{}
}

func startLCSampler(t *testing.T, base string, pools ...string) *lcSampler {
	s := &lcSampler{pools: pools, most: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			rs, err := e2eRunners(base)
			s.mu.Lock()
			if err != nil {
				s.errs = append(s.errs, err)
			} else {
				s.samples++
				count := map[string]int{}
				for _, r := range rs {
					if p := lcPoolOf(r.Name, s.pools); p != "" {
						count[p]++
					}
				}
				for p, n := range count {
					s.most[p] = max(s.most[p], n)
				}
			}
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(s.halt)
	return s
}

func (s *lcSampler) halt() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// check stops the sampler and reports a pool over its max_runners.
func (s *lcSampler) check(t *testing.T, maxRunners map[string]int) {
	t.Helper()
	s.halt()
	s.mu.Lock()
	defer s.mu.Unlock()
	t.Logf("%d samples of /_sim/runners; most runners per pool %v (max_runners %v)", s.samples, s.most, maxRunners)
	if len(s.errs) > 0 {
		t.Errorf("sampler: %d errors, first %v", len(s.errs), s.errs[0])
	}
	if s.samples < 10 {
		t.Errorf("only %d samples", s.samples)
	}
	for p, n := range s.most {
		if n > maxRunners[p] {
			t.Errorf("pool %s had %d runners, max_runners %d", p, n, maxRunners[p])
		}
	}
}

// TestE2EDroppedWebhooks: the simulator drops 20% of the webhook deliveries
// (seeded) during a 100-job burst over two pools; the daemon, a GitHub App,
// redelivers the failed ones. Every job completes, nothing is left behind
// (no runners in the simulator, no runner processes, nothing queued, running
// or launched in the daemon's account), and every dropped delivery was
// redelivered.
func TestE2EDroppedWebhooks(t *testing.T) {
	e := newLCEnv(t, lcSetup{
		seed: 20,
		pools: `  - name: small
    scope: {org: octo-org}
    labels: [small]
    max_runners: 10
    provisioner: local
  - name: large
    scope: {org: octo-org}
    labels: [large]
    max_runners: 10
    provisioner: local`,
		lifecycle: `  reconcile_interval: 2s
  bootstrap_timeout: 30s
  offline_timeout: 10s
  confirm_interval: 100ms
  removal_settle: 300ms
  orphan_grace: 5s
  redeliver_interval: 1s
  stale_job_after: 15s`,
	})
	pools := []string{"small", "large"}
	d := e.startDaemon("scaler run")
	var hooks ghsim.HookSettings
	e.c.do("POST", "_sim/webhooks", map[string]any{"drop_probability": 0.2}, http.StatusOK, &hooks)
	if hooks.DropProbability != 0.2 {
		t.Fatalf("webhook settings %+v", hooks)
	}
	s0 := e.stats()
	smp := startLCSampler(t, e.base, pools...)

	burst := time.Now()
	ids := append(e.submit("octo-org/app", []string{"small"}, 60, 200), e.submit("octo-org/app", []string{"large"}, 40, 200)...)
	js := e.waitJobs(ids, 70*time.Second, &d)
	t.Logf("100-job burst completed in %s", time.Since(burst).Round(time.Millisecond))
	e.checkSucceeded(js, ids, pools)
	e.waitNothingLeft(20*time.Second, pools...)
	smp.check(t, map[string]int{"small": 10, "large": 10})
	st := e.waitDaemonEmpty(20 * time.Second)
	t.Logf("daemon status after the burst: pools %+v, jobs %+v", st.Pools, st.Jobs)

	// Every dropped delivery gets redelivered (a redelivery is never dropped).
	var s1 ghsim.StatsSnapshot
	var requested float64
	var err error
	waitUntil(t, "every dropped delivery redelivered", 20*time.Second, func() bool {
		s1 = e.stats()
		requested, err = e.metric(lcRequested)
		return err == nil && int(requested) >= s1.Webhooks.Dropped-s0.Webhooks.Dropped
	}, func() string {
		return fmt.Sprintf("%d dropped, %v redeliveries requested (%v)", s1.Webhooks.Dropped-s0.Webhooks.Dropped, requested, err)
	})
	dropped := s1.Webhooks.Dropped - s0.Webhooks.Dropped
	t.Logf("webhooks: %d sent (redeliveries included), %d dropped, %d failed otherwise; redeliveries requested by the daemon: %v",
		s1.Webhooks.Sent-s0.Webhooks.Sent, dropped, s1.Webhooks.Failed-s0.Webhooks.Failed, requested)
	if dropped == 0 || requested == 0 {
		t.Errorf("%d webhooks dropped, %v redelivered: the test tested nothing", dropped, requested)
	}
	if s1.Violations.BusyRunnerDeleted != 0 || s1.Violations.JobRunnerKilled != 0 {
		t.Errorf("violations %+v", s1.Violations)
	}
	stale, _ := e.metric(`runnerscaler_stale_job_checks_total{outcome="in_progress"}`)
	staleDone, _ := e.metric(`runnerscaler_stale_job_checks_total{outcome="completed"}`)
	t.Logf("stale job checks: %v found in progress, %v found completed", stale, staleDone)
	e.stop(d)
}

// TestE2EKilledRunners: with min_idle 5, the five idle runners' processes
// are SIGKILLed from outside. Within two reconcile intervals (plus a
// margin) their registrations are gone from the simulator and their
// instances from the provisioner (directory and state file), and five new
// idle runners replace them; jobs queued afterwards complete.
func TestE2EKilledRunners(t *testing.T) {
	const reconcile = 2 * time.Second
	e := newLCEnv(t, lcSetup{
		seed: 21,
		pools: `  - name: warm
    scope: {org: octo-org}
    labels: [warm]
    min_idle: 5
    max_runners: 8
    provisioner: local`,
		lifecycle: `  reconcile_interval: 2s
  bootstrap_timeout: 30s
  offline_timeout: 4s
  confirm_interval: 100ms
  removal_settle: 300ms
  orphan_grace: 4s
  redeliver_interval: 2s`,
	})
	d := e.startDaemon("scaler run")
	idleOnline := func(exclude []string) []ghsim.CtlRunner {
		var out []ghsim.CtlRunner
		for _, r := range e.runnersOf("warm") {
			if r.Status == "online" && !r.Busy && !slices.Contains(exclude, r.Name) {
				out = append(out, r)
			}
		}
		return out
	}
	var victims []string
	waitUntil(t, "five idle warm runners", 30*time.Second, func() bool {
		rs := idleOnline(nil)
		victims = victims[:0]
		for _, r := range rs {
			victims = append(victims, r.Name)
		}
		st, err := e.status()
		return len(rs) == 5 && len(e.runnersOf("warm")) == 5 && err == nil && st.Pools[0].Runners[admin.RunnerIdle] == 5
	}, func() string { return fmt.Sprintf("runners %+v", e.runnersOf("warm")) })
	sort.Strings(victims)
	t.Logf("five idle runners after %s: %v", time.Since(e.start).Round(time.Millisecond), victims)

	instances := filepath.Join(e.dir, "local", "instances")
	var pids []int
	for _, name := range victims {
		ps := lcProcsIn(filepath.Join(instances, name))
		if len(ps) == 0 {
			t.Fatalf("no process found for runner %s under %s", name, instances)
		}
		pids = append(pids, ps...)
	}
	killed := time.Now()
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", pid, err)
		}
	}
	t.Logf("SIGKILLed %d processes of the five runners: %v", len(pids), pids)

	// Cleaned up: not registered, no instance (directory, state file), no
	// process.
	leftovers := func() []string {
		var out []string
		for _, r := range e.runnersOf("warm") {
			if slices.Contains(victims, r.Name) {
				out = append(out, "registered "+r.Name+" ("+r.Status+")")
			}
		}
		for _, rec := range e.instanceRecords() {
			if slices.Contains(victims, rec.RunnerName) {
				out = append(out, "instance "+rec.ID+" ("+rec.State+")")
			}
		}
		for _, name := range victims {
			if _, err := os.Stat(filepath.Join(instances, name)); err == nil {
				out = append(out, "directory of "+name)
			}
		}
		return out
	}
	limit := 2*reconcile + 2*time.Second
	waitUntil(t, "the killed runners cleaned up within two reconcile intervals", limit, func() bool { return len(leftovers()) == 0 },
		func() string { return strings.Join(leftovers(), "; ") })
	t.Logf("killed runners unregistered and their instances deleted %s after the kill (limit %s)",
		time.Since(killed).Round(time.Millisecond), limit)
	for _, pid := range pids {
		if lcAlive(pid) {
			t.Errorf("killed process %d still alive", pid)
		}
	}

	var fresh []ghsim.CtlRunner
	waitUntil(t, "five new idle runners", 30*time.Second, func() bool {
		fresh = idleOnline(victims)
		return len(fresh) == 5
	}, func() string { return fmt.Sprintf("runners %+v", e.runnersOf("warm")) })
	t.Logf("five new idle runners %s after the kill", time.Since(killed).Round(time.Millisecond))
	var failedLogged []string
	for _, l := range lcLog(d.proc) {
		if l.Msg == "runner failed" && slices.Contains(victims, l.Runner) {
			failedLogged = append(failedLogged, l.Runner+": "+l.Reason[:min(len(l.Reason), 40)])
		}
	}
	t.Logf("the daemon's account of the killed runners: %q", failedLogged)
	if len(failedLogged) != len(victims) {
		t.Errorf("%d of %d killed runners logged as failed", len(failedLogged), len(victims))
	}

	ids := e.submit("octo-org/app", []string{"warm"}, 3, 200)
	js := e.waitJobs(ids, 30*time.Second, &d)
	e.checkSucceeded(js, ids, []string{"warm"})
	waitUntil(t, "five idle warm runners again after the jobs", 30*time.Second, func() bool {
		return len(idleOnline(nil)) == 5 && len(e.runnersOf("warm")) == 5
	}, func() string { return fmt.Sprintf("runners %+v", e.runnersOf("warm")) })
	if v := e.stats().Violations; v.BusyRunnerDeleted != 0 || v.JobRunnerKilled != 0 {
		t.Errorf("violations %+v", v)
	}
	e.stop(d)
}

// TestE2EBusyLagRemovals: with the simulator's busy_lag at 30 s (GitHub
// reports busy: false, and deletes succeed, for 30 s after a runner takes a
// job), a persistent pool with idle_timeout 0 removes its idle runners
// while bursts of jobs keep arriving. No busy runner may be deleted and no
// runner killed under its job; every job completes.
func TestE2EBusyLagRemovals(t *testing.T) {
	const maxRunners = 10
	e := newLCEnv(t, lcSetup{
		seed:    22,
		busyLag: 30 * time.Second,
		pools: `  - name: churn
    scope: {org: octo-org}
    labels: [churn]
    max_runners: 10
    ephemeral: false
    registration: token
    idle_timeout: 0s
    max_concurrent_creates: 10
    provisioner: local`,
		lifecycle: `  reconcile_interval: 2s
  bootstrap_timeout: 30s
  offline_timeout: 10s
  confirm_interval: 100ms
  removal_settle: 1s
  orphan_grace: 10s
  redeliver_interval: 2s`,
		maxInstances: 20,
	})
	d := e.startDaemon("scaler run")
	smp := startLCSampler(t, e.base, "churn")

	type counts struct{ removed, removedDeleted, planned, kept int }
	count := func() (c counts, abortReasons map[string]int) {
		abortReasons = map[string]int{}
		for _, l := range lcLog(d.proc) {
			switch {
			case l.Msg == "runner removed":
				c.removed++
				if !strings.Contains(l.Reason, "not registered with GitHub") && !strings.Contains(l.Reason, "GitHub no longer has it") {
					c.removedDeleted++
				}
			case l.Msg == "decision" && l.Action == "remove":
				c.planned++
			case l.Msg == "decision" && l.Action == "keep":
				c.kept++
				r := l.Reason
				if _, after, ok := strings.Cut(r, "removal aborted: "); ok {
					r = after
				}
				r = regexp.MustCompile(`job \d+`).ReplaceAllString(r, "job N")
				abortReasons[r]++
			}
		}
		return c, abortReasons
	}

	// Bursts of max_runners jobs, each as soon as the previous one has
	// completed and at least 1.7 s after it (a removal takes two confirm
	// intervals and the settle, 1.2 s): runners go idle, most are removed,
	// and some are being removed when the next jobs arrive.
	// About 3 removals a second here: 200 take a minute, longer on a
	// loaded machine.
	const target, window = 200, 150 * time.Second
	var ids []int64
	streamStart := time.Now()
	var pending []int64
	var last time.Time
	var c counts
	for {
		c, _ = count()
		if c.removed >= target || time.Since(streamStart) > window {
			break
		}
		if !d.running() {
			t.Fatalf("the daemon exited: %s", d.stderr.String())
		}
		js := e.jobs()
		done := true
		for _, id := range pending {
			if js[id].Status != "completed" {
				done = false
			}
		}
		if done && time.Since(last) >= 1700*time.Millisecond {
			pending = e.submit("octo-org/app", []string{"churn"}, maxRunners, 200)
			ids = append(ids, pending...)
			last = time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	stream := time.Since(streamStart)
	js := e.waitJobs(ids, 40*time.Second, &d)
	e.checkSucceeded(js, ids, []string{"churn"})
	// Idle runners all go (idle_timeout 0, min_idle 0).
	e.waitNothingLeft(30*time.Second, "churn")
	smp.check(t, map[string]int{"churn": maxRunners})

	c, aborts := count()
	st := e.stats()
	t.Logf("%d jobs over %s; removals: %d runners removed (%d through DELETE, the rest found already gone), %d removals planned, %d aborted (kept)",
		len(ids), stream.Round(time.Millisecond), c.removed, c.removedDeleted, c.planned, c.kept)
	t.Logf("aborted removals by reason: %v", aborts)
	t.Logf("violations: busy_runner_deleted %d, job_runner_killed %d; DELETE runner calls %d",
		st.Violations.BusyRunnerDeleted, st.Violations.JobRunnerKilled, st.APICalls["DELETE /orgs/{org}/actions/runners/{runner_id}"])
	if st.Violations.BusyRunnerDeleted != 0 || st.Violations.JobRunnerKilled != 0 {
		t.Errorf("violations %+v", st.Violations)
	}
	if c.removed < target {
		t.Errorf("only %d removals (want %d) within %s", c.removed, target, window)
	}
	e.stop(d)
}

// TestE2EForeignRunnersUntouched: runners registered directly in the
// simulator (one named like our pool's runners but with another daemon id,
// one named like ours with a longer id, a plain one running as a process,
// all but that one offline) and an instance another daemon left in the
// local provisioner's work_dir are never deleted, however long the daemon
// reconciles with short grace periods; an orphaned registration of our own
// is deleted meanwhile, which shows reconciliation did run.
func TestE2EForeignRunnersUntouched(t *testing.T) {
	const ourID, foreignID = "rs-00000000aaaaaa", "rs-ffffffffzzzzzz" // short forms aaaaaa, zzzzzz
	e := newLCEnv(t, lcSetup{
		seed:     23,
		daemonID: ourID,
		pools: `  - name: small
    scope: {org: octo-org}
    labels: [small]
    min_idle: 1
    max_runners: 3
    provisioner: local`,
		lifecycle: `  reconcile_interval: 1s
  bootstrap_timeout: 3s
  offline_timeout: 2s
  confirm_interval: 100ms
  removal_settle: 300ms
  orphan_grace: 2s
  redeliver_interval: 2s`,
	})
	type jit struct {
		Runner struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
		} `json:"runner"`
		Encoded string `json:"encoded_jit_config"`
	}
	register := func(name string, labels ...string) jit {
		var out jit
		e.c.do("POST", "orgs/octo-org/actions/runners/generate-jitconfig", map[string]any{
			"name": name, "runner_group_id": 1, "labels": append([]string{"self-hosted", "linux", "x64"}, labels...), "work_folder": "_work",
		}, http.StatusCreated, &out)
		return out
	}
	foreign := map[string]int64{} // name -> id: must all survive
	for _, name := range []string{"small-zzzzzz-00000001", "small-aaaaaax-00000003", "small-legacy"} {
		foreign[name] = register(name, "small").Runner.ID // offline: never started
	}
	// A foreign runner process, online and idle (its label matches no job).
	box := register("build-box", "build")
	foreign["build-box"] = box.Runner.ID
	boxProc := startProc(t, "build-box runner", t.TempDir(), []string{"ACTIONS_RUNNER_INPUT_JITCONFIG=" + box.Encoded}, scalerExe(t), "sim-runner")
	// A foreign instance: another daemon's local provisioner on the same
	// work_dir, closed before ours starts (the work_dir is locked while one
	// runs), its runner left running as a daemon restart leaves it.
	fj := register("small-zzzzzz-00000002", "foreign")
	foreign["small-zzzzzz-00000002"] = fj.Runner.ID
	other, err := local.New(map[string]any{
		"work_dir": filepath.Join(e.dir, "local"), "cache_dir": filepath.Join(e.dir, "cache"), "grace_period": "5s",
		"extra_env": map[string]any{"SCALER_TEST_EXEC_MAIN": "1", "GORACE": "atexit_sleep_ms=0"},
	}, provisioner.Env{Name: "local", DaemonID: foreignID, StateDir: e.dir,
		Downloads: scaler.RunnerDownloads(e.patClient(), ghapi.Org("octo-org"))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inst, err := other.Create(ctx, provisioner.Spec{
		RunnerName: "small-zzzzzz-00000002", Pool: "small", Labels: []string{"self-hosted", "linux", "x64", "foreign"},
		RunnerGroup: "Default", ScopeURL: "https://github.com/octo-org", OS: "linux", Arch: "x64",
		Registration: provisioner.Registration{JITConfig: secret.String(fj.Encoded)},
	})
	if err != nil {
		t.Fatalf("foreign instance: %v", err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	var foreignRec lcRecord
	for _, r := range e.instanceRecords() {
		if r.ID == inst.ID {
			foreignRec = r
		}
	}
	if foreignRec.PID == 0 || foreignRec.DaemonID != foreignID {
		t.Fatalf("foreign instance record %+v", foreignRec)
	}
	// Positive control: a registration of ours (our pool and daemon id)
	// with no runner in the store and no instance; reconciliation deletes
	// it after orphan_grace.
	control := register("small-aaaaaa-0badc0de", "small")
	waitUntil(t, "the foreign runners online and offline as meant", 20*time.Second, func() bool {
		ok := 0
		for _, r := range e.runnersOf("small", "build") {
			switch {
			case (r.Name == "build-box" || r.Name == "small-zzzzzz-00000002") && r.Status == "online":
				ok++
			case r.Name != "build-box" && r.Name != "small-zzzzzz-00000002" && r.Status == "offline":
				ok++
			}
		}
		return ok == len(foreign)+1
	}, func() string { return fmt.Sprintf("%+v", e.runnersOf("small", "build")) })

	const listRoute = "GET /orgs/{org}/actions/runners"
	d := e.startDaemon("scaler run")
	up := time.Now()
	waitUntil(t, "our orphaned registration deleted", 20*time.Second, func() bool {
		for _, r := range e.runnersOf("small") {
			if r.ID == control.Runner.ID {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("%+v", e.runnersOf("small")) })
	t.Logf("our orphaned registration deleted %s after the daemon started", time.Since(up).Round(time.Millisecond))
	// Well past every grace: as many more listings of the scope's runners
	// (reconcile passes) as make three times the longest grace.
	l0 := e.stats().APICalls[listRoute]
	waitUntil(t, "six more reconcile passes", 30*time.Second, func() bool { return e.stats().APICalls[listRoute]-l0 >= 6 }, nil)
	// Our own runners meanwhile serve jobs.
	ids := e.submit("octo-org/app", []string{"small"}, 3, 200)
	js := e.waitJobs(ids, 30*time.Second, &d)
	for _, id := range ids {
		if j := js[id]; j.RunnerName == nil || !strings.HasPrefix(*j.RunnerName, "small-aaaaaa-") {
			t.Errorf("job %d ran on %v, not one of our runners", id, j.RunnerName)
		}
	}
	t.Logf("the daemon ran for %s (reconcile_interval 1s, orphan_grace 2s, offline_timeout 2s, bootstrap_timeout 3s)",
		time.Since(up).Round(time.Millisecond))

	byName := map[string]ghsim.CtlRunner{}
	for _, r := range e.runnersOf("small", "build") {
		byName[r.Name] = r
	}
	for name, id := range foreign {
		if r, ok := byName[name]; !ok || r.ID != id {
			t.Errorf("foreign runner %s (id %d) is gone: %+v", name, id, r)
		}
	}
	if !boxProc.running() {
		t.Errorf("the foreign runner process ended: %s", boxProc.stderr.String())
	}
	if !lcAlive(foreignRec.PID) {
		t.Errorf("the foreign instance's process %d ended", foreignRec.PID)
	}
	if _, err := os.Stat(foreignRec.Dir); err != nil {
		t.Errorf("the foreign instance's directory: %v", err)
	}
	found := false
	for _, r := range e.instanceRecords() {
		found = found || r.ID == inst.ID && r.DaemonID == foreignID
	}
	if !found {
		t.Errorf("the foreign instance's record is gone from the state file")
	}
	for _, l := range lcLog(d.proc) {
		for name := range foreign {
			if l.Runner == name || strings.Contains(l.Reason, name) {
				t.Errorf("the daemon acted on foreign runner %s: %+v", name, l)
			}
		}
	}
	if v := e.stats().Violations; v.BusyRunnerDeleted != 0 || v.JobRunnerKilled != 0 {
		t.Errorf("violations %+v", v)
	}
	// The foreign runner process goes first, so the simulator has no
	// runner connection left to wait for when it stops.
	if err := boxProc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := boxProc.exitCode(t); code != 0 {
		t.Errorf("build-box runner exit %d after SIGTERM", code)
	}
	e.procs = append(e.procs, boxProc)
	e.stop(d)
}

// TestE2EDaemonKilledMidBurst: the daemon (a GitHub App) is SIGKILLed when
// about half of a 40-job burst has started; 10 more jobs are queued while it
// is down (their deliveries fail: connection refused). Restarted on the same
// state, config and ports, it completes all 50 jobs without ever exceeding
// max_runners, leaves nothing behind, and the jobs queued while it was down
// are recovered through redelivery of their failed deliveries.
func TestE2EDaemonKilledMidBurst(t *testing.T) {
	e := newLCEnv(t, lcSetup{
		seed: 24,
		pools: `  - name: small
    scope: {org: octo-org}
    labels: [small]
    max_runners: 6
    provisioner: local
  - name: large
    scope: {org: octo-org}
    labels: [large]
    max_runners: 4
    provisioner: local`,
		lifecycle: `  reconcile_interval: 2s
  bootstrap_timeout: 30s
  offline_timeout: 10s
  confirm_interval: 100ms
  removal_settle: 300ms
  orphan_grace: 5s
  redeliver_interval: 1s`,
	})
	pools := []string{"small", "large"}
	maxRunners := map[string]int{"small": 6, "large": 4}
	first := e.startDaemon("scaler run (first)")
	smp := startLCSampler(t, e.base, pools...)

	// Long jobs: runners are still busy when the daemon comes back.
	ids := append(e.submit("octo-org/app", []string{"small"}, 24, 1500), e.submit("octo-org/app", []string{"large"}, 16, 1500)...)
	var started int
	waitUntil(t, "about half of the burst started", 40*time.Second, func() bool {
		js := e.jobs()
		started = 0
		for _, id := range ids {
			if js[id].Status != "queued" {
				started++
			}
		}
		return started >= len(ids)/2
	}, nil)
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	sBefore := e.stats()
	t.Logf("daemon SIGKILLed with %d of %d jobs started (%d completed)", started, len(ids), sBefore.Jobs.Completed)

	down := append(e.submit("octo-org/app", []string{"small"}, 6, 500), e.submit("octo-org/app", []string{"large"}, 4, 500)...)
	gh := e.appClient()
	type delivery struct {
		id         int64
		guid       string
		ok, redone bool
		status     string
	}
	// queuedOf maps each job of want to its "queued" deliveries, from the
	// App's delivery log.
	payloadJob := map[int64]int64{} // delivery id -> job id (queued deliveries read so far)
	queuedOf := func(want []int64) (map[int64][]delivery, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var all []*ghapi.HookDelivery
		cursor := ""
		for {
			page, next, err := gh.ListHookDeliveries(ctx, ghapi.ListDeliveriesOptions{Cursor: cursor})
			if err != nil {
				return nil, err
			}
			all = append(all, page...)
			if next == "" {
				break
			}
			cursor = next
		}
		out := map[int64][]delivery{}
		for _, hd := range all {
			if hd.GetAction() != "queued" {
				continue
			}
			jobID, seen := payloadJob[hd.GetID()]
			if !seen {
				full, err := gh.GetHookDelivery(ctx, hd.GetID())
				if err != nil {
					return nil, err
				}
				var p struct {
					WorkflowJob struct {
						ID int64 `json:"id"`
					} `json:"workflow_job"`
				}
				if full.Request != nil && full.Request.RawPayload != nil {
					_ = json.Unmarshal(*full.Request.RawPayload, &p)
				}
				jobID = p.WorkflowJob.ID
				payloadJob[hd.GetID()] = jobID
			}
			if slices.Contains(want, jobID) {
				out[jobID] = append(out[jobID], delivery{id: hd.GetID(), guid: hd.GetGUID(),
					ok: hd.GetStatusCode() >= 200 && hd.GetStatusCode() < 300, redone: hd.GetRedelivery(), status: hd.GetStatus()})
			}
		}
		return out, nil
	}
	var lastErr error
	var failedWhileDown map[int64][]delivery
	waitUntil(t, "the deliveries of the jobs queued while the daemon was down recorded as failed", 20*time.Second, func() bool {
		m, err := queuedOf(down)
		if err != nil {
			lastErr = err
			return false
		}
		failedWhileDown = m
		for _, id := range down {
			ds := m[id]
			if len(ds) != 1 || ds[0].ok {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("%v (error %v)", failedWhileDown, lastErr) })
	t.Logf("while the daemon was down, the queued delivery of job %d failed with %q", down[0], failedWhileDown[down[0]][0].status)
	sDown := e.stats()
	live := len(lcProcsIn(filepath.Join(e.dir, "local", "instances")))
	t.Logf("while the daemon was down: %d more jobs completed, %d webhook deliveries failed; %d runner processes alive at the restart",
		sDown.Jobs.Completed-sBefore.Jobs.Completed, sDown.Webhooks.Failed-sBefore.Webhooks.Failed, live)

	second := e.startDaemon("scaler run (restarted)")
	all := append(slices.Clone(ids), down...)
	js := e.waitJobs(all, 70*time.Second, &second)
	e.checkSucceeded(js, all, pools)
	e.waitNothingLeft(20*time.Second, pools...)
	smp.check(t, maxRunners)
	e.waitDaemonEmpty(20 * time.Second)

	// The jobs queued while the daemon was down: their queued deliveries
	// were redelivered, successfully, by the restarted daemon's request.
	var recovered map[int64][]delivery
	waitUntil(t, "the failed queued deliveries redelivered", 20*time.Second, func() bool {
		m, err := queuedOf(down)
		if err != nil {
			lastErr = err
			return false
		}
		recovered = m
		for _, id := range down {
			ok := false
			for _, dl := range m[id] {
				ok = ok || dl.redone && dl.ok
			}
			if !ok {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("%v (error %v)", recovered, lastErr) })
	requested, err := e.metric(lcRequested)
	if err != nil || requested == 0 {
		t.Errorf("redeliveries requested by the restarted daemon: %v (%v)", requested, err)
	}
	var adopted, procAdopted, redelivered int
	matched := map[int64]bool{}
	for _, l := range lcLog(second.proc) {
		switch l.Msg {
		case "job matched":
			matched[l.JobID] = true
		case "reconcile: instance adopted":
			adopted++
		case "runner adopted":
			procAdopted++
		case "failed webhook delivery redelivered":
			redelivered++
		}
	}
	for _, id := range down {
		if !matched[id] {
			t.Errorf("job %d, queued while the daemon was down, was not matched by the restarted daemon", id)
		}
	}
	s := e.stats()
	t.Logf("restarted daemon: %v redeliveries requested (%d logged); %d live runner processes adopted by the provisioner, %d instances adopted by reconciliation; webhooks overall: %d sent, %d failed",
		requested, redelivered, procAdopted, adopted, s.Webhooks.Sent, s.Webhooks.Failed)
	if s.Violations.BusyRunnerDeleted != 0 || s.Violations.JobRunnerKilled != 0 {
		t.Errorf("violations %+v", s.Violations)
	}
	e.stop(second) // checks both daemons' output for secrets
}

// The leak check's shapes match what the simulator really hands out.
func TestDaemonSecretShapes(t *testing.T) {
	sim, err := ghsim.New(ghsim.Options{PAT: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	org := world.Scope{Kind: world.Org, Name: "octo-org"}
	_, jit, err := sim.GenerateJITConfig(world.RunnerInput{Scope: org, Name: "shape-1", Labels: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := sim.RegistrationToken(org)
	for what, sample := range map[string]string{"a JIT config": jit, "a registration token": tok} {
		if !daemonSecretShapes[what].MatchString(`{"msg":"x","v":"` + sample + `"}`) {
			t.Errorf("the shape of %s does not match the simulator's %.8s...", what, sample)
		}
	}
}
