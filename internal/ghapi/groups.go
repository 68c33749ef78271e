package ghapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/google/go-github/v62/github"
)

// RunnerGroup is a runner group at organization or enterprise scope. Fields
// that exist at one scope only are empty at the other.
type RunnerGroup struct {
	ID                           int64    `json:"id"`
	Name                         string   `json:"name"`
	Visibility                   string   `json:"visibility"`
	Default                      bool     `json:"default"`
	Inherited                    bool     `json:"inherited"`
	InheritedAllowsPublicRepos   bool     `json:"inherited_allows_public_repositories"`
	AllowsPublicRepositories     bool     `json:"allows_public_repositories"`
	RestrictedToWorkflows        bool     `json:"restricted_to_workflows"`
	SelectedWorkflows            []string `json:"selected_workflows"`
	WorkflowRestrictionsReadOnly bool     `json:"workflow_restrictions_read_only"`
	HostedRunnersURL             string   `json:"hosted_runners_url,omitempty"`
	NetworkConfigurationID       string   `json:"network_configuration_id,omitempty"`
	RunnersURL                   string   `json:"runners_url"`
	SelectedRepositoriesURL      string   `json:"selected_repositories_url,omitempty"`  // organization groups
	SelectedOrganizationsURL     string   `json:"selected_organizations_url,omitempty"` // enterprise groups
}

// RunnerGroupSpec creates a runner group. At organization scope the access
// list is SelectedRepositoryIDs; at enterprise scope SelectedOrganizationIDs.
type RunnerGroupSpec struct {
	Name                     string   `json:"name"`
	Visibility               string   `json:"visibility,omitempty"`
	SelectedRepositoryIDs    []int64  `json:"selected_repository_ids,omitempty"`
	SelectedOrganizationIDs  []int64  `json:"selected_organization_ids,omitempty"`
	Runners                  []int64  `json:"runners,omitempty"`
	AllowsPublicRepositories *bool    `json:"allows_public_repositories,omitempty"`
	RestrictedToWorkflows    *bool    `json:"restricted_to_workflows,omitempty"`
	SelectedWorkflows        []string `json:"selected_workflows,omitempty"`
	NetworkConfigurationID   *string  `json:"network_configuration_id,omitempty"`
}

// RunnerGroupUpdate changes a group; nil fields are left as they are. GitHub
// requires the name on organization groups, so pass the current one if
// it does not change.
type RunnerGroupUpdate struct {
	Name                     string   `json:"name,omitempty"`
	Visibility               string   `json:"visibility,omitempty"`
	AllowsPublicRepositories *bool    `json:"allows_public_repositories,omitempty"`
	RestrictedToWorkflows    *bool    `json:"restricted_to_workflows,omitempty"`
	SelectedWorkflows        []string `json:"selected_workflows,omitempty"`
	NetworkConfigurationID   *string  `json:"network_configuration_id,omitempty"`
}

// ListRunnerGroupsOptions filters ListRunnerGroups. VisibleToRepository
// applies at organization scope, VisibleToOrganization at enterprise scope.
type ListRunnerGroupsOptions struct {
	VisibleToRepository   string
	VisibleToOrganization string
}

// Repository and Organization are the members of group access lists.
type (
	Repository   = github.Repository
	Organization = github.Organization
)

func groupScope(s Scope) error {
	if s.Kind != ScopeOrg && s.Kind != ScopeEnterprise {
		return fmt.Errorf("runner groups of %s: %w", s, ErrUnsupportedScope)
	}
	return nil
}

func groupPath(id int64) string { return "actions/runner-groups/" + strconv.FormatInt(id, 10) }

// ListRunnerGroups returns every runner group of an organization or enterprise.
func (c *Client) ListRunnerGroups(ctx context.Context, s Scope, opts ListRunnerGroupsOptions) ([]*RunnerGroup, error) {
	if err := groupScope(s); err != nil {
		return nil, err
	}
	q := url.Values{}
	if s.Kind == ScopeOrg && opts.VisibleToRepository != "" {
		q.Set("visible_to_repository", opts.VisibleToRepository)
	}
	if s.Kind == ScopeEnterprise && opts.VisibleToOrganization != "" {
		q.Set("visible_to_organization", opts.VisibleToOrganization)
	}
	all, err := listAll[*RunnerGroup](ctx, c.scopedSender(s), "actions/runner-groups", q, "runner_groups")
	if err != nil {
		return nil, fmt.Errorf("list runner groups of %s: %w", s, err)
	}
	return all, nil
}

// GetRunnerGroup returns one group.
func (c *Client) GetRunnerGroup(ctx context.Context, s Scope, groupID int64) (*RunnerGroup, error) {
	if err := groupScope(s); err != nil {
		return nil, err
	}
	var g RunnerGroup
	if _, err := c.scoped(ctx, s, http.MethodGet, groupPath(groupID), nil, &g); err != nil {
		return nil, fmt.Errorf("get runner group %d of %s: %w", groupID, s, err)
	}
	return &g, nil
}

// CreateRunnerGroup creates a group. It is not retried after it may have
// reached GitHub: a retry could create a second group.
func (c *Client) CreateRunnerGroup(ctx context.Context, s Scope, spec RunnerGroupSpec) (*RunnerGroup, error) {
	if err := groupScope(s); err != nil {
		return nil, err
	}
	if s.Kind == ScopeOrg && len(spec.SelectedOrganizationIDs) > 0 {
		return nil, fmt.Errorf("create runner group %s in %s: organization access lists are for enterprise groups", spec.Name, s)
	}
	if s.Kind == ScopeEnterprise && len(spec.SelectedRepositoryIDs) > 0 {
		return nil, fmt.Errorf("create runner group %s in %s: repository access lists are for organization groups", spec.Name, s)
	}
	var g RunnerGroup
	if _, err := c.scoped(ctx, s, http.MethodPost, "actions/runner-groups", spec, &g); err != nil {
		return nil, fmt.Errorf("create runner group %s in %s: %w", spec.Name, s, err)
	}
	return &g, nil
}

// UpdateRunnerGroup changes a group's settings.
func (c *Client) UpdateRunnerGroup(ctx context.Context, s Scope, groupID int64, upd RunnerGroupUpdate) (*RunnerGroup, error) {
	if err := groupScope(s); err != nil {
		return nil, err
	}
	if s.Kind == ScopeOrg && upd.Name == "" {
		return nil, fmt.Errorf("update runner group %d of %s: GitHub requires the name", groupID, s)
	}
	var g RunnerGroup
	if _, err := c.scoped(ctx, s, http.MethodPatch, groupPath(groupID), upd, &g); err != nil {
		return nil, fmt.Errorf("update runner group %d of %s: %w", groupID, s, err)
	}
	return &g, nil
}

// DeleteRunnerGroup deletes a group; its runners move to the default group.
func (c *Client) DeleteRunnerGroup(ctx context.Context, s Scope, groupID int64) error {
	if err := groupScope(s); err != nil {
		return err
	}
	if _, err := c.scoped(ctx, s, http.MethodDelete, groupPath(groupID), nil, nil); err != nil {
		return fmt.Errorf("delete runner group %d of %s: %w", groupID, s, err)
	}
	return nil
}

func onlyAt(s Scope, kind ScopeKind, what string) error {
	if s.Kind != kind {
		return fmt.Errorf("%s of %s: %w", what, s, ErrUnsupportedScope)
	}
	return nil
}

// ListRunnerGroupRepositories lists the repositories that may use an
// organization group with visibility "selected".
func (c *Client) ListRunnerGroupRepositories(ctx context.Context, s Scope, groupID int64) ([]*Repository, error) {
	if err := onlyAt(s, ScopeOrg, "runner group repository access"); err != nil {
		return nil, err
	}
	all, err := listAll[*Repository](ctx, c.scopedSender(s), groupPath(groupID)+"/repositories", nil, "repositories")
	if err != nil {
		return nil, fmt.Errorf("list repositories of runner group %d in %s: %w", groupID, s, err)
	}
	return all, nil
}

// SetRunnerGroupRepositories replaces an organization group's repository list.
func (c *Client) SetRunnerGroupRepositories(ctx context.Context, s Scope, groupID int64, repositoryIDs []int64) error {
	if err := onlyAt(s, ScopeOrg, "runner group repository access"); err != nil {
		return err
	}
	body := struct {
		IDs []int64 `json:"selected_repository_ids"`
	}{IDs: nonNil(repositoryIDs)}
	if _, err := c.scoped(ctx, s, http.MethodPut, groupPath(groupID)+"/repositories", body, nil); err != nil {
		return fmt.Errorf("set repositories of runner group %d in %s: %w", groupID, s, err)
	}
	return nil
}

// AddRunnerGroupRepository lets one more repository use an organization group.
func (c *Client) AddRunnerGroupRepository(ctx context.Context, s Scope, groupID, repositoryID int64) error {
	return c.memberCall(ctx, s, ScopeOrg, http.MethodPut, groupID, "repositories", repositoryID, "add repository")
}

// RemoveRunnerGroupRepository takes a repository off an organization group.
func (c *Client) RemoveRunnerGroupRepository(ctx context.Context, s Scope, groupID, repositoryID int64) error {
	return c.memberCall(ctx, s, ScopeOrg, http.MethodDelete, groupID, "repositories", repositoryID, "remove repository")
}

// ListRunnerGroupOrganizations lists the organizations that may use an
// enterprise group with visibility "selected".
func (c *Client) ListRunnerGroupOrganizations(ctx context.Context, s Scope, groupID int64) ([]*Organization, error) {
	if err := onlyAt(s, ScopeEnterprise, "runner group organization access"); err != nil {
		return nil, err
	}
	all, err := listAll[*Organization](ctx, c.scopedSender(s), groupPath(groupID)+"/organizations", nil, "organizations")
	if err != nil {
		return nil, fmt.Errorf("list organizations of runner group %d in %s: %w", groupID, s, err)
	}
	return all, nil
}

// SetRunnerGroupOrganizations replaces an enterprise group's organization list.
func (c *Client) SetRunnerGroupOrganizations(ctx context.Context, s Scope, groupID int64, orgIDs []int64) error {
	if err := onlyAt(s, ScopeEnterprise, "runner group organization access"); err != nil {
		return err
	}
	body := struct {
		IDs []int64 `json:"selected_organization_ids"`
	}{IDs: nonNil(orgIDs)}
	if _, err := c.scoped(ctx, s, http.MethodPut, groupPath(groupID)+"/organizations", body, nil); err != nil {
		return fmt.Errorf("set organizations of runner group %d in %s: %w", groupID, s, err)
	}
	return nil
}

// AddRunnerGroupOrganization lets one more organization use an enterprise group.
func (c *Client) AddRunnerGroupOrganization(ctx context.Context, s Scope, groupID, orgID int64) error {
	return c.memberCall(ctx, s, ScopeEnterprise, http.MethodPut, groupID, "organizations", orgID, "add organization")
}

// RemoveRunnerGroupOrganization takes an organization off an enterprise group.
func (c *Client) RemoveRunnerGroupOrganization(ctx context.Context, s Scope, groupID, orgID int64) error {
	return c.memberCall(ctx, s, ScopeEnterprise, http.MethodDelete, groupID, "organizations", orgID, "remove organization")
}

// ListRunnerGroupRunners lists the runners in a group.
func (c *Client) ListRunnerGroupRunners(ctx context.Context, s Scope, groupID int64) ([]*Runner, error) {
	if err := groupScope(s); err != nil {
		return nil, err
	}
	all, err := listAll[*Runner](ctx, c.scopedSender(s), groupPath(groupID)+"/runners", nil, "runners")
	if err != nil {
		return nil, fmt.Errorf("list runners of runner group %d in %s: %w", groupID, s, err)
	}
	return all, nil
}

// SetRunnerGroupRunners replaces the runners of a group.
func (c *Client) SetRunnerGroupRunners(ctx context.Context, s Scope, groupID int64, runnerIDs []int64) error {
	if err := groupScope(s); err != nil {
		return err
	}
	body := struct {
		Runners []int64 `json:"runners"`
	}{Runners: nonNil(runnerIDs)}
	if _, err := c.scoped(ctx, s, http.MethodPut, groupPath(groupID)+"/runners", body, nil); err != nil {
		return fmt.Errorf("set runners of runner group %d in %s: %w", groupID, s, err)
	}
	return nil
}

// AddRunnerGroupRunner moves a runner into a group.
func (c *Client) AddRunnerGroupRunner(ctx context.Context, s Scope, groupID, runnerID int64) error {
	return c.memberCall(ctx, s, s.Kind, http.MethodPut, groupID, "runners", runnerID, "add runner")
}

// RemoveRunnerGroupRunner moves a runner out of a group (to the default group).
func (c *Client) RemoveRunnerGroupRunner(ctx context.Context, s Scope, groupID, runnerID int64) error {
	return c.memberCall(ctx, s, s.Kind, http.MethodDelete, groupID, "runners", runnerID, "remove runner")
}

// memberCall adds or removes one member of a group's repositories,
// organizations or runners; GitHub answers 204 with no body.
func (c *Client) memberCall(ctx context.Context, s Scope, kind ScopeKind, method string, groupID int64, list string, memberID int64, what string) error {
	if err := groupScope(s); err != nil {
		return err
	}
	if err := onlyAt(s, kind, "runner group "+list); err != nil {
		return err
	}
	path := groupPath(groupID) + "/" + list + "/" + strconv.FormatInt(memberID, 10)
	if _, err := c.scoped(ctx, s, method, path, nil, nil); err != nil {
		return fmt.Errorf("%s %d, runner group %d in %s: %w", what, memberID, groupID, s, err)
	}
	return nil
}

// nonNil makes an empty list encode as [] rather than null, which GitHub rejects.
func nonNil(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}
