package recovery

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/runnerscaler/runnerscaler/internal/ghapi"
	"github.com/runnerscaler/runnerscaler/internal/ghsim"
	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

const (
	testAppID = 4242
	testRepo  = "octo-org/app"

	routeListDeliveries = "GET /app/hook/deliveries"
	routeRedeliver      = "POST /app/hook/deliveries/{delivery_id}/attempts"
	routeGetJob         = "GET /repos/{owner}/{repo}/actions/jobs/{job_id}"
)

var testLabels = []string{"self-hosted", "linux"}

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
	keyPEM  []byte
	keyErr  error
)

// appKey is one RSA key for every test: generating it is the slow part.
func appKey(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	keyOnce.Do(func() {
		testKey, keyErr = rsa.GenerateKey(rand.Reader, 2048)
		if keyErr == nil {
			keyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testKey)})
		}
	})
	if keyErr != nil {
		t.Fatal(keyErr)
	}
	return testKey, keyPEM
}

// receiver is the daemon's webhook endpoint as the simulator sees it: it
// records every delivery by GUID and answers 500 while fail is set.
type receiver struct {
	srv  *httptest.Server
	fail atomic.Bool

	mu   sync.Mutex
	hits map[string]int // GUID -> requests
	oks  map[string]int // GUID -> requests answered 2xx
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{hits: map[string]int{}, oks: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		guid := r.Header.Get("X-GitHub-Delivery")
		fail := rc.fail.Load()
		rc.mu.Lock()
		rc.hits[guid]++
		if !fail {
			rc.oks[guid]++
		}
		rc.mu.Unlock()
		if fail {
			http.Error(w, "daemon unavailable", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) counts() (hits, oks map[string]int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	hits, oks = map[string]int{}, map[string]int{}
	for k, v := range rc.hits {
		hits[k] = v
	}
	for k, v := range rc.oks {
		oks[k] = v
	}
	return hits, oks
}

// harness is a simulator on loopback with the test App, a webhook receiver,
// and a ghapi client authenticated as the App.
type harness struct {
	t    *testing.T
	sim  *ghsim.Server
	base string
	gh   *ghapi.Client
	recv *receiver
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	key, pemKey := appKey(t)
	recv := newReceiver(t)
	sim, err := ghsim.New(ghsim.Options{
		AppID: testAppID, AppPublicKey: &key.PublicKey, Seed: 1,
		WebhookURL: recv.srv.URL, WebhookSecret: "test-secret",
	})
	if err != nil {
		t.Fatal(err)
	}
	base, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	// One attempt per request: a fault a test injects must reach the code
	// under test, not be absorbed by the transport's retries.
	gh, err := ghapi.New(ghapi.Options{
		APIURL: base, App: &ghapi.AppAuth{ID: testAppID, PrivateKey: pemKey}, MaxAttempts: 1,
		Logger: zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, sim: sim, base: base, gh: gh, recv: recv}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// control calls the simulator's control API.
func (h *harness) control(method, path string, in, out any) {
	h.t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			h.t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.base+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		h.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			h.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// calls returns the simulator's count of REST calls per route (/_sim/stats).
func (h *harness) calls() map[string]int {
	h.t.Helper()
	var st ghsim.StatsSnapshot
	h.control(http.MethodGet, "_sim/stats", nil, &st)
	return st.APICalls
}

// callsDuring counts the calls to route that fn makes.
func (h *harness) callsDuring(route string, fn func()) int {
	h.t.Helper()
	before := h.calls()[route]
	fn()
	return h.calls()[route] - before
}

func (h *harness) setDrop(p float64) {
	h.t.Helper()
	h.control(http.MethodPost, "_sim/webhooks", map[string]any{"drop_probability": p}, nil)
}

func (h *harness) addFault(spec ghsim.FaultSpec) {
	h.t.Helper()
	h.control(http.MethodPost, "_sim/faults", spec, nil)
}

// createJobs queues n jobs in testRepo, one at a time, so their deliveries
// are made in job order.
func (h *harness) createJobs(n int) []int64 {
	h.t.Helper()
	var ids []int64
	for range n {
		got, err := h.sim.World().CreateJobs(world.JobInput{Repo: testRepo, Labels: testLabels})
		if err != nil {
			h.t.Fatal(err)
		}
		ids = append(ids, got...)
	}
	return ids
}

// deliveryLog reads the whole delivery log through the API, newest first.
// It makes API calls: do not call it inside a counted window.
func (h *harness) deliveryLog(ctx context.Context) []*ghapi.HookDelivery {
	h.t.Helper()
	var all []*ghapi.HookDelivery
	cursor := ""
	for {
		page, next, err := h.gh.ListHookDeliveries(ctx, ghapi.ListDeliveriesOptions{Cursor: cursor})
		if err != nil {
			h.t.Fatal(err)
		}
		all = append(all, page...)
		if next == "" {
			return all
		}
		cursor = next
	}
}

// waitLog waits until the delivery log holds n records.
func (h *harness) waitLog(ctx context.Context, n int) []*ghapi.HookDelivery {
	h.t.Helper()
	var log []*ghapi.HookDelivery
	waitFor(h.t, "delivery log to hold records", func() bool {
		log = h.deliveryLog(ctx)
		return len(log) >= n
	})
	if len(log) != n {
		h.t.Fatalf("delivery log holds %d records, want %d", len(log), n)
	}
	return log
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// offsetClock is the real clock moved forward by a settable offset: the
// simulator stamps deliveries with the real time, and the Redeliverer must
// see them as settled without the test sleeping.
type offsetClock struct{ offset atomic.Int64 }

func (c *offsetClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func (c *offsetClock) Set(d time.Duration) { c.offset.Store(int64(d)) }
