package external

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Output limits. Standard output is the protocol's answer and is refused when
// larger than maxStdout; standard error is diagnostics, of which the last
// stderrKeep bytes are kept.
const (
	maxStdout     = 8 << 20
	stderrKeep    = 16 << 10
	stderrInError = 1024 // bytes of stderr quoted in an error
	stdoutInError = 256  // bytes of stdout quoted when it cannot be decoded
	waitDelay     = 3 * time.Second
	defaultPATH   = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	garmInterface = "v0.1.0"
	envPrefixOurs = "RUNNERSCALER_"
	envPrefixGARM = "GARM_"
)

// ErrTimeout marks a plugin call that overran its timeout; the plugin's whole
// process group was killed.
var ErrTimeout = errors.New("plugin timed out")

// ExitError is a plugin that exited with a non-zero status (other than "not
// found", which callers turn into provisioner.ErrNotFound or success).
type ExitError struct {
	Command string // the protocol command, e.g. CreateInstance
	Code    int    // exit status; -1 when killed by a signal
	State   string // how it ended, e.g. "exit status 1" or "signal: killed"
	Stderr  string // bounded, sanitized excerpt with secrets scrubbed
}

func (e *ExitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: plugin failed (%s)", e.Command, e.State)
	if e.Code == exitCodeDuplicate {
		b.WriteString(" (31: the instance already exists)")
	}
	if e.Stderr != "" {
		fmt.Fprintf(&b, ": stderr: %s", e.Stderr)
	} else {
		b.WriteString(" with nothing on stderr")
	}
	return b.String()
}

// notStarted is a call whose plugin never ran.
type notStarted struct{ err error }

func (e notStarted) Error() string { return e.err.Error() }
func (e notStarted) Unwrap() error { return e.err }

// call is one plugin invocation.
type call struct {
	command  string
	pool     string // RUNNERSCALER_POOL / GARM_POOL_ID, when set
	instance string // RUNNERSCALER_INSTANCE_ID / GARM_INSTANCE_ID, when set
	stdin    []byte // nil: standard input is /dev/null
	timeout  time.Duration
	secrets  []string // values to scrub from anything we report
}

// run executes the plugin once. A zero exit returns its standard output. A
// non-zero exit returns *ExitError; an overrun returns an error wrapping
// ErrTimeout after the plugin's process group has been killed.
func (p *Provisioner) run(ctx context.Context, c call) ([]byte, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout, ErrTimeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, p.command, p.args...)
	cmd.Env = p.environ(c)
	if c.stdin != nil {
		cmd.Stdin = bytes.NewReader(c.stdin)
	}
	stdout := &headBuffer{max: maxStdout}
	stderr := &tailBuffer{max: stderrKeep}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = waitDelay
	ownProcessGroup(cmd)

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, notStarted{fmt.Errorf("%s: start plugin %s: %w", c.command, p.command, err)}
	}
	if p.onStart != nil {
		p.onStart(cmd.Process.Pid)
	}
	err := cmd.Wait()
	elapsed := time.Since(start)
	errText := excerpt(stderr.Bytes(), c.secrets, stderrInError, true)
	log := p.logger.With(zap.String("command", c.command), zap.Duration("duration", elapsed))
	if c.instance != "" {
		log = log.With(zap.String("instance", c.instance))
	}

	if err != nil && ctx.Err() != nil {
		log.Warn("plugin killed", zap.Error(context.Cause(ctx)), zap.String("stderr", errText))
		if errors.Is(context.Cause(ctx), ErrTimeout) {
			return nil, fmt.Errorf("%s: %w after %s; its process group was killed%s", c.command, ErrTimeout, c.timeout, stderrSuffix(errText))
		}
		return nil, fmt.Errorf("%s: plugin stopped, its process group killed: %w%s", c.command, context.Cause(ctx), stderrSuffix(errText))
	}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		log.Debug("plugin failed", zap.Int("exit_code", exitErr.ExitCode()), zap.String("stderr", errText))
		return nil, &ExitError{Command: c.command, Code: exitErr.ExitCode(), State: exitErr.String(), Stderr: errText}
	case errors.Is(err, exec.ErrWaitDelay):
		// It exited successfully, but something it started still holds its
		// output open. We have the answer; the straggler is the plugin's.
		log.Warn("plugin exited but left a process holding its stdout or stderr open; not waiting for it")
	case err != nil:
		return nil, fmt.Errorf("%s: run plugin %s: %w", c.command, p.command, err)
	}
	if stdout.overflow {
		return nil, fmt.Errorf("%s: plugin printed more than %d bytes on stdout", c.command, maxStdout)
	}
	log.Debug("plugin succeeded", zap.String("stderr", errText))
	return stdout.Bytes(), nil
}

// stdoutSuffix quotes the start of output we could not decode.
func stdoutSuffix(out []byte, secrets []string) string {
	if s := excerpt(out, secrets, stdoutInError, false); s != "" {
		return "; stdout: " + s
	}
	return ""
}

func stderrSuffix(s string) string {
	if s == "" {
		return ""
	}
	return "; stderr: " + s
}

// environ is the plugin's whole environment: PATH, the allow-listed variables
// of the daemon, extra_env, then the protocol's own variables. Nothing else of
// the daemon's environment is passed, and no secret ever is.
func (p *Provisioner) environ(c call) []string {
	env := map[string]string{"PATH": defaultPATH}
	if v, ok := os.LookupEnv("PATH"); ok {
		env["PATH"] = v
	}
	for _, name := range p.passEnv {
		if v, ok := os.LookupEnv(name); ok {
			env[name] = v
		}
	}
	for name, v := range p.extraEnv {
		env[name] = v
	}
	set := func(name, v string) {
		if v != "" {
			env[name] = v
		}
	}
	set("RUNNERSCALER_PROTOCOL", fmt.Sprint(ProtocolVersion))
	set("RUNNERSCALER_COMMAND", c.command)
	set("RUNNERSCALER_DAEMON_ID", p.daemonID)
	set("RUNNERSCALER_PROVISIONER", p.name)
	set("RUNNERSCALER_CONFIG_FILE", p.configFile)
	set("RUNNERSCALER_POOL", c.pool)
	set("RUNNERSCALER_INSTANCE_ID", c.instance)
	set("GARM_INTERFACE_VERSION", garmInterface)
	set("GARM_COMMAND", c.command)
	set("GARM_CONTROLLER_ID", p.daemonID)
	set("GARM_PROVIDER_CONFIG_FILE", p.configFile)
	set("GARM_POOL_ID", c.pool)
	set("GARM_INSTANCE_ID", c.instance)

	out := make([]string, 0, len(env))
	for name, v := range env {
		out = append(out, name+"="+v)
	}
	sort.Strings(out)
	return out
}

// headBuffer keeps the first max bytes written and notes whether more came.
// It never fails a write, so a chatty plugin is not blocked on a full pipe.
type headBuffer struct {
	max      int
	buf      []byte
	overflow bool
}

func (b *headBuffer) Write(p []byte) (int, error) {
	room := b.max - len(b.buf)
	if len(p) > room {
		b.overflow = true
		b.buf = append(b.buf, p[:max(room, 0)]...)
	} else {
		b.buf = append(b.buf, p...)
	}
	return len(p), nil
}

func (b *headBuffer) Bytes() []byte { return b.buf }

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= b.max {
		b.buf = append(b.buf[:0], p[len(p)-b.max:]...)
		return n, nil
	}
	if over := len(b.buf) + len(p) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	b.buf = append(b.buf, p...)
	return n, nil
}

func (b *tailBuffer) Bytes() []byte { return b.buf }
