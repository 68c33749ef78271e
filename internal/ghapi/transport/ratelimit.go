package transport

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rate-limit response headers (http.Header canonical form).
const (
	hdrLimit      = "X-Ratelimit-Limit"
	hdrRemaining  = "X-Ratelimit-Remaining"
	hdrUsed       = "X-Ratelimit-Used"
	hdrReset      = "X-Ratelimit-Reset"
	hdrResource   = "X-Ratelimit-Resource"
	hdrRetryAfter = "Retry-After"
	hdrRequestID  = "X-Github-Request-Id"

	rateLimitHeaderPrefix = "X-Ratelimit-"
	defaultResource       = "core"
)

// RateState is the last known primary rate-limit state of one
// (installation, resource) bucket.
type RateState struct {
	Installation string
	Resource     string
	Limit        int
	Remaining    int
	Used         int
	Reset        time.Time // when the bucket refills (from x-ratelimit-reset)
	Observed     time.Time // when this state was last updated (per Clock)
}

// RateLimitError is returned by the transport (wrapped by net/http in a
// *url.Error; use errors.As) when a request is refused because of a GitHub
// rate limit that cannot be waited out within the request's deadline or
// attempt budget. It never carries credentials.
type RateLimitError struct {
	Installation string // accounting key: installation id, "app" or "pat"
	Resource     string // primary-limit resource, e.g. "core"; "" when unknown
	Limit        int
	Remaining    int
	Reset        time.Time // primary limit: when the bucket refills
	// RetryAfter is how long to wait before trying again: for a secondary
	// limit the server's retry-after (or the back-off the transport would
	// have used), for a primary limit the time until Reset when the error
	// was created.
	RetryAfter time.Duration
	Secondary  bool   // a secondary (abuse) limit rather than the hourly budget
	RequestID  string // X-GitHub-Request-Id of the refused response; "" if none was sent
	Route      string // templated route, see Route
}

func (e *RateLimitError) Error() string {
	var b strings.Builder
	if e.Secondary {
		fmt.Fprintf(&b, "github secondary rate limit for %s", e.who())
		if e.Route != "" {
			fmt.Fprintf(&b, " on %s", e.Route)
		}
		fmt.Fprintf(&b, ": retry after %s; reduce request concurrency or rate", e.RetryAfter.Round(time.Second))
	} else {
		fmt.Fprintf(&b, "github rate limit exhausted for %s resource %s: resets at %s (in %s)",
			e.who(), e.resource(), e.Reset.UTC().Format(time.RFC3339), e.RetryAfter.Round(time.Second))
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, "; request id %s", e.RequestID)
	} else {
		b.WriteString("; request not sent")
	}
	return b.String()
}

func (e *RateLimitError) who() string {
	switch e.Installation {
	case "":
		return "unknown credentials"
	case "app", "pat":
		return e.Installation
	default:
		return "installation " + e.Installation
	}
}

func (e *RateLimitError) resource() string {
	if e.Resource == "" {
		return defaultResource
	}
	return e.Resource
}

// appAccount is the accounting key of requests authenticated with the App's
// JWT rather than an installation token.
const appAccount = "app"

// appJWTRoute reports whether route is, in this API subset, always
// authenticated with the App's JWT: everything under /app plus the
// installation look-ups. Such requests draw on the App's budget, not the
// installation's, even when they go through an installation's Transport
// (ghinstallation refreshes installation tokens through the same
// RoundTripper it sends the installation's calls with).
func appJWTRoute(route string) bool {
	_, tpl, _ := strings.Cut(route, " ")
	return tpl == "/app" || strings.HasPrefix(tpl, "/app/") ||
		tpl == "/orgs/{org}/installation" || tpl == "/repos/{owner}/{repo}/installation"
}

// rateKey identifies one rate-limit bucket.
type rateKey struct{ account, resource string }

// rateTracker is the transport's single source of truth for rate limits:
// per-(account, resource) primary state, the resource each route draws on,
// and a pause imposed by secondary limits.
type rateTracker struct {
	installation string

	mu          sync.Mutex
	states      map[rateKey]RateState
	routeRes    map[string]string // route -> resource, learned from responses
	pausedUntil time.Time         // secondary limit: no requests before this
}

func newRateTracker(installation string) *rateTracker {
	return &rateTracker{
		installation: installation,
		states:       map[rateKey]RateState{},
		routeRes:     map[string]string{},
	}
}

// key returns the bucket route draws on: its account (the Transport's
// installation, or "app" for App-JWT routes) and its learned resource
// (default core).
func (rt *rateTracker) key(route string) rateKey {
	k := rateKey{account: rt.installation, resource: defaultResource}
	if appJWTRoute(route) {
		k.account = appAccount
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if r, ok := rt.routeRes[route]; ok {
		k.resource = r
	}
	return k
}

// parseRateHeaders extracts the primary rate-limit state from h. ok is false
// when the response carries no usable state (remaining and reset are both
// required).
func parseRateHeaders(h http.Header) (st RateState, ok bool) {
	remaining, err1 := strconv.Atoi(strings.TrimSpace(h.Get(hdrRemaining)))
	reset, err2 := strconv.ParseInt(strings.TrimSpace(h.Get(hdrReset)), 10, 64)
	if err1 != nil || err2 != nil {
		return RateState{}, false
	}
	st.Remaining = remaining
	st.Reset = time.Unix(reset, 0)
	st.Limit, _ = strconv.Atoi(strings.TrimSpace(h.Get(hdrLimit)))
	st.Used, _ = strconv.Atoi(strings.TrimSpace(h.Get(hdrUsed)))
	st.Resource = strings.TrimSpace(h.Get(hdrResource))
	if st.Resource == "" {
		st.Resource = defaultResource
	}
	return st, true
}

// observe folds the headers of a response on route into the tracked state and
// returns the resulting state. Responses can arrive out of order, so within
// one reset window the lowest remaining count wins, and a late response from
// a window that has already ended does not overwrite a current one.
func (rt *rateTracker) observe(route string, h http.Header, now time.Time) (RateState, bool) {
	st, ok := parseRateHeaders(h)
	if !ok {
		return RateState{}, false
	}
	st.Installation = rt.installation
	if appJWTRoute(route) {
		st.Installation = appAccount
	}
	st.Observed = now
	k := rateKey{st.Installation, st.Resource}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if !strings.HasSuffix(route, " "+otherRoute) && route != rateLimitRoute {
		rt.routeRes[route] = st.Resource
	}
	if old, ok := rt.states[k]; ok {
		switch {
		case st.Reset.Before(old.Reset) && !st.Reset.After(now):
			st = old // a late response from an ended window
		case st.Reset.Equal(old.Reset) && st.Remaining > old.Remaining:
			st.Remaining, st.Used = old.Remaining, old.Used
		}
	}
	rt.states[k] = st
	return st, true
}

// state returns the tracked state of bucket k.
func (rt *rateTracker) state(k rateKey) (RateState, bool) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	st, ok := rt.states[k]
	return st, ok
}

// pause makes every request (except GET /rate_limit) wait until t.
func (rt *rateTracker) pause(t time.Time) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if t.After(rt.pausedUntil) {
		rt.pausedUntil = t
	}
}

func (rt *rateTracker) paused() time.Time {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.pausedUntil
}

func (rt *rateTracker) snapshot() []RateState {
	rt.mu.Lock()
	out := make([]RateState, 0, len(rt.states))
	for _, st := range rt.states {
		out = append(out, st)
	}
	rt.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Installation != out[j].Installation {
			return out[i].Installation < out[j].Installation
		}
		return out[i].Resource < out[j].Resource
	})
	return out
}

// stripRateHeaders removes the X-Ratelimit-* headers from a response before
// it is returned upward. go-github parses them into its own per-client
// bookkeeping and, once it has seen remaining == 0, refuses later calls by
// itself using time.Now() (checkRateLimitBeforeDo), bypassing this
// transport's wait-or-fail policy, its injected Clock and the state shared
// by every client built on this Transport. The transport is the one source
// of truth for rate limits; read it through Transport.Limits and the
// Recorder instead.
func stripRateHeaders(h http.Header) {
	for k := range h {
		if strings.HasPrefix(http.CanonicalHeaderKey(k), rateLimitHeaderPrefix) {
			delete(h, k)
		}
	}
}

// parseRetryAfter parses a Retry-After header (delay-seconds or HTTP-date).
func parseRetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get(hdrRetryAfter))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			secs = 0
		}
		if secs > int64(24*time.Hour/time.Second) {
			secs = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}
