package oapitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// recorderTB stands in for the test handed to NewServer so that the errors
// the server reports can be asserted without failing the real test.
// Everything else (Helper, Cleanup, Fatalf, ...) goes to the real test.
type recorderTB struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recorderTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorderTB) Error(args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprint(args...))
}

func (r *recorderTB) Errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errors...)
}

// expectOneError checks that exactly one error was reported and that it
// contains every one of wants.
func (r *recorderTB) expectOneError(t *testing.T, wants ...string) {
	t.Helper()
	errs := r.Errors()
	if len(errs) != 1 {
		t.Fatalf("want 1 reported error, got %d: %q", len(errs), errs)
	}
	for _, w := range wants {
		if !strings.Contains(errs[0], w) {
			t.Errorf("reported error does not contain %q:\n%s", w, errs[0])
		}
	}
}

func (r *recorderTB) expectNoError(t *testing.T) {
	t.Helper()
	if errs := r.Errors(); len(errs) != 0 {
		t.Fatalf("want no reported error, got %d: %q", len(errs), errs)
	}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, method, rawURL string, body any) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		var b []byte
		switch v := body.(type) {
		case []byte:
			b = v
		case string:
			b = []byte(v)
		default:
			var err error
			if b, err = json.Marshal(v); err != nil {
				t.Fatal(err)
			}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("Authorization", "Bearer test-token")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// samplePathValues fills the path templates of the description.
var samplePathValues = map[string]string{
	"org":        "octo-org",
	"owner":      "octo-org",
	"repo":       "octo-repo",
	"enterprise": "octo-corp",
	"name":       "gpu",
	"version":    "2.320.0",
}

// sampleRequest builds a valid request for op from the description: path
// parameters filled with sample values (integers for integer parameters),
// the body from the request body's example, or else from its schema.
func sampleRequest(t *testing.T, doc *openapi3.T, op Operation) (path string, body any) {
	t.Helper()
	o := doc.Paths.Find(op.Path).GetOperation(op.Method)
	path = op.Path
	for _, p := range o.Parameters {
		if p.Value.In != openapi3.ParameterInPath {
			continue
		}
		v, ok := samplePathValues[p.Value.Name]
		if p.Value.Schema.Value.Type.Is(openapi3.TypeInteger) {
			v, ok = "42", true
		}
		if !ok {
			t.Fatalf("%s: no sample value for path parameter %q", op.OperationID, p.Value.Name)
		}
		path = strings.ReplaceAll(path, "{"+p.Value.Name+"}", url.PathEscape(v))
	}
	if strings.ContainsAny(path, "{}") {
		t.Fatalf("%s: unfilled path %s", op.OperationID, path)
	}
	if o.RequestBody == nil {
		return path, nil
	}
	mt := o.RequestBody.Value.Content.Get("application/json")
	if mt == nil {
		t.Fatalf("%s: request body is not JSON", op.OperationID)
	}
	if ex := mt.Examples["default"]; ex != nil && ex.Value != nil && ex.Value.Value != nil {
		return path, ex.Value.Value
	}
	if mt.Example != nil {
		return path, mt.Example
	}
	return path, sampleFromSchema(mt.Schema.Value)
}

// sampleFromSchema makes a value with every required property of schema.
func sampleFromSchema(s *openapi3.Schema) any {
	switch {
	case s.Example != nil:
		return s.Example
	case len(s.Enum) > 0:
		return s.Enum[0]
	case s.Type.Is(openapi3.TypeObject):
		m := map[string]any{}
		for _, name := range s.Required {
			m[name] = sampleFromSchema(s.Properties[name].Value)
		}
		return m
	case s.Type.Is(openapi3.TypeArray):
		n := int(s.MinItems)
		if n == 0 {
			n = 1
		}
		out := make([]any, n)
		for i := range out {
			out[i] = sampleFromSchema(s.Items.Value)
		}
		return out
	case s.Type.Is(openapi3.TypeInteger), s.Type.Is(openapi3.TypeNumber):
		return 1
	case s.Type.Is(openapi3.TypeBoolean):
		return true
	default:
		return "x"
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("not JSON: %v: %s", err, a)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return reflect.DeepEqual(x, y)
}

func TestSpecLoadsAndValidates(t *testing.T) {
	doc := Spec(t)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", doc.OpenAPI)
	}
	if Spec(t) != doc {
		t.Error("Spec is not cached")
	}
	// Every quirk fix found the quirk it is written for (fixQuirks errors
	// otherwise); list them so a refreshed spec file shows here.
	want := []string{"accepted-example-null", "list-installations-account-allOf", "job-examples-created_at"}
	if got := loadSpec().quirks; !reflect.DeepEqual(got, want) {
		t.Errorf("quirks fixed = %v, want %v", got, want)
	}
}

func TestOperations(t *testing.T) {
	ops := Operations(t)
	// Counted in spec/github-runners-openapi.json: 76 method+path pairs
	// on 50 paths: 32 GET, 16 POST, 11 PUT, 2 PATCH, 15 DELETE.
	const want = 76
	if len(ops) != want {
		t.Fatalf("len(Operations) = %d, want %d", len(ops), want)
	}
	methods := map[string]int{}
	ids := map[string]bool{}
	for i, op := range ops {
		methods[op.Method]++
		if ids[op.OperationID] {
			t.Errorf("operationId %q twice", op.OperationID)
		}
		ids[op.OperationID] = true
		if op.SuccessStatus < 200 || op.SuccessStatus > 299 {
			t.Errorf("%s: SuccessStatus %d", op.OperationID, op.SuccessStatus)
		}
		if !strings.HasPrefix(op.DocsURL, "https://docs.github.com/") {
			t.Errorf("%s: DocsURL %q", op.OperationID, op.DocsURL)
		}
		if len(op.Tags) == 0 {
			t.Errorf("%s: no tags", op.OperationID)
		}
		if i > 0 {
			p := ops[i-1]
			if p.Path > op.Path || (p.Path == op.Path && p.Method >= op.Method) {
				t.Errorf("not sorted: %s %s before %s %s", p.Method, p.Path, op.Method, op.Path)
			}
		}
	}
	wantMethods := map[string]int{"GET": 32, "POST": 16, "PUT": 11, "PATCH": 2, "DELETE": 15}
	if !reflect.DeepEqual(methods, wantMethods) {
		t.Errorf("methods = %v, want %v", methods, wantMethods)
	}

	known := []Operation{
		{Method: "POST", Path: "/orgs/{org}/actions/runners/generate-jitconfig", OperationID: "actions/generate-runner-jitconfig-for-org", SuccessStatus: 201, Tags: []string{"actions"},
			DocsURL: "https://docs.github.com/rest/actions/self-hosted-runners#create-configuration-for-a-just-in-time-runner-for-an-organization"},
		{Method: "GET", Path: "/rate_limit", OperationID: "rate-limit/get", SuccessStatus: 200},
		{Method: "DELETE", Path: "/repos/{owner}/{repo}/actions/runners/{runner_id}", OperationID: "actions/delete-self-hosted-runner-from-repo", SuccessStatus: 204},
		{Method: "GET", Path: "/enterprises/{enterprise}/actions/runners", OperationID: "enterprise-admin/list-self-hosted-runners-for-enterprise", SuccessStatus: 200},
		{Method: "POST", Path: "/app/installations/{installation_id}/access_tokens", OperationID: "apps/create-installation-access-token", SuccessStatus: 201},
		{Method: "POST", Path: "/app/hook/deliveries/{delivery_id}/attempts", OperationID: "apps/redeliver-webhook-delivery", SuccessStatus: 202},
		{Method: "GET", Path: "/repos/{owner}/{repo}/actions/jobs/{job_id}", OperationID: "actions/get-job-for-workflow-run", SuccessStatus: 200},
	}
	for _, k := range known {
		var found *Operation
		for i := range ops {
			if ops[i].Method == k.Method && ops[i].Path == k.Path {
				found = &ops[i]
			}
		}
		if found == nil {
			t.Errorf("%s %s missing", k.Method, k.Path)
			continue
		}
		if found.OperationID != k.OperationID || found.SuccessStatus != k.SuccessStatus {
			t.Errorf("%s %s = %+v, want id %s status %d", k.Method, k.Path, *found, k.OperationID, k.SuccessStatus)
		}
		if k.DocsURL != "" && (found.DocsURL != k.DocsURL || !reflect.DeepEqual(found.Tags, k.Tags)) {
			t.Errorf("%s %s = %+v, want %+v", k.Method, k.Path, *found, k)
		}
	}

	// The result is a copy.
	ops[0].Tags[0] = "changed"
	if Operations(t)[0].Tags[0] == "changed" {
		t.Error("Operations shares its Tags")
	}
}

// TestEveryOperationDefaultReply sends a valid request for every operation
// and checks that the default reply is the documented example and passes the
// server's own response validation (any failure is reported on t).
func TestEveryOperationDefaultReply(t *testing.T) {
	t.Parallel()
	doc := Spec(t)
	srv := NewServer(t)
	for _, op := range Operations(t) {
		path, body := sampleRequest(t, doc, op)
		target := strings.TrimSuffix(srv.URL, "/") + path
		if loadSpec().byID[op.OperationID].paginated {
			target += "?per_page=100&page=2"
		}
		before := srv.Count(op.OperationID)
		got := do(t, op.Method, target, body)
		if got.status != op.SuccessStatus {
			t.Errorf("%s %s: status %d, want %d: %s", op.Method, path, got.status, op.SuccessStatus, got.body)
			continue
		}
		if n := srv.Count(op.OperationID); n != before+1 {
			t.Errorf("%s: Count = %d, want %d", op.OperationID, n, before+1)
		}
		last := srv.Last(t)
		if last.OperationID != op.OperationID || last.Method != op.Method || last.Path != path {
			t.Errorf("Last = %s %s (%s), want %s %s (%s)", last.Method, last.Path, last.OperationID, op.Method, path, op.OperationID)
		}
		if got.status == http.StatusNoContent {
			if len(got.body) != 0 {
				t.Errorf("%s: 204 with body %q", op.OperationID, got.body)
			}
			continue
		}
		if ct := got.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", op.OperationID, ct)
		}
		want, err := documentedBody(doc.Paths.Find(op.Path).GetOperation(op.Method), op.SuccessStatus)
		if err != nil || want == nil {
			t.Fatalf("%s: no documented body (%v)", op.OperationID, err)
		}
		if !jsonEqual(t, got.body, want) {
			t.Errorf("%s: body is not the documented example:\n%s", op.OperationID, got.body)
		}
		if got.header.Get("Link") != "" {
			t.Errorf("%s: Link header on a single page: %q", op.OperationID, got.header.Get("Link"))
		}
	}
	if n := len(srv.Requests()); n != len(Operations(t)) {
		t.Errorf("Requests() has %d entries, want %d", n, len(Operations(t)))
	}
}

// TestEveryDocumentedStatusScripted checks that a scripted reply with only a
// status gets a body that validates for every status every operation
// documents (documented example, or a GitHub-style error body).
func TestEveryDocumentedStatusScripted(t *testing.T) {
	t.Parallel()
	doc := Spec(t)
	srv := NewServer(t)
	for _, op := range Operations(t) {
		o := doc.Paths.Find(op.Path).GetOperation(op.Method)
		var statuses []int
		for code := range o.Responses.Map() {
			n, err := strconv.Atoi(code)
			if err != nil {
				t.Fatalf("%s: response %q", op.OperationID, code)
			}
			statuses = append(statuses, n)
		}
		sort.Ints(statuses)
		path, body := sampleRequest(t, doc, op)
		for _, st := range statuses {
			srv.Reply(op.OperationID, Response{Status: st})
			got := do(t, op.Method, strings.TrimSuffix(srv.URL, "/")+path, body)
			if got.status != st {
				t.Errorf("%s: status %d, want %d", op.OperationID, got.status, st)
			}
			if st >= 400 {
				var e struct {
					Message          string `json:"message"`
					DocumentationURL string `json:"documentation_url"`
				}
				if err := json.Unmarshal(got.body, &e); err != nil || e.DocumentationURL != op.DocsURL || e.Message == "" {
					t.Errorf("%s %d: error body %s (%v)", op.OperationID, st, got.body, err)
				}
			}
		}
	}
}

func TestMalformedRequests(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		method      string
		path        string
		body        any
		operationID string
		wants       []string
	}{
		{
			name:   "jitconfig labels missing",
			method: "POST", path: "orgs/octo-org/actions/runners/generate-jitconfig",
			body:        map[string]any{"name": "r1", "runner_group_id": 1},
			operationID: "actions/generate-runner-jitconfig-for-org",
			wants:       []string{"actions/generate-runner-jitconfig-for-org", `"labels"`},
		},
		{
			name:   "jitconfig runner_group_id a string",
			method: "POST", path: "repos/o/r/actions/runners/generate-jitconfig",
			body:        map[string]any{"name": "r1", "runner_group_id": "1", "labels": []string{"self-hosted"}},
			operationID: "actions/generate-runner-jitconfig-for-repo",
			wants:       []string{"runner_group_id", "integer"},
		},
		{
			name:   "jitconfig labels empty",
			method: "POST", path: "enterprises/e/actions/runners/generate-jitconfig",
			body:        map[string]any{"name": "r1", "runner_group_id": 1, "labels": []string{}},
			operationID: "actions/generate-runner-jitconfig-for-enterprise",
			wants:       []string{"labels", "minimum"},
		},
		{
			name:   "jitconfig without body",
			method: "POST", path: "orgs/octo-org/actions/runners/generate-jitconfig",
			operationID: "actions/generate-runner-jitconfig-for-org",
			wants:       []string{"request body"},
		},
		{
			name:   "runner_id not an integer",
			method: "DELETE", path: "orgs/octo-org/actions/runners/abc",
			operationID: "actions/delete-self-hosted-runner-from-org",
			wants:       []string{"runner_id"},
		},
		{
			name:   "per_page not an integer",
			method: "GET", path: "orgs/octo-org/actions/runners?per_page=lots",
			operationID: "actions/list-self-hosted-runners-for-org",
			wants:       []string{"per_page"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorderTB{TB: t}
			srv := NewServer(rec)
			got := do(t, tc.method, srv.URL+tc.path, tc.body)
			if got.status != http.StatusUnprocessableEntity {
				t.Errorf("status %d, want 422: %s", got.status, got.body)
			}
			var e struct {
				Message          string `json:"message"`
				DocumentationURL string `json:"documentation_url"`
				Status           string `json:"status"`
				Errors           []any  `json:"errors"`
			}
			if err := json.Unmarshal(got.body, &e); err != nil {
				t.Fatalf("422 body: %v: %s", err, got.body)
			}
			if e.Message != "Validation Failed" || e.Status != "422" || len(e.Errors) == 0 || !strings.HasPrefix(e.DocumentationURL, "https://docs.github.com/") {
				t.Errorf("422 body = %s", got.body)
			}
			rec.expectOneError(t, append([]string{"request does not match"}, tc.wants...)...)
			if n := srv.Count(tc.operationID); n != 1 {
				t.Errorf("Count(%s) = %d, want 1", tc.operationID, n)
			}
		})
	}
}

func TestUnknownRoute(t *testing.T) {
	for _, tc := range []struct{ method, path string }{
		{"GET", "orgs/octo-org/actions/secrets"},
		{"PATCH", "orgs/octo-org/actions/runners"}, // path exists, method does not
		{"GET", "orgs/octo-org/actions/runners/"},  // trailing slash
	} {
		rec := &recorderTB{TB: t}
		srv := NewServer(rec)
		got := do(t, tc.method, srv.URL+tc.path, nil)
		if got.status != http.StatusNotFound {
			t.Errorf("%s %s: status %d, want 404", tc.method, tc.path, got.status)
		}
		var e map[string]any
		if err := json.Unmarshal(got.body, &e); err != nil || e["message"] != "Not Found" || e["documentation_url"] == nil {
			t.Errorf("%s %s: body %s", tc.method, tc.path, got.body)
		}
		rec.expectOneError(t, fmt.Sprintf("no OpenAPI operation for %s /%s", tc.method, tc.path))
		if last := srv.Last(t); last.OperationID != "" || last.Path != "/"+tc.path {
			t.Errorf("Last = %+v", last)
		}
	}
}

func TestReplyQueueFIFOThenDefault(t *testing.T) {
	srv := NewServer(t)
	const id = "actions/get-self-hosted-runner-for-org"
	u := srv.URL + "orgs/octo-org/actions/runners/23"
	srv.Reply(id, Response{Status: 404, Body: []byte(`{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}`)})
	srv.Reply(id, Response{Body: []byte(`{"id":23,"name":"r","os":"linux","status":"online","busy":true,"labels":[]}`),
		Header: http.Header{"X-Ratelimit-Remaining": {"0"}}})
	srv.Reply(id, Response{Status: http.StatusBadGateway, Body: []byte("upstream broke")}) // undocumented: sent as is

	got := do(t, "GET", u, nil)
	if got.status != 404 || !strings.Contains(string(got.body), "Not Found") {
		t.Errorf("1st: %d %s", got.status, got.body)
	}
	got = do(t, "GET", u, nil)
	if got.status != 200 || !strings.Contains(string(got.body), `"busy":true`) || got.header.Get("X-Ratelimit-Remaining") != "0" {
		t.Errorf("2nd: %d %v %s", got.status, got.header, got.body)
	}
	got = do(t, "GET", u, nil)
	if got.status != 502 || string(got.body) != "upstream broke" {
		t.Errorf("3rd: %d %s", got.status, got.body)
	}
	for i := 0; i < 2; i++ {
		got = do(t, "GET", u, nil)
		if got.status != 200 || !strings.Contains(string(got.body), `"MBP"`) { // the documented example
			t.Errorf("default %d: %d %s", i, got.status, got.body)
		}
	}
	if n := srv.Count(id); n != 5 {
		t.Errorf("Count = %d, want 5", n)
	}
	// Queues are per operation.
	srv.Reply("actions/list-self-hosted-runners-for-org", Response{Status: 500})
	if got := do(t, "GET", u, nil); got.status != 200 {
		t.Errorf("other operation's reply used: %d", got.status)
	}
}

func TestInvalidRepliesReported(t *testing.T) {
	rec := &recorderTB{TB: t}
	srv := NewServer(rec)
	const id = "actions/list-self-hosted-runners-for-org"
	srv.Reply(id, Response{Body: []byte(`{"total_count":"two","runners":[]}`)})
	got := do(t, "GET", srv.URL+"orgs/octo-org/actions/runners", nil)
	if got.status != 200 || string(got.body) != `{"total_count":"two","runners":[]}` {
		t.Errorf("scripted reply not sent as given: %d %s", got.status, got.body)
	}
	rec.expectOneError(t, id, "reply 200 does not match", "total_count")

	// Formats are checked: uri (absolute) and date-time.
	recF := &recorderTB{TB: t}
	srvF := NewServer(recF)
	srvF.Reply("apps/get-org-installation", Response{Body: mustPatchExample(t, "apps/get-org-installation", map[string]any{"html_url": "settings/installations/1"})})
	do(t, "GET", srvF.URL+"orgs/octo-org/installation", nil)
	recF.expectOneError(t, "reply 200 does not match", "html_url", "absolute URI")
	srvF.Reply("apps/get-org-installation", Response{Body: mustPatchExample(t, "apps/get-org-installation", map[string]any{"created_at": "yesterday"})})
	do(t, "GET", srvF.URL+"orgs/octo-org/installation", nil)
	if errs := recF.Errors(); len(errs) != 2 || !strings.Contains(errs[1], "created_at") {
		t.Errorf("date-time not checked: %q", errs)
	}

	rec2 := &recorderTB{TB: t}
	srv2 := NewServer(rec2)
	srv2.Handle(id, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"total_count":1,"runners":[{"id":1}]}`)
	})
	do(t, "GET", srv2.URL+"orgs/octo-org/actions/runners", nil)
	rec2.expectOneError(t, "reply 200 does not match", "name")
}

// mustPatchExample is the documented default reply of operationID with the
// top-level fields of patch replaced.
func mustPatchExample(t *testing.T, operationID string, patch map[string]any) []byte {
	t.Helper()
	info := loadSpec().byID[operationID]
	var m map[string]any
	if err := json.Unmarshal(info.defaultBody, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range patch {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHandle(t *testing.T) {
	rec := &recorderTB{TB: t}
	srv := NewServer(rec)
	const id = "actions/generate-runner-jitconfig-for-org"
	var mu sync.Mutex
	var gotBody map[string]any
	calls := 0
	srv.Handle(id, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if err := json.NewDecoder(r.Body).Decode(&gotBody); err != nil {
			t.Errorf("handler body: %v", err)
		}
		if r.Header.Get("X-Ratelimit-Limit") != "" {
			t.Errorf("response header leaked into the request")
		}
		if w.Header().Get("X-GitHub-Request-Id") == "" {
			t.Errorf("default headers not preset")
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = fmt.Fprintf(w, `{"encoded_jit_config":"Zm9v","runner":{"id":7,"name":%q,"os":"linux","status":"offline","busy":false,"labels":[]}}`, gotBody["name"])
	})
	body := map[string]any{"name": "ephemeral-1", "runner_group_id": 3, "labels": []string{"self-hosted", "linux"}}
	got := do(t, "POST", srv.URL+"orgs/octo-org/actions/runners/generate-jitconfig", body)
	if got.status != 201 || !strings.Contains(string(got.body), `"name":"ephemeral-1"`) {
		t.Errorf("handler reply: %d %s", got.status, got.body)
	}
	// A queued reply goes first (an invalid request neither reaches the
	// handler nor uses up the queued reply); then the handler again; nil
	// removes it.
	srv.Reply(id, Response{Status: 409})
	if got := do(t, "POST", srv.URL+"orgs/octo-org/actions/runners/generate-jitconfig", map[string]any{"name": "x"}); got.status != 422 {
		t.Errorf("invalid request: %d", got.status)
	}
	rec.expectOneError(t, "request does not match")
	mu.Lock()
	if calls != 1 {
		t.Errorf("handler calls = %d, want 1", calls)
	}
	mu.Unlock()
	if got := do(t, "POST", srv.URL+"orgs/octo-org/actions/runners/generate-jitconfig", body); got.status != 409 {
		t.Errorf("queued reply: %d", got.status)
	}
	if got := do(t, "POST", srv.URL+"orgs/octo-org/actions/runners/generate-jitconfig", body); !strings.Contains(string(got.body), "ephemeral-1") {
		t.Errorf("handler not used after the queue: %s", got.body)
	}
	srv.Handle(id, nil)
	if got := do(t, "POST", srv.URL+"orgs/octo-org/actions/runners/generate-jitconfig", body); !strings.Contains(string(got.body), "abc123") {
		t.Errorf("default not used after Handle(nil): %s", got.body)
	}
	rec.expectOneError(t) // still only the invalid request
}

func TestRequestRecording(t *testing.T) {
	srv := NewServer(t)
	body := map[string]any{"labels": []string{"gpu"}}
	got := do(t, "POST", srv.URL+"repos/octo-org/octo-repo/actions/runners/42/labels?x=1", body)
	if got.status != 200 {
		t.Fatalf("status %d: %s", got.status, got.body)
	}
	do(t, "DELETE", srv.URL+"repos/octo-org/octo-repo/actions/runners/42/labels/my%20label", nil)

	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.Path != "/repos/octo-org/octo-repo/actions/runners/42/labels" || r.RawQuery != "x=1" || r.Query.Get("x") != "1" {
		t.Errorf("request = %+v", r)
	}
	if r.OperationID != "actions/add-custom-labels-to-self-hosted-runner-for-repo" {
		t.Errorf("OperationID = %q", r.OperationID)
	}
	if !reflect.DeepEqual(r.PathParams, map[string]string{"owner": "octo-org", "repo": "octo-repo", "runner_id": "42"}) {
		t.Errorf("PathParams = %v", r.PathParams)
	}
	if r.Header.Get("Authorization") != "Bearer test-token" {
		t.Errorf("Authorization = %q", r.Header.Get("Authorization"))
	}
	if string(r.Body) != `{"labels":["gpu"]}` {
		t.Errorf("Body = %s", r.Body)
	}
	if got := reqs[1].PathParams["name"]; got != "my label" {
		t.Errorf("name = %q, want unescaped", got)
	}
	if last := srv.Last(t); last.OperationID != "actions/remove-custom-label-from-self-hosted-runner-for-repo" {
		t.Errorf("Last = %+v", last)
	}
	// Copies.
	reqs[0].Header.Set("Authorization", "changed")
	reqs[0].Body[0] = 'X'
	reqs[0].PathParams["owner"] = "changed"
	again := srv.Requests()[0]
	if again.Header.Get("Authorization") != "Bearer test-token" || again.Body[0] != '{' || again.PathParams["owner"] != "octo-org" {
		t.Error("Requests does not copy")
	}
}

func TestDefaultHeaders(t *testing.T) {
	srv := NewServer(t)
	var prevRemaining, prevUsed int
	ids := map[string]bool{}
	for i := 0; i < 3; i++ {
		got := do(t, "GET", srv.URL+"rate_limit", nil)
		h := got.header
		if h.Get("X-Ratelimit-Limit") != "5000" || h.Get("X-Ratelimit-Resource") != "core" {
			t.Errorf("headers %v", h)
		}
		rem, err1 := strconv.Atoi(h.Get("X-Ratelimit-Remaining"))
		used, err2 := strconv.Atoi(h.Get("X-Ratelimit-Used"))
		reset, err3 := strconv.ParseInt(h.Get("X-Ratelimit-Reset"), 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || rem+used != 5000 || reset <= 0 {
			t.Errorf("rate limit headers %v", h)
		}
		if i > 0 && (rem != prevRemaining-1 || used != prevUsed+1) {
			t.Errorf("remaining %d after %d", rem, prevRemaining)
		}
		prevRemaining, prevUsed = rem, used
		id := h.Get("X-GitHub-Request-Id")
		if id == "" || ids[id] {
			t.Errorf("request id %q", id)
		}
		ids[id] = true
	}
	if got := do(t, "DELETE", srv.URL+"orgs/o/actions/runners/1", nil); got.header.Get("Content-Type") != "" || got.status != 204 {
		t.Errorf("204: %d Content-Type %q", got.status, got.header.Get("Content-Type"))
	}
}

func TestWithPrefix(t *testing.T) {
	rec := &recorderTB{TB: t}
	srv := NewServer(rec, WithPrefix("/api/v3"))
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") || !strings.HasSuffix(srv.URL, "/api/v3/") {
		t.Fatalf("URL = %q", srv.URL)
	}
	got := do(t, "POST", srv.URL+"orgs/octo-org/actions/runners/registration-token", nil)
	if got.status != 201 || !strings.Contains(string(got.body), `"token"`) {
		t.Errorf("prefixed: %d %s", got.status, got.body)
	}
	if last := srv.Last(t); last.Path != "/api/v3/orgs/octo-org/actions/runners/registration-token" || last.OperationID != "actions/create-registration-token-for-org" {
		t.Errorf("Last = %+v", last)
	}
	rec.expectNoError(t)

	// Without the prefix there is no such operation.
	root := strings.TrimSuffix(srv.URL, "api/v3/")
	if got := do(t, "POST", root+"orgs/octo-org/actions/runners/registration-token", nil); got.status != 404 {
		t.Errorf("unprefixed: %d", got.status)
	}
	rec.expectOneError(t, "no OpenAPI operation for POST /orgs/octo-org/actions/runners/registration-token")

	for _, p := range []string{"api/v3", "/api/v3/", "api/v3/"} {
		if s := NewServer(t, WithPrefix(p)); !strings.HasSuffix(s.URL, "/api/v3/") || strings.HasSuffix(s.URL, "//api/v3/") {
			t.Errorf("WithPrefix(%q): URL %q", p, s.URL)
		}
	}
	if s := NewServer(t); strings.Count(s.URL, "/") != 3 {
		t.Errorf("URL without prefix = %q", s.URL)
	}
}

func TestUnknownOperationID(t *testing.T) {
	rec := &recorderTB{TB: t}
	srv := NewServer(rec)
	srv.Reply("actions/no-such-thing", Response{})
	srv.Handle("actions/no-such-thing-either", func(http.ResponseWriter, *http.Request) {})
	if errs := rec.Errors(); len(errs) != 2 || !strings.Contains(errs[0], "actions/no-such-thing") {
		t.Errorf("errors = %q", errs)
	}
}

func TestLastFailsWithoutRequests(t *testing.T) {
	srv := NewServer(t)
	ft := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() { // Fatalf ends the goroutine with runtime.Goexit
		defer close(done)
		srv.Last(ft)
	}()
	<-done
	if !ft.failed {
		t.Error("Last did not fail the test")
	}
}

type fatalTB struct {
	testing.TB
	failed bool
}

func (f *fatalTB) Fatalf(string, ...any) {
	f.failed = true
	runtime.Goexit()
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	srv := NewServer(t)
	const workers, each = 8, 25
	for i := 0; i < 10; i++ {
		srv.Reply("actions/list-self-hosted-runners-for-org", Response{Status: 500})
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				req, _ := http.NewRequest("GET", fmt.Sprintf("%sorgs/o%d/actions/runners?page=%d", srv.URL, w, i+1), nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 && resp.StatusCode != 500 {
					t.Errorf("status %d", resp.StatusCode)
				}
				_ = srv.Requests()
				_ = srv.Count("actions/list-self-hosted-runners-for-org")
			}
		}(w)
	}
	wg.Wait()
	if n := srv.Count("actions/list-self-hosted-runners-for-org"); n != workers*each {
		t.Errorf("Count = %d, want %d", n, workers*each)
	}
}

// TestNoGoroutineLeak runs a server's whole life in a sub-test (so its
// t.Cleanup closes it) and checks that the goroutine count comes back down.
func TestNoGoroutineLeak(t *testing.T) {
	tr := &http.Transport{}
	client := &http.Client{Transport: tr}
	before := runtime.NumGoroutine()
	t.Run("server", func(t *testing.T) {
		srv := NewServer(t)
		srv.Handle("rate-limit/get", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotModified)
		})
		for i := 0; i < 5; i++ {
			resp, err := client.Get(srv.URL + "rate_limit")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	tr.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after the server closed, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
