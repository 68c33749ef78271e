package transport

import "time"

// Recorder receives the transport's observations; the metrics layer
// implements it. Implementations must be safe for concurrent use and must not
// block.
type Recorder interface {
	// ObserveRequest is called once per attempt with the templated route
	// (see Route), the HTTP status code (0 for a transport error) and the
	// attempt's duration.
	ObserveRequest(route string, code int, d time.Duration)
	// ObserveRateLimit is called whenever a response carries rate-limit
	// headers, with the tracked state of that (installation, resource).
	ObserveRateLimit(installation, resource string, limit, remaining int, reset time.Time)
}

// DiscardRecorder returns a Recorder that drops every observation.
func DiscardRecorder() Recorder { return discardRecorder{} }

type discardRecorder struct{}

func (discardRecorder) ObserveRequest(string, int, time.Duration) {}

func (discardRecorder) ObserveRateLimit(string, string, int, int, time.Time) {}
