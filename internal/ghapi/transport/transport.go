// Package transport is the http.RoundTripper every GitHub API request of
// runnerscaler goes through. It applies GitHub's API guidance in one place:
//
//   - default headers (API version, Accept, User-Agent);
//   - primary rate-limit tracking per (installation, resource), learned from
//     the x-ratelimit-* response headers, with a wait-or-fail policy before
//     sending: a request that would hit an exhausted bucket either sleeps
//     until the reset (when its context deadline allows) or fails at once
//     with *RateLimitError, without reaching GitHub;
//   - secondary rate limits (403/429 with retry-after, or a "secondary rate
//     limit" message): wait and retry within the attempt budget and the
//     deadline, pausing every other request of the Transport meanwhile;
//   - bounded retries with full-jitter exponential back-off for 5xx and
//     connection errors, only for requests that are safe to send twice (see
//     RetrySafe);
//   - a process-wide cap on requests in flight (Semaphore);
//   - a metric per attempt (Recorder) and structured logs that never contain
//     credentials.
//
// The X-Ratelimit-* headers are removed from responses handed upward (see
// stripRateHeaders); Transport.Limits is the source of truth.
package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

const (
	// DefaultAPIVersion is sent as X-GitHub-Api-Version when neither the
	// request nor Options say otherwise.
	DefaultAPIVersion = "2022-11-28"

	defaultAccept       = "application/vnd.github+json"
	defaultInFlight     = 10
	defaultMaxAttempts  = 4
	defaultMinBackoff   = 500 * time.Millisecond
	defaultMaxBackoff   = 30 * time.Second
	defaultSecondaryOff = time.Minute

	// resetSlack is added to x-ratelimit-reset before retrying, to absorb
	// clock skew between this host and GitHub.
	resetSlack = time.Second
	// maxSingleWait bounds any single computed back-off (overflow guard).
	maxSingleWait = 24 * time.Hour
	// maxPeek bounds how much of a 403/429 body is read to classify it.
	maxPeek = 64 << 10

	rateLimitRoute = "GET /rate_limit"

	hdrAPIVersion = "X-Github-Api-Version"
)

// Options configure a Transport. The zero value is usable.
type Options struct {
	Base         http.RoundTripper // nil → http.DefaultTransport
	Installation string            // accounting key: an installation id, "app" (App JWT) or "pat"
	APIVersion   string            // X-GitHub-Api-Version when the request lacks it; "" → 2022-11-28
	UserAgent    string            // set when the request lacks a User-Agent
	InFlight     *Semaphore        // shared cap on requests in flight; nil → NewSemaphore(10)
	MaxAttempts  int               // total attempts per request including the first; <= 0 → 4

	// MinBackoff and MaxBackoff bound the full-jitter exponential back-off
	// after 5xx responses and connection errors (defaults 500ms and 30s).
	MinBackoff, MaxBackoff time.Duration
	// SecondaryBackoff is the first back-off after a secondary rate limit
	// without retry-after, doubling per further occurrence (default 1m).
	SecondaryBackoff time.Duration

	Clock Clock          // nil → RealClock()
	Rand  func() float64 // in [0,1), safe for concurrent use; nil → math/rand/v2 Float64

	Recorder Recorder    // nil → DiscardRecorder()
	Logger   *zap.Logger // nil → zap.NewNop()
}

// Transport is an http.RoundTripper for the GitHub REST API; see the package
// documentation. It is safe for concurrent use. Use one Transport per
// credential (installation, App JWT or PAT) so that rate limits are tracked
// per bucket; share one Semaphore between them.
type Transport struct {
	base             http.RoundTripper
	installation     string
	apiVersion       string
	userAgent        string
	sem              *Semaphore
	maxAttempts      int
	minBackoff       time.Duration
	maxBackoff       time.Duration
	secondaryBackoff time.Duration
	clock            Clock
	rand             func() float64
	rec              Recorder
	log              *zap.Logger
	rates            *rateTracker
}

var _ http.RoundTripper = (*Transport)(nil)

// New returns a Transport with o's defaults filled in.
func New(o Options) *Transport {
	t := &Transport{
		base:             o.Base,
		installation:     o.Installation,
		apiVersion:       o.APIVersion,
		userAgent:        o.UserAgent,
		sem:              o.InFlight,
		maxAttempts:      o.MaxAttempts,
		minBackoff:       o.MinBackoff,
		maxBackoff:       o.MaxBackoff,
		secondaryBackoff: o.SecondaryBackoff,
		clock:            o.Clock,
		rand:             o.Rand,
		rec:              o.Recorder,
		log:              o.Logger,
		rates:            newRateTracker(o.Installation),
	}
	if t.base == nil {
		t.base = http.DefaultTransport
	}
	if t.apiVersion == "" {
		t.apiVersion = DefaultAPIVersion
	}
	if t.sem == nil {
		t.sem = NewSemaphore(defaultInFlight)
	}
	if t.maxAttempts <= 0 {
		t.maxAttempts = defaultMaxAttempts
	}
	if t.minBackoff <= 0 {
		t.minBackoff = defaultMinBackoff
	}
	if t.maxBackoff <= 0 {
		t.maxBackoff = defaultMaxBackoff
	}
	if t.maxBackoff < t.minBackoff {
		t.maxBackoff = t.minBackoff
	}
	if t.secondaryBackoff <= 0 {
		t.secondaryBackoff = defaultSecondaryOff
	}
	if t.clock == nil {
		t.clock = RealClock()
	}
	if t.rand == nil {
		t.rand = rand.Float64
	}
	if t.rec == nil {
		t.rec = DiscardRecorder()
	}
	if t.log == nil {
		t.log = zap.NewNop()
	}
	t.log = t.log.With(zap.String("installation", t.installation))
	return t
}

// Limits returns a snapshot of the tracked primary rate-limit state, one
// entry per (installation, resource) bucket this Transport has seen, sorted.
// Requests on App-JWT routes (/app/..., the installation look-ups) are
// accounted under Installation "app" whatever Options.Installation says:
// they draw on the App's budget, and ghinstallation sends its token refreshes
// through the installation's Transport.
func (t *Transport) Limits() []RateState { return t.rates.snapshot() }

// RoundTrip sends req, waiting for rate limits and retrying as described in
// the package documentation. Errors from waiting or refusing are returned as
// values: *RateLimitError, or an error wrapping the context's error.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		closeQuietly(req.Body)
		return nil, errors.New("github request: nil URL")
	}
	ctx := req.Context()
	route := Route(req.Method, req.URL.EscapedPath())
	rewindable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	safe := RetrySafe(route)

	// The caller's body must be closed even if it is never handed to Base.
	sent := false
	abandon := func() {
		if !sent {
			closeQuietly(req.Body)
			sent = true
		}
	}
	secondaryBackoffs := 0

	for attempt := 1; ; attempt++ {
		if err := t.gate(ctx, route); err != nil {
			abandon()
			return nil, err
		}
		if err := t.sem.acquire(ctx); err != nil {
			abandon()
			return nil, fmt.Errorf("github %s: waiting for a free request slot: %w", route, err)
		}
		out, err := t.prepare(req, attempt)
		if err != nil {
			t.sem.release()
			abandon()
			return nil, fmt.Errorf("github %s: rewinding request body for attempt %d: %w", route, attempt, err)
		}

		start := t.clock.Now()
		resp, err := t.base.RoundTrip(out)
		sent = true
		elapsed := t.clock.Now().Sub(start)

		if err != nil {
			if resp != nil && resp.Body != nil {
				resp.Body.Close()
			}
			t.sem.release()
			t.rec.ObserveRequest(route, 0, elapsed)
			if ctx.Err() != nil {
				return nil, err
			}
			if !retryableError(err) || !(safe || neverSent(err)) || !rewindable {
				return nil, err
			}
			wait := t.backoff(attempt)
			if attempt >= t.maxAttempts || !t.fits(ctx, wait) {
				t.giveUp(route, 0, attempt, "", err)
				return nil, err
			}
			t.log.Debug("retrying github request after connection error",
				zap.String("route", route), zap.Int("status", 0), zap.Int("attempt", attempt),
				zap.String("request_id", ""), zap.Duration("wait", wait), zap.Error(err))
			if err := t.clock.Sleep(ctx, wait); err != nil {
				return nil, fmt.Errorf("github %s: backing off %s before attempt %d: %w", route, wait, attempt+1, err)
			}
			continue
		}

		now := t.clock.Now()
		rate, hasRate := parseRateHeaders(resp.Header)
		if st, ok := t.rates.observe(route, resp.Header, now); ok {
			t.rec.ObserveRateLimit(st.Installation, st.Resource, st.Limit, st.Remaining, st.Reset)
		}
		t.rec.ObserveRequest(route, resp.StatusCode, elapsed)
		retryAfter, hasRetryAfter := parseRetryAfter(resp.Header, now)
		stripRateHeaders(resp.Header)
		resp.Body = newReleaseBody(resp.Body, t.sem.release)
		resp.Request = req
		reqID := resp.Header.Get(hdrRequestID)

		switch code := resp.StatusCode; {
		case code == http.StatusForbidden || code == http.StatusTooManyRequests:
			lim := t.classifyLimit(resp, now, rate, hasRate, retryAfter, hasRetryAfter, secondaryBackoffs)
			if lim == nil {
				return resp, nil // a permission problem: the caller's to report
			}
			lim.Installation, lim.Route, lim.RequestID = t.rates.key(route).account, route, reqID
			wait := lim.RetryAfter
			if !lim.Secondary {
				wait = max(lim.Reset.Add(resetSlack).Sub(now), resetSlack)
			} else {
				if !hasRetryAfter {
					secondaryBackoffs++
				}
				t.rates.pause(now.Add(wait))
			}
			discard(resp)
			if attempt >= t.maxAttempts || !rewindable || !t.fits(ctx, wait) {
				t.giveUp(route, code, attempt, reqID, lim)
				return nil, lim
			}
			t.log.Debug("waiting out github rate limit before retrying",
				zap.String("route", route), zap.Int("status", code), zap.Int("attempt", attempt),
				zap.String("request_id", reqID), zap.Duration("wait", wait), zap.Bool("secondary", lim.Secondary))
			if err := t.clock.Sleep(ctx, wait); err != nil {
				return nil, fmt.Errorf("github %s: waiting %s for rate limit before attempt %d: %w", route, wait, attempt+1, err)
			}

		case code == http.StatusInternalServerError || code == http.StatusBadGateway ||
			code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout:
			if !safe || !rewindable {
				t.log.Debug("not retrying github request: not safe to send twice",
					zap.String("route", route), zap.Int("status", code), zap.Int("attempt", attempt),
					zap.String("request_id", reqID))
				return resp, nil
			}
			wait := t.backoff(attempt)
			if hasRetryAfter && retryAfter > wait {
				wait = retryAfter
			}
			if attempt >= t.maxAttempts || !t.fits(ctx, wait) {
				t.giveUp(route, code, attempt, reqID, nil)
				return resp, nil
			}
			discard(resp)
			t.log.Debug("retrying github request after server error",
				zap.String("route", route), zap.Int("status", code), zap.Int("attempt", attempt),
				zap.String("request_id", reqID), zap.Duration("wait", wait))
			if err := t.clock.Sleep(ctx, wait); err != nil {
				return nil, fmt.Errorf("github %s: backing off %s before attempt %d: %w", route, wait, attempt+1, err)
			}

		default:
			return resp, nil
		}
	}
}

// classifyLimit decides whether a 403/429 response is a rate limit. It
// returns nil for a 403 that is not one (permissions), leaving resp intact.
// For a limit it returns the error to surface if the transport gives up;
// RetryAfter is then the wait before the next attempt (for a primary limit,
// the time until reset).
func (t *Transport) classifyLimit(resp *http.Response, now time.Time, rate RateState, hasRate bool,
	retryAfter time.Duration, hasRetryAfter bool, secondaryBackoffs int) *RateLimitError {
	switch {
	case hasRetryAfter:
		return &RateLimitError{Secondary: true, RetryAfter: retryAfter}
	case hasRate && rate.Remaining == 0:
		return &RateLimitError{
			Resource:   rate.Resource,
			Limit:      rate.Limit,
			Remaining:  0,
			Reset:      rate.Reset,
			RetryAfter: max(rate.Reset.Sub(now), 0),
		}
	}
	body := peekBody(resp)
	if resp.StatusCode == http.StatusTooManyRequests ||
		bytes.Contains(bytes.ToLower(body), []byte("secondary rate limit")) {
		return &RateLimitError{Secondary: true, RetryAfter: doubled(t.secondaryBackoff, secondaryBackoffs)}
	}
	return nil
}

// gate applies the wait-or-fail policy before an attempt: if the route's
// resource is exhausted (or a secondary limit paused the Transport), sleep
// until it clears when the context deadline allows, else fail with
// *RateLimitError without sending. GET /rate_limit is never blocked.
func (t *Transport) gate(ctx context.Context, route string) error {
	if route == rateLimitRoute {
		return nil
	}
	now := t.clock.Now()
	var (
		wait time.Duration
		lim  *RateLimitError
	)
	if until := t.rates.paused(); until.After(now) {
		wait = until.Sub(now)
		lim = &RateLimitError{Secondary: true, RetryAfter: wait}
	}
	k := t.rates.key(route)
	if st, ok := t.rates.state(k); ok && st.Remaining == 0 && st.Reset.After(now) {
		if w := st.Reset.Add(resetSlack).Sub(now); w > wait {
			wait = w
			lim = &RateLimitError{
				Resource:   k.resource,
				Limit:      st.Limit,
				Remaining:  0,
				Reset:      st.Reset,
				RetryAfter: st.Reset.Sub(now),
			}
		}
	}
	if lim == nil {
		return nil
	}
	lim.Installation, lim.Route = k.account, route
	if !t.fits(ctx, wait) {
		t.log.Warn("github rate limit outlasts the request deadline; not sending",
			zap.String("route", route), zap.Int("status", 0), zap.Int("attempt", 0),
			zap.String("request_id", ""), zap.Duration("wait", wait),
			zap.Bool("secondary", lim.Secondary), zap.String("resource", lim.Resource))
		return lim
	}
	t.log.Debug("waiting for github rate limit before sending",
		zap.String("route", route), zap.Duration("wait", wait),
		zap.Bool("secondary", lim.Secondary), zap.String("resource", lim.Resource))
	if err := t.clock.Sleep(ctx, wait); err != nil {
		return fmt.Errorf("github %s: waiting %s for rate limit: %w", route, wait, err)
	}
	return nil
}

// prepare returns the request for one attempt: a clone of req with default
// headers and, after the first attempt, a fresh body from GetBody.
func (t *Transport) prepare(req *http.Request, attempt int) (*http.Request, error) {
	out := req.Clone(req.Context())
	if attempt > 1 && req.Body != nil && req.Body != http.NoBody {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		out.Body = body
	}
	if out.Header.Get(hdrAPIVersion) == "" {
		out.Header.Set(hdrAPIVersion, t.apiVersion)
	}
	if out.Header.Get("Accept") == "" {
		out.Header.Set("Accept", defaultAccept)
	}
	if t.userAgent != "" && out.Header.Get("User-Agent") == "" {
		out.Header.Set("User-Agent", t.userAgent)
	}
	return out, nil
}

// fits reports whether waiting d still leaves time before ctx's deadline.
// A context deadline is wall-clock time whatever Clock the Transport uses,
// so the time left is measured with the real clock.
func (t *Transport) fits(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return !ok || d < time.Until(deadline)
}

// backoff returns the full-jitter back-off after failed attempt n (1-based):
// a uniform draw from [0, min(MaxBackoff, MinBackoff*2^(n-1))).
func (t *Transport) backoff(n int) time.Duration {
	ceil := min(doubled(t.minBackoff, n-1), t.maxBackoff)
	r := t.rand()
	if r < 0 || r >= 1 {
		r = 0
	}
	return time.Duration(float64(ceil) * r)
}

// doubled returns d*2^n, capped at maxSingleWait.
func doubled(d time.Duration, n int) time.Duration {
	for ; n > 0 && d < maxSingleWait; n-- {
		d *= 2
	}
	return min(d, maxSingleWait)
}

func (t *Transport) giveUp(route string, code, attempt int, reqID string, err error) {
	fields := []zap.Field{
		zap.String("route", route), zap.Int("status", code), zap.Int("attempt", attempt),
		zap.String("request_id", reqID),
	}
	if err != nil {
		fields = append(fields, zap.Error(err))
	}
	t.log.Warn("giving up on github request", fields...)
}

// retryableError reports whether a transport error may go away on retry.
// Certificate problems will not.
func retryableError(err error) bool {
	var cv *tls.CertificateVerificationError
	return !errors.As(err, &cv)
}

// neverSent reports whether err proves the request never left this process
// (no connection was made), so even a non-retry-safe request may be re-sent.
func neverSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// releaseBody wraps a response body so that the in-flight slot is released
// exactly once, when the body is closed or read to EOF.
type releaseBody struct {
	rc      io.ReadCloser
	once    sync.Once
	release func()
}

func newReleaseBody(rc io.ReadCloser, release func()) io.ReadCloser {
	if rc == nil {
		release()
		return http.NoBody
	}
	return &releaseBody{rc: rc, release: release}
}

func (b *releaseBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.once.Do(b.release)
	}
	return n, err
}

func (b *releaseBody) Close() error {
	err := b.rc.Close()
	b.once.Do(b.release)
	return err
}

// peekBody reads up to maxPeek bytes of resp's body and re-attaches an
// equivalent body (the bytes read, then the rest, closing the original).
func peekBody(resp *http.Response) []byte {
	if resp.Body == nil {
		return nil
	}
	buf, _ := io.ReadAll(io.LimitReader(resp.Body, maxPeek))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf), resp.Body), resp.Body}
	return buf
}

// discard drains a little of a response body (so the connection can be
// reused) and closes it, releasing its in-flight slot.
func discard(resp *http.Response) {
	if resp.Body == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxPeek))
	resp.Body.Close()
}

func closeQuietly(c io.Closer) {
	if c != nil {
		_ = c.Close()
	}
}
