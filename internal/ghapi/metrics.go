package ghapi

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/runnerscaler/runnerscaler/internal/ghapi/transport"
)

// PrometheusRecorder exports every GitHub request and the rate-limit budget.
// Labels are bounded: routes are templates, installations are few.
type PrometheusRecorder struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	limit     *prometheus.GaugeVec
	remaining *prometheus.GaugeVec
	reset     *prometheus.GaugeVec
}

var _ transport.Recorder = (*PrometheusRecorder)(nil)

// NewPrometheusRecorder registers the GitHub metrics on reg.
func NewPrometheusRecorder(reg prometheus.Registerer) (*PrometheusRecorder, error) {
	r := &PrometheusRecorder{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "runnerscaler", Subsystem: "github", Name: "requests_total",
			Help: "GitHub API requests by templated route and HTTP status (0 for a transport error), one per attempt.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "runnerscaler", Subsystem: "github", Name: "request_duration_seconds",
			Help:    "GitHub API request latency by templated route, one observation per attempt.",
			Buckets: []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		limit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "runnerscaler", Subsystem: "github", Name: "rate_limit_limit",
			Help: "Requests allowed per window, as GitHub last reported it.",
		}, []string{"installation", "resource"}),
		remaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "runnerscaler", Subsystem: "github", Name: "rate_limit_remaining",
			Help: "Requests left in the current window, as GitHub last reported it.",
		}, []string{"installation", "resource"}),
		reset: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "runnerscaler", Subsystem: "github", Name: "rate_limit_reset_timestamp_seconds",
			Help: "When the current rate-limit window ends, Unix seconds.",
		}, []string{"installation", "resource"}),
	}
	for _, c := range []prometheus.Collector{r.requests, r.duration, r.limit, r.remaining, r.reset} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// ObserveRequest implements transport.Recorder.
func (r *PrometheusRecorder) ObserveRequest(route string, code int, d time.Duration) {
	r.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	r.duration.WithLabelValues(route).Observe(d.Seconds())
}

// ObserveRateLimit implements transport.Recorder.
func (r *PrometheusRecorder) ObserveRateLimit(installation, resource string, limit, remaining int, reset time.Time) {
	r.limit.WithLabelValues(installation, resource).Set(float64(limit))
	r.remaining.WithLabelValues(installation, resource).Set(float64(remaining))
	r.reset.WithLabelValues(installation, resource).Set(float64(reset.Unix()))
}
