package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	runnersPath = "/orgs/acme/actions/runners"
	jitPath     = "/orgs/acme/actions/runners/generate-jitconfig"
	regPath     = "/orgs/acme/actions/runners/registration-token"
	jitRoute    = "POST /orgs/{org}/actions/runners/generate-jitconfig"
	runnersGET  = "GET /orgs/{org}/actions/runners"
)

func asRateLimit(t *testing.T, err error) *RateLimitError {
	t.Helper()
	var rle *RateLimitError
	if !errors.As(err, &rle) {
		t.Fatalf("error = %v (%T), want *RateLimitError", err, err)
	}
	return rle
}

func TestPrimaryLimitBeforeSending(t *testing.T) {
	tests := []struct {
		name      string
		deadline  time.Duration // 0: none
		path      string
		wantWait  bool
		wantError bool
	}{
		{name: "deadline after reset waits", deadline: time.Hour, path: runnersPath, wantWait: true},
		{name: "no deadline waits", path: runnersPath, wantWait: true},
		{name: "deadline before reset fails without sending", deadline: time.Minute, path: runnersPath, wantError: true},
		{name: "deadline just at reset fails", deadline: 10 * time.Minute, path: runnersPath, wantError: true},
		{name: "rate_limit is never blocked", deadline: time.Minute, path: "/rate_limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			e := newEnv(t, Options{Clock: clk},
				respond(200, "", rateHdrs(clk, "core", 5000, 0, 10*time.Minute)...),
				respond(200, `{"ok":true}`, rateHdrs(clk, "core", 5000, 4999, 70*time.Minute)...))
			resp, err := e.do(context.Background(), "GET", runnersPath, "")
			if err != nil {
				t.Fatal(err)
			}
			readClose(t, resp)
			reset := clk.Now().Add(10 * time.Minute)

			resp, err = e.do(withDeadline(t, clk, tc.deadline), "GET", tc.path, "")
			if tc.wantError {
				rle := asRateLimit(t, err)
				if rle.Secondary || rle.Resource != "core" || rle.Installation != "42" ||
					rle.Route != runnersGET || !rle.Reset.Equal(reset) || rle.RetryAfter != 10*time.Minute {
					t.Errorf("RateLimitError = %+v", rle)
				}
				if got := e.srv.Hits(); got != 1 {
					t.Errorf("server hits = %d, want 1 (second request must not be sent)", got)
				}
				if s := clk.Sleeps(); len(s) != 0 {
					t.Errorf("sleeps = %v, want none", s)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			readClose(t, resp)
			if got := e.srv.Hits(); got != 2 {
				t.Errorf("server hits = %d, want 2", got)
			}
			var want []time.Duration
			if tc.wantWait {
				want = []time.Duration{10*time.Minute + resetSlack}
			}
			if got := clk.Sleeps(); !slices.Equal(got, want) {
				t.Errorf("sleeps = %v, want %v", got, want)
			}
		})
	}
}

func TestPrimaryLimitIsPerLearnedResource(t *testing.T) {
	clk := newFakeClock()
	e := newEnv(t, Options{Clock: clk},
		respond(201, "", rateHdrs(clk, "actions_runner_registration", 100, 0, 5*time.Minute)...),
		respond(200, "", rateHdrs(clk, "core", 5000, 4000, time.Hour)...))
	ctx := withDeadline(t, clk, time.Minute)
	resp, err := e.do(ctx, "POST", jitPath, `{"name":"r1"}`)
	if err != nil {
		t.Fatal(err)
	}
	readClose(t, resp)

	// The JIT route learned its resource; it is exhausted.
	_, err = e.do(ctx, "POST", "/orgs/other/actions/runners/generate-jitconfig", `{"name":"r2"}`)
	if rle := asRateLimit(t, err); rle.Resource != "actions_runner_registration" || rle.Route != jitRoute {
		t.Errorf("RateLimitError = %+v", rle)
	}
	// A core route is not affected.
	resp, err = e.do(ctx, "GET", runnersPath, "")
	if err != nil {
		t.Fatalf("core request blocked: %v", err)
	}
	readClose(t, resp)
	if got := e.srv.Hits(); got != 2 {
		t.Errorf("server hits = %d, want 2", got)
	}
	lim := e.tr.Limits()
	if len(lim) != 2 || lim[0].Resource != "actions_runner_registration" || lim[0].Remaining != 0 ||
		lim[1].Resource != "core" || lim[1].Remaining != 4000 || lim[1].Used != 1000 || lim[1].Installation != "42" {
		t.Errorf("Limits() = %+v", lim)
	}
}

func TestAppJWTRoutesAccountedToApp(t *testing.T) {
	clk := newFakeClock()
	e := newEnv(t, Options{Clock: clk},
		respond(201, "", rateHdrs(clk, "core", 5000, 0, 20*time.Minute)...),      // App JWT bucket, exhausted
		respond(200, "", rateHdrs(clk, "core", 15000, 14000, 40*time.Minute)...)) // installation bucket
	ctx := withDeadline(t, clk, time.Minute)
	resp, err := e.do(ctx, "POST", "/app/installations/42/access_tokens", "")
	if err != nil {
		t.Fatal(err)
	}
	readClose(t, resp)
	// The installation's own budget is untouched by the App's.
	resp, err = e.do(ctx, "GET", runnersPath, "")
	if err != nil {
		t.Fatalf("installation request blocked by the App bucket: %v", err)
	}
	readClose(t, resp)
	_, err = e.do(ctx, "GET", "/orgs/acme/installation", "")
	if rle := asRateLimit(t, err); rle.Installation != "app" || rle.Resource != "core" {
		t.Errorf("RateLimitError = %+v", rle)
	}
	lim := e.tr.Limits()
	if len(lim) != 2 || lim[0].Installation != "42" || lim[0].Remaining != 14000 ||
		lim[1].Installation != "app" || lim[1].Remaining != 0 {
		t.Errorf("Limits() = %+v", lim)
	}
	rates := e.rec.Rates()
	if len(rates) != 2 || rates[0].Installation != "app" || rates[1].Installation != "42" {
		t.Errorf("ObserveRateLimit calls = %+v", rates)
	}
}

func TestRateLimitErrorThroughHTTPClient(t *testing.T) {
	clk := newFakeClock()
	e := newEnv(t, Options{Clock: clk}, respond(200, "", rateHdrs(clk, "core", 5000, 0, time.Hour)...))
	c := &http.Client{Transport: e.tr}
	resp, err := c.Get(e.srv.URL + runnersPath)
	if err != nil {
		t.Fatal(err)
	}
	readClose(t, resp)
	ctx := withDeadline(t, clk, time.Minute)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+runnersPath, nil)
	_, err = c.Do(req)
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Fatalf("error %T, want *url.Error", err)
	}
	asRateLimit(t, err)
}

func TestSecondaryLimitRetryAfter(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		path      string
		body      string
		status    int
		deadline  time.Duration
		forever   bool
		wantHits  int
		wantSleep []time.Duration
		wantErr   bool
	}{
		{name: "429 waits retry-after", method: "GET", path: runnersPath, status: 429,
			wantHits: 2, wantSleep: []time.Duration{7 * time.Second}},
		{name: "403 retry-after retries a non-retry-safe POST", method: "POST", path: jitPath, body: `{"name":"r1"}`,
			status: 403, wantHits: 2, wantSleep: []time.Duration{7 * time.Second}},
		{name: "retry-after beyond deadline fails", method: "GET", path: runnersPath, status: 429,
			deadline: 5 * time.Second, wantHits: 1, wantErr: true},
		{name: "attempts exhausted fails", method: "GET", path: runnersPath, status: 429, forever: true,
			wantHits: 4, wantErr: true,
			wantSleep: []time.Duration{7 * time.Second, 7 * time.Second, 7 * time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			steps := []step{respond(tc.status, `{"message":"slow down"}`, "Retry-After", "7", "X-GitHub-Request-Id", "ABCD:1")}
			if !tc.forever {
				steps = append(steps, respond(201, `{"ok":true}`))
			}
			e := newEnv(t, Options{Clock: clk}, steps...)
			resp, err := e.do(withDeadline(t, clk, tc.deadline), tc.method, tc.path, tc.body)
			if tc.wantErr {
				rle := asRateLimit(t, err)
				if !rle.Secondary || rle.RetryAfter != 7*time.Second || rle.RequestID != "ABCD:1" {
					t.Errorf("RateLimitError = %+v", rle)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if got := readClose(t, resp); got != `{"ok":true}` {
					t.Errorf("body = %q", got)
				}
			}
			seen := e.srv.Seen()
			if len(seen) != tc.wantHits {
				t.Fatalf("server hits = %d, want %d", len(seen), tc.wantHits)
			}
			for i, s := range seen {
				if s.Body != tc.body {
					t.Errorf("attempt %d body = %q, want %q", i+1, s.Body, tc.body)
				}
			}
			if got := clk.Sleeps(); !slices.Equal(got, tc.wantSleep) {
				t.Errorf("sleeps = %v, want %v", got, tc.wantSleep)
			}
			if in := e.tr.sem.InUse(); in != 0 {
				t.Errorf("semaphore slots in use = %d, want 0", in)
			}
		})
	}
}

func TestSecondaryLimitPausesOtherRequests(t *testing.T) {
	clk := newFakeClock()
	e := newEnv(t, Options{Clock: clk}, respond(429, "", "Retry-After", "30"))
	ctx := withDeadline(t, clk, 10*time.Second)
	_, err := e.do(ctx, "GET", runnersPath, "")
	asRateLimit(t, err)
	// Another route, same installation: refused without contacting GitHub.
	_, err = e.do(ctx, "GET", "/orgs/acme/actions/runner-groups", "")
	if rle := asRateLimit(t, err); !rle.Secondary || rle.RetryAfter != 30*time.Second {
		t.Errorf("RateLimitError = %+v", rle)
	}
	if got := e.srv.Hits(); got != 1 {
		t.Errorf("server hits = %d, want 1", got)
	}
}

func TestPrimaryLimit403WaitsForReset(t *testing.T) {
	for _, code := range []int{403, 429} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			clk := newFakeClock()
			e := newEnv(t, Options{Clock: clk},
				respond(code, `{"message":"API rate limit exceeded for installation ID 42."}`,
					rateHdrs(clk, "core", 5000, 0, 5*time.Minute)...),
				respond(200, `{"ok":true}`, rateHdrs(clk, "core", 5000, 4999, 65*time.Minute)...))
			resp, err := e.do(withDeadline(t, clk, time.Hour), "GET", runnersPath, "")
			if err != nil {
				t.Fatal(err)
			}
			readClose(t, resp)
			if got, want := clk.Sleeps(), []time.Duration{5*time.Minute + resetSlack}; !slices.Equal(got, want) {
				t.Errorf("sleeps = %v, want %v", got, want)
			}
			if got := e.srv.Hits(); got != 2 {
				t.Errorf("server hits = %d, want 2", got)
			}
			if lim := e.tr.Limits(); len(lim) != 1 || lim[0].Remaining != 4999 {
				t.Errorf("Limits() = %+v", lim)
			}
		})
	}
}

func TestPrimaryLimit403BeyondDeadline(t *testing.T) {
	clk := newFakeClock()
	e := newEnv(t, Options{Clock: clk},
		respond(403, "", append(rateHdrs(clk, "core", 5000, 0, 30*time.Minute), "X-GitHub-Request-Id", "ABCD:1234")...))
	_, err := e.do(withDeadline(t, clk, time.Minute), "GET", runnersPath, "")
	rle := asRateLimit(t, err)
	if rle.Secondary || rle.Limit != 5000 || rle.RetryAfter != 30*time.Minute || rle.RequestID != "ABCD:1234" {
		t.Errorf("RateLimitError = %+v", rle)
	}
	if !strings.Contains(err.Error(), "installation 42 resource core") || strings.Contains(err.Error(), "secret") {
		t.Errorf("Error() = %q", err)
	}
}

func TestSecondaryLimitBodyBacksOff(t *testing.T) {
	const secondary = `{"message":"You have exceeded a Secondary Rate Limit. Please wait a few minutes."}`
	tests := []struct {
		name      string
		steps     []step
		deadline  time.Duration
		wantHits  int
		wantSleep []time.Duration
		wantErr   bool
	}{
		{name: "gives up after MaxAttempts", steps: []step{respond(403, secondary)},
			wantHits: 4, wantErr: true,
			wantSleep: []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute}},
		{name: "recovers", steps: []step{respond(403, secondary), respond(403, secondary), respond(200, "")},
			wantHits: 3, wantSleep: []time.Duration{time.Minute, 2 * time.Minute}},
		{name: "bounded by deadline", steps: []step{respond(403, secondary)}, deadline: 2 * time.Minute,
			wantHits: 2, wantErr: true, wantSleep: []time.Duration{time.Minute}},
		{name: "429 without hints is a secondary limit", steps: []step{respond(429, "")},
			wantHits: 4, wantErr: true,
			wantSleep: []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			e := newEnv(t, Options{Clock: clk}, tc.steps...)
			resp, err := e.do(withDeadline(t, clk, tc.deadline), "GET", runnersPath, "")
			if tc.wantErr {
				if rle := asRateLimit(t, err); !rle.Secondary {
					t.Errorf("RateLimitError = %+v, want Secondary", rle)
				}
			} else if err != nil {
				t.Fatal(err)
			} else {
				readClose(t, resp)
			}
			if got := e.srv.Hits(); got != tc.wantHits {
				t.Errorf("server hits = %d, want %d", got, tc.wantHits)
			}
			if got := clk.Sleeps(); !slices.Equal(got, tc.wantSleep) {
				t.Errorf("sleeps = %v, want %v", got, tc.wantSleep)
			}
		})
	}
}

func TestPermission403ReturnedAsIs(t *testing.T) {
	const body = `{"message":"Resource not accessible by integration"}`
	e := newEnv(t, Options{}, respond(403, body))
	resp, err := e.do(context.Background(), "GET", runnersPath, "")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 403 {
		t.Errorf("status = %d", resp.StatusCode)
	}
	if got := readClose(t, resp); got != body {
		t.Errorf("body = %q, want %q (re-attached intact)", got, body)
	}
	if got := e.srv.Hits(); got != 1 {
		t.Errorf("server hits = %d, want 1", got)
	}
	if in := e.tr.sem.InUse(); in != 0 {
		t.Errorf("slots in use after close = %d", in)
	}
}

func TestServerErrors(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		steps      []step
		opts       Options
		wantHits   int
		wantStatus int
		wantSleep  []time.Duration
		wantCodes  []int // recorded per attempt
	}{
		{name: "502 then 200", method: "GET", path: runnersPath,
			steps:    []step{respond(502, ""), respond(200, "")},
			wantHits: 2, wantStatus: 200, wantSleep: []time.Duration{250 * time.Millisecond}, wantCodes: []int{502, 200}},
		{name: "502 forever surfaces after MaxAttempts", method: "GET", path: runnersPath,
			steps:    []step{respond(502, "")},
			wantHits: 4, wantStatus: 502,
			wantSleep: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second}, wantCodes: []int{502, 502, 502, 502}},
		{name: "back-off capped at MaxBackoff", method: "DELETE", path: runnersPath + "/7",
			steps:    []step{respond(503, "")},
			opts:     Options{MaxAttempts: 5, MinBackoff: time.Second, MaxBackoff: 3 * time.Second},
			wantHits: 5, wantStatus: 503,
			wantSleep: []time.Duration{500 * time.Millisecond, time.Second, 1500 * time.Millisecond, 1500 * time.Millisecond}, wantCodes: []int{503, 503, 503, 503, 503}},
		{name: "generate-jitconfig is sent once", method: "POST", path: jitPath, body: `{"name":"r1"}`,
			steps:    []step{respond(502, ""), respond(201, "")},
			wantHits: 1, wantStatus: 502, wantCodes: []int{502}},
		{name: "registration-token is retried", method: "POST", path: regPath,
			steps:    []step{respond(502, ""), respond(201, "")},
			wantHits: 2, wantStatus: 201, wantSleep: []time.Duration{250 * time.Millisecond}, wantCodes: []int{502, 201}},
		{name: "add labels is retried with its body", method: "POST", path: runnersPath + "/7/labels", body: `{"labels":["gpu"]}`,
			steps:    []step{respond(500, ""), respond(504, ""), respond(200, "")},
			wantHits: 3, wantStatus: 200, wantSleep: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}, wantCodes: []int{500, 504, 200}},
		{name: "unknown POST is sent once", method: "POST", path: "/orgs/acme/something", body: "{}",
			steps:    []step{respond(500, ""), respond(201, "")},
			wantHits: 1, wantStatus: 500, wantCodes: []int{500}},
		{name: "501 is not retried", method: "GET", path: runnersPath,
			steps:    []step{respond(501, ""), respond(200, "")},
			wantHits: 1, wantStatus: 501, wantCodes: []int{501}},
		{name: "404 is not retried", method: "GET", path: runnersPath + "/7",
			steps:    []step{respond(404, ""), respond(200, "")},
			wantHits: 1, wantStatus: 404, wantCodes: []int{404}},
		{name: "422 is not retried", method: "POST", path: regPath,
			steps:    []step{respond(422, ""), respond(201, "")},
			wantHits: 1, wantStatus: 422, wantCodes: []int{422}},
		{name: "409 is not retried", method: "POST", path: jitPath, body: "{}",
			steps:    []step{respond(409, ""), respond(201, "")},
			wantHits: 1, wantStatus: 409, wantCodes: []int{409}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			opts := tc.opts
			opts.Clock = clk
			opts.Rand = func() float64 { return 0.5 }
			e := newEnv(t, opts, tc.steps...)
			resp, err := e.do(context.Background(), tc.method, tc.path, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			readClose(t, resp)
			seen := e.srv.Seen()
			if len(seen) != tc.wantHits {
				t.Fatalf("server hits = %d, want %d", len(seen), tc.wantHits)
			}
			for i, s := range seen {
				if s.Body != tc.body {
					t.Errorf("attempt %d body = %q, want %q", i+1, s.Body, tc.body)
				}
			}
			if got := clk.Sleeps(); !slices.Equal(got, tc.wantSleep) {
				t.Errorf("sleeps = %v, want %v", got, tc.wantSleep)
			}
			route := Route(tc.method, tc.path)
			var want []observedRequest
			for _, code := range tc.wantCodes {
				want = append(want, observedRequest{route, code})
			}
			if got := e.rec.Requests(); !slices.Equal(got, want) {
				t.Errorf("recorded %v, want %v", got, want)
			}
		})
	}
}

func TestBackoffWithinBounds(t *testing.T) {
	tr := New(Options{Rand: func() float64 { return 0.999999 }})
	prev := time.Duration(0)
	for n := 1; n <= 10; n++ {
		d := tr.backoff(n)
		if d < prev || d > defaultMaxBackoff {
			t.Errorf("backoff(%d) = %v (prev %v)", n, d, prev)
		}
		prev = d
	}
	if d := tr.backoff(1); d >= defaultMinBackoff {
		t.Errorf("backoff(1) = %v, want < %v", d, defaultMinBackoff)
	}
	tr = New(Options{Rand: func() float64 { return 0 }})
	if d := tr.backoff(3); d != 0 {
		t.Errorf("full jitter with Rand 0 = %v, want 0", d)
	}
}

func TestConnectionErrors(t *testing.T) {
	// A port that refuses connections: listen, note the address, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()

	tests := []struct {
		name        string
		method      string
		path        string
		refused     bool
		steps       []step
		wantAttempt int
		wantErr     bool
	}{
		{name: "refused GET retried", method: "GET", path: runnersPath, refused: true, wantAttempt: 4, wantErr: true},
		{name: "refused jitconfig retried (never sent)", method: "POST", path: jitPath, refused: true, wantAttempt: 4, wantErr: true},
		{name: "hang-up GET retried", method: "GET", path: runnersPath,
			steps: []step{hangUp, respond(200, "")}, wantAttempt: 2},
		{name: "hang-up jitconfig not retried", method: "POST", path: jitPath,
			steps: []step{hangUp, respond(201, "")}, wantAttempt: 1, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			e := newEnv(t, Options{Clock: clk, Base: &http.Transport{DisableKeepAlives: true}}, tc.steps...)
			target := e.srv.URL
			if tc.refused {
				target = "http://" + refused
			}
			req, _ := http.NewRequest(tc.method, target+tc.path, strings.NewReader(`{"name":"r"}`))
			resp, err := e.tr.RoundTrip(req)
			if tc.wantErr != (err != nil) {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if resp != nil {
				readClose(t, resp)
			}
			got := e.rec.Requests()
			if len(got) != tc.wantAttempt || got[0].Code != 0 {
				t.Errorf("recorded attempts %v, want %d with first code 0", got, tc.wantAttempt)
			}
			if !tc.refused && e.srv.Hits() != tc.wantAttempt {
				t.Errorf("server hits = %d, want %d", e.srv.Hits(), tc.wantAttempt)
			}
			if in := e.tr.sem.InUse(); in != 0 {
				t.Errorf("slots in use = %d", in)
			}
		})
	}
}

func TestBodyWithoutGetBodyIsNotRetried(t *testing.T) {
	e := newEnv(t, Options{}, respond(502, ""), respond(201, ""))
	req, _ := http.NewRequest("POST", e.srv.URL+regPath, io.NopCloser(strings.NewReader("{}")))
	req.GetBody = nil
	resp, err := e.tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	readClose(t, resp)
	if resp.StatusCode != 502 || e.srv.Hits() != 1 {
		t.Errorf("status %d after %d hits, want 502 after 1", resp.StatusCode, e.srv.Hits())
	}
}

func TestHeadersAndRateLimitStripping(t *testing.T) {
	clk := newFakeClock()
	e := newEnv(t, Options{Clock: clk, UserAgent: "runnerscaler/test", Installation: "app"},
		respond(200, "", append(rateHdrs(clk, "core", 5000, 4321, 30*time.Minute), "X-GitHub-Request-Id", "R:1")...),
		respond(200, ""))

	resp, err := e.do(context.Background(), "GET", "/api/v3/app", "")
	if err != nil {
		t.Fatal(err)
	}
	readClose(t, resp)
	for k := range resp.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-ratelimit-") {
			t.Errorf("header %s not stripped", k)
		}
	}
	if resp.Header.Get("X-GitHub-Request-Id") != "R:1" {
		t.Errorf("request id header lost")
	}
	got := e.srv.Seen()[0].Header
	for k, want := range map[string]string{
		"X-GitHub-Api-Version": "2022-11-28",
		"Accept":               "application/vnd.github+json",
		"User-Agent":           "runnerscaler/test",
		"Authorization":        "Bearer ghs_secret-token",
	} {
		if got.Get(k) != want {
			t.Errorf("sent %s = %q, want %q", k, got.Get(k), want)
		}
	}

	// Headers the caller set are kept.
	req, _ := http.NewRequest("GET", e.srv.URL+"/app", nil)
	req.Header.Set("X-GitHub-Api-Version", "2026-03-10")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "go-github/v62")
	resp, err = e.tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	readClose(t, resp)
	if resp.Request != req {
		t.Errorf("resp.Request is not the caller's request")
	}
	if len(req.Header) != 3 {
		t.Errorf("caller's request was modified: %v", req.Header)
	}
	got = e.srv.Seen()[1].Header
	if got.Get("X-GitHub-Api-Version") != "2026-03-10" || got.Get("Accept") != "application/json" ||
		got.Get("User-Agent") != "go-github/v62" {
		t.Errorf("caller headers overwritten: %v", got)
	}

	reset := clk.Now().Add(30 * time.Minute)
	wantState := RateState{Installation: "app", Resource: "core", Limit: 5000, Remaining: 4321, Used: 679,
		Reset: reset, Observed: clk.Now()}
	if lim := e.tr.Limits(); len(lim) != 1 || lim[0] != wantState {
		t.Errorf("Limits() = %+v, want %+v", lim, wantState)
	}
	if rates := e.rec.Rates(); len(rates) != 1 ||
		rates[0] != (observedRate{"app", "core", 5000, 4321, reset}) {
		t.Errorf("ObserveRateLimit calls = %+v", rates)
	}
	if reqs := e.rec.Requests(); !slices.Equal(reqs, []observedRequest{{"GET /app", 200}, {"GET /app", 200}}) {
		t.Errorf("ObserveRequest calls = %+v", reqs)
	}
}

func TestLogsNeverContainCredentials(t *testing.T) {
	clk := newFakeClock()
	e := newEnv(t, Options{Clock: clk, Rand: func() float64 { return 0.5 }},
		respond(502, "", "X-GitHub-Request-Id", "R:9"))
	resp, err := e.do(context.Background(), "GET", runnersPath+"?per_page=100", "")
	if err != nil {
		t.Fatal(err)
	}
	readClose(t, resp)
	entries := e.logs.All()
	if len(entries) != 4 { // three retries at Debug, one give-up at Warn
		t.Fatalf("log entries = %d, want 4", len(entries))
	}
	last := entries[len(entries)-1]
	if last.Level.String() != "warn" {
		t.Errorf("last entry level = %s, want warn", last.Level)
	}
	for _, en := range entries {
		m := en.ContextMap()
		if m["route"] != runnersGET || m["installation"] != "42" || m["request_id"] != "R:9" {
			t.Errorf("entry %q fields = %v", en.Message, m)
		}
		for _, key := range []string{"status", "attempt"} {
			if _, ok := m[key]; !ok {
				t.Errorf("entry %q lacks %s", en.Message, key)
			}
		}
		for k, v := range m {
			if s, ok := v.(string); ok && strings.Contains(s, "secret") {
				t.Errorf("entry %q field %s leaks a credential", en.Message, k)
			}
		}
	}
}

func TestCancelDuringWaits(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		prime bool // first exhaust the core bucket, so the second request waits at the gate
	}{
		{name: "5xx back-off", steps: []step{respond(502, "")}},
		{name: "secondary limit", steps: []step{respond(429, "", "Retry-After", "60")}},
		{name: "primary limit gate", prime: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newBlockingClock()
			steps := tc.steps
			if tc.prime {
				steps = []step{respond(200, "", rateHdrs(clk, "core", 5000, 0, time.Hour)...)}
			}
			e := newEnv(t, Options{Clock: clk}, steps...)
			if tc.prime {
				resp, err := e.do(context.Background(), "GET", runnersPath, "")
				if err != nil {
					t.Fatal(err)
				}
				readClose(t, resp)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				resp, err := e.do(ctx, "GET", runnersPath, "")
				if resp != nil {
					resp.Body.Close()
				}
				done <- err
			}()
			<-clk.entered // the transport is now waiting
			cancel()
			err := <-done
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if in := e.tr.sem.InUse(); in != 0 {
				t.Errorf("slots in use = %d (discarded body not closed?)", in)
			}
		})
	}
}

func TestRealClockSleep(t *testing.T) {
	c := RealClock()
	if err := c.Sleep(context.Background(), 0); err != nil {
		t.Errorf("Sleep(0) = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep on cancelled ctx = %v", err)
	}
	if d := time.Since(c.Now()); d < 0 || d > time.Minute {
		t.Errorf("Now() off by %v", d)
	}
}
