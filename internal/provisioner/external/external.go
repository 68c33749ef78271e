// Package external makes any executable a provisioner. Each operation runs the
// executable (the plugin) once: the command is named in RUNNERSCALER_COMMAND,
// the runner to create arrives as JSON on standard input, the instance comes
// back as JSON on standard output, a non-zero exit is an error carrying
// standard error, and exit status 30 means "not found". The plugin sees only
// PATH, an allow-list of the daemon's environment variables, literal extra
// variables, and the protocol's own. The protocol is documented in
// docs/provisioner-protocol.md; it borrows GARM's external provider
// conventions where that costs little.
package external

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
)

// Kind is the provisioners.<name>.type this package registers as.
const Kind = "external"

// Default per-call timeouts.
const (
	DefaultCreateTimeout = 60 * time.Second
	DefaultDeleteTimeout = 60 * time.Second
	DefaultGetTimeout    = 30 * time.Second
	DefaultListTimeout   = 30 * time.Second
)

// Settings are provisioners.<name>.settings for type external.
type Settings struct {
	// Command is the plugin: an executable file, absolute or relative to the
	// daemon's working directory. Required.
	Command string `json:"command"`
	// Args are passed to every call. They are visible to every user of the
	// host (ps), so nothing secret belongs here.
	Args []string `json:"args"`
	// ConfigFile is passed to the plugin as RUNNERSCALER_CONFIG_FILE (and
	// GARM_PROVIDER_CONFIG_FILE); the daemon does not read it. Optional.
	ConfigFile string `json:"config_file"`
	// Timeout bounds every call (a Go duration, e.g. "45s"). When unset:
	// 60s for create and delete, 30s for get and list.
	Timeout string `json:"timeout"`
	// CreateTimeout bounds CreateInstance, overriding Timeout.
	CreateTimeout string `json:"create_timeout"`
	// Env lists names of the daemon's environment variables to pass through
	// (those set in the daemon's environment; the others are skipped).
	Env []string `json:"env"`
	// ExtraEnv are literal variables for the plugin. They appear in
	// configuration dumps: pass credentials through Env or ConfigFile.
	ExtraEnv map[string]string `json:"extra_env"`
	// AcceptUntagged accepts instances the plugin reports without a
	// daemon_id, trusting the plugin to have filtered by
	// RUNNERSCALER_DAEMON_ID (or GARM_CONTROLLER_ID). GARM providers need
	// it: they do not report the controller id. Default false: an instance
	// without our daemon_id is not ours.
	AcceptUntagged bool `json:"accept_untagged"`
}

// Provisioner runs a plugin executable for every operation. It keeps no state
// of its own and is safe for concurrent use.
type Provisioner struct {
	name           string
	daemonID       string
	command        string
	args           []string
	configFile     string
	passEnv        []string
	extraEnv       map[string]string
	acceptUntagged bool
	createTimeout  time.Duration
	deleteTimeout  time.Duration
	getTimeout     time.Duration
	listTimeout    time.Duration
	logger         *zap.Logger

	onStart func(pid int) // test hook: called with the plugin's pid after it starts
}

var _ provisioner.Provisioner = (*Provisioner)(nil)

// Factory builds an external provisioner; register it as Kind.
var Factory provisioner.Factory = func(settings map[string]any, env provisioner.Env) (provisioner.Provisioner, error) {
	return New(settings, env)
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// New validates settings and builds the provisioner. Every problem is
// reported, each with its key path, as a *provisioner.SettingsError.
func New(settings map[string]any, env provisioner.Env) (*Provisioner, error) {
	probs := provisioner.NewProblems(env.Name)
	var s Settings
	if !provisioner.DecodeSettings(settings, &s, probs) {
		return nil, probs.Err()
	}
	p := &Provisioner{
		name:           env.Name,
		daemonID:       env.DaemonID,
		args:           slices.Clone(s.Args),
		acceptUntagged: s.AcceptUntagged,
		createTimeout:  DefaultCreateTimeout,
		deleteTimeout:  DefaultDeleteTimeout,
		getTimeout:     DefaultGetTimeout,
		listTimeout:    DefaultListTimeout,
		logger:         env.Logger,
	}
	if p.logger == nil {
		p.logger = zap.NewNop()
	}
	p.logger = p.logger.With(zap.String("provisioner", env.Name))
	if env.DaemonID == "" {
		probs.Add("", "the daemon id is empty; instances could not be told apart from another daemon's")
	}

	switch {
	case s.Command == "":
		probs.Add("command", "is required: the path of the plugin executable")
	default:
		p.command = checkFile(probs, "command", s.Command, true)
	}
	if s.ConfigFile != "" {
		p.configFile = checkFile(probs, "config_file", s.ConfigFile, false)
	}
	for i, a := range s.Args {
		if strings.ContainsRune(a, 0) {
			probs.Add(fmt.Sprintf("args[%d]", i), "contains a NUL byte")
		}
	}

	if s.Timeout != "" {
		if d, ok := parseTimeout(probs, "timeout", s.Timeout); ok {
			p.createTimeout, p.deleteTimeout, p.getTimeout, p.listTimeout = d, d, d, d
		}
	}
	if s.CreateTimeout != "" {
		if d, ok := parseTimeout(probs, "create_timeout", s.CreateTimeout); ok {
			p.createTimeout = d
		}
	}

	for i, name := range s.Env {
		if checkEnvName(probs, fmt.Sprintf("env[%d]", i), name) {
			p.passEnv = append(p.passEnv, name)
		}
	}
	p.extraEnv = map[string]string{}
	for _, name := range sortedKeys(s.ExtraEnv) {
		key := "extra_env." + name
		ok := checkEnvName(probs, key, name)
		if strings.ContainsRune(s.ExtraEnv[name], 0) {
			probs.Add(key, "contains a NUL byte")
			ok = false
		}
		if ok {
			p.extraEnv[name] = s.ExtraEnv[name]
		}
	}

	if err := probs.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

// checkFile resolves path and checks that it names a regular file, executable
// when exec is set. It returns the absolute path.
func checkFile(probs *provisioner.Problems, key, path string, exec bool) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		probs.Add(key, "cannot be resolved: %v", err)
		return ""
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		probs.Add(key, "%s does not exist", abs)
	case err != nil:
		probs.Add(key, "cannot be read: %v", err)
	case fi.IsDir():
		probs.Add(key, "%s is a directory, not a file", abs)
	case !fi.Mode().IsRegular():
		probs.Add(key, "%s is not a regular file", abs)
	case exec && fi.Mode().Perm()&0o111 == 0:
		probs.Add(key, "%s is not executable (chmod +x it)", abs)
	}
	return abs
}

func parseTimeout(probs *provisioner.Problems, key, v string) (time.Duration, bool) {
	d, err := time.ParseDuration(v)
	if err != nil {
		probs.Add(key, "%q is not a duration (e.g. 30s, 2m)", v)
		return 0, false
	}
	if d <= 0 {
		probs.Add(key, "must be positive, got %s", v)
		return 0, false
	}
	return d, true
}

func checkEnvName(probs *provisioner.Problems, key, name string) bool {
	switch {
	case !envName.MatchString(name):
		probs.Add(key, "%q is not an environment variable name (letters, digits and _)", name)
	case strings.HasPrefix(name, envPrefixOurs) || strings.HasPrefix(name, envPrefixGARM):
		probs.Add(key, "%q is reserved: %s* and %s* variables belong to the protocol", name, envPrefixOurs, envPrefixGARM)
	default:
		return true
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Create runs CreateInstance with the spec on standard input. When the call
// fails, or answers with something we cannot accept, the plugin is asked to
// delete what it may have made (DeleteInstance with the instance id, or the
// runner name when no id came back); if it confirms, the error is marked
// provisioner.NotCreated so the caller may retry.
func (p *Provisioner) Create(ctx context.Context, spec provisioner.Spec) (provisioner.Instance, error) {
	if err := checkSpec(spec); err != nil {
		return provisioner.Instance{}, provisioner.NotCreated(provisioner.Permanent(
			fmt.Errorf("create runner %s: %w", spec.RunnerName, err)))
	}
	reg := spec.Registration
	secrets := []string{reg.JITConfig.Reveal(), reg.Token.Reveal()}
	labels := spec.Labels
	if labels == nil {
		labels = []string{}
	}
	payload, err := json.Marshal(createRequest{
		Protocol:    ProtocolVersion,
		DaemonID:    p.daemonID,
		Provisioner: p.name,
		RunnerName:  spec.RunnerName,
		Pool:        spec.Pool,
		Labels:      labels,
		RunnerGroup: spec.RunnerGroup,
		ScopeURL:    spec.ScopeURL,
		Registration: wireRegistration{
			JITConfig: reg.JITConfig.Reveal(),
			Token:     reg.Token.Reveal(),
			Ephemeral: reg.Ephemeral || reg.JITConfig != "",
		},
		ConfigFile:      p.configFile,
		GarmName:        spec.RunnerName,
		GarmPoolID:      spec.Pool,
		GarmRepoURL:     spec.ScopeURL,
		GarmRunnerGroup: spec.RunnerGroup,
	})
	if err != nil {
		// Marshalling strings cannot fail; say nothing of the payload.
		return provisioner.Instance{}, provisioner.NotCreated(fmt.Errorf("create runner %s: encode spec: %w", spec.RunnerName, err))
	}
	out, err := p.run(ctx, call{
		command: CmdCreateInstance,
		pool:    spec.Pool,
		stdin:   payload,
		timeout: p.createTimeout,
		secrets: secrets,
	})
	clear(payload) // best effort: do not keep a plain copy of the secret around
	if ns := (notStarted{}); errors.As(err, &ns) {
		return provisioner.Instance{}, provisioner.NotCreated(fmt.Errorf("create runner %s: %w", spec.RunnerName, err))
	}
	if err != nil {
		return provisioner.Instance{}, p.createFailed(ctx, spec, "", err)
	}
	inst, err := decodeInstance(out)
	if err != nil {
		return provisioner.Instance{}, p.createFailed(ctx, spec, "",
			fmt.Errorf("%s: %w%s", CmdCreateInstance, err, stdoutSuffix(out, secrets)))
	}
	if inst.Pool == "" {
		inst.Pool = spec.Pool
	}
	if inst.RunnerName == "" {
		inst.RunnerName = spec.RunnerName
	}
	switch {
	case inst.Pool != spec.Pool:
		err = fmt.Errorf("%s: plugin reported pool %q for instance %s, want %q", CmdCreateInstance, inst.Pool, inst.ID, spec.Pool)
	case inst.RunnerName != spec.RunnerName:
		err = fmt.Errorf("%s: plugin reported runner_name %q for instance %s, want %q", CmdCreateInstance, inst.RunnerName, inst.ID, spec.RunnerName)
	default:
		err = p.checkOwner(inst)
	}
	if err != nil {
		return provisioner.Instance{}, p.createFailed(ctx, spec, inst.ID, err)
	}
	return inst.Instance, nil
}

// checkOwner refuses an instance that does not carry this daemon's id (or
// carries none, unless accept_untagged is set).
func (p *Provisioner) checkOwner(inst parsedInstance) error {
	switch {
	case inst.DaemonID == p.daemonID:
		return nil
	case inst.DaemonID == "" && p.acceptUntagged:
		return nil
	case inst.DaemonID == "":
		return fmt.Errorf("plugin reported instance %s without a daemon_id (it must echo RUNNERSCALER_DAEMON_ID; set accept_untagged for plugins that cannot)", inst.ID)
	default:
		return fmt.Errorf("plugin reported instance %s with daemon_id %q, not this daemon's %q", inst.ID, inst.DaemonID, p.daemonID)
	}
}

// createFailed asks the plugin to remove whatever a failed create may have
// left (by id when one came back, else by runner name), outside the caller's
// cancellation but within the delete timeout.
func (p *Provisioner) createFailed(ctx context.Context, spec provisioner.Spec, id string, cause error) error {
	target := id
	if target == "" {
		target = spec.RunnerName
	}
	cctx := context.WithoutCancel(ctx)
	if cerr := p.delete(cctx, target); cerr != nil {
		p.logger.Warn("cleanup after failed create failed", zap.String("runner", spec.RunnerName),
			zap.String("pool", spec.Pool), zap.String("instance", target), zap.Error(cerr))
		return fmt.Errorf("create runner %s: %w; cleanup (%s %s) also failed, something may be left behind: %w",
			spec.RunnerName, cause, CmdDeleteInstance, target, cerr)
	}
	return provisioner.NotCreated(fmt.Errorf("create runner %s: %w (cleaned up: %s %s succeeded, nothing is left behind)",
		spec.RunnerName, cause, CmdDeleteInstance, target))
}

func checkSpec(spec provisioner.Spec) error {
	reg := spec.Registration
	switch {
	case spec.RunnerName == "":
		return errors.New("spec has no runner name")
	case spec.Pool == "":
		return errors.New("spec has no pool")
	case reg.JITConfig == "" && reg.Token == "":
		return errors.New("spec has neither a JIT config nor a registration token")
	case reg.JITConfig != "" && reg.Token != "":
		return errors.New("spec has both a JIT config and a registration token")
	case reg.Token != "" && spec.ScopeURL == "":
		return errors.New("token registration needs the scope URL")
	}
	return nil
}

// Delete runs DeleteInstance. An instance the plugin does not know (exit 30)
// is already deleted.
func (p *Provisioner) Delete(ctx context.Context, id string) error {
	if err := p.delete(ctx, id); err != nil {
		return fmt.Errorf("delete instance %s: %w", id, err)
	}
	return nil
}

func (p *Provisioner) delete(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	_, err := p.run(ctx, call{command: CmdDeleteInstance, instance: id, timeout: p.deleteTimeout})
	if isNotFound(err) {
		return nil
	}
	return err
}

// Get runs GetInstance. Exit 30, or an instance that is not this daemon's, is
// provisioner.ErrNotFound.
func (p *Provisioner) Get(ctx context.Context, id string) (provisioner.Instance, error) {
	if err := checkID(id); err != nil {
		return provisioner.Instance{}, fmt.Errorf("get instance %s: %w", id, err)
	}
	out, err := p.run(ctx, call{command: CmdGetInstance, instance: id, timeout: p.getTimeout})
	if isNotFound(err) {
		return provisioner.Instance{}, fmt.Errorf("get instance %s: %w", id, provisioner.ErrNotFound)
	}
	if err != nil {
		return provisioner.Instance{}, fmt.Errorf("get instance %s: %w", id, err)
	}
	inst, err := decodeInstance(out)
	if err != nil {
		return provisioner.Instance{}, fmt.Errorf("get instance %s: %s: %w%s", id, CmdGetInstance, err, stdoutSuffix(out, nil))
	}
	if inst.ID != id {
		return provisioner.Instance{}, fmt.Errorf("get instance %s: %s: plugin answered with instance %q", id, CmdGetInstance, inst.ID)
	}
	if err := p.checkOwner(inst); err != nil {
		p.logger.Warn("plugin returned an instance that is not ours; treating it as not found",
			zap.String("instance", id), zap.Error(err))
		return provisioner.Instance{}, fmt.Errorf("get instance %s: %w (%w)", id, provisioner.ErrNotFound, err)
	}
	if inst.Pool == "" {
		return provisioner.Instance{}, fmt.Errorf("get instance %s: %s: plugin reported no pool", id, CmdGetInstance)
	}
	return inst.Instance, nil
}

// List runs ListInstances and keeps this daemon's instances that are not gone.
// Instances tagged with another daemon's id (or, unless accept_untagged, with
// none) are dropped and logged. Exit 30 is an error here: an empty list would
// tell the caller that every machine is gone.
func (p *Provisioner) List(ctx context.Context) ([]provisioner.Instance, error) {
	out, err := p.run(ctx, call{command: CmdListInstances, timeout: p.listTimeout})
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	all, err := decodeInstances(out)
	if err != nil {
		return nil, fmt.Errorf("list instances: %s: %w%s", CmdListInstances, err, stdoutSuffix(out, nil))
	}
	res := make([]provisioner.Instance, 0, len(all))
	foreign := 0
	for _, inst := range all {
		if err := p.checkOwner(inst); err != nil {
			foreign++
			continue
		}
		if inst.Pool == "" {
			return nil, fmt.Errorf("list instances: %s: plugin reported instance %s without a pool", CmdListInstances, inst.ID)
		}
		if inst.State == provisioner.StateGone {
			continue
		}
		res = append(res, inst.Instance)
	}
	if foreign > 0 {
		p.logger.Warn("plugin listed instances not tagged with this daemon's id; ignored them",
			zap.Int("ignored", foreign), zap.String("daemon_id", p.daemonID))
	}
	return res, nil
}

// RemoveAll runs RemoveAllInstances: the plugin deletes every instance tagged
// with this daemon's id. It is not part of provisioner.Provisioner; a daemon
// decommissioning itself may call it.
func (p *Provisioner) RemoveAll(ctx context.Context) error {
	if _, err := p.run(ctx, call{command: CmdRemoveAllInstances, timeout: p.deleteTimeout}); err != nil {
		return fmt.Errorf("remove all instances: %w", err)
	}
	return nil
}

func checkID(id string) error {
	if id == "" || strings.ContainsRune(id, 0) {
		return provisioner.Permanent(errors.New("invalid instance id"))
	}
	return nil
}

func isNotFound(err error) bool {
	var e *ExitError
	return errors.As(err, &e) && e.Code == ExitCodeNotFound
}
