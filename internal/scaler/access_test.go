package scaler

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/clocktest"
	"github.com/runnerscaler/runnerscaler/internal/ghapi"
	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

// accessWorld is the default world plus a second private repository in
// octo-org, with these groups:
//
//	octo-org  gpu      selected: octo-org/app; public not allowed
//	octo-org  open     all; public not allowed
//	octo-org  public   all; public allowed
//	octo-org  privy    private
//	octo-ent  shared   selected: octo-org; public not allowed
//	octo-ent  everyone all; public allowed
func accessWorld(t *testing.T) *groupSim {
	t.Helper()
	s := startGroupSim(t, world.Spec{
		Orgs: []world.OrgSpec{{Login: "octo-org", Repos: []world.RepoSpec{{Name: "infra", Private: true}}}},
		Groups: []world.GroupSpec{
			{Scope: "org:octo-org", Name: "gpu", Visibility: "selected", Repositories: []string{"octo-org/app"}},
			{Scope: "org:octo-org", Name: "open", Visibility: "all"},
			{Scope: "org:octo-org", Name: "public", Visibility: "all", AllowsPublicRepositories: true},
			{Scope: "org:octo-org", Name: "privy", Visibility: "private", AllowsPublicRepositories: true},
			{Scope: "enterprise:octo-ent", Name: "shared", Visibility: "selected", Organizations: []string{"octo-org"}},
			{Scope: "enterprise:octo-ent", Name: "everyone", Visibility: "all", AllowsPublicRepositories: true},
		},
	})
	return s
}

func (s *groupSim) repoRef(full string) RepoRef {
	s.t.Helper()
	r, ok := s.sim.World().Repo(full)
	if !ok {
		s.t.Fatalf("no repository %s", full)
	}
	return RepoRef{ID: r.ID, FullName: r.FullName(), Owner: r.Owner, Private: r.Private}
}

func accessOrgPool(group string) Pool {
	return Pool{Name: "p-" + group, Scope: ghapi.Org("octo-org"), RunnerGroup: group}
}

func accessEntPool(group string) Pool {
	return Pool{Name: "e-" + group, Scope: ghapi.Enterprise("octo-ent"), RunnerGroup: group}
}

func TestAccessCacheRules(t *testing.T) {
	s := accessWorld(t)
	c := NewAccessCache(s.gh)
	app, website, infra, ml := s.repoRef("octo-org/app"), s.repoRef("octo-org/website"), s.repoRef("octo-org/infra"), s.repoRef("octo-labs/ml")
	for _, tc := range []struct {
		name string
		pool Pool
		repo RepoRef
		want bool
	}{
		{"selected admits a listed repo", accessOrgPool("gpu"), app, true},
		{"selected refuses an unlisted repo", accessOrgPool("gpu"), infra, false},
		{"selected refuses a listed repo by name when the id is unknown", accessOrgPool("gpu"), RepoRef{FullName: "octo-org/app", Private: true}, true},
		{"all admits a private repo", accessOrgPool("open"), infra, true},
		{"all refuses a public repo without allows_public_repositories", accessOrgPool("open"), website, false},
		{"all admits a public repo with allows_public_repositories", accessOrgPool("public"), website, true},
		{"private admits a private repo", accessOrgPool("privy"), app, true},
		{"private refuses a public repo", accessOrgPool("privy"), website, false},
		{"org group refuses another org's repo", accessOrgPool("open"), ml, false},
		{"default group admits a private repo", accessOrgPool("Default"), app, true},
		{"default group named by omission", accessOrgPool(""), app, true},
		{"enterprise group shared with octo-org", accessEntPool("shared"), app, true},
		{"enterprise group not shared with octo-labs", accessEntPool("shared"), ml, false},
		{"enterprise group refuses public repo without allows_public_repositories", accessEntPool("shared"), website, false},
		{"enterprise group for all orgs", accessEntPool("everyone"), ml, true},
		{"enterprise group for all orgs, public allowed", accessEntPool("everyone"), website, true},
		{"repository pool", Pool{Name: "r", Scope: ghapi.Repo("octo-org", "app"), RunnerGroup: "Default"}, app, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.MayUse(tc.pool, tc.repo)
			if err != nil || got != tc.want {
				t.Errorf("MayUse(%s, %s) = %v, %v; want %v", tc.pool.RunnerGroup, tc.repo.FullName, got, err, tc.want)
			}
		})
	}
}

func TestAccessCacheUnknownGroupAndFailedFetch(t *testing.T) {
	s := accessWorld(t)
	c := NewAccessCache(s.gh)
	app := s.repoRef("octo-org/app")
	if ok, err := c.MayUse(accessOrgPool("ghost"), app); ok || !errors.Is(err, ErrRunnerGroupNotFound) {
		t.Errorf("MayUse(ghost) = %v, %v; want false, ErrRunnerGroupNotFound", ok, err)
	}

	// The next list of the enterprise's groups fails.
	fault := `{"route": "GET /enterprises/{enterprise}/actions/runner-groups", "status": 404, "count": 1}`
	resp, err := http.Post(s.url+"_sim/faults", "application/json", bytes.NewBufferString(fault))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("add fault: %s", resp.Status)
	}
	ok, err := c.MayUse(accessEntPool("shared"), app)
	if ok || err == nil {
		t.Fatalf("MayUse with a failing fetch = %v, %v; want false and an error", ok, err)
	}
	if !errors.Is(err, ghapi.ErrNotFound) {
		t.Errorf("error %v does not wrap the API error", err)
	}
	// Failures are not cached: the next question fetches and answers.
	if ok, err := c.MayUse(accessEntPool("shared"), app); !ok || err != nil {
		t.Errorf("MayUse after the fault = %v, %v; want true", ok, err)
	}
}

func TestAccessCacheTTLAndInvalidate(t *testing.T) {
	s := accessWorld(t)
	clock := clocktest.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	c := NewAccessCache(s.gh, WithAccessClock(clock.Now), WithAccessTTL(time.Minute))
	app, infra, ml := s.repoRef("octo-org/app"), s.repoRef("octo-org/infra"), s.repoRef("octo-labs/ml")
	ask := func() {
		t.Helper()
		for _, q := range []struct {
			pool Pool
			repo RepoRef
		}{{accessOrgPool("gpu"), app}, {accessOrgPool("gpu"), infra}, {accessEntPool("shared"), app}, {accessEntPool("shared"), ml}} {
			if _, err := c.MayUse(q.pool, q.repo); err != nil {
				t.Fatal(err)
			}
		}
	}
	wantFetch := map[string]int{
		"GET /orgs/{org}/actions/runner-groups":                                               1,
		"GET /orgs/{org}/actions/runner-groups/{runner_group_id}/repositories":                1,
		"GET /enterprises/{enterprise}/actions/runner-groups":                                 1,
		"GET /enterprises/{enterprise}/actions/runner-groups/{runner_group_id}/organizations": 1,
	}
	check := func(what string, before map[string]int, want map[string]int) {
		t.Helper()
		got := s.callsSince(before)
		if len(got) != len(want) {
			t.Errorf("%s: calls %v, want %v", what, got, want)
			return
		}
		for k, n := range want {
			if got[k] != n {
				t.Errorf("%s: calls %v, want %v", what, got, want)
				return
			}
		}
	}

	before := s.calls()
	ask()
	check("first questions", before, wantFetch)

	before = s.calls()
	for range 20 {
		ask()
	}
	clock.Advance(59 * time.Second)
	ask()
	check("steady state within the TTL", before, nil)

	before = s.calls()
	clock.Advance(2 * time.Second)
	ask()
	check("after the TTL", before, wantFetch)

	// The access list changes on GitHub; the cache still answers from its
	// copy until invalidated.
	gpu, _ := s.group(wOctoOrg, "gpu")
	if err := s.sim.World().SetGroupRepositories(wOctoOrg, gpu.ID, []int64{infra.ID}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.MayUse(accessOrgPool("gpu"), infra); ok {
		t.Error("cache answered from GitHub before the TTL or an invalidation")
	}
	before = s.calls()
	c.Invalidate()
	if ok, err := c.MayUse(accessOrgPool("gpu"), infra); !ok || err != nil {
		t.Errorf("after Invalidate MayUse(gpu, infra) = %v, %v; want true", ok, err)
	}
	check("after Invalidate", before, map[string]int{
		"GET /orgs/{org}/actions/runner-groups":                                1,
		"GET /orgs/{org}/actions/runner-groups/{runner_group_id}/repositories": 1,
	})
}

func TestAccessCacheConcurrentMissesShareOneFetch(t *testing.T) {
	s := accessWorld(t)
	c := NewAccessCache(s.gh)
	app, infra := s.repoRef("octo-org/app"), s.repoRef("octo-org/infra")
	before := s.calls()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo, want := app, true
			if i%2 == 1 {
				repo, want = infra, false
			}
			ok, err := c.MayUse(accessOrgPool("gpu"), repo)
			if err != nil || ok != want {
				errs <- errors.Join(err, errors.New("wrong answer"))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := s.callsSince(before)
	if got["GET /orgs/{org}/actions/runner-groups"] != 1 || got["GET /orgs/{org}/actions/runner-groups/{runner_group_id}/repositories"] != 1 || len(got) != 2 {
		t.Errorf("64 concurrent questions made %v, want one fetch of each", got)
	}
}

func TestAccessCacheWarm(t *testing.T) {
	s := accessWorld(t)
	c := NewAccessCache(s.gh)
	pools := []Pool{accessOrgPool("gpu"), accessEntPool("shared"), {Name: "r", Scope: ghapi.Repo("octo-org", "app")}}
	if err := c.Warm(context.Background(), pools); err != nil {
		t.Fatal(err)
	}
	before := s.calls()
	if ok, err := c.MayUse(accessOrgPool("gpu"), s.repoRef("octo-org/app")); !ok || err != nil {
		t.Errorf("MayUse = %v, %v", ok, err)
	}
	if ok, err := c.MayUse(accessEntPool("shared"), s.repoRef("octo-labs/ml")); ok || err != nil {
		t.Errorf("MayUse = %v, %v", ok, err)
	}
	if got := s.callsSince(before); len(got) != 0 {
		t.Errorf("questions after Warm called GitHub: %v", got)
	}
	if err := c.Warm(context.Background(), []Pool{accessOrgPool("ghost")}); !errors.Is(err, ErrRunnerGroupNotFound) {
		t.Errorf("Warm(ghost) = %v, want ErrRunnerGroupNotFound", err)
	}
}
