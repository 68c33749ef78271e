package scaler

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/config"
	"github.com/runnerscaler/runnerscaler/internal/ghapi"
	"github.com/runnerscaler/runnerscaler/internal/ghsim"
	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

// groupSim is a simulator on loopback and a client of it.
type groupSim struct {
	t   *testing.T
	sim *ghsim.Server
	url string
	gh  *ghapi.Client
}

// startGroupSim starts the default world (octo-ent; octo-org with app
// (private) and website (public); octo-labs with ml (private)) plus any
// extra spec.
func startGroupSim(t *testing.T, extra world.Spec) *groupSim {
	t.Helper()
	sim, err := ghsim.New(ghsim.Options{PAT: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.World().Apply(extra); err != nil {
		t.Fatal(err)
	}
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	gh, err := ghapi.New(ghapi.Options{APIURL: url, Token: "t", MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	return &groupSim{t: t, sim: sim, url: url, gh: gh}
}

// calls reads the API call counts from /_sim/stats.
func (s *groupSim) calls() map[string]int {
	s.t.Helper()
	resp, err := http.Get(s.url + "_sim/stats")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st ghsim.StatsSnapshot
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		s.t.Fatal(err)
	}
	return st.APICalls
}

// callsSince returns the calls made since before, by route.
func (s *groupSim) callsSince(before map[string]int) map[string]int {
	s.t.Helper()
	out := map[string]int{}
	for route, n := range s.calls() {
		if d := n - before[route]; d > 0 {
			out[route] = d
		}
	}
	return out
}

func groupWriteCalls(calls map[string]int) map[string]int {
	out := map[string]int{}
	for route, n := range calls {
		if !strings.HasPrefix(route, http.MethodGet+" ") {
			out[route] = n
		}
	}
	return out
}

func (s *groupSim) group(scope world.Scope, name string) (world.Group, bool) {
	s.t.Helper()
	gs, err := s.sim.World().Groups(scope)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, g := range gs {
		if !g.Inherited && strings.EqualFold(g.Name, name) {
			return g, true
		}
	}
	return world.Group{}, false
}

func (s *groupSim) repoID(full string) int64 {
	s.t.Helper()
	r, ok := s.sim.World().Repo(full)
	if !ok {
		s.t.Fatalf("no repository %s", full)
	}
	return r.ID
}

func (s *groupSim) orgID(login string) int64 {
	s.t.Helper()
	o, ok := s.sim.World().Org(login)
	if !ok {
		s.t.Fatalf("no org %s", login)
	}
	return o.ID
}

var (
	wOctoOrg = world.Scope{Kind: world.Org, Name: "octo-org"}
	wOctoEnt = world.Scope{Kind: world.Enterprise, Name: "octo-ent"}
)

const groupCIWorkflow = "octo-org/app/.github/workflows/ci.yml@refs/heads/main"

// keeperConfig is the configuration most keeper tests use.
func keeperConfig() []config.RunnerGroup {
	return []config.RunnerGroup{
		{
			Scope: config.Scope{Org: "octo-org"}, Name: "gpu", Visibility: "selected",
			Repositories:             []string{"app", "octo-org/website"},
			AllowsPublicRepositories: true,
			RestrictedToWorkflows:    true, SelectedWorkflows: []string{groupCIWorkflow},
		},
		{Scope: config.Scope{Org: "octo-labs"}, Name: "labs-all", Visibility: "all"},
		{
			Scope: config.Scope{Enterprise: "octo-ent"}, Name: "shared", Visibility: "selected",
			Organizations: []string{"octo-org"},
		},
	}
}

// checkKeeperShape asserts the groups of keeperConfig are in shape.
func checkKeeperShape(t *testing.T, s *groupSim) {
	t.Helper()
	gpu, ok := s.group(wOctoOrg, "gpu")
	if !ok {
		t.Fatal("group gpu not created in octo-org")
	}
	wantRepos := []int64{s.repoID("octo-org/app"), s.repoID("octo-org/website")}
	slices.Sort(wantRepos)
	if gpu.Visibility != "selected" || !gpu.AllowsPublicRepositories || !gpu.RestrictedToWorkflows ||
		!slices.Equal(gpu.SelectedWorkflows, []string{groupCIWorkflow}) || !slices.Equal(gpu.SelectedRepositoryIDs, wantRepos) {
		t.Errorf("gpu = %+v, want selected, public allowed, restricted to %s, repositories %v", gpu, groupCIWorkflow, wantRepos)
	}
	labs, ok := s.group(world.Scope{Kind: world.Org, Name: "octo-labs"}, "labs-all")
	if !ok || labs.Visibility != "all" || labs.AllowsPublicRepositories || labs.RestrictedToWorkflows {
		t.Errorf("labs-all = %+v (found %v), want visibility all, no public, unrestricted", labs, ok)
	}
	shared, ok := s.group(wOctoEnt, "shared")
	if !ok || shared.Visibility != "selected" || !slices.Equal(shared.SelectedOrganizationIDs, []int64{s.orgID("octo-org")}) {
		t.Errorf("shared = %+v (found %v), want selected with octo-org (%d) only", shared, ok, s.orgID("octo-org"))
	}
}

func TestGroupKeeperReconcileCreatesThenMakesNoWrites(t *testing.T) {
	s := startGroupSim(t, world.Spec{})
	ctx := context.Background()
	// A group the operator made by hand; the keeper must leave it alone.
	other, err := s.gh.CreateRunnerGroup(ctx, ghapi.Org("octo-org"), ghapi.RunnerGroupSpec{
		Name: "hand-made", Visibility: "selected", SelectedRepositoryIDs: []int64{s.repoID("octo-org/website")},
	})
	if err != nil {
		t.Fatal(err)
	}
	otherBefore, _ := s.group(wOctoOrg, "hand-made")

	k := NewGroupKeeper(s.gh, keeperConfig(), nil)
	changes := 0
	var snaps []GroupSnapshot
	k.SetObserver(func(s GroupSnapshot) {
		snaps = append(snaps, s)
		if s.Changed {
			changes++
		}
	})
	if err := k.Reconcile(ctx); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	checkKeeperShape(t, s)
	if changes != 3 || len(snaps) != 3 {
		t.Errorf("%d snapshots, %d of scopes changed, after creating groups in 3 scopes; want 3 and 3", len(snaps), changes)
	}

	before := s.calls()
	if err := k.Reconcile(ctx); err != nil {
		t.Fatalf("second Reconcile: %v", err)
	}
	calls := s.callsSince(before)
	if w := groupWriteCalls(calls); len(w) > 0 {
		t.Errorf("second Reconcile wrote %v, want no writes", w)
	}
	// Steady state: one group list per scope and one access list per
	// selected group; no id resolution.
	if n := calls["GET /installation/repositories"]; n != 0 {
		t.Errorf("second Reconcile resolved repository ids %d times, want 0", n)
	}
	if changes != 3 || len(snaps) != 6 {
		t.Errorf("after a pass without writes: %d snapshots, %d changed; want 6 and 3", len(snaps), changes)
	}
	checkKeeperShape(t, s)

	otherAfter, ok := s.group(wOctoOrg, "hand-made")
	if !ok || !reflect.DeepEqual(otherBefore, otherAfter) || otherAfter.ID != other.ID {
		t.Errorf("unconfigured group changed: before %+v, after %+v", otherBefore, otherAfter)
	}
}

func TestGroupKeeperPutsBackOutOfBandChanges(t *testing.T) {
	s := startGroupSim(t, world.Spec{})
	ctx := context.Background()
	k := NewGroupKeeper(s.gh, keeperConfig(), nil)
	if err := k.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	gpu, _ := s.group(wOctoOrg, "gpu")
	shared, _ := s.group(wOctoEnt, "shared")
	labs, _ := s.group(world.Scope{Kind: world.Org, Name: "octo-labs"}, "labs-all")

	// Someone changes all three by hand.
	f := false
	if _, err := s.gh.UpdateRunnerGroup(ctx, ghapi.Org("octo-org"), gpu.ID, ghapi.RunnerGroupUpdate{
		Name: "gpu", AllowsPublicRepositories: &f, RestrictedToWorkflows: &f,
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.gh.SetRunnerGroupRepositories(ctx, ghapi.Org("octo-org"), gpu.ID, []int64{s.repoID("octo-org/app")}); err != nil {
		t.Fatal(err)
	}
	if err := s.gh.SetRunnerGroupOrganizations(ctx, ghapi.Enterprise("octo-ent"), shared.ID, []int64{s.orgID("octo-labs")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.gh.UpdateRunnerGroup(ctx, ghapi.Org("octo-labs"), labs.ID, ghapi.RunnerGroupUpdate{
		Name: "labs-all", Visibility: "private",
	}); err != nil {
		t.Fatal(err)
	}

	before := s.calls()
	if err := k.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	checkKeeperShape(t, s)
	w := groupWriteCalls(s.callsSince(before))
	want := map[string]int{
		"PATCH /orgs/{org}/actions/runner-groups/{runner_group_id}":                           2,
		"PUT /orgs/{org}/actions/runner-groups/{runner_group_id}/repositories":                1,
		"PUT /enterprises/{enterprise}/actions/runner-groups/{runner_group_id}/organizations": 1,
	}
	if !reflect.DeepEqual(w, want) {
		t.Errorf("repair wrote %v, want %v", w, want)
	}
}

func TestGroupKeeperSwitchesVisibilityToSelected(t *testing.T) {
	s := startGroupSim(t, world.Spec{})
	ctx := context.Background()
	// The group exists with visibility all; config wants selected.
	if _, err := s.gh.CreateRunnerGroup(ctx, ghapi.Org("octo-org"), ghapi.RunnerGroupSpec{Name: "GPU"}); err != nil {
		t.Fatal(err)
	}
	k := NewGroupKeeper(s.gh, keeperConfig()[:1], nil)
	if err := k.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	g, _ := s.group(wOctoOrg, "gpu")
	if g.Name != "GPU" {
		t.Errorf("name = %q; the keeper matches names case-insensitively and must not rename", g.Name)
	}
	if g.Visibility != "selected" || len(g.SelectedRepositoryIDs) != 2 {
		t.Errorf("group = %+v, want selected with two repositories", g)
	}
	gs, _ := s.sim.World().Groups(wOctoOrg)
	n := 0
	for _, g := range gs {
		if strings.EqualFold(g.Name, "gpu") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d groups named gpu, want 1", n)
	}
}

func TestGroupKeeperKeepsGoingAfterErrors(t *testing.T) {
	s := startGroupSim(t, world.Spec{})
	ctx := context.Background()
	groups := []config.RunnerGroup{
		{Scope: config.Scope{Repo: "octo-org/app"}, Name: "nope", Visibility: "all"},
		{Scope: config.Scope{Org: "no-such-org"}, Name: "x", Visibility: "all"},
		{Scope: config.Scope{Org: "octo-org"}, Name: "partial", Visibility: "selected", Repositories: []string{"app", "missing", "octo-labs/ml"}},
		{Scope: config.Scope{Org: "octo-labs"}, Name: "fine", Visibility: "all"},
	}
	k := NewGroupKeeper(s.gh, groups, nil)
	err := k.Reconcile(ctx)
	if err == nil {
		t.Fatal("Reconcile succeeded; want the problems reported")
	}
	for _, want := range []string{"runner_groups[0]", "no-such-org", "missing", "octo-labs/ml"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, ok := s.group(world.Scope{Kind: world.Org, Name: "octo-labs"}, "fine"); !ok {
		t.Error("group fine not created after earlier failures")
	}
	p, ok := s.group(wOctoOrg, "partial")
	if !ok || !slices.Equal(p.SelectedRepositoryIDs, []int64{s.repoID("octo-org/app")}) {
		t.Errorf("partial = %+v (found %v), want created with the resolvable repository", p, ok)
	}
	// The unresolvable names do not make every pass rewrite the list.
	before := s.calls()
	_ = k.Reconcile(ctx)
	if w := groupWriteCalls(s.callsSince(before)); len(w) > 0 {
		t.Errorf("second pass wrote %v, want nothing", w)
	}
}

func TestGroupKeeperGroupID(t *testing.T) {
	s := startGroupSim(t, world.Spec{})
	ctx := context.Background()
	made, err := s.gh.CreateRunnerGroup(ctx, ghapi.Org("octo-org"), ghapi.RunnerGroupSpec{Name: "Builders"})
	if err != nil {
		t.Fatal(err)
	}
	k := NewGroupKeeper(s.gh, nil, nil)

	before := s.calls()
	for _, tc := range []struct {
		scope ghapi.Scope
		name  string
	}{
		{ghapi.Repo("octo-org", "app"), "anything"},
		{ghapi.Org("octo-org"), "Default"},
		{ghapi.Org("octo-org"), "default"},
		{ghapi.Enterprise("octo-ent"), ""},
	} {
		id, err := k.GroupID(ctx, tc.scope, tc.name)
		if err != nil || id != 1 {
			t.Errorf("GroupID(%s, %q) = %d, %v; want 1", tc.scope, tc.name, id, err)
		}
	}
	if c := s.callsSince(before); len(c) > 0 {
		t.Errorf("default group lookups called GitHub: %v", c)
	}

	for i := 0; i < 3; i++ {
		id, err := k.GroupID(ctx, ghapi.Org("octo-org"), "builders")
		if err != nil || id != made.ID {
			t.Fatalf("GroupID(builders) = %d, %v; want %d", id, err, made.ID)
		}
	}
	if c := s.callsSince(before); !reflect.DeepEqual(c, map[string]int{"GET /orgs/{org}/actions/runner-groups": 1}) {
		t.Errorf("three lookups made %v, want one list call", c)
	}

	if _, err := k.GroupID(ctx, ghapi.Org("octo-org"), "ghost"); !errors.Is(err, ErrRunnerGroupNotFound) {
		t.Errorf("GroupID(ghost) error = %v, want ErrRunnerGroupNotFound", err)
	}

	// Reconcile refreshes the cache: a configured group created by it is
	// known without another lookup.
	k2 := NewGroupKeeper(s.gh, keeperConfig(), nil)
	if err := k2.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	gpu, _ := s.group(wOctoOrg, "gpu")
	shared, _ := s.group(wOctoEnt, "shared")
	before = s.calls()
	if id, err := k2.GroupID(ctx, ghapi.Org("octo-org"), "gpu"); err != nil || id != gpu.ID {
		t.Errorf("GroupID(gpu) = %d, %v; want %d", id, err, gpu.ID)
	}
	if id, err := k2.GroupID(ctx, ghapi.Enterprise("octo-ent"), "Shared"); err != nil || id != shared.ID {
		t.Errorf("GroupID(shared) = %d, %v; want %d", id, err, shared.ID)
	}
	if id, err := k2.GroupID(ctx, ghapi.Org("octo-org"), "builders"); err != nil || id != made.ID {
		t.Errorf("GroupID(builders) after Reconcile = %d, %v; want %d", id, err, made.ID)
	}
	if c := s.callsSince(before); len(c) > 0 {
		t.Errorf("lookups after Reconcile called GitHub: %v", c)
	}
}

func TestGroupKeeperRun(t *testing.T) {
	s := startGroupSim(t, world.Spec{})
	k := NewGroupKeeper(s.gh, keeperConfig(), nil)
	passes := make(chan error, 16)
	k.afterPass = func(err error) { passes <- err }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx, time.Hour) }()
	select {
	case err := <-passes:
		if err != nil {
			t.Fatalf("first pass: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run made no pass")
	}
	checkKeeperShape(t, s)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop after cancel")
	}
}

// An AccessCache seeded by the keeper answers for the groups the keeper
// created or checked without reading them again: the keeper's own group
// list and access lists are the cache's.
func TestAccessCacheSeededByGroupKeeper(t *testing.T) {
	s := startGroupSim(t, world.Spec{})
	ctx := context.Background()
	cache := NewAccessCache(s.gh)
	k := NewGroupKeeper(s.gh, keeperConfig(), nil)
	k.SetObserver(cache.Seed)
	if err := k.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	pools := []Pool{
		{Name: "gpu", Scope: ghapi.Org("octo-org"), RunnerGroup: "gpu"},
		{Name: "labs", Scope: ghapi.Org("octo-labs"), RunnerGroup: "labs-all"},
		{Name: "ent", Scope: ghapi.Enterprise("octo-ent"), RunnerGroup: "shared"},
	}
	check := func(when string) {
		t.Helper()
		before := s.calls()
		for _, tt := range []struct {
			pool int
			repo RepoRef
			want bool
		}{
			{0, RepoRef{ID: s.repoID("octo-org/app"), FullName: "octo-org/app", Owner: "octo-org", Private: true}, true},
			{0, RepoRef{ID: s.repoID("octo-org/website"), FullName: "octo-org/website", Owner: "octo-org"}, true},
			{0, RepoRef{ID: 999, FullName: "octo-org/other", Owner: "octo-org", Private: true}, false},
			{1, RepoRef{ID: s.repoID("octo-labs/ml"), FullName: "octo-labs/ml", Owner: "octo-labs", Private: true}, true},
			{2, RepoRef{ID: s.repoID("octo-org/app"), FullName: "octo-org/app", Owner: "octo-org", Private: true}, true},
			{2, RepoRef{ID: s.repoID("octo-labs/ml"), FullName: "octo-labs/ml", Owner: "octo-labs", Private: true}, false},
		} {
			got, err := cache.MayUseContext(ctx, pools[tt.pool], tt.repo)
			if err != nil || got != tt.want {
				t.Errorf("%s: pool %s, %s: %v, %v; want %v", when, pools[tt.pool].Name, tt.repo.FullName, got, err, tt.want)
			}
		}
		if calls := s.callsSince(before); len(calls) != 0 {
			t.Errorf("%s: the seeded cache called %v", when, calls)
		}
	}
	check("after the creating pass")

	// Someone drops website from gpu by hand; the next pass puts it back
	// and the cache follows without a read of its own.
	if err := s.gh.SetRunnerGroupRepositories(ctx, ghapi.Org("octo-org"), mustGroupID(t, s, "octo-org", "gpu"),
		[]int64{s.repoID("octo-org/app")}); err != nil {
		t.Fatal(err)
	}
	if err := k.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	check("after a pass that fixed the access list")
}

func mustGroupID(t *testing.T, s *groupSim, org, name string) int64 {
	t.Helper()
	g, ok := s.group(world.Scope{Kind: world.Org, Name: org}, name)
	if !ok {
		t.Fatalf("no group %s in %s", name, org)
	}
	return g.ID
}
