package recovery

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what the two mechanisms did. Outcome values are the
// constants below, so label values stay bounded. Calls come from the
// Redeliverer's and the checker's loops, possibly at the same time.
type Metrics interface {
	// Redeliveries counts n workflow_job deliveries by outcome
	// (RedeliveryRequested, RedeliveryFailed, RedeliverySkippedLimit,
	// RedeliveryExhausted).
	Redeliveries(outcome string, n int)
	// StaleJobChecks counts n stale queued jobs by outcome (StaleInProgress,
	// StaleCompleted, StaleGone, StaleStillQueued, StaleError,
	// StaleApplyFailed, StaleSkippedLimit).
	StaleJobChecks(outcome string, n int)
}

// Redelivery outcomes.
const (
	RedeliveryRequested    = "requested"     // GitHub accepted the redelivery request
	RedeliveryFailed       = "failed"        // the request failed (retried next cycle unless GitHub refused it for good)
	RedeliverySkippedLimit = "skipped_limit" // over max_redeliveries_per_cycle: left for the next cycle
	RedeliveryExhausted    = "exhausted"     // every allowed attempt failed: given up
)

// Stale job check outcomes.
const (
	StaleInProgress   = "in_progress"   // GitHub says a runner took it
	StaleCompleted    = "completed"     // GitHub says it ended
	StaleGone         = "gone"          // GitHub no longer knows it (404)
	StaleStillQueued  = "still_queued"  // GitHub says it is still waiting
	StaleError        = "error"         // the check failed; retried next cycle
	StaleApplyFailed  = "apply_failed"  // the applier refused the transition; retried next cycle
	StaleSkippedLimit = "skipped_limit" // over the per-cycle bound: left for the next cycle
)

type discardMetrics struct{}

func (discardMetrics) Redeliveries(string, int)   {}
func (discardMetrics) StaleJobChecks(string, int) {}

// DiscardMetrics returns a Metrics that counts nothing.
func DiscardMetrics() Metrics { return discardMetrics{} }

// PrometheusMetrics exports runnerscaler_webhook_redeliveries_total{outcome}
// and runnerscaler_stale_job_checks_total{outcome}.
type PrometheusMetrics struct {
	redeliveries *prometheus.CounterVec
	staleChecks  *prometheus.CounterVec
}

var _ Metrics = (*PrometheusMetrics)(nil)

// NewPrometheusMetrics registers the recovery metrics on reg. Every outcome
// starts at zero, so rate() and alerts see the series before it first moves.
func NewPrometheusMetrics(reg prometheus.Registerer) (*PrometheusMetrics, error) {
	m := &PrometheusMetrics{
		redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "runnerscaler", Subsystem: "webhook", Name: "redeliveries_total",
			Help: "Failed workflow_job webhook deliveries handled by the redeliverer, by outcome: " +
				"requested, failed (the request failed), skipped_limit (left for the next cycle), exhausted (given up).",
		}, []string{"outcome"}),
		staleChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "runnerscaler", Name: "stale_job_checks_total",
			Help: "Jobs queued longer than lifecycle.stale_job_after checked with GitHub, by outcome: " +
				"in_progress, completed, gone (404), still_queued, error, apply_failed, skipped_limit.",
		}, []string{"outcome"}),
	}
	for _, c := range []prometheus.Collector{m.redeliveries, m.staleChecks} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, o := range []string{RedeliveryRequested, RedeliveryFailed, RedeliverySkippedLimit, RedeliveryExhausted} {
		m.redeliveries.WithLabelValues(o)
	}
	for _, o := range []string{StaleInProgress, StaleCompleted, StaleGone, StaleStillQueued, StaleError, StaleApplyFailed, StaleSkippedLimit} {
		m.staleChecks.WithLabelValues(o)
	}
	return m, nil
}

// Redeliveries implements Metrics.
func (m *PrometheusMetrics) Redeliveries(outcome string, n int) {
	if n > 0 {
		m.redeliveries.WithLabelValues(outcome).Add(float64(n))
	}
}

// StaleJobChecks implements Metrics.
func (m *PrometheusMetrics) StaleJobChecks(outcome string, n int) {
	if n > 0 {
		m.staleChecks.WithLabelValues(outcome).Add(float64(n))
	}
}
