// Package provisioner turns a scaling decision into a machine that runs a
// GitHub Actions runner. A Provisioner creates, deletes, lists and gets
// instances; one sub-package implements each kind (local processes, external
// executables, AWS EC2). Every instance carries this daemon's id and its pool,
// and List returns only those, so nothing foreign is ever touched.
package provisioner

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/secret"
)

// State is an instance's lifecycle state.
type State string

// Instance states.
const (
	StatePending State = "pending" // being created or booting
	StateRunning State = "running" // the runner process or machine is up
	StateStopped State = "stopped" // ended by itself (e.g. an ephemeral runner after its job)
	StateFailed  State = "failed"  // could not start, or died
	StateGone    State = "gone"    // deleted or no longer exists
)

// ErrNotFound: no instance of ours has this id.
var ErrNotFound = errors.New("instance not found")

// Registration is how the runner registers with GitHub: a JIT config, or a
// registration token for config.sh. Both are secrets.
type Registration struct {
	JITConfig secret.String // set for JIT registration
	Token     secret.String // set for token registration
	Ephemeral bool          // token registration: --ephemeral
}

// Spec describes one runner to launch.
type Spec struct {
	RunnerName   string
	Pool         string
	Labels       []string
	RunnerGroup  string
	ScopeURL     string // the scope's web URL, e.g. https://github.com/octo-org (config.sh --url)
	OS           string // the pool's os: linux, windows or macos
	Arch         string // the pool's arch: x64, arm64 or arm
	Registration Registration
}

// Instance is a machine or process a provisioner manages.
type Instance struct {
	ID         string
	Pool       string
	RunnerName string
	State      State
	Addresses  []string
	CreatedAt  time.Time
	LastError  string
}

// Provisioner is what every backend implements.
//
//   - Create launches one instance for spec and returns it (usually pending).
//     It must not leave a half-made instance behind on error; an error that
//     proves nothing was created should be wrapped with NotCreated so the
//     caller may retry safely.
//   - Delete removes an instance and everything it holds; deleting an
//     instance that is already gone returns nil (deletes are idempotent).
//   - List returns every instance this daemon owns, in any state but gone.
//   - Get returns one of ours, or ErrNotFound.
//
// Methods may block on I/O and must honour ctx. Implementations that hold
// resources also implement io.Closer.
type Provisioner interface {
	Create(ctx context.Context, spec Spec) (Instance, error)
	Delete(ctx context.Context, id string) error
	List(ctx context.Context) ([]Instance, error)
	Get(ctx context.Context, id string) (Instance, error)
}

// RunnerApplication is one runner application build GitHub offers.
type RunnerApplication struct {
	OS, Architecture, DownloadURL, Filename, SHA256 string
}

// RunnerDownloads lists the runner application builds (GitHub's downloads
// endpoint); the daemon adapts its GitHub client to it.
type RunnerDownloads interface {
	RunnerApplications(ctx context.Context) ([]RunnerApplication, error)
}

// Env is what the daemon gives every provisioner it builds.
type Env struct {
	Name      string          // provisioners.<name>
	DaemonID  string          // ownership tag on every instance
	StateDir  string          // where a provisioner may keep files (a sub-directory per provisioner is its own)
	ConfigDir string          // directory of the config file; relative paths in settings resolve against it
	Downloads RunnerDownloads // may be nil for kinds that do not need it
	Logger    *zap.Logger
	Clock     func() time.Time
	// BootstrapTimeout is lifecycle.bootstrap_timeout: how long a runner
	// may take to come up. Provisioners that can tell a start has stalled
	// (a pod that stays Pending) report it failed after this long.
	BootstrapTimeout time.Duration
}

// Watcher is implemented by provisioners that learn of instance changes as
// they happen (a Kubernetes watch) rather than only when asked. The
// daemon registers a function that wakes the scaler, so a runner that
// starts or dies is acted on at once instead of at the next tick. fn must
// not block.
type Watcher interface {
	OnChange(fn func())
}

// AsWatcher finds a Watcher in p or in what p wraps (see Instrumented).
func AsWatcher(p Provisioner) (Watcher, bool) {
	for p != nil {
		if w, ok := p.(Watcher); ok {
			return w, true
		}
		u, ok := p.(interface{ Unwrap() Provisioner })
		if !ok {
			return nil, false
		}
		p = u.Unwrap()
	}
	return nil, false
}

// notCreated marks a Create error after which nothing exists.
type notCreated struct{ err error }

func (e notCreated) Error() string { return e.err.Error() }
func (e notCreated) Unwrap() error { return e.err }

// NotCreated wraps a Create error that proves no instance was made, so a
// retry cannot create a second one.
func NotCreated(err error) error {
	if err == nil {
		return nil
	}
	return notCreated{err}
}

// IsNotCreated reports whether err was marked with NotCreated.
func IsNotCreated(err error) bool {
	var nc notCreated
	return errors.As(err, &nc)
}

// permanent marks an error retrying cannot fix (bad settings, refused input).
type permanent struct{ err error }

func (e permanent) Error() string { return e.err.Error() }
func (e permanent) Unwrap() error { return e.err }

// Permanent wraps an error that no retry will fix.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}
