package simrunner

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/secret"
)

// Errors a runner process stops on.
var (
	ErrUnauthorized       = errors.New("the simulator refused the runner's credentials (a JIT config works once)")
	ErrRunnerNotFound     = errors.New("runner not found: it was removed")
	ErrSessionConflict    = errors.New("another session is open for this runner")
	ErrAlreadyConfigured  = errors.New("the runner is already configured here; run config.sh remove first")
	ErrNotConfigured      = errors.New("the runner is not configured here; run config.sh first, or pass a JIT config")
	ErrNoServerURL        = errors.New("cannot tell the simulator's URL: pass --server-url or set SCALER_SIM_URL")
	errSessionEndedEarly  = errors.New("session ended without an exit message")
	defaultReconnectFor   = 15 * time.Second
	defaultRequestTimeout = 30 * time.Second
)

// Options tunes a runner process.
type Options struct {
	Logger *zap.Logger // nil: no logs
	// HTTPClient makes every request; it must not have a Timeout, which would
	// cut the session stream. nil: a fresh client.
	HTTPClient *http.Client
	// ReconnectFor is how long a runner keeps trying to open its session
	// when the simulator cannot be reached (default 15s).
	ReconnectFor time.Duration
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.ReconnectFor <= 0 {
		o.ReconnectFor = defaultReconnectFor
	}
	return o
}

// statusError is a refusal by the simulator.
type statusError struct {
	op     string
	status int
	msg    string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s: simulator answered %d: %s", e.op, e.status, e.msg)
}

func (e *statusError) Unwrap() error {
	switch e.status {
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusNotFound:
		return ErrRunnerNotFound
	case http.StatusConflict:
		return ErrSessionConflict
	}
	return nil
}

// readError turns an error answer into a statusError.
func readError(op string, resp *http.Response) error {
	var e ErrorResponse
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &e) != nil || e.Message == "" {
		e.Message = strings.TrimSpace(string(b))
	}
	return &statusError{op: op, status: resp.StatusCode, msg: e.Message}
}

// ResolveServerURL finds the simulator's base URL for config.sh: the
// explicit value, else the environment's SCALER_SIM_URL, else the --url's
// scheme and host when they are not github.com (the simulator serves its
// own web URLs too).
func ResolveServerURL(explicit, env, gitHubURL string) (string, error) {
	for _, v := range []string{explicit, env} {
		if v != "" {
			return withSlash(v), nil
		}
	}
	u, err := url.Parse(gitHubURL)
	if err == nil && u.Host != "" && !strings.EqualFold(u.Hostname(), "github.com") {
		return u.Scheme + "://" + u.Host + "/", nil
	}
	return "", ErrNoServerURL
}

func withSlash(s string) string {
	if strings.HasSuffix(s, "/") {
		return s
	}
	return s + "/"
}

// postJSON sends a JSON body and decodes a JSON answer into out (when not nil).
func postJSON(ctx context.Context, c *http.Client, op, u string, auth secret.String, in, out any, want int) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	ctx, cancel := context.WithTimeout(ctx, defaultRequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth.Reveal())
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return readError(op, resp)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("%s: decode answer: %w", op, err)
		}
	}
	return nil
}

// Registration is what config.sh is told.
type Registration struct {
	ServerURL       string        // the simulator's base URL
	URL             string        // --url: https://github.com/ORG, /OWNER/REPO or /enterprises/SLUG
	Token           secret.String // --token: a registration token
	Name            string
	Labels          []string
	RunnerGroup     string
	Work            string
	Ephemeral       bool
	NoDefaultLabels bool
	Replace         bool
	OS, Arch        string // of the runner package (linux, osx, win; x64, arm64, arm)
}

// Register registers a runner with a registration token, as config.sh does.
func Register(ctx context.Context, reg Registration, opts Options) (Config, error) {
	opts = opts.withDefaults()
	if reg.ServerURL == "" {
		return Config{}, ErrNoServerURL
	}
	in := RegisterRequest{
		Token: reg.Token.Reveal(), URL: reg.URL, Name: reg.Name, Labels: reg.Labels, RunnerGroup: reg.RunnerGroup,
		Ephemeral: reg.Ephemeral, NoDefaultLabels: reg.NoDefaultLabels, OS: reg.OS, Arch: reg.Arch,
		Replace: reg.Replace, WorkFolder: reg.Work,
	}
	var out RegisterResponse
	if err := postJSON(ctx, opts.HTTPClient, "register runner "+reg.Name, withSlash(reg.ServerURL)+PathRegister, "", in, &out, http.StatusCreated); err != nil {
		return Config{}, err
	}
	cfg := Config{Settings: out.Runner, Token: secret.String(out.Credentials.Data.Token)}
	if cfg.Settings.ServerURL == "" {
		cfg.Settings.ServerURL = withSlash(reg.ServerURL)
	}
	opts.Logger.Info("runner registered", zap.String("runner", out.Name), zap.Int64("runner_id", out.RunnerID))
	return cfg, nil
}

// Save writes the .runner and .credentials files of a configured runner
// into dir; it refuses to overwrite a configured runner.
func Save(dir string, cfg Config) error {
	if _, err := os.Stat(filepath.Join(dir, FileRunner)); err == nil {
		return ErrAlreadyConfigured
	}
	settings, err := json.MarshalIndent(cfg.Settings, "", "  ")
	if err != nil {
		return err
	}
	creds, err := json.MarshalIndent(Credentials{Scheme: CredentialScheme, Data: CredentialsData{Token: cfg.Token.Reveal()}}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, FileCredentials), creds, 0o600); err != nil {
		return fmt.Errorf("save %s: %w", FileCredentials, err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileRunner), settings, 0o644); err != nil {
		return fmt.Errorf("save %s: %w", FileRunner, err)
	}
	return nil
}

// Load reads the runner configured in dir.
func Load(dir string) (Config, error) {
	if _, err := os.Stat(filepath.Join(dir, FileRunner)); errors.Is(err, os.ErrNotExist) {
		return Config{}, ErrNotConfigured
	}
	return decodeFiles(func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, name)) })
}

// Remove unregisters the runner configured in dir with a remove token and
// deletes its files, as config.sh remove does.
func Remove(ctx context.Context, dir string, removeToken secret.String, opts Options) error {
	opts = opts.withDefaults()
	cfg, err := Load(dir)
	if err != nil {
		return err
	}
	in := RemoveRequest{Token: removeToken.Reveal(), Credentials: cfg.Token.Reveal()}
	if err := postJSON(ctx, opts.HTTPClient, "remove runner "+cfg.Settings.AgentName, cfg.Settings.ServerURL+PathRemove, "", in, nil, http.StatusNoContent); err != nil {
		return err
	}
	for _, f := range []string{FileRunner, FileCredentials, FileRSAParams} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", f, err)
		}
	}
	opts.Logger.Info("runner removed", zap.String("runner", cfg.Settings.AgentName))
	return nil
}

// Run is the runner process: it opens the session, goes online and runs the
// jobs the simulator assigns until ctx ends (SIGTERM: the session closes and
// the runner goes offline) or the simulator says the runner is removed (an
// ephemeral runner after its job). Both return nil. A refused or lost
// session that cannot be reopened within Options.ReconnectFor is an error.
func Run(ctx context.Context, cfg Config, opts Options) error {
	opts = opts.withDefaults()
	r := &runner{cfg: cfg, opts: opts, log: opts.Logger.With(zap.String("runner", cfg.Settings.AgentName), zap.Int64("runner_id", cfg.Settings.AgentID))}
	return r.run(ctx)
}

type runner struct {
	cfg      Config
	opts     Options
	log      *zap.Logger
	jobsDone int
}

func (r *runner) run(ctx context.Context) error {
	first := true
	var troubleSince time.Time
	backoff := 100 * time.Millisecond
	for {
		opened, exit, err := r.session(ctx, first)
		switch {
		case ctx.Err() != nil:
			r.log.Info("runner stopping: signal received")
			return nil
		case exit:
			return nil
		case permanent(err):
			return err
		case r.jobsDone > 0 && r.cfg.Settings.Ephemeral:
			return nil // an ephemeral runner that did its job and lost the exit message
		}
		if opened || troubleSince.IsZero() {
			troubleSince, backoff = time.Now(), 100*time.Millisecond
		}
		if time.Since(troubleSince) > r.opts.ReconnectFor {
			return fmt.Errorf("runner %s: no session for %s: %w", r.cfg.Settings.AgentName, r.opts.ReconnectFor, err)
		}
		r.log.Warn("no session; reconnecting", zap.Error(err))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
		first = false
	}
}

// permanent reports whether retrying cannot help: the credential is refused
// (a JIT config is spent) or the runner is gone.
func permanent(err error) bool {
	var se *statusError
	return errors.As(err, &se) && (se.status == http.StatusUnauthorized || se.status == http.StatusNotFound || se.status == http.StatusBadRequest)
}

// session opens one session and serves it. opened is true once the
// simulator accepted it; exit is true when the simulator said to leave.
func (r *runner) session(ctx context.Context, first bool) (opened, exit bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel() // closes the connection: the simulator marks the runner offline
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, withSlash(r.cfg.Settings.ServerURL)+PathSession, nil)
	if err != nil {
		return false, false, err
	}
	req.Header.Set("Authorization", "Bearer "+r.cfg.Token.Reveal())
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := r.opts.HTTPClient.Do(req)
	if err != nil {
		return false, false, fmt.Errorf("open session: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, false, readError("open session", resp)
	}
	if first {
		r.log.Info("connected to the simulator; listening for jobs", zap.String("server", r.cfg.Settings.ServerURL))
	} else {
		r.log.Info("session reopened; listening for jobs")
	}

	msgs := make(chan Message)
	readErr := make(chan error, 1)
	go func() {
		defer close(msgs)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var m Message
			if len(bytes.TrimSpace(sc.Bytes())) == 0 {
				continue
			}
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				readErr <- fmt.Errorf("session stream: %w", err)
				return
			}
			select {
			case msgs <- m:
			case <-sctx.Done():
				return
			}
		}
		readErr <- sc.Err()
	}()

	var (
		job   *Job
		timer *time.Timer
		due   <-chan time.Time
	)
	stopJob := func() {
		if timer != nil {
			timer.Stop()
		}
		job, timer, due = nil, nil, nil
	}
	defer stopJob()
	for {
		select {
		case <-ctx.Done():
			if job != nil {
				r.log.Warn("runner stopping while running a job: the job is lost", zap.Int64("job_id", job.ID))
			}
			return true, false, nil
		case m, ok := <-msgs:
			if !ok {
				err := <-readErr
				if err == nil {
					err = errSessionEndedEarly
				}
				return true, false, err
			}
			switch m.Type {
			case MsgJob:
				if m.Job == nil {
					continue
				}
				if job != nil {
					r.log.Warn("assigned a job while running another; ignoring it", zap.Int64("job_id", m.Job.ID))
					continue
				}
				job = m.Job
				timer = time.NewTimer(time.Duration(job.DurationMS) * time.Millisecond)
				due = timer.C
				r.log.Info("running job", zap.Int64("job_id", job.ID), zap.String("job", job.Name),
					zap.String("repo", job.Repo), zap.Duration("duration", time.Duration(job.DurationMS)*time.Millisecond))
			case MsgCancel:
				if job != nil && job.ID == m.JobID {
					r.log.Info("job cancelled", zap.Int64("job_id", job.ID))
					stopJob()
				}
			case MsgExit:
				r.log.Info("runner removed by the simulator; exiting", zap.String("reason", m.Reason))
				return true, true, nil
			}
		case <-due:
			done := job
			stopJob()
			if err := r.complete(ctx, done); err != nil {
				if ctx.Err() != nil {
					return true, false, nil
				}
				r.log.Error("could not report the job complete", zap.Int64("job_id", done.ID), zap.Error(err))
				continue
			}
			r.jobsDone++
			r.log.Info("job completed", zap.Int64("job_id", done.ID), zap.String("job", done.Name), zap.String("result", "Succeeded"))
		}
	}
}

// complete reports a finished job, retrying transient failures briefly.
func (r *runner) complete(ctx context.Context, j *Job) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = postJSON(ctx, r.opts.HTTPClient, fmt.Sprintf("complete job %d", j.ID),
			withSlash(r.cfg.Settings.ServerURL)+CompletePath(j.ID), r.cfg.Token, struct{}{}, nil, http.StatusNoContent)
		var se *statusError
		if err == nil || errors.As(err, &se) && se.status < 500 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
	return err
}

// HostOS is this machine's OS in the runner package's names (linux, osx, win).
func HostOS() string {
	switch runtime.GOOS {
	case "darwin":
		return "osx"
	case "windows":
		return "win"
	}
	return "linux"
}

// HostArch is this machine's architecture in the runner package's names.
func HostArch() string {
	switch runtime.GOARCH {
	case "arm64":
		return "arm64"
	case "arm":
		return "arm"
	}
	return "x64"
}
