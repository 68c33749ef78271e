package webhook

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics records what the intake does with each request. The handler calls
// it once per request, after answering, with bounded label values: event and
// action are collapsed to a fixed set ("other" for anything else, "none"
// when absent) and outcome is one of the Outcome constants.
type Metrics interface {
	ObserveDelivery(event, action, outcome string, d time.Duration)
}

// Outcomes of a request, as counted in metrics and logged.
const (
	OutcomeJob              = "job"          // workflow_job transition stored
	OutcomePing             = "ping"         // ping stored
	OutcomeInstallation     = "installation" // installation(_repositories) stored, caches told
	OutcomeIgnored          = "ignored"      // another event (or workflow_job action) stored, nothing else done
	OutcomeDuplicate        = "duplicate"    // the delivery GUID was known: nothing changed
	OutcomeMethodNotAllowed = "method_not_allowed"
	OutcomeTooLarge         = "too_large"
	OutcomeBadSignature     = "bad_signature"
	OutcomeBadRequest       = "bad_request"
	OutcomeStoreError       = "store_error"
)

// knownEvents are the event label values kept as they are.
var knownEvents = map[string]bool{
	"workflow_job": true, "workflow_run": true, "ping": true,
	"installation": true, "installation_repositories": true,
}

// knownActions are the action label values kept as they are: those of the
// events above.
var knownActions = map[string]bool{
	"queued": true, "waiting": true, "in_progress": true, "completed": true, "requested": true,
	"created": true, "deleted": true, "suspend": true, "unsuspend": true, "new_permissions_accepted": true,
	"added": true, "removed": true,
}

// eventLabel and actionLabel bound label values: header values and payloads
// are chosen by whoever sends the request.
func eventLabel(e string) string {
	switch {
	case e == "":
		return "none"
	case knownEvents[e]:
		return e
	}
	return "other"
}

func actionLabel(a string) string {
	switch {
	case a == "":
		return "none"
	case knownActions[a]:
		return a
	}
	return "other"
}

type nopMetrics struct{}

func (nopMetrics) ObserveDelivery(string, string, string, time.Duration) {}

// PrometheusMetrics exports runnerscaler_webhook_deliveries_total{event,
// action,outcome} and runnerscaler_webhook_request_duration_seconds.
type PrometheusMetrics struct {
	deliveries *prometheus.CounterVec
	duration   prometheus.Histogram
}

var _ Metrics = (*PrometheusMetrics)(nil)

// NewPrometheusMetrics registers the webhook metrics on reg.
func NewPrometheusMetrics(reg prometheus.Registerer) (*PrometheusMetrics, error) {
	m := &PrometheusMetrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "runnerscaler", Subsystem: "webhook", Name: "deliveries_total",
			Help: "Webhook requests by event, action and outcome (job, ping, installation, ignored, duplicate, " +
				"or a refusal: method_not_allowed, too_large, bad_signature, bad_request, store_error). " +
				"Events and actions the daemon does not know are counted as \"other\".",
		}, []string{"event", "action", "outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "runnerscaler", Subsystem: "webhook", Name: "request_duration_seconds",
			Help:    "Time from a webhook request's arrival to its answer, the store's commit included.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}),
	}
	for _, c := range []prometheus.Collector{m.deliveries, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ObserveDelivery implements Metrics.
func (m *PrometheusMetrics) ObserveDelivery(event, action, outcome string, d time.Duration) {
	m.deliveries.WithLabelValues(event, action, outcome).Inc()
	m.duration.Observe(d.Seconds())
}
