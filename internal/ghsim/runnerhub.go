package ghsim

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/ghsim/simrunner"
	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

// Timing of runner tokens and sessions.
const (
	runnerTokenTTL   = time.Hour              // registration and remove tokens
	sessionPoll      = 250 * time.Millisecond // how often a session notices its runner was deleted
	sessionKeepAlive = 10 * time.Second       // ping lines on an idle session
	sessionWriteWait = 10 * time.Second       // a runner that stops reading is dropped
)

// runnerHub speaks to runner processes (scaler sim-runner): JIT configs and
// registration, sessions that carry job assignments, runner application
// downloads. (Owned by the runner work: runnerhub*.go, downloads*.go.)
//
// Files: runnerhub.go (state, JIT configs, tokens), runnerhub_register.go
// (config.sh's routes and downloads), runnerhub_session.go (sessions and
// job assignments), downloads.go (the runner packages).
//
// Locking: mu guards the maps below. The hub never calls the world while
// holding mu: the world calls onEvent, which takes mu.
type runnerHub struct {
	s         *Server
	log       *zap.Logger
	downloads *runnerDownloads
	mux       *http.ServeMux
	done      chan struct{} // closed by close

	mu         sync.Mutex
	closed     bool
	regTokens  map[string]hubToken
	rmTokens   map[string]hubToken
	creds      map[string]*hubCredential // by session credential
	credsOf    map[int64][]string        // runner id -> its credentials
	mail       map[int64]*sessionMailbox // runner id -> what its session must hear
	credsSwept int                       // len(creds) after the last sweep
}

type hubToken struct {
	scope   world.Scope
	expires time.Time
}

// hubCredential is a runner's session credential. A JIT one opens a single
// session; one from config.sh opens one session at a time for as long as the
// runner is registered.
type hubCredential struct {
	runnerID int64
	oneTime  bool
	used     bool
}

// sessionMailbox buffers messages for a runner's session. It exists before the
// session is ready, so an assignment made while RunnerOnline runs is kept.
type sessionMailbox struct {
	queue    []simrunner.Message
	wake     chan struct{} // capacity 1: "the queue changed"
	attached bool          // a session is open
	sentJob  int64         // the last job handed over, so each goes out once
}

func newRunnerHub(s *Server) (*runnerHub, error) {
	h := &runnerHub{
		s:         s,
		log:       s.log.Named("runners"),
		done:      make(chan struct{}),
		regTokens: map[string]hubToken{},
		rmTokens:  map[string]hubToken{},
		creds:     map[string]*hubCredential{},
		credsOf:   map[int64][]string{},
		mail:      map[int64]*sessionMailbox{},
	}
	var err error
	if h.downloads, err = newRunnerDownloads(s.opts.RunnerCommand, s.URL()); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /"+simrunner.PathRegister, h.serveRegister)
	mux.HandleFunc("POST /"+simrunner.PathRemove, h.serveRemove)
	mux.HandleFunc("GET /"+simrunner.PathSession, h.serveSession)
	mux.HandleFunc("POST /_runner/jobs/{id}/complete", h.serveComplete)
	mux.HandleFunc("GET /_downloads/{file}", h.serveDownload)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeRunnerError(w, http.StatusNotFound, "no such runner protocol route: "+r.Method+" "+r.URL.Path)
	})
	h.mux = mux
	return h, nil
}

// ServeHTTP serves /_runner/ and /_downloads/.
func (h *runnerHub) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// close ends every session.
func (h *runnerHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
}

// IssueJIT returns the encoded JIT config for a just-registered runner, in
// GitHub's shape, usable once.
func (h *runnerHub) IssueJIT(r world.Runner) (string, error) {
	tok, err := h.newCredential(r.ID, true)
	if err != nil {
		return "", err
	}
	rsa, err := fakeRSAParams()
	if err != nil {
		return "", err
	}
	enc, err := simrunner.EncodeJIT(h.settings(r, "_work"), sessionCredentials(tok), rsa)
	if err != nil {
		return "", fmt.Errorf("encode JIT config for runner %s: %w", r.Name, err)
	}
	return enc, nil
}

// settings is the .runner file of a runner.
func (h *runnerHub) settings(r world.Runner, workFolder string) simrunner.Settings {
	pool := "Default"
	if r.Scope.Kind != world.Repo {
		if g, err := h.s.world.Group(r.Scope, r.GroupID); err == nil {
			pool = g.Name
		}
	}
	base := h.s.URL()
	return simrunner.Settings{
		AgentID: r.ID, AgentName: r.Name, PoolID: r.GroupID, PoolName: pool,
		ServerURL: base, ServerURLV2: base, GitHubURL: runnerGitHubURL(r.Scope),
		WorkFolder: workFolder, Ephemeral: r.Ephemeral, DisableUpdate: true, UseV2Flow: true,
	}
}

func sessionCredentials(token string) simrunner.Credentials {
	return simrunner.Credentials{Scheme: simrunner.CredentialScheme, Data: simrunner.CredentialsData{Token: token}}
}

// IssueRegistrationToken returns a registration token for scope, valid one hour.
func (h *runnerHub) IssueRegistrationToken(scope world.Scope) (string, time.Time) {
	return h.issueToken(h.regTokens, scope)
}

// IssueRemoveToken returns a remove token for scope, valid one hour.
func (h *runnerHub) IssueRemoveToken(scope world.Scope) (string, time.Time) {
	return h.issueToken(h.rmTokens, scope)
}

func (h *runnerHub) issueToken(m map[string]hubToken, scope world.Scope) (string, time.Time) {
	now := h.s.clock.Now()
	expires := now.Add(runnerTokenTTL).Truncate(time.Second)
	tok := runnerRandomToken()
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, t := range m {
		if !now.Before(t.expires) {
			delete(m, k)
		}
	}
	m[tok] = hubToken{scope: scope, expires: expires}
	return tok, expires
}

// checkToken reports whether tok is an unexpired token of m for scope.
func (h *runnerHub) checkToken(m map[string]hubToken, tok string, scope world.Scope) bool {
	now := h.s.clock.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := m[tok]
	return ok && tok != "" && now.Before(t.expires) && runnerSameScope(t.scope, scope)
}

// runnerRandomToken looks like GitHub's registration tokens: 29 upper-case base32
// characters.
func runnerRandomToken() string {
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(runnerRandomBytes(18))
}

func runnerRandomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}

// newCredential makes a session credential for a runner.
func (h *runnerHub) newCredential(rid int64, oneTime bool) (string, error) {
	if rid == 0 {
		return "", errors.New("runner has no id")
	}
	tok := "simr_" + base64.RawURLEncoding.EncodeToString(runnerRandomBytes(30))
	h.mu.Lock()
	h.creds[tok] = &hubCredential{runnerID: rid, oneTime: oneTime}
	h.credsOf[rid] = append(h.credsOf[rid], tok)
	sweep := len(h.creds) > 2*h.credsSwept+64
	h.mu.Unlock()
	if sweep {
		h.sweepCredentials()
	}
	return tok, nil
}

// sweepCredentials forgets the credentials of runners deleted through the
// REST API, which the hub is not told about.
func (h *runnerHub) sweepCredentials() {
	live := map[int64]bool{}
	for _, r := range h.s.world.Runners(world.Scope{}) {
		live[r.ID] = true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for rid := range h.credsOf {
		if mb := h.mail[rid]; !live[rid] && (mb == nil || !mb.attached) {
			h.forgetLocked(rid)
		}
	}
	h.credsSwept = len(h.creds)
}

// fakeRSAParams has the shape of a 2048-bit key's parameters. Generating real
// keys would cost milliseconds per runner and nothing checks them.
func fakeRSAParams() (simrunner.RSAParams, error) {
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(runnerRandomBytes(n)) }
	return simrunner.RSAParams{
		D: b64(256), DP: b64(128), DQ: b64(128), Exponent: "AQAB", InverseQ: b64(128),
		Modulus: b64(256), P: b64(128), Q: b64(128),
	}, nil
}

// RunnerApplication is one entry of the runner downloads list.
type RunnerApplication struct {
	OS, Architecture, DownloadURL, Filename, SHA256 string
}

// Downloads lists the runner application packages the simulator serves.
func (h *runnerHub) Downloads() []RunnerApplication { return h.downloads.list(h.s.URL()) }

// --- for tests, the demo and scaler sim: what the REST API hands out, without
// authentication or rate limits ---

// GenerateJITConfig registers a JIT runner and returns it with its encoded
// JIT config, as POST .../actions/runners/generate-jitconfig does.
func (s *Server) GenerateJITConfig(in world.RunnerInput) (world.Runner, string, error) {
	in.JIT = true
	r, err := s.world.RegisterRunner(in)
	if err != nil {
		return world.Runner{}, "", err
	}
	enc, err := s.runners.IssueJIT(r)
	if err != nil {
		_ = s.world.DeleteRunner(r.Scope, r.ID)
		return world.Runner{}, "", err
	}
	return r, enc, nil
}

// RegistrationToken returns a registration token for scope, valid one hour.
func (s *Server) RegistrationToken(scope world.Scope) (string, time.Time) {
	return s.runners.IssueRegistrationToken(scope)
}

// RemoveToken returns a remove token for scope, valid one hour.
func (s *Server) RemoveToken(scope world.Scope) (string, time.Time) {
	return s.runners.IssueRemoveToken(scope)
}

// RunnerDownloads lists the runner application packages, as
// GET .../actions/runners/downloads does.
func (s *Server) RunnerDownloads() []RunnerApplication { return s.runners.Downloads() }
