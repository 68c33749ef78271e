package scaler

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics receives the engine's events; PrometheusMetrics exports them. The
// engine calls it from many goroutines.
type Metrics interface {
	// JobMatched counts a queued job matched to pool, JobUnmatched one no
	// pool may run.
	JobMatched(pool string)
	JobUnmatched()
	// QueuedToCreate observes the time from a queued job's event reaching
	// the engine to the provisioner create call made for it.
	QueuedToCreate(pool string, d time.Duration)
	// RunnerLaunched counts a runner created and stored; CreateFailed one
	// given up after every attempt.
	RunnerLaunched(pool string)
	CreateFailed(pool, provisioner string)
	// RunnerRemoved counts a runner ended, by one of the Removed* codes.
	RunnerRemoved(pool, reason string)
	// RunnerStarted observes the time from a runner's create to it being
	// online (its instance running, or its first job, whichever is first).
	RunnerStarted(pool, provisioner string, d time.Duration)
	// JobQueued observes a job's time from queued to in progress, JobRan
	// from in progress to completed (GitHub's timestamps).
	JobQueued(pool string, d time.Duration)
	JobRan(pool string, d time.Duration)
	// Reconciled observes one reconciliation's reading of GitHub and the
	// provisioners.
	Reconciled(d time.Duration)
}

// Reasons a runner ended (the reason label of runners_removed_total).
const (
	RemovedJobDone          = "job_done"          // ephemeral runner after its job
	RemovedIdle             = "idle"              // idle past idle_timeout, beyond min_idle
	RemovedDrain            = "drain"             // drain_on_shutdown
	RemovedInstanceLost     = "instance_lost"     // its machine stopped, failed or vanished
	RemovedBootstrapTimeout = "bootstrap_timeout" // never came online
	RemovedOffline          = "offline"           // offline past offline_timeout
	RemovedEndedUnclaimed   = "ended_unclaimed"   // exited, and no job event named it in time
)

// drainReason is the reason Drain gives its removals.
const drainReason = "drain on shutdown"

type discardMetrics struct{}

func (discardMetrics) JobMatched(string)                           {}
func (discardMetrics) JobUnmatched()                               {}
func (discardMetrics) QueuedToCreate(string, time.Duration)        {}
func (discardMetrics) RunnerLaunched(string)                       {}
func (discardMetrics) CreateFailed(string, string)                 {}
func (discardMetrics) RunnerRemoved(string, string)                {}
func (discardMetrics) RunnerStarted(string, string, time.Duration) {}
func (discardMetrics) JobQueued(string, time.Duration)             {}
func (discardMetrics) JobRan(string, time.Duration)                {}
func (discardMetrics) Reconciled(time.Duration)                    {}

// PrometheusMetrics exports the engine's events as
// runnerscaler_jobs_matched_total, runnerscaler_jobs_unmatched_total,
// runnerscaler_queued_to_create_seconds, runnerscaler_runners_created_total
// and runnerscaler_runner_create_failures_total.
type PrometheusMetrics struct {
	matched   *prometheus.CounterVec
	unmatched prometheus.Counter
	latency   *prometheus.HistogramVec
	launched  *prometheus.CounterVec
	failed    *prometheus.CounterVec
	removed   *prometheus.CounterVec
	startup   *prometheus.HistogramVec
	queue     *prometheus.HistogramVec
	run       *prometheus.HistogramVec
	recon     prometheus.Histogram
}

var _ Metrics = (*PrometheusMetrics)(nil)

// NewPrometheusMetrics registers the engine's metrics on reg.
func NewPrometheusMetrics(reg prometheus.Registerer) (*PrometheusMetrics, error) {
	m := &PrometheusMetrics{
		matched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "runnerscaler", Name: "jobs_matched_total",
			Help: "Queued jobs matched to a pool, by pool.",
		}, []string{"pool"}),
		unmatched: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "runnerscaler", Name: "jobs_unmatched_total",
			Help: "Queued jobs no pool may run (labels, scope or runner group access); they launch nothing.",
		}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "runnerscaler", Name: "queued_to_create_seconds",
			Help: "Time from a queued job's webhook reaching the engine to the provisioner create call made for it.",
			// Milliseconds matter here (the target is 50 ms at p99); the
			// upper buckets catch creates held back by max_runners.
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60},
		}, []string{"pool"}),
		launched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "runnerscaler", Name: "runners_created_total",
			Help: "Runners registered, created by their provisioner and stored, by pool.",
		}, []string{"pool"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "runnerscaler", Name: "runner_create_failures_total",
			Help: "Runner creates given up after every attempt, by pool and provisioner.",
		}, []string{"pool", "provisioner"}),
	}
	// Seconds to hours: queue and startup times from a fast local runner
	// to a cold cloud machine; run times of CI jobs.
	waitBuckets := []float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800}
	m.removed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "runnerscaler", Name: "runners_removed_total",
		Help: "Runners ended, by pool and reason: job_done, idle, drain, instance_lost, bootstrap_timeout, offline, ended_unclaimed.",
	}, []string{"pool", "reason"})
	m.startup = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "runnerscaler", Name: "runner_startup_duration_seconds",
		Help:    "Time from a runner's create to it being online (instance running, or its first job).",
		Buckets: waitBuckets,
	}, []string{"pool", "provisioner"})
	m.queue = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "runnerscaler", Name: "job_queue_duration_seconds",
		Help:    "Time a job waited from queued to in progress (GitHub's timestamps), by pool.",
		Buckets: waitBuckets,
	}, []string{"pool"})
	m.run = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "runnerscaler", Name: "job_run_duration_seconds",
		Help:    "Time a job ran, from in progress to completed (GitHub's timestamps), by pool.",
		Buckets: []float64{10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 21600},
	}, []string{"pool"})
	m.recon = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "runnerscaler", Name: "reconcile_duration_seconds",
		Help:    "Time one reconciliation took to list GitHub's runners and the provisioners' instances.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
	})
	for _, c := range []prometheus.Collector{m.removed, m.startup, m.queue, m.run, m.recon} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, c := range []prometheus.Collector{m.matched, m.unmatched, m.latency, m.launched, m.failed} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// JobMatched implements Metrics.
func (m *PrometheusMetrics) JobMatched(pool string) { m.matched.WithLabelValues(pool).Inc() }

// JobUnmatched implements Metrics.
func (m *PrometheusMetrics) JobUnmatched() { m.unmatched.Inc() }

// QueuedToCreate implements Metrics.
func (m *PrometheusMetrics) QueuedToCreate(pool string, d time.Duration) {
	m.latency.WithLabelValues(pool).Observe(d.Seconds())
}

// RunnerLaunched implements Metrics.
func (m *PrometheusMetrics) RunnerLaunched(pool string) { m.launched.WithLabelValues(pool).Inc() }

// CreateFailed implements Metrics.
func (m *PrometheusMetrics) CreateFailed(pool, provisioner string) {
	m.failed.WithLabelValues(pool, provisioner).Inc()
}

// RunnerRemoved implements Metrics.
func (m *PrometheusMetrics) RunnerRemoved(pool, reason string) {
	m.removed.WithLabelValues(pool, reason).Inc()
}

// RunnerStarted implements Metrics.
func (m *PrometheusMetrics) RunnerStarted(pool, provisioner string, d time.Duration) {
	m.startup.WithLabelValues(pool, provisioner).Observe(d.Seconds())
}

// JobQueued implements Metrics.
func (m *PrometheusMetrics) JobQueued(pool string, d time.Duration) {
	m.queue.WithLabelValues(pool).Observe(d.Seconds())
}

// JobRan implements Metrics.
func (m *PrometheusMetrics) JobRan(pool string, d time.Duration) {
	m.run.WithLabelValues(pool).Observe(d.Seconds())
}

// Reconciled implements Metrics.
func (m *PrometheusMetrics) Reconciled(d time.Duration) { m.recon.Observe(d.Seconds()) }
