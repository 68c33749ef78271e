package transport

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// fakeClock is a virtual clock: Sleep advances time instantly and records
// the requested duration. It starts at the real current time so that real
// context deadlines computed from it lie in the real future.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Now().Truncate(time.Second)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	if d > 0 {
		c.now = c.now.Add(d)
	}
	return nil
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// blockingClock's Sleep announces itself on entered and then blocks until
// the context ends, to test cancellation during waits.
type blockingClock struct {
	*fakeClock
	entered chan time.Duration
}

func newBlockingClock() *blockingClock {
	return &blockingClock{fakeClock: newFakeClock(), entered: make(chan time.Duration, 1)}
}

func (c *blockingClock) Sleep(ctx context.Context, d time.Duration) error {
	c.entered <- d
	<-ctx.Done()
	return ctx.Err()
}

// step scripts the server's answer to one attempt.
type step func(w http.ResponseWriter, r *http.Request)

// respond answers with code, header pairs kv and body (default "{}").
func respond(code int, body string, kv ...string) step {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(kv); i += 2 {
			w.Header().Add(kv[i], kv[i+1])
		}
		if body == "" {
			body = "{}"
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

// hangUp closes the connection after reading the request, without a response.
func hangUp(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

// rateHdrs returns x-ratelimit-* header pairs with reset at clk.Now()+resetIn.
func rateHdrs(clk Clock, resource string, limit, remaining int, resetIn time.Duration) []string {
	return []string{
		"X-RateLimit-Limit", strconv.Itoa(limit),
		"X-RateLimit-Remaining", strconv.Itoa(remaining),
		"X-RateLimit-Used", strconv.Itoa(limit - remaining),
		"X-RateLimit-Reset", strconv.FormatInt(clk.Now().Add(resetIn).Unix(), 10),
		"X-RateLimit-Resource", resource,
	}
}

type seenRequest struct {
	Method, Path string
	Header       http.Header
	Body         string
}

// scriptServer answers attempt i with steps[i] (the last step repeats).
type scriptServer struct {
	*httptest.Server
	mu    sync.Mutex
	steps []step
	seen  []seenRequest
}

func newScriptServer(t *testing.T, steps ...step) *scriptServer {
	t.Helper()
	s := &scriptServer{steps: steps}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		i := len(s.seen)
		s.seen = append(s.seen, seenRequest{r.Method, r.URL.Path, r.Header.Clone(), string(body)})
		st := s.steps[min(i, len(s.steps)-1)]
		s.mu.Unlock()
		st(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *scriptServer) Seen() []seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seenRequest(nil), s.seen...)
}

func (s *scriptServer) Hits() int { return len(s.Seen()) }

type observedRequest struct {
	Route string
	Code  int
}

type observedRate struct {
	Installation, Resource string
	Limit, Remaining       int
	Reset                  time.Time
}

type fakeRecorder struct {
	mu    sync.Mutex
	reqs  []observedRequest
	rates []observedRate
}

func (r *fakeRecorder) ObserveRequest(route string, code int, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, observedRequest{route, code})
}

func (r *fakeRecorder) ObserveRateLimit(installation, resource string, limit, remaining int, reset time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rates = append(r.rates, observedRate{installation, resource, limit, remaining, reset})
}

func (r *fakeRecorder) Requests() []observedRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]observedRequest(nil), r.reqs...)
}

func (r *fakeRecorder) Rates() []observedRate {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]observedRate(nil), r.rates...)
}

// env is one transport wired to one scripted server.
type env struct {
	t    *testing.T
	srv  *scriptServer
	clk  Clock
	fake *fakeClock
	rec  *fakeRecorder
	logs *observer.ObservedLogs
	tr   *Transport
}

// newEnv builds a Transport for installation 42 against a server scripted
// with steps. opts may override anything; Base, Recorder and Logger are
// always the test's.
func newEnv(t *testing.T, opts Options, steps ...step) *env {
	t.Helper()
	e := &env{t: t, rec: &fakeRecorder{}}
	switch c := opts.Clock.(type) {
	case nil:
		e.fake = newFakeClock()
		opts.Clock = e.fake
	case *fakeClock:
		e.fake = c
	case *blockingClock:
		e.fake = c.fakeClock
	}
	e.clk = opts.Clock
	if opts.Installation == "" {
		opts.Installation = "42"
	}
	if len(steps) == 0 {
		steps = []step{respond(200, "")}
	}
	e.srv = newScriptServer(t, steps...)
	if opts.Base == nil {
		opts.Base = e.srv.Client().Transport
	}
	opts.Recorder = e.rec
	core, logs := observer.New(zapcore.DebugLevel)
	e.logs = logs
	opts.Logger = zap.New(core)
	e.tr = New(opts)
	return e
}

// do sends one request through the transport (not through http.Client, so
// errors come back unwrapped). An empty body means no body.
func (e *env) do(ctx context.Context, method, path, body string) (*http.Response, error) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer ghs_secret-token")
	return e.tr.RoundTrip(req)
}

// readClose reads and closes a response body.
func readClose(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	if err := resp.Body.Close(); err != nil {
		t.Fatalf("closing body: %v", err)
	}
	return string(b)
}

// withDeadline returns a context whose deadline is d from now. Deadlines are
// wall-clock time whatever the Transport's Clock says.
func withDeadline(t *testing.T, clk Clock, d time.Duration) context.Context {
	t.Helper()
	if d == 0 {
		return context.Background()
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
