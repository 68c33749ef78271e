package recovery

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestPrometheusMetrics: every outcome series exists from the start, and
// counts add up.
func TestPrometheusMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewPrometheusMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg); n != 4+7 {
		t.Errorf("%d series before any count, want 11 (every outcome at zero)", n)
	}
	m.Redeliveries(RedeliveryRequested, 3)
	m.Redeliveries(RedeliveryRequested, 0)
	m.StaleJobChecks(StaleGone, 2)
	if got := testutil.ToFloat64(m.redeliveries.WithLabelValues(RedeliveryRequested)); got != 3 {
		t.Errorf("requested = %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.staleChecks.WithLabelValues(StaleGone)); got != 2 {
		t.Errorf("gone = %v, want 2", got)
	}
	if _, err := NewPrometheusMetrics(reg); err == nil {
		t.Error("registering twice on one registry succeeded")
	}
}
