package ghsim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

const fltRoute = "POST /orgs/{org}/actions/runners/generate-jitconfig"

func fltServer(t *testing.T, seed int64) *Server {
	t.Helper()
	s, err := New(Options{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func fltAdd(t *testing.T, s *Server, spec FaultSpec) FaultRule {
	t.Helper()
	r, err := s.faults.add(spec)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fltCall runs intercept on a recorded request and reports whether it answered.
func fltCall(s *Server, route string) (*httptest.ResponseRecorder, bool) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/orgs/octo-org/actions/runners/generate-jitconfig", nil)
	return rec, s.faults.intercept(rec, req, route)
}

func fltProb(p float64) *float64 { return &p }

func TestFaultCountFiresThenStops(t *testing.T) {
	s := fltServer(t, 1)
	rule := fltAdd(t, s, FaultSpec{Route: fltRoute, Status: 502, Count: 2})
	if rule.Remaining == nil || *rule.Remaining != 2 || rule.Probability != 1 {
		t.Fatalf("rule %+v", rule)
	}
	if _, hit := fltCall(s, "GET /rate_limit"); hit {
		t.Fatal("fired on another route")
	}
	for i := range 2 {
		rec, hit := fltCall(s, fltRoute)
		if !hit || rec.Code != 502 {
			t.Fatalf("call %d: hit %v code %d", i, hit, rec.Code)
		}
		var body struct {
			Message          string `json:"message"`
			DocumentationURL string `json:"documentation_url"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Message == "" || body.DocumentationURL == "" {
			t.Fatalf("body %q: %v", rec.Body, err)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Fatalf("Content-Type %q", ct)
		}
	}
	if _, hit := fltCall(s, fltRoute); hit {
		t.Fatal("fired a third time")
	}
	l := s.faults.list()
	if len(l) != 1 || l[0].Hits != 2 || *l[0].Remaining != 0 {
		t.Fatalf("list %+v", l)
	}
}

func TestFaultProbabilityIsReproducible(t *testing.T) {
	seq := func(seed int64) []bool {
		s := fltServer(t, seed)
		fltAdd(t, s, FaultSpec{Route: "*", Status: 503, Probability: fltProb(0.3)})
		var out []bool
		for range 64 {
			_, hit := fltCall(s, fltRoute)
			out = append(out, hit)
		}
		return out
	}
	a, b, c := seq(42), seq(42), seq(43)
	hits, same := 0, true
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 42 gives different faults at request %d", i)
		}
		if a[i] {
			hits++
		}
		same = same && a[i] == c[i]
	}
	if hits == 0 || hits == len(a) {
		t.Fatalf("%d of %d fired at p=0.3", hits, len(a))
	}
	if same {
		t.Fatal("seeds 42 and 43 give the same faults")
	}
}

func TestFaultFirstMatchingRuleWins(t *testing.T) {
	s := fltServer(t, 1)
	fltAdd(t, s, FaultSpec{Route: fltRoute, Status: 500, Count: 1})
	fltAdd(t, s, FaultSpec{Route: "", Status: 429, RetryAfterS: 7})
	rec, _ := fltCall(s, fltRoute)
	if rec.Code != 500 {
		t.Fatalf("first call %d, want 500", rec.Code)
	}
	rec, _ = fltCall(s, fltRoute)
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "7" {
		t.Fatalf("second call %d Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	rec, _ = fltCall(s, "GET /app")
	if rec.Code != 429 {
		t.Fatalf("wildcard rule: %d", rec.Code)
	}
}

func TestFaultResetCutsConnection(t *testing.T) {
	s := fltServer(t, 1)
	fltAdd(t, s, FaultSpec{Route: "GET /rate_limit", Reset: true, Count: 1})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.faults.intercept(w, r, "GET /rate_limit") {
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(srv.URL + "/rate_limit")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got %d, want a cut connection", resp.StatusCode)
	}
	resp, err = client.Get(srv.URL + "/rate_limit")
	if err != nil {
		t.Fatalf("after the rule ran out: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after the rule ran out: %d", resp.StatusCode)
	}
}

func TestFaultLatency(t *testing.T) {
	s := fltServer(t, 1)
	fltAdd(t, s, FaultSpec{Route: "GET /app", LatencyMS: 60, Count: 1})
	fltAdd(t, s, FaultSpec{Route: "GET /rate_limit", LatencyMS: 60, Status: 503, Count: 1})

	start := time.Now()
	rec, hit := fltCall(s, "GET /app")
	if hit || rec.Code != 200 || rec.Body.Len() != 0 {
		t.Fatal("a latency-only rule answered")
	}
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Fatalf("served after %v, want at least 60ms", d)
	}
	start = time.Now()
	rec, hit = fltCall(s, "GET /rate_limit")
	if !hit || rec.Code != 503 || time.Since(start) < 60*time.Millisecond {
		t.Fatalf("latency then 503: hit %v code %d after %v", hit, rec.Code, time.Since(start))
	}

	// The client going away ends the wait.
	fltAdd(t, s, FaultSpec{Route: "GET /app", LatencyMS: 60_000})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/app", nil)
	rec = httptest.NewRecorder()
	start = time.Now()
	if !s.faults.intercept(rec, req, "GET /app") {
		t.Fatal("a cancelled request is to be served")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("waited %v for a cancelled request", d)
	}
}

func TestFaultClearAndRemove(t *testing.T) {
	s := fltServer(t, 1)
	a := fltAdd(t, s, FaultSpec{Status: 500})
	fltAdd(t, s, FaultSpec{Status: 502})
	if !s.faults.remove(a.ID) || s.faults.remove(a.ID) {
		t.Fatal("remove")
	}
	if rec, _ := fltCall(s, fltRoute); rec.Code != 502 {
		t.Fatalf("after remove: %d", rec.Code)
	}
	s.faults.clear()
	if _, hit := fltCall(s, fltRoute); hit || len(s.faults.list()) != 0 {
		t.Fatal("rules remain after clear")
	}
}

func TestFaultValidation(t *testing.T) {
	s := fltServer(t, 1)
	for name, spec := range map[string]FaultSpec{
		"nothing to do":        {Route: fltRoute},
		"probability 0":        {Status: 500, Probability: fltProb(0)},
		"probability 2":        {Status: 500, Probability: fltProb(2)},
		"status 200":           {Status: 200},
		"status 600":           {Status: 600},
		"status and reset":     {Status: 500, Reset: true},
		"negative latency":     {LatencyMS: -1},
		"negative count":       {Status: 500, Count: -1},
		"retry-after with 500": {Status: 500, RetryAfterS: 3},
		"route without method": {Route: "/orgs/{org}", Status: 500},
		"lower-case method":    {Route: "get /app", Status: 500},
	} {
		if _, err := s.faults.add(spec); !errors.Is(err, world.ErrValidation) {
			t.Errorf("%s: %v, want ErrValidation", name, err)
		}
	}
	if len(s.faults.list()) != 0 {
		t.Fatal("an invalid rule was added")
	}
}
