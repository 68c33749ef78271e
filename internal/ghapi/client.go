// Package ghapi is Runnerscaler's GitHub REST client: GitHub App or PAT auth,
// installation discovery, and one operation for every self-hosted runner and
// runner group endpoint at every scope GitHub offers.
//
// Requests are built and decoded with go-github v62 (its NewRequest and Do,
// and its types where they fit every scope); paths are composed from a Scope
// so each operation is written once for enterprise, organization and
// repository. Every request goes through internal/ghapi/transport, which owns
// rate limits, retries, the in-flight cap and per-route recording.
package ghapi

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/golang-jwt/jwt/v4"
	"github.com/google/go-github/v62/github"
	ghinstoptions "github.com/google/go-github/v88/github" // the version ghinstallation's options type comes from
	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/ghapi/transport"
)

// DefaultAPIURL is github.com's REST endpoint.
const DefaultAPIURL = "https://api.github.com/"

// Options configures a Client. Exactly one of App or Token must be set.
type Options struct {
	// APIURL is the REST base URL: https://api.github.com/ or, for GitHub
	// Enterprise Server, https://HOST/api/v3/.
	APIURL     string
	APIVersion string
	UserAgent  string

	// App authenticates as a GitHub App.
	App *AppAuth
	// Token is a personal access token used instead of an App.
	Token string

	MaxInFlight int // requests in flight across all installations; default 10
	MaxAttempts int // attempts per request including the first; default 4
	// RequestTimeout bounds a call (retries and rate-limit waits included)
	// when the caller's context has no deadline; 0 means 30 s. A caller that
	// can wait for a rate-limit reset passes a longer deadline.
	RequestTimeout time.Duration

	// Base is the HTTP transport under ours; nil uses a copy of
	// http.DefaultTransport that keeps MaxInFlight idle connections.
	Base     http.RoundTripper
	Clock    transport.Clock
	Recorder transport.Recorder
	Logger   *zap.Logger
}

// AppAuth identifies a GitHub App and, optionally, the one installation to use.
type AppAuth struct {
	ID         int64
	PrivateKey []byte // PEM, PKCS#1 or PKCS#8
	// InstallationID, when non-zero, is used for every scope instead of
	// discovering the installation per organization, repository or enterprise.
	InstallationID int64
}

// Client talks to GitHub. It is safe for concurrent use.
type Client struct {
	base     *url.URL
	opts     Options
	inFlight *transport.Semaphore
	log      *zap.Logger

	appKey    *rsa.PrivateKey
	appClient *github.Client // authenticated with the App JWT; nil for a PAT
	patClient *github.Client // nil for an App

	mu           sync.Mutex
	installByKey map[string]int64         // scope owner key -> installation id
	clientsByID  map[int64]*github.Client // installation id -> client
	transports   []*transport.Transport   // every transport made, for Limits
	tokens       map[string]*tokenEntry   // scope -> cached registration token
}

// New builds a client. It does no I/O: installations are discovered on first use.
func New(opts Options) (*Client, error) {
	if opts.APIURL == "" {
		opts.APIURL = DefaultAPIURL
	}
	base, err := url.Parse(opts.APIURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("github api url %q: want an absolute http(s) URL", opts.APIURL)
	}
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 10
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 30 * time.Second
	}
	if opts.Base == nil {
		// http.DefaultTransport keeps 2 idle connections per host: with
		// MaxInFlight requests to one host, every burst would open (and
		// TLS-handshake) new connections and close them again.
		base := http.DefaultTransport.(*http.Transport).Clone()
		base.MaxIdleConnsPerHost = opts.MaxInFlight
		opts.Base = base
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "runnerscaler"
	}
	if opts.Clock == nil {
		opts.Clock = transport.RealClock()
	}
	if opts.Recorder == nil {
		opts.Recorder = transport.DiscardRecorder()
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	c := &Client{
		base:         base,
		opts:         opts,
		inFlight:     transport.NewSemaphore(opts.MaxInFlight),
		log:          opts.Logger,
		installByKey: map[string]int64{},
		clientsByID:  map[int64]*github.Client{},
		tokens:       map[string]*tokenEntry{},
	}
	switch {
	case opts.App != nil && opts.Token != "":
		return nil, errors.New("github auth: configure a GitHub App or a token, not both")
	case opts.App != nil:
		if opts.App.ID <= 0 {
			return nil, errors.New("github app: id must be set")
		}
		key, err := jwt.ParseRSAPrivateKeyFromPEM(opts.App.PrivateKey)
		if err != nil {
			// The parser's message never contains key material.
			return nil, fmt.Errorf("github app private key: %w", err)
		}
		c.appKey = key
		atr := ghinstallation.NewAppsTransportFromPrivateKey(c.newTransport("app"), opts.App.ID, key)
		atr.BaseURL = c.apiRoot()
		c.appClient = c.newGitHubClient(&http.Client{Transport: atr})
	case opts.Token != "":
		c.patClient = c.newGitHubClient(&http.Client{Transport: c.newTransport("pat")}).WithAuthToken(opts.Token)
	default:
		return nil, errors.New("github auth: configure a GitHub App (id and private key) or a token")
	}
	return c, nil
}

// apiRoot is the base URL without its trailing slash, as ghinstallation wants it.
func (c *Client) apiRoot() string { return strings.TrimSuffix(c.base.String(), "/") }

func (c *Client) newTransport(installation string) *transport.Transport {
	t := transport.New(transport.Options{
		Base:         c.opts.Base,
		Installation: installation,
		APIVersion:   c.opts.APIVersion,
		UserAgent:    c.opts.UserAgent,
		InFlight:     c.inFlight,
		MaxAttempts:  c.opts.MaxAttempts,
		Clock:        c.opts.Clock,
		Recorder:     c.opts.Recorder,
		Logger:       c.log,
	})
	c.mu.Lock()
	c.transports = append(c.transports, t)
	c.mu.Unlock()
	return t
}

func (c *Client) newGitHubClient(hc *http.Client) *github.Client {
	gh := github.NewClient(hc)
	u := *c.base
	gh.BaseURL = &u
	gh.UploadURL = &u
	gh.UserAgent = c.opts.UserAgent
	return gh
}

// RateLimits reports the budget seen on every installation so far.
func (c *Client) RateLimits() []transport.RateState {
	c.mu.Lock()
	ts := append([]*transport.Transport(nil), c.transports...)
	c.mu.Unlock()
	var out []transport.RateState
	for _, t := range ts {
		out = append(out, t.Limits()...)
	}
	return out
}

// IsApp reports whether the client authenticates as a GitHub App.
func (c *Client) IsApp() bool { return c.appClient != nil }

// forScope returns the client authenticated for the installation that
// covers scope, discovering and caching the installation on first use.
func (c *Client) forScope(ctx context.Context, s Scope) (*github.Client, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if c.patClient != nil {
		return c.patClient, nil
	}
	id, err := c.InstallationID(ctx, s)
	if err != nil {
		return nil, err
	}
	return c.installationClient(id), nil
}

func (c *Client) installationClient(id int64) *github.Client {
	c.mu.Lock()
	gh, ok := c.clientsByID[id]
	c.mu.Unlock()
	if ok {
		return gh
	}
	// ghinstallation refreshes the installation token a minute before it
	// expires and reuses it until then; the token request goes through this
	// installation's transport so it is counted and retried like the rest.
	atr := ghinstallation.NewAppsTransportFromPrivateKey(c.newTransport(strconv.FormatInt(id, 10)), c.opts.App.ID, c.appKey)
	atr.BaseURL = c.apiRoot()
	itr := ghinstallation.NewFromAppsTransport(atr, id)
	itr.BaseURL = c.apiRoot()
	// Without options ghinstallation posts a JSON null, which GitHub's
	// OpenAPI description does not allow; an empty object asks for the
	// installation's full permissions, which is what we want.
	itr.InstallationTokenOptions = &ghinstoptions.InstallationTokenOptions{}
	gh = c.newGitHubClient(&http.Client{Transport: itr})
	c.mu.Lock()
	defer c.mu.Unlock()
	if existing, ok := c.clientsByID[id]; ok {
		return existing
	}
	c.clientsByID[id] = gh
	return gh
}

// installKey is the account an installation belongs to: installations are
// per organization, user or enterprise, so repositories of one owner share it.
func installKey(s Scope) string {
	if s.Kind == ScopeEnterprise {
		return "enterprise:" + strings.ToLower(s.Name)
	}
	if s.Kind == ScopeRepo {
		return "repo:" + strings.ToLower(s.Name+"/"+s.Repo)
	}
	return "account:" + strings.ToLower(s.Name)
}

// InstallationID returns the App installation serving scope: the configured
// one, else GET /orgs/{org}/installation, GET /repos/{owner}/{repo}/installation,
// or, for an enterprise, a search of GET /app/installations. Answers are cached.
func (c *Client) InstallationID(ctx context.Context, s Scope) (int64, error) {
	if c.appClient == nil {
		return 0, errors.New("installation lookup needs GitHub App auth")
	}
	if c.opts.App.InstallationID != 0 {
		return c.opts.App.InstallationID, nil
	}
	key := installKey(s)
	c.mu.Lock()
	id, ok := c.installByKey[key]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	var inst *github.Installation
	var err error
	switch s.Kind {
	case ScopeOrg:
		inst, err = c.GetOrgInstallation(ctx, s.Name)
	case ScopeRepo:
		inst, err = c.GetRepoInstallation(ctx, s.Name, s.Repo)
	case ScopeEnterprise:
		inst, err = c.findEnterpriseInstallation(ctx, s.Name)
	}
	if err != nil {
		return 0, fmt.Errorf("find app installation for %s: %w", s, err)
	}
	id = inst.GetID()
	c.mu.Lock()
	c.installByKey[key] = id
	c.mu.Unlock()
	c.log.Debug("github app installation found", zap.String("scope", s.String()), zap.Int64("installation", id))
	return id, nil
}

// InvalidateInstallations drops cached installation lookups, e.g. after an
// installation webhook says the App was installed somewhere else.
func (c *Client) InvalidateInstallations() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.installByKey = map[string]int64{}
}

func (c *Client) findEnterpriseInstallation(ctx context.Context, slug string) (*github.Installation, error) {
	all, err := c.ListInstallations(ctx)
	if err != nil {
		return nil, err
	}
	for _, in := range all {
		if strings.EqualFold(in.GetTargetType(), "Enterprise") && strings.EqualFold(in.GetAccount().GetLogin(), slug) {
			return in, nil
		}
		// The enterprise installation's account carries the slug; some
		// responses give it only in the account's html_url.
		if strings.EqualFold(in.GetTargetType(), "Enterprise") && strings.HasSuffix(strings.ToLower(in.GetAccount().GetHTMLURL()), "/enterprises/"+strings.ToLower(slug)) {
			return in, nil
		}
	}
	return nil, fmt.Errorf("no installation of this app on enterprise %q: %w", slug, ErrNotFound)
}

// call sends one request and decodes the JSON answer into out (if not nil).
func (c *Client) call(ctx context.Context, gh *github.Client, method, path string, body, out any) (*github.Response, error) {
	req, err := gh.NewRequest(method, path, body)
	if err != nil {
		return nil, fmt.Errorf("build %s %s: %w", method, path, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.RequestTimeout)
		defer cancel()
	}
	resp, err := gh.Do(ctx, req, out)
	var accepted *github.AcceptedError
	if errors.As(err, &accepted) {
		return resp, nil
	}
	return resp, convertError(method, req.URL.Path, err)
}

// scoped sends a request for a scope: path is relative to the scope prefix.
func (c *Client) scoped(ctx context.Context, s Scope, method, path string, body, out any) (*github.Response, error) {
	gh, err := c.forScope(ctx, s)
	if err != nil {
		return nil, err
	}
	return c.call(ctx, gh, method, s.prefix()+"/"+path, body, out)
}

// asApp sends a request authenticated with the App's JWT (the /app endpoints
// and installation lookups).
func (c *Client) asApp(ctx context.Context, method, path string, body, out any) (*github.Response, error) {
	if c.appClient == nil {
		return nil, fmt.Errorf("%s %s: needs GitHub App auth, not a token", method, path)
	}
	return c.call(ctx, c.appClient, method, path, body, out)
}

// withQuery appends a query to a path.
func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

const maxPerPage = 100

// sendFunc sends one request with a given authentication.
type sendFunc func(ctx context.Context, method, path string, body, out any) (*github.Response, error)

func (c *Client) scopedSender(s Scope) sendFunc {
	return func(ctx context.Context, method, path string, body, out any) (*github.Response, error) {
		return c.scoped(ctx, s, method, path, body, out)
	}
}

// listAll reads every page of a page-numbered list, following the Link
// header. GitHub wraps most lists in an object ({"total_count": n, key: [...]});
// key "" means the answer is the bare array.
func listAll[T any](ctx context.Context, send sendFunc, path string, query url.Values, key string) ([]T, error) {
	var all []T
	for page := 1; ; {
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		q.Set("per_page", strconv.Itoa(maxPerPage))
		q.Set("page", strconv.Itoa(page))
		var items []T
		var resp *github.Response
		var err error
		if key == "" {
			resp, err = send(ctx, http.MethodGet, withQuery(path, q), nil, &items)
		} else {
			var envelope map[string]json.RawMessage
			resp, err = send(ctx, http.MethodGet, withQuery(path, q), nil, &envelope)
			if err == nil && envelope[key] != nil {
				if jerr := json.Unmarshal(envelope[key], &items); jerr != nil {
					err = fmt.Errorf("decode %s of %s: %w", key, path, jerr)
				}
			}
		}
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		// A server that repeats or goes back a page must not loop us forever.
		if resp.NextPage <= page {
			return all, nil
		}
		page = resp.NextPage
	}
}

// tokenEntry is a cached registration token for a scope.
type tokenEntry struct {
	mu    sync.Mutex // held while fetching, so concurrent callers make one request
	token *RegistrationToken
}

// registrationTokenMargin is how long before expiry a cached registration
// token stops being handed out, so a runner configuring slowly still gets a
// valid one.
const registrationTokenMargin = 5 * time.Minute

// scopedRoot sends requests with the credentials of scope's installation to
// paths outside the scope (e.g. /installation/repositories, /rate_limit).
func (c *Client) scopedRoot(s Scope) sendFunc {
	return func(ctx context.Context, method, path string, body, out any) (*github.Response, error) {
		gh, err := c.forScope(ctx, s)
		if err != nil {
			return nil, err
		}
		return c.call(ctx, gh, method, path, body, out)
	}
}
