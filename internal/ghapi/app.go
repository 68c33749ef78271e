package ghapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/google/go-github/v62/github"
)

// App, Installation, HookDelivery, WorkflowJob and RateLimits are GitHub's
// own shapes, as go-github decodes them.
type (
	App          = github.App
	Installation = github.Installation
	HookDelivery = github.HookDelivery
	WorkflowJob  = github.WorkflowJob
	RateLimits   = github.RateLimits
)

// GetApp returns the authenticated App (GET /app, App JWT).
func (c *Client) GetApp(ctx context.Context) (*App, error) {
	var out App
	if _, err := c.asApp(ctx, http.MethodGet, "app", nil, &out); err != nil {
		return nil, fmt.Errorf("get app: %w", err)
	}
	return &out, nil
}

// ListInstallations returns every installation of the App.
func (c *Client) ListInstallations(ctx context.Context) ([]*Installation, error) {
	all, err := listAll[*Installation](ctx, c.asApp, "app/installations", nil, "")
	if err != nil {
		return nil, fmt.Errorf("list app installations: %w", err)
	}
	return all, nil
}

// GetOrgInstallation returns the App's installation on an organization.
func (c *Client) GetOrgInstallation(ctx context.Context, org string) (*Installation, error) {
	var out Installation
	if _, err := c.asApp(ctx, http.MethodGet, "orgs/"+url.PathEscape(org)+"/installation", nil, &out); err != nil {
		return nil, fmt.Errorf("installation on org %s: %w", org, err)
	}
	return &out, nil
}

// GetRepoInstallation returns the App's installation covering a repository.
func (c *Client) GetRepoInstallation(ctx context.Context, owner, repo string) (*Installation, error) {
	var out Installation
	path := "repos/" + url.PathEscape(owner) + "/" + url.PathEscape(repo) + "/installation"
	if _, err := c.asApp(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, fmt.Errorf("installation on repo %s/%s: %w", owner, repo, err)
	}
	return &out, nil
}

// ListInstallationRepositories returns the repositories the installation that
// serves scope can reach (GET /installation/repositories). With a PAT it
// lists what the token can reach through the same endpoint's semantics.
func (c *Client) ListInstallationRepositories(ctx context.Context, s Scope) ([]*Repository, error) {
	all, err := listAll[*Repository](ctx, c.scopedRoot(s), "installation/repositories", nil, "repositories")
	if err != nil {
		return nil, fmt.Errorf("list installation repositories for %s: %w", s, err)
	}
	return all, nil
}

// ListDeliveriesOptions pages through the App's webhook deliveries.
type ListDeliveriesOptions struct {
	Cursor  string // from the previous page; empty for the newest
	PerPage int    // up to 100; 0 means 100
	Status  string // "success" or "failure"; empty for both
}

// ListHookDeliveries returns one page of the App's webhook deliveries, newest
// first, and the cursor of the next page ("" at the end).
func (c *Client) ListHookDeliveries(ctx context.Context, opts ListDeliveriesOptions) ([]*HookDelivery, string, error) {
	q := url.Values{}
	per := opts.PerPage
	if per <= 0 || per > maxPerPage {
		per = maxPerPage
	}
	q.Set("per_page", strconv.Itoa(per))
	if opts.Cursor != "" {
		q.Set("cursor", opts.Cursor)
	}
	if opts.Status != "" {
		q.Set("status", opts.Status)
	}
	var out []*HookDelivery
	resp, err := c.asApp(ctx, http.MethodGet, withQuery("app/hook/deliveries", q), nil, &out)
	if err != nil {
		return nil, "", fmt.Errorf("list app webhook deliveries: %w", err)
	}
	return out, resp.Cursor, nil
}

// GetHookDelivery returns one delivery with its request and response.
func (c *Client) GetHookDelivery(ctx context.Context, deliveryID int64) (*HookDelivery, error) {
	var out HookDelivery
	if _, err := c.asApp(ctx, http.MethodGet, "app/hook/deliveries/"+strconv.FormatInt(deliveryID, 10), nil, &out); err != nil {
		return nil, fmt.Errorf("get app webhook delivery %d: %w", deliveryID, err)
	}
	return &out, nil
}

// RedeliverHookDelivery asks GitHub to send a delivery again (202). It is not
// retried after it may have reached GitHub, which would redeliver twice.
func (c *Client) RedeliverHookDelivery(ctx context.Context, deliveryID int64) error {
	if _, err := c.asApp(ctx, http.MethodPost, "app/hook/deliveries/"+strconv.FormatInt(deliveryID, 10)+"/attempts", nil, nil); err != nil {
		return fmt.Errorf("redeliver app webhook delivery %d: %w", deliveryID, err)
	}
	return nil
}

// GetWorkflowJob returns a job of a workflow run; s must be a repository.
func (c *Client) GetWorkflowJob(ctx context.Context, s Scope, jobID int64) (*WorkflowJob, error) {
	if s.Kind != ScopeRepo {
		return nil, fmt.Errorf("workflow job %d of %s: %w", jobID, s, ErrUnsupportedScope)
	}
	var out WorkflowJob
	if _, err := c.scoped(ctx, s, http.MethodGet, "actions/jobs/"+strconv.FormatInt(jobID, 10), nil, &out); err != nil {
		return nil, fmt.Errorf("get workflow job %d of %s: %w", jobID, s, err)
	}
	return &out, nil
}

// GetRateLimits reads the budget of the installation serving s. GitHub does
// not charge for this call.
func (c *Client) GetRateLimits(ctx context.Context, s Scope) (*RateLimits, error) {
	var out struct {
		Resources *RateLimits `json:"resources"`
	}
	if _, err := c.scopedRoot(s)(ctx, http.MethodGet, "rate_limit", nil, &out); err != nil {
		return nil, fmt.Errorf("get rate limit for %s: %w", s, err)
	}
	return out.Resources, nil
}
