package ghapi_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/clocktest"
	"github.com/runnerscaler/runnerscaler/internal/ghapi"
	"github.com/runnerscaler/runnerscaler/internal/oapitest"
)

func newFakeClient(t *testing.T, srv *oapitest.Server, clock *clocktest.Clock) *ghapi.Client {
	t.Helper()
	c, err := ghapi.New(ghapi.Options{APIURL: srv.URL, Token: "ghp_testtoken", Clock: clock, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func errorReply(status int, message string, hdr ...string) oapitest.Response {
	h := http.Header{"Content-Type": {"application/json"}, "X-Github-Request-Id": {"CAFE:0001"}}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Set(hdr[i], hdr[i+1])
	}
	return oapitest.Response{Status: status, Header: h,
		Body: []byte(`{"message":"` + message + `","documentation_url":"https://docs.github.com/rest"}`)}
}

func TestTypedErrors(t *testing.T) {
	clock := clocktest.New(time.Unix(1_800_000_000, 0))
	tests := []struct {
		name  string
		op    string
		reply oapitest.Response
		call  func(context.Context, *ghapi.Client) error
		is    []error
		isNot []error
	}{
		{"404 runner", "actions/get-self-hosted-runner-for-org", errorReply(404, "Not Found"),
			func(ctx context.Context, c *ghapi.Client) error { _, err := c.GetRunner(ctx, orgScope, 5); return err },
			[]error{ghapi.ErrNotFound}, []error{ghapi.ErrConflict, ghapi.ErrRunnerBusy}},
		{"409 jit name taken", "actions/generate-runner-jitconfig-for-org", errorReply(409, "Already exists - A runner with the name rs-1 already exists."),
			func(ctx context.Context, c *ghapi.Client) error {
				_, err := c.GenerateJITConfig(ctx, orgScope, ghapi.JITRequest{Name: "rs-1", RunnerGroupID: 1, Labels: []string{"x"}})
				return err
			},
			[]error{ghapi.ErrConflict}, []error{ghapi.ErrNotFound}},
		{"422 delete busy runner", "actions/delete-self-hosted-runner-from-repo", errorReply(422, "Bad request - Runner rs-1 is still running a job"),
			func(ctx context.Context, c *ghapi.Client) error { return c.DeleteRunner(ctx, repoScope, 5) },
			[]error{ghapi.ErrRunnerBusy, ghapi.ErrValidation}, []error{ghapi.ErrNotFound}},
		{"422 elsewhere is not busy", "actions/add-custom-labels-to-self-hosted-runner-for-org", errorReply(422, "Validation Failed"),
			func(ctx context.Context, c *ghapi.Client) error {
				_, err := c.AddRunnerLabels(ctx, orgScope, 5, []string{"x"})
				return err
			},
			[]error{ghapi.ErrValidation}, []error{ghapi.ErrRunnerBusy}},
		{"401", "actions/list-self-hosted-runners-for-org", errorReply(401, "Bad credentials"),
			func(ctx context.Context, c *ghapi.Client) error {
				_, err := c.ListRunners(ctx, orgScope, ghapi.ListRunnersOptions{})
				return err
			},
			[]error{ghapi.ErrUnauthorized}, nil},
		{"403 permission", "actions/list-self-hosted-runner-groups-for-org", errorReply(403, "Resource not accessible by integration"),
			func(ctx context.Context, c *ghapi.Client) error {
				_, err := c.ListRunnerGroups(ctx, orgScope, ghapi.ListRunnerGroupsOptions{})
				return err
			},
			[]error{ghapi.ErrForbidden}, []error{ghapi.ErrUnauthorized}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := oapitest.NewServer(t)
			srv.Reply(tc.op, tc.reply)
			err := tc.call(context.Background(), newFakeClient(t, srv, clock))
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.is {
				if !errors.Is(err, want) {
					t.Errorf("errors.Is(%v, %v) = false", err, want)
				}
			}
			for _, not := range tc.isNot {
				if errors.Is(err, not) {
					t.Errorf("errors.Is(%v, %v) = true", err, not)
				}
			}
			var apiErr *ghapi.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("not an *APIError: %T", err)
			}
			if apiErr.Status != tc.reply.Status || apiErr.RequestID != "CAFE:0001" {
				t.Errorf("status %d request id %q", apiErr.Status, apiErr.RequestID)
			}
			if !strings.Contains(err.Error(), "CAFE:0001") || !strings.Contains(err.Error(), "{") {
				t.Errorf("message lacks request id or templated route: %v", err)
			}
			if strings.Contains(err.Error(), "ghp_testtoken") {
				t.Errorf("error leaks the token: %v", err)
			}
			if srv.Count(tc.op) != 1 {
				t.Errorf("%d requests for a %d, want 1 (not retried)", srv.Count(tc.op), tc.reply.Status)
			}
		})
	}
}

func TestRateLimitedBeyondDeadline(t *testing.T) {
	clock := clocktest.New(time.Unix(1_800_000_000, 0))
	srv := oapitest.NewServer(t)
	reset := clock.Now().Add(40 * time.Minute)
	srv.Reply("actions/list-self-hosted-runners-for-org", errorReply(403, "API rate limit exceeded",
		"X-Ratelimit-Limit", "5000", "X-Ratelimit-Remaining", "0", "X-Ratelimit-Used", "5000",
		"X-Ratelimit-Reset", strconv.FormatInt(reset.Unix(), 10), "X-Ratelimit-Resource", "core"))
	c := newFakeClient(t, srv, clock)
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(time.Minute))
	defer cancel()
	_, err := c.ListRunners(ctx, orgScope, ghapi.ListRunnersOptions{})
	var rl *ghapi.RateLimitError
	if !errors.As(err, &rl) {
		t.Fatalf("want *RateLimitError, got %T %v", err, err)
	}
	if !rl.Reset.Equal(reset) {
		t.Errorf("reset %v, want %v", rl.Reset, reset)
	}
	// The budget is known to be spent: the next call must not reach GitHub.
	before := srv.Count("actions/get-self-hosted-runner-for-org")
	if _, err := c.GetRunner(ctx, orgScope, 1); !errors.As(err, &rl) {
		t.Fatalf("second call: want *RateLimitError, got %v", err)
	}
	if srv.Count("actions/get-self-hosted-runner-for-org") != before {
		t.Error("a request was sent with the budget exhausted")
	}
	limits := c.RateLimits()
	found := false
	for _, l := range limits {
		if l.Installation == "pat" && l.Resource == "core" && l.Remaining == 0 && l.Limit == 5000 {
			found = true
		}
	}
	if !found {
		t.Errorf("rate state not reported: %+v", limits)
	}
}

func TestRetriesThroughClient(t *testing.T) {
	clock := clocktest.New(time.Unix(1_800_000_000, 0))
	srv := oapitest.NewServer(t)
	srv.Reply("actions/list-self-hosted-runners-for-org", errorReply(502, "Bad Gateway"))
	srv.Reply("actions/generate-runner-jitconfig-for-org", errorReply(502, "Bad Gateway"))
	c := newFakeClient(t, srv, clock)
	ctx := context.Background()
	if _, err := c.ListRunners(ctx, orgScope, ghapi.ListRunnersOptions{}); err != nil {
		t.Fatalf("GET after one 502: %v", err)
	}
	if n := srv.Count("actions/list-self-hosted-runners-for-org"); n != 2 {
		t.Errorf("GET sent %d times, want 2", n)
	}
	_, err := c.GenerateJITConfig(ctx, orgScope, ghapi.JITRequest{Name: "rs-1", RunnerGroupID: 1, Labels: []string{"x"}})
	if err == nil {
		t.Fatal("JIT 502 reported success")
	}
	if n := srv.Count("actions/generate-runner-jitconfig-for-org"); n != 1 {
		t.Errorf("JIT POST sent %d times, want exactly 1 (a retry could lose the config to a 409)", n)
	}
}

func TestRegistrationTokenCachedUntilNearExpiry(t *testing.T) {
	srv := oapitest.NewServer(t)
	// The documented example's expires_at is 2020-01-22T12:13:35.123-08:00.
	expires := time.Date(2020, 1, 22, 20, 13, 35, 123e6, time.UTC)
	clock := clocktest.New(expires.Add(-time.Hour))
	c := newFakeClient(t, srv, clock)
	ctx := context.Background()
	const op = "actions/create-registration-token-for-org"

	tok, err := c.RegistrationToken(ctx, orgScope)
	if err != nil {
		t.Fatal(err)
	}
	if !tok.ExpiresAt.Equal(expires) {
		t.Fatalf("expires %v, want %v", tok.ExpiresAt, expires)
	}
	clock.Advance(54 * time.Minute) // 6 minutes left: still handed out
	if _, err := c.RegistrationToken(ctx, orgScope); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count(op); n != 1 {
		t.Fatalf("%d token requests with 6 minutes left, want 1", n)
	}
	// Another scope has its own token.
	if _, err := c.RegistrationToken(ctx, repoScope); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute) // 4 minutes left: too close, fetch anew
	if _, err := c.RegistrationToken(ctx, orgScope); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count(op); n != 2 {
		t.Errorf("%d token requests with 4 minutes left, want 2", n)
	}
}

func TestConcurrentRegistrationTokenOneRequest(t *testing.T) {
	srv := oapitest.NewServer(t)
	clock := clocktest.New(time.Date(2020, 1, 22, 19, 0, 0, 0, time.UTC))
	c := newFakeClient(t, srv, clock)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.RegistrationToken(context.Background(), orgScope); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := srv.Count("actions/create-registration-token-for-org"); n != 1 {
		t.Errorf("%d concurrent callers made %d requests, want 1", 8, n)
	}
}

func TestUnsupportedScopes(t *testing.T) {
	srv := oapitest.NewServer(t)
	c := newPATClient(t, srv)
	ctx := context.Background()
	checks := map[string]error{
		"groups at repo": func() error {
			_, err := c.ListRunnerGroups(ctx, repoScope, ghapi.ListRunnerGroupsOptions{})
			return err
		}(),
		"org access on enterprise": func() error { _, err := c.ListRunnerGroupRepositories(ctx, entScope, 1); return err }(),
		"enterprise access on org": func() error { return c.AddRunnerGroupOrganization(ctx, orgScope, 1, 2) }(),
		"job at org":               func() error { _, err := c.GetWorkflowJob(ctx, orgScope, 1); return err }(),
		"deprecation at org":       func() error { _, err := c.GetRunnerVersionDeprecation(ctx, orgScope, "2.300.0"); return err }(),
	}
	for name, err := range checks {
		if !errors.Is(err, ghapi.ErrUnsupportedScope) {
			t.Errorf("%s: %v, want ErrUnsupportedScope", name, err)
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests sent for unsupported scopes", n)
	}
}

// TestRequestTimeoutAppliesWithoutDeadline: a call with no deadline of its own
// gets the configured one, so a spent budget fails fast instead of hanging
// until the reset.
func TestRequestTimeoutAppliesWithoutDeadline(t *testing.T) {
	clock := clocktest.New(time.Unix(1_800_000_000, 0))
	srv := oapitest.NewServer(t)
	srv.Reply("actions/list-self-hosted-runners-for-org", errorReply(403, "API rate limit exceeded",
		"X-Ratelimit-Limit", "5000", "X-Ratelimit-Remaining", "0",
		"X-Ratelimit-Reset", strconv.FormatInt(clock.Now().Add(time.Hour).Unix(), 10)))
	c, err := ghapi.New(ghapi.Options{APIURL: srv.URL, Token: "t", Clock: clock, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListRunners(context.Background(), orgScope, ghapi.ListRunnersOptions{})
	var rl *ghapi.RateLimitError
	if !errors.As(err, &rl) {
		t.Fatalf("want RateLimitError within the 5s request timeout, got %v", err)
	}
	if n := srv.Count("actions/list-self-hosted-runners-for-org"); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}
