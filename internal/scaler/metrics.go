package scaler

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics receives the engine's events; PrometheusMetrics exports them. The
// engine calls it from many goroutines.
type Metrics interface {
	// JobMatched counts a queued job matched to pool ("" for a job no pool
	// may run).
	JobMatched(pool string)
	// QueuedToCreate observes the time from a queued job's event reaching
	// the engine to the provisioner create call made for it.
	QueuedToCreate(pool string, d time.Duration)
	// RunnerLaunched counts a runner created and stored; CreateFailed one
	// given up after every attempt.
	RunnerLaunched(pool string)
	CreateFailed(pool string)
}

type discardMetrics struct{}

func (discardMetrics) JobMatched(string)                    {}
func (discardMetrics) QueuedToCreate(string, time.Duration) {}
func (discardMetrics) RunnerLaunched(string)                {}
func (discardMetrics) CreateFailed(string)                  {}

// PrometheusMetrics exports the engine's events as runnerscaler_jobs_matched_total,
// runnerscaler_queued_to_create_seconds, runnerscaler_runners_launched_total
// and runnerscaler_runner_creates_failed_total.
type PrometheusMetrics struct {
	matched  *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	launched *prometheus.CounterVec
	failed   *prometheus.CounterVec
}

var _ Metrics = (*PrometheusMetrics)(nil)

// NewPrometheusMetrics registers the engine's metrics on reg.
func NewPrometheusMetrics(reg prometheus.Registerer) (*PrometheusMetrics, error) {
	m := &PrometheusMetrics{
		matched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "runnerscaler", Name: "jobs_matched_total",
			Help: `Queued jobs matched, by pool; pool="" counts jobs no pool may run (unmatched).`,
		}, []string{"pool"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "runnerscaler", Name: "queued_to_create_seconds",
			Help: "Time from a queued job's webhook reaching the engine to the provisioner create call made for it.",
			// Milliseconds matter here (the target is 50 ms at p99); the
			// upper buckets catch creates held back by max_runners.
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60},
		}, []string{"pool"}),
		launched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "runnerscaler", Name: "runners_launched_total",
			Help: "Runners registered, created by their provisioner and stored, by pool.",
		}, []string{"pool"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "runnerscaler", Name: "runner_creates_failed_total",
			Help: "Runner creates given up after every attempt, by pool.",
		}, []string{"pool"}),
	}
	for _, c := range []prometheus.Collector{m.matched, m.latency, m.launched, m.failed} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// JobMatched implements Metrics.
func (m *PrometheusMetrics) JobMatched(pool string) { m.matched.WithLabelValues(pool).Inc() }

// QueuedToCreate implements Metrics.
func (m *PrometheusMetrics) QueuedToCreate(pool string, d time.Duration) {
	m.latency.WithLabelValues(pool).Observe(d.Seconds())
}

// RunnerLaunched implements Metrics.
func (m *PrometheusMetrics) RunnerLaunched(pool string) { m.launched.WithLabelValues(pool).Inc() }

// CreateFailed implements Metrics.
func (m *PrometheusMetrics) CreateFailed(pool string) { m.failed.WithLabelValues(pool).Inc() }
