package scaler

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/runnerscaler/runnerscaler/internal/ghapi"
)

// AccessChecker answers whether a repository may use a pool's runner group.
//
// MayUse returns (true, nil) when it may, (false, nil) when it may not, and an
// error when the answer is not known yet (the access list has not been
// fetched, or fetching it failed). On an error the job stays unmatched for now
// and the loop retries it; it is never matched on a guess. Implementations
// must be safe for concurrent use and should answer from a cache: Match calls
// MayUse on the matching path of every queued job.
type AccessChecker interface {
	MayUse(pool Pool, repo RepoRef) (bool, error)
}

// AllowAll is an AccessChecker that lets every repository use every runner
// group, for tests and for configurations with repository-scope pools only.
type AllowAll struct{}

// MayUse always allows.
func (AllowAll) MayUse(Pool, RepoRef) (bool, error) { return true, nil }

var _ AccessChecker = AllowAll{}

// Match picks the pool for a job with the given runs-on labels from repo.
//
// A pool is a candidate when every job label is among its EffectiveLabels
// (case-insensitive) and its scope covers the repository: an enterprise pool
// covers every repository (its runner group's access decides which
// organizations share it), an org pool the repositories owned by that
// organization, a repository pool that one repository. A candidate is taken
// only when access.MayUse allows the repository to use its runner group;
// repository-scope pools skip that check (their runners are the repository's
// own). A nil access allows no group, so only repository-scope pools match.
//
// The most specific candidate wins: the fewest pool labels beyond the job's,
// then the lowest config Order. Candidates are checked for access in that
// order, so MayUse is asked only until one is allowed.
//
// Match returns the winning pool's name and why; or "" and why not, which
// names the first obstacle met: no pool with the labels, no such pool
// covering the repository, or every such pool's group denied (or its access
// unknown).
func Match(labels []string, repo RepoRef, pools []Pool, access AccessChecker) (pool string, reason string) {
	want := normalizeLabels(labels)
	if len(want) == 0 {
		return "", "job has no labels"
	}
	type candidate struct {
		pool  Pool
		extra int
	}
	var (
		cands      []candidate
		labelsSeen bool
	)
	for _, p := range pools {
		have := make(map[string]bool)
		for _, l := range p.EffectiveLabels() {
			have[strings.ToLower(l)] = true
		}
		if !containsAll(have, want) {
			continue
		}
		labelsSeen = true
		if !scopeCovers(p.Scope, repo) {
			continue
		}
		cands = append(cands, candidate{pool: p, extra: len(have) - len(want)})
	}
	if !labelsSeen {
		return "", fmt.Sprintf("no pool has labels %s", formatLabels(labels))
	}
	if len(cands) == 0 {
		return "", fmt.Sprintf("no pool with labels %s covers repository %s", formatLabels(labels), repoName(repo))
	}
	slices.SortStableFunc(cands, func(a, b candidate) int {
		if c := cmp.Compare(a.extra, b.extra); c != 0 {
			return c
		}
		return cmp.Compare(a.pool.Order, b.pool.Order)
	})
	var denied []string
	for _, c := range cands {
		p := c.pool
		if p.Scope.Kind != ghapi.ScopeRepo {
			if access == nil {
				denied = append(denied, fmt.Sprintf("no access checker for runner group %s of pool %s", p.RunnerGroup, p.Name))
				continue
			}
			ok, err := access.MayUse(p, repo)
			if err != nil {
				denied = append(denied, fmt.Sprintf("access of %s to runner group %s of pool %s not known yet: %v", repoName(repo), p.RunnerGroup, p.Name, err))
				continue
			}
			if !ok {
				denied = append(denied, fmt.Sprintf("%s may not use runner group %s of pool %s", repoName(repo), p.RunnerGroup, p.Name))
				continue
			}
		}
		return p.Name, fmt.Sprintf("labels %s match pool %s (%s, runner group %s, %d extra labels)",
			formatLabels(labels), p.Name, p.Scope, p.RunnerGroup, c.extra)
	}
	return "", strings.Join(denied, "; ")
}

// scopeCovers reports whether runners registered at s can take jobs of repo,
// before runner-group access is considered.
func scopeCovers(s ghapi.Scope, repo RepoRef) bool {
	owner, full := repoOwner(repo), repoName(repo)
	switch s.Kind {
	case ghapi.ScopeEnterprise:
		return true
	case ghapi.ScopeOrg:
		return owner != "" && strings.EqualFold(owner, s.Name)
	case ghapi.ScopeRepo:
		return full != "" && strings.EqualFold(full, s.Name+"/"+s.Repo)
	}
	return false
}

// repoOwner is the repository's owner, from Owner or else from FullName.
func repoOwner(r RepoRef) string {
	if r.Owner != "" {
		return r.Owner
	}
	owner, _, _ := strings.Cut(r.FullName, "/")
	return owner
}

// repoName is the repository's full name for matching and messages.
func repoName(r RepoRef) string {
	if r.FullName != "" {
		return r.FullName
	}
	if r.ID != 0 {
		return fmt.Sprintf("repository %d", r.ID)
	}
	return "unknown repository"
}

// normalizeLabels lower-cases labels and drops empty ones and repeats.
func normalizeLabels(labels []string) []string {
	out := make([]string, 0, len(labels))
	for _, l := range labels {
		k := strings.ToLower(l)
		if k == "" || slices.Contains(out, k) {
			continue
		}
		out = append(out, k)
	}
	return out
}

func containsAll(have map[string]bool, want []string) bool {
	for _, l := range want {
		if !have[l] {
			return false
		}
	}
	return true
}

// formatLabels renders labels as [a b c], as the job asked for them.
func formatLabels(labels []string) string {
	return "[" + strings.Join(labels, " ") + "]"
}
