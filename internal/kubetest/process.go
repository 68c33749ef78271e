package kubetest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// stopTimeout is how long a child gets to exit on SIGTERM before SIGKILL. The
// apiserver normally exits well within a second; the bound only matters when
// something hangs, and then the test should still finish.
const stopTimeout = 10 * time.Second

// pollInterval is the step of every readiness and permission poll.
const pollInterval = 50 * time.Millisecond

// process is one child (etcd or kube-apiserver). Its stdout and stderr go
// straight to a log file (an *os.File, so os/exec starts no copying
// goroutine), and a single goroutine waits for it, so the process is always
// reaped and that goroutine ends when the process does.
type process struct {
	name     string
	cmd      *exec.Cmd
	logPath  string
	logStart int64 // size of the log when this process started: its own output begins here

	done chan struct{} // closed once Wait has returned; err is set before
	err  error
}

// startProcess starts bin with args, appending its output to logPath.
func startProcess(name, bin string, args, env []string, logPath string) (*process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	// The child gets its own copy of the descriptor; ours is not needed
	// once it has started.
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, logStart: fi.Size(), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended (and been reaped).
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process the way an operator would (SIGTERM, so the
// apiserver closes its watches and etcd its WAL cleanly), falls back to
// SIGKILL after stopTimeout, and returns only once the process is reaped.
// It reports whether SIGKILL was needed.
func (p *process) stop() (killed bool) {
	if p.exited() {
		return false
	}
	// An error here means the process has just exited by itself; the
	// wait below still applies.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return false
	case <-timer.C:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return true
}

// portClash reports whether the process exited because one of its ports
// was taken between freePorts closing its listener and the process binding
// it: the only start-up failure worth retrying.
func (p *process) portClash() bool {
	if !p.exited() {
		return false
	}
	b, err := os.ReadFile(p.logPath)
	if err != nil || int64(len(b)) < p.logStart {
		return false
	}
	return strings.Contains(string(b[p.logStart:]), "address already in use")
}

// waitUntil polls check every pollInterval until it reports ready, p exits
// or timeout passes. check returns a short description of what it saw, so
// that a timeout says more than "not ready".
func waitUntil(p *process, timeout time.Duration, check func() (bool, string)) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		ok, status := check()
		if ok {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%v); last check: %s", p.name, p.err, status)
		case <-timer.C:
			return fmt.Errorf("%s not ready after %v; last check: %s", p.name, timeout, status)
		case <-ticker.C:
		}
	}
}

// freePorts returns n distinct loopback ports that were free a moment ago.
// All listeners are open at once so that the ports differ; closing them
// leaves a small race with other processes, which the callers' retry covers.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// tail returns the last n lines of the file at path, or a note why it
// cannot.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "(no log)"
		}
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// envWithout returns os.Environ() without the variables whose names start
// with prefix. etcd reads every ETCD_* variable as a flag (ETCD_DATA_DIR
// would move its data, an unknown one makes it warn), so whatever the test
// environment exports must not reach it.
func envWithout(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			env = append(env, kv)
		}
	}
	return env
}
