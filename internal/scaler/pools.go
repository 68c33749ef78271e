package scaler

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/config"
	"github.com/runnerscaler/runnerscaler/internal/ghapi"
)

// Defaults applied to pools whose fields are left empty (a Pool built in code
// rather than decoded from YAML, where config sets the same defaults).
const (
	DefaultMaxConcurrentCreates = 10
	DefaultOS                   = "linux"
	DefaultArch                 = "x64"
)

// PoolsFromConfig builds the scaler's pools from the configuration, in config
// order (Order is the index in cfg.Pools). Every pool that cannot be built is
// reported, with its key path, in one joined error; the pools that could be
// built are returned alongside it.
func PoolsFromConfig(cfg *config.Config) ([]Pool, error) {
	if cfg == nil {
		return nil, errors.New("pools from config: no configuration")
	}
	pools := make([]Pool, 0, len(cfg.Pools))
	var errs []error
	for i, cp := range cfg.Pools {
		scope, err := scopeFromConfig(cp.Scope)
		if err != nil {
			errs = append(errs, fmt.Errorf("pools[%d].scope (pool %q): %w", i, cp.Name, err))
			continue
		}
		p := Pool{
			Name:                 cp.Name,
			Scope:                scope,
			RunnerGroup:          cp.RunnerGroup,
			Labels:               append([]string(nil), cp.Labels...),
			OS:                   cp.OS,
			Arch:                 cp.Arch,
			MinIdle:              cp.MinIdle,
			MaxRunners:           cp.MaxRunners,
			Ephemeral:            cp.IsEphemeral(),
			Registration:         cp.Registration,
			IdleTimeout:          cp.IdleTimeout.D(),
			MaxConcurrentCreates: cp.MaxConcurrentCreates,
			Provisioner:          cp.Provisioner,
			Order:                i,
		}
		if p.RunnerGroup == "" || scope.Kind == ghapi.ScopeRepo {
			// Repository runners cannot be put in a group: they are in the
			// repository's Default group (config validation rejects any
			// other name at repository scope).
			p.RunnerGroup = config.DefaultRunnerGroup
		}
		if p.OS == "" {
			p.OS = DefaultOS
		}
		if p.Arch == "" {
			p.Arch = DefaultArch
		}
		if p.Registration == "" {
			p.Registration = config.RegistrationJIT
		}
		if p.MaxConcurrentCreates <= 0 {
			p.MaxConcurrentCreates = DefaultMaxConcurrentCreates
		}
		for _, s := range cfg.Pools[i].Schedules {
			p.Schedules = append(p.Schedules, Schedule{MinIdle: s.MinIdle, Active: s.Active})
		}
		pools = append(pools, p)
	}
	return pools, errors.Join(errs...)
}

// scopeFromConfig converts a config scope (exactly one field set) to the
// GitHub client's scope.
func scopeFromConfig(s config.Scope) (ghapi.Scope, error) {
	switch s.Kind() {
	case config.ScopeEnterprise:
		return ghapi.Enterprise(s.Enterprise), nil
	case config.ScopeOrg:
		return ghapi.Org(s.Org), nil
	case config.ScopeRepo:
		return ghapi.ParseRepo(s.Repo)
	}
	if s.IsZero() {
		return ghapi.Scope{}, errors.New("no scope set; set one of enterprise, org or repo")
	}
	return ghapi.Scope{}, fmt.Errorf("scope %s sets more than one of enterprise, org and repo; keep one", s)
}

// DefaultLabels returns the labels every self-hosted runner of the pool has
// without asking: "self-hosted", its OS and its architecture.
func (p Pool) DefaultLabels() []string {
	osLabel, arch := p.OS, p.Arch
	if osLabel == "" {
		osLabel = DefaultOS
	}
	if arch == "" {
		arch = DefaultArch
	}
	return []string{"self-hosted", osLabel, arch}
}

// EffectiveLabels returns the default labels followed by the pool's custom
// labels, dropping empty labels and case-insensitive repeats (the first
// spelling is kept): the label set GitHub matches jobs against.
func (p Pool) EffectiveLabels() []string {
	all := append(p.DefaultLabels(), p.Labels...)
	seen := make(map[string]bool, len(all))
	out := make([]string, 0, len(all))
	for _, l := range all {
		k := strings.ToLower(l)
		if k == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, l)
	}
	return out
}

// MinIdleAt returns the number of idle runners the pool keeps warm at t: the
// MinIdle of the last schedule active at t, or the pool's MinIdle when none
// is. A schedule without an Active function is never active.
func (p Pool) MinIdleAt(t time.Time) int {
	minIdle := p.MinIdle
	for _, s := range p.Schedules {
		if s.Active != nil && s.Active(t) {
			minIdle = s.MinIdle
		}
	}
	return minIdle
}

// maxConcurrentCreates is MaxConcurrentCreates with the default for zero.
func (p Pool) maxConcurrentCreates() int {
	if p.MaxConcurrentCreates <= 0 {
		return DefaultMaxConcurrentCreates
	}
	return p.MaxConcurrentCreates
}
