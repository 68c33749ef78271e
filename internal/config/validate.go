package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

var (
	// poolNamePattern keeps pool and provisioner names usable inside runner
	// names, hostnames and metric label values.
	poolNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,38}$`)
	// loginPattern is GitHub's login alphabet, checked loosely: GitHub's
	// stricter rules (no double or trailing hyphen) were not always
	// enforced, and old accounts still break them.
	loginPattern    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]*$`)
	repoNamePattern = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	dateLike        = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	// workflowRefPattern is how GitHub names a workflow in a runner group's
	// selected_workflows: owner/repo/.github/workflows/file.yml@ref.
	workflowRefPattern = regexp.MustCompile(`^[^/\s]+/[^/\s]+/\.github/workflows/[^@\s]+@\S+$`)
)

const (
	maxLoginLength    = 39
	maxRepoNameLength = 100
	maxLabelLength    = 256
	// maxLabels is the JIT endpoint's limit on a runner's labels.
	maxLabels = 100
	// maxInFlightLimit matches GitHub's secondary limit on concurrent
	// requests.
	maxInFlightLimit = 100
	maxAttemptsLimit = 10
)

var (
	logLevels            = []string{"debug", "info", "warn", "error"}
	logFormats           = []string{"json", "console"}
	poolOSes             = []string{"linux", "windows", "macos"}
	poolArches           = []string{"x64", "arm64", "arm"}
	registrations        = []string{RegistrationJIT, RegistrationToken}
	orgVisibility        = []string{"all", "selected", "private"}
	enterpriseVisibility = []string{"all", "selected"}
	provisionerTypes     = []string{"local", "external", "ec2", "kubernetes", "fake"}
)

// ProvisionerTypes returns the accepted values of provisioners.*.type.
func ProvisionerTypes() []string { return slices.Clone(provisionerTypes) }

// Validate checks the configuration as a whole and returns a
// *ValidationError listing every problem, or nil. It needs no files or
// network: it is what `scaler validate` runs on an example configuration.
// What only `run` needs (secrets present, key readable) is in CheckRuntime.
func (c *Config) Validate() error {
	var ps problems
	c.validate(&ps)
	return ps.err(nil)
}

func (c *Config) validate(ps *problems) {
	c.validateGitHub(ps)
	c.validateWebhook(ps)
	c.validateServers(ps)
	c.validateLog(ps)
	if strings.TrimSpace(c.Store.Path) == "" {
		ps.add("store.path", "must not be empty: the SQLite database file that keeps state across restarts")
	}
	if c.Store.Sync != "normal" && c.Store.Sync != "full" {
		ps.add("store.sync", fmt.Sprintf("must be normal or full, got %q", c.Store.Sync))
	}
	if c.Store.Retention.D() < time.Hour {
		ps.add("store.retention", fmt.Sprintf("must be at least 1h, got %s: jobs and deliveries must outlive a restart", c.Store.Retention))
	}
	c.validateLifecycle(ps)
	c.validateAdmin(ps)
	c.validateRunnerGroups(ps)
	c.validatePools(ps)
	c.validateProvisioners(ps)
}

func (c *Config) validateLifecycle(ps *problems) {
	l := c.Lifecycle
	atLeast := func(key string, d Duration, least time.Duration, why string) {
		if d.D() < least {
			ps.add("lifecycle."+key, fmt.Sprintf("must be at least %s%s, got %s", least, why, d))
		}
	}
	// The floors only catch nonsense; config.example.yaml gives the values
	// to run with (tests use seconds).
	atLeast("reconcile_interval", l.ReconcileInterval, time.Second, "")
	atLeast("bootstrap_timeout", l.BootstrapTimeout, time.Second, "")
	atLeast("offline_timeout", l.OfflineTimeout, time.Second, "")
	atLeast("confirm_interval", l.ConfirmInterval, 0, "")
	atLeast("removal_settle", l.RemovalSettle, 0, "")
	atLeast("orphan_grace", l.OrphanGrace, time.Second, "")
	atLeast("stale_job_after", l.StaleJobAfter, time.Second, "")
	atLeast("shutdown_timeout", l.ShutdownTimeout, time.Second, "")
	if l.RedeliverInterval != 0 {
		atLeast("redeliver_interval", l.RedeliverInterval, time.Second, " (or 0 to turn redelivery off)")
	}
	if l.MaxRedeliveriesPerCycle < 1 {
		ps.add("lifecycle.max_redeliveries_per_cycle", fmt.Sprintf("must be at least 1, got %d", l.MaxRedeliveriesPerCycle))
	}
}

func (c *Config) validateAdmin(ps *problems) {
	a := c.Admin
	if a.Listen == "" {
		return
	}
	if msg := checkListen(a.Listen); msg != "" {
		ps.add("admin.listen", msg)
		return
	}
	for _, other := range []struct{ key, addr string }{{"webhook.listen", c.Webhook.Listen}, {"metrics.listen", c.Metrics.Listen}} {
		if checkListen(other.addr) == "" && listenersClash(a.Listen, other.addr) {
			ps.add("admin.listen", fmt.Sprintf("must differ from %s (%q)", other.key, other.addr))
		}
	}
	if a.Token == "" && !loopbackListen(a.Listen) {
		ps.add("admin.listen", fmt.Sprintf("%q is not a loopback address: set admin.token (or SCALER_ADMIN_TOKEN) so that only holders of the token can read the daemon's state, or listen on 127.0.0.1", a.Listen))
	}
}

// loopbackListen reports whether a valid listen address binds loopback only.
func loopbackListen(addr string) bool {
	host, _, _ := net.SplitHostPort(addr)
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *Config) validateGitHub(ps *problems) {
	g := c.GitHub
	if msg := checkAPIURL(g.APIURL); msg != "" {
		ps.add("github.api_url", msg)
	}
	if !isDate(g.APIVersion) {
		ps.add("github.api_version", fmt.Sprintf("must be a REST API version date like %q, got %q", DefaultAPIVersion, g.APIVersion))
	}
	if g.MaxInFlight < 1 || g.MaxInFlight > maxInFlightLimit {
		ps.add("github.max_in_flight", fmt.Sprintf("must be between 1 and %d (GitHub allows at most %d concurrent requests), got %d", maxInFlightLimit, maxInFlightLimit, g.MaxInFlight))
	}
	if g.MaxAttempts < 1 || g.MaxAttempts > maxAttemptsLimit {
		ps.add("github.max_attempts", fmt.Sprintf("must be between 1 and %d, got %d", maxAttemptsLimit, g.MaxAttempts))
	}
	if g.RequestTimeout <= 0 {
		ps.add("github.request_timeout", fmt.Sprintf("must be more than 0s, got %s", g.RequestTimeout))
	}

	usesApp, usesToken := g.UsesApp(), g.Token != ""
	switch {
	case usesApp && usesToken:
		ps.add("github", "both a GitHub App (github.app) and a token (github.token or SCALER_GITHUB_TOKEN) are configured; "+
			"keep exactly one (a GitHub App is recommended)")
	case !usesApp && !usesToken:
		ps.add("github", "no GitHub credentials: set github.app.id and github.app.private_key_file (or SCALER_GITHUB_APP_PRIVATE_KEY) "+
			"to act as a GitHub App, or set SCALER_GITHUB_TOKEN to use a personal access token")
	}
	if !usesApp {
		return
	}
	app := g.App
	switch {
	case app.ID < 0:
		ps.add("github.app.id", fmt.Sprintf("must be a positive number, got %d", app.ID))
	case app.ID == 0:
		ps.add("github.app.id", "required to act as a GitHub App: the App ID shown on the App's settings page")
	}
	switch fromFile, fromEnv := app.PrivateKeyFile != "", app.PrivateKey != ""; {
	case !fromFile && !fromEnv:
		ps.add("github.app.private_key_file", "required when github.app is configured: the path of the App's private key (.pem), "+
			"or set SCALER_GITHUB_APP_PRIVATE_KEY to the key itself, or pass it as the systemd credential app-private-key")
	case fromFile && fromEnv:
		origin := "SCALER_GITHUB_APP_PRIVATE_KEY"
		if app.privateKeyFrom != "" {
			origin = "the systemd credential " + CredentialAppPrivateKey
		}
		ps.add("github.app.private_key_file", "set either private_key_file or "+origin+", not both")
	}
	if app.InstallationID < 0 {
		ps.add("github.app.installation_id", fmt.Sprintf("must be a positive number, or omitted to discover installations, got %d", app.InstallationID))
	}
}

// checkAPIURL returns what is wrong with an API root URL, or "". Messages do
// not quote the URL, which may carry credentials.
func checkAPIURL(raw string) string {
	const want = "must be an absolute http(s) URL like https://api.github.com/ or https://HOST/api/v3/"
	if raw == "" {
		return want
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return want + " (it does not parse)"
	case u.Scheme != "https" && u.Scheme != "http":
		return want
	case u.Host == "":
		return want + " (it has no host)"
	case u.User != nil:
		return "must not contain credentials; use github.app or SCALER_GITHUB_TOKEN"
	case u.RawQuery != "" || u.Fragment != "":
		return "must not have a query or fragment"
	}
	return ""
}

func isDate(s string) bool {
	if !dateLike.MatchString(s) {
		return false
	}
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

func (c *Config) validateWebhook(ps *problems) {
	w := c.Webhook
	if msg := checkListen(w.Listen); msg != "" {
		ps.add("webhook.listen", msg)
	}
	switch {
	case !strings.HasPrefix(w.Path, "/"):
		ps.add("webhook.path", fmt.Sprintf("must start with \"/\", got %q", w.Path))
	case strings.ContainsAny(w.Path, "?# \t\r\n"):
		ps.add("webhook.path", fmt.Sprintf("must be a plain URL path without query, fragment or spaces, got %q", w.Path))
	}
	for i, s := range w.Secrets {
		if strings.TrimSpace(s.Reveal()) == "" {
			ps.add(fmt.Sprintf("webhook.secrets[%d]", i), "must not be empty")
		}
	}
	if w.MaxBodyBytes < 1 || w.MaxBodyBytes > DefaultMaxBodyBytes {
		ps.add("webhook.max_body_bytes", fmt.Sprintf("must be between 1 and %d (GitHub caps webhook payloads at 25 MB), got %d", DefaultMaxBodyBytes, w.MaxBodyBytes))
	}
}

func (c *Config) validateServers(ps *problems) {
	if msg := checkListen(c.Metrics.Listen); msg != "" {
		ps.add("metrics.listen", msg)
		return
	}
	if checkListen(c.Webhook.Listen) == "" && listenersClash(c.Webhook.Listen, c.Metrics.Listen) {
		ps.add("metrics.listen", fmt.Sprintf("must differ from webhook.listen (%q): both servers cannot use one port", c.Webhook.Listen))
	}
}

// checkListen returns what is wrong with a host:port listen address, or "".
// Port 0 (pick a free port) is allowed: tests rely on it.
func checkListen(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("must be host:port, like \":8080\" or \"127.0.0.1:8080\", got %q", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("port must be a number from 0 to 65535, got %q", port)
	}
	return ""
}

// listenersClash reports whether two valid listen addresses would fight for
// one socket: the same non-zero port on the same host, or on a wildcard
// host, which covers every address.
func listenersClash(a, b string) bool {
	hostA, portA, _ := net.SplitHostPort(a)
	hostB, portB, _ := net.SplitHostPort(b)
	na, _ := strconv.Atoi(portA)
	nb, _ := strconv.Atoi(portB)
	if na == 0 || na != nb {
		return false
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return wildcard(hostA) || wildcard(hostB) || strings.EqualFold(hostA, hostB)
}

func (c *Config) validateLog(ps *problems) {
	if !slices.Contains(logLevels, c.Log.Level) {
		ps.add("log.level", oneOf(logLevels, c.Log.Level))
	}
	if !slices.Contains(logFormats, c.Log.Format) {
		ps.add("log.format", oneOf(logFormats, c.Log.Format))
	}
}

// validateScope reports problems with a scope and returns whether it is
// usable for further checks.
func validateScope(ps *problems, path string, s Scope) bool {
	if s.Kind() == "" {
		if s.IsZero() {
			ps.add(path, "required: set exactly one of enterprise, org or repo")
		} else {
			ps.add(path, fmt.Sprintf("set exactly one of enterprise, org or repo, not several (got %s)", s))
		}
		return false
	}
	switch s.Kind() {
	case ScopeEnterprise:
		if !loginPattern.MatchString(s.Enterprise) {
			ps.add(path+".enterprise", fmt.Sprintf("must be an enterprise slug (letters, digits and hyphens), got %q", s.Enterprise))
			return false
		}
	case ScopeOrg:
		if msg := checkLogin(s.Org); msg != "" {
			ps.add(path+".org", msg)
			return false
		}
	case ScopeRepo:
		if msg := checkRepo(s.Repo); msg != "" {
			ps.add(path+".repo", msg)
			return false
		}
	}
	return true
}

func checkLogin(login string) string {
	if !loginPattern.MatchString(login) || len(login) > maxLoginLength {
		return fmt.Sprintf("must be a GitHub login (letters, digits and hyphens, at most %d characters), got %q", maxLoginLength, login)
	}
	return ""
}

func checkRepoName(name string) string {
	if !repoNamePattern.MatchString(name) || len(name) > maxRepoNameLength || name == "." || name == ".." {
		return fmt.Sprintf("must be a repository name (letters, digits, '-', '_' and '.', at most %d characters), got %q", maxRepoNameLength, name)
	}
	return ""
}

func checkRepo(repo string) string {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || strings.Contains(name, "/") {
		return fmt.Sprintf("must be owner/name, got %q", repo)
	}
	if checkLogin(owner) != "" || checkRepoName(name) != "" {
		return fmt.Sprintf("must be owner/name with a GitHub login as owner and a repository name, got %q", repo)
	}
	return ""
}

func (c *Config) validateRunnerGroups(ps *problems) {
	seen := make(map[string]int)
	for i, g := range c.RunnerGroups {
		path := fmt.Sprintf("runner_groups[%d]", i)
		scopeOK := validateScope(ps, path+".scope", g.Scope)
		kind := g.Scope.Kind()
		if scopeOK && kind == ScopeRepo {
			ps.add(path+".scope", "repositories have no runner groups; use an org or enterprise scope "+
				"(repository pools use the built-in Default group)")
			scopeOK = false
		}

		name := strings.TrimSpace(g.Name)
		switch {
		case name == "":
			ps.add(path+".name", "required")
		case name != g.Name:
			ps.add(path+".name", fmt.Sprintf("must not start or end with spaces, got %q", g.Name))
		case strings.EqualFold(name, DefaultRunnerGroup):
			ps.add(path+".name", "\"Default\" is GitHub's built-in group and cannot be created; pools use it without declaring it, "+
				"so remove this entry or choose another name")
		case scopeOK:
			key := g.Scope.key() + "\x00" + strings.ToLower(name)
			if j, dup := seen[key]; dup {
				ps.add(path+".name", fmt.Sprintf("duplicates runner_groups[%d] (group names are unique per scope, ignoring case)", j))
			} else {
				seen[key] = i
			}
		}

		allowed := orgVisibility
		if kind == ScopeEnterprise {
			allowed = enterpriseVisibility
		}
		if !slices.Contains(allowed, g.Visibility) {
			msg := oneOf(allowed, g.Visibility)
			if kind == ScopeEnterprise && g.Visibility == "private" {
				msg += " (\"private\" exists only for org groups)"
			}
			ps.add(path+".visibility", msg)
		}
		selected := g.Visibility == "selected"

		c.validateGroupRepositories(ps, path, g, scopeOK, selected)
		c.validateGroupOrganizations(ps, path, g, selected)

		switch {
		case len(g.SelectedWorkflows) > 0 && !g.RestrictedToWorkflows:
			ps.add(path+".selected_workflows", "only used with restricted_to_workflows: true; set it or remove the list")
		case g.RestrictedToWorkflows && len(g.SelectedWorkflows) == 0:
			ps.add(path+".selected_workflows", "restricted_to_workflows: true needs at least one workflow, "+
				"like \"acme/web/.github/workflows/ci.yml@refs/heads/main\"")
		}
		for j, w := range g.SelectedWorkflows {
			if !workflowRefPattern.MatchString(w) {
				ps.add(fmt.Sprintf("%s.selected_workflows[%d]", path, j),
					fmt.Sprintf("must look like owner/repo/.github/workflows/FILE@REF, got %q", w))
			}
		}
	}
}

func (c *Config) validateGroupRepositories(ps *problems, path string, g RunnerGroup, scopeOK, selected bool) {
	kind := g.Scope.Kind()
	switch {
	case len(g.Repositories) > 0 && kind == ScopeEnterprise:
		ps.add(path+".repositories", "only org groups list repositories; enterprise groups list organizations")
		return
	case len(g.Repositories) > 0 && !selected:
		ps.add(path+".repositories", "only used with visibility: selected")
		return
	case len(g.Repositories) == 0 && selected && kind == ScopeOrg:
		ps.add(path+".repositories", "visibility: selected needs at least one repository, or no repository could use the group")
		return
	}
	seen := make(map[string]int)
	for j, r := range g.Repositories {
		rp := fmt.Sprintf("%s.repositories[%d]", path, j)
		owner, name, qualified := strings.Cut(r, "/")
		if !qualified {
			owner, name = g.Scope.Org, r
		}
		if qualified {
			if msg := checkRepo(r); msg != "" {
				ps.add(rp, msg)
				continue
			}
			if scopeOK && !strings.EqualFold(owner, g.Scope.Org) {
				ps.add(rp, fmt.Sprintf("belongs to %q, but the group is in org %q; a group can only grant its own org's repositories", owner, g.Scope.Org))
				continue
			}
		} else if msg := checkRepoName(name); msg != "" {
			ps.add(rp, msg)
			continue
		}
		key := strings.ToLower(name)
		if k, dup := seen[key]; dup {
			ps.add(rp, fmt.Sprintf("duplicates repositories[%d]", k))
			continue
		}
		seen[key] = j
	}
}

func (c *Config) validateGroupOrganizations(ps *problems, path string, g RunnerGroup, selected bool) {
	kind := g.Scope.Kind()
	switch {
	case len(g.Organizations) > 0 && kind == ScopeOrg:
		ps.add(path+".organizations", "only enterprise groups list organizations; org groups list repositories")
		return
	case len(g.Organizations) > 0 && !selected:
		ps.add(path+".organizations", "only used with visibility: selected")
		return
	case len(g.Organizations) == 0 && selected && kind == ScopeEnterprise:
		ps.add(path+".organizations", "visibility: selected needs at least one organization, or no organization could use the group")
		return
	}
	seen := make(map[string]int)
	for j, o := range g.Organizations {
		op := fmt.Sprintf("%s.organizations[%d]", path, j)
		if msg := checkLogin(o); msg != "" {
			ps.add(op, msg)
			continue
		}
		key := strings.ToLower(o)
		if k, dup := seen[key]; dup {
			ps.add(op, fmt.Sprintf("duplicates organizations[%d]", k))
			continue
		}
		seen[key] = j
	}
}

func (c *Config) validatePools(ps *problems) {
	if len(c.Pools) == 0 {
		ps.add("pools", "at least one pool is required: a pool says which runners to launch for which jobs")
		return
	}
	names := make(map[string]int)
	shapes := make(map[string]int)
	for i, p := range c.Pools {
		path := fmt.Sprintf("pools[%d]", i)
		switch {
		case p.Name == "":
			ps.add(path+".name", "required")
		case !poolNamePattern.MatchString(p.Name):
			ps.add(path+".name", fmt.Sprintf("must be 1 to 39 lowercase letters, digits or hyphens, starting with a letter or digit "+
				"(it becomes part of runner names and metric labels), got %q", p.Name))
		default:
			if j, dup := names[p.Name]; dup {
				ps.add(path+".name", fmt.Sprintf("duplicates pools[%d].name", j))
			} else {
				names[p.Name] = i
			}
		}

		scopeOK := validateScope(ps, path+".scope", p.Scope)
		groupOK := c.validatePoolGroup(ps, path, p, scopeOK)
		labelsOK := validateLabels(ps, path, p)

		if !slices.Contains(poolOSes, p.OS) {
			ps.add(path+".os", oneOf(poolOSes, p.OS))
			labelsOK = false
		}
		if !slices.Contains(poolArches, p.Arch) {
			ps.add(path+".arch", oneOf(poolArches, p.Arch))
			labelsOK = false
		}
		if p.MinIdle < 0 {
			ps.add(path+".min_idle", fmt.Sprintf("must be >= 0, got %d", p.MinIdle))
		}
		switch {
		case p.MaxRunners < 1:
			ps.add(path+".max_runners", fmt.Sprintf("must be >= 1 (the most runners this pool may run at once), got %d", p.MaxRunners))
		case p.MaxRunners < p.MinIdle:
			ps.add(path+".max_runners", fmt.Sprintf("must be >= min_idle (%d)", p.MinIdle))
		}
		if !slices.Contains(registrations, p.Registration) {
			ps.add(path+".registration", oneOf(registrations, p.Registration))
		} else if p.Registration == RegistrationJIT && !p.IsEphemeral() {
			ps.add(path+".ephemeral", "must be true with registration: jit, because JIT runners are always ephemeral; "+
				"use registration: token for persistent runners")
		}
		if p.IdleTimeout < 0 {
			ps.add(path+".idle_timeout", fmt.Sprintf("must be >= 0s, got %s", p.IdleTimeout))
		}
		if p.MaxConcurrentCreates < 1 {
			ps.add(path+".max_concurrent_creates", fmt.Sprintf("must be >= 1, got %d", p.MaxConcurrentCreates))
		}
		for j, sc := range p.Schedules {
			validateSchedule(ps, fmt.Sprintf("%s.schedules[%d]", path, j), sc, p.MaxRunners)
		}
		switch _, ok := c.Provisioners[p.Provisioner]; {
		case p.Provisioner == "":
			ps.add(path+".provisioner", "required: the name of an entry under provisioners")
		case !ok:
			ps.add(path+".provisioner", fmt.Sprintf("unknown provisioner %q (%s)", p.Provisioner, c.definedProvisioners()))
		}

		if scopeOK && groupOK && labelsOK {
			key := p.Scope.key() + "\x00" + strings.ToLower(p.RunnerGroup) + "\x00" + labelSetKey(p.EffectiveLabels())
			if j, dup := shapes[key]; dup {
				ps.add(path, fmt.Sprintf("duplicates pools[%d]: same scope, runner group and labels, so no job could tell them apart", j))
			} else {
				shapes[key] = i
			}
		}
	}
}

// validatePoolGroup checks the pool's runner group against its scope and the
// declared groups, returning whether the group is usable for further checks.
func (c *Config) validatePoolGroup(ps *problems, path string, p Pool, scopeOK bool) bool {
	group := p.RunnerGroup
	switch {
	case strings.TrimSpace(group) == "":
		ps.add(path+".runner_group", "must not be empty; omit it to use the Default group")
		return false
	case group != strings.TrimSpace(group):
		ps.add(path+".runner_group", fmt.Sprintf("must not start or end with spaces, got %q", group))
		return false
	}
	if !scopeOK {
		return true
	}
	if p.Scope.Kind() == ScopeRepo && !strings.EqualFold(group, DefaultRunnerGroup) {
		ps.add(path+".runner_group", "repository runners cannot be put in a runner group; remove runner_group, "+
			"or move the pool to an org or enterprise scope")
		return false
	}
	// Groups not declared in runner_groups are assumed to exist on GitHub.
	// A declared group, though, has a known scope, and a pool can only use
	// one declared at its own scope.
	var declaredAt []string
	for _, g := range c.RunnerGroups {
		if !strings.EqualFold(g.Name, group) || g.Scope.Kind() == "" {
			continue
		}
		if g.Scope.Equal(p.Scope) {
			return true
		}
		declaredAt = append(declaredAt, g.Scope.String())
	}
	if len(declaredAt) > 0 {
		ps.add(path+".runner_group", fmt.Sprintf("runner group %q is declared in runner_groups for %s, but this pool is at %s; "+
			"declare the group at the pool's scope or pick another group", group, strings.Join(declaredAt, ", "), p.Scope))
		return false
	}
	return true
}

// validateLabels checks a pool's labels and returns whether they are usable
// for the duplicate-pool check.
func validateLabels(ps *problems, path string, p Pool) bool {
	if len(p.Labels) == 0 {
		ps.add(path+".labels", "at least one label is required: jobs pick runners by label (runs-on)")
		return false
	}
	ok := true
	seen := make(map[string]int)
	for j, l := range p.Labels {
		lp := fmt.Sprintf("%s.labels[%d]", path, j)
		switch {
		case strings.TrimSpace(l) == "":
			ps.add(lp, "must not be empty")
		case strings.TrimSpace(l) != l:
			ps.add(lp, fmt.Sprintf("must not start or end with spaces, got %q", l))
		case strings.Contains(l, ","):
			ps.add(lp, fmt.Sprintf("must not contain a comma (runner labels are passed comma-separated), got %q", l))
		case len(l) > maxLabelLength:
			ps.add(lp, fmt.Sprintf("must be at most %d characters, got %d", maxLabelLength, len(l)))
		default:
			key := strings.ToLower(l)
			if k, dup := seen[key]; dup {
				ps.add(lp, fmt.Sprintf("duplicates labels[%d] (labels are case-insensitive)", k))
			} else {
				seen[key] = j
			}
			continue
		}
		ok = false
	}
	if n := len(p.EffectiveLabels()); n > maxLabels {
		ps.add(path+".labels", fmt.Sprintf("gives runners %d labels counting the defaults (self-hosted, OS, architecture); GitHub allows at most %d", n, maxLabels))
		ok = false
	}
	return ok
}

// labelSetKey is an order- and case-insensitive key for a label set.
func labelSetKey(labels []string) string {
	lower := make([]string, len(labels))
	for i, l := range labels {
		lower[i] = strings.ToLower(l)
	}
	sort.Strings(lower)
	return strings.Join(lower, "\x00")
}

func (c *Config) definedProvisioners() string {
	if len(c.Provisioners) == 0 {
		return "no provisioners are defined"
	}
	names := make([]string, 0, len(c.Provisioners))
	for name := range c.Provisioners {
		names = append(names, name)
	}
	sort.Strings(names)
	return "defined: " + strings.Join(names, ", ")
}

func (c *Config) validateProvisioners(ps *problems) {
	names := make([]string, 0, len(c.Provisioners))
	for name := range c.Provisioners {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := c.Provisioners[name]
		path := joinKey("provisioners", name)
		if !poolNamePattern.MatchString(name) {
			ps.add(path, fmt.Sprintf("name must be 1 to 39 lowercase letters, digits or hyphens, starting with a letter or digit, got %q", name))
		}
		switch {
		case p.Type == "":
			ps.add(path+".type", "required: one of "+choices(provisionerTypes))
		case !slices.Contains(provisionerTypes, p.Type):
			ps.add(path+".type", oneOf(provisionerTypes, p.Type))
		}
	}
}

// oneOf renders `must be one of "a", "b" or "c", got "x"`.
func oneOf(allowed []string, got string) string {
	return fmt.Sprintf("must be one of %s, got %q", choices(allowed), got)
}

// choices renders `"a", "b" or "c"`.
func choices(allowed []string) string {
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = strconv.Quote(a)
	}
	if len(quoted) == 1 {
		return quoted[0]
	}
	return strings.Join(quoted[:len(quoted)-1], ", ") + " or " + quoted[len(quoted)-1]
}

func validateSchedule(ps *problems, path string, s Schedule, maxRunners int) {
	for i, d := range s.Days {
		if !weekdayKnown(d) {
			ps.add(fmt.Sprintf("%s.days[%d]", path, i), fmt.Sprintf("must be one of mon, tue, wed, thu, fri, sat, sun, got %q", d))
		}
	}
	if _, err := minuteOfDay(s.From); err != nil {
		ps.add(path+".from", fmt.Sprintf("must be a time of day as HH:MM, got %q", s.From))
	}
	if _, err := minuteOfDay(s.To); err != nil {
		ps.add(path+".to", fmt.Sprintf("must be a time of day as HH:MM, got %q", s.To))
	}
	if s.From != "" && s.From == s.To {
		ps.add(path+".to", "must differ from from: the window would be empty")
	}
	if _, err := s.location(); err != nil {
		ps.add(path+".timezone", fmt.Sprintf("unknown time zone %q: use an IANA name such as Europe/Berlin", s.TimeZone))
	}
	if s.MinIdle < 0 {
		ps.add(path+".min_idle", fmt.Sprintf("must be >= 0, got %d", s.MinIdle))
	} else if maxRunners > 0 && s.MinIdle > maxRunners {
		ps.add(path+".min_idle", fmt.Sprintf("must be <= max_runners (%d), got %d", maxRunners, s.MinIdle))
	}
}
