package ghsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/ghapi/transport"
	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

// restAPI serves GitHub's REST surface as github-runners-openapi.json
// describes it: runners and runner groups at every scope, the App and its
// installations, webhook deliveries, workflow jobs and rate_limit. (Owned by
// the REST work: rest*.go, auth.go, ratelimit.go.)
//
// Every request goes through the same steps, in this order:
//
//  1. its templated route ("GET /orgs/{org}/actions/runners", as
//     ghapi/transport.Route computes it) selects an endpoint; an unknown
//     route or method is 404, not counted in the stats nor charged (its
//     rate-limit headers show the caller's bucket as it is);
//  2. the route is counted in /_sim/stats (every request to a known route,
//     whatever its outcome: the count is what the client sent, so refused
//     and 304 requests count too);
//  3. a fault rule for the route may answer instead (faults.intercept);
//  4. authentication (auth.go): 401 when missing or invalid;
//  5. rate limits (ratelimit.go): the secondary limit, then the primary
//     budget, which is charged here (403 when exhausted);
//  6. access: the credential's installation must cover the scope (403),
//     and the scope must exist (404);
//  7. the JIT budget for generate-jitconfig (429);
//  8. the endpoint's handler; a GET answered 200 gets an ETag, and a
//     matching If-None-Match turns it into a 304 whose charge is refunded.
type restAPI struct {
	s       *Server
	routes  map[string]*endpoint // "METHOD /template" -> endpoint
	tokens  *tokenStore
	limits  *rateLimiter
	created time.Time // creation time reported for the App, orgs and installations
	seq     atomic.Int64
}

func newRESTAPI(s *Server) *restAPI {
	a := &restAPI{
		s:       s,
		routes:  map[string]*endpoint{},
		tokens:  newTokenStore(),
		limits:  newRateLimiter(),
		created: s.clock.Now().UTC().Truncate(time.Second),
	}
	a.addRunnerRoutes()
	a.addGroupRoutes()
	a.addAppRoutes()
	return a
}

// authMode is the credential a route accepts.
type authMode int

const (
	authToken authMode = iota // the PAT or an installation token
	authJWT                   // the App's JWT only
	authAny                   // any of them (GET /rate_limit)
)

// endpoint is one served operation.
type endpoint struct {
	method   string
	template string // OpenAPI path template
	auth     authMode
	free     bool   // not charged to the primary budget (GET /rate_limit)
	jit      bool   // draws on the JIT budget
	docs     string // documentation_url of error bodies
	handle   func(*call) reply
}

// route is the endpoint's key: "METHOD /template".
func (e *endpoint) route() string { return e.method + " " + e.template }

func (a *restAPI) add(e endpoint) {
	if _, dup := a.routes[e.route()]; dup {
		panic("ghsim: route registered twice: " + e.route())
	}
	a.routes[e.route()] = &e
}

// Documentation roots used in error bodies.
const (
	docsRoot      = "https://docs.github.com/rest"
	docsRunners   = "https://docs.github.com/rest/actions/self-hosted-runners"
	docsGroups    = "https://docs.github.com/rest/actions/self-hosted-runner-groups"
	docsApps      = "https://docs.github.com/rest/apps/apps"
	docsInstalls  = "https://docs.github.com/rest/apps/installations"
	docsWebhooks  = "https://docs.github.com/rest/apps/webhooks"
	docsJobs      = "https://docs.github.com/rest/actions/workflow-jobs"
	docsRateLimit = "https://docs.github.com/rest/rate-limit/rate-limit"
	docsLimits    = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"
)

// call is one request being served.
type call struct {
	a      *restAPI
	r      *http.Request
	ep     *endpoint
	params map[string]string
	p      principal
	scope  world.Scope // zero for routes without a scope
	prefix string      // "/api/v3" when the request came in under it
	now    time.Time
	rate   rateState // the principal's core bucket after this request
}

// reply is a response built by a handler, written once all headers are known.
type reply struct {
	status int
	body   []byte
	header http.Header
}

func (a *restAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route := transport.Route(r.Method, r.URL.Path)
	ep := a.routes[route]
	if ep == nil {
		c := &call{a: a, r: r, prefix: apiPrefix(r), now: a.s.clock.Now()}
		// Not charged, but reported: the caller's bucket, or the anonymous one.
		p, err := a.authenticate(r.Header.Get("Authorization"), false, c.now)
		limit := a.s.opts.RateLimit
		if err != nil {
			p, limit = principal{}, anonymousRateLimit
		}
		c.rate = a.limits.peek(p.bucket(), limit, c.now)
		rep := c.fail(http.StatusNotFound, "Not Found")
		a.write(w, c, rep)
		a.s.log.Debug("rest request for an unknown route",
			zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Int("status", rep.status))
		return
	}
	a.s.stats.apiCall(route)
	if a.s.faults.intercept(w, r, route) {
		a.s.log.Debug("rest request answered by a fault rule", zap.String("route", route))
		return
	}
	c := &call{a: a, r: r, ep: ep, prefix: apiPrefix(r), now: a.s.clock.Now()}
	rep := a.serve(c)
	a.write(w, c, rep)
	a.s.log.Debug("rest request",
		zap.String("route", route), zap.Int("status", rep.status), zap.String("principal", c.p.String()),
		zap.Int("rate_remaining", c.rate.Remaining))
}

// serve runs steps 4 to 8 of the pipeline (see restAPI).
func (a *restAPI) serve(c *call) reply {
	params, ok := matchTemplate(c.ep.template, c.r.URL.EscapedPath())
	if !ok {
		return c.fail(http.StatusNotFound, "Not Found")
	}
	c.params = params

	p, err := a.authenticate(c.r.Header.Get("Authorization"), c.ep.auth == authJWT, c.now)
	if err != nil {
		// Unauthenticated requests draw on the anonymous budget, which is
		// reported but not enforced: a client retrying with a bad credential
		// keeps getting 401, not a rate limit.
		c.rate, _ = a.limits.take(principal{}.bucket(), anonymousRateLimit, c.now, false)
		var ae *authError
		if !errors.As(err, &ae) {
			ae = errBadCreds
		}
		return c.fail(ae.status, ae.message)
	}
	c.p = p
	bucket, limit := p.bucket(), a.s.opts.RateLimit

	if c.ep.free {
		c.rate = a.limits.peek(bucket, limit, c.now)
	} else {
		if sl := a.s.opts.SecondaryLimit; sl > 0 {
			if wait, ok := a.limits.takeSecondary(bucket, sl, c.now); !ok {
				c.rate = a.limits.peek(bucket, limit, c.now)
				rep := c.failDocs(http.StatusForbidden, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.", docsLimits)
				rep.header.Set("Retry-After", retryAfterSeconds(wait))
				return rep
			}
		}
		st, ok := a.limits.take(bucket, limit, c.now, true)
		c.rate = st
		if !ok {
			return c.failDocs(http.StatusForbidden, "API rate limit exceeded for "+p.rateSubject()+".", docsLimits)
		}
	}

	if c.ep.auth == authToken {
		if p.kind == principalApp {
			return c.fail(http.StatusForbidden, errNotByApp.message)
		}
		if s, ok := scopeOf(c.ep.template, params); ok {
			c.scope = s
			if !p.mayAct(s) {
				return c.fail(http.StatusForbidden, errNotByApp.message)
			}
			if !a.s.world.ScopeExists(s) {
				return c.fail(http.StatusNotFound, "Not Found")
			}
		}
	}

	if c.ep.jit && a.s.opts.JITBudget > 0 {
		if wait, ok := a.limits.takeJIT(bucket, a.s.opts.JITBudget, c.now); !ok {
			rep := c.failDocs(http.StatusTooManyRequests, "You have exceeded a secondary rate limit for runner registration. Please wait before you try again.", docsLimits)
			rep.header.Set("Retry-After", retryAfterSeconds(wait))
			return rep
		}
	}

	rep := c.ep.handle(c)
	if c.r.Method == http.MethodGet && rep.status == http.StatusOK {
		etag := etagOf(rep.body)
		rep.header.Set("ETag", etag)
		if etagMatches(c.r.Header.Get("If-None-Match"), etag) {
			if !c.ep.free {
				c.rate = a.limits.refund(bucket, limit, c.now)
			}
			h := http.Header{}
			h.Set("ETag", etag)
			return reply{status: http.StatusNotModified, header: h}
		}
	}
	return rep
}

// rateSubject names the principal in a rate-limit message, as GitHub does
// ("installation ID 1001002", "user", "the app").
func (p principal) rateSubject() string {
	switch p.kind {
	case principalInstallation:
		return "installation ID " + strconv.FormatInt(p.inst.ID, 10)
	case principalApp:
		return "the app"
	case principalPAT:
		return "user"
	}
	return "this address"
}

// write sends a reply with GitHub's standard headers.
func (a *restAPI) write(w http.ResponseWriter, c *call, rep reply) {
	h := w.Header()
	for k, vs := range rep.header {
		h[k] = vs
	}
	seq := a.seq.Add(1)
	h.Set("X-GitHub-Request-Id", fmt.Sprintf("5E1A:%04X:%06X:%06X:%08X", seq%0xFFFF, seq, seq*7, seq))
	h.Set("X-GitHub-Media-Type", "github.v3; format=json")
	h.Set("X-GitHub-Api-Version-Selected", transport.DefaultAPIVersion)
	if c.rate.Limit > 0 {
		c.rate.setHeaders(h)
	}
	if rep.status == http.StatusOK || rep.status == http.StatusNotModified {
		h.Set("Cache-Control", "private, max-age=60, s-maxage=60")
		h.Set("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP")
	}
	if len(rep.body) > 0 {
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Content-Length", strconv.Itoa(len(rep.body)))
	}
	w.WriteHeader(rep.status)
	if len(rep.body) > 0 && rep.status != http.StatusNotModified && rep.status != http.StatusNoContent {
		_, _ = w.Write(rep.body)
	}
}

// apiPrefix is "/api/v3" when the request came in under that prefix (the
// server strips it before the REST API sees the path; the original request
// URI still has it).
func apiPrefix(r *http.Request) string {
	const ghes = "/api/v3"
	p := r.RequestURI
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
		p = u.Path
	}
	if (p == ghes || strings.HasPrefix(p, ghes+"/")) && !strings.HasPrefix(r.URL.Path, ghes+"/") {
		return ghes
	}
	return ""
}

// matchTemplate extracts the path parameters of template from an escaped
// request path; ok is false when the path does not fit.
func matchTemplate(template, escapedPath string) (map[string]string, bool) {
	if len(escapedPath) > 1 {
		escapedPath = strings.TrimSuffix(escapedPath, "/")
	}
	ts := strings.Split(strings.TrimPrefix(template, "/"), "/")
	ps := strings.Split(strings.TrimPrefix(escapedPath, "/"), "/")
	if len(ts) != len(ps) {
		return nil, false
	}
	params := map[string]string{}
	for i, t := range ts {
		if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
			v, err := url.PathUnescape(ps[i])
			if err != nil || v == "" {
				return nil, false
			}
			params[t[1:len(t)-1]] = v
			continue
		}
		if t != ps[i] {
			return nil, false
		}
	}
	return params, true
}

// scopeOf is the enterprise, organization or repository a route acts on.
func scopeOf(template string, params map[string]string) (world.Scope, bool) {
	switch {
	case strings.HasPrefix(template, "/enterprises/{enterprise}/"):
		return world.Scope{Kind: world.Enterprise, Name: params["enterprise"]}, true
	case strings.HasPrefix(template, "/orgs/{org}/"):
		return world.Scope{Kind: world.Org, Name: params["org"]}, true
	case strings.HasPrefix(template, "/repos/{owner}/{repo}/"):
		return world.Scope{Kind: world.Repo, Name: params["owner"] + "/" + params["repo"]}, true
	}
	return world.Scope{}, false
}

// apiBase is the API's base URL for this request, ending in "/": the
// simulator's URL (or, before it is known, the request's host), plus
// /api/v3 when the request came in under it.
func (c *call) apiBase() string {
	base := strings.TrimSuffix(c.webBase(), "/")
	if c.prefix != "" && !strings.HasSuffix(base, c.prefix) {
		base += c.prefix
	}
	return base + "/"
}

// webBase is the simulator's root URL ("http://host:port/"), without /api/v3.
func (c *call) webBase() string {
	base := c.a.s.URL()
	if base == "" {
		base = "http://" + c.r.Host + "/"
	}
	return strings.TrimSuffix(strings.TrimSuffix(base, "/"), "/api/v3") + "/"
}

// apiURL is an absolute API URL for path ("orgs/x" or "/orgs/x").
func (c *call) apiURL(path string) string { return c.apiBase() + strings.TrimPrefix(path, "/") }

// webURL is an absolute URL of the simulated web UI.
func (c *call) webURL(path string) string { return c.webBase() + strings.TrimPrefix(path, "/") }

// intParam reads an integer path parameter.
func (c *call) intParam(name string) (int64, bool) {
	v, err := strconv.ParseInt(c.params[name], 10, 64)
	return v, err == nil
}

// json answers status with v as JSON.
func (c *call) json(status int, v any) reply {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		c.a.s.log.Error("rest response not encodable", zap.String("route", c.ep.route()), zap.Error(err))
		return c.fail(http.StatusInternalServerError, "Server Error")
	}
	return reply{status: status, body: bytes.TrimSuffix(buf.Bytes(), []byte("\n")), header: http.Header{}}
}

// list answers 200 with v and the Link header of its page.
func (c *call) list(v any, link string) reply {
	rep := c.json(http.StatusOK, v)
	if link != "" && rep.status == http.StatusOK {
		rep.header.Set("Link", link)
	}
	return rep
}

// noContent answers 204.
func (c *call) noContent() reply { return reply{status: http.StatusNoContent, header: http.Header{}} }

// fail answers with GitHub's error body.
func (c *call) fail(status int, message string) reply {
	docs := docsRoot
	if c.ep != nil && c.ep.docs != "" {
		docs = c.ep.docs
	}
	return c.failDocs(status, message, docs)
}

func (c *call) failDocs(status int, message, docs string) reply {
	b, _ := json.Marshal(map[string]string{
		"message":           message,
		"documentation_url": docs,
		"status":            strconv.Itoa(status),
	})
	return reply{status: status, body: b, header: http.Header{}}
}

// notFound answers 404 "Not Found".
func (c *call) notFound() reply { return c.fail(http.StatusNotFound, "Not Found") }

// badBody answers a refused request body.
func (c *call) badBody(err error) reply {
	var be *bodyError
	if errors.As(err, &be) {
		return c.fail(be.status, be.message)
	}
	return c.fail(http.StatusBadRequest, "Problems parsing JSON")
}

// worldErr maps a world error to GitHub's status: ErrNotFound 404,
// ErrConflict 409, ErrValidation and ErrBusy 422, anything else 500.
func (c *call) worldErr(err error) reply {
	switch {
	case errors.Is(err, world.ErrNotFound):
		return c.notFound()
	case errors.Is(err, world.ErrConflict):
		return c.fail(http.StatusConflict, "Already exists - "+worldMessage(err))
	case errors.Is(err, world.ErrBusy), errors.Is(err, world.ErrValidation):
		return c.fail(http.StatusUnprocessableEntity, "Validation Failed: "+worldMessage(err))
	}
	c.a.s.log.Error("rest request failed", zap.String("route", c.ep.route()), zap.Error(err))
	return c.fail(http.StatusInternalServerError, "Server Error")
}

// worldMessage is a world error without its ": sentinel" suffix.
func worldMessage(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i > 0 {
		msg = msg[:i]
	}
	return msg
}
