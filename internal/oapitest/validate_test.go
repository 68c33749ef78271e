package oapitest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// fakeGitHub answers with whatever the test scripts for a path.
type fakeGitHub struct {
	status int
	ctype  string
	body   string
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.ctype != "" {
		w.Header().Set("Content-Type", f.ctype)
	}
	w.WriteHeader(f.status)
	_, _ = io.WriteString(w, f.body)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

const validRunnerList = `{"total_count":1,"runners":[{"id":1,"name":"r1","os":"Linux","status":"online","busy":false,"ephemeral":true,"labels":[{"id":1,"name":"self-hosted","type":"read-only"}]}]}`

func TestValidatingTransport(t *testing.T) {
	cases := []struct {
		name       string
		method     string
		path       string
		body       string
		reply      fakeGitHub
		wantErrors []string // substrings, one per expected reported error
		direct     bool     // answer from a RoundTripper (net/http drops a 204's body)
	}{
		{name: "valid list", method: "GET", path: "/orgs/o/actions/runners?per_page=2",
			reply: fakeGitHub{200, "application/json; charset=utf-8", validRunnerList}},
		{name: "valid list under /api/v3", method: "GET", path: "/api/v3/orgs/o/actions/runners",
			reply: fakeGitHub{200, "application/json", validRunnerList}},
		{name: "missing required field", method: "GET", path: "/orgs/o/actions/runners",
			reply:      fakeGitHub{200, "application/json", `{"total_count":1,"runners":[{"id":1,"os":"Linux","status":"online","busy":false,"labels":[]}]}`},
			wantErrors: []string{`property "name" is missing`}},
		{name: "wrong type", method: "GET", path: "/orgs/o/actions/runners/1",
			reply:      fakeGitHub{200, "application/json", `{"id":"1","name":"r","os":"Linux","status":"online","busy":false,"labels":[]}`},
			wantErrors: []string{`/id`}},
		{name: "unknown route", method: "GET", path: "/orgs/o/actions/nothing",
			reply:      fakeGitHub{404, "application/json", `{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}`},
			wantErrors: []string{"no OpenAPI operation"}},
		{name: "invalid request body", method: "POST", path: "/orgs/o/actions/runners/generate-jitconfig",
			body:       `{"name":"x","runner_group_id":1,"labels":"linux"}`,
			reply:      fakeGitHub{422, "application/json", `{"message":"Invalid request.","documentation_url":"https://docs.github.com/rest"}`},
			wantErrors: []string{"request does not match"}},
		{name: "undocumented 404 with error body", method: "GET", path: "/orgs/o/actions/runners/9",
			reply: fakeGitHub{404, "application/json; charset=utf-8", `{"message":"Not Found","documentation_url":"https://docs.github.com/rest","status":"404"}`}},
		{name: "undocumented 401 without error body", method: "GET", path: "/orgs/o/actions/runners/9",
			reply:      fakeGitHub{401, "text/plain", `nope`},
			wantErrors: []string{"not GitHub's error body"}},
		{name: "undocumented 2xx", method: "GET", path: "/orgs/o/actions/runners/9",
			reply:      fakeGitHub{202, "application/json", `{}`},
			wantErrors: []string{"status 202 is not documented"}},
		{name: "304 without body", method: "GET", path: "/orgs/o/actions/runners",
			reply: fakeGitHub{304, "", ``}},
		{name: "204 with a body", method: "DELETE", path: "/orgs/o/actions/runners/9", direct: true,
			reply:      fakeGitHub{204, "application/json", `{"x":1}`},
			wantErrors: []string{"documents no content"}},
		{name: "5xx passes", method: "GET", path: "/orgs/o/actions/runners",
			reply: fakeGitHub{502, "text/html", `<html>bad gateway</html>`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(&tc.reply)
			defer srv.Close()
			rec := &recorderTB{TB: t}
			var base http.RoundTripper
			if tc.direct {
				base = roundTripFunc(func(*http.Request) (*http.Response, error) {
					return &http.Response{StatusCode: tc.reply.status, Header: http.Header{"Content-Type": {tc.reply.ctype}},
						Body: io.NopCloser(strings.NewReader(tc.reply.body))}, nil
				})
			}
			v := ValidatingTransport(rec, base)
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := (&http.Client{Transport: v}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != tc.reply.status || (resp.StatusCode != 304 && string(got) != tc.reply.body) {
				t.Errorf("response not passed through: %d %q", resp.StatusCode, got)
			}
			errs := rec.Errors()
			if len(errs) != len(tc.wantErrors) {
				t.Fatalf("want %d reported errors, got %d: %q", len(tc.wantErrors), len(errs), errs)
			}
			for i, w := range tc.wantErrors {
				if !strings.Contains(errs[i], w) {
					t.Errorf("error %d does not contain %q: %s", i, w, errs[i])
				}
			}
		})
	}
}

func TestValidatingTransportRecordsStatuses(t *testing.T) {
	reply := &fakeGitHub{200, "application/json", validRunnerList}
	srv := httptest.NewServer(reply)
	defer srv.Close()
	v := ValidatingTransport(t, nil)
	c := &http.Client{Transport: v}
	for _, st := range []int{200, 304, 200} {
		reply.status = st
		if st == 304 {
			reply.body = ""
		} else {
			reply.body = validRunnerList
		}
		resp, err := c.Get(srv.URL + "/repos/o/r/actions/runners")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	const op = "actions/list-self-hosted-runners-for-repo"
	if got := v.Statuses(op); !reflect.DeepEqual(got, []int{200, 304}) {
		t.Errorf("Statuses = %v, want [200 304]", got)
	}
	if got := v.Seen(); len(got) != 1 || got[op] == nil {
		t.Errorf("Seen = %v", got)
	}
	if !Documented(t, op, 200) || Documented(t, op, 404) {
		t.Errorf("Documented is wrong for %s", op)
	}
}
