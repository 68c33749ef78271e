package ghsim

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

// Helpers of the REST tests (rest*_test.go). Names start with rest/REST so
// they do not collide with the other tests of the package.

const (
	restAppID = 4242
	restPAT   = "ghp_simulatorTestPAT0000000000000000000"
)

var (
	restKeyOnce sync.Once
	restKey     *rsa.PrivateKey
	restKeyPEM  []byte
	restKeyErr  error
)

// restTestKey is the App's RSA key, made once per test binary.
func restTestKey(t testing.TB) (*rsa.PrivateKey, []byte) {
	t.Helper()
	restKeyOnce.Do(func() {
		restKey, restKeyErr = rsa.GenerateKey(rand.Reader, 2048)
		if restKeyErr == nil {
			restKeyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(restKey)})
		}
	})
	if restKeyErr != nil {
		t.Fatal(restKeyErr)
	}
	return restKey, restKeyPEM
}

// restClock is the real clock plus an offset the test can move forward.
type restClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *restClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *restClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// restSim is a simulator served over loopback for a test.
type restSim struct {
	t     *testing.T
	s     *Server
	base  string // "http://127.0.0.1:port/"
	clock *restClock
}

// newRESTSim starts a simulator with the default world, the test App and
// PAT; mutate may change the options first.
func newRESTSim(t *testing.T, mutate func(*Options)) *restSim {
	t.Helper()
	key, _ := restTestKey(t)
	clk := &restClock{}
	opts := Options{Clock: clk, PAT: restPAT, AppID: restAppID, AppPublicKey: &key.PublicKey, Seed: 1}
	if mutate != nil {
		mutate(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	s.SetURL(ts.URL)
	t.Cleanup(func() {
		ts.Close()
		_ = s.Close()
	})
	return &restSim{t: t, s: s, base: ts.URL + "/", clock: clk}
}

// restResp is an answer read in full.
type restResp struct {
	status int
	header http.Header
	body   []byte
}

// object decodes the body as a JSON object.
func (r restResp) object(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// message is the "message" of an error body.
func (r restResp) message(t testing.TB) string {
	t.Helper()
	m, _ := r.object(t)["message"].(string)
	return m
}

// remaining is x-ratelimit-remaining (-1 when missing).
func (r restResp) remaining() int {
	n, err := strconv.Atoi(r.header.Get("X-RateLimit-Remaining"))
	if err != nil {
		return -1
	}
	return n
}

// do sends one request; auth is the whole Authorization value ("" for
// none); extra is header name/value pairs.
func (h *restSim) do(method, path, auth, body string, extra ...string) restResp {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.base+strings.TrimPrefix(path, "/"), rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return restResp{status: resp.StatusCode, header: resp.Header, body: b}
}

// pat is the Authorization value of the PAT.
func (h *restSim) pat() string { return "token " + restPAT }

// jwt signs an App JWT; adjust may change the claims before signing.
func (h *restSim) jwt(adjust func(jwt.MapClaims)) string {
	h.t.Helper()
	key, _ := restTestKey(h.t)
	now := h.clock.Now()
	claims := jwt.MapClaims{
		"iat": now.Add(-30 * time.Second).Unix(),
		"exp": now.Add(2 * time.Minute).Unix(),
		"iss": strconv.Itoa(restAppID),
	}
	if adjust != nil {
		adjust(claims)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(key)
	if err != nil {
		h.t.Fatal(err)
	}
	return "Bearer " + s
}

// installationID is the id of the App's installation on an org ("" for the
// enterprise).
func (h *restSim) installationID(org string) int64 {
	h.t.Helper()
	if org == "" {
		return installationIDFor(h.s.World().Enterprise().ID)
	}
	o, ok := h.s.World().Org(org)
	if !ok {
		h.t.Fatalf("no org %s", org)
	}
	return installationIDFor(o.ID)
}

// token mints an installation token for an org ("" for the enterprise) and
// returns its Authorization value.
func (h *restSim) token(org string) string {
	h.t.Helper()
	r := h.do("POST", "app/installations/"+strconv.FormatInt(h.installationID(org), 10)+"/access_tokens", h.jwt(nil), "{}")
	if r.status != http.StatusCreated {
		h.t.Fatalf("access token for %q: %d %s", org, r.status, r.body)
	}
	tok, _ := r.object(h.t)["token"].(string)
	return "token " + tok
}

// jit registers a JIT runner with the PAT and returns its id.
func (h *restSim) jit(prefix, name string, labels ...string) int64 {
	h.t.Helper()
	lb, _ := json.Marshal(labels)
	r := h.do("POST", prefix+"/actions/runners/generate-jitconfig", h.pat(),
		`{"name":"`+name+`","runner_group_id":1,"labels":`+string(lb)+`}`)
	if r.status != http.StatusCreated {
		h.t.Fatalf("jit %s: %d %s", name, r.status, r.body)
	}
	runner, _ := r.object(h.t)["runner"].(map[string]any)
	id, _ := runner["id"].(float64)
	return int64(id)
}
