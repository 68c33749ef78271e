package oapitest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Request is one request the server received.
type Request struct {
	Method      string
	Path        string // r.URL.Path, prefix included (e.g. "/api/v3/orgs/o/actions/runners")
	RawQuery    string
	Query       url.Values
	Header      http.Header // as sent, Authorization included
	Body        []byte
	OperationID string            // "" when no operation matched
	PathParams  map[string]string // template variable -> value (unescaped)
}

// Response is a scripted reply.
//
// Status 0 means the operation's lowest documented 2xx status. A nil Body
// means "the documented one": the documented example for that status if there
// is one, otherwise for a 3xx (but 304), 4xx or 5xx a GitHub-style error body
// ({"message": ..., "documentation_url": ..., "status": "..."}), otherwise
// nothing. A non-nil empty Body sends an empty body. Header values replace
// the server's defaults of the same name (Content-Type, X-Ratelimit-*,
// X-GitHub-Request-Id) and add to the rest.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Option configures NewServer.
type Option func(*config)

type config struct {
	prefix string
}

// WithPrefix serves the API under a path prefix, as GitHub Enterprise Server
// does under "/api/v3". Server.URL then ends with the prefix and a slash.
func WithPrefix(p string) Option {
	return func(c *config) {
		p = strings.Trim(p, "/")
		if p == "" {
			c.prefix = ""
			return
		}
		c.prefix = "/" + p
	}
}

const (
	rateLimit        = 5000
	fallbackDocsURL  = "https://docs.github.com/rest"
	jsonContentType  = "application/json; charset=utf-8"
	maxRequestBodyMB = 10
)

// Server is a loopback GitHub REST API for tests. Create it with NewServer.
type Server struct {
	// URL is the API's base URL with a trailing slash, e.g.
	// "http://127.0.0.1:41234/" or, WithPrefix("/api/v3"),
	// "http://127.0.0.1:41234/api/v3/".
	URL string

	t      testing.TB
	ls     *loadedSpec
	router routers.Router
	srv    *httptest.Server
	reset  int64 // X-Ratelimit-Reset, epoch seconds

	mu       sync.Mutex
	requests []Request
	queued   map[string][]Response
	handlers map[string]http.HandlerFunc
	seq      int // requests served, for X-GitHub-Request-Id and X-Ratelimit-*
}

// NewServer starts a server on 127.0.0.1 that routes, validates and answers
// requests as GitHub's OpenAPI description says. Problems (unknown routes,
// invalid requests, invalid replies) are reported with t.Errorf. The server is
// closed by t.Cleanup.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	ls := loadSpec()
	if ls.err != nil {
		t.Fatalf("oapitest: loading GitHub's OpenAPI description: %v", ls.err)
	}
	s := &Server{
		t:        t,
		ls:       ls,
		reset:    time.Now().Add(time.Hour).Unix(),
		queued:   make(map[string][]Response),
		handlers: make(map[string]http.HandlerFunc),
	}
	// NewUnstartedServer already listens (on 127.0.0.1:0), so the router can
	// be built for the real host:port before the first request is accepted.
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	base := "http://" + s.srv.Listener.Addr().String() + cfg.prefix

	// The description's servers entry (api.github.com, absent from the
	// subset) is replaced by the loopback host+prefix in a shallow copy of
	// the shared document: Paths and Components stay shared and read-only.
	doc := *ls.doc
	doc.Servers = openapi3.Servers{{URL: base}}
	router, err := gorillamux.NewRouter(&doc)
	if err != nil {
		s.srv.Close()
		t.Fatalf("oapitest: building router: %v", err)
	}
	s.router = router
	s.srv.Start()
	s.URL = base + "/"
	t.Cleanup(s.srv.Close)
	return s
}

// Reply queues r as the reply to the next call of operationID. Replies queued
// for one operation are used first in, first out; once they are used up the
// operation's handler (see Handle) or default reply answers again. A queued
// reply takes precedence over a handler.
func (s *Server) Reply(operationID string, r Response) {
	s.t.Helper()
	if _, ok := s.ls.byID[operationID]; !ok {
		s.t.Errorf("oapitest: Reply: no operation %q in the OpenAPI description", operationID)
		return
	}
	r.Header = r.Header.Clone()
	if r.Body != nil {
		r.Body = bytes.Clone(r.Body)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queued[operationID] = append(s.queued[operationID], r)
}

// Handle answers operationID with h (instead of the default reply) from now
// on. The request is validated before h is called (h is not called for an
// invalid request), and what h writes is validated against the description
// before it is sent. Headers the server sets by default (Content-Type,
// X-Ratelimit-*, X-GitHub-Request-Id) are already in w.Header() when h runs.
// A nil h removes the handler. h runs on a server goroutine: it must report
// problems with t.Errorf, never t.Fatal.
func (s *Server) Handle(operationID string, h http.HandlerFunc) {
	s.t.Helper()
	if _, ok := s.ls.byID[operationID]; !ok {
		s.t.Errorf("oapitest: Handle: no operation %q in the OpenAPI description", operationID)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if h == nil {
		delete(s.handlers, operationID)
		return
	}
	s.handlers[operationID] = h
}

// Requests returns a copy of every request received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = r.clone()
	}
	return out
}

// Last returns the last request received; it fails the test when there was
// none.
func (s *Server) Last(t testing.TB) Request {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		t.Fatalf("oapitest: no request received")
	}
	return s.requests[len(s.requests)-1].clone()
}

// Count returns how many requests were routed to operationID (valid or not).
func (s *Server) Count(operationID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if r.OperationID == operationID {
			n++
		}
	}
	return n
}

func (r Request) clone() Request {
	r.Query = cloneValues(r.Query)
	r.Header = r.Header.Clone()
	r.Body = bytes.Clone(r.Body)
	if r.PathParams != nil {
		pp := make(map[string]string, len(r.PathParams))
		for k, v := range r.PathParams {
			pp[k] = v
		}
		r.PathParams = pp
	}
	return r
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBodyMB<<20))
	if err != nil {
		s.t.Errorf("oapitest: %s %s: reading request body: %v", r.Method, r.URL.Path, err)
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	rec := Request{
		Method:   r.Method,
		Path:     r.URL.Path,
		RawQuery: r.URL.RawQuery,
		Query:    r.URL.Query(),
		Header:   r.Header.Clone(),
		Body:     body,
	}
	resetBody := func() {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	resetBody()

	route, rawParams, routeErr := s.router.FindRoute(r)
	var info *opInfo
	if routeErr == nil {
		info = s.ls.byID[route.Operation.OperationID]
		rec.OperationID = route.Operation.OperationID
		rec.PathParams = make(map[string]string, len(rawParams))
		for k, v := range rawParams {
			if u, err := url.PathUnescape(v); err == nil {
				v = u
			}
			rec.PathParams[k] = v
		}
	}

	s.mu.Lock()
	s.requests = append(s.requests, rec.clone())
	s.seq++
	seq := s.seq
	s.mu.Unlock()

	hdr := s.defaultHeaders(seq)

	if routeErr != nil || info == nil {
		s.t.Errorf("oapitest: no OpenAPI operation for %s %s (%v)", r.Method, r.URL.Path, routeErr)
		writeReply(w, hdr, http.StatusNotFound, errorBody(http.StatusNotFound, "Not Found", fallbackDocsURL, nil, nil))
		return
	}

	reqOpts := &openapi3filter.Options{
		// The subset declares no security schemes; Authorization is
		// recorded in Request.Header for the tests to check.
		AuthenticationFunc:      openapi3filter.NoopAuthenticationFunc,
		MultiError:              true,
		SkipSettingDefaults:     true,
		SchemaValidationOptions: formatOptions(),
	}
	reqOpts.WithCustomSchemaErrorFunc(shortSchemaError)
	reqInput := &openapi3filter.RequestValidationInput{
		Request:    r,
		PathParams: rec.PathParams,
		Route:      route,
		Options:    reqOpts,
	}
	ctx := r.Context()
	if err := openapi3filter.ValidateRequest(ctx, reqInput); err != nil {
		s.t.Errorf("oapitest: %s %s (%s): request does not match GitHub's OpenAPI description: %v",
			r.Method, r.URL.Path, info.OperationID, err)
		writeReply(w, hdr, http.StatusUnprocessableEntity,
			errorBody(http.StatusUnprocessableEntity, "Validation Failed", info.DocsURL,
				schemaOf(info.op, http.StatusUnprocessableEntity), validationMessages(err)))
		return
	}

	// Only a valid request uses up a queued reply or reaches a handler.
	s.mu.Lock()
	var queued *Response
	var handler http.HandlerFunc
	if q := s.queued[info.OperationID]; len(q) > 0 {
		queued = &q[0]
		s.queued[info.OperationID] = q[1:]
	} else {
		handler = s.handlers[info.OperationID]
	}
	s.mu.Unlock()

	var status int
	var respBody []byte
	switch {
	case queued != nil:
		status = queued.Status
		if status == 0 {
			status = info.SuccessStatus
		}
		respBody = queued.Body
		if respBody == nil {
			respBody = s.documentedOrErrorBody(info, status)
		}
		for k, vs := range queued.Header {
			hdr[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
		}
	case handler != nil:
		resetBody()
		cw := httptest.NewRecorder()
		for k, vs := range hdr {
			cw.Header()[k] = vs
		}
		handler(cw, r)
		res := cw.Result()
		status = res.StatusCode
		hdr = res.Header
		respBody = cw.Body.Bytes()
	default:
		status = info.defaultStatus
		respBody = info.defaultBody
	}
	if len(respBody) == 0 && (status == http.StatusNoContent || status == http.StatusNotModified) {
		hdr.Del("Content-Type")
	}

	// Only statuses documented for the operation are validated: a scripted
	// 502 or 429 for a retry test is sent as given.
	if documentedResponse(info.op, status) != nil {
		respOpts := &openapi3filter.Options{MultiError: true, SchemaValidationOptions: formatOptions()}
		respOpts.WithCustomSchemaErrorFunc(shortSchemaError)
		respInput := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: reqInput,
			Status:                 status,
			Header:                 hdr,
			Options:                respOpts,
		}
		respInput.SetBodyBytes(respBody)
		if err := openapi3filter.ValidateResponse(ctx, respInput); err != nil {
			s.t.Errorf("oapitest: %s %s (%s): reply %d does not match GitHub's OpenAPI description: %v",
				r.Method, r.URL.Path, info.OperationID, status, err)
		}
	}
	writeReply(w, hdr, status, respBody)
}

// formatOptions check the string formats GitHub's description uses beyond
// those kin-openapi checks by default (date, date-time, byte, int32, int64):
// "uri" (86 uses, e.g. html_url) must be an absolute URI and "email" must
// look like one. They are per-validation options, not kin-openapi's global
// format registry, so nothing outside this package changes. ("timestamp", on
// the X-RateLimit-Reset header of rate-limit/get, is not a format OpenAPI
// defines; it stays unchecked beyond type: integer.)
func formatOptions() []openapi3.SchemaValidationOption {
	return []openapi3.SchemaValidationOption{
		openapi3.WithStringFormatValidator("uri", openapi3.NewCallbackValidator(func(v string) error {
			u, err := url.Parse(v)
			if err != nil {
				return err
			}
			if !u.IsAbs() {
				return fmt.Errorf("%q is not an absolute URI", v)
			}
			return nil
		})),
		openapi3.WithStringFormatValidator("email", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForEmail)),
	}
}

// shortSchemaError keeps schema errors to one line: where, why, and the
// offending value (shortened), instead of kin-openapi's default, which dumps
// the whole schema and value (hundreds of lines for a runner list).
func shortSchemaError(err *openapi3.SchemaError) string {
	if err.Origin != nil {
		return "" // kin-openapi's message: path and the origin's error, no dump
	}
	reason := err.Reason
	if reason == "" {
		reason = fmt.Sprintf("doesn't match schema %q", err.SchemaField)
	}
	value, _ := json.Marshal(err.Value)
	const maxValue = 160
	if len(value) > maxValue {
		value = append(value[:maxValue:maxValue], "..."...)
	}
	return fmt.Sprintf("Error at %q: %s (value: %s)", "/"+strings.Join(err.JSONPointer(), "/"), reason, value)
}

// defaultHeaders are the headers GitHub sends with every reply.
func (s *Server) defaultHeaders(seq int) http.Header {
	remaining := rateLimit - seq
	if remaining < 0 {
		remaining = 0
	}
	h := http.Header{}
	h.Set("Content-Type", jsonContentType)
	h.Set("X-GitHub-Request-Id", fmt.Sprintf("0A7E:57E5:%06X:%06X:%08X", seq, seq*7, seq))
	h.Set("X-Ratelimit-Limit", strconv.Itoa(rateLimit))
	h.Set("X-Ratelimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-Ratelimit-Used", strconv.Itoa(rateLimit-remaining))
	h.Set("X-Ratelimit-Reset", strconv.FormatInt(s.reset, 10))
	h.Set("X-Ratelimit-Resource", "core")
	return h
}

func writeReply(w http.ResponseWriter, hdr http.Header, status int, body []byte) {
	for k, vs := range hdr {
		w.Header()[k] = vs
	}
	if len(body) > 0 {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// documentedOrErrorBody is the body of a scripted reply whose Body is nil.
func (s *Server) documentedOrErrorBody(info *opInfo, status int) []byte {
	if status == info.defaultStatus {
		return info.defaultBody
	}
	if b, err := documentedBody(info.op, status); err == nil && b != nil {
		return b
	}
	if status >= 300 && status != http.StatusNotModified {
		msg := http.StatusText(status)
		if status == http.StatusUnprocessableEntity {
			msg = "Validation Failed"
		}
		return errorBody(status, msg, info.DocsURL, schemaOf(info.op, status), nil)
	}
	return nil
}

// schemaOf is the application/json schema documented for status, or nil.
func schemaOf(op *openapi3.Operation, status int) *openapi3.Schema {
	mt := jsonMediaType(documentedResponse(op, status))
	if mt == nil || mt.Schema == nil {
		return nil
	}
	return mt.Schema.Value
}

// errorBody is a GitHub-style error body. When the documented schema for
// that status has an "errors" array, details are put there in the shape it
// wants: strings (validation-error-simple) or objects with a code
// (validation-error).
func errorBody(status int, message, docsURL string, schema *openapi3.Schema, details []string) []byte {
	if docsURL == "" {
		docsURL = fallbackDocsURL
	}
	body := map[string]any{
		"message":           message,
		"documentation_url": docsURL,
		"status":            strconv.Itoa(status),
	}
	if len(details) > 0 {
		stringItems := false
		if schema != nil {
			if e := schema.Properties["errors"]; e != nil && e.Value != nil && e.Value.Items != nil && e.Value.Items.Value != nil {
				stringItems = e.Value.Items.Value.Type.Is(openapi3.TypeString)
			}
		}
		if stringItems {
			body["errors"] = details
		} else {
			errs := make([]map[string]any, len(details))
			for i, d := range details {
				errs[i] = map[string]any{"code": "invalid", "message": d}
			}
			body["errors"] = errs
		}
	}
	b, _ := json.Marshal(body)
	return b
}

// validationMessages splits a (multi-)error from openapi3filter into one
// message per problem.
func validationMessages(err error) []string {
	var me openapi3.MultiError
	if errors.As(err, &me) {
		var out []string
		for _, e := range me {
			out = append(out, validationMessages(e)...)
		}
		return out
	}
	return []string{err.Error()}
}
