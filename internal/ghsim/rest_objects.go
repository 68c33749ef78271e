package ghsim

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

// The JSON shapes of GitHub's schemas (components/schemas in
// github-runners-openapi.json): every required field present, nullable ones
// as null, URLs absolute and pointing at the simulator.

// appSlug is the simulated App's slug.
const appSlug = "runnerscaler-sim"

// timestamp renders a time as GitHub does (RFC 3339, UTC, seconds).
func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// nullTime is a nullable timestamp: nil for the zero time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return timestamp(t)
}

// nodeID makes a GraphQL-style node id for an object.
func nodeID(kind string, id int64) string {
	return base64.RawStdEncoding.EncodeToString([]byte("04:" + kind + strconv.FormatInt(id, 10)))
}

func esc(s string) string { return url.PathEscape(s) }

// ---- runners ----

type labelJSON struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

type runnerJSON struct {
	ID            int64       `json:"id"`
	RunnerGroupID *int64      `json:"runner_group_id,omitempty"`
	Name          string      `json:"name"`
	OS            string      `json:"os"`
	Status        string      `json:"status"`
	Busy          bool        `json:"busy"`
	Ephemeral     bool        `json:"ephemeral"`
	Labels        []labelJSON `json:"labels"`
}

type runnerListJSON struct {
	TotalCount int          `json:"total_count"`
	Runners    []runnerJSON `json:"runners"`
}

type labelListJSON struct {
	TotalCount int         `json:"total_count"`
	Labels     []labelJSON `json:"labels"`
}

func labelsJSON(ls []world.Label) []labelJSON {
	out := make([]labelJSON, len(ls))
	for i, l := range ls {
		out[i] = labelJSON{ID: l.ID, Name: l.Name, Type: l.Type}
	}
	return out
}

// runnerJSON renders a runner; busy is what GitHub would report now
// (world.VisibleBusy: it lags the truth by the configured busy lag).
func (c *call) runnerJSON(r world.Runner) runnerJSON {
	out := runnerJSON{
		ID: r.ID, Name: r.Name, OS: r.OS, Status: r.Status,
		Busy: c.a.s.world.VisibleBusy(r), Ephemeral: r.Ephemeral, Labels: labelsJSON(r.Labels),
	}
	if r.Scope.Kind != world.Repo {
		g := r.GroupID
		out.RunnerGroupID = &g
	}
	return out
}

func (c *call) runnersJSON(rs []world.Runner) []runnerJSON {
	out := make([]runnerJSON, len(rs))
	for i, r := range rs {
		out[i] = c.runnerJSON(r)
	}
	return out
}

// ---- runner groups ----

type orgGroupJSON struct {
	ID                                int64    `json:"id"`
	Name                              string   `json:"name"`
	Visibility                        string   `json:"visibility"`
	Default                           bool     `json:"default"`
	SelectedRepositoriesURL           string   `json:"selected_repositories_url,omitempty"`
	RunnersURL                        string   `json:"runners_url"`
	Inherited                         bool     `json:"inherited"`
	InheritedAllowsPublicRepositories *bool    `json:"inherited_allows_public_repositories,omitempty"`
	AllowsPublicRepositories          bool     `json:"allows_public_repositories"`
	WorkflowRestrictionsReadOnly      bool     `json:"workflow_restrictions_read_only"`
	RestrictedToWorkflows             bool     `json:"restricted_to_workflows"`
	SelectedWorkflows                 []string `json:"selected_workflows"`
}

type entGroupJSON struct {
	ID                           int64    `json:"id"`
	Name                         string   `json:"name"`
	Visibility                   string   `json:"visibility"`
	Default                      bool     `json:"default"`
	SelectedOrganizationsURL     string   `json:"selected_organizations_url,omitempty"`
	RunnersURL                   string   `json:"runners_url"`
	AllowsPublicRepositories     bool     `json:"allows_public_repositories"`
	RestrictedToWorkflows        bool     `json:"restricted_to_workflows"`
	SelectedWorkflows            []string `json:"selected_workflows"`
	WorkflowRestrictionsReadOnly bool     `json:"workflow_restrictions_read_only"`
}

func workflows(ws []string) []string {
	if ws == nil {
		return []string{}
	}
	return ws
}

// orgGroupJSON renders a group as an organization lists it (runner-groups-org);
// an enterprise group shared with the org is marked inherited, and its
// workflow restrictions cannot be changed there.
func (c *call) orgGroupJSON(org string, g world.Group) orgGroupJSON {
	base := "orgs/" + esc(org) + "/actions/runner-groups/" + strconv.FormatInt(g.ID, 10)
	out := orgGroupJSON{
		ID: g.ID, Name: g.Name, Visibility: g.Visibility, Default: g.Default,
		RunnersURL: c.apiURL(base + "/runners"), Inherited: g.Inherited,
		AllowsPublicRepositories: g.AllowsPublicRepositories, RestrictedToWorkflows: g.RestrictedToWorkflows,
		SelectedWorkflows: workflows(g.SelectedWorkflows), WorkflowRestrictionsReadOnly: g.Inherited,
	}
	if g.Inherited {
		v := g.AllowsPublicRepositories
		out.InheritedAllowsPublicRepositories = &v
	} else if g.Visibility == world.VisibilitySelected {
		out.SelectedRepositoriesURL = c.apiURL(base + "/repositories")
	}
	return out
}

// entGroupJSON renders an enterprise group (runner-groups-enterprise).
func (c *call) entGroupJSON(ent string, g world.Group) entGroupJSON {
	base := "enterprises/" + esc(ent) + "/actions/runner-groups/" + strconv.FormatInt(g.ID, 10)
	out := entGroupJSON{
		ID: g.ID, Name: g.Name, Visibility: g.Visibility, Default: g.Default,
		RunnersURL: c.apiURL(base + "/runners"), AllowsPublicRepositories: g.AllowsPublicRepositories,
		RestrictedToWorkflows: g.RestrictedToWorkflows, SelectedWorkflows: workflows(g.SelectedWorkflows),
	}
	if g.Visibility == world.VisibilitySelected {
		out.SelectedOrganizationsURL = c.apiURL(base + "/organizations")
	}
	return out
}

// ---- accounts and repositories ----

// simpleUser renders an account as components/schemas/simple-user.
func (c *call) simpleUser(login string, id int64, typ string) map[string]any {
	api := c.apiURL("users/" + esc(login))
	return map[string]any{
		"login":               login,
		"id":                  id,
		"node_id":             nodeID(typ, id),
		"avatar_url":          c.webURL("avatars/u/" + strconv.FormatInt(id, 10)),
		"gravatar_id":         "",
		"url":                 api,
		"html_url":            c.webURL(esc(login)),
		"followers_url":       api + "/followers",
		"following_url":       api + "/following{/other_user}",
		"gists_url":           api + "/gists{/gist_id}",
		"starred_url":         api + "/starred{/owner}{/repo}",
		"subscriptions_url":   api + "/subscriptions",
		"organizations_url":   api + "/orgs",
		"repos_url":           api + "/repos",
		"events_url":          api + "/events{/privacy}",
		"received_events_url": api + "/received_events",
		"type":                typ,
		"site_admin":          false,
	}
}

// orgSimple renders an organization as components/schemas/organization-simple.
func (c *call) orgSimple(o world.Organization) map[string]any {
	api := c.apiURL("orgs/" + esc(o.Login))
	return map[string]any{
		"login":              o.Login,
		"id":                 o.ID,
		"node_id":            nodeID("Organization", o.ID),
		"url":                api,
		"repos_url":          api + "/repos",
		"events_url":         api + "/events",
		"hooks_url":          api + "/hooks",
		"issues_url":         api + "/issues",
		"members_url":        api + "/members{/member}",
		"public_members_url": api + "/public_members{/member}",
		"avatar_url":         c.webURL("avatars/u/" + strconv.FormatInt(o.ID, 10)),
		"description":        nil,
	}
}

// enterpriseJSON renders the enterprise as components/schemas/enterprise.
func (c *call) enterpriseJSON() map[string]any {
	e := c.a.s.world.Enterprise()
	return map[string]any{
		"id":          e.ID,
		"slug":        e.Login,
		"name":        e.Login,
		"node_id":     nodeID("Enterprise", e.ID),
		"avatar_url":  c.webURL("avatars/b/" + strconv.FormatInt(e.ID, 10)),
		"html_url":    c.webURL("enterprises/" + esc(e.Login)),
		"description": nil,
		"website_url": nil,
		"created_at":  timestamp(c.a.created),
		"updated_at":  timestamp(c.a.created),
	}
}

// repoJSON renders a repository as components/schemas/minimal-repository, or
// with full as components/schemas/repository.
func (c *call) repoJSON(r world.Repository, full bool) map[string]any {
	path := esc(r.Owner) + "/" + esc(r.Name)
	api := c.apiURL("repos/" + path)
	visibility := "public"
	if r.Private {
		visibility = "private"
	}
	out := map[string]any{
		"id":                r.ID,
		"node_id":           nodeID("Repository", r.ID),
		"name":              r.Name,
		"full_name":         r.FullName(),
		"owner":             c.simpleUser(r.Owner, r.OwnerID, "Organization"),
		"private":           r.Private,
		"visibility":        visibility,
		"html_url":          c.webURL(path),
		"description":       nil,
		"fork":              false,
		"url":               api,
		"archive_url":       api + "/{archive_format}{/ref}",
		"assignees_url":     api + "/assignees{/user}",
		"blobs_url":         api + "/git/blobs{/sha}",
		"branches_url":      api + "/branches{/branch}",
		"collaborators_url": api + "/collaborators{/collaborator}",
		"comments_url":      api + "/comments{/number}",
		"commits_url":       api + "/commits{/sha}",
		"compare_url":       api + "/compare/{base}...{head}",
		"contents_url":      api + "/contents/{+path}",
		"contributors_url":  api + "/contributors",
		"deployments_url":   api + "/deployments",
		"downloads_url":     api + "/downloads",
		"events_url":        api + "/events",
		"forks_url":         api + "/forks",
		"git_commits_url":   api + "/git/commits{/sha}",
		"git_refs_url":      api + "/git/refs{/sha}",
		"git_tags_url":      api + "/git/tags{/sha}",
		"hooks_url":         api + "/hooks",
		"issue_comment_url": api + "/issues/comments{/number}",
		"issue_events_url":  api + "/issues/events{/number}",
		"issues_url":        api + "/issues{/number}",
		"keys_url":          api + "/keys{/key_id}",
		"labels_url":        api + "/labels{/name}",
		"languages_url":     api + "/languages",
		"merges_url":        api + "/merges",
		"milestones_url":    api + "/milestones{/number}",
		"notifications_url": api + "/notifications{?since,all,participating}",
		"pulls_url":         api + "/pulls{/number}",
		"releases_url":      api + "/releases{/id}",
		"stargazers_url":    api + "/stargazers",
		"statuses_url":      api + "/statuses/{sha}",
		"subscribers_url":   api + "/subscribers",
		"subscription_url":  api + "/subscription",
		"tags_url":          api + "/tags",
		"teams_url":         api + "/teams",
		"trees_url":         api + "/git/trees{/sha}",
	}
	if full {
		host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(c.webBase(), "http://"), "https://"), "/")
		web := c.webURL(path)
		for k, v := range map[string]any{
			"clone_url": web + ".git", "git_url": "git://" + host + "/" + path + ".git",
			"ssh_url": "git@" + host + ":" + path + ".git", "svn_url": web, "mirror_url": nil,
			"homepage": nil, "language": nil, "license": nil, "default_branch": "main",
			"forks": 0, "forks_count": 0, "open_issues": 0, "open_issues_count": 0,
			"stargazers_count": 0, "watchers": 0, "watchers_count": 0, "size": 0,
			"has_downloads": true, "has_issues": true, "has_projects": true, "has_wiki": true, "has_pages": false,
			"archived": false, "disabled": false,
			"created_at": timestamp(c.a.created), "updated_at": timestamp(c.a.created), "pushed_at": timestamp(c.a.created),
		} {
			out[k] = v
		}
	}
	return out
}

// ---- the App and its installations ----

func appPermissions() map[string]string {
	return map[string]string{
		"actions":                          "read",
		"administration":                   "write",
		"metadata":                         "read",
		"organization_self_hosted_runners": "write",
	}
}

// appJSON renders the App as components/schemas/integration. Its owner is
// the first organization (the enterprise's slug when there is none).
func (c *call) appJSON() map[string]any {
	id := c.a.s.opts.AppID
	owner := c.simpleUser(c.a.s.world.Enterprise().Login, c.a.s.world.Enterprise().ID, "Organization")
	if orgs := c.a.s.world.Orgs(); len(orgs) > 0 {
		owner = c.simpleUser(orgs[0].Login, orgs[0].ID, "Organization")
	}
	return map[string]any{
		"id":                  id,
		"slug":                appSlug,
		"node_id":             nodeID("App", id),
		"client_id":           "Iv1.sim" + strconv.FormatInt(id, 10),
		"owner":               owner,
		"name":                "Runnerscaler (simulated)",
		"description":         "The GitHub App the simulator plays.",
		"external_url":        c.webURL(""),
		"html_url":            c.webURL("apps/" + appSlug),
		"created_at":          timestamp(c.a.created),
		"updated_at":          timestamp(c.a.created),
		"permissions":         appPermissions(),
		"events":              []string{"workflow_job"},
		"installations_count": len(c.a.installations()),
	}
}

// installationJSON renders an installation as components/schemas/installation.
func (c *call) installationJSON(in installation) map[string]any {
	var account any
	targetType, html := "Organization", ""
	if in.Account.Kind == world.Enterprise {
		account = c.enterpriseJSON()
		targetType = "Enterprise"
		html = c.webURL("enterprises/" + esc(in.Account.Name) + "/settings/installations/" + strconv.FormatInt(in.ID, 10))
	} else {
		account = c.simpleUser(in.Account.Name, in.AccountID, "Organization")
		html = c.webURL("organizations/" + esc(in.Account.Name) + "/settings/installations/" + strconv.FormatInt(in.ID, 10))
	}
	return map[string]any{
		"id":                        in.ID,
		"account":                   account,
		"repository_selection":      "all",
		"access_tokens_url":         c.apiURL("app/installations/" + strconv.FormatInt(in.ID, 10) + "/access_tokens"),
		"repositories_url":          c.apiURL("installation/repositories"),
		"html_url":                  html,
		"app_id":                    c.a.s.opts.AppID,
		"app_slug":                  appSlug,
		"client_id":                 "Iv1.sim" + strconv.FormatInt(c.a.s.opts.AppID, 10),
		"target_id":                 in.AccountID,
		"target_type":               targetType,
		"permissions":               appPermissions(),
		"events":                    []string{"workflow_job"},
		"created_at":                timestamp(c.a.created),
		"updated_at":                timestamp(c.a.created),
		"single_file_name":          nil,
		"has_multiple_single_files": false,
		"single_file_paths":         []string{},
		"suspended_by":              nil,
		"suspended_at":              nil,
	}
}

// ---- jobs ----

// jobJSON renders a workflow job as components/schemas/job.
func (c *call) jobJSON(j world.Job, repo world.Repository) map[string]any {
	repoAPI := "repos/" + esc(repo.Owner) + "/" + esc(repo.Name)
	started := j.StartedAt
	if started.IsZero() { // GitHub reports started_at = created_at until a runner takes the job
		started = j.CreatedAt
	}
	var conclusion any
	if j.Conclusion != "" {
		conclusion = j.Conclusion
	}
	var runnerID, runnerName, groupID, groupName any
	if j.RunnerID != 0 {
		runnerID, runnerName = j.RunnerID, j.RunnerName
		groupID, groupName = j.GroupID, j.GroupName
	}
	labels := j.Labels
	if labels == nil {
		labels = []string{}
	}
	return map[string]any{
		"id":                j.ID,
		"run_id":            j.RunID,
		"run_url":           c.apiURL(repoAPI + "/actions/runs/" + strconv.FormatInt(j.RunID, 10)),
		"run_attempt":       1,
		"node_id":           nodeID("CheckRun", j.ID),
		"head_sha":          j.HeadSHA,
		"head_branch":       j.HeadBranch,
		"url":               c.apiURL(repoAPI + "/actions/jobs/" + strconv.FormatInt(j.ID, 10)),
		"html_url":          c.webURL(esc(repo.Owner) + "/" + esc(repo.Name) + "/actions/runs/" + strconv.FormatInt(j.RunID, 10) + "/job/" + strconv.FormatInt(j.ID, 10)),
		"status":            j.Status,
		"conclusion":        conclusion,
		"created_at":        timestamp(j.CreatedAt),
		"started_at":        timestamp(started),
		"completed_at":      nullTime(j.CompletedAt),
		"name":              j.Name,
		"steps":             []any{},
		"check_run_url":     c.apiURL(repoAPI + "/check-runs/" + strconv.FormatInt(j.ID, 10)),
		"labels":            labels,
		"runner_id":         runnerID,
		"runner_name":       runnerName,
		"runner_group_id":   groupID,
		"runner_group_name": groupName,
		"workflow_name":     "CI",
	}
}

// ---- webhook deliveries ----

func nullInt(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// deliveryItemJSON renders a delivery as components/schemas/hook-delivery-item.
func deliveryItemJSON(d Delivery) map[string]any {
	return map[string]any{
		"id":              d.ID,
		"guid":            d.GUID,
		"delivered_at":    timestamp(d.DeliveredAt),
		"redelivery":      d.Redelivery,
		"duration":        d.Duration.Seconds(),
		"status":          d.Status,
		"status_code":     d.StatusCode,
		"event":           d.Event,
		"action":          nullString(d.Action),
		"installation_id": nullInt(d.InstallationID),
		"repository_id":   nullInt(d.RepositoryID),
		"throttled_at":    nil,
	}
}

// deliveryJSON renders a delivery with its request and response as
// components/schemas/hook-delivery.
func deliveryJSON(d Delivery) map[string]any {
	out := deliveryItemJSON(d)
	var payload any
	if p := strings.TrimSpace(string(d.RequestPayload)); strings.HasPrefix(p, "{") && json.Valid(d.RequestPayload) {
		payload = json.RawMessage(d.RequestPayload)
	}
	var respPayload any
	if d.ResponseBody != "" {
		respPayload = d.ResponseBody
	}
	out["url"] = d.URL
	out["request"] = map[string]any{"headers": headerMap(d.RequestHeaders), "payload": payload}
	out["response"] = map[string]any{"headers": headerMap(d.ResponseHeaders), "payload": respPayload}
	return out
}

func headerMap(h map[string]string) any {
	if h == nil {
		return map[string]string{}
	}
	return h
}
