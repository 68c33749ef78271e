package provisioner

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Recorder receives one observation per provisioner operation.
type Recorder interface {
	ObserveOperation(provisioner, operation, outcome string, d time.Duration)
}

type discardRecorder struct{}

func (discardRecorder) ObserveOperation(string, string, string, time.Duration) {}

// Outcomes of an operation.
const (
	OutcomeOK       = "ok"
	OutcomeNotFound = "not_found"
	OutcomeError    = "error"
)

// RetryPolicy bounds the retries of Instrumented.
type RetryPolicy struct {
	Attempts   int           // total attempts, first included; default 3
	MinBackoff time.Duration // default 500ms; full jitter, doubling
	MaxBackoff time.Duration // default 10s
	Sleep      func(ctx context.Context, d time.Duration) error
}

// Instrumented wraps a provisioner: every operation is timed and counted with
// its outcome, and retried with jittered back-off where that cannot create a
// second instance — Delete, List and Get always (they are idempotent), Create
// only after an error marked NotCreated. Permanent errors and ErrNotFound are
// never retried.
type Instrumented struct {
	name   string
	inner  Provisioner
	rec    Recorder
	retry  RetryPolicy
	logger *zap.Logger
}

var _ Provisioner = (*Instrumented)(nil)

// Instrument wraps p, which is provisioners.<name>.
func Instrument(name string, p Provisioner, rec Recorder, retry RetryPolicy, logger *zap.Logger) *Instrumented {
	if rec == nil {
		rec = discardRecorder{}
	}
	if retry.Attempts <= 0 {
		retry.Attempts = 3
	}
	if retry.MinBackoff <= 0 {
		retry.MinBackoff = 500 * time.Millisecond
	}
	if retry.MaxBackoff <= 0 {
		retry.MaxBackoff = 10 * time.Second
	}
	if retry.Sleep == nil {
		retry.Sleep = sleepCtx
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Instrumented{name: name, inner: p, rec: rec, retry: retry, logger: logger}
}

// Unwrap returns the wrapped provisioner.
func (i *Instrumented) Unwrap() Provisioner { return i.inner }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// do runs op with timing, counting and the retry rule retryable.
func (i *Instrumented) do(ctx context.Context, operation string, retryable func(error) bool, op func() error) error {
	var err error
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err = op()
		outcome := OutcomeOK
		switch {
		case errors.Is(err, ErrNotFound):
			outcome = OutcomeNotFound
		case err != nil:
			outcome = OutcomeError
		}
		i.rec.ObserveOperation(i.name, operation, outcome, time.Since(start))
		if err == nil || errors.Is(err, ErrNotFound) || IsPermanent(err) || !retryable(err) || attempt >= i.retry.Attempts {
			return err
		}
		ceil := min(i.retry.MinBackoff<<(attempt-1), i.retry.MaxBackoff)
		wait := time.Duration(rand.Float64() * float64(ceil))
		i.logger.Warn("provisioner operation failed; retrying",
			zap.String("provisioner", i.name), zap.String("operation", operation),
			zap.Int("attempt", attempt), zap.Duration("wait", wait), zap.Error(err))
		if serr := i.retry.Sleep(ctx, wait); serr != nil {
			return errors.Join(err, serr)
		}
	}
}

func always(error) bool { return true }

// Create implements Provisioner.
func (i *Instrumented) Create(ctx context.Context, spec Spec) (Instance, error) {
	var inst Instance
	err := i.do(ctx, "create", IsNotCreated, func() (err error) {
		inst, err = i.inner.Create(ctx, spec)
		return err
	})
	return inst, err
}

// Delete implements Provisioner.
func (i *Instrumented) Delete(ctx context.Context, id string) error {
	return i.do(ctx, "delete", always, func() error { return i.inner.Delete(ctx, id) })
}

// List implements Provisioner.
func (i *Instrumented) List(ctx context.Context) ([]Instance, error) {
	var out []Instance
	err := i.do(ctx, "list", always, func() (err error) {
		out, err = i.inner.List(ctx)
		return err
	})
	return out, err
}

// Get implements Provisioner.
func (i *Instrumented) Get(ctx context.Context, id string) (Instance, error) {
	var inst Instance
	err := i.do(ctx, "get", always, func() (err error) {
		inst, err = i.inner.Get(ctx, id)
		return err
	})
	return inst, err
}

// PrometheusRecorder exports runnerscaler_provisioner_operations_total and
// runnerscaler_provisioner_operation_duration_seconds.
type PrometheusRecorder struct {
	ops *prometheus.CounterVec
	dur *prometheus.HistogramVec
}

// NewPrometheusRecorder registers the provisioner metrics on reg.
func NewPrometheusRecorder(reg prometheus.Registerer) (*PrometheusRecorder, error) {
	r := &PrometheusRecorder{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "runnerscaler", Subsystem: "provisioner", Name: "operations_total",
			Help: "Provisioner operations by provisioner, operation (create, delete, list, get) and outcome, one per attempt.",
		}, []string{"provisioner", "operation", "outcome"}),
		dur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "runnerscaler", Subsystem: "provisioner", Name: "operation_duration_seconds",
			Help:    "Provisioner operation latency, one observation per attempt.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"provisioner", "operation"}),
	}
	for _, c := range []prometheus.Collector{r.ops, r.dur} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// ObserveOperation implements Recorder.
func (r *PrometheusRecorder) ObserveOperation(provisioner, operation, outcome string, d time.Duration) {
	r.ops.WithLabelValues(provisioner, operation, outcome).Inc()
	r.dur.WithLabelValues(provisioner, operation).Observe(d.Seconds())
}
