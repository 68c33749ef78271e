package transport

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRateLimitErrorMessage(t *testing.T) {
	reset := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		err  RateLimitError
		want string
	}{
		{RateLimitError{Installation: "42", Resource: "core", Reset: reset, RetryAfter: 12*time.Minute + 3*time.Second + 400*time.Millisecond, RequestID: "ABCD:1234"},
			"github rate limit exhausted for installation 42 resource core: resets at 2026-01-02T03:04:05Z (in 12m3s); request id ABCD:1234"},
		{RateLimitError{Installation: "app", Reset: reset, RetryAfter: time.Minute, Route: "GET /app"},
			"github rate limit exhausted for app resource core: resets at 2026-01-02T03:04:05Z (in 1m0s); request not sent"},
		{RateLimitError{Installation: "pat", Secondary: true, RetryAfter: 7 * time.Second, Route: jitRoute, RequestID: "X:1"},
			"github secondary rate limit for pat on " + jitRoute + ": retry after 7s; reduce request concurrency or rate; request id X:1"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() =\n  %q\nwant\n  %q", got, tc.want)
		}
	}
}

func hdrs(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestRateTrackerOrdering(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	epoch := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	rt := newRateTracker("42")
	steps := []struct {
		h             http.Header
		wantRemaining int
		wantReset     time.Duration
	}{
		{hdrs("X-RateLimit-Remaining", "100", "X-RateLimit-Reset", epoch(time.Hour)), 100, time.Hour},
		{hdrs("X-RateLimit-Remaining", "90", "X-RateLimit-Reset", epoch(time.Hour)), 90, time.Hour},
		// A late response of the same window does not raise remaining.
		{hdrs("X-RateLimit-Remaining", "95", "X-RateLimit-Reset", epoch(time.Hour)), 90, time.Hour},
		// A late response from a window that has ended is ignored.
		{hdrs("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", epoch(-time.Minute)), 90, time.Hour},
		// A new window replaces the old one.
		{hdrs("X-RateLimit-Remaining", "4999", "X-RateLimit-Reset", epoch(2*time.Hour)), 4999, 2 * time.Hour},
		// An earlier reset still in the future is the latest word: taken.
		{hdrs("X-RateLimit-Remaining", "70", "X-RateLimit-Reset", epoch(30*time.Minute)), 70, 30 * time.Minute},
		// Headers without remaining/reset change nothing.
		{hdrs("X-RateLimit-Limit", "1"), 70, 30 * time.Minute},
	}
	for i, s := range steps {
		rt.observe(runnersGET, s.h, now)
		st, ok := rt.state(rateKey{"42", "core"})
		if !ok || st.Remaining != s.wantRemaining || !st.Reset.Equal(now.Add(s.wantReset)) || st.Installation != "42" {
			t.Errorf("step %d: state = %+v", i, st)
		}
	}
	if k := rt.key(runnersGET); k != (rateKey{"42", "core"}) {
		t.Errorf("key = %+v", k)
	}
	rt.observe("GET other", hdrs("X-RateLimit-Remaining", "1", "X-RateLimit-Reset", epoch(time.Hour), "X-RateLimit-Resource", "search"), now)
	if k := rt.key("GET other"); k.resource != "core" {
		t.Errorf("an unknown route learned resource %q; it must stay core", k.resource)
	}
	if k := rt.key("POST /app/installations/{installation_id}/access_tokens"); k != (rateKey{"app", "core"}) {
		t.Errorf("App-JWT route key = %+v, want app/core", k)
	}
}

func TestAppJWTRoute(t *testing.T) {
	for route, want := range map[string]bool{
		"GET /app":               true,
		"GET /app/installations": true,
		"POST /app/installations/{installation_id}/access_tokens": true,
		"POST /app/hook/deliveries/{delivery_id}/attempts":        true,
		"GET /orgs/{org}/installation":                            true,
		"GET /repos/{owner}/{repo}/installation":                  true,
		"GET /installation/repositories":                          false,
		"GET /orgs/{org}/actions/runners":                         false,
		"GET other":                                               false,
	} {
		if got := appJWTRoute(route); got != want {
			t.Errorf("appJWTRoute(%q) = %v, want %v", route, got, want)
		}
	}
}

func TestStripRateHeaders(t *testing.T) {
	h := hdrs("X-RateLimit-Limit", "1", "X-RateLimit-Remaining", "0", "X-RateLimit-Used", "1",
		"X-RateLimit-Reset", "1", "X-RateLimit-Resource", "core", "X-GitHub-Request-Id", "A", "Retry-After", "3")
	h["x-ratelimit-odd"] = []string{"non-canonical"}
	stripRateHeaders(h)
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "x-ratelimit") {
			t.Errorf("%s kept", k)
		}
	}
	if h.Get("X-GitHub-Request-Id") != "A" || h.Get("Retry-After") != "3" {
		t.Errorf("unrelated headers removed: %v", h)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"7", 7 * time.Second, true},
		{" 0 ", 0, true},
		{"-3", 0, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"", 0, false},
		{"soon", 0, false},
	}
	for _, tc := range tests {
		got, ok := parseRetryAfter(hdrs("Retry-After", tc.v), now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}
