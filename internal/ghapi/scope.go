package ghapi

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ScopeKind says at which level of GitHub a runner is registered.
type ScopeKind int

// The three places a self-hosted runner can be registered.
const (
	ScopeEnterprise ScopeKind = iota + 1
	ScopeOrg
	ScopeRepo
)

func (k ScopeKind) String() string {
	switch k {
	case ScopeEnterprise:
		return "enterprise"
	case ScopeOrg:
		return "org"
	case ScopeRepo:
		return "repo"
	}
	return "unknown"
}

// Scope names an enterprise, an organization or a repository. The zero value is
// invalid; build one with Enterprise, Org, Repo or ParseRepo.
type Scope struct {
	Kind ScopeKind
	// Name is the enterprise slug, the organization login, or the repository
	// owner for ScopeRepo.
	Name string
	// Repo is the repository name for ScopeRepo and empty otherwise.
	Repo string
}

// ErrUnsupportedScope is returned for an operation GitHub does not offer at
// the given scope (runner groups at repository scope, for example).
var ErrUnsupportedScope = errors.New("operation not available at this scope")

// Enterprise returns the scope of an enterprise by slug (or id).
func Enterprise(slug string) Scope { return Scope{Kind: ScopeEnterprise, Name: slug} }

// Org returns the scope of an organization.
func Org(login string) Scope { return Scope{Kind: ScopeOrg, Name: login} }

// Repo returns the scope of one repository.
func Repo(owner, name string) Scope { return Scope{Kind: ScopeRepo, Name: owner, Repo: name} }

// ParseRepo parses "owner/name".
func ParseRepo(full string) (Scope, error) {
	owner, name, ok := strings.Cut(full, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return Scope{}, fmt.Errorf("repository %q: want owner/name", full)
	}
	return Repo(owner, name), nil
}

// Validate reports a scope that cannot address anything.
func (s Scope) Validate() error {
	switch s.Kind {
	case ScopeEnterprise, ScopeOrg:
		if s.Name == "" || s.Repo != "" {
			return fmt.Errorf("%s scope needs exactly a name", s.Kind)
		}
	case ScopeRepo:
		if s.Name == "" || s.Repo == "" {
			return errors.New("repo scope needs owner and name")
		}
	default:
		return errors.New("scope kind not set")
	}
	return nil
}

// String renders the scope as "org:acme", "repo:acme/web" or "enterprise:big";
// it is the key used for caches and logs.
func (s Scope) String() string {
	if s.Kind == ScopeRepo {
		return "repo:" + s.Name + "/" + s.Repo
	}
	return s.Kind.String() + ":" + s.Name
}

// prefix is the REST path of the scope, without leading or trailing slash.
func (s Scope) prefix() string {
	switch s.Kind {
	case ScopeEnterprise:
		return "enterprises/" + url.PathEscape(s.Name)
	case ScopeOrg:
		return "orgs/" + url.PathEscape(s.Name)
	default:
		return "repos/" + url.PathEscape(s.Name) + "/" + url.PathEscape(s.Repo)
	}
}

// owner is the account whose installation serves the scope.
func (s Scope) owner() string { return s.Name }
