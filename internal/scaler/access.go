package scaler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/runnerscaler/runnerscaler/internal/config"
	"github.com/runnerscaler/runnerscaler/internal/ghapi"
)

// DefaultAccessTTL is how long the AccessCache trusts a runner group's
// settings and access list before reading them again.
const DefaultAccessTTL = 5 * time.Minute

// defaultAccessFetchTimeout bounds one fetch made on behalf of MayUse, which
// has no context of its own.
const defaultAccessFetchTimeout = 30 * time.Second

// AccessOption configures an AccessCache.
type AccessOption func(*AccessCache)

// WithAccessTTL sets how long fetched groups and access lists are used.
func WithAccessTTL(d time.Duration) AccessOption {
	return func(c *AccessCache) {
		if d > 0 {
			c.ttl = d
		}
	}
}

// WithAccessClock sets the time source (tests).
func WithAccessClock(now func() time.Time) AccessOption {
	return func(c *AccessCache) {
		if now != nil {
			c.now = now
		}
	}
}

// WithAccessFetchTimeout bounds the GitHub calls MayUse makes on a miss.
func WithAccessFetchTimeout(d time.Duration) AccessOption {
	return func(c *AccessCache) {
		if d > 0 {
			c.fetchTimeout = d
		}
	}
}

// WithAccessLogger sets the logger; the default logs nothing.
func WithAccessLogger(l *zap.Logger) AccessOption {
	return func(c *AccessCache) {
		if l != nil {
			c.log = l
		}
	}
}

// AccessCache answers whether a repository may use a pool's runner group, as
// GitHub decides it, from cached copies of the groups of each scope and of
// the access lists of "selected" groups. Each is fetched once per TTL (and
// again after Invalidate, called on installation_repositories webhooks and
// when the GroupKeeper changed a group), so matching a job makes no GitHub
// call in the steady state. Failed fetches are not cached. It is safe for
// concurrent use; concurrent misses of one entry share one fetch.
//
// The rules:
//   - repository pools: always (their runners are the repository's own);
//   - organization pools: the pool's group among the org's own groups;
//     public repositories only with allows_public_repositories; visibility
//     "all" admits every repository of the org, "private" the private ones,
//     "selected" those on the group's repository list;
//   - enterprise pools: the enterprise group must be shared with the
//     repository's organization (visibility "all", or the org on the
//     group's organization list, compared by login, so no org id is
//     needed); public repositories only with allows_public_repositories.
type AccessCache struct {
	gh           AccessAPI
	log          *zap.Logger
	ttl          time.Duration
	fetchTimeout time.Duration
	now          func() time.Time
	flights      singleflight.Group

	mu      sync.Mutex
	gen     uint64                   // bumped by Invalidate; fetches from an older generation are not stored
	groups  map[string]accessGroups  // scope key -> the scope's groups
	members map[string]accessMembers // scope key + group id -> access list
}

// accessGroups is the cached group list of one scope.
type accessGroups struct {
	list []*ghapi.RunnerGroup
	at   time.Time
}

// accessMembers is the cached access list of one selected group: repository
// ids and lower-case full names (org groups) or lower-case org logins
// (enterprise groups).
type accessMembers struct {
	ids   map[int64]bool
	names map[string]bool
	at    time.Time
	order []int64 // ids in the order added
}

func newAccessMembers() accessMembers {
	return accessMembers{ids: map[int64]bool{}, names: map[string]bool{}}
}

// add records a member by id and name (full name or login, any case).
func (m *accessMembers) add(id int64, name string) {
	if !m.ids[id] {
		m.order = append(m.order, id)
	}
	m.ids[id] = true
	if name != "" {
		m.names[strings.ToLower(name)] = true
	}
}

// idList returns the member ids in the order added (never nil: GitHub
// takes [] for "none").
func (m accessMembers) idList() []int64 {
	if m.order == nil {
		return []int64{}
	}
	return slices.Clone(m.order)
}

var _ AccessChecker = (*AccessCache)(nil)

// NewAccessCache returns an empty cache reading from gh. It does no I/O.
func NewAccessCache(gh AccessAPI, opts ...AccessOption) *AccessCache {
	c := &AccessCache{
		gh:           gh,
		log:          zap.NewNop(),
		ttl:          DefaultAccessTTL,
		fetchTimeout: defaultAccessFetchTimeout,
		now:          time.Now,
		groups:       map[string]accessGroups{},
		members:      map[string]accessMembers{},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Invalidate drops everything cached; the next question fetches again.
func (c *AccessCache) Invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.groups = map[string]accessGroups{}
	c.members = map[string]accessMembers{}
}

// Seed stores what a GroupKeeper pass left a scope's groups as (wire it with
// GroupKeeper.SetObserver): the scope's group list and the access lists the
// pass knows replace the cached ones; cached access lists of groups the pass
// manages but could not read are dropped. Fetches in flight when Seed is
// called do not overwrite it.
func (c *AccessCache) Seed(s GroupSnapshot) {
	key := groupScopeKey(s.Scope)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.groups[key] = accessGroups{list: slices.Clone(s.Groups), at: now}
	for id, m := range s.access {
		m.at = now
		c.members[key+"#"+strconv.FormatInt(id, 10)] = m
	}
	for _, id := range s.stale {
		delete(c.members, key+"#"+strconv.FormatInt(id, 10))
	}
}

// MayUse implements AccessChecker. On a cache miss it fetches with a
// deadline of its own; (false, err) means the answer is not known.
func (c *AccessCache) MayUse(pool Pool, repo RepoRef) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.fetchTimeout)
	defer cancel()
	return c.MayUseContext(ctx, pool, repo)
}

// MayUseContext is MayUse with the caller's context for fetches.
func (c *AccessCache) MayUseContext(ctx context.Context, pool Pool, repo RepoRef) (bool, error) {
	scope := pool.Scope
	switch scope.Kind {
	case ghapi.ScopeRepo:
		return true, nil
	case ghapi.ScopeOrg, ghapi.ScopeEnterprise:
	default:
		return false, fmt.Errorf("pool %s: scope %s: %w", pool.Name, scope, ghapi.ErrUnsupportedScope)
	}
	owner := accessRepoOwner(repo)
	if scope.Kind == ghapi.ScopeOrg && owner != "" && !strings.EqualFold(owner, scope.Name) {
		return false, nil // an org's groups serve that org's repositories only
	}
	g, err := c.group(ctx, scope, pool.RunnerGroup)
	if err != nil {
		return false, fmt.Errorf("pool %s: %w", pool.Name, err)
	}
	if !repo.Private && !g.AllowsPublicRepositories {
		return false, nil
	}
	switch strings.ToLower(g.Visibility) {
	case VisibilityAll:
		return true, nil
	case VisibilityPrivate:
		return scope.Kind == ghapi.ScopeOrg && repo.Private, nil
	case VisibilitySelected:
		m, err := c.accessList(ctx, scope, g.ID)
		if err != nil {
			return false, fmt.Errorf("pool %s: %w", pool.Name, err)
		}
		if scope.Kind == ghapi.ScopeEnterprise {
			return owner != "" && m.names[strings.ToLower(owner)], nil
		}
		return repo.ID != 0 && m.ids[repo.ID] || repo.FullName != "" && m.names[strings.ToLower(repo.FullName)], nil
	}
	return false, fmt.Errorf("pool %s: runner group %s in %s has visibility %q, which this version does not understand", pool.Name, g.Name, scope, g.Visibility)
}

// Warm fetches the groups and access lists the pools need, so the first
// jobs are matched from the cache. Every failure is returned joined.
func (c *AccessCache) Warm(ctx context.Context, pools []Pool) error {
	var errs []error
	for _, p := range pools {
		if p.Scope.Kind == ghapi.ScopeRepo {
			continue
		}
		g, err := c.group(ctx, p.Scope, p.RunnerGroup)
		if err != nil {
			errs = append(errs, fmt.Errorf("pool %s: %w", p.Name, err))
			continue
		}
		if strings.EqualFold(g.Visibility, VisibilitySelected) {
			if _, err := c.accessList(ctx, p.Scope, g.ID); err != nil {
				errs = append(errs, fmt.Errorf("pool %s: %w", p.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// group returns the named group of scope (an org's own groups only; "" is
// "Default") from the cached group list, fetching the list when stale.
func (c *AccessCache) group(ctx context.Context, scope ghapi.Scope, name string) (*ghapi.RunnerGroup, error) {
	if name == "" {
		name = config.DefaultRunnerGroup
	}
	key := groupScopeKey(scope)
	c.mu.Lock()
	e, ok := c.groups[key]
	gen := c.gen
	c.mu.Unlock()
	if !ok || !c.fresh(e.at) {
		v, err, _ := c.flights.Do("groups|"+strconv.FormatUint(gen, 10)+"|"+key, func() (any, error) {
			// A flight that ended between our look and this one stored it.
			c.mu.Lock()
			e, ok := c.groups[key]
			c.mu.Unlock()
			if ok && c.fresh(e.at) {
				return e, nil
			}
			list, err := c.gh.ListRunnerGroups(ctx, scope, ghapi.ListRunnerGroupsOptions{})
			if err != nil {
				return nil, err
			}
			e = accessGroups{list: list, at: c.now()}
			c.mu.Lock()
			if c.gen == gen {
				c.groups[key] = e
			}
			c.mu.Unlock()
			return e, nil
		})
		if err != nil {
			return nil, fmt.Errorf("runner groups of %s: access unknown: %w", scope, err)
		}
		e = v.(accessGroups)
	}
	g := findOwnGroup(e.list, name)
	if g == nil {
		return nil, fmt.Errorf("runner group %q in %s: %w", name, scope, ErrRunnerGroupNotFound)
	}
	return g, nil
}

// accessList returns the access list of a selected group, fetching it when
// stale.
func (c *AccessCache) accessList(ctx context.Context, scope ghapi.Scope, groupID int64) (accessMembers, error) {
	key := groupScopeKey(scope) + "#" + strconv.FormatInt(groupID, 10)
	c.mu.Lock()
	m, ok := c.members[key]
	gen := c.gen
	c.mu.Unlock()
	if ok && c.fresh(m.at) {
		return m, nil
	}
	v, err, _ := c.flights.Do("members|"+strconv.FormatUint(gen, 10)+"|"+key, func() (any, error) {
		c.mu.Lock()
		m, ok := c.members[key]
		c.mu.Unlock()
		if ok && c.fresh(m.at) {
			return m, nil
		}
		m = newAccessMembers()
		if scope.Kind == ghapi.ScopeEnterprise {
			orgs, err := c.gh.ListRunnerGroupOrganizations(ctx, scope, groupID)
			if err != nil {
				return nil, err
			}
			for _, o := range orgs {
				m.add(o.GetID(), o.GetLogin())
			}
		} else {
			repos, err := c.gh.ListRunnerGroupRepositories(ctx, scope, groupID)
			if err != nil {
				return nil, err
			}
			for _, r := range repos {
				m.add(r.GetID(), r.GetFullName())
			}
		}
		m.at = c.now()
		c.mu.Lock()
		if c.gen == gen {
			c.members[key] = m
		}
		c.mu.Unlock()
		c.log.Debug("runner group access list fetched", zap.String("scope", scope.String()),
			zap.Int64("runner_group_id", groupID), zap.Int("members", len(m.ids)))
		return m, nil
	})
	if err != nil {
		return accessMembers{}, fmt.Errorf("access list of runner group %d in %s: access unknown: %w", groupID, scope, err)
	}
	return v.(accessMembers), nil
}

func (c *AccessCache) fresh(at time.Time) bool { return c.now().Sub(at) < c.ttl }

// accessRepoOwner is the repository's owner, from Owner or else FullName.
func accessRepoOwner(r RepoRef) string {
	if r.Owner != "" {
		return r.Owner
	}
	owner, _, _ := strings.Cut(r.FullName, "/")
	return owner
}
