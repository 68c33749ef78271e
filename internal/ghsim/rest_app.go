package ghsim

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

// The App's own endpoints (App JWT), the installation's repositories,
// workflow jobs and rate_limit.

func (a *restAPI) addAppRoutes() {
	for _, e := range []endpoint{
		{method: http.MethodGet, template: "/app", auth: authJWT, docs: docsApps, handle: (*call).getApp},
		{method: http.MethodGet, template: "/app/installations", auth: authJWT, docs: docsApps, handle: (*call).listInstallations},
		{method: http.MethodPost, template: "/app/installations/{installation_id}/access_tokens", auth: authJWT, docs: docsApps, handle: (*call).createAccessToken},
		{method: http.MethodGet, template: "/orgs/{org}/installation", auth: authJWT, docs: docsApps, handle: (*call).orgInstallation},
		{method: http.MethodGet, template: "/repos/{owner}/{repo}/installation", auth: authJWT, docs: docsApps, handle: (*call).repoInstallation},
		{method: http.MethodGet, template: "/app/hook/deliveries", auth: authJWT, docs: docsWebhooks, handle: (*call).listDeliveries},
		{method: http.MethodGet, template: "/app/hook/deliveries/{delivery_id}", auth: authJWT, docs: docsWebhooks, handle: (*call).getDelivery},
		{method: http.MethodPost, template: "/app/hook/deliveries/{delivery_id}/attempts", auth: authJWT, docs: docsWebhooks, handle: (*call).redeliver},
		{method: http.MethodGet, template: "/installation/repositories", docs: docsInstalls, handle: (*call).installationRepos},
		{method: http.MethodGet, template: "/repos/{owner}/{repo}/actions/jobs/{job_id}", docs: docsJobs, handle: (*call).getJob},
		{method: http.MethodGet, template: "/rate_limit", auth: authAny, free: true, docs: docsRateLimit, handle: (*call).rateLimit},
	} {
		a.add(e)
	}
}

func (c *call) getApp() reply { return c.json(http.StatusOK, c.appJSON()) }

func (c *call) listInstallations() reply {
	page, link := paginate(c, c.a.installations())
	out := make([]any, len(page))
	for i, in := range page {
		out[i] = c.installationJSON(in)
	}
	return c.list(out, link)
}

func (c *call) orgInstallation() reply {
	o, ok := c.a.s.world.Org(c.params["org"])
	if !ok {
		return c.notFound()
	}
	return c.json(http.StatusOK, c.installationJSON(orgInstallation(o)))
}

func (c *call) repoInstallation() reply {
	r, ok := c.a.s.world.Repo(c.params["owner"] + "/" + c.params["repo"])
	if !ok {
		return c.notFound()
	}
	o, ok := c.a.s.world.OrgByID(r.OwnerID)
	if !ok {
		return c.notFound()
	}
	return c.json(http.StatusOK, c.installationJSON(orgInstallation(o)))
}

var accessTokenBody = []field{
	{name: "repositories", typ: fStrings},
	{name: "repository_ids", typ: fInts},
	{name: "permissions", typ: fObject},
}

// createAccessToken mints an installation token (ghs_..., one hour). A
// token asked for repositories the installation cannot reach is 422; the
// token otherwise always covers the whole installation.
func (c *call) createAccessToken() reply {
	id, ok := c.intParam("installation_id")
	if !ok {
		return c.notFound()
	}
	in, ok := c.a.installationByID(id)
	if !ok {
		return c.notFound()
	}
	b, err := decodeBody(c.r, accessTokenBody)
	if err != nil {
		return c.badBody(err)
	}
	w := c.a.s.world
	reachable := func(r world.Repository, ok bool) bool {
		return ok && in.Account.Kind == world.Org && strings.EqualFold(r.Owner, in.Account.Name)
	}
	for _, name := range b.strings("repositories") {
		if !reachable(w.Repo(in.Account.Name + "/" + name)) {
			return c.fail(http.StatusUnprocessableEntity, "There is at least one repository that does not exist or is not accessible to the parent installation.")
		}
	}
	for _, rid := range b.ints("repository_ids") {
		if !reachable(w.RepoByID(rid)) {
			return c.fail(http.StatusUnprocessableEntity, "There is at least one repository that does not exist or is not accessible to the parent installation.")
		}
	}
	tok, exp, err := c.a.tokens.mint(in, c.now)
	if err != nil {
		return c.fail(http.StatusInternalServerError, "Server Error")
	}
	return c.json(http.StatusCreated, map[string]any{
		"token":                tok,
		"expires_at":           timestamp(exp),
		"permissions":          appPermissions(),
		"repository_selection": "all",
	})
}

// installationRepos lists the repositories the credential reaches: an
// organization installation's repositories, none for the enterprise
// installation, every repository for the PAT.
func (c *call) installationRepos() reply {
	var all []world.Repository
	switch c.p.kind {
	case principalPAT:
		all = c.a.s.world.Repos("")
	case principalInstallation:
		if c.p.inst.Account.Kind == world.Org {
			all = c.a.s.world.Repos(c.p.inst.Account.Name)
		}
	}
	page, link := paginate(c, all)
	repos := make([]any, len(page))
	for i, r := range page {
		repos[i] = c.repoJSON(r, true)
	}
	return c.list(map[string]any{"total_count": len(all), "repositories": repos, "repository_selection": "all"}, link)
}

// listDeliveries pages through the App's webhook deliveries with GitHub's
// cursor pagination: a Link header with rel="next" carries the next cursor.
func (c *call) listDeliveries() reply {
	q := c.r.URL.Query()
	perPage := defaultPerPage
	if n, err := strconv.Atoi(q.Get("per_page")); err == nil && n > 0 {
		perPage = min(n, maxPerPage)
	}
	status := q.Get("status")
	if status != "" && status != "success" && status != "failure" {
		return c.fail(http.StatusUnprocessableEntity, "Validation Failed: status must be success or failure")
	}
	ds, next, err := c.a.s.hooks.List(q.Get("cursor"), perPage, status)
	if err != nil {
		return c.fail(http.StatusUnprocessableEntity, "Validation Failed: invalid cursor")
	}
	out := make([]any, len(ds))
	for i, d := range ds {
		out[i] = deliveryItemJSON(d)
	}
	link := ""
	if next != "" {
		nq := url.Values{}
		nq.Set("per_page", strconv.Itoa(perPage))
		nq.Set("cursor", next)
		if status != "" {
			nq.Set("status", status)
		}
		link = "<" + c.apiURL(c.r.URL.Path) + "?" + nq.Encode() + `>; rel="next"`
	}
	return c.list(out, link)
}

func (c *call) getDelivery() reply {
	id, ok := c.intParam("delivery_id")
	if !ok {
		return c.notFound()
	}
	d, ok := c.a.s.hooks.Get(id)
	if !ok {
		return c.notFound()
	}
	return c.json(http.StatusOK, deliveryJSON(d))
}

// redeliver asks for a delivery to be sent again: 202 with an empty object.
func (c *call) redeliver() reply {
	id, ok := c.intParam("delivery_id")
	if !ok {
		return c.notFound()
	}
	if err := c.a.s.hooks.Redeliver(id); err != nil {
		return c.worldErr(err)
	}
	return c.json(http.StatusAccepted, map[string]any{})
}

func (c *call) getJob() reply {
	id, ok := c.intParam("job_id")
	if !ok {
		return c.notFound()
	}
	j, repo, ok := c.a.s.world.Job(id)
	if !ok || !strings.EqualFold(repo.FullName(), c.scope.Name) {
		return c.notFound()
	}
	return c.json(http.StatusOK, c.jobJSON(j, repo))
}

type rateJSON struct {
	Limit     int    `json:"limit"`
	Remaining int    `json:"remaining"`
	Reset     int64  `json:"reset"`
	Used      int    `json:"used"`
	Resource  string `json:"resource"`
}

func toRateJSON(st rateState) rateJSON {
	return rateJSON{Limit: st.Limit, Remaining: st.Remaining, Reset: st.Reset.Unix(), Used: st.Used, Resource: st.Resource}
}

// rateLimit reports the caller's real counters, without charging them.
func (c *call) rateLimit() reply {
	core := toRateJSON(c.rate)
	resources := map[string]rateJSON{
		resourceCore:   core,
		resourceSearch: {Limit: searchRateLimit, Remaining: searchRateLimit, Reset: c.now.Add(time.Minute).Unix(), Resource: resourceSearch},
	}
	if budget := c.a.s.opts.JITBudget; budget > 0 {
		resources[resourceRegistration] = toRateJSON(c.a.limits.peekJIT(c.p.bucket(), budget, c.now))
	}
	return c.json(http.StatusOK, map[string]any{"resources": resources, "rate": core})
}
