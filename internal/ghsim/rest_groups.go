package ghsim

import (
	"net/http"
	"slices"

	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

// Runner group endpoints at organization and enterprise scope
// (docs.github.com/rest/actions/self-hosted-runner-groups).

func (a *restAPI) addGroupRoutes() {
	for _, pre := range []string{"/orgs/{org}", "/enterprises/{enterprise}"} {
		g := pre + "/actions/runner-groups"
		one := g + "/{runner_group_id}"
		eps := []endpoint{
			{method: http.MethodGet, template: g, handle: (*call).listGroups},
			{method: http.MethodPost, template: g, handle: (*call).createGroup},
			{method: http.MethodGet, template: one, handle: (*call).getGroup},
			{method: http.MethodPatch, template: one, handle: (*call).updateGroup},
			{method: http.MethodDelete, template: one, handle: (*call).deleteGroup},
			{method: http.MethodGet, template: one + "/runners", handle: (*call).listGroupRunners},
			{method: http.MethodPut, template: one + "/runners", handle: (*call).setGroupRunners},
			{method: http.MethodPut, template: one + "/runners/{runner_id}", handle: (*call).addGroupRunner},
			{method: http.MethodDelete, template: one + "/runners/{runner_id}", handle: (*call).removeGroupRunner},
		}
		if pre == "/orgs/{org}" {
			eps = append(eps,
				endpoint{method: http.MethodGet, template: one + "/repositories", handle: (*call).listGroupRepos},
				endpoint{method: http.MethodPut, template: one + "/repositories", handle: (*call).setGroupRepos},
				endpoint{method: http.MethodPut, template: one + "/repositories/{repository_id}", handle: (*call).addGroupRepo},
				endpoint{method: http.MethodDelete, template: one + "/repositories/{repository_id}", handle: (*call).removeGroupRepo},
			)
		} else {
			eps = append(eps,
				endpoint{method: http.MethodGet, template: one + "/organizations", handle: (*call).listGroupOrgs},
				endpoint{method: http.MethodPut, template: one + "/organizations", handle: (*call).setGroupOrgs},
				endpoint{method: http.MethodPut, template: one + "/organizations/{org_id}", handle: (*call).addGroupOrg},
				endpoint{method: http.MethodDelete, template: one + "/organizations/{org_id}", handle: (*call).removeGroupOrg},
			)
		}
		for _, e := range eps {
			e.docs = docsGroups
			a.add(e)
		}
	}
}

// groupJSON renders a group as its scope's schema wants it.
func (c *call) groupJSON(g world.Group) any {
	if c.scope.Kind == world.Enterprise {
		return c.entGroupJSON(c.scope.Name, g)
	}
	return c.orgGroupJSON(c.scope.Name, g)
}

// groupParam reads {runner_group_id}.
func (c *call) groupParam() (int64, bool) { return c.intParam("runner_group_id") }

// listGroups lists the groups of the scope (an org also sees the enterprise
// groups shared with it, inherited), filtered by visible_to_repository (org)
// or visible_to_organization (enterprise).
func (c *call) listGroups() reply {
	w := c.a.s.world
	all, err := w.Groups(c.scope)
	if err != nil {
		return c.worldErr(err)
	}
	q := c.r.URL.Query()
	switch {
	case c.scope.Kind == world.Org && q.Get("visible_to_repository") != "":
		repo, ok := w.Repo(c.scope.Name + "/" + q.Get("visible_to_repository"))
		all = slices.DeleteFunc(all, func(g world.Group) bool { return !ok || !c.groupAdmitsRepo(g, repo) })
	case c.scope.Kind == world.Enterprise && q.Get("visible_to_organization") != "":
		org, ok := w.Org(q.Get("visible_to_organization"))
		all = slices.DeleteFunc(all, func(g world.Group) bool { return !ok || !groupServesOrg(g, org.ID) })
	}
	page, link := paginate(c, all)
	groups := make([]any, len(page))
	for i, g := range page {
		groups[i] = c.groupJSON(g)
	}
	return c.list(map[string]any{"total_count": len(all), "runner_groups": groups}, link)
}

// groupAdmitsRepo is whether repo may use group g of its org (or, for an
// inherited enterprise group, whether the group is shared with the org).
func (c *call) groupAdmitsRepo(g world.Group, repo world.Repository) bool {
	if !repo.Private && !g.AllowsPublicRepositories {
		return false
	}
	if g.Inherited {
		return groupServesOrg(g, repo.OwnerID)
	}
	switch g.Visibility {
	case world.VisibilityAll:
		return true
	case world.VisibilitySelected:
		return slices.Contains(g.SelectedRepositoryIDs, repo.ID)
	case world.VisibilityPrivate:
		return repo.Private
	}
	return false
}

func groupServesOrg(g world.Group, orgID int64) bool {
	return g.Visibility == world.VisibilityAll ||
		g.Visibility == world.VisibilitySelected && slices.Contains(g.SelectedOrganizationIDs, orgID)
}

// groupBody is the body of POST and PATCH .../runner-groups at the call's scope.
func (c *call) groupBody(create bool) []field {
	vis := []string{world.VisibilitySelected, world.VisibilityAll}
	if c.scope.Kind == world.Org {
		vis = append(vis, world.VisibilityPrivate)
	}
	fs := []field{
		{name: "name", typ: fString, required: create || c.scope.Kind == world.Org},
		{name: "visibility", typ: fString, enum: vis},
		{name: "allows_public_repositories", typ: fBool},
		{name: "restricted_to_workflows", typ: fBool},
		{name: "selected_workflows", typ: fStrings},
		{name: "network_configuration_id", typ: fString, nullable: !create},
	}
	if create {
		fs = append(fs, field{name: "runners", typ: fInts})
		if c.scope.Kind == world.Org {
			fs = append(fs, field{name: "selected_repository_ids", typ: fInts})
		} else {
			fs = append(fs, field{name: "selected_organization_ids", typ: fInts})
		}
	}
	return fs
}

func (c *call) createGroup() reply {
	b, err := decodeBody(c.r, c.groupBody(true))
	if err != nil {
		return c.badBody(err)
	}
	in := world.GroupInput{
		Name: b.str("name"), Visibility: b.str("visibility"),
		AllowsPublicRepositories: b.boolPtr("allows_public_repositories"),
		RestrictedToWorkflows:    b.boolPtr("restricted_to_workflows"),
		SelectedWorkflows:        b.strings("selected_workflows"),
		Runners:                  b.ints("runners"),
	}
	if c.scope.Kind == world.Org {
		in.SelectedRepositoryIDs = b.ints("selected_repository_ids")
	} else {
		in.SelectedOrganizationIDs = b.ints("selected_organization_ids")
	}
	g, err := c.a.s.world.CreateGroup(c.scope, in)
	if err != nil {
		return c.worldErr(err)
	}
	return c.json(http.StatusCreated, c.groupJSON(g))
}

func (c *call) getGroup() reply {
	id, ok := c.groupParam()
	if !ok {
		return c.notFound()
	}
	g, err := c.a.s.world.Group(c.scope, id)
	if err != nil {
		return c.worldErr(err)
	}
	return c.json(http.StatusOK, c.groupJSON(g))
}

func (c *call) updateGroup() reply {
	id, ok := c.groupParam()
	if !ok {
		return c.notFound()
	}
	b, err := decodeBody(c.r, c.groupBody(false))
	if err != nil {
		return c.badBody(err)
	}
	g, err := c.a.s.world.UpdateGroup(c.scope, id, world.GroupInput{
		Name: b.str("name"), Visibility: b.str("visibility"),
		AllowsPublicRepositories: b.boolPtr("allows_public_repositories"),
		RestrictedToWorkflows:    b.boolPtr("restricted_to_workflows"),
		SelectedWorkflows:        b.strings("selected_workflows"),
	})
	if err != nil {
		return c.worldErr(err)
	}
	return c.json(http.StatusOK, c.groupJSON(g))
}

func (c *call) deleteGroup() reply {
	id, ok := c.groupParam()
	if !ok {
		return c.notFound()
	}
	return c.done(c.a.s.world.DeleteGroup(c.scope, id))
}

// done answers 204, or the world's error.
func (c *call) done(err error) reply {
	if err != nil {
		return c.worldErr(err)
	}
	return c.noContent()
}

// ---- runners in a group ----

func (c *call) listGroupRunners() reply {
	id, ok := c.groupParam()
	if !ok {
		return c.notFound()
	}
	all, err := c.a.s.world.GroupRunners(c.scope, id)
	if err != nil {
		return c.worldErr(err)
	}
	page, link := paginate(c, all)
	return c.list(runnerListJSON{TotalCount: len(all), Runners: c.runnersJSON(page)}, link)
}

func (c *call) setGroupRunners() reply {
	id, ok := c.groupParam()
	if !ok {
		return c.notFound()
	}
	b, err := decodeBody(c.r, []field{{name: "runners", typ: fInts, required: true}})
	if err != nil {
		return c.badBody(err)
	}
	return c.done(c.a.s.world.SetGroupRunners(c.scope, id, b.ints("runners")))
}

// member reads {runner_group_id} and the member id parameter.
func (c *call) member(param string) (group, member int64, ok bool) {
	group, ok1 := c.groupParam()
	member, ok2 := c.intParam(param)
	return group, member, ok1 && ok2
}

func (c *call) addGroupRunner() reply {
	g, r, ok := c.member("runner_id")
	if !ok {
		return c.notFound()
	}
	return c.done(c.a.s.world.AddGroupRunner(c.scope, g, r))
}

func (c *call) removeGroupRunner() reply {
	g, r, ok := c.member("runner_id")
	if !ok {
		return c.notFound()
	}
	return c.done(c.a.s.world.RemoveGroupRunner(c.scope, g, r))
}

// ---- repository access (organization groups) ----

func (c *call) listGroupRepos() reply {
	id, ok := c.groupParam()
	if !ok {
		return c.notFound()
	}
	all, err := c.a.s.world.GroupRepositories(c.scope, id)
	if err != nil {
		return c.worldErr(err)
	}
	page, link := paginate(c, all)
	repos := make([]any, len(page))
	for i, r := range page {
		repos[i] = c.repoJSON(r, false)
	}
	return c.list(map[string]any{"total_count": len(all), "repositories": repos}, link)
}

func (c *call) setGroupRepos() reply {
	id, ok := c.groupParam()
	if !ok {
		return c.notFound()
	}
	b, err := decodeBody(c.r, []field{{name: "selected_repository_ids", typ: fInts, required: true}})
	if err != nil {
		return c.badBody(err)
	}
	return c.done(c.a.s.world.SetGroupRepositories(c.scope, id, b.ints("selected_repository_ids")))
}

func (c *call) addGroupRepo() reply {
	g, r, ok := c.member("repository_id")
	if !ok {
		return c.notFound()
	}
	return c.done(c.a.s.world.AddGroupRepository(c.scope, g, r))
}

func (c *call) removeGroupRepo() reply {
	g, r, ok := c.member("repository_id")
	if !ok {
		return c.notFound()
	}
	return c.done(c.a.s.world.RemoveGroupRepository(c.scope, g, r))
}

// ---- organization access (enterprise groups) ----

func (c *call) listGroupOrgs() reply {
	id, ok := c.groupParam()
	if !ok {
		return c.notFound()
	}
	all, err := c.a.s.world.GroupOrganizations(c.scope, id)
	if err != nil {
		return c.worldErr(err)
	}
	page, link := paginate(c, all)
	orgs := make([]any, len(page))
	for i, o := range page {
		orgs[i] = c.orgSimple(o)
	}
	return c.list(map[string]any{"total_count": len(all), "organizations": orgs}, link)
}

func (c *call) setGroupOrgs() reply {
	id, ok := c.groupParam()
	if !ok {
		return c.notFound()
	}
	b, err := decodeBody(c.r, []field{{name: "selected_organization_ids", typ: fInts, required: true}})
	if err != nil {
		return c.badBody(err)
	}
	return c.done(c.a.s.world.SetGroupOrganizations(c.scope, id, b.ints("selected_organization_ids")))
}

func (c *call) addGroupOrg() reply {
	g, o, ok := c.member("org_id")
	if !ok {
		return c.notFound()
	}
	return c.done(c.a.s.world.AddGroupOrganization(c.scope, g, o))
}

func (c *call) removeGroupOrg() reply {
	g, o, ok := c.member("org_id")
	if !ok {
		return c.notFound()
	}
	return c.done(c.a.s.world.RemoveGroupOrganization(c.scope, g, o))
}
