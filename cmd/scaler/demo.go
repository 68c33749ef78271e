package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"time"

	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"

	"github.com/runnerscaler/runnerscaler/internal/config"
	"github.com/runnerscaler/runnerscaler/internal/ghsim"
	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
	"github.com/runnerscaler/runnerscaler/internal/logging"
	"github.com/runnerscaler/runnerscaler/internal/scaler"
)

const demoSynopsis = `demo [-jobs N] [-job-duration D] [-timeout D] [-json]

Runs the whole loop on this machine with no GitHub account and no network
beyond loopback: the GitHub simulator, the daemon (webhook intake, store,
scaling engine) with an embedded configuration, and the local provisioner
running the simulator's runner application. It submits a mixed burst of jobs
(for each pool, ubuntu-latest jobs no pool serves, and gpu jobs from a
repository the gpu runner group does not admit), prints progress every second
and a summary. Exit 0 only when every runnable job completed, the others
launched nothing, nothing is left behind and no running job was harmed.`

// demoPAT and demoSecret are the simulator's credentials: loopback only.
const (
	demoPAT    = "ghp_scalerdemo"
	demoSecret = "scaler-demo-webhook-secret"
)

// demoConfig is the daemon's embedded configuration; %[1]s is the
// simulator's URL, %[2]s the state directory.
const demoConfig = `
github:
  api_url: %[1]s
webhook:
  listen: 127.0.0.1:0
  path: /webhook
metrics:
  listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
store:
  path: %[2]s/state.db
runner_groups:
  - scope: {org: octo-labs}
    name: gpu
    visibility: selected
    repositories: [octo-labs/ml]
pools:
  - name: linux-small
    scope: {org: octo-org}
    labels: [linux-small]
    max_runners: 40
    max_concurrent_creates: 40
    provisioner: local
  - name: gpu
    scope: {org: octo-labs}
    runner_group: gpu
    labels: [gpu]
    max_runners: 10
    provisioner: local
  - name: app-builder
    scope: {repo: octo-org/app}
    labels: [app-builder]
    max_runners: 10
    provisioner: local
provisioners:
  local:
    type: local
    settings:
      work_dir: %[2]s/local
      cache_dir: %[2]s/cache
      max_instances: 60
      grace_period: 5s
      # 36 runner processes start within a few hundred ms on the demo's
      # machine; niced, they leave the daemon the CPU to launch the rest.
      nice: 10
`

// demoOptions are the demo's knobs.
type demoOptions struct {
	Jobs          int
	JobDuration   time.Duration
	Timeout       time.Duration
	RunnerCommand string            // what the runner package execs as `PROGRAM sim-runner`
	ExtraEnv      map[string]string // added to the runners' environment
	Progress      io.Writer         // live progress lines; nil for none
	Log           *zap.Logger
}

// demoSummary is the demo's result (-json prints it).
type demoSummary struct {
	JobsSubmitted   int     `json:"jobs_submitted"`
	JobsRunnable    int     `json:"jobs_runnable"`
	JobsCompleted   int     `json:"jobs_completed"`
	JobsUnmatched   int     `json:"jobs_unmatched"`
	JobsNotRunnable int     `json:"jobs_not_runnable"`
	RunnersLaunched int     `json:"runners_launched"`
	APICalls        int     `json:"api_calls"`
	APICallsPerJob  float64 `json:"api_calls_per_job"`
	// APICallsStartup were made before the burst was submitted (the
	// daemon's start-up); APICallsBurst after.
	APICallsStartup     int            `json:"api_calls_startup"`
	APICallsBurst       int            `json:"api_calls_burst"`
	APICallsPerJobBurst float64        `json:"api_calls_per_job_burst"`
	APICallsByRoute     map[string]int `json:"api_calls_by_route"`
	QueueSecondsP50     float64        `json:"queue_seconds_p50"`
	QueueSecondsP95     float64        `json:"queue_seconds_p95"`
	CreateLatencyP50    float64        `json:"queued_to_create_ms_p50"`
	CreateLatencyP99    float64        `json:"queued_to_create_ms_p99"`
	LeftoverRunners     int            `json:"leftover_runners"`
	LeftoverInstances   int            `json:"leftover_instances"`
	Violations          int            `json:"violations"`
	Seconds             float64        `json:"seconds"`
	OK                  bool           `json:"ok"`
	Problems            []string       `json:"problems,omitempty"`
}

func demoCmd(ctx context.Context, args []string, _ map[string]string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", demoSynopsis, stderr)
	jobs := fs.Int("jobs", 20, "jobs in the burst")
	jobDuration := fs.Duration("job-duration", 2*time.Second, "how long each job runs")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	asJSON := fs.Bool("json", false, "print the summary as one JSON object (and no progress)")
	logLevel := fs.String("log-level", "error", "daemon log level (logs go to stderr)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *jobs < 1 || *jobDuration < 0 || *timeout <= 0 {
		fmt.Fprintln(stderr, "scaler demo: -jobs must be at least 1, -job-duration not negative, -timeout positive")
		return exitUsage
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "scaler demo: %v\n", err)
		return exitFail
	}
	log, err := logging.New(*logLevel, "console", stderr)
	if err != nil {
		fmt.Fprintf(stderr, "scaler demo: %v\n", err)
		return exitUsage
	}
	defer func() { _ = log.Sync() }()
	opts := demoOptions{Jobs: *jobs, JobDuration: *jobDuration, Timeout: *timeout, RunnerCommand: exe, Log: log}
	if !*asJSON {
		opts.Progress = stdout
	}
	sum, err := runDemo(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "scaler demo: %v\n", err)
		return exitFail
	}
	if *asJSON {
		b, _ := json.Marshal(sum)
		fmt.Fprintln(stdout, string(b))
	} else {
		printDemoSummary(stdout, sum)
	}
	if !sum.OK {
		return exitFail
	}
	return exitOK
}

func printDemoSummary(w io.Writer, s demoSummary) {
	fmt.Fprintf(w, "\nsummary (%.1fs)\n", s.Seconds)
	fmt.Fprintf(w, "  jobs: %d submitted, %d runnable, %d completed, %d unmatched (%d not runnable)\n",
		s.JobsSubmitted, s.JobsRunnable, s.JobsCompleted, s.JobsUnmatched, s.JobsNotRunnable)
	fmt.Fprintf(w, "  runners launched: %d\n", s.RunnersLaunched)
	fmt.Fprintf(w, "  api calls: %d (%.2f per runnable job): %d at start-up, %d during the burst (%.2f per runnable job)\n",
		s.APICalls, s.APICallsPerJob, s.APICallsStartup, s.APICallsBurst, s.APICallsPerJobBurst)
	fmt.Fprintf(w, "  queue time: p50 %.2fs, p95 %.2fs\n", s.QueueSecondsP50, s.QueueSecondsP95)
	fmt.Fprintf(w, "  queued webhook → provisioner create: p50 %.1fms, p99 %.1fms\n", s.CreateLatencyP50, s.CreateLatencyP99)
	fmt.Fprintf(w, "  left behind: %d runners, %d instances; violations: %d\n", s.LeftoverRunners, s.LeftoverInstances, s.Violations)
	for _, p := range s.Problems {
		fmt.Fprintf(w, "  PROBLEM: %s\n", p)
	}
	if s.OK {
		fmt.Fprintln(w, "  OK")
	} else {
		fmt.Fprintln(w, "  FAILED")
	}
}

// demoJob is one kind of job in the burst.
type demoJob struct {
	repo     string
	labels   []string
	runnable bool
	share    int // parts of 20
}

var demoMix = []demoJob{
	{repo: "octo-org/app", labels: []string{"linux-small"}, runnable: true, share: 8},
	{repo: "octo-labs/ml", labels: []string{"gpu"}, runnable: true, share: 3},
	{repo: "octo-org/app", labels: []string{"app-builder"}, runnable: true, share: 3},
	{repo: "octo-org/website", labels: []string{"ubuntu-latest"}, runnable: false, share: 3},
	{repo: "octo-org/app", labels: []string{"gpu"}, runnable: false, share: 3}, // gpu group admits octo-labs/ml only
}

// demoCounts splits n jobs over demoMix, every kind getting at least one
// when n allows.
func demoCounts(n int) []int {
	counts := make([]int, len(demoMix))
	left := n
	for i := range demoMix {
		if left == 0 {
			break
		}
		counts[i] = 1
		left--
	}
	total := 0
	for _, m := range demoMix {
		total += m.share
	}
	extra := left
	for i, m := range demoMix {
		add := extra * m.share / total
		counts[i] += add
		left -= add
	}
	counts[0] += left
	return counts
}

// runDemo runs the simulator and the daemon in this process, submits the
// burst, waits for it and returns the summary.
func runDemo(ctx context.Context, o demoOptions) (demoSummary, error) {
	var sum demoSummary
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	dir, err := os.MkdirTemp("", "scaler-demo-")
	if err != nil {
		return sum, err
	}
	defer os.RemoveAll(dir)

	webhookLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return sum, err
	}
	metricsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		webhookLn.Close()
		return sum, err
	}
	sim, err := ghsim.New(ghsim.Options{
		PAT: demoPAT, WebhookURL: "http://" + webhookLn.Addr().String() + "/webhook", WebhookSecret: demoSecret,
		RunnerCommand: o.RunnerCommand, Logger: o.Log.Named("sim"),
	})
	if err != nil {
		webhookLn.Close()
		metricsLn.Close()
		return sum, err
	}
	simURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		webhookLn.Close()
		metricsLn.Close()
		return sum, err
	}
	defer sim.Close()

	cfg, err := demoParseConfig(simURL, dir, o.ExtraEnv)
	if err != nil {
		webhookLn.Close()
		metricsLn.Close()
		return sum, err
	}
	d, err := newDaemon(ctx, cfg, dir, o.Log, nil)
	if err != nil {
		webhookLn.Close()
		metricsLn.Close()
		return sum, err
	}
	daemonCtx, stopDaemon := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan error, 1)
	go func() { served <- d.serve(daemonCtx, metricsLn, webhookLn) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		stopDaemon()
		return errors.Join(<-served, d.close())
	}
	defer func() { _ = stop() }()

	// The daemon's start-up calls (runner groups, access lists, the runner
	// package) are counted apart from the burst's.
	if err := demoWaitHealthy(ctx, "http://"+metricsLn.Addr().String()+"/healthz", o.Timeout, served); err != nil {
		return sum, err
	}
	sum.APICallsStartup = sim.Stats().APICallsTotal

	// The burst.
	w := sim.World()
	counts := demoCounts(o.Jobs)
	runnable := map[int64]bool{}
	for i, m := range demoMix {
		if counts[i] == 0 {
			continue
		}
		ids, err := w.CreateJobs(world.JobInput{Repo: m.repo, Labels: m.labels, Duration: o.JobDuration, Count: counts[i]})
		if err != nil {
			return sum, fmt.Errorf("submit jobs: %w", err)
		}
		for _, id := range ids {
			runnable[id] = m.runnable
		}
		sum.JobsSubmitted += len(ids)
		if m.runnable {
			sum.JobsRunnable += len(ids)
		} else {
			sum.JobsNotRunnable += len(ids)
		}
	}

	scopes := []world.Scope{{Kind: world.Org, Name: "octo-org"}, {Kind: world.Org, Name: "octo-labs"}, {Kind: world.Repo, Name: "octo-org/app"}}
	leftRunners := func() int {
		n := 0
		for _, s := range scopes {
			n += len(w.Runners(s))
		}
		return n
	}
	leftInstances := func() int {
		n := 0
		for _, p := range d.provs {
			l, err := p.List(context.WithoutCancel(ctx))
			if err == nil {
				n += len(l)
			}
		}
		return n
	}
	done := func() bool {
		for id, run := range runnable {
			if !run {
				continue
			}
			j, _, ok := w.Job(id)
			if !ok || j.Status != world.JobCompleted {
				return false
			}
		}
		return leftRunners() == 0 && leftInstances() == 0
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
wait:
	for !done() {
		select {
		case <-ctx.Done():
			break wait
		case <-tick.C:
			if o.Progress != nil {
				demoProgress(ctx, o.Progress, time.Since(start), w, d)
			}
		case <-poll.C:
		}
	}

	// Results.
	var queue []time.Duration
	for id, run := range runnable {
		j, _, ok := w.Job(id)
		if !ok {
			continue
		}
		if run && j.Status == world.JobCompleted {
			sum.JobsCompleted++
			queue = append(queue, j.StartedAt.Sub(j.CreatedAt))
		}
		if !run && j.Status != world.JobQueued {
			sum.Problems = append(sum.Problems, fmt.Sprintf("job %d (%v from %s) should not have run: %s on %s",
				id, j.Labels, repoOf(w, id), j.Status, j.RunnerName))
		}
	}
	st := d.engine.Stats()
	sum.JobsUnmatched = st.JobsUnmatched
	sum.RunnersLaunched = st.RunnersLaunched
	stats := sim.Stats()
	sum.APICalls = stats.APICallsTotal
	sum.APICallsByRoute = stats.APICalls
	sum.APICallsBurst = sum.APICalls - sum.APICallsStartup
	if sum.JobsRunnable > 0 {
		sum.APICallsPerJob = float64(sum.APICalls) / float64(sum.JobsRunnable)
		sum.APICallsPerJobBurst = float64(sum.APICallsBurst) / float64(sum.JobsRunnable)
	}
	sum.QueueSecondsP50 = demoPercentile(queue, 0.50).Seconds()
	sum.QueueSecondsP95 = demoPercentile(queue, 0.95).Seconds()
	lat := d.engine.CreateLatencies()
	sum.CreateLatencyP50 = float64(demoPercentile(lat, 0.50).Microseconds()) / 1000
	sum.CreateLatencyP99 = float64(demoPercentile(lat, 0.99).Microseconds()) / 1000
	sum.LeftoverRunners = leftRunners()
	sum.LeftoverInstances = leftInstances()
	v := w.Violations()
	sum.Violations = v.BusyRunnerDeleted + v.JobRunnerKilled

	// Clean up whatever is left, then stop.
	for _, p := range d.provs {
		if l, err := p.List(context.WithoutCancel(ctx)); err == nil {
			for _, in := range l {
				_ = p.Delete(context.WithoutCancel(ctx), in.ID)
			}
		}
	}
	if err := stop(); err != nil && !errors.Is(err, context.Canceled) {
		sum.Problems = append(sum.Problems, "daemon stopped with an error: "+err.Error())
	}
	sum.Seconds = time.Since(start).Seconds()

	if sum.JobsCompleted != sum.JobsRunnable {
		sum.Problems = append(sum.Problems, fmt.Sprintf("%d of %d runnable jobs completed", sum.JobsCompleted, sum.JobsRunnable))
	}
	if sum.JobsUnmatched != sum.JobsNotRunnable {
		sum.Problems = append(sum.Problems, fmt.Sprintf("%d jobs unmatched, want %d", sum.JobsUnmatched, sum.JobsNotRunnable))
	}
	if sum.RunnersLaunched > sum.JobsRunnable {
		sum.Problems = append(sum.Problems, fmt.Sprintf("%d runners launched for %d runnable jobs", sum.RunnersLaunched, sum.JobsRunnable))
	}
	if sum.LeftoverRunners != 0 || sum.LeftoverInstances != 0 {
		sum.Problems = append(sum.Problems, fmt.Sprintf("left behind: %d runners, %d instances", sum.LeftoverRunners, sum.LeftoverInstances))
	}
	if sum.Violations != 0 {
		sum.Problems = append(sum.Problems, fmt.Sprintf("%d violations", sum.Violations))
	}
	if ctx.Err() != nil {
		sum.Problems = append(sum.Problems, fmt.Sprintf("timed out after %s", o.Timeout))
	}
	sum.OK = len(sum.Problems) == 0
	return sum, nil
}

func repoOf(w *world.World, id int64) string {
	_, r, _ := w.Job(id)
	return r.FullName()
}

// demoParseConfig builds the embedded configuration, checked like a file.
func demoParseConfig(simURL, dir string, extraEnv map[string]string) (*config.Config, error) {
	text := fmt.Sprintf(demoConfig, simURL, dir)
	if len(extraEnv) > 0 {
		var doc map[string]any
		if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
			return nil, err
		}
		settings := doc["provisioners"].(map[string]any)["local"].(map[string]any)["settings"].(map[string]any)
		env := map[string]any{}
		for k, v := range extraEnv {
			env[k] = v
		}
		settings["extra_env"] = env
		b, err := yaml.Marshal(doc)
		if err != nil {
			return nil, err
		}
		text = string(b)
	}
	cfg, err := config.Parse([]byte(text), map[string]string{
		"SCALER_GITHUB_TOKEN":   demoPAT,
		"SCALER_WEBHOOK_SECRET": demoSecret,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded configuration: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "local"), 0o700); err != nil {
		return nil, err
	}
	return cfg, nil
}

// demoProgress prints one line: jobs by status, our runners by state.
func demoProgress(ctx context.Context, out io.Writer, since time.Duration, w *world.World, d *daemonParts) {
	jc := w.JobCounts()
	states := map[string]int{}
	if rs, err := d.st.Runners(ctx, ""); err == nil {
		for _, r := range rs {
			states[r.State]++
		}
	}
	fmt.Fprintf(out, "%5.1fs  jobs: %d queued, %d running, %d done   runners: %d starting, %d idle, %d busy, %d gone\n",
		since.Seconds(), jc.Queued, jc.InProgress, jc.Completed,
		states[scaler.RunnerStarting], states[scaler.RunnerIdle], states[scaler.RunnerBusy]+states[scaler.RunnerDraining],
		states["removed"]+states["failed"])
}

// demoPercentile is the q-th quantile (nearest rank) of ds; 0 when empty.
func demoPercentile(ds []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return percentile(s, q*100)
}

// demoWaitHealthy polls the daemon's /healthz until it answers 200 (it does
// once start-up is done and the webhook port serves), the daemon stops, or
// timeout passes.
func demoWaitHealthy(ctx context.Context, url string, timeout time.Duration, served chan error) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-served:
			served <- err // for the caller's shutdown, which waits on it
			return fmt.Errorf("daemon stopped during start-up: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("daemon not healthy after %s", timeout)
		}
	}
}
