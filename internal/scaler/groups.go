package scaler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/runnerscaler/runnerscaler/internal/config"
	"github.com/runnerscaler/runnerscaler/internal/ghapi"
)

// Runner group visibilities as GitHub spells them.
const (
	VisibilityAll      = "all"
	VisibilitySelected = "selected"
	VisibilityPrivate  = "private" // organization groups only: private repositories
)

// DefaultRunnerGroupID is the id of the "Default" runner group at every scope;
// repository runners are always in it.
const DefaultRunnerGroupID int64 = 1

// DefaultGroupReconcileInterval is how often Run puts the runner groups back
// in shape when no interval is given.
const DefaultGroupReconcileInterval = 5 * time.Minute

// ErrRunnerGroupNotFound is returned when a runner group name does not exist
// at a scope.
var ErrRunnerGroupNotFound = errors.New("runner group not found")

// AccessAPI is what the AccessCache reads from GitHub: the runner groups of a
// scope and their access lists. *ghapi.Client satisfies it.
type AccessAPI interface {
	ListRunnerGroups(ctx context.Context, s ghapi.Scope, opts ghapi.ListRunnerGroupsOptions) ([]*ghapi.RunnerGroup, error)
	ListRunnerGroupRepositories(ctx context.Context, s ghapi.Scope, groupID int64) ([]*ghapi.Repository, error)
	ListRunnerGroupOrganizations(ctx context.Context, s ghapi.Scope, groupID int64) ([]*ghapi.Organization, error)
}

// GroupWriter changes runner groups and their access lists.
type GroupWriter interface {
	CreateRunnerGroup(ctx context.Context, s ghapi.Scope, spec ghapi.RunnerGroupSpec) (*ghapi.RunnerGroup, error)
	UpdateRunnerGroup(ctx context.Context, s ghapi.Scope, groupID int64, upd ghapi.RunnerGroupUpdate) (*ghapi.RunnerGroup, error)
	SetRunnerGroupRepositories(ctx context.Context, s ghapi.Scope, groupID int64, repositoryIDs []int64) error
	SetRunnerGroupOrganizations(ctx context.Context, s ghapi.Scope, groupID int64, orgIDs []int64) error
}

// AccountResolver turns repository names and organization logins into the
// ids the access-list endpoints take.
type AccountResolver interface {
	// ListInstallationRepositories resolves "owner/name" to repository ids.
	ListInstallationRepositories(ctx context.Context, s ghapi.Scope) ([]*ghapi.Repository, error)
	// GetOrgInstallation resolves an organization login to its id (the
	// installation's account); it needs GitHub App auth.
	GetOrgInstallation(ctx context.Context, org string) (*ghapi.Installation, error)
}

// GroupsAPI is the part of the GitHub client the GroupKeeper uses.
type GroupsAPI interface {
	AccessAPI
	GroupWriter
	AccountResolver
}

var _ GroupsAPI = (*ghapi.Client)(nil)

// GroupKeeper keeps the runner groups named in config in their declared shape
// (created when missing; visibility, allows_public_repositories, workflow
// restrictions and the selected repositories or organizations set to match)
// and resolves group names to ids for JIT requests. Groups not named in
// config are never modified or deleted. It is safe for concurrent use.
type GroupKeeper struct {
	gh     GroupsAPI
	groups []config.RunnerGroup
	log    *zap.Logger

	reconcileMu sync.Mutex // one Reconcile at a time
	lookups     singleflight.Group

	mu      sync.Mutex
	ids     map[string]map[string]int64 // scope key -> lower-case group name -> id
	orgIDs  map[string]int64            // lower-case org login -> id (ids never change)
	observe func(GroupSnapshot)
	// afterPass, when set (tests), is called by Run after every pass.
	afterPass func(error)
}

// NewGroupKeeper returns a keeper for the configured groups. A nil logger
// logs nothing. It does no I/O.
func NewGroupKeeper(gh GroupsAPI, groups []config.RunnerGroup, logger *zap.Logger) *GroupKeeper {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &GroupKeeper{
		gh:     gh,
		groups: slices.Clone(groups),
		log:    logger,
		ids:    map[string]map[string]int64{},
		orgIDs: map[string]int64{},
	}
}

// GroupSnapshot is what a Reconcile pass left one scope's runner groups as:
// the scope's whole group list (as ListRunnerGroups returns it, with the
// pass's creations and updates applied) and the access lists of the
// selected groups it manages. The daemon hands it to AccessCache.Seed, so
// the cache does not read again what the keeper just read or wrote.
type GroupSnapshot struct {
	Scope  ghapi.Scope
	Groups []*ghapi.RunnerGroup
	// Changed reports that the pass wrote to a group of this scope.
	Changed bool
	// access holds the access lists the pass knows exactly, by group id;
	// stale names managed groups whose access list it does not know.
	access map[int64]accessMembers
	stale  []int64
}

// SetObserver registers fn to receive a GroupSnapshot for every scope a
// Reconcile pass listed, after the pass.
func (k *GroupKeeper) SetObserver(fn func(GroupSnapshot)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.observe = fn
}

// GroupID returns the id of the runner group name at scope. Repository scope
// and "Default" (or "") are 1 without a call; other names are looked up once
// with ListRunnerGroups and cached, and the cache is refreshed by Reconcile.
// A name missing from the cache is looked up again before
// ErrRunnerGroupNotFound is returned.
func (k *GroupKeeper) GroupID(ctx context.Context, scope ghapi.Scope, name string) (int64, error) {
	if scope.Kind == ghapi.ScopeRepo || name == "" || strings.EqualFold(name, config.DefaultRunnerGroup) {
		return DefaultRunnerGroupID, nil
	}
	key := groupScopeKey(scope)
	if id, ok := k.cachedID(key, name); ok {
		return id, nil
	}
	_, err, _ := k.lookups.Do(key, func() (any, error) {
		gs, err := k.gh.ListRunnerGroups(ctx, scope, ghapi.ListRunnerGroupsOptions{})
		if err != nil {
			return nil, err
		}
		k.storeIDs(key, gs)
		return nil, nil
	})
	if err != nil {
		return 0, fmt.Errorf("runner group %s in %s: %w", name, scope, err)
	}
	if id, ok := k.cachedID(key, name); ok {
		return id, nil
	}
	return 0, fmt.Errorf("runner group %q in %s: %w; add it to runner_groups or create it on GitHub", name, scope, ErrRunnerGroupNotFound)
}

func (k *GroupKeeper) cachedID(key, name string) (int64, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	id, ok := k.ids[key][strings.ToLower(name)]
	return id, ok
}

// storeIDs replaces the cached ids of one scope with the groups listed there.
// Inherited enterprise groups listed at an organization are skipped: the
// organization's runners cannot join them.
func (k *GroupKeeper) storeIDs(key string, gs []*ghapi.RunnerGroup) {
	m := make(map[string]int64, len(gs))
	for _, g := range gs {
		if g != nil && !g.Inherited {
			m[strings.ToLower(g.Name)] = g.ID
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ids[key] = m
}

// Run reconciles at once and then every interval (DefaultGroupReconcileInterval
// when interval <= 0) until ctx ends; failures are logged and retried on the
// next tick. It returns nil when ctx ends.
func (k *GroupKeeper) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = DefaultGroupReconcileInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		err := k.Reconcile(ctx)
		if err != nil && ctx.Err() == nil {
			k.log.Warn("runner groups not in shape; retrying on the next pass", zap.Error(err))
		}
		k.mu.Lock()
		after := k.afterPass
		k.mu.Unlock()
		if after != nil {
			after(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Reconcile puts every configured group in shape. It keeps going after a
// failure and returns every problem joined. The id cache of each scope it
// listed is refreshed.
func (k *GroupKeeper) Reconcile(ctx context.Context) error {
	k.reconcileMu.Lock()
	defer k.reconcileMu.Unlock()

	var errs []error
	snaps := map[string]*GroupSnapshot{}
	listFailed := map[string]bool{}
	for i, cg := range k.groups {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("reconcile runner groups: %w", err))
			break
		}
		scope, err := groupScopeFromConfig(cg.Scope)
		if err != nil {
			errs = append(errs, fmt.Errorf("runner_groups[%d] (%s): %w", i, cg.Name, err))
			continue
		}
		key := groupScopeKey(scope)
		if listFailed[key] {
			continue // reported once for the scope
		}
		snap, ok := snaps[key]
		if !ok {
			existing, err := k.gh.ListRunnerGroups(ctx, scope, ghapi.ListRunnerGroupsOptions{})
			if err != nil {
				listFailed[key] = true
				errs = append(errs, fmt.Errorf("reconcile runner groups of %s: %w", scope, err))
				continue
			}
			snap = &GroupSnapshot{Scope: scope, Groups: existing, access: map[int64]accessMembers{}}
			snaps[key] = snap
		}
		out, err := k.reconcileGroup(ctx, scope, cg, snap.Groups)
		if out.group != nil {
			snap.Groups = replaceGroup(snap.Groups, out.group)
			if out.access != nil {
				snap.access[out.group.ID] = *out.access
			} else {
				snap.stale = append(snap.stale, out.group.ID)
			}
		}
		snap.Changed = snap.Changed || out.wrote
		if err != nil {
			errs = append(errs, fmt.Errorf("runner group %s in %s: %w", cg.Name, scope, err))
		}
	}
	for key, snap := range snaps {
		k.storeIDs(key, snap.Groups)
	}
	k.mu.Lock()
	observe := k.observe
	k.mu.Unlock()
	if observe != nil {
		for _, snap := range snaps {
			observe(*snap)
		}
	}
	return errors.Join(errs...)
}

// replaceGroup returns gs with g in place of the group with its id, or with
// g appended.
func replaceGroup(gs []*ghapi.RunnerGroup, g *ghapi.RunnerGroup) []*ghapi.RunnerGroup {
	for i, cur := range gs {
		if cur != nil && cur.ID == g.ID {
			out := slices.Clone(gs)
			out[i] = g
			return out
		}
	}
	return append(slices.Clone(gs), g)
}

// groupOutcome is what reconcileGroup left one group as: the group (nil
// when it could not be created), its access list when known exactly (nil
// otherwise, or when the group is not "selected"), and whether it wrote.
type groupOutcome struct {
	group  *ghapi.RunnerGroup
	access *accessMembers
	wrote  bool
}

// reconcileGroup creates or fixes one group.
func (k *GroupKeeper) reconcileGroup(ctx context.Context, scope ghapi.Scope, cg config.RunnerGroup, existing []*ghapi.RunnerGroup) (groupOutcome, error) {
	want := strings.ToLower(cg.Visibility)
	if want == "" {
		want = VisibilityAll
	}
	cur := findOwnGroup(existing, cg.Name)
	if cur == nil {
		g, access, err := k.createGroup(ctx, scope, cg, want)
		return groupOutcome{group: g, access: access, wrote: g != nil}, err
	}
	out := groupOutcome{group: cur}
	log := k.log.With(zap.String("scope", scope.String()), zap.String("runner_group", cur.Name), zap.Int64("runner_group_id", cur.ID))
	var errs []error
	if upd, what := groupUpdateFor(cur, cg, want); len(what) > 0 {
		g, err := k.gh.UpdateRunnerGroup(ctx, scope, cur.ID, upd)
		if err != nil {
			errs = append(errs, err)
		} else {
			out.wrote = true
			if g != nil && g.ID == cur.ID {
				out.group = g
			} else {
				out.group = updatedGroup(cur, upd)
			}
			log.Info("runner group updated", zap.Strings("changed", what))
		}
	}
	if strings.EqualFold(out.group.Visibility, VisibilitySelected) {
		access, w, err := k.reconcileAccess(ctx, scope, cur.ID, cg)
		if err != nil {
			errs = append(errs, err)
		}
		out.access = access
		if w {
			out.wrote = true
			log.Info("runner group access list set")
		}
	}
	return out, errors.Join(errs...)
}

// updatedGroup is cur with upd applied, for an update whose response did
// not carry the group.
func updatedGroup(cur *ghapi.RunnerGroup, upd ghapi.RunnerGroupUpdate) *ghapi.RunnerGroup {
	g := *cur
	if upd.Visibility != "" {
		g.Visibility = upd.Visibility
	}
	if upd.AllowsPublicRepositories != nil {
		g.AllowsPublicRepositories = *upd.AllowsPublicRepositories
	}
	if upd.RestrictedToWorkflows != nil {
		g.RestrictedToWorkflows = *upd.RestrictedToWorkflows
		g.SelectedWorkflows = slices.Clone(upd.SelectedWorkflows)
	}
	return &g
}

// groupUpdateFor returns the update that brings cur to the configuration and
// the names of the settings it changes (none: nothing to do).
func groupUpdateFor(cur *ghapi.RunnerGroup, cg config.RunnerGroup, visibility string) (ghapi.RunnerGroupUpdate, []string) {
	// GitHub requires the name on organization groups; keep GitHub's spelling.
	upd := ghapi.RunnerGroupUpdate{Name: cur.Name}
	var what []string
	if !strings.EqualFold(cur.Visibility, visibility) {
		upd.Visibility = visibility
		what = append(what, "visibility")
	}
	if cur.AllowsPublicRepositories != cg.AllowsPublicRepositories {
		v := cg.AllowsPublicRepositories
		upd.AllowsPublicRepositories = &v
		what = append(what, "allows_public_repositories")
	}
	if cur.RestrictedToWorkflows != cg.RestrictedToWorkflows ||
		cg.RestrictedToWorkflows && !groupSameStrings(cur.SelectedWorkflows, cg.SelectedWorkflows) {
		v := cg.RestrictedToWorkflows
		upd.RestrictedToWorkflows = &v
		if v {
			upd.SelectedWorkflows = slices.Clone(cg.SelectedWorkflows)
		}
		what = append(what, "restricted_to_workflows")
	}
	return upd, what
}

// createGroup creates a missing group with its access list, and returns
// the group and, for a selected group, the access list it was given. When
// some configured members cannot be resolved the group is still created
// with the others, and the missing ones are reported.
func (k *GroupKeeper) createGroup(ctx context.Context, scope ghapi.Scope, cg config.RunnerGroup, visibility string) (*ghapi.RunnerGroup, *accessMembers, error) {
	allows, restricted := cg.AllowsPublicRepositories, cg.RestrictedToWorkflows
	spec := ghapi.RunnerGroupSpec{
		Name:                     cg.Name,
		Visibility:               visibility,
		AllowsPublicRepositories: &allows,
		RestrictedToWorkflows:    &restricted,
	}
	if restricted {
		spec.SelectedWorkflows = slices.Clone(cg.SelectedWorkflows)
	}
	var problems []error
	var members *accessMembers
	if strings.EqualFold(visibility, VisibilitySelected) {
		var (
			m       accessMembers
			missing error
			err     error
		)
		switch scope.Kind {
		case ghapi.ScopeOrg:
			m, missing, err = k.repoIDs(ctx, scope, cg.Repositories)
			spec.SelectedRepositoryIDs = m.idList()
		case ghapi.ScopeEnterprise:
			m, missing, err = k.orgIDsFor(ctx, cg.Organizations, nil)
			spec.SelectedOrganizationIDs = m.idList()
		}
		if err != nil {
			// Without the access list the group would be created empty and
			// look done; try again on the next pass.
			return nil, nil, fmt.Errorf("resolve access list before creating: %w", err)
		}
		problems = append(problems, missing)
		members = &m
	}
	g, err := k.gh.CreateRunnerGroup(ctx, scope, spec)
	if err != nil {
		return nil, nil, errors.Join(append(problems, err)...)
	}
	k.log.Info("runner group created", zap.String("scope", scope.String()), zap.String("runner_group", g.Name),
		zap.Int64("runner_group_id", g.ID), zap.String("visibility", g.Visibility))
	if !strings.EqualFold(g.Visibility, VisibilitySelected) {
		members = nil
	}
	return g, members, errors.Join(problems...)
}

// reconcileAccess sets a selected group's repositories (organization) or
// organizations (enterprise) when they differ from the configuration. It
// returns the access list the group has afterwards (nil when not known) and
// whether it wrote.
func (k *GroupKeeper) reconcileAccess(ctx context.Context, scope ghapi.Scope, groupID int64, cg config.RunnerGroup) (*accessMembers, bool, error) {
	switch scope.Kind {
	case ghapi.ScopeOrg:
		cur, err := k.gh.ListRunnerGroupRepositories(ctx, scope, groupID)
		if err != nil {
			return nil, false, err
		}
		have := newAccessMembers()
		curNames := make([]string, 0, len(cur))
		curIDs := make([]int64, 0, len(cur))
		for _, r := range cur {
			have.add(r.GetID(), r.GetFullName())
			curNames = append(curNames, strings.ToLower(r.GetFullName()))
			curIDs = append(curIDs, r.GetID())
		}
		wantNames, nameErr := normalizeRepoNames(scope.Name, cg.Repositories)
		if nameErr == nil && groupSameStrings(curNames, wantNames) {
			return &have, false, nil
		}
		want, missing, err := k.repoIDs(ctx, scope, cg.Repositories)
		if err != nil {
			return &have, false, err
		}
		ids := want.idList()
		if groupSameIDs(ids, curIDs) {
			return &have, false, missing
		}
		if err := k.gh.SetRunnerGroupRepositories(ctx, scope, groupID, ids); err != nil {
			return nil, false, errors.Join(missing, err)
		}
		return &want, true, missing
	case ghapi.ScopeEnterprise:
		cur, err := k.gh.ListRunnerGroupOrganizations(ctx, scope, groupID)
		if err != nil {
			return nil, false, err
		}
		have := newAccessMembers()
		known := make(map[string]int64, len(cur))
		curLogins := make([]string, 0, len(cur))
		curIDs := make([]int64, 0, len(cur))
		for _, o := range cur {
			have.add(o.GetID(), o.GetLogin())
			known[strings.ToLower(o.GetLogin())] = o.GetID()
			curLogins = append(curLogins, strings.ToLower(o.GetLogin()))
			curIDs = append(curIDs, o.GetID())
		}
		want := make([]string, 0, len(cg.Organizations))
		for _, o := range cg.Organizations {
			want = append(want, strings.ToLower(o))
		}
		if groupSameStrings(curLogins, want) {
			return &have, false, nil
		}
		wantM, missing, err := k.orgIDsFor(ctx, cg.Organizations, known)
		if err != nil {
			return &have, false, err
		}
		ids := wantM.idList()
		if groupSameIDs(ids, curIDs) {
			return &have, false, missing
		}
		if err := k.gh.SetRunnerGroupOrganizations(ctx, scope, groupID, ids); err != nil {
			return nil, false, errors.Join(missing, err)
		}
		return &wantM, true, missing
	}
	return nil, false, fmt.Errorf("access lists of %s: %w", scope, ghapi.ErrUnsupportedScope)
}

// repoIDs resolves configured repository names of an organization group to
// ids through the repositories the installation serving the organization can
// reach; the result lists each found repository's id and name. err is a
// failed call; missing names the repositories not found.
func (k *GroupKeeper) repoIDs(ctx context.Context, org ghapi.Scope, names []string) (found accessMembers, missing, err error) {
	found = newAccessMembers()
	want, nameErr := normalizeRepoNames(org.Name, names)
	if len(want) == 0 {
		return found, nameErr, nil
	}
	repos, err := k.gh.ListInstallationRepositories(ctx, org)
	if err != nil {
		return accessMembers{}, nil, fmt.Errorf("resolve repository ids: %w", err)
	}
	byName := make(map[string]int64, len(repos))
	for _, r := range repos {
		byName[strings.ToLower(r.GetFullName())] = r.GetID()
	}
	problems := []error{nameErr}
	for _, n := range want {
		id, ok := byName[n]
		if !ok {
			problems = append(problems, fmt.Errorf("repository %s: not found among the repositories the app (or token) can reach", n))
			continue
		}
		found.add(id, n)
	}
	return found, errors.Join(problems...), nil
}

// normalizeRepoNames turns "owner/name" or bare "name" into lower-case
// "org/name"; names owned by another account are reported.
func normalizeRepoNames(org string, names []string) ([]string, error) {
	var out []string
	var errs []error
	for _, n := range names {
		owner, name, ok := strings.Cut(n, "/")
		if !ok {
			owner, name = org, n
		}
		if !strings.EqualFold(owner, org) || name == "" || strings.Contains(name, "/") {
			errs = append(errs, fmt.Errorf("repository %q: an organization group takes repositories of %s only (owner/name or name)", n, org))
			continue
		}
		full := strings.ToLower(org + "/" + name)
		if !slices.Contains(out, full) {
			out = append(out, full)
		}
	}
	return out, errors.Join(errs...)
}

// orgIDsFor resolves organization logins to ids: from known (the group's
// current list), then the keeper's cache, then GitHub; the result lists each
// resolved organization's id and login. err is a failed call only when
// nothing could be resolved; missing names the logins not resolved.
func (k *GroupKeeper) orgIDsFor(ctx context.Context, logins []string, known map[string]int64) (found accessMembers, missing, err error) {
	found = newAccessMembers()
	var problems []error
	for _, login := range logins {
		id, ok := known[strings.ToLower(login)]
		if !ok {
			var rerr error
			id, rerr = k.orgID(ctx, login)
			if rerr != nil {
				problems = append(problems, rerr)
				continue
			}
		}
		found.add(id, login)
	}
	if len(found.ids) == 0 && len(problems) > 0 {
		return accessMembers{}, nil, errors.Join(problems...)
	}
	return found, errors.Join(problems...), nil
}

// orgID resolves an organization login to its id. ghapi has no
// GET /orgs/{org}; the id comes from the App's installation on the
// organization (App auth) or, failing that, from the owner of a repository
// the credential reaches in that organization.
func (k *GroupKeeper) orgID(ctx context.Context, login string) (int64, error) {
	lower := strings.ToLower(login)
	k.mu.Lock()
	id, ok := k.orgIDs[lower]
	k.mu.Unlock()
	if ok {
		return id, nil
	}
	inst, instErr := k.gh.GetOrgInstallation(ctx, login)
	if instErr == nil && inst.GetAccount().GetID() != 0 && strings.EqualFold(inst.GetAccount().GetLogin(), login) {
		id = inst.GetAccount().GetID()
	} else {
		repos, err := k.gh.ListInstallationRepositories(ctx, ghapi.Org(login))
		if err != nil {
			return 0, fmt.Errorf("organization %s: id unknown: %w", login, errors.Join(instErr, err))
		}
		k.mu.Lock()
		for _, r := range repos {
			if o := r.GetOwner(); o.GetID() != 0 && o.GetLogin() != "" {
				k.orgIDs[strings.ToLower(o.GetLogin())] = o.GetID()
			}
		}
		id = k.orgIDs[lower]
		k.mu.Unlock()
		if id == 0 {
			return 0, fmt.Errorf("organization %s: id unknown: no installation of the app found and no repository of it reachable", login)
		}
	}
	k.mu.Lock()
	k.orgIDs[lower] = id
	k.mu.Unlock()
	return id, nil
}

// findOwnGroup finds a group by name (case-insensitive), skipping enterprise
// groups an organization inherits.
func findOwnGroup(gs []*ghapi.RunnerGroup, name string) *ghapi.RunnerGroup {
	for _, g := range gs {
		if g != nil && !g.Inherited && strings.EqualFold(g.Name, name) {
			return g
		}
	}
	return nil
}

// groupScopeFromConfig converts a runner group's config scope; runner groups
// exist for organizations and enterprises only.
func groupScopeFromConfig(s config.Scope) (ghapi.Scope, error) {
	scope, err := scopeFromConfig(s)
	if err != nil {
		return ghapi.Scope{}, err
	}
	if scope.Kind != ghapi.ScopeOrg && scope.Kind != ghapi.ScopeEnterprise {
		return ghapi.Scope{}, fmt.Errorf("scope %s: runner groups exist for an org or an enterprise only", scope)
	}
	return scope, nil
}

// groupScopeKey is the case-folded cache key of a scope.
func groupScopeKey(s ghapi.Scope) string { return strings.ToLower(s.String()) }

// groupSameStrings compares as sets, exactly.
func groupSameStrings(a, b []string) bool {
	as, bs := slices.Clone(a), slices.Clone(b)
	slices.Sort(as)
	slices.Sort(bs)
	return slices.Equal(slices.Compact(as), slices.Compact(bs))
}

func groupSameIDs(a, b []int64) bool {
	as, bs := slices.Clone(a), slices.Clone(b)
	slices.Sort(as)
	slices.Sort(bs)
	return slices.Equal(slices.Compact(as), slices.Compact(bs))
}
