package ghapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/runnerscaler/runnerscaler/internal/secret"
)

// Runner is a self-hosted runner as GitHub lists it.
type Runner = github.Runner

// RunnerApplication is one downloadable build of the runner application.
type RunnerApplication = github.RunnerApplicationDownload

// ListRunnersOptions filters ListRunners.
type ListRunnersOptions struct {
	// Name, when set, asks GitHub for the runner with exactly this name.
	Name string
}

// ListRunners returns every runner registered at scope, reading all pages.
func (c *Client) ListRunners(ctx context.Context, s Scope, opts ListRunnersOptions) ([]*Runner, error) {
	q := url.Values{}
	if opts.Name != "" {
		q.Set("name", opts.Name)
	}
	all, err := listAll[*Runner](ctx, c.scopedSender(s), "actions/runners", q, "runners")
	if err != nil {
		return nil, fmt.Errorf("list runners of %s: %w", s, err)
	}
	return all, nil
}

// GetRunner returns one runner by id.
func (c *Client) GetRunner(ctx context.Context, s Scope, runnerID int64) (*Runner, error) {
	var r Runner
	if _, err := c.scoped(ctx, s, http.MethodGet, runnerPath(runnerID), nil, &r); err != nil {
		return nil, fmt.Errorf("get runner %d of %s: %w", runnerID, s, err)
	}
	return &r, nil
}

// DeleteRunner unregisters a runner. When GitHub refuses because the runner is
// running a job (422), the error matches ErrRunnerBusy.
func (c *Client) DeleteRunner(ctx context.Context, s Scope, runnerID int64) error {
	_, err := c.scoped(ctx, s, http.MethodDelete, runnerPath(runnerID), nil, nil)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusUnprocessableEntity {
		apiErr.busy = true
	}
	if err != nil {
		return fmt.Errorf("delete runner %d of %s: %w", runnerID, s, err)
	}
	return nil
}

// ListRunnerApplications lists the runner application builds for scope.
func (c *Client) ListRunnerApplications(ctx context.Context, s Scope) ([]*RunnerApplication, error) {
	var out []*RunnerApplication
	if _, err := c.scoped(ctx, s, http.MethodGet, "actions/runners/downloads", nil, &out); err != nil {
		return nil, fmt.Errorf("list runner applications of %s: %w", s, err)
	}
	return out, nil
}

// RunnerVersionDeprecation is GitHub's end-of-life schedule for a runner version.
type RunnerVersionDeprecation struct {
	RunnerVersion            string     `json:"runner_version"`
	RegistrationDeprecatesAt *time.Time `json:"registration_deprecates_at"`
	RuntimeDeprecatesAt      *time.Time `json:"runtime_deprecates_at"`
}

// GetRunnerVersionDeprecation returns when a runner version stops being able to
// register and to run jobs. GitHub offers it at enterprise scope only.
func (c *Client) GetRunnerVersionDeprecation(ctx context.Context, s Scope, version string) (*RunnerVersionDeprecation, error) {
	if s.Kind != ScopeEnterprise {
		return nil, fmt.Errorf("runner version deprecation for %s: %w", s, ErrUnsupportedScope)
	}
	var out RunnerVersionDeprecation
	if _, err := c.scoped(ctx, s, http.MethodGet, "actions/runners/deprecations/"+url.PathEscape(version), nil, &out); err != nil {
		return nil, fmt.Errorf("runner version %s deprecation for %s: %w", version, s, err)
	}
	return &out, nil
}

// JITRequest asks for a just-in-time runner configuration.
type JITRequest struct {
	Name          string   `json:"name"`
	RunnerGroupID int64    `json:"runner_group_id"`
	Labels        []string `json:"labels"`
	WorkFolder    string   `json:"work_folder,omitempty"`
}

// JITConfig is a registered, ephemeral runner and the credential its process
// starts with (ACTIONS_RUNNER_INPUT_JITCONFIG).
type JITConfig struct {
	Runner  *Runner
	Encoded secret.String
}

// GenerateJITConfig registers an ephemeral runner. The name must be unique in
// the scope: GitHub answers 409 (ErrConflict) otherwise. This call is never
// retried once it may have reached GitHub, since a retry after a success would
// see 409 and lose the configuration.
func (c *Client) GenerateJITConfig(ctx context.Context, s Scope, req JITRequest) (*JITConfig, error) {
	if len(req.Labels) == 0 || len(req.Labels) > 100 {
		return nil, fmt.Errorf("jit config for runner %s: %d labels, GitHub accepts 1 to 100", req.Name, len(req.Labels))
	}
	var out github.JITRunnerConfig
	if _, err := c.scoped(ctx, s, http.MethodPost, "actions/runners/generate-jitconfig", req, &out); err != nil {
		return nil, fmt.Errorf("jit config for runner %s in %s: %w", req.Name, s, err)
	}
	return &JITConfig{Runner: out.Runner, Encoded: secret.String(out.GetEncodedJITConfig())}, nil
}

// RegistrationToken registers runners with config.sh; it is valid for an
// hour and reusable until then.
type RegistrationToken struct {
	Token     secret.String
	ExpiresAt time.Time
}

// CreateRegistrationToken asks GitHub for a new registration token. Prefer
// RegistrationToken, which reuses one until shortly before it expires.
func (c *Client) CreateRegistrationToken(ctx context.Context, s Scope) (*RegistrationToken, error) {
	var out github.RegistrationToken
	if _, err := c.scoped(ctx, s, http.MethodPost, "actions/runners/registration-token", nil, &out); err != nil {
		return nil, fmt.Errorf("registration token for %s: %w", s, err)
	}
	return &RegistrationToken{Token: secret.String(out.GetToken()), ExpiresAt: out.GetExpiresAt().Time}, nil
}

// RegistrationToken returns a registration token for scope, reusing a cached
// one until five minutes before it expires.
func (c *Client) RegistrationToken(ctx context.Context, s Scope) (*RegistrationToken, error) {
	c.mu.Lock()
	entry, ok := c.tokens[s.String()]
	if !ok {
		entry = &tokenEntry{}
		c.tokens[s.String()] = entry
	}
	c.mu.Unlock()

	entry.mu.Lock()
	defer entry.mu.Unlock()
	if entry.token != nil && c.opts.Clock.Now().Add(registrationTokenMargin).Before(entry.token.ExpiresAt) {
		return entry.token, nil
	}
	tok, err := c.CreateRegistrationToken(ctx, s)
	if err != nil {
		return nil, err
	}
	entry.token = tok
	return tok, nil
}

// RemoveToken unregisters a runner with config.sh remove.
type RemoveToken struct {
	Token     secret.String
	ExpiresAt time.Time
}

// CreateRemoveToken asks GitHub for a token that removes runners from scope.
func (c *Client) CreateRemoveToken(ctx context.Context, s Scope) (*RemoveToken, error) {
	var out github.RemoveToken
	if _, err := c.scoped(ctx, s, http.MethodPost, "actions/runners/remove-token", nil, &out); err != nil {
		return nil, fmt.Errorf("remove token for %s: %w", s, err)
	}
	return &RemoveToken{Token: secret.String(out.GetToken()), ExpiresAt: out.GetExpiresAt().Time}, nil
}

// RunnerLabel is a label on a runner; Type is "read-only" for the defaults
// (self-hosted, OS, architecture) and "custom" for the rest.
type RunnerLabel = github.RunnerLabels

type labelList struct {
	TotalCount int            `json:"total_count"`
	Labels     []*RunnerLabel `json:"labels"`
}

type labelsBody struct {
	Labels []string `json:"labels"`
}

// ListRunnerLabels lists every label of a runner.
func (c *Client) ListRunnerLabels(ctx context.Context, s Scope, runnerID int64) ([]*RunnerLabel, error) {
	return c.labelsCall(ctx, s, http.MethodGet, runnerID, "", nil, "list labels of")
}

// AddRunnerLabels adds custom labels and returns the runner's labels after.
func (c *Client) AddRunnerLabels(ctx context.Context, s Scope, runnerID int64, labels []string) ([]*RunnerLabel, error) {
	return c.labelsCall(ctx, s, http.MethodPost, runnerID, "", &labelsBody{Labels: labels}, "add labels to")
}

// SetRunnerLabels replaces the custom labels; an empty list removes them all.
func (c *Client) SetRunnerLabels(ctx context.Context, s Scope, runnerID int64, labels []string) ([]*RunnerLabel, error) {
	if labels == nil {
		labels = []string{}
	}
	return c.labelsCall(ctx, s, http.MethodPut, runnerID, "", &labelsBody{Labels: labels}, "set labels of")
}

// RemoveAllRunnerLabels removes every custom label and returns what is left
// (the read-only defaults).
func (c *Client) RemoveAllRunnerLabels(ctx context.Context, s Scope, runnerID int64) ([]*RunnerLabel, error) {
	return c.labelsCall(ctx, s, http.MethodDelete, runnerID, "", nil, "remove labels of")
}

// RemoveRunnerLabel removes one custom label and returns the labels left.
func (c *Client) RemoveRunnerLabel(ctx context.Context, s Scope, runnerID int64, name string) ([]*RunnerLabel, error) {
	return c.labelsCall(ctx, s, http.MethodDelete, runnerID, "/"+url.PathEscape(name), nil, "remove label "+name+" of")
}

// labelsCall is shared by the label endpoints, which go-github v62 lacks:
// they all answer with the runner's full label list.
func (c *Client) labelsCall(ctx context.Context, s Scope, method string, runnerID int64, suffix string, body any, what string) ([]*RunnerLabel, error) {
	var out labelList
	if _, err := c.scoped(ctx, s, method, runnerPath(runnerID)+"/labels"+suffix, body, &out); err != nil {
		return nil, fmt.Errorf("%s runner %d of %s: %w", what, runnerID, s, err)
	}
	return out.Labels, nil
}

func runnerPath(id int64) string { return "actions/runners/" + strconv.FormatInt(id, 10) }
