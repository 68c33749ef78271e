package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/ghapi/transport"
)

// githubFreshness is how recently GitHub must have answered for /readyz.
// The daemon calls GitHub at least every reconcile interval (1m by
// default), so silence for longer means it cannot reach GitHub.
const githubFreshness = 5 * time.Minute

// readiness is what /readyz reports: the daemon is ready once its store is
// open, its configuration loaded, its provisioners built, its start-up
// reconciliation done, and while GitHub answered recently.
type readiness struct {
	config, store, provisioners, started atomic.Bool
	github                               *githubSeen
	now                                  func() time.Time
}

func newReadiness() *readiness {
	return &readiness{github: &githubSeen{}, now: time.Now}
}

// problems lists what is not ready, empty when everything is.
func (r *readiness) problems() []string {
	var out []string
	for _, c := range []struct {
		ok   bool
		what string
	}{
		{r.config.Load(), "configuration not loaded"},
		{r.store.Load(), "store not open"},
		{r.provisioners.Load(), "provisioners not built"},
		{r.started.Load(), "start-up (runner groups, reconciliation) not done"},
	} {
		if !c.ok {
			out = append(out, c.what)
		}
	}
	if last := r.github.last(); last.IsZero() {
		out = append(out, "GitHub has not answered yet")
	} else if age := r.now().Sub(last); age > githubFreshness {
		out = append(out, fmt.Sprintf("GitHub last answered %s ago", age.Round(time.Second)))
	}
	return out
}

// ServeHTTP answers /readyz: 200 "ready", or 503 listing what is missing.
func (r *readiness) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if ps := r.problems(); len(ps) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "not ready: "+strings.Join(ps, "; ")+"\n")
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}

// githubSeen is a transport.Recorder that remembers when GitHub last gave
// an answer that was not a server error, and passes every observation on.
type githubSeen struct {
	next transport.Recorder
	mu   sync.Mutex
	at   time.Time
}

func (g *githubSeen) last() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.at
}

func (g *githubSeen) ObserveRequest(route string, code int, d time.Duration) {
	if code > 0 && code < 500 {
		g.mu.Lock()
		g.at = time.Now()
		g.mu.Unlock()
	}
	if g.next != nil {
		g.next.ObserveRequest(route, code, d)
	}
}

func (g *githubSeen) ObserveRateLimit(installation, resource string, limit, remaining int, reset time.Time) {
	if g.next != nil {
		g.next.ObserveRateLimit(installation, resource, limit, remaining, reset)
	}
}

// handlerSwitch serves whatever handler was set last: the metrics listener
// answers /healthz and /readyz from before the store opens, and gets the
// full set of endpoints once the daemon is built.
type handlerSwitch struct{ h atomic.Pointer[http.Handler] }

func (s *handlerSwitch) set(h http.Handler) { s.h.Store(&h) }

func (s *handlerSwitch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// earlyMux is the metrics listener's handler before the daemon is built.
func earlyMux(ready *readiness) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.Handle("/readyz", ready)
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "starting: metrics are served once the daemon is built", http.StatusServiceUnavailable)
	})
	return mux
}
