package ghapi_test

import (
	"context"
	"encoding/json"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/ghapi"
	"github.com/runnerscaler/runnerscaler/internal/oapitest"
)

// opCase is one client operation and the request GitHub must receive for it.
type opCase struct {
	op     string     // OpenAPI operationId the request must route to
	method string     // expected method
	path   string     // expected concrete path
	query  url.Values // expected query parameters (exact)
	body   string     // expected JSON body, compared as JSON; "" for none
	call   func(ctx context.Context, c *ghapi.Client) (any, error)
	check  func(t *testing.T, got any)
}

var (
	entScope  = ghapi.Enterprise("big-corp")
	orgScope  = ghapi.Org("acme")
	repoScope = ghapi.Repo("acme", "web")
)

func pageQ(extra ...string) url.Values {
	q := url.Values{"per_page": {"100"}, "page": {"1"}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return q
}

// scopeName returns the OpenAPI operationId suffix and path prefix GitHub uses.
func scopeParts(s ghapi.Scope) (opPrefix, suffix, prefix string) {
	switch s.Kind {
	case ghapi.ScopeEnterprise:
		return "enterprise-admin/", "-for-enterprise", "/enterprises/big-corp"
	case ghapi.ScopeOrg:
		return "actions/", "-for-org", "/orgs/acme"
	default:
		return "actions/", "-for-repo", "/repos/acme/web"
	}
}

func runnerCases(s ghapi.Scope) []opCase {
	opp, suf, pre := scopeParts(s)
	// GitHub names the enterprise JIT operation under actions/, not enterprise-admin/.
	jitOp := "actions/generate-runner-jitconfig" + suf
	fromSuf := strings.Replace(suf, "for-", "from-", 1)
	return []opCase{
		{op: opp + "list-self-hosted-runners" + suf, method: "GET", path: pre + "/actions/runners", query: pageQ("name", "builder-1"),
			call: func(ctx context.Context, c *ghapi.Client) (any, error) {
				return c.ListRunners(ctx, s, ghapi.ListRunnersOptions{Name: "builder-1"})
			},
			check: func(t *testing.T, got any) {
				rs := got.([]*ghapi.Runner)
				if len(rs) == 0 || rs[0].GetID() == 0 || rs[0].GetName() == "" || len(rs[0].Labels) == 0 {
					t.Errorf("runners not decoded: %+v", rs)
				}
			}},
		{op: opp + "list-runner-applications" + suf, method: "GET", path: pre + "/actions/runners/downloads",
			call: func(ctx context.Context, c *ghapi.Client) (any, error) { return c.ListRunnerApplications(ctx, s) },
			check: func(t *testing.T, got any) {
				apps := got.([]*ghapi.RunnerApplication)
				if len(apps) == 0 || apps[0].GetDownloadURL() == "" || apps[0].GetOS() == "" {
					t.Errorf("downloads not decoded: %+v", apps)
				}
			}},
		{op: jitOp, method: "POST", path: pre + "/actions/runners/generate-jitconfig",
			body: `{"name":"rs-linux-1","runner_group_id":7,"labels":["self-hosted","linux","x64"],"work_folder":"_work"}`,
			call: func(ctx context.Context, c *ghapi.Client) (any, error) {
				return c.GenerateJITConfig(ctx, s, ghapi.JITRequest{Name: "rs-linux-1", RunnerGroupID: 7, Labels: []string{"self-hosted", "linux", "x64"}, WorkFolder: "_work"})
			},
			check: func(t *testing.T, got any) {
				j := got.(*ghapi.JITConfig)
				if j.Runner.GetID() == 0 || j.Encoded.Reveal() == "" {
					t.Errorf("jit config not decoded: runner %+v, encoded empty=%v", j.Runner, j.Encoded == "")
				}
			}},
		{op: opp + "create-registration-token" + suf, method: "POST", path: pre + "/actions/runners/registration-token",
			call: func(ctx context.Context, c *ghapi.Client) (any, error) { return c.CreateRegistrationToken(ctx, s) },
			check: func(t *testing.T, got any) {
				tok := got.(*ghapi.RegistrationToken)
				if tok.Token.Reveal() == "" || tok.ExpiresAt.IsZero() {
					t.Errorf("registration token not decoded")
				}
			}},
		{op: opp + "create-remove-token" + suf, method: "POST", path: pre + "/actions/runners/remove-token",
			call: func(ctx context.Context, c *ghapi.Client) (any, error) { return c.CreateRemoveToken(ctx, s) },
			check: func(t *testing.T, got any) {
				if got.(*ghapi.RemoveToken).Token.Reveal() == "" {
					t.Errorf("remove token not decoded")
				}
			}},
		{op: opp + "get-self-hosted-runner" + suf, method: "GET", path: pre + "/actions/runners/23",
			call: func(ctx context.Context, c *ghapi.Client) (any, error) { return c.GetRunner(ctx, s, 23) },
			check: func(t *testing.T, got any) {
				if got.(*ghapi.Runner).GetName() == "" {
					t.Errorf("runner not decoded")
				}
			}},
		{op: opp + "delete-self-hosted-runner" + fromSuf, method: "DELETE", path: pre + "/actions/runners/23",
			call: func(ctx context.Context, c *ghapi.Client) (any, error) { return nil, c.DeleteRunner(ctx, s, 23) }},
		{op: opp + "list-labels-for-self-hosted-runner" + suf, method: "GET", path: pre + "/actions/runners/23/labels",
			call:  func(ctx context.Context, c *ghapi.Client) (any, error) { return c.ListRunnerLabels(ctx, s, 23) },
			check: checkLabels},
		{op: opp + "add-custom-labels-to-self-hosted-runner" + suf, method: "POST", path: pre + "/actions/runners/23/labels",
			body: `{"labels":["gpu","draining"]}`,
			call: func(ctx context.Context, c *ghapi.Client) (any, error) {
				return c.AddRunnerLabels(ctx, s, 23, []string{"gpu", "draining"})
			},
			check: checkLabels},
		{op: opp + "set-custom-labels-for-self-hosted-runner" + suf, method: "PUT", path: pre + "/actions/runners/23/labels",
			body:  `{"labels":[]}`,
			call:  func(ctx context.Context, c *ghapi.Client) (any, error) { return c.SetRunnerLabels(ctx, s, 23, nil) },
			check: checkLabels},
		{op: opp + "remove-all-custom-labels-from-self-hosted-runner" + suf, method: "DELETE", path: pre + "/actions/runners/23/labels",
			call:  func(ctx context.Context, c *ghapi.Client) (any, error) { return c.RemoveAllRunnerLabels(ctx, s, 23) },
			check: checkLabels},
		{op: opp + "remove-custom-label-from-self-hosted-runner" + suf, method: "DELETE", path: pre + "/actions/runners/23/labels/gpu",
			call:  func(ctx context.Context, c *ghapi.Client) (any, error) { return c.RemoveRunnerLabel(ctx, s, 23, "gpu") },
			check: checkLabels},
	}
}

func checkLabels(t *testing.T, got any) {
	t.Helper()
	ls := got.([]*ghapi.RunnerLabel)
	if len(ls) == 0 || ls[0].GetName() == "" {
		t.Errorf("labels not decoded: %+v", ls)
	}
}

func groupCases(s ghapi.Scope) []opCase {
	opp, suf, pre := scopeParts(s)
	fromSuf := strings.Replace(suf, "for-", "from-", 1)
	inSuf := strings.Replace(suf, "for-", "in-", 1)
	g := pre + "/actions/runner-groups"
	visible := pageQ("visible_to_repository", "web")
	listOpts := ghapi.ListRunnerGroupsOptions{VisibleToRepository: "web"}
	createBody := `{"name":"ci","visibility":"selected","selected_repository_ids":[32,91],"allows_public_repositories":false}`
	spec := ghapi.RunnerGroupSpec{Name: "ci", Visibility: "selected", SelectedRepositoryIDs: []int64{32, 91}, AllowsPublicRepositories: ptr(false)}
	if s.Kind == ghapi.ScopeEnterprise {
		visible = pageQ("visible_to_organization", "acme")
		listOpts = ghapi.ListRunnerGroupsOptions{VisibleToOrganization: "acme"}
		createBody = `{"name":"ci","visibility":"selected","selected_organization_ids":[32,91],"allows_public_repositories":false}`
		spec = ghapi.RunnerGroupSpec{Name: "ci", Visibility: "selected", SelectedOrganizationIDs: []int64{32, 91}, AllowsPublicRepositories: ptr(false)}
	}
	checkGroup := func(t *testing.T, got any) {
		if gr := got.(*ghapi.RunnerGroup); gr.ID == 0 || gr.Name == "" {
			t.Errorf("group not decoded: %+v", gr)
		}
	}
	cases := []opCase{
		{op: opp + "list-self-hosted-runner-groups" + suf, method: "GET", path: g, query: visible,
			call: func(ctx context.Context, c *ghapi.Client) (any, error) { return c.ListRunnerGroups(ctx, s, listOpts) },
			check: func(t *testing.T, got any) {
				if gs := got.([]*ghapi.RunnerGroup); len(gs) == 0 || gs[0].Name == "" {
					t.Errorf("groups not decoded: %+v", gs)
				}
			}},
		{op: opp + "create-self-hosted-runner-group" + suf, method: "POST", path: g, body: createBody,
			call:  func(ctx context.Context, c *ghapi.Client) (any, error) { return c.CreateRunnerGroup(ctx, s, spec) },
			check: checkGroup},
		{op: opp + "get-self-hosted-runner-group" + suf, method: "GET", path: g + "/9",
			call:  func(ctx context.Context, c *ghapi.Client) (any, error) { return c.GetRunnerGroup(ctx, s, 9) },
			check: checkGroup},
		{op: opp + "update-self-hosted-runner-group" + suf, method: "PATCH", path: g + "/9",
			body: `{"name":"ci-2","visibility":"all","restricted_to_workflows":true,"selected_workflows":["acme/web/.github/workflows/ci.yml@main"]}`,
			call: func(ctx context.Context, c *ghapi.Client) (any, error) {
				return c.UpdateRunnerGroup(ctx, s, 9, ghapi.RunnerGroupUpdate{Name: "ci-2", Visibility: "all", RestrictedToWorkflows: ptr(true),
					SelectedWorkflows: []string{"acme/web/.github/workflows/ci.yml@main"}})
			},
			check: checkGroup},
		{op: opp + "delete-self-hosted-runner-group" + fromSuf, method: "DELETE", path: g + "/9",
			call: func(ctx context.Context, c *ghapi.Client) (any, error) { return nil, c.DeleteRunnerGroup(ctx, s, 9) }},
		{op: opp + "list-self-hosted-runners-in-group" + suf, method: "GET", path: g + "/9/runners", query: pageQ(),
			call: func(ctx context.Context, c *ghapi.Client) (any, error) { return c.ListRunnerGroupRunners(ctx, s, 9) },
			check: func(t *testing.T, got any) {
				if rs := got.([]*ghapi.Runner); len(rs) == 0 || rs[0].GetID() == 0 {
					t.Errorf("runners not decoded: %+v", rs)
				}
			}},
		{op: opp + "set-self-hosted-runners-in-group" + suf, method: "PUT", path: g + "/9/runners", body: `{"runners":[23,24]}`,
			call: func(ctx context.Context, c *ghapi.Client) (any, error) {
				return nil, c.SetRunnerGroupRunners(ctx, s, 9, []int64{23, 24})
			}},
		{op: opp + "add-self-hosted-runner-to-group" + suf, method: "PUT", path: g + "/9/runners/23",
			call: func(ctx context.Context, c *ghapi.Client) (any, error) {
				return nil, c.AddRunnerGroupRunner(ctx, s, 9, 23)
			}},
		{op: opp + "remove-self-hosted-runner-from-group" + suf, method: "DELETE", path: g + "/9/runners/23",
			call: func(ctx context.Context, c *ghapi.Client) (any, error) {
				return nil, c.RemoveRunnerGroupRunner(ctx, s, 9, 23)
			}},
	}
	if s.Kind == ghapi.ScopeOrg {
		cases = append(cases,
			opCase{op: "actions/list-repo-access-to-self-hosted-runner-group" + inSuf, method: "GET", path: g + "/9/repositories", query: pageQ(),
				call: func(ctx context.Context, c *ghapi.Client) (any, error) {
					return c.ListRunnerGroupRepositories(ctx, s, 9)
				},
				check: func(t *testing.T, got any) {
					if rs := got.([]*ghapi.Repository); len(rs) == 0 || rs[0].GetFullName() == "" {
						t.Errorf("repositories not decoded: %+v", rs)
					}
				}},
			opCase{op: "actions/set-repo-access-to-self-hosted-runner-group" + inSuf, method: "PUT", path: g + "/9/repositories",
				body: `{"selected_repository_ids":[32,91]}`,
				call: func(ctx context.Context, c *ghapi.Client) (any, error) {
					return nil, c.SetRunnerGroupRepositories(ctx, s, 9, []int64{32, 91})
				}},
			opCase{op: "actions/add-repo-access-to-self-hosted-runner-group" + inSuf, method: "PUT", path: g + "/9/repositories/32",
				call: func(ctx context.Context, c *ghapi.Client) (any, error) {
					return nil, c.AddRunnerGroupRepository(ctx, s, 9, 32)
				}},
			opCase{op: "actions/remove-repo-access-to-self-hosted-runner-group" + inSuf, method: "DELETE", path: g + "/9/repositories/32",
				call: func(ctx context.Context, c *ghapi.Client) (any, error) {
					return nil, c.RemoveRunnerGroupRepository(ctx, s, 9, 32)
				}},
		)
	} else {
		cases = append(cases,
			opCase{op: "enterprise-admin/list-org-access-to-self-hosted-runner-group" + inSuf, method: "GET", path: g + "/9/organizations", query: pageQ(),
				call: func(ctx context.Context, c *ghapi.Client) (any, error) {
					return c.ListRunnerGroupOrganizations(ctx, s, 9)
				},
				check: func(t *testing.T, got any) {
					if os := got.([]*ghapi.Organization); len(os) == 0 || os[0].GetLogin() == "" {
						t.Errorf("organizations not decoded: %+v", os)
					}
				}},
			opCase{op: "enterprise-admin/set-org-access-to-self-hosted-runner-group" + inSuf, method: "PUT", path: g + "/9/organizations",
				body: `{"selected_organization_ids":[32,91]}`,
				call: func(ctx context.Context, c *ghapi.Client) (any, error) {
					return nil, c.SetRunnerGroupOrganizations(ctx, s, 9, []int64{32, 91})
				}},
			opCase{op: "enterprise-admin/add-org-access-to-self-hosted-runner-group" + inSuf, method: "PUT", path: g + "/9/organizations/32",
				call: func(ctx context.Context, c *ghapi.Client) (any, error) {
					return nil, c.AddRunnerGroupOrganization(ctx, s, 9, 32)
				}},
			opCase{op: "enterprise-admin/remove-org-access-to-self-hosted-runner-group" + inSuf, method: "DELETE", path: g + "/9/organizations/32",
				call: func(ctx context.Context, c *ghapi.Client) (any, error) {
					return nil, c.RemoveRunnerGroupOrganization(ctx, s, 9, 32)
				}},
		)
	}
	return cases
}

// otherCases cover the endpoints outside the seed pages that the daemon uses.
func otherCases() []opCase {
	return []opCase{
		{op: "enterprise-admin/get-runner-version-deprecation-for-enterprise", method: "GET", path: "/enterprises/big-corp/actions/runners/deprecations/2.300.0",
			call: func(ctx context.Context, c *ghapi.Client) (any, error) {
				return c.GetRunnerVersionDeprecation(ctx, entScope, "2.300.0")
			},
			check: func(t *testing.T, got any) {
				if d := got.(*ghapi.RunnerVersionDeprecation); d.RunnerVersion == "" || d.RuntimeDeprecatesAt == nil {
					t.Errorf("deprecation not decoded: %+v", d)
				}
			}},
		{op: "actions/get-job-for-workflow-run", method: "GET", path: "/repos/acme/web/actions/jobs/399444496",
			call: func(ctx context.Context, c *ghapi.Client) (any, error) {
				return c.GetWorkflowJob(ctx, repoScope, 399444496)
			},
			check: func(t *testing.T, got any) {
				if j := got.(*ghapi.WorkflowJob); j.GetID() == 0 || j.GetStatus() == "" {
					t.Errorf("job not decoded: %+v", j)
				}
			}},
		{op: "rate-limit/get", method: "GET", path: "/rate_limit",
			call: func(ctx context.Context, c *ghapi.Client) (any, error) { return c.GetRateLimits(ctx, orgScope) },
			check: func(t *testing.T, got any) {
				if r := got.(*ghapi.RateLimits); r == nil || r.Core == nil || r.Core.Limit == 0 {
					t.Errorf("rate limits not decoded: %+v", r)
				}
			}},
		{op: "apps/list-repos-accessible-to-installation", method: "GET", path: "/installation/repositories", query: pageQ(),
			call: func(ctx context.Context, c *ghapi.Client) (any, error) {
				return c.ListInstallationRepositories(ctx, orgScope)
			},
			check: func(t *testing.T, got any) {
				if rs := got.([]*ghapi.Repository); len(rs) == 0 || rs[0].GetID() == 0 {
					t.Errorf("repositories not decoded: %+v", rs)
				}
			}},
	}
}

func allCases() []opCase {
	var cases []opCase
	for _, s := range []ghapi.Scope{entScope, orgScope, repoScope} {
		cases = append(cases, runnerCases(s)...)
		if s.Kind != ghapi.ScopeRepo {
			cases = append(cases, groupCases(s)...)
		}
	}
	return append(cases, otherCases()...)
}

func ptr[T any](v T) *T { return &v }

func newPATClient(t *testing.T, srv *oapitest.Server) *ghapi.Client {
	t.Helper()
	c, err := ghapi.New(ghapi.Options{APIURL: srv.URL, Token: "ghp_testtoken", UserAgent: "runnerscaler-test"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestEveryOperationAgainstOpenAPI sends every operation to a server that
// validates request and response against GitHub's OpenAPI description, and
// checks the request the client built.
func TestEveryOperationAgainstOpenAPI(t *testing.T) {
	for _, prefix := range []string{"", "/api/v3"} { // github.com and GHES layouts
		var opts []oapitest.Option
		if prefix != "" {
			opts = append(opts, oapitest.WithPrefix(prefix))
		}
		srv := oapitest.NewServer(t, opts...)
		c := newPATClient(t, srv)
		for _, tc := range allCases() {
			t.Run(strings.TrimPrefix(prefix, "/")+tc.op, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				before := len(srv.Requests())
				got, err := tc.call(ctx, c)
				if err != nil {
					t.Fatalf("call: %v", err)
				}
				reqs := srv.Requests()[before:]
				if len(reqs) != 1 {
					t.Fatalf("want exactly one request, got %d", len(reqs))
				}
				r := reqs[0]
				if r.OperationID != tc.op {
					t.Errorf("routed to %q, want %q", r.OperationID, tc.op)
				}
				if r.Method != tc.method || r.Path != prefix+tc.path {
					t.Errorf("request %s %s, want %s %s", r.Method, r.Path, tc.method, prefix+tc.path)
				}
				wantQ := tc.query
				if wantQ == nil {
					wantQ = url.Values{}
				}
				if !reflect.DeepEqual(r.Query, wantQ) {
					t.Errorf("query %v, want %v", r.Query, wantQ)
				}
				assertJSONBody(t, r.Body, tc.body)
				assertHeaders(t, r)
				if tc.check != nil {
					tc.check(t, got)
				}
			})
		}
	}
}

func assertHeaders(t *testing.T, r oapitest.Request) {
	t.Helper()
	want := map[string]string{
		"Authorization":        "Bearer ghp_testtoken",
		"X-Github-Api-Version": "2022-11-28",
		"User-Agent":           "runnerscaler-test",
	}
	for k, v := range want {
		if got := r.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if acc := r.Header.Get("Accept"); !strings.HasPrefix(acc, "application/vnd.github") {
		t.Errorf("Accept = %q, want GitHub's media type", acc)
	}
	if len(r.Body) > 0 && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Errorf("Content-Type = %q for a JSON body", r.Header.Get("Content-Type"))
	}
}

func assertJSONBody(t *testing.T, got []byte, want string) {
	t.Helper()
	if want == "" {
		if len(strings.TrimSpace(string(got))) != 0 {
			t.Errorf("unexpected body %s", got)
		}
		return
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("body %s, want %s", got, want)
	}
}

// TestSeedOperationsAllCovered lists the runner and runner-group operations
// from the OpenAPI description (the seed pages' endpoints, every scope) and
// fails for any that no client operation exercises.
func TestSeedOperationsAllCovered(t *testing.T) {
	covered := map[string]bool{}
	for _, tc := range allCases() {
		covered[tc.op] = true
	}
	var seed, missing []string
	for _, op := range oapitest.Operations(t) {
		if !strings.Contains(op.DocsURL, "/rest/actions/self-hosted-runners#") &&
			!strings.Contains(op.DocsURL, "/rest/actions/self-hosted-runner-groups#") {
			continue
		}
		seed = append(seed, op.OperationID)
		if !covered[op.OperationID] {
			missing = append(missing, op.Method+" "+op.Path+" ("+op.OperationID+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d seed operations have no client operation:\n%s", len(missing), strings.Join(missing, "\n"))
	}
	// 12 runner endpoints at each of 3 scopes, the enterprise runner-version
	// schedule, and 13 runner-group endpoints at each of 2 scopes.
	if len(seed) != 63 {
		t.Errorf("found %d seed operations in the OpenAPI file, expected 63: has the file changed?", len(seed))
	}
}
