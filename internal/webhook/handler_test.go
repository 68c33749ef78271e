package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/runnerscaler/runnerscaler/internal/secret"
	"github.com/runnerscaler/runnerscaler/internal/store"
	"github.com/runnerscaler/runnerscaler/internal/webhook/webhooktest"
)

const testSecret = "whsec_handler_test_DONOTLEAK"

// delivery is one request to send to the handler.
type delivery struct {
	method      string // default POST
	event, guid string
	body        []byte
	signature   string // default: the body signed with testSecret; "-" for none
	contentType string // default application/json
	chunked     bool   // hide the length, as a chunked request does
}

func (d delivery) request() *http.Request {
	method := d.method
	if method == "" {
		method = http.MethodPost
	}
	var body io.Reader = bytes.NewReader(d.body)
	if d.chunked {
		body = io.MultiReader(body) // no Len: httptest leaves ContentLength -1
	}
	r := httptest.NewRequest(method, "/webhook", body)
	if d.chunked {
		r.ContentLength = -1
	}
	ct := d.contentType
	if ct == "" {
		ct = "application/json"
	}
	r.Header.Set("Content-Type", ct)
	r.Header.Set("User-Agent", "GitHub-Hookshot/test")
	if d.event != "" {
		r.Header.Set("X-GitHub-Event", d.event)
	}
	if d.guid != "" {
		r.Header.Set("X-GitHub-Delivery", d.guid)
	}
	r.Header.Set("X-GitHub-Hook-ID", "4242")
	switch d.signature {
	case "":
		r.Header.Set("X-Hub-Signature-256", webhooktest.Sign(testSecret, d.body))
	case "-":
	default:
		r.Header.Set("X-Hub-Signature-256", d.signature)
	}
	return r
}

func serve(h http.Handler, d delivery) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, d.request())
	return w
}

func testConfig() Config {
	return Config{Secrets: []secret.String{testSecret}, MaxBodyBytes: 64 << 10}
}

type recordingNotifier struct {
	mu   sync.Mutex
	jobs []store.Job
}

func (n *recordingNotifier) JobChanged(ctx context.Context, j store.Job) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ctx.Err() != nil {
		panic("JobChanged got a cancelled context")
	}
	n.jobs = append(n.jobs, j)
}

func (n *recordingNotifier) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.jobs)
}

type countingInvalidator struct {
	mu sync.Mutex
	n  int
}

func (c *countingInvalidator) InvalidateInstallations() { c.mu.Lock(); c.n++; c.mu.Unlock() }

func (c *countingInvalidator) count() int { c.mu.Lock(); defer c.mu.Unlock(); return c.n }

func TestHandlerAcceptsEveryExample(t *testing.T) {
	fs := newFakeStore()
	h := New(testConfig(), fs)
	for name, body := range examples(t) {
		event := exampleEvent(name)
		w := serve(h, delivery{event: event, guid: "guid-" + name, body: body})
		want := http.StatusAccepted
		if event == "ping" {
			want = http.StatusOK
		}
		if w.Code != want {
			t.Errorf("%s: %d %q, want %d", name, w.Code, w.Body.String(), want)
		}
		d, ok := fs.delivery("guid-" + name)
		if !ok {
			t.Errorf("%s: not stored", name)
			continue
		}
		wantOutcome := map[string]string{"workflow_job": OutcomeJob, "ping": OutcomePing, "installation": OutcomeInstallation,
			"installation_repositories": OutcomeInstallation, "workflow_run": OutcomeIgnored}[event]
		if d.Event != event || d.Outcome != wantOutcome || d.HookID != 4242 || d.ReceivedAt.IsZero() {
			t.Errorf("%s: stored %+v", name, d)
		}
	}
}

func TestHandlerRefusals(t *testing.T) {
	body := examples(t)["workflow_job.queued.5.json"]
	flipped := bytes.Clone(body)
	flipped[len(flipped)/2] ^= 0x01
	big := bytes.Repeat([]byte(" "), 64<<10+1)
	tests := []struct {
		name   string
		d      delivery
		status int
		reason string
	}{
		{"one byte changed", delivery{event: "workflow_job", guid: "g", body: flipped, signature: webhooktest.Sign(testSecret, body)}, 401, "matches no configured secret"},
		{"unsigned", delivery{event: "workflow_job", guid: "g", body: body, signature: "-"}, 401, "missing X-Hub-Signature-256"},
		{"wrong secret", delivery{event: "workflow_job", guid: "g", body: body, signature: webhooktest.Sign("nope", body)}, 401, "matches no"},
		{"sha1 only", delivery{event: "workflow_job", guid: "g", body: body, signature: "sha1=0123"}, 401, "malformed"},
		{"GET", delivery{method: http.MethodGet, event: "workflow_job", guid: "g"}, 405, "use POST"},
		{"PUT", delivery{method: http.MethodPut, event: "workflow_job", guid: "g", body: body}, 405, "use POST"},
		{"oversize", delivery{event: "workflow_job", guid: "g", body: big}, 413, "body over"},
		{"oversize chunked", delivery{event: "workflow_job", guid: "g", body: big, chunked: true}, 413, "body over"},
		{"truncated JSON", delivery{event: "workflow_job", guid: "g", body: body[:len(body)/2]}, 400, "invalid JSON"},
		{"truncated ping", delivery{event: "ping", guid: "g", body: []byte(`{"zen":"x"`)}, 400, "invalid JSON"},
		{"not an object", delivery{event: "installation", guid: "g", body: []byte(`"x"`)}, 400, "not a JSON object"},
		{"no delivery id", delivery{event: "workflow_job", body: body}, 400, "missing X-GitHub-Delivery"},
		{"long delivery id", delivery{event: "workflow_job", guid: strings.Repeat("g", 129), body: body}, 400, "X-GitHub-Delivery longer"},
		{"no event", delivery{guid: "g", body: body}, 400, "missing X-GitHub-Event"},
		{"long event", delivery{event: strings.Repeat("e", 65), guid: "g", body: body}, 400, "X-GitHub-Event longer"},
		{"job without labels", delivery{event: "workflow_job", guid: "g", body: jobBody(t, map[string]any{"labels": nil}, nil)}, 400, "labels missing"},
		{"form without payload", delivery{event: "ping", guid: "g", body: []byte("other=1"), contentType: "application/x-www-form-urlencoded"}, 400, "payload"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFakeStore()
			core, logs := observer.New(zapcore.DebugLevel)
			h := New(testConfig(), fs, WithLogger(zap.New(core)))
			w := serve(h, tc.d)
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.reason) {
				t.Errorf("%d %q, want %d with %q", w.Code, w.Body.String(), tc.status, tc.reason)
			}
			if n, _ := fs.CountDeliveries(context.Background()); n != 0 {
				t.Errorf("%d deliveries stored for a refused request", n)
			}
			if tc.status == 405 && w.Header().Get("Allow") != "POST" {
				t.Errorf("Allow %q", w.Header().Get("Allow"))
			}
			entries := logs.All()
			if len(entries) != 1 || entries[0].Level != zapcore.WarnLevel || entries[0].ContextMap()["reason"] == nil {
				t.Fatalf("want one warn line with a reason, got %v", entries)
			}
			assertNoSecretLogged(t, logs, tc.d.signature)
		})
	}
}

func assertNoSecretLogged(t *testing.T, logs *observer.ObservedLogs, signature string) {
	t.Helper()
	for _, e := range logs.All() {
		text := e.Message + fmt.Sprint(e.ContextMap())
		if strings.Contains(text, testSecret) {
			t.Errorf("secret logged: %s", text)
		}
		if sig := strings.TrimPrefix(signature, "sha256="); len(sig) > 8 && strings.Contains(text, sig) {
			t.Errorf("signature logged: %s", text)
		}
	}
}

func TestHandlerFormEncoded(t *testing.T) {
	fs := newFakeStore()
	h := New(testConfig(), fs)
	payload := examples(t)["workflow_job.in_progress.4.json"]
	form := []byte("payload=" + url.QueryEscape(string(payload)))
	w := serve(h, delivery{event: "workflow_job", guid: "form-1", body: form, contentType: "application/x-www-form-urlencoded"})
	if w.Code != http.StatusAccepted {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	ev, ok := fs.lastEvent()
	if !ok || ev.JobID != 14541957942 || ev.Action != "in_progress" {
		t.Errorf("stored %+v", ev)
	}
	// The signature covers the raw form body, not the JSON inside it.
	w = serve(h, delivery{event: "workflow_job", guid: "form-2", body: form, contentType: "application/x-www-form-urlencoded",
		signature: webhooktest.Sign(testSecret, payload)})
	if w.Code != http.StatusUnauthorized {
		t.Errorf("form signed over its payload: %d, want 401", w.Code)
	}
}

func TestHandlerDuplicatesAndNotifications(t *testing.T) {
	fs := newFakeStore()
	n := &recordingNotifier{}
	inv := &countingInvalidator{}
	h := New(testConfig(), fs, WithNotifier(n), WithInvalidator(inv))
	ex := examples(t)
	queued := ex["workflow_job.queued.5.json"]

	if w := serve(h, delivery{event: "workflow_job", guid: "a", body: queued}); w.Code != 202 {
		t.Fatalf("first: %d", w.Code)
	}
	if w := serve(h, delivery{event: "workflow_job", guid: "a", body: queued}); w.Code != 200 || !strings.Contains(w.Body.String(), "duplicate") {
		t.Fatalf("redelivery: %d %s", w.Code, w.Body)
	}
	// The same transition in another delivery: stored, acknowledged, not applied.
	if w := serve(h, delivery{event: "workflow_job", guid: "b", body: queued}); w.Code != 202 {
		t.Fatalf("second delivery of the transition: %d", w.Code)
	}
	if n.count() != 1 || n.jobs[0].ID != 289782451 {
		t.Errorf("notified %v, want job 289782451 once", n.jobs)
	}
	if w := serve(h, delivery{event: "workflow_job", guid: "c", body: ex["workflow_job.completed.1.json"]}); w.Code != 202 {
		t.Fatalf("completed: %d", w.Code)
	}
	if n.count() != 2 {
		t.Errorf("notified %d times, want 2", n.count())
	}

	inst := ex["installation_repositories.added.0.json"]
	for i := 0; i < 2; i++ {
		if w := serve(h, delivery{event: "installation_repositories", guid: "i", body: inst}); w.Code != []int{202, 200}[i] {
			t.Fatalf("installation #%d: %d", i, w.Code)
		}
	}
	if inv.count() != 1 {
		t.Errorf("invalidated %d times, want 1", inv.count())
	}
	for _, event := range []string{"ping", "workflow_run", "check_suite"} {
		serve(h, delivery{event: event, guid: "x-" + event, body: ex["ping.event.0.json"]})
	}
	if inv.count() != 1 || n.count() != 2 {
		t.Errorf("other events notified: invalidations %d, jobs %d", inv.count(), n.count())
	}
}

func TestHandlerStoreFailure(t *testing.T) {
	fs := newFakeStore()
	fs.err = errors.New("disk on fire")
	n := &recordingNotifier{}
	core, logs := observer.New(zapcore.DebugLevel)
	h := New(testConfig(), fs, WithNotifier(n), WithLogger(zap.New(core)))
	w := serve(h, delivery{event: "workflow_job", guid: "a", body: examples(t)["workflow_job.queued.5.json"]})
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("%d, want 503", w.Code)
	}
	if n.count() != 0 {
		t.Error("notified of a transition that was not stored")
	}
	e := logs.All()
	if len(e) != 1 || e[0].Level != zapcore.ErrorLevel || e[0].ContextMap()["error"] != "disk on fire" || e[0].ContextMap()["job_id"] != int64(289782451) {
		t.Errorf("log %v", e)
	}
}

func TestHandlerLogsOneDebugLinePerDelivery(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	h := New(testConfig(), newFakeStore(), WithLogger(zap.New(core)))
	body := examples(t)["workflow_job.in_progress.4.json"]
	serve(h, delivery{event: "workflow_job", guid: "g-1", body: body})
	e := logs.All()
	if len(e) != 1 || e[0].Level != zapcore.DebugLevel {
		t.Fatalf("logs %v", e)
	}
	m := e[0].ContextMap()
	if m["delivery"] != "g-1" || m["event"] != "workflow_job" || m["action"] != "in_progress" || m["job_id"] != int64(14541957942) {
		t.Errorf("fields %v", m)
	}
	assertNoSecretLogged(t, logs, webhooktest.Sign(testSecret, body))
}

func TestHandlerClock(t *testing.T) {
	at := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	fs := newFakeStore()
	h := New(testConfig(), fs, WithClock(func() time.Time { return at }))
	body := jobBody(t, map[string]any{"created_at": nil}, nil)
	if w := serve(h, delivery{event: "workflow_job", guid: "c", body: body}); w.Code != 202 {
		t.Fatal(w.Code)
	}
	d, _ := fs.delivery("c")
	ev, _ := fs.lastEvent()
	if !d.ReceivedAt.Equal(at) || !ev.At.Equal(at) {
		t.Errorf("received %s, at %s, want %s", d.ReceivedAt, ev.At, at)
	}
}

func TestHandlerNoSecretsRefusesAll(t *testing.T) {
	fs := newFakeStore()
	h := New(Config{Secrets: []secret.String{""}}, fs)
	body := []byte(`{"zen":"x"}`)
	if w := serve(h, delivery{event: "ping", guid: "g", body: body, signature: webhooktest.Sign("", body)}); w.Code != 401 {
		t.Errorf("empty secret: %d, want 401", w.Code)
	}
}

func TestPrometheusMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewPrometheusMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	h := New(testConfig(), newFakeStore(), WithMetrics(m))
	ex := examples(t)
	serve(h, delivery{event: "workflow_job", guid: "1", body: ex["workflow_job.queued.5.json"]})
	serve(h, delivery{event: "workflow_job", guid: "1", body: ex["workflow_job.queued.5.json"]})
	serve(h, delivery{event: "nobody_knows", guid: "2", body: []byte(`{"action":"exploded"}`)})
	serve(h, delivery{event: "workflow_job", guid: "3", body: jobBody(t, nil, map[string]any{"action": "whatever-" + strings.Repeat("x", 20)})})
	serve(h, delivery{event: "ping", guid: "4", body: ex["ping.event.0.json"], signature: "-"})
	text := scrape(t, reg)
	for _, want := range []string{
		`runnerscaler_webhook_deliveries_total{action="queued",event="workflow_job",outcome="job"} 1`,
		`runnerscaler_webhook_deliveries_total{action="queued",event="workflow_job",outcome="duplicate"} 1`,
		`runnerscaler_webhook_deliveries_total{action="other",event="workflow_job",outcome="ignored"} 1`,
		`runnerscaler_webhook_deliveries_total{action="other",event="other",outcome="ignored"} 1`,
		`runnerscaler_webhook_deliveries_total{action="none",event="ping",outcome="bad_signature"} 1`,
		`runnerscaler_webhook_request_duration_seconds_count 5`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
	if n := strings.Count(text, "runnerscaler_webhook_deliveries_total{"); n != 5 {
		t.Errorf("%d deliveries series, want 5:\n%s", n, text)
	}
	if strings.Contains(text, "nobody_knows") || strings.Contains(text, "exploded") || strings.Contains(text, "whatever") {
		t.Errorf("unbounded label values:\n%s", text)
	}
	if _, err := NewPrometheusMetrics(reg); err == nil {
		t.Error("registering twice on one registry succeeded")
	}
}

func TestNewServer(t *testing.T) {
	fs := newFakeStore()
	srv := NewServer("127.0.0.1:0", New(testConfig(), fs), "/hooks/github")
	if srv.ReadHeaderTimeout == 0 || srv.ReadTimeout == 0 || srv.WriteTimeout == 0 || srv.IdleTimeout == 0 || srv.MaxHeaderBytes == 0 {
		t.Errorf("timeouts not all set: %+v", srv)
	}
	ts := httptest.NewServer(srv.Handler)
	defer ts.Close()
	body := examples(t)["ping.event.3.json"]
	for path, want := range map[string]int{"/hooks/github": 200, "/hooks/github/": 404, "/": 404, "/hooks": 404} {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+path, bytes.NewReader(body))
		req.Header.Set("X-GitHub-Event", "ping")
		req.Header.Set("X-GitHub-Delivery", "p"+path)
		req.Header.Set("X-Hub-Signature-256", webhooktest.Sign(testSecret, body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// scrape returns reg's metrics in the text format.
func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	w := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return w.Body.String()
}

func TestHandlerSenderGoneIsNotAStoreError(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	h := New(testConfig(), newFakeStore(), WithLogger(zap.New(core)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, delivery{event: "workflow_job", guid: "gone", body: examples(t)["workflow_job.queued.5.json"]}.request().WithContext(ctx))
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("%d, want 503", w.Code)
	}
	if e := logs.All(); len(e) != 1 || e[0].Level != zapcore.WarnLevel || !strings.Contains(e[0].ContextMap()["reason"].(string), "went away") {
		t.Errorf("logs %v", e)
	}
}

func TestReadBody(t *testing.T) {
	for _, tc := range []struct {
		body   string
		length int64
		ok     bool
	}{
		{"hello", 5, true},
		{"hello", -1, true},
		{"hello", 0, true},
		{"hello", maxPrealloc + 1, true}, // read as it comes
		{"hell", 5, false},
		{"hello!", 5, false},
		{"", 5, false},
	} {
		got, err := readBody(strings.NewReader(tc.body), tc.length)
		if (err == nil) != tc.ok || (tc.ok && string(got) != tc.body) {
			t.Errorf("readBody(%q, %d) = %q, %v", tc.body, tc.length, got, err)
		}
	}
}
