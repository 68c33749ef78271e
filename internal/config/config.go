// Package config defines Runnerscaler's configuration: one YAML file for the
// shape of the fleet, and environment variables for secrets and deploy-time
// overrides.
//
// The configuration is read once at start (and again on SIGHUP) and checked as
// a whole: every problem is reported with its key path, so an operator fixes a
// broken file in one round. Secrets are typed as Secret so they cannot leak
// through fmt, JSON or YAML.
package config

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// Config is the whole daemon configuration.
type Config struct {
	GitHub       GitHub                 `yaml:"github"`
	Webhook      Webhook                `yaml:"webhook"`
	Metrics      Metrics                `yaml:"metrics"`
	Store        Store                  `yaml:"store"`
	Log          Log                    `yaml:"log"`
	Lifecycle    Lifecycle              `yaml:"lifecycle"`
	Admin        Admin                  `yaml:"admin"`
	RunnerGroups []RunnerGroup          `yaml:"runner_groups"`
	Pools        []Pool                 `yaml:"pools"`
	Provisioners map[string]Provisioner `yaml:"provisioners"`
}

// GitHub says how to reach and authenticate to GitHub.
type GitHub struct {
	// APIURL is the REST API root, always ending in "/" after loading:
	// https://api.github.com/ or, on GitHub Enterprise Server,
	// https://HOST/api/v3/.
	APIURL string `yaml:"api_url"`
	// APIVersion is sent as X-GitHub-Api-Version.
	APIVersion string    `yaml:"api_version"`
	App        GitHubApp `yaml:"app"`
	// Token is a personal access token, used instead of a GitHub App.
	Token Secret `yaml:"token"`
	// MaxInFlight bounds concurrent requests; GitHub's secondary rate limit
	// allows at most 100.
	MaxInFlight int `yaml:"max_in_flight"`
	// MaxAttempts bounds tries per request, the first included.
	MaxAttempts    int      `yaml:"max_attempts"`
	RequestTimeout Duration `yaml:"request_timeout"`
}

// GitHubApp identifies the GitHub App the daemon acts as.
type GitHubApp struct {
	ID             int64  `yaml:"id"`
	PrivateKeyFile string `yaml:"private_key_file"`
	// PrivateKey is the PEM key itself. It comes only from the environment
	// (SCALER_GITHUB_APP_PRIVATE_KEY) or a systemd credential
	// (app-private-key): a key pasted into a config file ends up in backups
	// and version control.
	PrivateKey Secret `yaml:"-"`
	// privateKeyFrom names where PrivateKey came from when that was not
	// SCALER_GITHUB_APP_PRIVATE_KEY: "credential app-private-key".
	privateKeyFrom string
	// InstallationID pins one installation; zero means discover it per
	// scope.
	InstallationID int64 `yaml:"installation_id"`
}

// Webhook configures the HTTP endpoint that receives GitHub's deliveries.
type Webhook struct {
	Listen string `yaml:"listen"`
	Path   string `yaml:"path"`
	// Secrets are all accepted when verifying signatures, so a secret can be
	// rotated without dropping deliveries: add the new one, change it on
	// GitHub, then remove the old one.
	Secrets      []Secret `yaml:"secrets"`
	MaxBodyBytes int64    `yaml:"max_body_bytes"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	Listen string `yaml:"listen"`
}

// Store configures durable state.
type Store struct {
	// Path is the SQLite database file.
	Path string `yaml:"path"`
	// Sync is "normal" (an acknowledged delivery survives a crash of the
	// process) or "full" (it also survives a power loss, at a cost in
	// throughput).
	Sync string `yaml:"sync"`
	// Retention is how long completed jobs, deliveries and decisions are kept.
	Retention Duration `yaml:"retention"`
}

// Lifecycle holds the timings of runner reaping, reconciliation and
// missed-webhook recovery.
type Lifecycle struct {
	// ReconcileInterval is how often runners and instances are listed and
	// drift fixed (and once at start).
	ReconcileInterval Duration `yaml:"reconcile_interval"`
	// BootstrapTimeout: an instance whose runner never came online within
	// it is deleted with its runner.
	BootstrapTimeout Duration `yaml:"bootstrap_timeout"`
	// OfflineTimeout: a runner of ours offline for longer is deleted.
	OfflineTimeout Duration `yaml:"offline_timeout"`
	// ConfirmInterval separates the two busy:false reads a removal needs.
	ConfirmInterval Duration `yaml:"confirm_interval"`
	// RemovalSettle is how long a removal waits, once the runner's labels
	// are off, for the webhooks of a job GitHub assigned just before.
	RemovalSettle Duration `yaml:"removal_settle"`
	// OrphanGrace: an instance with our tags that neither the store nor
	// GitHub knows is deleted after it.
	OrphanGrace Duration `yaml:"orphan_grace"`
	// RedeliverInterval is how often failed workflow_job deliveries are
	// looked for and redelivered (GitHub App only); 0 turns it off.
	RedeliverInterval Duration `yaml:"redeliver_interval"`
	// MaxRedeliveriesPerCycle bounds the redeliveries asked for per cycle.
	MaxRedeliveriesPerCycle int `yaml:"max_redeliveries_per_cycle"`
	// StaleJobAfter: a job queued for longer is checked with GitHub and
	// closed when GitHub says it is no longer queued.
	StaleJobAfter Duration `yaml:"stale_job_after"`
	// DrainOnShutdown removes idle runners (safely) on SIGTERM before
	// exiting; otherwise runners are left running.
	DrainOnShutdown bool `yaml:"drain_on_shutdown"`
	// ShutdownTimeout bounds the work finished after SIGTERM.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

// Admin is the read-only admin endpoint scaler status reads.
type Admin struct {
	// Listen is host:port; "" turns the endpoint off.
	Listen string `yaml:"listen"`
	// Token, when set, is required as a bearer token. Without one, only
	// loopback clients are answered and Listen must be a loopback address.
	Token Secret `yaml:"token"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// RunnerGroup is a runner group the daemon creates and keeps in the declared
// shape.
type RunnerGroup struct {
	Scope      Scope  `yaml:"scope"`
	Name       string `yaml:"name"`
	Visibility string `yaml:"visibility"`
	// Repositories may use the group when visibility is "selected" (org
	// groups only): "owner/name" with the group's org as owner, or a bare
	// repository name.
	Repositories []string `yaml:"repositories"`
	// Organizations may use the group when visibility is "selected"
	// (enterprise groups only).
	Organizations            []string `yaml:"organizations"`
	AllowsPublicRepositories bool     `yaml:"allows_public_repositories"`
	RestrictedToWorkflows    bool     `yaml:"restricted_to_workflows"`
	// SelectedWorkflows are "owner/repo/.github/workflows/file.yml@ref".
	SelectedWorkflows []string `yaml:"selected_workflows"`
}

// Pool is a set of interchangeable runners: one scope, one runner group, one
// label set, launched by one provisioner.
type Pool struct {
	// Name is part of runner names and metric labels, hence the strict
	// format.
	Name        string   `yaml:"name"`
	Scope       Scope    `yaml:"scope"`
	RunnerGroup string   `yaml:"runner_group"`
	Labels      []string `yaml:"labels"`
	OS          string   `yaml:"os"`
	Arch        string   `yaml:"arch"`
	MinIdle     int      `yaml:"min_idle"`
	MaxRunners  int      `yaml:"max_runners"`
	// Ephemeral is a pointer so that "not set" (default true) differs from
	// an explicit false; read it through IsEphemeral.
	Ephemeral    *bool    `yaml:"ephemeral"`
	Registration string   `yaml:"registration"`
	IdleTimeout  Duration `yaml:"idle_timeout"`
	// MaxConcurrentCreates bounds the runners being created at once.
	MaxConcurrentCreates int `yaml:"max_concurrent_creates"`
	// Schedules override MinIdle in time windows; the last active one wins.
	Schedules   []Schedule `yaml:"schedules"`
	Provisioner string     `yaml:"provisioner"`
}

// Schedule is a weekly time window in a time zone with its own min_idle,
// e.g. working hours: days [mon, tue, wed, thu, fri], from "08:00", to "18:00".
type Schedule struct {
	// Days are mon..sun; empty means every day.
	Days []string `yaml:"days"`
	// From and To are "HH:MM" in TimeZone; the window is [From, To). A
	// window with To before From runs past midnight.
	From     string `yaml:"from"`
	To       string `yaml:"to"`
	TimeZone string `yaml:"timezone"`
	MinIdle  int    `yaml:"min_idle"`
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// Active reports whether t falls in the window. A schedule that does not
// validate is never active.
func (s Schedule) Active(t time.Time) bool {
	loc, err := s.location()
	if err != nil {
		return false
	}
	from, err1 := minuteOfDay(s.From)
	to, err2 := minuteOfDay(s.To)
	if err1 != nil || err2 != nil {
		return false
	}
	local := t.In(loc)
	now := local.Hour()*60 + local.Minute()
	day := local.Weekday()
	if from > to && now < to {
		// Past midnight: the window opened on the previous day.
		day = (day + 6) % 7
	}
	if len(s.Days) > 0 {
		found := false
		for _, d := range s.Days {
			found = found || weekdays[strings.ToLower(d)] == day && weekdayKnown(d)
		}
		if !found {
			return false
		}
	}
	if from <= to {
		return now >= from && now < to
	}
	return now >= from || now < to
}

func weekdayKnown(d string) bool {
	_, ok := weekdays[strings.ToLower(d)]
	return ok
}

func (s Schedule) location() (*time.Location, error) {
	if s.TimeZone == "" {
		return time.UTC, nil
	}
	return time.LoadLocation(s.TimeZone)
}

func minuteOfDay(hhmm string) (int, error) {
	t, err := time.Parse("15:04", hhmm)
	if err != nil {
		return 0, err
	}
	return t.Hour()*60 + t.Minute(), nil
}

// Provisioner is a named backend that launches runner machines.
type Provisioner struct {
	Type string `yaml:"type"`
	// Settings are specific to Type and checked by the provisioner itself.
	// They are printed in dumps, so credentials must not go here.
	Settings map[string]any `yaml:"settings"`
}

// Scope is where runners are registered: an enterprise, an organization or a
// repository. Exactly one field is set.
type Scope struct {
	Enterprise string `yaml:"enterprise"`
	Org        string `yaml:"org"`
	// Repo is "owner/name".
	Repo string `yaml:"repo"`
}

// Scope kinds returned by Scope.Kind.
const (
	ScopeEnterprise = "enterprise"
	ScopeOrg        = "org"
	ScopeRepo       = "repo"
)

// Registration methods for Pool.Registration.
const (
	RegistrationJIT   = "jit"
	RegistrationToken = "token"
)

// Defaults that other packages may want to show or compare against.
const (
	DefaultAPIURL       = "https://api.github.com/"
	DefaultAPIVersion   = "2022-11-28"
	DefaultRunnerGroup  = "Default"
	DefaultMaxBodyBytes = 25 << 20 // GitHub caps webhook payloads at 25 MB.
)

// Default returns a configuration with every default applied and nothing
// else: it has no credentials, pools or provisioners, so it does not pass
// Validate on its own.
func Default() *Config {
	c := &Config{}
	c.setDefaults()
	return c
}

// setDefaults fills the top-level defaults. Elements of lists and maps
// (pools, runner groups) get theirs when they are decoded, before their own
// keys are applied, so that an explicit zero (idle_timeout: 0s) stays zero.
func (c *Config) setDefaults() {
	c.GitHub = GitHub{
		APIURL:         DefaultAPIURL,
		APIVersion:     DefaultAPIVersion,
		MaxInFlight:    10,
		MaxAttempts:    4,
		RequestTimeout: Duration(30 * time.Second),
	}
	c.Webhook = Webhook{
		Listen:       ":8080",
		Path:         "/webhook",
		MaxBodyBytes: DefaultMaxBodyBytes,
	}
	c.Metrics = Metrics{Listen: ":9102"}
	c.Store = Store{Path: "/var/lib/runnerscaler/state.db", Sync: "normal", Retention: Duration(7 * 24 * time.Hour)}
	c.Log = Log{Level: "info", Format: "json"}
	c.Lifecycle = Lifecycle{
		ReconcileInterval:       Duration(time.Minute),
		BootstrapTimeout:        Duration(10 * time.Minute),
		OfflineTimeout:          Duration(10 * time.Minute),
		ConfirmInterval:         Duration(5 * time.Second),
		RemovalSettle:           Duration(10 * time.Second),
		OrphanGrace:             Duration(10 * time.Minute),
		RedeliverInterval:       Duration(2 * time.Minute),
		MaxRedeliveriesPerCycle: 100,
		StaleJobAfter:           Duration(10 * time.Minute),
		ShutdownTimeout:         Duration(30 * time.Second),
	}
	c.Admin = Admin{Listen: "127.0.0.1:9103"}
}

// setDefaults prepares a fresh runner group before its YAML is applied.
func (g *RunnerGroup) setDefaults() {
	g.Visibility = "all"
}

// setDefaults prepares a fresh pool before its YAML is applied.
func (p *Pool) setDefaults() {
	ephemeral := true
	p.RunnerGroup = DefaultRunnerGroup
	p.OS = "linux"
	p.Arch = "x64"
	p.Ephemeral = &ephemeral
	p.Registration = RegistrationJIT
	p.IdleTimeout = Duration(10 * time.Minute)
	p.MaxConcurrentCreates = 10
}

// defaulter is implemented by element types whose zero value is not their
// default; the decoder calls it on each new element.
type defaulter interface{ setDefaults() }

// IsEphemeral reports whether the pool's runners take one job each. A nil
// Ephemeral (a Pool built in code) means the default, true.
func (p Pool) IsEphemeral() bool { return p.Ephemeral == nil || *p.Ephemeral }

// DefaultLabels returns the labels a self-hosted runner gets without being
// asked: "self-hosted", its OS and its architecture.
func (p Pool) DefaultLabels() []string { return []string{"self-hosted", p.OS, p.Arch} }

// EffectiveLabels returns the default labels followed by the configured ones,
// dropping case-insensitive repeats: the label set GitHub matches jobs
// against.
func (p Pool) EffectiveLabels() []string {
	seen := make(map[string]bool)
	var out []string
	for _, l := range append(p.DefaultLabels(), p.Labels...) {
		k := strings.ToLower(l)
		if k == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, l)
	}
	return out
}

// UsesApp reports whether GitHub App authentication is configured (as opposed
// to a token).
func (g GitHub) UsesApp() bool {
	return g.App.ID != 0 || g.App.PrivateKeyFile != "" || g.App.PrivateKey != "" || g.App.InstallationID != 0
}

// Kind returns "enterprise", "org" or "repo", or "" unless exactly one field
// is set.
func (s Scope) Kind() string {
	kind, n := "", 0
	if s.Enterprise != "" {
		kind, n = ScopeEnterprise, n+1
	}
	if s.Org != "" {
		kind, n = ScopeOrg, n+1
	}
	if s.Repo != "" {
		kind, n = ScopeRepo, n+1
	}
	if n != 1 {
		return ""
	}
	return kind
}

// Name returns the enterprise slug, org login or "owner/name" of the scope.
func (s Scope) Name() string {
	switch s.Kind() {
	case ScopeEnterprise:
		return s.Enterprise
	case ScopeOrg:
		return s.Org
	case ScopeRepo:
		return s.Repo
	}
	return ""
}

// String renders the scope as "enterprise:big", "org:acme" or
// "repo:acme/web"; "" for the zero Scope. A Scope with several fields set
// lists them all joined by "+", so a log line shows the mistake.
func (s Scope) String() string {
	var parts []string
	if s.Enterprise != "" {
		parts = append(parts, ScopeEnterprise+":"+s.Enterprise)
	}
	if s.Org != "" {
		parts = append(parts, ScopeOrg+":"+s.Org)
	}
	if s.Repo != "" {
		parts = append(parts, ScopeRepo+":"+s.Repo)
	}
	return strings.Join(parts, "+")
}

// IsZero reports whether no field is set.
func (s Scope) IsZero() bool { return s == Scope{} }

// Equal compares scopes the way GitHub compares logins and repository names:
// case-insensitively.
func (s Scope) Equal(o Scope) bool {
	return strings.EqualFold(s.Enterprise, o.Enterprise) &&
		strings.EqualFold(s.Org, o.Org) &&
		strings.EqualFold(s.Repo, o.Repo)
}

// key is a case-folded form of the scope for use in maps.
func (s Scope) key() string { return strings.ToLower(s.String()) }

// Load reads the YAML file at path and builds the configuration as Parse
// does. A file that cannot be read gives a wrapped *fs.PathError (which names
// the file); a file that can be read but is wrong gives the *ValidationError
// itself, unwrapped, so callers can type-switch on it and print one problem
// per line.
func Load(path string, environ map[string]string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, environ)
}

// Parse builds the configuration from YAML text and environment variables:
// defaults, then the YAML, then environment overrides and the systemd
// credentials in $CREDENTIALS_DIRECTORY (see applyCredentials for which
// wins), then validation.
//
// environ is passed explicitly (see EnvironFromOS) so tests and tools never
// depend on the process environment; a nil map means no variables.
//
// On failure the error is a *ValidationError listing every problem. The
// *Config is returned alongside it whenever the YAML was well-formed, so a
// caller can still show what was understood.
func Parse(data []byte, environ map[string]string) (*Config, error) {
	cfg := Default()
	var ps problems
	positions, result := decodeYAML(data, cfg, &ps)
	switch result {
	case notYAML:
		return nil, ps.err(positions)
	case notMapping:
		// Checking the defaults would only add noise to the one real
		// problem.
		return cfg, ps.err(positions)
	}
	overridden := applyEnv(cfg, environ, &ps)
	applyCredentials(cfg, environ, &ps, overridden)
	cfg.normalize()
	failed := failedPaths(&ps)
	var vps problems
	cfg.validate(&vps)
	for _, p := range vps.list {
		if coveredBy(failed, p.Path) {
			continue // the value never decoded; its type error says enough
		}
		// A value that came from the environment would otherwise be
		// blamed on a YAML key that may not even be in the file.
		if name, ok := overridden[p.Path]; ok {
			p.Message += " (value from " + name + ")"
		}
		ps.list = append(ps.list, p)
	}
	if err := ps.err(positions); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// failedPaths returns the paths that had a decoding problem.
func failedPaths(ps *problems) map[string]bool {
	out := make(map[string]bool, len(ps.list))
	for _, p := range ps.list {
		out[p.Path] = true
	}
	return out
}

// coveredBy reports whether path or one of its ancestors is in failed.
func coveredBy(failed map[string]bool, path string) bool {
	for p := path; p != ""; p = parentPath(p) {
		if failed[p] {
			return true
		}
	}
	return false
}

// normalize puts values into the one form the rest of the daemon expects.
func (c *Config) normalize() {
	if c.GitHub.APIURL != "" && !strings.HasSuffix(c.GitHub.APIURL, "/") {
		c.GitHub.APIURL += "/"
	}
}

// EnvironFromOS returns the process environment as a map, for Load and Parse.
func EnvironFromOS() map[string]string {
	out := make(map[string]string)
	for _, kv := range os.Environ() {
		k, v, ok := strings.Cut(kv, "=")
		// Windows keeps per-drive working directories in variables named
		// "=C:"; they are not configuration.
		if !ok || k == "" {
			continue
		}
		out[k] = v
	}
	return out
}
