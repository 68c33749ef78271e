package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
	"github.com/runnerscaler/runnerscaler/internal/secret"
)

// Errors.
var (
	// ErrClosed: the provisioner was closed.
	ErrClosed = errors.New("local provisioner is closed")
	// ErrMaxInstances: max_instances runner processes are alive already.
	ErrMaxInstances = errors.New("max_instances reached")
)

// Timing.
var (
	// pollInterval is how often a runner process is checked for its exit.
	pollInterval = 250 * time.Millisecond
	// killWait bounds the wait for a process group to vanish after SIGKILL.
	killWait = 10 * time.Second
)

// Environment variables the runner application reads its registration from.
const (
	envJITConfig = "ACTIONS_RUNNER_INPUT_JITCONFIG"
	envToken     = "ACTIONS_RUNNER_INPUT_TOKEN"
)

// Files in the work directory and in each instance directory.
const (
	stateFile    = "instances.json"
	instancesDir = "instances"
	logFile      = "runner.log"
)

// tokenScript runs config.sh, then run.sh, as one process group: the
// registration token reaches config.sh in ACTIONS_RUNNER_INPUT_TOKEN (never
// in argv) and is unset before run.sh starts.
const tokenScript = `./config.sh "$@" || exit $?
unset ` + envToken + `
exec ./run.sh`

// Provisioner runs GitHub Actions runners as processes on this host. It is
// safe for concurrent use; Close it to stop its goroutines (the runners keep
// running).
type Provisioner struct {
	cfg        config
	name       string
	daemonID   string
	downloads  provisioner.RunnerDownloads
	log        *zap.Logger
	now        func() time.Time
	httpClient *http.Client
	boot       string
	baseEnv    map[string]string
	unlock     func()

	ctx    context.Context // ends on Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // goroutines: watchers and installs
	ops    sync.WaitGroup // Create and Delete calls in progress

	mu      sync.Mutex
	closed  bool
	entries map[string]*entry // this daemon's instances, by id
	foreign []record          // other daemons' records, kept untouched
	app     *runnerApp
	flight  *appFlight
	gen     uint64 // bumped by every change the state file must show

	// The state file is written outside mu (see persist), so that List and
	// Get never wait for an fsync; saveMu serialises the writers. Lock
	// order: saveMu, then mu.
	saveMu    sync.Mutex
	savedGen  uint64                               // the newest generation a write made durable
	failedGen uint64                               // the generation the last failed write held
	failErr   error                                // that write's error
	writeFile func(path string, data []byte) error // writeFileAtomic; tests replace it (under saveMu)
}

var (
	_ provisioner.Provisioner = (*Provisioner)(nil)
	_ provisioner.Factory     = Factory
)

// record is one instance in the state file. It holds no secret.
type record struct {
	ID         string            `json:"id"`
	Pool       string            `json:"pool"`
	RunnerName string            `json:"runner_name"`
	DaemonID   string            `json:"daemon_id"`
	PID        int               `json:"pid"`
	StartTime  uint64            `json:"start_time"` // /proc/<pid>/stat starttime (clock ticks after boot)
	BootID     string            `json:"boot_id,omitempty"`
	Dir        string            `json:"dir"`
	CreatedAt  time.Time         `json:"created_at"`
	State      provisioner.State `json:"state"`
	LastError  string            `json:"last_error,omitempty"`
}

type stateFileBody struct {
	Version   int      `json:"version"`
	Instances []record `json:"instances"`
}

// entry is an instance in memory.
type entry struct {
	rec      record
	creating bool          // a Create is still launching it
	recorded bool          // the state file is to hold it: its process started, and no Delete removed it
	unsaved  *record       // a change being written: the state file gets it now, List once it is written
	exited   chan struct{} // closed once its process is known to have ended
	deleting chan struct{} // set while a Delete runs; closed when it ends
	secrets  []string      // the registration secret, only to redact log tails
}

func (e *entry) instance() provisioner.Instance {
	return provisioner.Instance{
		ID: e.rec.ID, Pool: e.rec.Pool, RunnerName: e.rec.RunnerName, State: e.rec.State,
		CreatedAt: e.rec.CreatedAt, LastError: e.rec.LastError,
	}
}

func (e *entry) hasExited() bool {
	select {
	case <-e.exited:
		return true
	default:
		return false
	}
}

// Factory builds a local provisioner; register it as type "local".
func Factory(settings map[string]any, env provisioner.Env) (provisioner.Provisioner, error) {
	p, err := New(settings, env)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// New builds a local provisioner from its settings, and adopts the runners
// an earlier provisioner on the same work_dir left running.
func New(settings map[string]any, env provisioner.Env) (*Provisioner, error) {
	cfg, err := parseSettings(settings, env)
	if err != nil {
		return nil, err
	}
	if supported != nil {
		return nil, fmt.Errorf("provisioner %s: %w", env.Name, supported)
	}
	if env.DaemonID == "" {
		return nil, fmt.Errorf("provisioner %s: no daemon id to mark instances with", env.Name)
	}
	if env.Downloads == nil {
		return nil, fmt.Errorf("provisioner %s: no runner downloads source (the daemon's GitHub client)", env.Name)
	}
	log := env.Logger
	if log == nil {
		log = zap.NewNop()
	}
	now := env.Clock
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(filepath.Join(cfg.workDir, instancesDir), 0o755); err != nil {
		return nil, fmt.Errorf("provisioner %s: work_dir: %w", env.Name, err)
	}
	unlock, err := lockWorkDir(cfg.workDir)
	if err != nil {
		return nil, fmt.Errorf("provisioner %s: %w", env.Name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Provisioner{
		cfg:        cfg,
		name:       env.Name,
		daemonID:   env.DaemonID,
		downloads:  env.Downloads,
		log:        log.With(zap.String("provisioner", env.Name)),
		now:        now,
		httpClient: &http.Client{},
		boot:       bootID(),
		unlock:     unlock,
		ctx:        ctx,
		cancel:     cancel,
		entries:    map[string]*entry{},
		writeFile:  writeFileAtomic,
	}
	p.baseEnv = p.buildBaseEnv()
	if err := p.recover(); err != nil {
		cancel()
		p.wg.Wait()
		unlock()
		return nil, fmt.Errorf("provisioner %s: %w", env.Name, err)
	}
	return p, nil
}

// buildBaseEnv is every runner's environment: PATH, HOME and LANG from the
// daemon (HOME from run_as_user's account), then extra_env.
func (p *Provisioner) buildBaseEnv() map[string]string {
	env := map[string]string{"PATH": os.Getenv("PATH")}
	if env["PATH"] == "" {
		env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	if h := os.Getenv("HOME"); h != "" {
		env["HOME"] = h
	}
	if p.cfg.runAs != nil && p.cfg.runAs.home != "" {
		env["HOME"] = p.cfg.runAs.home
	}
	if l := os.Getenv("LANG"); l != "" {
		env["LANG"] = l
	}
	for k, v := range p.cfg.extraEnv {
		env[k] = v
	}
	return env
}

// environ is the runner's environment as a sorted list, plus extra.
func (p *Provisioner) environ(dir string, extra ...string) []string {
	out := make([]string, 0, len(p.baseEnv)+len(extra)+1)
	for k, v := range p.baseEnv {
		out = append(out, k+"="+v)
	}
	if _, ok := p.baseEnv["HOME"]; !ok {
		out = append(out, "HOME="+dir)
	}
	sort.Strings(out)
	return append(out, extra...)
}

// recover loads the state file, adopts this daemon's live runners, cleans
// up after the dead ones and removes directories nothing refers to.
func (p *Provisioner) recover() error {
	recs, err := p.loadState()
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, r := range recs {
		if r.DaemonID != p.daemonID {
			p.foreign = append(p.foreign, r)
			keep[filepath.Base(r.Dir)] = true
			continue
		}
		if p.alive(r) {
			e := &entry{rec: r, recorded: true, exited: make(chan struct{})}
			e.rec.State = provisioner.StateRunning
			p.entries[r.ID] = e
			keep[filepath.Base(r.Dir)] = true
			p.log.Info("runner adopted", zap.String("instance", r.ID), zap.String("runner", r.RunnerName),
				zap.String("pool", r.Pool), zap.Int("pid", r.PID))
			continue
		}
		p.cleanDead(r)
	}
	p.removeStrayDirs(keep)
	// The file drops the records of the dead runners cleaned up above; and a
	// work_dir whose state file cannot be written fails New, not a Create.
	p.mu.Lock()
	need := p.changedLocked()
	p.mu.Unlock()
	if err := p.persist(need); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.entries {
		p.wg.Add(1)
		go p.watch(e)
	}
	return nil
}

// alive reports whether a recorded runner process still runs: same boot,
// same pid, same start time.
func (p *Provisioner) alive(r record) bool {
	if r.PID <= 0 || r.State == provisioner.StateStopped || r.State == provisioner.StateFailed {
		return false
	}
	if r.BootID != "" && p.boot != "" && r.BootID != p.boot {
		return false
	}
	return processAlive(r.PID, r.StartTime)
}

// cleanDead removes what a runner that ended while nobody watched left
// behind: processes still in its group, and its directory.
func (p *Provisioner) cleanDead(r record) {
	sameBoot := r.BootID == "" || p.boot == "" || r.BootID == p.boot
	if r.PID > 1 && sameBoot {
		// The group outlived its leader only if the pid was not reused: a
		// process group's id cannot be given to a new process while the
		// group has members.
		if exists, _ := processExists(r.PID); !exists && groupAlive(r.PID) {
			p.log.Warn("killing processes left by a runner that ended", zap.String("instance", r.ID), zap.Int("pgid", r.PID))
			_ = signalGroup(r.PID, syscall.SIGKILL)
		}
	}
	if err := p.removeDir(r.Dir); err != nil {
		p.log.Warn("cannot remove the directory of an ended runner", zap.String("instance", r.ID), zap.Error(err))
	}
	p.log.Info("ended runner cleaned up", zap.String("instance", r.ID), zap.String("runner", r.RunnerName), zap.String("pool", r.Pool))
}

// removeStrayDirs removes instance directories no record refers to (left
// by a Create that was interrupted before it recorded the instance).
func (p *Provisioner) removeStrayDirs(keep map[string]bool) {
	entries, err := os.ReadDir(filepath.Join(p.cfg.workDir, instancesDir))
	if err != nil {
		return
	}
	for _, d := range entries {
		if keep[d.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(p.cfg.workDir, instancesDir, d.Name())); err != nil {
			p.log.Warn("cannot remove a stray instance directory", zap.String("dir", d.Name()), zap.Error(err))
		}
	}
}

// removeDir removes an instance directory, refusing anything outside
// work_dir/instances (the state file could have been edited).
func (p *Provisioner) removeDir(dir string) error {
	base := filepath.Join(p.cfg.workDir, instancesDir)
	if dir == "" || filepath.Dir(filepath.Clean(dir)) != base {
		return fmt.Errorf("not removing %q: not an instance directory under %s", dir, base)
	}
	return os.RemoveAll(dir)
}

func (p *Provisioner) loadState() ([]record, error) {
	b, err := os.ReadFile(filepath.Join(p.cfg.workDir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
	}
	var body stateFileBody
	if err := json.Unmarshal(b, &body); err != nil {
		return nil, fmt.Errorf("state file %s: %w (move it away to start afresh; its runners are then no longer managed)",
			filepath.Join(p.cfg.workDir, stateFile), err)
	}
	return body.Instances, nil
}

// changedLocked notes a change the state file must show and returns the
// generation to pass to persist once mu is released; caller holds mu.
func (p *Provisioner) changedLocked() uint64 {
	p.gen++
	return p.gen
}

// persist returns once the state file durably shows generation need (or a
// later one), writing it if no other caller has. Call it without mu: the
// write, fsync included, happens outside mu so that List and Get never
// wait for it.
//
// Concurrent callers share writes (group commit): while one write runs the
// others queue on saveMu, and the next writer's snapshot covers every change
// made meanwhile, so a burst of Creates costs a couple of writes rather than
// one each. A failed write fails every caller whose change it held; callers
// with later changes write again.
func (p *Provisioner) persist(need uint64) error {
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	if p.savedGen >= need {
		return nil
	}
	if p.failedGen >= need {
		return p.failErr
	}
	p.mu.Lock()
	gen := p.gen
	recs := make([]record, 0, len(p.entries)+len(p.foreign))
	for _, e := range p.entries {
		switch {
		case !e.recorded:
		case e.unsaved != nil:
			recs = append(recs, *e.unsaved)
		default:
			recs = append(recs, e.rec)
		}
	}
	recs = append(recs, p.foreign...)
	p.mu.Unlock()
	sort.Slice(recs, func(i, j int) bool { return recs[i].ID < recs[j].ID })
	b, err := json.MarshalIndent(stateFileBody{Version: 1, Instances: recs}, "", "  ")
	if err == nil {
		err = p.writeFile(filepath.Join(p.cfg.workDir, stateFile), b)
	} else {
		err = fmt.Errorf("write state file: %w", err)
	}
	if err != nil {
		p.failedGen, p.failErr = gen, err
		return err
	}
	p.savedGen = gen
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write state file: %w", err)
	}
	return nil
}

// begin registers a Create or Delete call, so Close waits for it.
func (p *Provisioner) begin() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.ops.Add(1)
	return true
}

var runnerNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

type regMode int

const (
	modeJIT regMode = iota + 1
	modeToken
)

func (m regMode) String() string {
	if m == modeToken {
		return "token"
	}
	return "jit"
}

// checkSpec refuses a spec that no retry can fix.
func checkSpec(spec provisioner.Spec) (regMode, error) {
	bad := func(format string, args ...any) (regMode, error) {
		return 0, provisioner.Permanent(provisioner.NotCreated(fmt.Errorf("runner %q: "+format, append([]any{spec.RunnerName}, args...)...)))
	}
	if !runnerNameRE.MatchString(spec.RunnerName) {
		return bad("the name must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	reg := spec.Registration
	switch {
	case reg.JITConfig != "" && reg.Token != "":
		return bad("give a JIT config or a registration token, not both")
	case reg.JITConfig != "":
		return modeJIT, nil
	case reg.Token == "":
		return bad("no registration: give a JIT config or a registration token")
	}
	u, err := url.Parse(spec.ScopeURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return bad("token registration needs the scope's web URL (e.g. https://github.com/ORG), got %q", spec.ScopeURL)
	}
	for _, l := range spec.Labels {
		if l == "" || strings.ContainsAny(l, ",\x00\r\n") {
			return bad("label %q: labels must be non-empty and hold no comma", l)
		}
	}
	if strings.ContainsAny(spec.RunnerGroup, "\x00\r\n") {
		return bad("runner group %q holds a control character", spec.RunnerGroup)
	}
	return modeToken, nil
}

// specOS maps a pool's os (linux, windows, macos) to the download names.
var specOS = map[string]string{"linux": "linux", "windows": "win", "win": "win", "macos": "osx", "osx": "osx"}

// checkPlatform refuses a spec for another OS or architecture than the
// runners this provisioner starts (this host's, or the os and arch settings).
func (p *Provisioner) checkPlatform(spec provisioner.Spec) error {
	if spec.OS != "" {
		if o, ok := specOS[strings.ToLower(spec.OS)]; !ok || o != p.cfg.osName {
			return provisioner.Permanent(provisioner.NotCreated(fmt.Errorf(
				"create runner %s: the pool wants os %s, but provisioner %s runs %s runners on this host", spec.RunnerName, spec.OS, p.name, p.cfg.osName)))
		}
	}
	if spec.Arch != "" && !strings.EqualFold(spec.Arch, p.cfg.arch) {
		return provisioner.Permanent(provisioner.NotCreated(fmt.Errorf(
			"create runner %s: the pool wants arch %s, but provisioner %s runs %s runners on this host", spec.RunnerName, spec.Arch, p.name, p.cfg.arch)))
	}
	return nil
}

// Create launches a runner process for spec and returns it running.
func (p *Provisioner) Create(ctx context.Context, spec provisioner.Spec) (provisioner.Instance, error) {
	mode, err := checkSpec(spec)
	if err != nil {
		return provisioner.Instance{}, err
	}
	if err := p.checkPlatform(spec); err != nil {
		return provisioner.Instance{}, err
	}
	if !p.begin() {
		return provisioner.Instance{}, provisioner.NotCreated(ErrClosed)
	}
	defer p.ops.Done()
	id := "local-" + spec.RunnerName
	p.mu.Lock()
	if _, dup := p.entries[id]; dup {
		p.mu.Unlock()
		return provisioner.Instance{}, provisioner.Permanent(provisioner.NotCreated(
			fmt.Errorf("create runner %s: instance %s exists already", spec.RunnerName, id)))
	}
	dir := filepath.Join(p.cfg.workDir, instancesDir, spec.RunnerName)
	for _, r := range p.foreign {
		if r.Dir == dir {
			p.mu.Unlock()
			return provisioner.Instance{}, provisioner.Permanent(provisioner.NotCreated(
				fmt.Errorf("create runner %s: daemon %s has an instance of that name in this work_dir", spec.RunnerName, r.DaemonID)))
		}
	}
	if n := p.activeLocked(); n >= p.cfg.maxInstances {
		p.mu.Unlock()
		return provisioner.Instance{}, provisioner.NotCreated(fmt.Errorf(
			"create runner %s: %w (%d runner processes alive, max_instances %d)", spec.RunnerName, ErrMaxInstances, n, p.cfg.maxInstances))
	}
	e := &entry{
		rec: record{
			ID: id, Pool: spec.Pool, RunnerName: spec.RunnerName, DaemonID: p.daemonID,
			Dir: dir, CreatedAt: p.now(),
			State: provisioner.StatePending, BootID: p.boot,
		},
		creating: true,
		exited:   make(chan struct{}),
	}
	p.entries[id] = e
	p.mu.Unlock()

	inst, err := p.launch(ctx, e, spec, mode)
	if err != nil {
		p.mu.Lock()
		delete(p.entries, id)
		p.mu.Unlock()
		return provisioner.Instance{}, err
	}
	return inst, nil
}

// activeLocked counts instances holding a process (or about to).
func (p *Provisioner) activeLocked() int {
	n := 0
	for _, e := range p.entries {
		if e.rec.State == provisioner.StatePending || e.rec.State == provisioner.StateRunning {
			n++
		}
	}
	return n
}

// launch prepares the directory and starts the process. On error nothing is
// left behind.
func (p *Provisioner) launch(ctx context.Context, e *entry, spec provisioner.Spec, mode regMode) (provisioner.Instance, error) {
	fail := func(err error) (provisioner.Instance, error) {
		_ = p.removeDir(e.rec.Dir)
		if !provisioner.IsNotCreated(err) {
			err = provisioner.NotCreated(err)
		}
		return provisioner.Instance{}, err
	}
	app, err := p.runnerApplication(ctx)
	if err == nil {
		if _, serr := os.Stat(app.dir); serr != nil {
			// Removed from the cache behind our back (or pruned by another
			// provisioner sharing it): install it again.
			p.forgetApp(app)
			app, err = p.runnerApplication(ctx)
		}
	}
	if err != nil {
		return provisioner.Instance{}, fmt.Errorf("create runner %s: %w", spec.RunnerName, err)
	}
	dir := e.rec.Dir
	if err := p.removeDir(dir); err != nil { // leftovers no record refers to
		return fail(fmt.Errorf("create runner %s: %w", spec.RunnerName, err))
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fail(fmt.Errorf("create runner %s: instance directory: %w", spec.RunnerName, err))
	}
	if err := populate(app.dir, dir, p.cfg.runAs); err != nil {
		return fail(fmt.Errorf("create runner %s: fill the instance directory from %s: %w", spec.RunnerName, app.dir, err))
	}
	logPath := filepath.Join(dir, logFile)
	lf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fail(fmt.Errorf("create runner %s: log file: %w", spec.RunnerName, err))
	}
	defer lf.Close()
	if err := chown(logPath, p.cfg.runAs); err != nil {
		return fail(fmt.Errorf("create runner %s: log file: %w", spec.RunnerName, err))
	}
	fmt.Fprintf(lf, "runnerscaler: starting runner %s (%s registration, runner application %s) at %s\n",
		spec.RunnerName, mode, app.filename, p.now().UTC().Format(time.RFC3339))

	var cmd *exec.Cmd
	var sec secret.String
	switch mode {
	case modeJIT:
		sec = spec.Registration.JITConfig
		cmd = exec.Command(filepath.Join(dir, "run.sh"))
		cmd.Env = p.environ(dir, envJITConfig+"="+sec.Reveal())
	case modeToken:
		sec = spec.Registration.Token
		args := []string{"-c", tokenScript, "runnerscaler-runner",
			"--unattended", "--url", spec.ScopeURL, "--name", spec.RunnerName, "--work", "_work"}
		if len(spec.Labels) > 0 {
			args = append(args, "--labels", strings.Join(spec.Labels, ","))
		}
		if spec.RunnerGroup != "" {
			args = append(args, "--runnergroup", spec.RunnerGroup)
		}
		if spec.Registration.Ephemeral {
			args = append(args, "--ephemeral")
		}
		args = append(args, "--disableupdate")
		cmd = exec.Command("/bin/sh", args...)
		cmd.Env = p.environ(dir, envToken+"="+sec.Reveal())
	}
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = sysProcAttr(p.cfg.runAs)
	if err := ctx.Err(); err != nil {
		return fail(fmt.Errorf("create runner %s: %w", spec.RunnerName, err))
	}
	if err := cmd.Start(); err != nil {
		// exec errors name the program and its arguments, never the environment.
		return fail(fmt.Errorf("create runner %s: start %s: %w", spec.RunnerName, filepath.Base(cmd.Path), err))
	}
	pid := cmd.Process.Pid
	if p.cfg.nice > 0 {
		// The whole process group (the runner starts in its own), so
		// whatever the job runs inherits it.
		if err := setNice(pid, p.cfg.nice); err != nil {
			p.log.Warn("runner niceness not set", zap.String("runner", spec.RunnerName), zap.Int("pid", pid), zap.Error(err))
		}
	}
	_ = cmd.Process.Release() // watched by pid from now on (see watch)
	start, err := processStartTime(pid)
	if err != nil {
		_ = signalGroup(pid, syscall.SIGKILL)
		p.reapQuietly(pid)
		return fail(fmt.Errorf("create runner %s: read the start time of process %d: %w", spec.RunnerName, pid, err))
	}

	// The instance is running once the state file holds it: that record is
	// what lets a restarted daemon adopt the process. Until then List shows
	// it pending and Delete refuses it (creating).
	rec := e.rec
	rec.PID, rec.StartTime, rec.State = pid, start, provisioner.StateRunning
	p.mu.Lock()
	e.recorded, e.unsaved = true, &rec
	need := p.changedLocked()
	p.mu.Unlock()
	if err := p.persist(need); err != nil {
		// Another writer may yet put the record in the file before Create
		// drops the entry; harmless: a restart finds the process dead and
		// cleans up after it, and the next write drops the record.
		p.mu.Lock()
		e.recorded, e.unsaved = false, nil
		p.mu.Unlock()
		_ = signalGroup(pid, syscall.SIGKILL)
		p.reapQuietly(pid)
		return fail(fmt.Errorf("create runner %s: %w", spec.RunnerName, err))
	}
	p.mu.Lock()
	e.rec, e.unsaved = rec, nil
	e.creating = false
	e.secrets = []string{sec.Reveal()}
	if !p.closed {
		p.wg.Add(1)
		go p.watch(e)
	}
	inst := e.instance()
	p.mu.Unlock()
	p.log.Info("runner started", zap.String("instance", e.rec.ID), zap.String("runner", spec.RunnerName),
		zap.String("pool", spec.Pool), zap.Int("pid", pid), zap.Stringer("registration", mode), zap.String("dir", dir))
	return inst, nil
}

// reapQuietly waits (briefly) for a child killed during a failed Create.
func (p *Provisioner) reapQuietly(pid int) {
	deadline := time.Now().Add(killWait)
	for time.Now().Before(deadline) {
		if st, _, err := reap(pid); err != nil || st != reapRunning {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// watch follows one runner process until it ends or the provisioner closes.
func (p *Provisioner) watch(e *entry) {
	defer p.wg.Done()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	pid, start := e.rec.PID, e.rec.StartTime
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		if exists, st := processExists(pid); exists && start != 0 && st != start {
			p.recordExit(e, false, 0, "")
			return
		}
		status, ws, err := reap(pid)
		switch {
		case err != nil:
			p.log.Warn("cannot check a runner process", zap.String("instance", e.rec.ID), zap.Int("pid", pid), zap.Error(err))
		case status == reapExited:
			code, msg := describeExit(ws)
			p.recordExit(e, true, code, msg)
			return
		case status == reapNotChild && !processAlive(pid, start):
			p.recordExit(e, false, 0, "")
			return
		}
	}
}

// recordExit records the end of a runner process: stopped after exit status 0
// (or an unknown status, for a process adopted after a restart), failed
// otherwise with the end of its log.
func (p *Provisioner) recordExit(e *entry, known bool, code int, msg string) {
	p.mu.Lock()
	rec := e.rec
	fields := []zap.Field{zap.String("instance", rec.ID), zap.String("runner", rec.RunnerName), zap.String("pool", rec.Pool)}
	switch {
	case !known:
		rec.State = provisioner.StateStopped
		p.log.Info("runner process ended (adopted after a restart: exit status unknown)", fields...)
	case code == 0:
		rec.State = provisioner.StateStopped
		p.log.Info("runner process exited", append(fields, zap.Int("exit_code", 0))...)
	default:
		rec.State = provisioner.StateFailed
		rec.LastError = msg
		if tail := logTail(filepath.Join(rec.Dir, logFile), e.secrets); tail != "" {
			rec.LastError += ": " + tail
		}
		p.log.Warn("runner process failed", append(fields, zap.String("error", rec.LastError))...)
	}
	e.secrets = nil
	close(e.exited)
	if !e.recorded { // being deleted, or deleted (and its name reused) meanwhile
		e.rec.State, e.rec.LastError = rec.State, rec.LastError
		p.mu.Unlock()
		return
	}
	// List shows the end once the state file does, as when the file was
	// written under mu.
	e.unsaved = &rec
	need := p.changedLocked()
	p.mu.Unlock()
	err := p.persist(need)
	p.mu.Lock()
	// Only State and LastError: Delete reads the rest without mu.
	e.rec.State, e.rec.LastError = rec.State, rec.LastError
	e.unsaved = nil
	p.mu.Unlock()
	if err != nil {
		p.log.Error("cannot record a runner's end", append(fields, zap.Error(err))...)
	}
}

// logTail returns the last lines of a runner's log, secrets redacted.
func logTail(path string, secrets []string) string {
	const maxBytes, maxLines, maxLen = 8 << 10, 5, 1000
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-maxBytes, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return ""
	}
	text := string(buf)
	for _, s := range secrets {
		if s != "" {
			text = strings.ReplaceAll(text, s, secret.Redacted)
		}
	}
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	out := strings.Join(lines, " | ")
	if len(out) > maxLen {
		out = "..." + out[len(out)-maxLen:]
	}
	return out
}

// Delete stops the runner's whole process group (SIGTERM, then SIGKILL
// after grace_period) and removes its directory. Deleting an instance that
// does not exist returns nil.
func (p *Provisioner) Delete(ctx context.Context, id string) error {
	if !p.begin() {
		return ErrClosed
	}
	defer p.ops.Done()
	var e *entry
	for {
		p.mu.Lock()
		e = p.entries[id]
		switch {
		case e == nil:
			p.mu.Unlock()
			return nil
		case e.creating:
			p.mu.Unlock()
			return fmt.Errorf("delete instance %s: it is still being created; delete it once Create returns", id)
		case e.deleting != nil:
			ch := e.deleting
			p.mu.Unlock()
			select {
			case <-ch:
				continue // look again: gone, or the other Delete failed
			case <-ctx.Done():
				return fmt.Errorf("delete instance %s: %w", id, ctx.Err())
			}
		}
		e.deleting = make(chan struct{})
		p.mu.Unlock()
		break
	}
	err := p.terminate(ctx, e)
	if err == nil {
		if rerr := p.removeDir(e.rec.Dir); rerr != nil {
			err = fmt.Errorf("delete instance %s: remove its directory: %w", id, rerr)
		}
	}
	removed := err == nil
	if removed {
		// The entry stays (deleting) until the state file no longer holds
		// it, so that a concurrent Delete of the same instance returns only
		// then, as this one does.
		p.mu.Lock()
		e.recorded = false
		need := p.changedLocked()
		p.mu.Unlock()
		if serr := p.persist(need); serr != nil {
			err = fmt.Errorf("delete instance %s: %w", id, serr)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if removed {
		delete(p.entries, id)
		p.log.Info("runner deleted", zap.String("instance", id), zap.String("runner", e.rec.RunnerName), zap.String("pool", e.rec.Pool))
	}
	close(e.deleting)
	e.deleting = nil
	return err
}

// terminate ends every process in the instance's group.
func (p *Provisioner) terminate(ctx context.Context, e *entry) error {
	pid, start := e.rec.PID, e.rec.StartTime
	if pid <= 1 {
		return nil
	}
	if exists, st := processExists(pid); exists && start != 0 && st != start {
		// The pid was reused, so the group was empty when it was (a group's
		// id is not given out while the group has members).
		return nil
	}
	if e.hasExited() && !groupAlive(pid) {
		return nil
	}
	fields := []zap.Field{zap.String("instance", e.rec.ID), zap.String("runner", e.rec.RunnerName), zap.String("pool", e.rec.Pool), zap.Int("pgid", pid)}
	if err := signalGroup(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("delete instance %s: SIGTERM process group %d: %w", e.rec.ID, pid, err)
	}
	p.log.Info("runner stopping", append(fields, zap.Duration("grace_period", p.cfg.grace))...)
	gone, err := p.waitGone(ctx, e, p.cfg.grace)
	if gone || err != nil {
		return err
	}
	p.log.Warn("runner still alive after the grace period; killing it", fields...)
	if err := signalGroup(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("delete instance %s: SIGKILL process group %d: %w", e.rec.ID, pid, err)
	}
	gone, err = p.waitGone(ctx, e, killWait)
	if err != nil {
		return err
	}
	if !gone {
		return fmt.Errorf("delete instance %s: process group %d is still alive %s after SIGKILL", e.rec.ID, pid, killWait)
	}
	return nil
}

// waitGone waits up to d for the instance's process to have ended (and been
// seen to, by its watcher) and its group to be empty.
func (p *Provisioner) waitGone(ctx context.Context, e *entry, d time.Duration) (bool, error) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if e.hasExited() && !groupAlive(e.rec.PID) {
			return true, nil
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("delete instance %s: %w", e.rec.ID, ctx.Err())
		case <-p.ctx.Done():
			return false, fmt.Errorf("delete instance %s: %w", e.rec.ID, ErrClosed)
		case <-deadline.C:
			return false, nil
		case <-tick.C:
		}
	}
}

// List returns this daemon's instances.
func (p *Provisioner) List(ctx context.Context) ([]provisioner.Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	out := make([]provisioner.Instance, 0, len(p.entries))
	for _, e := range p.entries {
		out = append(out, e.instance())
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Get returns one of this daemon's instances, or provisioner.ErrNotFound.
func (p *Provisioner) Get(ctx context.Context, id string) (provisioner.Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return provisioner.Instance{}, ErrClosed
	}
	e, ok := p.entries[id]
	if !ok {
		return provisioner.Instance{}, fmt.Errorf("instance %s: %w", id, provisioner.ErrNotFound)
	}
	return e.instance(), nil
}

// Close stops the provisioner's goroutines and releases its work_dir. It
// does not stop the runners: they outlive a daemon restart, and the next
// provisioner on the same work_dir adopts them. Create and Delete calls in
// progress end first (a Delete waiting out a grace period gives up).
func (p *Provisioner) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.ops.Wait()
	p.wg.Wait()
	p.unlock()
	return nil
}
