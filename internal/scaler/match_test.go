package scaler

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/runnerscaler/runnerscaler/internal/ghapi"
)

// matchAccess denies the (pool, repo) pairs in deny, fails those in fail, and
// allows the rest; it records what it was asked.
type matchAccess struct {
	deny, fail map[string]bool // "pool repo"
	mu         sync.Mutex
	asked      []string
}

func (f *matchAccess) MayUse(p Pool, r RepoRef) (bool, error) {
	k := p.Name + " " + r.FullName
	f.mu.Lock()
	f.asked = append(f.asked, k)
	f.mu.Unlock()
	if f.fail[k] {
		return false, errors.New("access list not fetched")
	}
	return !f.deny[k], nil
}

var _ AccessChecker = (*matchAccess)(nil)

func matchRepo(full string) RepoRef {
	owner, _, _ := strings.Cut(full, "/")
	return RepoRef{ID: 1, FullName: full, Owner: owner, Private: true}
}

func TestMatch(t *testing.T) {
	small := Pool{Name: "linux-small", Scope: ghapi.Org("octo-org"), RunnerGroup: "Default", OS: "linux", Arch: "x64", Order: 0}
	big := Pool{Name: "linux-big", Scope: ghapi.Org("octo-org"), RunnerGroup: "Default", OS: "linux", Arch: "x64", Labels: []string{"big"}, Order: 1}
	gpu := Pool{Name: "gpu", Scope: ghapi.Org("octo-org"), RunnerGroup: "gpu", OS: "linux", Arch: "x64", Labels: []string{"gpu"}, Order: 2}
	gpuEnt := Pool{Name: "gpu-ent", Scope: ghapi.Enterprise("big"), RunnerGroup: "gpu-shared", OS: "linux", Arch: "x64", Labels: []string{"gpu"}, Order: 3}
	web := Pool{Name: "web", Scope: ghapi.Repo("octo-org", "web"), RunnerGroup: "Default", OS: "linux", Arch: "x64", Labels: []string{"web"}, Order: 4}
	arm := Pool{Name: "arm", Scope: ghapi.Org("octo-org"), RunnerGroup: "Default", OS: "macos", Arch: "ARM64", Order: 5}
	twinA := Pool{Name: "twin-a", Scope: ghapi.Org("octo-org"), OS: "linux", Arch: "x64", Labels: []string{"twin"}, Order: 6}
	twinB := Pool{Name: "twin-b", Scope: ghapi.Org("octo-org"), OS: "linux", Arch: "x64", Labels: []string{"twin"}, Order: 7}

	all := []Pool{small, big, gpu, gpuEnt, web, arm, twinA, twinB}
	tests := []struct {
		name       string
		labels     []string
		repo       RepoRef
		pools      []Pool
		deny, fail []string
		nilAccess  bool
		want       string
		reasonHas  string
	}{
		{name: "self-hosted alone: least extra labels", labels: []string{"self-hosted"}, repo: matchRepo("octo-org/app"), want: "linux-small"},
		{name: "defaults present", labels: []string{"self-hosted", "linux", "x64"}, repo: matchRepo("octo-org/app"), want: "linux-small"},
		{name: "case-insensitive", labels: []string{"SELF-HOSTED", "Linux", "BIG"}, repo: matchRepo("Octo-Org/App"), want: "linux-big"},
		{name: "case-insensitive arch", labels: []string{"macOS", "arm64"}, repo: matchRepo("octo-org/app"), want: "arm"},
		{name: "label subset picks the pool with the label", labels: []string{"big"}, repo: matchRepo("octo-org/app"), want: "linux-big"},
		{name: "duplicate job labels", labels: []string{"big", "BIG", "linux"}, repo: matchRepo("octo-org/app"), want: "linux-big"},
		{name: "unmatched labels", labels: []string{"ubuntu-latest"}, repo: matchRepo("octo-org/app"), reasonHas: "no pool has labels [ubuntu-latest]"},
		{name: "one missing label", labels: []string{"gpu", "big"}, repo: matchRepo("octo-org/app"), reasonHas: "no pool has labels [gpu big]"},
		{name: "no labels", labels: nil, repo: matchRepo("octo-org/app"), reasonHas: "no labels"},
		{name: "org scope does not cover another org; enterprise does", labels: []string{"gpu"}, repo: matchRepo("other/app"), want: "gpu-ent"},
		{name: "no scope covers", labels: []string{"big"}, repo: matchRepo("other/app"), reasonHas: "no pool with labels [big] covers repository other/app"},
		{name: "repo scope covers its repo", labels: []string{"web"}, repo: matchRepo("OCTO-ORG/web"), want: "web"},
		{name: "repo scope covers only its repo", labels: []string{"web"}, repo: matchRepo("octo-org/api"), reasonHas: "covers repository octo-org/api"},
		{name: "owner from full name", labels: []string{"big"}, repo: RepoRef{FullName: "octo-org/app"}, want: "linux-big"},
		{name: "most specific wins over order", labels: []string{"gpu"}, repo: matchRepo("octo-org/ml"), pools: []Pool{gpuEnt, {Name: "gpu-fat", Scope: ghapi.Org("octo-org"), OS: "linux", Arch: "x64", Labels: []string{"gpu", "fat"}, Order: 0}}, want: "gpu-ent"},
		{name: "tie broken by order", labels: []string{"twin"}, repo: matchRepo("octo-org/app"), want: "twin-a"},
		{name: "tie broken by order, not slice position", labels: []string{"twin"}, repo: matchRepo("octo-org/app"), pools: []Pool{twinB, twinA}, want: "twin-a"},
		{name: "access denied falls to the next pool", labels: []string{"gpu"}, repo: matchRepo("octo-org/app"), deny: []string{"gpu octo-org/app"}, want: "gpu-ent"},
		{name: "access denied everywhere", labels: []string{"gpu"}, repo: matchRepo("octo-org/app"), deny: []string{"gpu octo-org/app", "gpu-ent octo-org/app"},
			reasonHas: "octo-org/app may not use runner group gpu of pool gpu; octo-org/app may not use runner group gpu-shared of pool gpu-ent"},
		{name: "access denied, single pool", labels: []string{"gpu"}, repo: matchRepo("octo-org/app"), pools: []Pool{gpu}, deny: []string{"gpu octo-org/app"},
			reasonHas: "octo-org/app may not use runner group gpu of pool gpu"},
		{name: "access unknown leaves unmatched", labels: []string{"gpu"}, repo: matchRepo("octo-org/app"), pools: []Pool{gpu}, fail: []string{"gpu octo-org/app"},
			reasonHas: "not known yet: access list not fetched"},
		{name: "access unknown falls to a known pool", labels: []string{"gpu"}, repo: matchRepo("octo-org/app"), fail: []string{"gpu octo-org/app"}, want: "gpu-ent"},
		{name: "repo scope skips group check", labels: []string{"web"}, repo: matchRepo("octo-org/web"), deny: []string{"web octo-org/web"}, want: "web"},
		{name: "nil access allows repo scope only", labels: []string{"web"}, repo: matchRepo("octo-org/web"), nilAccess: true, want: "web"},
		{name: "nil access denies groups", labels: []string{"big"}, repo: matchRepo("octo-org/app"), nilAccess: true, reasonHas: "no access checker"},
		{name: "no pools", labels: []string{"self-hosted"}, repo: matchRepo("octo-org/app"), pools: []Pool{}, reasonHas: "no pool has labels [self-hosted]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pools := tt.pools
			if pools == nil {
				pools = all
			}
			fa := &matchAccess{deny: matchKeySet(tt.deny), fail: matchKeySet(tt.fail)}
			var access AccessChecker = fa
			if tt.nilAccess {
				access = nil
			}
			got, reason := Match(tt.labels, tt.repo, pools, access)
			if got != tt.want {
				t.Fatalf("Match = %q (%s), want %q", got, reason, tt.want)
			}
			if reason == "" {
				t.Error("empty reason")
			}
			if tt.reasonHas != "" && !strings.Contains(reason, tt.reasonHas) {
				t.Errorf("reason %q does not contain %q", reason, tt.reasonHas)
			}
			for _, k := range fa.asked {
				if strings.HasPrefix(k, "web ") {
					t.Errorf("asked access for repo-scope pool: %s", k)
				}
			}
		})
	}
}

// TestMatchAsksAccessLazily checks that MayUse is asked in specificity order
// and only until a pool is allowed.
func TestMatchAsksAccessLazily(t *testing.T) {
	pools := []Pool{
		{Name: "c", Scope: ghapi.Org("o"), OS: "linux", Arch: "x64", Labels: []string{"l", "x", "y"}, Order: 0},
		{Name: "b", Scope: ghapi.Org("o"), OS: "linux", Arch: "x64", Labels: []string{"l", "x"}, Order: 1},
		{Name: "a", Scope: ghapi.Org("o"), OS: "linux", Arch: "x64", Labels: []string{"l"}, Order: 2},
		{Name: "other", Scope: ghapi.Org("o"), OS: "linux", Arch: "x64", Labels: []string{"m"}, Order: 3},
	}
	fa := &matchAccess{deny: matchKeySet([]string{"a o/r"})}
	got, reason := Match([]string{"l"}, matchRepo("o/r"), pools, fa)
	if got != "b" {
		t.Fatalf("Match = %q (%s), want b", got, reason)
	}
	if want := []string{"a o/r", "b o/r"}; strings.Join(fa.asked, ",") != strings.Join(want, ",") {
		t.Errorf("asked %v, want %v", fa.asked, want)
	}
}

func matchKeySet(keys []string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}
