package ghsim

import (
	"net/http"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

// runnerHub speaks to runner processes (scaler sim-runner): JIT configs and
// registration, sessions that carry job assignments, runner application
// downloads. (Owned by the runner work: runnerhub*.go, downloads*.go.)
type runnerHub struct{ s *Server }

func newRunnerHub(s *Server) (*runnerHub, error) { return &runnerHub{s: s}, nil }

// ServeHTTP serves /_runner/ and /_downloads/.
func (h *runnerHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "not implemented", http.StatusNotImplemented)
}

// onEvent hands an in_progress job to its runner's session, and ends the
// session of an ephemeral runner whose job completed.
func (h *runnerHub) onEvent(e world.Event) {}

// close ends every session.
func (h *runnerHub) close() {}

// IssueJIT returns the encoded JIT config for a just-registered runner, in
// GitHub's shape, usable once.
func (h *runnerHub) IssueJIT(r world.Runner) (string, error) { return "", nil }

// IssueRegistrationToken returns a registration token for scope, valid one hour.
func (h *runnerHub) IssueRegistrationToken(scope world.Scope) (string, time.Time) {
	return "", time.Time{}
}

// IssueRemoveToken returns a remove token for scope, valid one hour.
func (h *runnerHub) IssueRemoveToken(scope world.Scope) (string, time.Time) { return "", time.Time{} }

// RunnerApplication is one entry of the runner downloads list.
type RunnerApplication struct {
	OS, Architecture, DownloadURL, Filename, SHA256 string
}

// Downloads lists the runner application packages the simulator serves.
func (h *runnerHub) Downloads() []RunnerApplication { return nil }
