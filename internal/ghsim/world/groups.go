package world

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// GroupInput creates or updates a group; nil pointers and nil lists leave a
// setting as it is on update.
type GroupInput struct {
	Name                     string
	Visibility               string
	AllowsPublicRepositories *bool
	RestrictedToWorkflows    *bool
	SelectedWorkflows        []string
	SelectedRepositoryIDs    []int64
	SelectedOrganizationIDs  []int64
	Runners                  []int64
}

func (w *World) groupFor(s Scope, id int64) *Group {
	return w.groups[groupKey{w.canonical(s), id}]
}

func groupScopeOK(s Scope) error {
	if s.Kind != Org && s.Kind != Enterprise {
		return fmt.Errorf("runner groups exist for organizations and enterprises: %w", ErrNotFound)
	}
	return nil
}

// Groups lists the groups of an org or the enterprise by id. An org also
// sees the enterprise groups shared with it, marked Inherited.
func (w *World) Groups(s Scope) ([]Group, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := groupScopeOK(s); err != nil {
		return nil, err
	}
	if !w.scopeExists(s) {
		return nil, fmt.Errorf("%s: %w", s, ErrNotFound)
	}
	s = w.canonical(s)
	var out []Group
	for k, g := range w.groups {
		if k.scope == s {
			out = append(out, cloneGroup(g))
		}
	}
	if s.Kind == Org {
		org := w.orgs[strings.ToLower(s.Name)]
		for k, g := range w.groups {
			// The enterprise's Default group is not listed: it would clash
			// with the org's own group id 1. Its runners still serve the org.
			if k.scope.Kind == Enterprise && !g.Default && w.enterpriseGroupServesOrg(g, org.ID) {
				c := cloneGroup(g)
				c.Inherited = true
				out = append(out, c)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Inherited != out[j].Inherited {
			return !out[i].Inherited
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Group returns one group of an org or the enterprise.
func (w *World) Group(s Scope, id int64) (Group, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	g := w.groupFor(s, id)
	if g == nil {
		return Group{}, fmt.Errorf("runner group %d in %s: %w", id, s, ErrNotFound)
	}
	return cloneGroup(g), nil
}

func cloneGroup(g *Group) Group {
	c := *g
	c.SelectedWorkflows = slices.Clone(g.SelectedWorkflows)
	c.SelectedRepositoryIDs = slices.Clone(g.SelectedRepositoryIDs)
	c.SelectedOrganizationIDs = slices.Clone(g.SelectedOrganizationIDs)
	return c
}

func validVisibility(s Scope, v string) bool {
	switch v {
	case VisibilityAll, VisibilitySelected:
		return true
	case VisibilityPrivate:
		return s.Kind == Org
	}
	return false
}

// CreateGroup creates a group; a name in use (case-insensitive) is ErrConflict.
func (w *World) CreateGroup(s Scope, in GroupInput) (Group, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := groupScopeOK(s); err != nil {
		return Group{}, err
	}
	if !w.scopeExists(s) {
		return Group{}, fmt.Errorf("%s: %w", s, ErrNotFound)
	}
	s = w.canonical(s)
	if in.Name == "" {
		return Group{}, fmt.Errorf("group name is empty: %w", ErrValidation)
	}
	for k, g := range w.groups {
		if k.scope == s && strings.EqualFold(g.Name, in.Name) {
			return Group{}, fmt.Errorf("runner group %s exists in %s: %w", in.Name, s, ErrConflict)
		}
	}
	if in.Visibility == "" {
		in.Visibility = VisibilityAll
	}
	if !validVisibility(s, in.Visibility) {
		return Group{}, fmt.Errorf("visibility %q: %w", in.Visibility, ErrValidation)
	}
	w.nextGroupID++
	g := &Group{ID: w.nextGroupID, Scope: s, Name: in.Name, Visibility: in.Visibility}
	if err := w.applyGroup(g, in); err != nil {
		w.nextGroupID--
		return Group{}, err
	}
	w.groups[groupKey{s, g.ID}] = g
	for _, rid := range in.Runners {
		if r, ok := w.runners[rid]; ok && r.Scope == s {
			r.GroupID = g.ID
		}
	}
	return cloneGroup(g), nil
}

func (w *World) applyGroup(g *Group, in GroupInput) error {
	if in.AllowsPublicRepositories != nil {
		g.AllowsPublicRepositories = *in.AllowsPublicRepositories
	}
	if in.RestrictedToWorkflows != nil {
		g.RestrictedToWorkflows = *in.RestrictedToWorkflows
	}
	if in.SelectedWorkflows != nil {
		g.SelectedWorkflows = slices.Clone(in.SelectedWorkflows)
	}
	if in.SelectedRepositoryIDs != nil {
		if err := w.checkRepos(g.Scope, in.SelectedRepositoryIDs); err != nil {
			return err
		}
		g.SelectedRepositoryIDs = dedupe(in.SelectedRepositoryIDs)
	}
	if in.SelectedOrganizationIDs != nil {
		if err := w.checkOrgs(in.SelectedOrganizationIDs); err != nil {
			return err
		}
		g.SelectedOrganizationIDs = dedupe(in.SelectedOrganizationIDs)
	}
	return nil
}

func (w *World) checkRepos(s Scope, ids []int64) error {
	if s.Kind != Org && len(ids) > 0 {
		return fmt.Errorf("repository access is for organization groups: %w", ErrValidation)
	}
	for _, id := range ids {
		r := w.repoByID(id)
		if r == nil || !strings.EqualFold(r.Owner, s.Name) {
			return fmt.Errorf("repository %d in %s: %w", id, s, ErrNotFound)
		}
	}
	return nil
}

func (w *World) checkOrgs(ids []int64) error {
	for _, id := range ids {
		found := false
		for _, o := range w.orgs {
			found = found || o.ID == id
		}
		if !found {
			return fmt.Errorf("organization %d: %w", id, ErrNotFound)
		}
	}
	return nil
}

func dedupe(ids []int64) []int64 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// UpdateGroup changes a group's settings.
func (w *World) UpdateGroup(s Scope, id int64, in GroupInput) (Group, error) {
	w.mu.Lock()
	g := w.groupFor(s, id)
	if g == nil {
		w.mu.Unlock()
		return Group{}, fmt.Errorf("runner group %d in %s: %w", id, s, ErrNotFound)
	}
	if in.Name != "" && !strings.EqualFold(in.Name, g.Name) {
		if g.Default {
			w.mu.Unlock()
			return Group{}, fmt.Errorf("the Default group cannot be renamed: %w", ErrValidation)
		}
		g.Name = in.Name
	}
	if in.Visibility != "" {
		if !validVisibility(g.Scope, in.Visibility) {
			w.mu.Unlock()
			return Group{}, fmt.Errorf("visibility %q: %w", in.Visibility, ErrValidation)
		}
		g.Visibility = in.Visibility
	}
	err := w.applyGroup(g, GroupInput{AllowsPublicRepositories: in.AllowsPublicRepositories,
		RestrictedToWorkflows: in.RestrictedToWorkflows, SelectedWorkflows: in.SelectedWorkflows})
	out := cloneGroup(g)
	events := w.assign()
	w.mu.Unlock()
	w.emit(events)
	return out, err
}

// DeleteGroup deletes a group; its runners move to the Default group.
func (w *World) DeleteGroup(s Scope, id int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	g := w.groupFor(s, id)
	if g == nil {
		return fmt.Errorf("runner group %d in %s: %w", id, s, ErrNotFound)
	}
	if g.Default {
		return fmt.Errorf("the Default group cannot be deleted: %w", ErrValidation)
	}
	for _, r := range w.runners {
		if r.Scope == g.Scope && r.GroupID == id {
			r.GroupID = DefaultGroupID
		}
	}
	delete(w.groups, groupKey{g.Scope, id})
	return nil
}

// GroupRepositories lists an org group's selected repositories.
func (w *World) GroupRepositories(s Scope, id int64) ([]Repository, error) {
	g, err := w.Group(s, id)
	if err != nil {
		return nil, err
	}
	var out []Repository
	for _, rid := range g.SelectedRepositoryIDs {
		if r, ok := w.RepoByID(rid); ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// GroupOrganizations lists an enterprise group's selected organizations.
func (w *World) GroupOrganizations(s Scope, id int64) ([]Organization, error) {
	g, err := w.Group(s, id)
	if err != nil {
		return nil, err
	}
	var out []Organization
	for _, oid := range g.SelectedOrganizationIDs {
		if o, ok := w.OrgByID(oid); ok {
			out = append(out, o)
		}
	}
	return out, nil
}

// SetGroupRepositories replaces an org group's repository list.
func (w *World) SetGroupRepositories(s Scope, id int64, repoIDs []int64) error {
	return w.changeGroup(s, id, func(g *Group) error {
		if err := w.checkRepos(g.Scope, repoIDs); err != nil {
			return err
		}
		g.SelectedRepositoryIDs = dedupe(repoIDs)
		return nil
	})
}

// AddGroupRepository adds a repository to an org group's list.
func (w *World) AddGroupRepository(s Scope, id, repoID int64) error {
	return w.changeGroup(s, id, func(g *Group) error {
		if err := w.checkRepos(g.Scope, []int64{repoID}); err != nil {
			return err
		}
		g.SelectedRepositoryIDs = dedupe(append(g.SelectedRepositoryIDs, repoID))
		return nil
	})
}

// RemoveGroupRepository removes a repository from an org group's list.
func (w *World) RemoveGroupRepository(s Scope, id, repoID int64) error {
	return w.changeGroup(s, id, func(g *Group) error {
		if err := w.checkRepos(g.Scope, []int64{repoID}); err != nil {
			return err
		}
		g.SelectedRepositoryIDs = slices.DeleteFunc(g.SelectedRepositoryIDs, func(v int64) bool { return v == repoID })
		return nil
	})
}

// SetGroupOrganizations replaces an enterprise group's organization list.
func (w *World) SetGroupOrganizations(s Scope, id int64, orgIDs []int64) error {
	return w.changeGroup(s, id, func(g *Group) error {
		if err := w.checkOrgs(orgIDs); err != nil {
			return err
		}
		g.SelectedOrganizationIDs = dedupe(orgIDs)
		return nil
	})
}

// AddGroupOrganization adds an organization to an enterprise group's list.
func (w *World) AddGroupOrganization(s Scope, id, orgID int64) error {
	return w.changeGroup(s, id, func(g *Group) error {
		if err := w.checkOrgs([]int64{orgID}); err != nil {
			return err
		}
		g.SelectedOrganizationIDs = dedupe(append(g.SelectedOrganizationIDs, orgID))
		return nil
	})
}

// RemoveGroupOrganization removes an organization from an enterprise group's list.
func (w *World) RemoveGroupOrganization(s Scope, id, orgID int64) error {
	return w.changeGroup(s, id, func(g *Group) error {
		if err := w.checkOrgs([]int64{orgID}); err != nil {
			return err
		}
		g.SelectedOrganizationIDs = slices.DeleteFunc(g.SelectedOrganizationIDs, func(v int64) bool { return v == orgID })
		return nil
	})
}

// GroupRunners lists the runners in a group.
func (w *World) GroupRunners(s Scope, id int64) ([]Runner, error) {
	g, err := w.Group(s, id)
	if err != nil {
		return nil, err
	}
	var out []Runner
	for _, r := range w.Runners(g.Scope) {
		if r.GroupID == id {
			out = append(out, r)
		}
	}
	return out, nil
}

// SetGroupRunners makes exactly runnerIDs the group's runners; runners taken
// out go to the Default group.
func (w *World) SetGroupRunners(s Scope, id int64, runnerIDs []int64) error {
	return w.changeGroup(s, id, func(g *Group) error {
		for _, rid := range runnerIDs {
			if r, ok := w.runners[rid]; !ok || r.Scope != g.Scope {
				return fmt.Errorf("runner %d in %s: %w", rid, g.Scope, ErrNotFound)
			}
		}
		for _, r := range w.runners {
			if r.Scope == g.Scope && r.GroupID == id && !slices.Contains(runnerIDs, r.ID) {
				r.GroupID = DefaultGroupID
			}
		}
		for _, rid := range runnerIDs {
			w.runners[rid].GroupID = id
		}
		return nil
	})
}

// AddGroupRunner moves a runner into the group.
func (w *World) AddGroupRunner(s Scope, id, runnerID int64) error {
	return w.changeGroup(s, id, func(g *Group) error {
		r, ok := w.runners[runnerID]
		if !ok || r.Scope != g.Scope {
			return fmt.Errorf("runner %d in %s: %w", runnerID, g.Scope, ErrNotFound)
		}
		r.GroupID = id
		return nil
	})
}

// RemoveGroupRunner moves a runner out of the group to the Default group.
func (w *World) RemoveGroupRunner(s Scope, id, runnerID int64) error {
	return w.changeGroup(s, id, func(g *Group) error {
		r, ok := w.runners[runnerID]
		if !ok || r.Scope != g.Scope || r.GroupID != id {
			return fmt.Errorf("runner %d in group %d: %w", runnerID, id, ErrNotFound)
		}
		r.GroupID = DefaultGroupID
		return nil
	})
}

func (w *World) changeGroup(s Scope, id int64, change func(*Group) error) error {
	w.mu.Lock()
	g := w.groupFor(s, id)
	if g == nil {
		w.mu.Unlock()
		return fmt.Errorf("runner group %d in %s: %w", id, s, ErrNotFound)
	}
	err := change(g)
	var events []Event
	if err == nil {
		events = w.assign()
	}
	w.mu.Unlock()
	w.emit(events)
	return err
}
