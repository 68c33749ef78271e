package ghsim

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

// faults injects errors, latency and dropped connections into REST routes.
//
// Rules are tried in the order they were added; the first matching rule
// that still has firings left and wins its probability draw fires, and no
// other rule is tried. Draws come from the server's seeded source, and only
// for rules whose probability is below 1, so a run with the same seed and
// the same requests fires the same faults.
type faults struct {
	s *Server

	mu     sync.Mutex
	rules  []*FaultRule
	nextID int64
}

func newFaults(s *Server) *faults { return &faults{s: s} }

// FaultSpec is the body of POST /_sim/faults.
type FaultSpec struct {
	// Route is a templated route as internal/ghapi/transport.Route produces
	// it ("POST /orgs/{org}/actions/runners/generate-jitconfig"); "" or "*"
	// matches every route.
	Route string `json:"route"`
	// Status answers with this status and a GitHub-style JSON error body.
	Status int `json:"status"`
	// Probability that a matching request fires the rule; default 1.
	Probability *float64 `json:"probability"`
	// LatencyMS delays the request before the fault, or before it is served
	// normally when the rule has no status and no reset.
	LatencyMS int `json:"latency_ms"`
	// Count is how many times the rule may fire; 0 is unlimited.
	Count int `json:"count"`
	// Reset cuts the connection without an answer.
	Reset bool `json:"reset"`
	// RetryAfterS sets Retry-After (seconds) on a 403 or 429 answer.
	RetryAfterS int `json:"retry_after_s"`
	// Message overrides the error body's message.
	Message string `json:"message"`
}

// FaultRule is a rule as GET /_sim/faults lists it.
type FaultRule struct {
	ID          int64   `json:"id"`
	Route       string  `json:"route"`
	Status      int     `json:"status,omitempty"`
	Probability float64 `json:"probability"`
	LatencyMS   int     `json:"latency_ms,omitempty"`
	Count       int     `json:"count"`
	Reset       bool    `json:"reset,omitempty"`
	RetryAfterS int     `json:"retry_after_s,omitempty"`
	Message     string  `json:"message,omitempty"`
	Remaining   *int    `json:"remaining"` // null when unlimited
	Hits        int     `json:"hits"`
}

// faultView is a rule with its remaining firings filled in.
func faultView(r *FaultRule) FaultRule {
	v := *r
	if v.Count > 0 {
		left := v.Count - v.Hits
		v.Remaining = &left
	}
	return v
}

// faultMatches reports whether rule r applies to route.
func faultMatches(r *FaultRule, route string) bool {
	return r.Route == "" || r.Route == "*" || r.Route == route
}

// faultExhausted reports whether r has fired as often as it may.
func faultExhausted(r *FaultRule) bool { return r.Count > 0 && r.Hits >= r.Count }

// add validates spec and appends a rule.
func (f *faults) add(spec FaultSpec) (FaultRule, error) {
	p := 1.0
	if spec.Probability != nil {
		p = *spec.Probability
	}
	switch {
	case p <= 0 || p > 1:
		return FaultRule{}, fmt.Errorf("probability %v is outside (0, 1]: %w", p, world.ErrValidation)
	case spec.Status != 0 && (spec.Status < 400 || spec.Status > 599):
		return FaultRule{}, fmt.Errorf("status %d: want 400 to 599: %w", spec.Status, world.ErrValidation)
	case spec.Status != 0 && spec.Reset:
		return FaultRule{}, fmt.Errorf("status and reset exclude each other: %w", world.ErrValidation)
	case spec.LatencyMS < 0 || spec.Count < 0 || spec.RetryAfterS < 0:
		return FaultRule{}, fmt.Errorf("latency_ms, count and retry_after_s must not be negative: %w", world.ErrValidation)
	case spec.Status == 0 && !spec.Reset && spec.LatencyMS == 0:
		return FaultRule{}, fmt.Errorf("a fault needs status, reset or latency_ms: %w", world.ErrValidation)
	case spec.RetryAfterS > 0 && spec.Status != http.StatusForbidden && spec.Status != http.StatusTooManyRequests:
		return FaultRule{}, fmt.Errorf("retry_after_s goes with status 403 or 429: %w", world.ErrValidation)
	}
	route := strings.TrimSpace(spec.Route)
	if route != "" && route != "*" {
		method, path, ok := strings.Cut(route, " ")
		if !ok || method == "" || method != strings.ToUpper(method) || !strings.HasPrefix(path, "/") {
			return FaultRule{}, fmt.Errorf("route %q: want \"METHOD /templated/path\", \"*\" or empty: %w", spec.Route, world.ErrValidation)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	r := &FaultRule{
		ID: f.nextID, Route: route, Status: spec.Status, Probability: p, LatencyMS: spec.LatencyMS,
		Count: spec.Count, Reset: spec.Reset, RetryAfterS: spec.RetryAfterS, Message: spec.Message,
	}
	f.rules = append(f.rules, r)
	return faultView(r), nil
}

// list returns the rules in the order they are tried.
func (f *faults) list() []FaultRule {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]FaultRule, 0, len(f.rules))
	for _, r := range f.rules {
		out = append(out, faultView(r))
	}
	return out
}

// clear removes every rule.
func (f *faults) clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
}

// remove removes one rule.
func (f *faults) remove(id int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range f.rules {
		if r.ID == id {
			f.rules = append(f.rules[:i], f.rules[i+1:]...)
			return true
		}
	}
	return false
}

// fire picks the rule that fires for route, if any, and counts the hit.
func (f *faults) fire(route string) (FaultRule, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.rules {
		if !faultMatches(r, route) || faultExhausted(r) {
			continue
		}
		if r.Probability < 1 && f.s.rng.Float64() >= r.Probability {
			continue
		}
		r.Hits++
		return faultView(r), true
	}
	return FaultRule{}, false
}

// intercept applies a matching fault rule to a REST request on route
// ("METHOD /templated/path"). It returns true when it has answered (or cut
// the connection) and the request must not be served.
//
// A rule's latency is waited out first; if the client goes away meanwhile,
// intercept returns true without answering. A latency-only rule then lets
// the request be served (false).
func (f *faults) intercept(w http.ResponseWriter, r *http.Request, route string) bool {
	rule, ok := f.fire(route)
	if !ok {
		return false
	}
	if rule.LatencyMS > 0 {
		t := time.NewTimer(time.Duration(rule.LatencyMS) * time.Millisecond)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return true
		}
	}
	switch {
	case rule.Reset:
		faultCut(w)
		return true
	case rule.Status != 0:
		faultAnswer(w, rule)
		return true
	}
	return false
}

// faultCut drops the connection without an answer: a TCP reset where the
// connection can be hijacked, otherwise net/http's abort of the response.
func faultCut(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST rather than FIN, like a dropped connection
	}
	_ = conn.Close()
}

// faultAnswer writes GitHub's JSON error shape for an injected status.
func faultAnswer(w http.ResponseWriter, rule FaultRule) {
	msg := rule.Message
	doc := "https://docs.github.com/rest"
	if msg == "" {
		switch rule.Status {
		case http.StatusForbidden, http.StatusTooManyRequests:
			msg = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
			doc = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
		default:
			msg = http.StatusText(rule.Status)
			if msg == "" {
				msg = "Simulated fault"
			}
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Sim-Fault", strconv.FormatInt(rule.ID, 10))
	if rule.RetryAfterS > 0 {
		h.Set("Retry-After", strconv.Itoa(rule.RetryAfterS))
	}
	w.WriteHeader(rule.Status)
	_ = json.NewEncoder(w).Encode(map[string]string{
		"message":           msg,
		"documentation_url": doc,
		"status":            strconv.Itoa(rule.Status),
	})
}
