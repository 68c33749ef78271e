package oapitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Validator is an http.RoundTripper for clients under test that checks
// every request it sends and every response it receives against GitHub's
// OpenAPI description, so that a client and a fake GitHub (such as
// internal/ghsim) are each held to the description rather than only to each
// other:
//
//	v := oapitest.ValidatingTransport(t, http.DefaultTransport)
//	client := newClient(baseURL, &http.Client{Transport: v})
//	... exercise the client ...
//	v.Statuses("actions/list-self-hosted-runners-for-org") // e.g. [200 304]
//
// Problems are reported with t.Errorf (the request is still sent and the
// response still returned, so the test sees what happened):
//
//   - a request that matches no operation, or whose path, query or body
//     breaks the operation's description;
//   - a response with a documented status whose headers or body break the
//     description (a documented status without content must have no body);
//   - an undocumented status other than 304 (no body), a 4xx with GitHub's
//     error body ({"message": ..., "documentation_url": ...}) or a 5xx.
//
// Requests under /api/v3 (GitHub Enterprise Server) are routed like the
// others. The Validator is safe for concurrent use.
type Validator struct {
	t    testing.TB
	base http.RoundTripper
	ls   *loadedSpec

	mu      sync.Mutex
	routers map[string]routers.Router // by server URL (scheme://host[/api/v3])
	seen    map[string]map[int]int    // operationId -> status -> count
}

var _ http.RoundTripper = (*Validator)(nil)

// ValidatingTransport returns a Validator sending through base
// (http.DefaultTransport when nil).
func ValidatingTransport(t testing.TB, base http.RoundTripper) *Validator {
	t.Helper()
	ls := loadSpec()
	if ls.err != nil {
		t.Fatalf("oapitest: loading GitHub's OpenAPI description: %v", ls.err)
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return &Validator{t: t, base: base, ls: ls, routers: map[string]routers.Router{}, seen: map[string]map[int]int{}}
}

// Statuses returns the distinct statuses received for operationID, sorted.
func (v *Validator) Statuses(operationID string) []int {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []int
	for st := range v.seen[operationID] {
		out = append(out, st)
	}
	sort.Ints(out)
	return out
}

// Seen returns every operationId a response was received for, with the
// distinct statuses, sorted.
func (v *Validator) Seen() map[string][]int {
	v.mu.Lock()
	ids := make([]string, 0, len(v.seen))
	for id := range v.seen {
		ids = append(ids, id)
	}
	v.mu.Unlock()
	out := make(map[string][]int, len(ids))
	for _, id := range ids {
		out[id] = v.Statuses(id)
	}
	return out
}

// Documented reports whether status is documented for operationID.
func Documented(t testing.TB, operationID string, status int) bool {
	t.Helper()
	ls := loadSpec()
	if ls.err != nil {
		t.Fatalf("oapitest: loading GitHub's OpenAPI description: %v", ls.err)
	}
	info := ls.byID[operationID]
	return info != nil && documentedResponse(info.op, status) != nil
}

// router returns the router for requests to base, building it once.
func (v *Validator) router(base string) (routers.Router, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if r, ok := v.routers[base]; ok {
		return r, nil
	}
	// A shallow copy with the request's server: Paths and Components stay
	// shared and read-only, as in NewServer.
	doc := *v.ls.doc
	doc.Servers = openapi3.Servers{{URL: base}}
	r, err := gorillamux.NewRouter(&doc)
	if err != nil {
		return nil, err
	}
	v.routers[base] = r
	return r, nil
}

// serverBase is the server URL a request is routed under: scheme and host,
// plus /api/v3 when the path starts with it.
func serverBase(u *url.URL) string {
	base := u.Scheme + "://" + u.Host
	if u.Path == "/api/v3" || strings.HasPrefix(u.Path, "/api/v3/") {
		base += "/api/v3"
	}
	return base
}

// RoundTrip validates req, sends it through the base transport and
// validates the response.
func (v *Validator) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("oapitest: reading request body: %w", err)
		}
		reqBody = b
	}
	withBody := func(r *http.Request) *http.Request {
		c := r.Clone(r.Context())
		if reqBody == nil {
			c.Body = http.NoBody
			c.ContentLength = 0
		} else {
			c.Body = io.NopCloser(bytes.NewReader(reqBody))
			c.ContentLength = int64(len(reqBody))
			c.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(reqBody)), nil }
		}
		return c
	}

	what := req.Method + " " + req.URL.Path
	var (
		route    *routers.Route
		params   map[string]string
		reqInput *openapi3filter.RequestValidationInput
		opID     string
	)
	rt, err := v.router(serverBase(req.URL))
	if err == nil {
		route, params, err = rt.FindRoute(withBody(req))
	}
	if err != nil || route == nil {
		v.t.Errorf("oapitest: no OpenAPI operation for %s (%v)", what, err)
	} else {
		opID = route.Operation.OperationID
		what += " (" + opID + ")"
		opts := &openapi3filter.Options{
			AuthenticationFunc:      openapi3filter.NoopAuthenticationFunc,
			MultiError:              true,
			SkipSettingDefaults:     true,
			SchemaValidationOptions: formatOptions(),
		}
		opts.WithCustomSchemaErrorFunc(shortSchemaError)
		reqInput = &openapi3filter.RequestValidationInput{Request: withBody(req), PathParams: params, Route: route, Options: opts}
		if err := openapi3filter.ValidateRequest(req.Context(), reqInput); err != nil {
			v.t.Errorf("oapitest: %s: request does not match GitHub's OpenAPI description: %v", what, err)
		}
	}

	resp, err := v.base.RoundTrip(withBody(req))
	if err != nil {
		return resp, err
	}
	respBody, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if err != nil {
		return resp, fmt.Errorf("oapitest: reading response body of %s: %w", what, err)
	}
	if reqInput == nil {
		return resp, nil
	}
	v.mu.Lock()
	if v.seen[opID] == nil {
		v.seen[opID] = map[int]int{}
	}
	v.seen[opID][resp.StatusCode]++
	v.mu.Unlock()
	v.checkResponse(what, reqInput, resp, respBody)
	return resp, nil
}

func (v *Validator) checkResponse(what string, in *openapi3filter.RequestValidationInput, resp *http.Response, body []byte) {
	status := resp.StatusCode
	documented := documentedResponse(in.Route.Operation, status)
	switch {
	case status == http.StatusNotModified:
		// Conditional requests work on every GET, documented or not.
		if len(body) != 0 {
			v.t.Errorf("oapitest: %s: 304 with a body (%d bytes)", what, len(body))
		}
		return
	case documented == nil && status >= 400 && status < 500:
		if err := checkErrorBody(resp.Header, body); err != nil {
			v.t.Errorf("oapitest: %s: undocumented %d is not GitHub's error body: %v", what, status, err)
		}
		return
	case documented == nil && status >= 500:
		return
	case documented == nil:
		v.t.Errorf("oapitest: %s: status %d is not documented for the operation", what, status)
		return
	}
	if len(documented.Content) == 0 && len(body) != 0 {
		v.t.Errorf("oapitest: %s: %d documents no content but the response has a body: %.200s", what, status, body)
	}
	opts := &openapi3filter.Options{MultiError: true, SchemaValidationOptions: formatOptions()}
	opts.WithCustomSchemaErrorFunc(shortSchemaError)
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 resp.Header,
		Options:                opts,
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(in.Request.Context(), out); err != nil {
		v.t.Errorf("oapitest: %s: response %d does not match GitHub's OpenAPI description: %v", what, status, err)
	}
}

// checkErrorBody checks a GitHub error body: JSON, an object with a string
// "message" and "documentation_url", matching components/schemas/basic-error.
func checkErrorBody(h http.Header, body []byte) error {
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("content type %q, want application/json", ct)
	}
	var obj map[string]any
	if err := json.Unmarshal(body, &obj); err != nil {
		return fmt.Errorf("not a JSON object: %v", err)
	}
	for _, k := range []string{"message", "documentation_url"} {
		if s, ok := obj[k].(string); !ok || s == "" {
			return fmt.Errorf("no %q string in %.200s", k, body)
		}
	}
	ls := loadSpec()
	if ref := ls.doc.Components.Schemas["basic-error"]; ref != nil && ref.Value != nil {
		var v any
		_ = json.Unmarshal(body, &v)
		if err := ref.Value.VisitJSON(v, slices.Concat(formatOptions(), []openapi3.SchemaValidationOption{openapi3.MultiErrors()})...); err != nil {
			return err
		}
	}
	return nil
}
