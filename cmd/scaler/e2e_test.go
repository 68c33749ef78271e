package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	"github.com/runnerscaler/runnerscaler/internal/ghsim"
)

// End-to-end acceptance tests of issue #6: `scaler sim` and `scaler run` as
// separate processes over loopback, the daemon's local provisioner running
// the simulator's runner package, whose scripts exec this test binary as
// `scaler sim-runner` (see TestMain).

const e2eConfig = `
github:
  api_url: SIMURL
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
runner_groups:
  - scope: {org: octo-labs}
    name: gpu
    visibility: selected
    repositories: [octo-labs/ml]
pools:
  - name: small
    scope: {org: octo-org}
    labels: [small]
    max_runners: 8
    provisioner: local
  - name: gpu
    scope: {org: octo-labs}
    runner_group: gpu
    labels: [gpu]
    max_runners: 4
    provisioner: local
  - name: warm
    scope: {org: octo-org}
    labels: [warm]
    min_idle: 2
    max_runners: 3
    provisioner: local
provisioners:
  local:
    type: local
    settings:
      work_dir: DIR/local
      cache_dir: DIR/cache
      max_instances: 30
      grace_period: 5s
      extra_env:
        SCALER_TEST_EXEC_MAIN: "1"
        GORACE: atexit_sleep_ms=0
`

// e2eMax is each pool's max_runners in e2eConfig.
var e2eMax = map[string]int{"small": 8, "gpu": 4, "warm": 3}

// e2eGet fetches base+path as JSON (no t: the sampler calls it).
func e2eGet(base, path, pat string, out any) error {
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	if pat != "" {
		req.Header.Set("Authorization", "Bearer "+pat)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d: %s", path, resp.StatusCode, raw)
	}
	return json.Unmarshal(raw, out)
}

// e2eRunners lists the simulator's runners.
func e2eRunners(base string) ([]ghsim.CtlRunner, error) {
	var out struct {
		Runners []ghsim.CtlRunner `json:"runners"`
	}
	err := e2eGet(base, "_sim/runners", "", &out)
	return out.Runners, err
}

// e2ePool is the pool a runner belongs to by its name, "" for none.
func e2ePool(name string) string {
	for p := range e2eMax {
		if strings.HasPrefix(name, p+"-") {
			return p
		}
	}
	return ""
}

// e2eGroup is a runner group as the REST API shows it, with its repositories.
type e2eGroup struct {
	ID                       int64  `json:"id"`
	Name                     string `json:"name"`
	Visibility               string `json:"visibility"`
	Default                  bool   `json:"default"`
	AllowsPublicRepositories bool   `json:"allows_public_repositories"`
	Repos                    []string
}

// sampler records, every ~50 ms, the runners per pool.
type sampler struct {
	mu        sync.Mutex
	samples   int
	maxByPool map[string]int
	names     map[string]bool // every runner name seen
	warmBad   []string        // samples where the warm pool was not 2 idle online runners
	errs      []error
}

func (s *sampler) run(base string, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
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
			warmOK := 0
			for _, r := range rs {
				s.names[r.Name] = true
				p := e2ePool(r.Name)
				count[p]++
				if p == "warm" && r.Status == "online" && !r.Busy {
					warmOK++
				}
			}
			for p, n := range count {
				s.maxByPool[p] = max(s.maxByPool[p], n)
			}
			if count["warm"] != 2 || warmOK != 2 {
				s.warmBad = append(s.warmBad, fmt.Sprintf("%d warm runners, %d idle online", count["warm"], warmOK))
			}
		}
		s.mu.Unlock()
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// apiDelta is b - a by route, zero entries left out.
func apiDelta(a, b ghsim.StatsSnapshot) (map[string]int, int) {
	d := map[string]int{}
	total := 0
	for k, v := range b.APICalls {
		if n := v - a.APICalls[k]; n != 0 {
			d[k] = n
			total += n
		}
	}
	return d, total
}

func formatRoutes(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %5d  %s", m[k], k)
	}
	return b.String()
}

// signalRunnersUnder sends sig to every process whose working directory is
// under dir (the local provisioner's runners: the daemon leaves them running
// when it stops) and reports how many it found. Linux only (/proc); elsewhere
// it finds none.
func signalRunnersUnder(dir string, sig syscall.Signal) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil || !strings.HasPrefix(cwd, dir+string(filepath.Separator)) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			// A zombie (state Z) is already gone.
			if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
				continue
			}
		}
		if syscall.Kill(pid, sig) == nil {
			n++
		}
	}
	return n
}

// TestE2EScaling runs the simulator and the daemon as processes and shows,
// in order:
//   - runner groups from config exist with the configured visibility and
//     access after start (the gpu group, made beforehand with the wrong
//     shape, is put right); a group not in the config is untouched;
//   - with min_idle 2 the warm pool keeps two idle online runners;
//   - a burst of 50 jobs over two pools completes, max_runners is never
//     exceeded (sampled every 50 ms), gpu jobs from repositories the gpu
//     group does not admit and ubuntu-latest jobs launch nothing and stay
//     queued; the warm pool stays at two idle runners throughout;
//   - a job for the warm pool starts on a warm runner, not a new one;
//   - no violations; API calls per job over the burst are logged.
func TestE2EScaling(t *testing.T) {
	skipWithoutProcesses(t)
	start := time.Now()
	const pat, whSecret = "ghp_e2e_DONOTLEAK", "whsec_e2e_DONOTLEAK"
	dir := t.TempDir()
	// Last of all: no runner process outlives the test.
	t.Cleanup(func() { signalRunnersUnder(dir, syscall.SIGKILL) })
	webhookAddr, metricsAddr, adminAddr := freePort(t), freePort(t), freePort(t)
	for metricsAddr == webhookAddr {
		metricsAddr = freePort(t)
	}
	for adminAddr == webhookAddr || adminAddr == metricsAddr {
		adminAddr = freePort(t)
	}

	sim := startProc(t, "scaler sim", t.TempDir(),
		[]string{"SCALER_SIM_PAT=" + pat, "SCALER_SIM_WEBHOOK_SECRET=" + whSecret}, scalerExe(t),
		"sim", "-listen", "127.0.0.1:0", "-seed", "6", "-webhook-url", "http://"+webhookAddr+"/webhook",
		"-runner-command", scalerExe(t))
	urlLine := regexp.MustCompile(`simulator listening on (\S+)`)
	var base string
	waitFor(t, "the simulator's URL on stdout", func() bool {
		if !sim.running() {
			t.Fatalf("scaler sim exited: %s", sim.stderr.String())
		}
		if m := urlLine.FindStringSubmatch(sim.stdout.String()); m != nil {
			base = m[1]
		}
		return base != ""
	})
	waitFor(t, "the simulator answering", func() bool {
		var st ghsim.StatsSnapshot
		return e2eGet(base, "_sim/stats", "", &st) == nil
	})
	c := simHTTP{t: t, base: base, pat: pat}
	// Our own REST calls, to tell them from the daemon's.
	mine := map[string]int{}

	// A repository in octo-labs that the gpu group will not admit.
	var w ghsim.CtlWorld
	c.do("POST", "_sim/world", map[string]any{"orgs": []any{map[string]any{
		"login": "octo-labs", "repos": []any{map[string]any{"name": "data", "private": true}}}}}, http.StatusOK, &w)
	repoID := map[string]int64{}
	for _, r := range w.Repos {
		repoID[r.FullName] = r.ID
	}
	// An unconfigured group, and the gpu group in the wrong shape.
	c.do("POST", "orgs/octo-labs/actions/runner-groups", map[string]any{
		"name": "research", "visibility": "selected", "selected_repository_ids": []int64{repoID["octo-labs/data"]},
	}, http.StatusCreated, nil)
	c.do("POST", "orgs/octo-labs/actions/runner-groups", map[string]any{"name": "gpu", "visibility": "all"}, http.StatusCreated, nil)
	mine["POST /orgs/{org}/actions/runner-groups"] += 2
	groups := func() map[string]e2eGroup {
		t.Helper()
		var list struct {
			Groups []e2eGroup `json:"runner_groups"`
		}
		c.do("GET", "orgs/octo-labs/actions/runner-groups", nil, http.StatusOK, &list)
		mine["GET /orgs/{org}/actions/runner-groups"]++
		out := map[string]e2eGroup{}
		for _, g := range list.Groups {
			if g.Visibility == "selected" {
				var repos struct {
					Repositories []struct {
						FullName string `json:"full_name"`
					} `json:"repositories"`
				}
				c.do("GET", fmt.Sprintf("orgs/octo-labs/actions/runner-groups/%d/repositories", g.ID), nil, http.StatusOK, &repos)
				mine["GET /orgs/{org}/actions/runner-groups/{runner_group_id}/repositories"]++
				for _, r := range repos.Repositories {
					g.Repos = append(g.Repos, r.FullName)
				}
				slices.Sort(g.Repos)
			}
			out[g.Name] = g
		}
		return out
	}
	before := groups()
	if before["gpu"].Visibility != "all" || before["research"].Visibility != "selected" {
		t.Fatalf("groups before the daemon: %+v", before)
	}

	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := strings.NewReplacer("SIMURL", base, "WEBHOOK", webhookAddr, "METRICS", metricsAddr, "ADMIN", adminAddr, "DIR", dir).Replace(e2eConfig)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "scaler run", dir, cfgPath,
		[]string{"SCALER_GITHUB_TOKEN=" + pat, "SCALER_WEBHOOK_SECRET=" + whSecret}, webhookAddr, metricsAddr)
	t.Logf("simulator and daemon up after %s", time.Since(start).Round(time.Millisecond))

	// Runner groups: /healthz answers once the first reconcile is done,
	// but poll anyway (the keeper retries on failure).
	var after map[string]e2eGroup
	deadline := time.Now().Add(10 * time.Second)
	for {
		after = groups()
		g := after["gpu"]
		if g.Visibility == "selected" && slices.Equal(g.Repos, []string{"octo-labs/ml"}) && !g.AllowsPublicRepositories {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gpu group not in shape: %+v", g)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if a, b := after["research"], before["research"]; a.ID != b.ID || a.Visibility != b.Visibility ||
		a.AllowsPublicRepositories != b.AllowsPublicRepositories || !slices.Equal(a.Repos, b.Repos) {
		t.Errorf("the unconfigured group changed: before %+v, after %+v", b, a)
	}
	if after["gpu"].ID != before["gpu"].ID {
		t.Errorf("gpu group replaced (id %d → %d) instead of reshaped", before["gpu"].ID, after["gpu"].ID)
	}
	if len(after) != len(before) {
		t.Errorf("groups before %d, after %d: %+v", len(before), len(after), after)
	}

	// min_idle 2: two warm runners, idle and online.
	var warmIDs []int64
	waitFor(t, "two warm runners idle and online", func() bool {
		rs, err := e2eRunners(base)
		if err != nil {
			return false
		}
		warmIDs = warmIDs[:0]
		n := 0
		for _, r := range rs {
			if e2ePool(r.Name) == "warm" {
				n++
				if r.Status == "online" && !r.Busy {
					warmIDs = append(warmIDs, r.ID)
				}
			}
		}
		return n == 2 && len(warmIDs) == 2
	})
	t.Logf("two warm runners idle after %s", time.Since(start).Round(time.Millisecond))

	// The burst.
	smp := &sampler{maxByPool: map[string]int{}, names: map[string]bool{}}
	stop, sampled := make(chan struct{}), make(chan struct{})
	var s0 ghsim.StatsSnapshot
	c.do("GET", "_sim/stats", nil, http.StatusOK, &s0)
	go smp.run(base, stop, sampled)
	stopSampler := sync.OnceFunc(func() { close(stop); <-sampled })
	t.Cleanup(stopSampler)

	submit := func(repo string, labels []string, n int) []int64 {
		var out struct {
			IDs []int64 `json:"ids"`
		}
		c.do("POST", "_sim/jobs", map[string]any{"repo": repo, "labels": labels, "duration_ms": 200, "count": n},
			http.StatusCreated, &out)
		if len(out.IDs) != n {
			t.Fatalf("created %v, want %d jobs", out.IDs, n)
		}
		return out.IDs
	}
	burstStart := time.Now()
	const nSmall, nGPU = 34, 16
	smallIDs := submit("octo-org/app", []string{"small"}, nSmall)
	gpuIDs := submit("octo-labs/ml", []string{"gpu"}, nGPU)
	var idle []int64                                                                 // jobs nothing may run
	idle = append(idle, submit("octo-org/app", []string{"gpu"}, 3)...)               // outside the gpu pool's scope
	idle = append(idle, submit("octo-labs/data", []string{"gpu"}, 3)...)             // in scope, but the gpu group does not admit it
	idle = append(idle, submit("octo-org/website", []string{"ubuntu-latest"}, 3)...) // no pool

	jobs := func() map[int64]ghsim.CtlJob {
		var out struct {
			Jobs []ghsim.CtlJob `json:"jobs"`
		}
		c.do("GET", "_sim/jobs", nil, http.StatusOK, &out)
		m := map[int64]ghsim.CtlJob{}
		for _, j := range out.Jobs {
			m[j.ID] = j
		}
		return m
	}
	runnable := append(slices.Clone(smallIDs), gpuIDs...)
	var js map[int64]ghsim.CtlJob
	deadline = time.Now().Add(40 * time.Second)
	for {
		js = jobs()
		done := 0
		for _, id := range runnable {
			if js[id].Status == "completed" {
				done++
			}
		}
		if done == len(runnable) {
			break
		}
		if time.Now().After(deadline) || !d.running() {
			t.Fatalf("%d of %d burst jobs completed (daemon running: %v)", done, len(runnable), d.running())
		}
		time.Sleep(50 * time.Millisecond)
	}
	burst := time.Since(burstStart)
	var s1 ghsim.StatsSnapshot
	c.do("GET", "_sim/stats", nil, http.StatusOK, &s1)
	// The ephemeral runners go once their jobs are done.
	var leftover []string
	waitFor(t, "the burst's busy runners gone", func() bool {
		rs, err := e2eRunners(base)
		if err != nil {
			return false
		}
		leftover = leftover[:0]
		for _, r := range rs {
			if p := e2ePool(r.Name); p == "small" || p == "gpu" {
				if r.Busy || r.JobID != nil {
					return false
				}
				leftover = append(leftover, r.Name)
			}
		}
		return true
	})
	stopSampler()

	smp.mu.Lock()
	t.Logf("burst of %d jobs completed in %s; %d samples of /_sim/runners; most runners per pool %v",
		len(runnable), burst.Round(time.Millisecond), smp.samples, smp.maxByPool)
	if len(smp.errs) > 0 {
		t.Errorf("sampler: %d errors, first %v", len(smp.errs), smp.errs[0])
	}
	if smp.samples < 10 {
		t.Errorf("only %d samples", smp.samples)
	}
	for p, n := range smp.maxByPool {
		if p == "" {
			continue
		}
		if n > e2eMax[p] {
			t.Errorf("pool %s had %d runners, max_runners %d", p, n, e2eMax[p])
		}
	}
	if smp.maxByPool[""] != 0 {
		t.Errorf("runners of no pool seen")
	}
	if len(smp.warmBad) > 0 {
		t.Errorf("the warm pool was not two idle runners in %d of %d samples, e.g. %s", len(smp.warmBad), smp.samples, smp.warmBad[0])
	}
	seenGPU := map[string]bool{}
	for n := range smp.names {
		if e2ePool(n) == "gpu" {
			seenGPU[n] = true
		}
	}
	smp.mu.Unlock()

	ranOn := map[string]string{} // runner name → pool of the job
	for _, id := range runnable {
		j := js[id]
		if j.Conclusion == nil || *j.Conclusion != "success" || j.RunnerName == nil {
			t.Errorf("job %d: %+v", id, j)
			continue
		}
		want := "small"
		if slices.Contains(gpuIDs, id) {
			want = "gpu"
			if j.RunnerGroupName == nil || *j.RunnerGroupName != "gpu" {
				t.Errorf("gpu job %d ran in group %v", id, j.RunnerGroupName)
			}
		}
		if p := e2ePool(*j.RunnerName); p != want {
			t.Errorf("%s job %d ran on %s", want, id, *j.RunnerName)
		}
		if prev, dup := ranOn[*j.RunnerName]; dup {
			t.Errorf("ephemeral runner %s ran two jobs (%s)", *j.RunnerName, prev)
		}
		ranOn[*j.RunnerName] = want
	}
	// gpu runners launched = allowed gpu jobs: every gpu runner seen ran one
	// of octo-labs/ml's jobs, and there were as many as those jobs.
	var jobless []string // gpu runners seen that ran no job: surplus, see below
	for n := range seenGPU {
		if ranOn[n] != "gpu" {
			jobless = append(jobless, n)
		}
	}
	gpuRunners := 0
	for _, p := range ranOn {
		if p == "gpu" {
			gpuRunners++
		}
	}
	if gpuRunners != nGPU {
		t.Errorf("%d gpu runners ran the %d allowed gpu jobs", gpuRunners, nGPU)
	}
	// The daemon's own account: every job it matched, every job it recorded
	// unmatched, every runner it launched.
	matched, unmatched, launched := map[int64]string{}, map[int64]string{}, map[string]int{}
	for _, line := range strings.Split(d.stderr.String(), "\n") {
		var e struct {
			Msg    string `json:"msg"`
			Action string `json:"action"`
			JobID  int64  `json:"job_id"`
			Pool   string `json:"pool"`
			Reason string `json:"reason"`
			Runner string `json:"runner"`
		}
		if json.Unmarshal([]byte(line), &e) != nil {
			continue
		}
		switch {
		case e.Msg == "job matched":
			matched[e.JobID] = e.Pool
		case e.Msg == "decision" && e.Action == "unmatched":
			unmatched[e.JobID] = e.Reason
		case e.Msg == "runner launched":
			launched[e.Pool]++
		}
	}
	for _, id := range idle {
		if p, ok := matched[id]; ok {
			t.Errorf("job %d was matched to pool %s", id, p)
		}
		if _, ok := unmatched[id]; !ok {
			t.Errorf("job %d was not recorded as unmatched", id)
		}
	}
	for _, id := range runnable {
		if _, ok := matched[id]; !ok {
			t.Errorf("burst job %d was not matched", id)
		}
	}
	t.Logf("unmatched: %d jobs recorded, e.g. %q", len(unmatched), unmatched[idle[len(idle)/2]])
	// Exactly one runner launched per burst job: a runner that finished its
	// job before the job's webhooks were handled stands in for that job
	// (see scaler's runnerEnded), so late events launch no surplus.
	if launched["small"] != nSmall || launched["gpu"] != nGPU {
		t.Errorf("launched %v for %d small and %d gpu jobs (idle leftovers %v)", launched, nSmall, nGPU, leftover)
		for _, line := range strings.Split(d.stderr.String(), "\n") {
			if strings.Contains(line, `"decision"`) || slices.ContainsFunc(leftover, func(n string) bool { return strings.Contains(line, n) }) {
				t.Logf("daemon: %s", line)
			}
		}
	}
	if len(jobless) > 0 {
		t.Errorf("gpu runners %v ran no job", jobless)
	}
	// Nothing ran, or launched, for the other jobs.
	js = jobs()
	for _, id := range idle {
		if j := js[id]; j.Status != "queued" || j.RunnerName != nil {
			t.Errorf("job %d (%s %v) should stay queued: %s on %v", id, j.Repo, j.Labels, j.Status, j.RunnerName)
		}
	}
	delta, total := apiDelta(s0, s1)
	const jitRoute = "POST /orgs/{org}/actions/runners/generate-jitconfig"
	if delta[jitRoute] != launched["small"]+launched["gpu"] {
		t.Errorf("%d JIT configs generated during the burst, %d runners launched", delta[jitRoute], launched["small"]+launched["gpu"])
	}

	// A job for the warm pool starts on a warm runner.
	var sw0 ghsim.StatsSnapshot
	c.do("GET", "_sim/stats", nil, http.StatusOK, &sw0)
	warmJob := submit("octo-org/app", []string{"warm"}, 1)[0]
	var wj ghsim.CtlJob
	waitFor(t, "the warm job started", func() bool {
		c.do("GET", fmt.Sprintf("_sim/jobs/%d", warmJob), nil, http.StatusOK, &wj)
		return wj.Status != "queued"
	})
	var sw1 ghsim.StatsSnapshot
	c.do("GET", "_sim/stats", nil, http.StatusOK, &sw1)
	if wj.RunnerID == nil || !slices.Contains(warmIDs, *wj.RunnerID) {
		t.Errorf("the warm job started on runner %v, not one of the warm runners %v", wj.RunnerID, warmIDs)
	}
	if wj.StartedAt != nil && wj.CreatedAt != nil {
		t.Logf("warm job queued for %s; JIT configs when it was seen started: %d (replenishing min_idle may already have begun)",
			wj.StartedAt.Sub(*wj.CreatedAt), sw1.APICalls[jitRoute]-sw0.APICalls[jitRoute])
	}
	waitFor(t, "the warm job completed and two warm runners idle again", func() bool {
		c.do("GET", fmt.Sprintf("_sim/jobs/%d", warmJob), nil, http.StatusOK, &wj)
		rs, err := e2eRunners(base)
		if err != nil || wj.Status != "completed" {
			return false
		}
		n, ok := 0, 0
		for _, r := range rs {
			if e2ePool(r.Name) == "warm" {
				n++
				if r.Status == "online" && !r.Busy {
					ok++
				}
			}
		}
		if n > e2eMax["warm"] {
			t.Errorf("%d warm runners, max_runners %d", n, e2eMax["warm"])
		}
		return n == 2 && ok == 2
	})

	// No harm done; the API bill.
	var s2 ghsim.StatsSnapshot
	c.do("GET", "_sim/stats", nil, http.StatusOK, &s2)
	if s2.Violations.BusyRunnerDeleted != 0 || s2.Violations.JobRunnerKilled != 0 {
		t.Errorf("violations %+v", s2.Violations)
	}
	t.Logf("API calls over the %d-job burst: %d, %.2f per job; by route:%s",
		len(runnable), total, float64(total)/float64(len(runnable)), formatRoutes(delta))
	daemonTotal := map[string]int{}
	all := 0
	for k, v := range s1.APICalls {
		if n := v - mine[k]; n != 0 {
			daemonTotal[k] = n
			all += n
		}
	}
	t.Logf("every daemon call from start to the burst's end (start-up included): %d, %.2f per burst job; by route:%s",
		all, float64(all)/float64(len(runnable)), formatRoutes(daemonTotal))

	// scaler status reads the running daemon: the warm pool's two idle
	// runners, the other pools empty again, no job left queued.
	var out, errOut strings.Builder
	if code := cli(context.Background(), []string{"status", "-addr", adminAddr, "-json"}, map[string]string{}, &out, &errOut); code != 0 {
		t.Fatalf("scaler status -json: exit %d: %s", code, errOut.String())
	}
	var st admin.Status
	if err := json.Unmarshal([]byte(out.String()), &st); err != nil {
		t.Fatalf("scaler status -json: %v\n%s", err, out.String())
	}
	pools := map[string]admin.PoolStatus{}
	for _, p := range st.Pools {
		pools[p.Name] = p
	}
	if w := pools["warm"]; w.Runners[admin.RunnerIdle] != 2 || w.MinIdle != 2 || len(st.Pools) != 3 {
		t.Errorf("status pools %+v", st.Pools)
	}
	if st.Jobs.Queued != len(idle) || st.Jobs.Running != 0 {
		t.Errorf("status jobs: %d queued (want the %d that no pool may run), %d running", st.Jobs.Queued, len(idle), st.Jobs.Running)
	}
	out.Reset()
	if code := cli(context.Background(), []string{"status", "-addr", adminAddr}, map[string]string{}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "warm") {
		t.Errorf("scaler status: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	t.Logf("scaler status:\n%s", out.String())

	if resp, err := http.Get("http://" + metricsAddr + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz of the running daemon: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// The same state in /metrics (the daemon's view may trail the
	// simulator's by a pass), and the job and runner timings.
	wantMetrics := []string{
		`runnerscaler_runners{pool="warm",state="idle"} 2`,
		`runnerscaler_pool_min_idle{pool="warm"} 2`,
		fmt.Sprintf(`runnerscaler_pool_max_runners{pool="small"} %d`, e2eMax["small"]),
		fmt.Sprintf(`runnerscaler_jobs{pool="",state="queued"} %d`, len(idle)),
		fmt.Sprintf(`runnerscaler_job_queue_duration_seconds_count{pool="small"} %d`, nSmall),
		fmt.Sprintf(`runnerscaler_job_run_duration_seconds_count{pool="gpu"} %d`, nGPU),
		fmt.Sprintf(`runnerscaler_runners_removed_total{pool="gpu",reason="job_done"} %d`, nGPU),
		`runnerscaler_runner_startup_duration_seconds_count{pool="small",provisioner="local"}`,
	}
	var missing []string
	metricsDeadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		missing = missing[:0]
		for _, want := range wantMetrics {
			if !strings.Contains(string(body), want) {
				// Say what is there instead.
				got := "absent"
				series, _, _ := strings.Cut(want, "} ")
				for _, line := range strings.Split(string(body), "\n") {
					if strings.HasPrefix(line, series) {
						got = line
					}
				}
				missing = append(missing, fmt.Sprintf("%s (got: %s)", want, got))
			}
		}
		if len(missing) == 0 || time.Now().After(metricsDeadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, m := range missing {
		t.Errorf("/metrics lacks %s", m)
	}

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := d.exitCode(t); code != 0 {
		t.Errorf("scaler run exit %d after SIGTERM", code)
	}
	// The daemon leaves its runners running; stop the warm ones while the
	// simulator can still take them offline.
	signalRunnersUnder(dir, syscall.SIGTERM)
	waitFor(t, "the runner processes gone", func() bool { return signalRunnersUnder(dir, 0) == 0 })
	if err := sim.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := sim.exitCode(t); code != 0 {
		t.Errorf("scaler sim exit %d after SIGTERM", code)
	}
	for _, p := range []*proc{sim, d.proc} {
		if out := p.stdout.String() + p.stderr.String(); strings.Contains(out, "DONOTLEAK") {
			t.Errorf("%s printed a secret", p.name)
		}
	}
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}
