package ghsim

import (
	"maps"
	"sync"
)

// stats counts what /_sim/stats reports; derived counts (jobs, violations)
// come from the world instead.
type stats struct {
	mu       sync.Mutex
	apiCalls map[string]int // "METHOD /templated/path"
	sent     int
	failed   int
	dropped  int
}

func newStats() *stats { return &stats{apiCalls: map[string]int{}} }

// apiCall counts one REST request by templated route.
func (s *stats) apiCall(route string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiCalls[route]++
}

// Webhook outcomes.
const (
	hookSent    = "sent"
	hookFailed  = "failed"
	hookDropped = "dropped"
)

// webhook counts one delivery attempt by outcome.
func (s *stats) webhook(outcome string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch outcome {
	case hookSent:
		s.sent++
	case hookFailed:
		s.failed++
	case hookDropped:
		s.dropped++
	}
}

// StatsSnapshot is the JSON body of GET /_sim/stats.
type StatsSnapshot struct {
	APICalls      map[string]int `json:"api_calls"`
	APICallsTotal int            `json:"api_calls_total"`
	Webhooks      struct {
		Sent    int `json:"sent"`
		Failed  int `json:"failed"`
		Dropped int `json:"dropped"`
	} `json:"webhooks"`
	Jobs struct {
		Waiting    int `json:"waiting"`
		Queued     int `json:"queued"`
		InProgress int `json:"in_progress"`
		Completed  int `json:"completed"`
	} `json:"jobs"`
	Violations struct {
		BusyRunnerDeleted int `json:"busy_runner_deleted"`
		JobRunnerKilled   int `json:"job_runner_killed"`
	} `json:"violations"`
}

// Stats returns the counters /_sim/stats reports.
func (s *Server) Stats() StatsSnapshot {
	var out StatsSnapshot
	s.stats.mu.Lock()
	out.APICalls = maps.Clone(s.stats.apiCalls)
	for _, n := range s.stats.apiCalls {
		out.APICallsTotal += n
	}
	out.Webhooks.Sent, out.Webhooks.Failed, out.Webhooks.Dropped = s.stats.sent, s.stats.failed, s.stats.dropped
	s.stats.mu.Unlock()
	jc := s.world.JobCounts()
	out.Jobs.Waiting, out.Jobs.Queued, out.Jobs.InProgress, out.Jobs.Completed = jc.Waiting, jc.Queued, jc.InProgress, jc.Completed
	v := s.world.Violations()
	out.Violations.BusyRunnerDeleted, out.Violations.JobRunnerKilled = v.BusyRunnerDeleted, v.JobRunnerKilled
	return out
}
