package ghsim

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/ghapi"
	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
	"github.com/runnerscaler/runnerscaler/internal/oapitest"
)

// restExtraOps are the operations beyond the runner and runner-group pages
// (the seed) that the simulator serves.
var restExtraOps = []string{
	"apps/get-authenticated",
	"apps/list-installations",
	"apps/get-org-installation",
	"apps/get-repo-installation",
	"apps/create-installation-access-token",
	"apps/list-repos-accessible-to-installation",
	"apps/list-webhook-deliveries",
	"apps/get-webhook-delivery",
	"apps/redeliver-webhook-delivery",
	"actions/get-job-for-workflow-run",
	"rate-limit/get",
}

// restRequiredOps are the seed operations (those documented on the
// self-hosted runner and runner group pages, every scope) and the extras.
func restRequiredOps(t *testing.T) []oapitest.Operation {
	t.Helper()
	var seed, out []oapitest.Operation
	for _, op := range oapitest.Operations(t) {
		if strings.Contains(op.DocsURL, "/rest/actions/self-hosted-runners") ||
			strings.Contains(op.DocsURL, "/rest/actions/self-hosted-runner-groups") {
			seed = append(seed, op)
			out = append(out, op)
		} else if slices.Contains(restExtraOps, op.OperationID) {
			out = append(out, op)
		}
	}
	if len(seed) != 63 {
		t.Fatalf("the description has %d runner and runner-group operations, want 63", len(seed))
	}
	if len(out) != 63+len(restExtraOps) {
		t.Fatalf("found %d operations, want %d: an extra is missing from the description", len(out), 63+len(restExtraOps))
	}
	return out
}

// TestRESTServesEveryOperation checks the route table against the description.
func TestRESTServesEveryOperation(t *testing.T) {
	h := newRESTSim(t, nil)
	for _, op := range restRequiredOps(t) {
		if h.s.api.routes[op.Method+" "+op.Path] == nil {
			t.Errorf("%s %s (%s) is not served", op.Method, op.Path, op.OperationID)
		}
	}
}

// TestRESTConformance drives every REST operation the simulator serves, at
// every scope, through internal/ghapi's client (App auth: JWT, installation
// discovery and access tokens; and a PAT client), with a transport that
// validates every request and every response against GitHub's OpenAPI
// description. Both the client and the simulator are held to the
// description; then every required operation must have been answered with
// a documented status.
func TestRESTConformance(t *testing.T) {
	for _, prefix := range []string{"", "/api/v3"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			h := newRESTSim(t, nil)
			v := oapitest.ValidatingTransport(t, nil)
			deliveries := restDriveEverything(t, h, v, prefix)

			for _, op := range restRequiredOps(t) {
				statuses := v.Statuses(op.OperationID)
				ok := slices.ContainsFunc(statuses, func(st int) bool { return oapitest.Documented(t, op.OperationID, st) })
				if !ok && !deliveries && (op.OperationID == "apps/get-webhook-delivery" || op.OperationID == "apps/redeliver-webhook-delivery") {
					ok = len(statuses) > 0 // no delivery to ask for: answered is enough
				}
				if !ok {
					t.Errorf("%s %s (%s): not answered with a documented status (got %v)", op.Method, op.Path, op.OperationID, statuses)
				}
			}
		})
	}
}

// restDriveEverything calls every operation; it reports whether webhook
// deliveries existed to get and redeliver.
func restDriveEverything(t *testing.T, h *restSim, v *oapitest.Validator, prefix string) (deliveries bool) {
	_, keyPEM := restTestKey(t)
	apiURL := h.base + strings.TrimPrefix(prefix+"/", "/")
	newClient := func(o ghapi.Options) *ghapi.Client {
		o.APIURL, o.Base, o.MaxAttempts = apiURL, v, 1
		c, err := ghapi.New(o)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	app := newClient(ghapi.Options{App: &ghapi.AppAuth{ID: restAppID, PrivateKey: keyPEM}})
	pat := newClient(ghapi.Options{Token: restPAT})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	w := h.s.World()
	octo, _ := w.Org("octo-org")
	labs, _ := w.Org("octo-labs")
	appRepo, _ := w.Repo("octo-org/app")
	siteRepo, _ := w.Repo("octo-org/website")
	ent := ghapi.Enterprise("octo-ent")
	org := ghapi.Org("octo-org")
	repo := ghapi.Repo("octo-org", "app")

	// The App.
	a, err := app.GetApp(ctx)
	must("get app", err)
	if a.GetID() != restAppID || a.GetSlug() != appSlug {
		t.Errorf("app = %d %q", a.GetID(), a.GetSlug())
	}
	insts, err := app.ListInstallations(ctx)
	must("list installations", err)
	if len(insts) != 3 {
		t.Errorf("%d installations, want 3 (enterprise and two orgs)", len(insts))
	}
	in, err := app.GetOrgInstallation(ctx, "octo-org")
	must("org installation", err)
	if in.GetID() != installationIDFor(octo.ID) || !strings.HasPrefix(in.GetAccessTokensURL(), apiURL) {
		t.Errorf("org installation %d %q, want id %d under %s", in.GetID(), in.GetAccessTokensURL(), installationIDFor(octo.ID), apiURL)
	}
	_, err = app.GetRepoInstallation(ctx, "octo-org", "app")
	must("repo installation", err)

	// Runners at every scope (the enterprise's installation is found by
	// listing installations).
	for _, s := range []ghapi.Scope{repo, org, ent} {
		name := "conf-" + s.Kind.String()
		jit, err := app.GenerateJITConfig(ctx, s, ghapi.JITRequest{Name: name, RunnerGroupID: 1, Labels: []string{"self-hosted", "linux", "conf"}})
		must("jit "+name, err)
		id := jit.Runner.GetID()
		if jit.Runner.GetName() != name || jit.Runner.GetStatus() != "offline" || jit.Runner.GetBusy() || jit.Encoded.Reveal() == "" {
			t.Errorf("jit runner %+v (encoded empty: %v)", jit.Runner, jit.Encoded.Reveal() == "")
		}
		rs, err := app.ListRunners(ctx, s, ghapi.ListRunnersOptions{})
		must("list runners", err)
		if len(rs) != 1 || rs[0].GetID() != id {
			t.Errorf("%s runners = %v", s, rs)
		}
		rs, err = app.ListRunners(ctx, s, ghapi.ListRunnersOptions{Name: name})
		must("list runners by name", err)
		if len(rs) != 1 {
			t.Errorf("%s runners named %s = %d", s, name, len(rs))
		}
		r, err := app.GetRunner(ctx, s, id)
		must("get runner", err)
		if r.GetName() != name || len(r.Labels) != 3 {
			t.Errorf("runner %+v", r)
		}
		ls, err := app.AddRunnerLabels(ctx, s, id, []string{"gpu", "big"})
		must("add labels", err)
		if len(ls) != 5 {
			t.Errorf("labels after add = %d, want 5", len(ls))
		}
		_, err = app.SetRunnerLabels(ctx, s, id, []string{"a", "b"})
		must("set labels", err)
		ls, err = app.ListRunnerLabels(ctx, s, id)
		must("list labels", err)
		if names := restLabelNames(ls); !slices.Equal(names, []string{"self-hosted", "linux", "a", "b"}) {
			t.Errorf("labels after set = %v", names)
		}
		_, err = app.RemoveRunnerLabel(ctx, s, id, "a")
		must("remove label", err)
		ls, err = app.RemoveAllRunnerLabels(ctx, s, id)
		must("remove all labels", err)
		if names := restLabelNames(ls); !slices.Equal(names, []string{"self-hosted", "linux"}) {
			t.Errorf("labels after remove all = %v", names)
		}
		_, err = app.ListRunnerApplications(ctx, s)
		must("downloads", err)
		_, err = app.CreateRegistrationToken(ctx, s)
		must("registration token", err)
		_, err = app.CreateRemoveToken(ctx, s)
		must("remove token", err)
		must("delete runner", app.DeleteRunner(ctx, s, id))
	}
	dep, err := app.GetRunnerVersionDeprecation(ctx, ent, "2.320.0")
	must("deprecation", err)
	if dep.RunnerVersion != "2.320.0" {
		t.Errorf("deprecation %+v", dep)
	}

	// Organization runner groups.
	yes := true
	g, err := app.CreateRunnerGroup(ctx, org, ghapi.RunnerGroupSpec{Name: "conf-org", Visibility: "selected", SelectedRepositoryIDs: []int64{appRepo.ID}})
	must("create org group", err)
	if g.Visibility != "selected" || g.SelectedRepositoriesURL == "" || !strings.HasPrefix(g.RunnersURL, apiURL) {
		t.Errorf("org group %+v", g)
	}
	gs, err := app.ListRunnerGroups(ctx, org, ghapi.ListRunnerGroupsOptions{})
	must("list org groups", err)
	if len(gs) < 2 {
		t.Errorf("org groups = %d", len(gs))
	}
	gs, err = app.ListRunnerGroups(ctx, org, ghapi.ListRunnerGroupsOptions{VisibleToRepository: "website"})
	must("list org groups visible to website", err)
	if slices.ContainsFunc(gs, func(x *ghapi.RunnerGroup) bool { return x.ID == g.ID }) {
		t.Errorf("group %d listed as visible to octo-org/website", g.ID)
	}
	_, err = app.GetRunnerGroup(ctx, org, g.ID)
	must("get org group", err)
	g2, err := app.UpdateRunnerGroup(ctx, org, g.ID, ghapi.RunnerGroupUpdate{Name: "conf-org", AllowsPublicRepositories: &yes})
	must("update org group", err)
	if !g2.AllowsPublicRepositories {
		t.Errorf("update lost: %+v", g2)
	}
	must("set group repos", app.SetRunnerGroupRepositories(ctx, org, g.ID, []int64{appRepo.ID, siteRepo.ID}))
	must("remove group repo", app.RemoveRunnerGroupRepository(ctx, org, g.ID, siteRepo.ID))
	must("add group repo", app.AddRunnerGroupRepository(ctx, org, g.ID, siteRepo.ID))
	repos, err := app.ListRunnerGroupRepositories(ctx, org, g.ID)
	must("list group repos", err)
	if len(repos) != 2 {
		t.Errorf("group repositories = %d, want 2", len(repos))
	}
	restDriveGroupRunners(t, ctx, app, org, g.ID)
	must("delete org group", app.DeleteRunnerGroup(ctx, org, g.ID))

	// Enterprise runner groups.
	eg, err := app.CreateRunnerGroup(ctx, ent, ghapi.RunnerGroupSpec{Name: "conf-ent", Visibility: "selected", SelectedOrganizationIDs: []int64{octo.ID}})
	must("create enterprise group", err)
	_, err = app.ListRunnerGroups(ctx, ent, ghapi.ListRunnerGroupsOptions{VisibleToOrganization: "octo-org"})
	must("list enterprise groups", err)
	_, err = app.GetRunnerGroup(ctx, ent, eg.ID)
	must("get enterprise group", err)
	_, err = app.UpdateRunnerGroup(ctx, ent, eg.ID, ghapi.RunnerGroupUpdate{Visibility: "selected"})
	must("update enterprise group", err)
	must("set group orgs", app.SetRunnerGroupOrganizations(ctx, ent, eg.ID, []int64{octo.ID}))
	must("add group org", app.AddRunnerGroupOrganization(ctx, ent, eg.ID, labs.ID))
	must("remove group org", app.RemoveRunnerGroupOrganization(ctx, ent, eg.ID, labs.ID))
	orgs, err := app.ListRunnerGroupOrganizations(ctx, ent, eg.ID)
	must("list group orgs", err)
	if len(orgs) != 1 || orgs[0].GetLogin() != "octo-org" {
		t.Errorf("group organizations = %v", orgs)
	}
	// Shared with octo-org, the enterprise group is listed there, inherited.
	gs, err = app.ListRunnerGroups(ctx, org, ghapi.ListRunnerGroupsOptions{})
	must("list org groups with inherited", err)
	if !slices.ContainsFunc(gs, func(x *ghapi.RunnerGroup) bool { return x.ID == eg.ID && x.Inherited }) {
		t.Errorf("enterprise group %d not inherited by octo-org: %+v", eg.ID, gs)
	}
	restDriveGroupRunners(t, ctx, app, ent, eg.ID)
	must("delete enterprise group", app.DeleteRunnerGroup(ctx, ent, eg.ID))

	// Installation repositories, jobs, rate limits.
	irs, err := app.ListInstallationRepositories(ctx, org)
	must("installation repositories", err)
	if len(irs) != 2 {
		t.Errorf("octo-org installation reaches %d repositories, want 2", len(irs))
	}
	ids, err := w.CreateJobs(world.JobInput{Repo: "octo-org/app", Labels: []string{"self-hosted", "gpu"}})
	must("create job", err)
	job, err := app.GetWorkflowJob(ctx, repo, ids[0])
	must("get job", err)
	if job.GetID() != ids[0] || job.GetStatus() != "queued" {
		t.Errorf("job %+v", job)
	}
	rl, err := app.GetRateLimits(ctx, org)
	must("rate limits", err)
	if rl.GetCore().Limit != 5000 || rl.GetCore().Remaining >= 5000 {
		t.Errorf("core rate limit %+v", rl.GetCore())
	}

	// Webhook deliveries: with every delivery dropped, transitions are
	// recorded as failed deliveries at once (no waiting for a receiver).
	deliveries = restDriveDeliveries(t, ctx, h, app)

	// The PAT may do everything but the App's own endpoints.
	_, err = pat.ListRunners(ctx, ent, ghapi.ListRunnersOptions{})
	must("pat: list enterprise runners", err)
	pj, err := pat.GenerateJITConfig(ctx, org, ghapi.JITRequest{Name: "conf-pat", RunnerGroupID: 1, Labels: []string{"self-hosted"}})
	must("pat: jit", err)
	must("pat: delete", pat.DeleteRunner(ctx, org, pj.Runner.GetID()))
	irs, err = pat.ListInstallationRepositories(ctx, org)
	must("pat: installation repositories", err)
	if len(irs) != 3 {
		t.Errorf("the PAT reaches %d repositories, want 3", len(irs))
	}
	_, err = pat.GetRateLimits(ctx, org)
	must("pat: rate limits", err)

	// A conditional request through the same validator: 200 with an ETag,
	// then 304.
	hc := &http.Client{Transport: v}
	get := func(etag string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, apiURL+"orgs/octo-org/actions/runner-groups", nil)
		req.Header.Set("Authorization", "token "+restPAT)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := hc.Do(req)
		must("conditional get", err)
		_ = resp.Body.Close()
		return resp
	}
	first := get("")
	if second := get(first.Header.Get("ETag")); second.StatusCode != http.StatusNotModified {
		t.Errorf("conditional request: %d, want 304", second.StatusCode)
	}
	return deliveries
}

// restDriveGroupRunners moves a JIT runner through a group's runner list.
func restDriveGroupRunners(t *testing.T, ctx context.Context, c *ghapi.Client, s ghapi.Scope, groupID int64) {
	t.Helper()
	jit, err := c.GenerateJITConfig(ctx, s, ghapi.JITRequest{Name: "conf-grouped", RunnerGroupID: groupID, Labels: []string{"self-hosted"}})
	if err != nil {
		t.Fatalf("jit in group %d of %s: %v", groupID, s, err)
	}
	id := jit.Runner.GetID()
	steps := []struct {
		what string
		err  error
	}{
		{"remove from group", c.RemoveRunnerGroupRunner(ctx, s, groupID, id)},
		{"add to group", c.AddRunnerGroupRunner(ctx, s, groupID, id)},
		{"set group runners", c.SetRunnerGroupRunners(ctx, s, groupID, []int64{id})},
	}
	for _, st := range steps {
		if st.err != nil {
			t.Fatalf("%s: %v", st.what, st.err)
		}
	}
	rs, err := c.ListRunnerGroupRunners(ctx, s, groupID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].GetID() != id {
		t.Errorf("group %d runners = %+v", groupID, rs)
	}
	if err := c.DeleteRunner(ctx, s, id); err != nil {
		t.Fatal(err)
	}
}

// restDriveDeliveries lists, gets and redelivers webhook deliveries; false
// when there were none to get (the delivery log is not there).
func restDriveDeliveries(t *testing.T, ctx context.Context, h *restSim, app *ghapi.Client) bool {
	t.Helper()
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	t.Cleanup(sink.Close)
	if r := h.do("POST", "_sim/webhooks", "", `{"url":"`+sink.URL+`","drop_probability":1}`); r.status != http.StatusOK {
		t.Logf("control API refused webhook settings (%d %s): deliveries are not exercised", r.status, r.body)
	}
	if _, err := h.s.World().CreateJobs(world.JobInput{Repo: "octo-org/website", Labels: []string{"self-hosted"}, Count: 2}); err != nil {
		t.Fatal(err)
	}
	h.do("POST", "_sim/webhooks", "", `{"drop_probability":0}`)

	page, cursor, err := app.ListHookDeliveries(ctx, ghapi.ListDeliveriesOptions{PerPage: 1})
	if err != nil {
		t.Fatalf("list deliveries: %v", err)
	}
	if len(page) == 0 {
		t.Logf("no webhook deliveries recorded: get and redeliver answer 404")
		if _, err := app.GetHookDelivery(ctx, 1); err == nil {
			t.Errorf("get of a delivery that does not exist succeeded")
		}
		if err := app.RedeliverHookDelivery(ctx, 1); err == nil {
			t.Errorf("redelivery of a delivery that does not exist succeeded")
		}
		return false
	}
	if cursor == "" {
		t.Errorf("two deliveries listed one per page, but no next cursor")
	} else {
		next, _, err := app.ListHookDeliveries(ctx, ghapi.ListDeliveriesOptions{PerPage: 1, Cursor: cursor})
		if err != nil || len(next) != 1 || next[0].GetID() == page[0].GetID() {
			t.Errorf("second page: %v %v", next, err)
		}
	}
	d, err := app.GetHookDelivery(ctx, page[0].GetID())
	if err != nil || d.GetGUID() != page[0].GetGUID() {
		t.Errorf("get delivery: %v %v", d, err)
	}
	if err := app.RedeliverHookDelivery(ctx, page[0].GetID()); err != nil {
		t.Errorf("redeliver: %v", err)
	}
	return true
}

func restLabelNames(ls []*ghapi.RunnerLabel) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.GetName())
	}
	return out
}
