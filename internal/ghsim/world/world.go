package world

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// World holds the simulated GitHub. Mutations that can let a queued job
// start (a new job, a runner coming online, a job finishing, a label or
// access change) assign jobs before they return, as GitHub does at once.
type World struct {
	mu         sync.Mutex
	clock      Clock
	enterprise Organization // the one enterprise: ID and slug (Login)
	orgs       map[string]*Organization
	repos      map[string]*Repository // by lower-case full name
	groups     map[groupKey]*Group
	runners    map[int64]*Runner
	jobs       map[int64]*Job
	jobOrder   []int64 // creation order, for fair assignment
	labelIDs   map[string]int64
	busyLag    time.Duration
	violations Violations
	observers  []func(Event)

	nextID      int64 // orgs, repos, enterprise
	nextGroupID int64
	nextRunner  int64
	nextJob     int64
	nextRun     int64
	nextLabel   int64
}

type groupKey struct {
	scope Scope
	id    int64
}

// New returns an empty world whose enterprise has the given slug.
func New(clock Clock, enterpriseSlug string) *World {
	w := &World{
		clock:       clock,
		orgs:        map[string]*Organization{},
		repos:       map[string]*Repository{},
		groups:      map[groupKey]*Group{},
		runners:     map[int64]*Runner{},
		jobs:        map[int64]*Job{},
		labelIDs:    map[string]int64{},
		nextID:      1000,
		nextGroupID: DefaultGroupID,
		nextRunner:  0,
		nextJob:     5000,
		nextRun:     9000,
	}
	w.nextID++
	w.enterprise = Organization{ID: w.nextID, Login: enterpriseSlug}
	w.addDefaultGroup(Scope{Kind: Enterprise, Name: enterpriseSlug})
	return w
}

// OnEvent registers an observer of job transitions. Observers run after the
// change, outside the world's lock, in transition order for one caller.
func (w *World) OnEvent(fn func(Event)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.observers = append(w.observers, fn)
}

// emit delivers events collected under the lock once it is released.
func (w *World) emit(events []Event) {
	if len(events) == 0 {
		return
	}
	w.mu.Lock()
	obs := slices.Clone(w.observers)
	w.mu.Unlock()
	for _, e := range events {
		for _, fn := range obs {
			fn(e)
		}
	}
}

// Spec describes organizations, repositories and groups to add: the world
// file and the control API use it.
type Spec struct {
	Enterprise string      `json:"enterprise,omitempty" yaml:"enterprise,omitempty"`
	Orgs       []OrgSpec   `json:"orgs,omitempty" yaml:"orgs,omitempty"`
	Groups     []GroupSpec `json:"groups,omitempty" yaml:"groups,omitempty"`
}

// OrgSpec is an organization and its repositories.
type OrgSpec struct {
	Login string     `json:"login" yaml:"login"`
	Repos []RepoSpec `json:"repos,omitempty" yaml:"repos,omitempty"`
}

// RepoSpec is a repository.
type RepoSpec struct {
	Name    string `json:"name" yaml:"name"`
	Private bool   `json:"private" yaml:"private"`
}

// GroupSpec is a runner group to create. Scope is "org:LOGIN" or
// "enterprise:SLUG"; Repositories are full names, Organizations logins.
type GroupSpec struct {
	Scope                    string   `json:"scope" yaml:"scope"`
	Name                     string   `json:"name" yaml:"name"`
	Visibility               string   `json:"visibility,omitempty" yaml:"visibility,omitempty"`
	AllowsPublicRepositories bool     `json:"allows_public_repositories,omitempty" yaml:"allows_public_repositories,omitempty"`
	Repositories             []string `json:"repositories,omitempty" yaml:"repositories,omitempty"`
	Organizations            []string `json:"organizations,omitempty" yaml:"organizations,omitempty"`
}

// DefaultSpec is the world used when none is given.
func DefaultSpec() Spec {
	return Spec{
		Enterprise: "octo-ent",
		Orgs: []OrgSpec{
			{Login: "octo-org", Repos: []RepoSpec{{Name: "app", Private: true}, {Name: "website", Private: false}}},
			{Login: "octo-labs", Repos: []RepoSpec{{Name: "ml", Private: true}}},
		},
	}
}

// NewFromSpec builds a world from a spec.
func NewFromSpec(clock Clock, spec Spec) (*World, error) {
	slug := spec.Enterprise
	if slug == "" {
		slug = "octo-ent"
	}
	w := New(clock, slug)
	if err := w.Apply(spec); err != nil {
		return nil, err
	}
	return w, nil
}

// Apply adds what spec describes; existing organizations and repositories
// are kept (so a spec can add repositories to a known org).
func (w *World) Apply(spec Spec) error {
	w.mu.Lock()
	for _, o := range spec.Orgs {
		if o.Login == "" {
			w.mu.Unlock()
			return fmt.Errorf("org without login: %w", ErrValidation)
		}
		org := w.orgs[strings.ToLower(o.Login)]
		if org == nil {
			w.nextID++
			org = &Organization{ID: w.nextID, Login: o.Login}
			w.orgs[strings.ToLower(o.Login)] = org
			w.addDefaultGroup(Scope{Kind: Org, Name: o.Login})
		}
		for _, r := range o.Repos {
			if r.Name == "" {
				w.mu.Unlock()
				return fmt.Errorf("repository without name in org %s: %w", o.Login, ErrValidation)
			}
			key := strings.ToLower(org.Login + "/" + r.Name)
			if _, ok := w.repos[key]; ok {
				continue
			}
			w.nextID++
			w.repos[key] = &Repository{ID: w.nextID, Owner: org.Login, OwnerID: org.ID, Name: r.Name, Private: r.Private}
		}
	}
	w.mu.Unlock()
	for _, g := range spec.Groups {
		scope, err := ParseScope(g.Scope)
		if err != nil {
			return err
		}
		in := GroupInput{Name: g.Name, Visibility: g.Visibility, AllowsPublicRepositories: &g.AllowsPublicRepositories}
		for _, full := range g.Repositories {
			r, ok := w.Repo(full)
			if !ok {
				return fmt.Errorf("group %s: repository %s: %w", g.Name, full, ErrNotFound)
			}
			in.SelectedRepositoryIDs = append(in.SelectedRepositoryIDs, r.ID)
		}
		for _, login := range g.Organizations {
			o, ok := w.Org(login)
			if !ok {
				return fmt.Errorf("group %s: organization %s: %w", g.Name, login, ErrNotFound)
			}
			in.SelectedOrganizationIDs = append(in.SelectedOrganizationIDs, o.ID)
		}
		if _, err := w.CreateGroup(scope, in); err != nil {
			return fmt.Errorf("group %s in %s: %w", g.Name, g.Scope, err)
		}
	}
	return nil
}

func (w *World) addDefaultGroup(s Scope) {
	w.groups[groupKey{s, DefaultGroupID}] = &Group{ID: DefaultGroupID, Scope: s, Name: "Default", Visibility: VisibilityAll, Default: true}
}

// Enterprise returns the enterprise (its slug is Login).
func (w *World) Enterprise() Organization {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.enterprise
}

// Orgs lists organizations by id.
func (w *World) Orgs() []Organization {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Organization, 0, len(w.orgs))
	for _, o := range w.orgs {
		out = append(out, *o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Org finds an organization by login (case-insensitive).
func (w *World) Org(login string) (Organization, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	o, ok := w.orgs[strings.ToLower(login)]
	if !ok {
		return Organization{}, false
	}
	return *o, true
}

// OrgByID finds an organization by id.
func (w *World) OrgByID(id int64) (Organization, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, o := range w.orgs {
		if o.ID == id {
			return *o, true
		}
	}
	return Organization{}, false
}

// Repo finds a repository by full name (case-insensitive).
func (w *World) Repo(fullName string) (Repository, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r, ok := w.repos[strings.ToLower(fullName)]
	if !ok {
		return Repository{}, false
	}
	return *r, true
}

// RepoByID finds a repository by id.
func (w *World) RepoByID(id int64) (Repository, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.repoByID(id)
	if r == nil {
		return Repository{}, false
	}
	return *r, true
}

func (w *World) repoByID(id int64) *Repository {
	for _, r := range w.repos {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// Repos lists the repositories of an org (all orgs when org is ""), by id.
func (w *World) Repos(org string) []Repository {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Repository
	for _, r := range w.repos {
		if org == "" || strings.EqualFold(r.Owner, org) {
			out = append(out, *r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ScopeExists reports whether the enterprise, org or repository exists.
func (w *World) ScopeExists(s Scope) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.scopeExists(s)
}

func (w *World) scopeExists(s Scope) bool {
	switch s.Kind {
	case Enterprise:
		return strings.EqualFold(s.Name, w.enterprise.Login)
	case Org:
		_, ok := w.orgs[strings.ToLower(s.Name)]
		return ok
	case Repo:
		_, ok := w.repos[strings.ToLower(s.Name)]
		return ok
	}
	return false
}

// canonical makes scope names compare equal whatever their case.
func (w *World) canonical(s Scope) Scope {
	switch s.Kind {
	case Enterprise:
		if strings.EqualFold(s.Name, w.enterprise.Login) {
			s.Name = w.enterprise.Login
		}
	case Org:
		if o, ok := w.orgs[strings.ToLower(s.Name)]; ok {
			s.Name = o.Login
		}
	case Repo:
		if r, ok := w.repos[strings.ToLower(s.Name)]; ok {
			s.Name = r.FullName()
		}
	}
	return s
}

// SetBusyLag makes list and get responses report busy=false for d after a
// runner takes a job, and lets a DELETE succeed within that time: both have
// been seen on GitHub.
func (w *World) SetBusyLag(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.busyLag = d
}

// BusyLag returns the configured lag.
func (w *World) BusyLag() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.busyLag
}

// VisibleBusy is the busy flag GitHub would report for r now.
func (w *World) VisibleBusy(r Runner) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return r.Busy && w.clock.Now().Sub(r.BusySince) >= w.busyLag
}

// Violations returns the counters of harm done to running jobs.
func (w *World) Violations() Violations {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.violations
}
