package ec2

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/secret"
)

// RegistrationPath is where instances fetch their registration bundle.
const RegistrationPath = "/instance/v1/registration"

// tombstoneRetention is how long a used, revoked or expired token keeps
// answering 410 Gone (rather than 401) before it is forgotten.
const tombstoneRetention = time.Hour

// Bundle is what an instance needs to register its runner. JITConfig or
// Token is a secret; the rest is not.
type Bundle struct {
	RunnerName    string
	Pool          string
	Labels        []string
	RunnerGroup   string
	URL           string // the scope's web URL (config.sh --url)
	JITConfig     secret.String
	Token         secret.String
	Ephemeral     bool
	PackageURL    string // the runner application to download; empty when preinstalled
	PackageSHA256 string
}

// bundleJSON is the wire form of a Bundle, built only while answering the
// one fetch.
type bundleJSON struct {
	RunnerName    string   `json:"runner_name"`
	Pool          string   `json:"pool"`
	Labels        []string `json:"labels"`
	RunnerGroup   string   `json:"runner_group,omitempty"`
	URL           string   `json:"url,omitempty"`
	JITConfig     string   `json:"jit_config,omitempty"`
	Token         string   `json:"token,omitempty"`
	Ephemeral     bool     `json:"ephemeral"`
	PackageURL    string   `json:"package_url,omitempty"`
	PackageSHA256 string   `json:"package_sha256,omitempty"`
}

type entryState int

const (
	stateOffered entryState = iota
	stateFetched
	stateRevoked
)

type entry struct {
	hash       [sha256.Size]byte
	bundle     *Bundle // nil once fetched or revoked
	state      entryState
	expires    time.Time
	instanceID string
}

// RegistrationServer hands each new instance its registration bundle once.
// The provisioner offers a bundle and puts only the returned one-time token
// in the instance's user data; the instance exchanges the token for the
// bundle with GET RegistrationPath and "Authorization: Bearer <token>".
//
// A token works once and only until the bootstrap timeout: later requests
// get 410 Gone, unknown tokens 401. Tokens are 32 random bytes, kept only as
// SHA-256 hashes (so a lookup by hash leaks nothing usable about a token
// through timing) and never logged. Deleting the instance revokes its token.
//
// It is an http.Handler the daemon mounts on its instance listener; one
// server may back several ec2 provisioners. State is in memory: after a
// daemon restart, instances still booting cannot fetch their bundle, fail
// their bootstrap and shut down (they terminate themselves).
type RegistrationServer struct {
	mu         sync.Mutex
	entries    map[[sha256.Size]byte]*entry
	byInstance map[string]*entry
	now        func() time.Time
	logger     *zap.Logger
}

var _ http.Handler = (*RegistrationServer)(nil)

// RegistrationOption configures a RegistrationServer.
type RegistrationOption func(*RegistrationServer)

// WithClock sets the clock used for expiry (tests).
func WithClock(now func() time.Time) RegistrationOption {
	return func(s *RegistrationServer) {
		if now != nil {
			s.now = now
		}
	}
}

// WithLogger sets the logger.
func WithLogger(l *zap.Logger) RegistrationOption {
	return func(s *RegistrationServer) {
		if l != nil {
			s.logger = l
		}
	}
}

// NewRegistrationServer returns an empty server.
func NewRegistrationServer(opts ...RegistrationOption) *RegistrationServer {
	s := &RegistrationServer{
		entries:    map[[sha256.Size]byte]*entry{},
		byInstance: map[string]*entry{},
		now:        time.Now,
		logger:     zap.NewNop(),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Offer stores b for one fetch within ttl and returns the one-time token.
func (s *RegistrationServer) Offer(b Bundle, ttl time.Duration) (secret.String, error) {
	if ttl <= 0 {
		return "", errors.New("offer registration: ttl must be positive")
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("offer registration: random token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw[:])
	e := &entry{hash: sha256.Sum256([]byte(token)), bundle: &b}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.pruneLocked(now)
	e.expires = now.Add(ttl)
	s.entries[e.hash] = e
	return secret.String(token), nil
}

// Bind records which instance token was handed to, so RevokeInstance can
// find it.
func (s *RegistrationServer) Bind(token secret.String, instanceID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.lookupLocked(token.Reveal()); ok {
		if e.instanceID != "" {
			delete(s.byInstance, e.instanceID)
		}
		e.instanceID = instanceID
		s.byInstance[instanceID] = e
	}
}

// Revoke makes token unusable (e.g. when the launch failed).
func (s *RegistrationServer) Revoke(token secret.String) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.lookupLocked(token.Reveal()); ok {
		revoke(e)
	}
}

// RevokeInstance makes the token handed to instanceID unusable.
func (s *RegistrationServer) RevokeInstance(instanceID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.byInstance[instanceID]; ok {
		revoke(e)
	}
}

func revoke(e *entry) {
	if e.state == stateOffered {
		e.state = stateRevoked
		e.bundle = nil
	}
}

// Outstanding reports how many offered bundles still wait for their fetch.
func (s *RegistrationServer) Outstanding() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.pruneLocked(now)
	n := 0
	for _, e := range s.entries {
		if e.state == stateOffered && now.Before(e.expires) {
			n++
		}
	}
	return n
}

// lookupLocked finds the entry of token. The map is keyed by the token's
// hash; the final comparison is constant-time.
func (s *RegistrationServer) lookupLocked(token string) (*entry, bool) {
	h := sha256.Sum256([]byte(token))
	e, ok := s.entries[h]
	if !ok || subtle.ConstantTimeCompare(e.hash[:], h[:]) != 1 {
		return nil, false
	}
	return e, true
}

// pruneLocked forgets entries whose tombstone period is over, and drops the
// bundles of expired ones.
func (s *RegistrationServer) pruneLocked(now time.Time) {
	for h, e := range s.entries {
		if !now.Before(e.expires) {
			e.bundle = nil
		}
		if !now.Before(e.expires.Add(tombstoneRetention)) {
			delete(s.entries, h)
			if e.instanceID != "" && s.byInstance[e.instanceID] == e {
				delete(s.byInstance, e.instanceID)
			}
		}
	}
}

// ServeHTTP answers GET RegistrationPath.
func (s *RegistrationServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Path != RegistrationPath {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	token, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="runnerscaler"`)
		writeError(w, http.StatusUnauthorized, "a bearer token is required")
		return
	}

	s.mu.Lock()
	now := s.now()
	s.pruneLocked(now)
	e, found := s.lookupLocked(token)
	var (
		b      *Bundle
		status = http.StatusOK
		why    string
	)
	switch {
	case !found:
		status, why = http.StatusUnauthorized, "unknown token"
	case e.state == stateFetched:
		status, why = http.StatusGone, "already used"
	case e.state == stateRevoked:
		status, why = http.StatusGone, "revoked"
	case !now.Before(e.expires):
		status, why = http.StatusGone, "expired"
	default:
		b = e.bundle
		e.state, e.bundle = stateFetched, nil
	}
	instanceID := ""
	if found {
		instanceID = e.instanceID
	}
	s.mu.Unlock()

	if b == nil {
		s.logger.Warn("registration fetch refused",
			zap.Int("status", status), zap.String("reason", why),
			zap.String("instance", instanceID), zap.String("remote", r.RemoteAddr))
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="runnerscaler", error="invalid_token"`)
		}
		writeError(w, status, "registration "+why)
		return
	}
	s.logger.Info("registration fetched",
		zap.String("runner", b.RunnerName), zap.String("pool", b.Pool),
		zap.String("instance", instanceID), zap.String("remote", r.RemoteAddr))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(bundleJSON{
		RunnerName:    b.RunnerName,
		Pool:          b.Pool,
		Labels:        b.Labels,
		RunnerGroup:   b.RunnerGroup,
		URL:           b.URL,
		JITConfig:     b.JITConfig.Reveal(),
		Token:         b.Token.Reveal(),
		Ephemeral:     b.Ephemeral,
		PackageURL:    b.PackageURL,
		PackageSHA256: b.PackageSHA256,
	})
}

func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	if token == "" || len(token) > 256 {
		return "", false
	}
	return token, true
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
