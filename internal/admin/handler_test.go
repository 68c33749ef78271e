package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/runnerscaler/runnerscaler/internal/secret"
)

const testToken = "adm_handler_test_DONOTLEAK"

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// fakeSource serves a fixed status or error.
type fakeSource struct {
	st          Status
	err         error
	calls       atomic.Int32
	sawDeadline atomic.Bool
}

func (f *fakeSource) Status(ctx context.Context) (Status, error) {
	f.calls.Add(1)
	if _, ok := ctx.Deadline(); ok {
		f.sawDeadline.Store(true)
	}
	return f.st, f.err
}

// sampleStatus is already in served form, so it round-trips unchanged.
func sampleStatus() Status {
	return Status{
		GeneratedAt: t0,
		Daemon:      Daemon{Version: "v1.2.3", StartedAt: t0.Add(-2 * time.Hour), DaemonID: "d-1"},
		Pools: []PoolStatus{{
			Name: "linux", Scope: "org/acme", RunnerGroup: "ci", Labels: []string{"linux-4core"},
			Provisioner: "local", MinIdle: 1, MaxRunners: 10, Desired: 4,
			Runners: map[string]int{"starting": 1, "idle": 1, "busy": 2, "draining": 0},
			Queued:  1, Running: 2,
		}},
		Jobs: JobSummary{
			Queued: 1, Running: 1,
			OldestQueued: []JobEntry{{ID: 7, Repo: "acme/api", Labels: []string{"linux-4core"}, Pool: "linux", QueuedAt: t0.Add(-time.Minute)}},
			RunningJobs:  []JobEntry{{ID: 6, Repo: "acme/web", Labels: []string{"linux-4core"}, Pool: "linux", QueuedAt: t0.Add(-time.Hour), StartedAt: t0.Add(-50 * time.Minute), Runner: "linux-abc"}},
		},
		RecentErrors: []ErrorEntry{{Time: t0.Add(-time.Minute), Component: "executor", Message: "create runner: quota exceeded"}},
	}
}

func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}

// get sends a GET of Path to a real loopback server, with auth as the
// Authorization header when not empty.
func get(t *testing.T, srv *httptest.Server, auth string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func decodeStatus(t *testing.T, body []byte) Status {
	t.Helper()
	var st Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("body is not a status: %v\n%s", err, body)
	}
	return st
}

func TestStatusTokenRequired(t *testing.T) {
	src := &fakeSource{st: sampleStatus()}
	log, logs := observed()
	srv := httptest.NewServer(Handler(src, secret.String(testToken), log))
	defer srv.Close()

	for _, tc := range []struct {
		name, auth string
		status     int
	}{
		{"no header", "", 401},
		{"wrong token", "Bearer " + testToken + "x", 401},
		{"prefix of the token", "Bearer " + testToken[:len(testToken)-1], 401},
		{"basic scheme", "Basic " + testToken, 401},
		{"empty bearer", "Bearer ", 401},
		{"right token", "Bearer " + testToken, 200},
		{"scheme in lower case", "bearer " + testToken, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, srv, tc.auth)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status == 401 {
				if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("WWW-Authenticate %q", got)
				}
				var e errorBody
				if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
					t.Errorf("error body %q: %v", body, err)
				}
				return
			}
			if got := decodeStatus(t, body); !reflect.DeepEqual(got, sampleStatus()) {
				t.Errorf("status\n got %+v\nwant %+v", got, sampleStatus())
			}
		})
	}
	if n := src.calls.Load(); n != 2 {
		t.Errorf("source called %d times, want 2 (only for authorized requests)", n)
	}
	if !src.sawDeadline.Load() {
		t.Error("source called without a deadline")
	}
	if n := len(logs.FilterMessage("admin request refused").All()); n != 5 {
		t.Errorf("%d refusals logged, want 5", n)
	}
}

func TestStatusNoTokenLoopbackClient(t *testing.T) {
	src := &fakeSource{st: sampleStatus()}
	srv := httptest.NewServer(Handler(src, "", nil))
	defer srv.Close()
	resp, body := get(t, srv, "")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	if got := decodeStatus(t, body); !reflect.DeepEqual(got, sampleStatus()) {
		t.Errorf("status\n got %+v\nwant %+v", got, sampleStatus())
	}
}

// TestStatusNoTokenRemoteAddr drives the handler directly, as only a crafted
// request can come from a non-loopback address in a test.
func TestStatusNoTokenRemoteAddr(t *testing.T) {
	for _, tc := range []struct {
		remote, host string
		status       int
	}{
		{"203.0.113.7:5555", "127.0.0.1:9103", 403},
		{"10.0.0.1:5555", "localhost:9103", 403},
		{"[2001:db8::1]:5555", "[::1]:9103", 403},
		{"[::ffff:10.0.0.1]:5555", "127.0.0.1:9103", 403},
		{"garbage", "127.0.0.1:9103", 403},
		{"127.0.0.1:5555", "127.0.0.1:9103", 200},
		{"127.0.0.2:5555", "127.0.0.1:9103", 200},
		{"[::1]:5555", "[::1]:9103", 200},
		{"[::ffff:127.0.0.1]:5555", "LOCALHOST:9103", 200},
		// A loopback client calling the daemon by another name is a web
		// page using DNS rebinding, or a mistake.
		{"127.0.0.1:5555", "evil.example:9103", 403},
		{"127.0.0.1:5555", "", 403},
	} {
		src := &fakeSource{st: sampleStatus()}
		h := Handler(src, "", nil)
		r := httptest.NewRequest(http.MethodGet, Path, nil)
		r.RemoteAddr, r.Host = tc.remote, tc.host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.status {
			t.Errorf("remote %q host %q: status %d, want %d: %s", tc.remote, tc.host, w.Code, tc.status, w.Body)
		}
		if tc.status == 403 && src.calls.Load() != 0 {
			t.Errorf("remote %q host %q: source called for a refused request", tc.remote, tc.host)
		}
	}
}

// TestStatusTokenAnyClient: with a token, where the client is does not matter.
func TestStatusTokenAnyClient(t *testing.T) {
	h := Handler(&fakeSource{st: sampleStatus()}, testToken, nil)
	for _, auth := range []string{"Bearer " + testToken, ""} {
		r := httptest.NewRequest(http.MethodGet, Path, nil)
		r.RemoteAddr, r.Host = "203.0.113.7:5555", "scaler.example:9103"
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		want := 200
		if auth == "" {
			want = 401
		}
		if w.Code != want {
			t.Errorf("auth %t: status %d, want %d", auth != "", w.Code, want)
		}
	}
}

func TestStatusMethodNotAllowed(t *testing.T) {
	src := &fakeSource{st: sampleStatus()}
	srv := httptest.NewServer(Handler(src, testToken, nil))
	defer srv.Close()
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		req, _ := http.NewRequest(method, srv.URL+Path, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: status %d, Allow %q", method, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	if src.calls.Load() != 0 {
		t.Error("source called for a refused method")
	}

	req, _ := http.NewRequest(http.MethodHead, srv.URL+Path, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength <= 0 {
		t.Errorf("HEAD: status %d, %d body bytes, Content-Length %d", resp.StatusCode, len(body), resp.ContentLength)
	}
}

func TestStatusUnknownPath(t *testing.T) {
	srv := httptest.NewServer(Handler(&fakeSource{st: sampleStatus()}, "", nil))
	defer srv.Close()
	for _, p := range []string{"/", "/admin/v1/status/", "/admin/v1/statusx", "/metrics"} {
		resp, err := srv.Client().Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("%s: status %d, want 404", p, resp.StatusCode)
		}
	}
}

func TestStatusSourceError(t *testing.T) {
	cause := errors.New("engine snapshot: store is locked")
	log, logs := observed()
	srv := httptest.NewServer(Handler(&fakeSource{err: cause}, "", log))
	defer srv.Close()
	resp, body := get(t, srv, "")
	if resp.StatusCode != 503 {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Fatalf("error body %q: %v", body, err)
	}
	if strings.Contains(string(body), "locked") {
		t.Errorf("the engine's error reached the client: %s", body)
	}
	entries := logs.FilterMessage("admin status unavailable").All()
	if len(entries) != 1 || entries[0].Level != zapcore.ErrorLevel || !strings.Contains(fmt.Sprint(entries[0].ContextMap()), "locked") {
		t.Errorf("want one error line with the cause, got %v", logs.All())
	}
}

// TestStatusTokenNeverLeaks sends the token (right, wrong and mangled) through
// every path of the handler and checks that no answer and no log line holds
// it, in the observer's view and in the JSON the daemon writes.
func TestStatusTokenNeverLeaks(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	var buf bytes.Buffer
	jsonCore := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zapcore.DebugLevel)
	log := zap.New(zapcore.NewTee(core, jsonCore))

	src := &fakeSource{st: sampleStatus()}
	h := Handler(src, testToken, log)
	var answers strings.Builder
	send := func(method, path, auth string) {
		r := httptest.NewRequest(method, path, nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Fprintf(&answers, "%d %v %s\n", w.Code, w.Header(), w.Body)
	}
	for _, auth := range []string{"", "Bearer " + testToken, "Bearer " + testToken + "x", "Basic " + testToken, testToken} {
		send(http.MethodGet, Path, auth)
		send(http.MethodPost, Path, auth)
		send(http.MethodGet, "/elsewhere", auth)
	}
	src.err = errors.New("boom")
	send(http.MethodGet, Path, "Bearer "+testToken)

	if strings.Contains(answers.String(), "DONOTLEAK") {
		t.Errorf("token in an answer:\n%s", answers.String())
	}
	for _, e := range logs.All() {
		if text := e.Message + fmt.Sprint(e.ContextMap()); strings.Contains(text, "DONOTLEAK") {
			t.Errorf("token logged: %s", text)
		}
	}
	if strings.Contains(buf.String(), "DONOTLEAK") {
		t.Errorf("token in the JSON log:\n%s", buf.String())
	}
	if logs.Len() == 0 {
		t.Error("nothing logged: the check above proves nothing")
	}
}

// TestStatusNormalized: lists come back bounded and ordered, nothing is null,
// and the Source's data is left as it was.
func TestStatusNormalized(t *testing.T) {
	var st Status // GeneratedAt zero: the handler fills it in
	st.Pools = []PoolStatus{{Name: "bare", Runners: map[string]int{"busy": 3, "failed": 1}}}
	for i := range 50 {
		st.Jobs.OldestQueued = append(st.Jobs.OldestQueued, JobEntry{ID: int64(i), QueuedAt: t0.Add(-time.Duration(i) * time.Minute)})
		st.RecentErrors = append(st.RecentErrors, ErrorEntry{Time: t0.Add(time.Duration(i) * time.Second), Message: fmt.Sprint(i)})
	}
	for i := range MaxRunningJobs + 5 {
		st.Jobs.RunningJobs = append(st.Jobs.RunningJobs, JobEntry{ID: int64(i), StartedAt: t0})
	}
	before := fmt.Sprintf("%+v", st)

	srv := httptest.NewServer(Handler(&fakeSource{st: st}, "", nil))
	defer srv.Close()
	_, body := get(t, srv, "")
	if fmt.Sprintf("%+v", st) != before {
		t.Error("the handler modified the source's status")
	}
	got := decodeStatus(t, body)
	if got.GeneratedAt.IsZero() {
		t.Error("generated_at not filled in")
	}
	q := got.Jobs.OldestQueued
	if len(q) != MaxQueuedJobs || q[0].ID != 49 || q[len(q)-1].ID != int64(50-MaxQueuedJobs) {
		t.Errorf("oldest queued: %d jobs, first %d", len(q), q[0].ID)
	}
	if r := got.Jobs.RunningJobs; len(r) != MaxRunningJobs || r[0].ID != 0 || r[len(r)-1].ID != MaxRunningJobs-1 {
		t.Errorf("running: %d jobs, not in ID order on equal start times", len(r))
	}
	if e := got.RecentErrors; len(e) != MaxRecentErrors || e[0].Message != "49" {
		t.Errorf("recent errors: %d, first %+v", len(e), e[0])
	}
	want := map[string]int{"starting": 0, "idle": 0, "busy": 3, "draining": 0, "failed": 1}
	if !reflect.DeepEqual(got.Pools[0].Runners, want) {
		t.Errorf("runners %v, want %v", got.Pools[0].Runners, want)
	}

	// Empty lists are [] and the pool's labels too, not null.
	srv2 := httptest.NewServer(Handler(&fakeSource{st: Status{Pools: []PoolStatus{{Name: "p"}}}}, "", nil))
	defer srv2.Close()
	_, body = get(t, srv2, "")
	for _, want := range []string{`"pools":[{`, `"labels":[]`, `"oldest_queued":[]`, `"running_jobs":[]`, `"recent_errors":[]`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("body lacks %s: %s", want, body)
		}
	}
	if strings.Contains(string(body), "null") {
		t.Errorf("null in %s", body)
	}
}

func TestNewServerTimeouts(t *testing.T) {
	s := NewServer("127.0.0.1:0", http.NotFoundHandler())
	if s.ReadHeaderTimeout == 0 || s.ReadTimeout == 0 || s.WriteTimeout <= SourceTimeout || s.IdleTimeout == 0 || s.MaxHeaderBytes == 0 {
		t.Errorf("server without a bound: %+v", s)
	}
}
