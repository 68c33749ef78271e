package ghsim

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Rate limits as GitHub applies them to the REST API, per principal (an
// installation, the PAT, the App's JWT, or anonymous callers):
//
//   - the primary "core" budget, Options.RateLimit requests per hour (5000 by
//     default), in a window of one hour from the first request; every
//     response carries x-ratelimit-limit/-remaining/-used/-reset/-resource;
//     a request when nothing remains gets 403 "API rate limit exceeded" with
//     x-ratelimit-remaining: 0; a 304 Not Modified is given back;
//   - the runner registration budget ("actions_runner_registration"),
//     Options.JITBudget generate-jitconfig calls per hour (0 = unlimited),
//     answered beyond it with 429 and retry-after, as a secondary limit;
//   - a secondary limit of Options.SecondaryLimit requests per minute (0 =
//     off), answered beyond it with 403, retry-after and GitHub's "secondary
//     rate limit" message.
//
// GET /rate_limit is free and reports the real counters.

// Resources as GitHub names them in x-ratelimit-resource and /rate_limit.
const (
	resourceCore         = "core"
	resourceSearch       = "search"
	resourceRegistration = "actions_runner_registration"
)

const (
	anonymousRateLimit = 60 // GitHub's unauthenticated budget per hour
	searchRateLimit    = 30 // per minute, reported by /rate_limit only
)

// rateState is one bucket as the headers report it.
type rateState struct {
	Limit, Remaining, Used int
	Reset                  time.Time
	Resource               string
}

// setHeaders writes the x-ratelimit-* headers.
func (st rateState) setHeaders(h http.Header) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(st.Limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(st.Remaining))
	h.Set("X-RateLimit-Used", strconv.Itoa(st.Used))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(st.Reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", st.Resource)
}

// window counts requests in a fixed window that starts at the first request.
type window struct {
	used int
	end  time.Time
}

// rateLimiter keeps every bucket. Its zero value is not usable; see newRateLimiter.
type rateLimiter struct {
	mu        sync.Mutex
	core      map[string]*window // principal -> hour window
	jit       map[string]*window // principal -> hour window of generate-jitconfig calls
	secondary map[string]*window // principal -> minute window
}

func newRateLimiter() *rateLimiter {
	return &rateLimiter{core: map[string]*window{}, jit: map[string]*window{}, secondary: map[string]*window{}}
}

// current returns the live window of key in m, starting a new one (not
// stored unless store) when there is none or it has ended.
func current(m map[string]*window, key string, now time.Time, length time.Duration, store bool) *window {
	w := m[key]
	if w == nil || !now.Before(w.end) {
		w = &window{end: now.Add(length)}
		if store {
			m[key] = w
		}
	}
	return w
}

func stateOf(w *window, limit int, resource string) rateState {
	rem := limit - w.used
	if rem < 0 {
		rem = 0
	}
	return rateState{Limit: limit, Remaining: rem, Used: limit - rem, Reset: w.end, Resource: resource}
}

// peek returns key's core bucket without charging it.
func (l *rateLimiter) peek(key string, limit int, now time.Time) rateState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return stateOf(current(l.core, key, now, time.Hour, false), limit, resourceCore)
}

// take charges one request to key's core bucket. ok is false, and nothing is
// charged, when the budget is spent (enforce) — unenforced buckets (the
// anonymous one) only count.
func (l *rateLimiter) take(key string, limit int, now time.Time, enforce bool) (rateState, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := current(l.core, key, now, time.Hour, true)
	if enforce && w.used >= limit {
		return stateOf(w, limit, resourceCore), false
	}
	w.used++
	return stateOf(w, limit, resourceCore), true
}

// refund gives back one request charged in the current window (a 304).
func (l *rateLimiter) refund(key string, limit int, now time.Time) rateState {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := current(l.core, key, now, time.Hour, true)
	if w.used > 0 {
		w.used--
	}
	return stateOf(w, limit, resourceCore)
}

// peekJIT returns key's registration bucket without charging it.
func (l *rateLimiter) peekJIT(key string, limit int, now time.Time) rateState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return stateOf(current(l.jit, key, now, time.Hour, false), limit, resourceRegistration)
}

// takeJIT charges one generate-jitconfig call; ok is false when the hour's
// budget is spent, with the wait until the window ends.
func (l *rateLimiter) takeJIT(key string, limit int, now time.Time) (retryAfter time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := current(l.jit, key, now, time.Hour, true)
	if w.used >= limit {
		return w.end.Sub(now), false
	}
	w.used++
	return 0, true
}

// takeSecondary counts one request in key's minute; ok is false when the
// minute's allowance is spent, with the wait until it ends.
func (l *rateLimiter) takeSecondary(key string, limit int, now time.Time) (retryAfter time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := current(l.secondary, key, now, time.Minute, true)
	if w.used >= limit {
		return w.end.Sub(now), false
	}
	w.used++
	return 0, true
}

// retryAfterSeconds renders a wait as whole seconds, at least one.
func retryAfterSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}
