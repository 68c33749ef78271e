// Package ghsim simulates the parts of GitHub Runnerscaler depends on: the
// self-hosted runner and runner group REST API at every scope, GitHub App
// authentication and rate limits, workflow_job webhooks with a delivery log,
// job assignment as GitHub does it, runner application downloads, and a
// control API under /_sim/ for tests, the demo and capacity planning.
//
// The model lives in ghsim/world and does no I/O; this package serves it.
// Production code never imports ghsim.
package ghsim

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

// Clock is the simulator's time source.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Options configures a simulator. The zero value serves the default world
// with no accepted credentials except App JWTs signed for AppPublicKey.
type Options struct {
	World *world.World // nil: a world built from world.DefaultSpec()
	Clock Clock        // nil: the real clock
	Seed  int64        // seeds every random choice (faults, dropped webhooks)

	// PAT, when set, is a personal access token the REST API accepts.
	PAT string
	// AppID and AppPublicKey verify App JWTs (RS256, issuer = AppID).
	AppID        int64
	AppPublicKey *rsa.PublicKey

	WebhookURL    string // where workflow_job deliveries go; "" sends none
	WebhookSecret string // signs deliveries (X-Hub-Signature-256)
	HookID        int64  // X-GitHub-Hook-ID; default 1

	RateLimit      int // core requests per hour per installation; default 5000
	JITBudget      int // generate-jitconfig calls per hour per installation; 0 = unlimited
	SecondaryLimit int // requests per minute per installation before a secondary limit; 0 = off

	BusyLag time.Duration // see world.World.SetBusyLag

	// RunnerCommand is the program the runner package's run.sh and config.sh
	// exec, with "sim-runner" as its first argument; default the running binary.
	RunnerCommand string

	Logger *zap.Logger
}

// Server is a running simulator.
type Server struct {
	opts  Options
	world *world.World
	clock Clock
	log   *zap.Logger
	rng   *lockedRand
	stats *stats

	api     *restAPI
	hooks   *webhooks
	faults  *faults
	runners *runnerHub
	control http.Handler

	mu      sync.Mutex
	baseURL string
	httpSrv *http.Server
}

// New builds a simulator; Start serves it.
func New(opts Options) (*Server, error) {
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.HookID == 0 {
		opts.HookID = 1
	}
	if opts.RateLimit <= 0 {
		opts.RateLimit = 5000
	}
	w := opts.World
	if w == nil {
		var err error
		if w, err = world.NewFromSpec(opts.Clock, world.DefaultSpec()); err != nil {
			return nil, fmt.Errorf("default world: %w", err)
		}
	}
	w.SetBusyLag(opts.BusyLag)
	s := &Server{
		opts:  opts,
		world: w,
		clock: opts.Clock,
		log:   opts.Logger,
		rng:   newLockedRand(opts.Seed),
		stats: newStats(),
	}
	var err error
	if s.runners, err = newRunnerHub(s); err != nil {
		return nil, err
	}
	s.hooks = newWebhooks(s)
	s.faults = newFaults(s)
	s.api = newRESTAPI(s)
	s.control = newControl(s)
	w.OnEvent(func(e world.Event) {
		s.hooks.onEvent(e)
		s.runners.onEvent(e)
	})
	return s, nil
}

// World is the model the simulator serves.
func (s *Server) World() *world.World { return s.world }

// Handler routes the control API, the runner protocol, downloads and the REST
// API (also under /api/v3/, as GitHub Enterprise Server serves it).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/_sim/", s.control)
	mux.Handle("/_runner/", s.runners)
	mux.Handle("/_downloads/", s.runners)
	mux.Handle("/api/v3/", http.StripPrefix("/api/v3", s.api))
	mux.Handle("/", s.api)
	return mux
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves until Close.
func (s *Server) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("simulator listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.baseURL = "http://" + ln.Addr().String() + "/"
	s.httpSrv = srv
	s.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("simulator server stopped", zap.Error(err))
		}
	}()
	return s.URL(), nil
}

// URL is the base URL once started, ending in "/".
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// SetURL tells the simulator its public base URL when it is served by
// someone else's listener (e.g. httptest); it appears in JIT configs,
// download URLs and Link headers.
func (s *Server) SetURL(u string) {
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.baseURL = u
}

// Close stops serving, ends runner sessions and waits for deliveries in flight.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.httpSrv
	s.mu.Unlock()
	s.runners.close()
	var err error
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = srv.Shutdown(ctx)
	}
	s.hooks.close()
	return err
}

// lockedRand is the one seeded source of every random choice, so a run with
// the same seed and the same sequence of requests makes the same choices.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newLockedRand(seed int64) *lockedRand {
	return &lockedRand{r: rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))}
}

// Float64 returns a number in [0, 1).
func (l *lockedRand) Float64() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64()
}
