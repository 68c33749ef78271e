// Package ec2 runs GitHub Actions runners on AWS EC2 instances.
//
// Create launches one instance with RunInstances, from a launch template or
// from an AMI, trying the configured instance types and subnets in order on
// capacity errors and, with market spot-with-fallback, on-demand after spot
// capacity runs out. Every instance and its volumes carry the tags
// runnerscaler:daemon-id, runnerscaler:provisioner, runnerscaler:pool and
// runnerscaler:runner-name; List, Get and Delete only ever see or touch
// instances whose daemon id and provisioner name are ours.
//
// The runner's registration secret (JIT config or registration token) never
// goes into user data, which any process on the instance can read. The user
// data carries a one-time token instead, which the instance exchanges once,
// before the bootstrap timeout, for its registration bundle at the daemon's
// RegistrationServer (GET /instance/v1/registration). The bootstrap script
// (bash; needs curl, tar, sha256sum and jq or python3) shuts the machine down
// when the runner exits or the bootstrap fails, and instances are launched
// with instance-initiated shutdown = terminate, so they clean up after
// themselves.
//
// Credentials come from the SDK's default chain (environment, shared
// config, IMDS). The daemon needs ec2:RunInstances, ec2:CreateTags (on
// launch), ec2:DescribeInstances, ec2:TerminateInstances and iam:PassRole
// for the instance profile; TerminateInstances can be limited by IAM to
// resources tagged runnerscaler:daemon-id.
package ec2

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
	"github.com/runnerscaler/runnerscaler/internal/secret"
)

// Ownership and identity tags on every instance and volume.
const (
	TagDaemonID    = "runnerscaler:daemon-id"
	TagProvisioner = "runnerscaler:provisioner"
	TagPool        = "runnerscaler:pool"
	TagRunnerName  = "runnerscaler:runner-name"
)

// EC2API is the part of the EC2 client the provisioner uses; *ec2.Client
// satisfies it.
type EC2API interface {
	RunInstances(ctx context.Context, in *ec2.RunInstancesInput, optFns ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, optFns ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

var (
	_ EC2API                  = (*ec2.Client)(nil)
	_ provisioner.Provisioner = (*Provisioner)(nil)
)

// Options are the optional collaborators of NewWithOptions.
type Options struct {
	// Registrations serves the one-time registration fetch (required): the
	// daemon creates it and mounts it at RegistrationPath.
	Registrations *RegistrationServer
	// API replaces the SDK client built from the settings (region, endpoint,
	// api_max_attempts) and the SDK's default credential chain.
	API EC2API
	// Credentials replaces the SDK's default credential chain.
	Credentials aws.CredentialsProvider
	// HTTPClient replaces the SDK's HTTP client.
	HTTPClient aws.HTTPClient
	// RetryBackoff replaces the SDK's jittered exponential back-off between
	// attempts of one API call (tests use a zero delay).
	RetryBackoff func(attempt int, err error) (time.Duration, error)
}

type cachedPackage struct {
	app provisioner.RunnerApplication
	at  time.Time
}

// Provisioner launches runners on EC2.
type Provisioner struct {
	name      string
	daemonID  string
	s         *settings
	api       EC2API
	regs      *RegistrationServer
	downloads provisioner.RunnerDownloads
	logger    *zap.Logger
	now       func() time.Time
	rotation  atomic.Uint64 // the subnet the next Create starts with

	pkgMu sync.Mutex
	pkgs  map[string]cachedPackage // by architecture
}

// NewFactory returns a provisioner.Factory whose provisioners hand out
// registrations through regs, which the daemon mounts at RegistrationPath.
func NewFactory(regs *RegistrationServer) provisioner.Factory {
	return func(settings map[string]any, env provisioner.Env) (provisioner.Provisioner, error) {
		return NewWithOptions(settings, env, Options{Registrations: regs})
	}
}

// NewWithClient builds a provisioner on an existing EC2 client.
func NewWithClient(settings map[string]any, env provisioner.Env, api EC2API, regs *RegistrationServer) (*Provisioner, error) {
	return NewWithOptions(settings, env, Options{API: api, Registrations: regs})
}

// NewWithOptions builds provisioner env.Name from its settings.
func NewWithOptions(settings map[string]any, env provisioner.Env, opts Options) (*Provisioner, error) {
	s, err := parseSettings(env.Name, settings)
	if err != nil {
		return nil, err
	}
	if env.DaemonID == "" {
		return nil, errors.New("ec2 provisioner: the daemon id is empty; instances could not be told apart from foreign ones")
	}
	if env.Downloads == nil && !s.runnerPreinstalled {
		return nil, fmt.Errorf("ec2 provisioner %s: no runner downloads source; set runner_preinstalled for AMIs that carry the runner in %s", env.Name, s.runnerDir)
	}
	p := &Provisioner{
		name:      env.Name,
		daemonID:  env.DaemonID,
		s:         s,
		api:       opts.API,
		regs:      opts.Registrations,
		downloads: env.Downloads,
		logger:    env.Logger,
		now:       env.Clock,
		pkgs:      map[string]cachedPackage{},
	}
	if p.regs == nil {
		return nil, errors.New("ec2 provisioner: no registration server; build it with NewFactory(server) and mount the server at RegistrationPath")
	}
	if p.logger == nil {
		p.logger = zap.NewNop()
	}
	p.logger = p.logger.With(zap.String("provisioner", env.Name))
	if p.now == nil {
		p.now = time.Now
	}
	if p.api == nil {
		p.api, err = newClient(s, opts)
		if err != nil {
			return nil, fmt.Errorf("ec2 provisioner %s: %w", env.Name, err)
		}
	}
	if strings.HasPrefix(s.registrationURL, "http://") {
		p.logger.Warn("registration_url is plain http; the one-time token and the registration secret cross the network unencrypted",
			zap.String("registration_url", s.registrationURL))
	}
	return p, nil
}

// newClient builds the SDK client: credentials from the default chain
// (environment, shared config, IMDS) unless given, and a bounded retryer.
func newClient(s *settings, opts Options) (*ec2.Client, error) {
	load := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(s.region),
		awsconfig.WithRetryer(func() aws.Retryer { return newRetryer(s.apiMaxAttempts, opts.RetryBackoff) }),
	}
	if opts.Credentials != nil {
		load = append(load, awsconfig.WithCredentialsProvider(opts.Credentials))
	}
	if opts.HTTPClient != nil {
		load = append(load, awsconfig.WithHTTPClient(opts.HTTPClient))
	}
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), load...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		if s.endpoint != "" {
			o.BaseEndpoint = aws.String(s.endpoint)
		}
		// Keep the bound even when AWS_MAX_ATTEMPTS or a profile says otherwise.
		o.RetryMaxAttempts = s.apiMaxAttempts
	}), nil
}

// newRetryer is the SDK's standard retryer (throttling and transient errors,
// jittered exponential back-off, a client-wide retry budget) bounded to
// maxAttempts, except that capacity errors are not retried: the launch loop
// moves on to the next instance type or subnet instead.
func newRetryer(maxAttempts int, backoff func(int, error) (time.Duration, error)) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = maxAttempts
		if backoff != nil {
			o.Backoff = retry.BackoffDelayerFunc(backoff)
		}
		o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			if _, capacity := fallbackCodes[errorCode(err)]; capacity {
				return aws.FalseTernary
			}
			return aws.UnknownTernary
		})}, o.Retryables...)
	})
}

// Create implements provisioner.Provisioner.
func (p *Provisioner) Create(ctx context.Context, spec provisioner.Spec) (provisioner.Instance, error) {
	if err := checkSpec(spec); err != nil {
		return provisioner.Instance{}, provisioner.Permanent(provisioner.NotCreated(fmt.Errorf("create runner %s: %w", spec.RunnerName, err)))
	}
	bundle := Bundle{
		RunnerName:  spec.RunnerName,
		Pool:        spec.Pool,
		Labels:      spec.Labels,
		RunnerGroup: spec.RunnerGroup,
		URL:         spec.ScopeURL,
		JITConfig:   spec.Registration.JITConfig,
		Token:       spec.Registration.Token,
		Ephemeral:   spec.Registration.Ephemeral,
	}
	if !p.s.runnerPreinstalled {
		arch := spec.Arch
		if arch == "" {
			arch = p.s.runnerArch
		}
		app, err := p.runnerPackage(ctx, arch)
		if err != nil {
			return provisioner.Instance{}, provisioner.NotCreated(fmt.Errorf("create runner %s: %w", spec.RunnerName, err))
		}
		bundle.PackageURL, bundle.PackageSHA256 = app.DownloadURL, app.SHA256
	}
	token, err := p.regs.Offer(bundle, p.s.bootstrapTimeout)
	if err != nil {
		return provisioner.Instance{}, provisioner.NotCreated(fmt.Errorf("create runner %s: %w", spec.RunnerName, err))
	}
	inst, err := p.launch(ctx, spec, token)
	if err != nil {
		p.regs.Revoke(token)
		return provisioner.Instance{}, fmt.Errorf("create runner %s: %w", spec.RunnerName, err)
	}
	p.regs.Bind(token, inst.ID)
	return inst, nil
}

func checkSpec(spec provisioner.Spec) error {
	var missing []string
	if spec.RunnerName == "" {
		missing = append(missing, "runner name")
	}
	if spec.Pool == "" {
		missing = append(missing, "pool")
	}
	if spec.OS != "" && spec.OS != "linux" {
		return fmt.Errorf("the pool's os is %s; the ec2 provisioner's bootstrap runs linux runners only", spec.OS)
	}
	switch {
	case spec.Registration.JITConfig != "":
	case spec.Registration.Token != "":
		if spec.ScopeURL == "" {
			missing = append(missing, "scope URL (token registration)")
		}
	default:
		missing = append(missing, "registration (a JIT config or a registration token)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("spec lacks %s", strings.Join(missing, ", "))
	}
	return nil
}

// runnerPackageTTL is how long the runner application list is trusted.
const runnerPackageTTL = time.Hour

// runnerPackage returns the runner application build for linux on arch,
// asking the downloads source at most once an hour.
func (p *Provisioner) runnerPackage(ctx context.Context, arch string) (provisioner.RunnerApplication, error) {
	p.pkgMu.Lock()
	defer p.pkgMu.Unlock()
	cached, ok := p.pkgs[arch]
	if ok && p.now().Sub(cached.at) < runnerPackageTTL {
		return cached.app, nil
	}
	apps, err := p.downloads.RunnerApplications(ctx)
	if err != nil {
		if ok {
			p.logger.Warn("runner application list unavailable; using the last one", zap.Error(err))
			return cached.app, nil
		}
		return provisioner.RunnerApplication{}, fmt.Errorf("list runner applications: %w", err)
	}
	for _, a := range apps {
		if a.OS == "linux" && a.Architecture == arch {
			if a.DownloadURL == "" || a.SHA256 == "" {
				return provisioner.RunnerApplication{}, fmt.Errorf("runner application linux-%s has no download URL or checksum", arch)
			}
			p.pkgs[arch] = cachedPackage{app: a, at: p.now()}
			return a, nil
		}
	}
	return provisioner.RunnerApplication{}, fmt.Errorf("no runner application for linux-%s", arch)
}

// Delete implements provisioner.Provisioner: it revokes the instance's
// registration token and terminates it if it is ours.
func (p *Provisioner) Delete(ctx context.Context, id string) error {
	p.regs.RevokeInstance(id)
	inst, err := p.Get(ctx, id)
	switch {
	case errors.Is(err, errGone):
		return nil
	case err != nil:
		return fmt.Errorf("delete instance %s: %w", id, err)
	case inst.State == provisioner.StateGone:
		return nil
	}
	_, err = p.api.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if isCode(err, "InvalidInstanceID.NotFound") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete instance %s: terminate: %w", id, err)
	}
	p.logger.Info("instance terminated", zap.String("instance", id),
		zap.String("runner", inst.RunnerName), zap.String("pool", inst.Pool))
	return nil
}

// errGone: EC2 does not know the id (any more). Get reports it as
// ErrNotFound; Delete as success.
var errGone = fmt.Errorf("no such instance: %w", provisioner.ErrNotFound)

// Get implements provisioner.Provisioner. Instances that are not ours are
// reported as provisioner.ErrNotFound.
func (p *Provisioner) Get(ctx context.Context, id string) (provisioner.Instance, error) {
	if !strings.HasPrefix(id, "i-") {
		return provisioner.Instance{}, fmt.Errorf("instance %q: %w", id, errGone)
	}
	out, err := p.api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if isCode(err, "InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed") {
		return provisioner.Instance{}, fmt.Errorf("instance %s: %w", id, errGone)
	}
	if err != nil {
		return provisioner.Instance{}, fmt.Errorf("describe instance %s: %w", id, err)
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			if aws.ToString(i.InstanceId) != id {
				continue
			}
			if !p.owns(i) {
				return provisioner.Instance{}, fmt.Errorf("instance %s is not owned by this daemon and provisioner: %w", id, provisioner.ErrNotFound)
			}
			return toInstance(i), nil
		}
	}
	return provisioner.Instance{}, fmt.Errorf("instance %s: %w", id, errGone)
}

// listPageSize is DescribeInstances' MaxResults in List.
const listPageSize = 500

// List implements provisioner.Provisioner: every instance tagged with our
// daemon id and provisioner name that is not shutting down or terminated.
func (p *Provisioner) List(ctx context.Context) ([]provisioner.Instance, error) {
	pages := ec2.NewDescribeInstancesPaginator(p.api, &ec2.DescribeInstancesInput{
		Filters:    append(p.ownerFilters(), filter("instance-state-name", "pending", "running", "stopping", "stopped")),
		MaxResults: aws.Int32(listPageSize),
	})
	out := []provisioner.Instance{}
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list instances: %w", err)
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				if !p.owns(i) { // the filter should have done this; never trust a foreign instance
					continue
				}
				if inst := toInstance(i); inst.State != provisioner.StateGone {
					out = append(out, inst)
				}
			}
		}
	}
	return out, nil
}

func (p *Provisioner) ownerFilters() []types.Filter {
	return []types.Filter{
		filter("tag:"+TagDaemonID, p.daemonID),
		filter("tag:"+TagProvisioner, p.name),
	}
}

func filter(name string, values ...string) types.Filter {
	return types.Filter{Name: aws.String(name), Values: values}
}

func (p *Provisioner) owns(i types.Instance) bool {
	tags := tagMap(i.Tags)
	return tags[TagDaemonID] == p.daemonID && tags[TagProvisioner] == p.name
}

func tagMap(tags []types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// toInstance maps an EC2 instance; EC2 states map as pending → pending,
// running → running, stopping/stopped → stopped, shutting-down/terminated →
// gone.
func toInstance(i types.Instance) provisioner.Instance {
	tags := tagMap(i.Tags)
	inst := provisioner.Instance{
		ID:         aws.ToString(i.InstanceId),
		Pool:       tags[TagPool],
		RunnerName: tags[TagRunnerName],
		State:      provisioner.StateFailed,
		CreatedAt:  aws.ToTime(i.LaunchTime),
	}
	if i.State != nil {
		switch i.State.Name {
		case types.InstanceStateNamePending:
			inst.State = provisioner.StatePending
		case types.InstanceStateNameRunning:
			inst.State = provisioner.StateRunning
		case types.InstanceStateNameStopping, types.InstanceStateNameStopped:
			inst.State = provisioner.StateStopped
		case types.InstanceStateNameShuttingDown, types.InstanceStateNameTerminated:
			inst.State = provisioner.StateGone
		}
	}
	for _, a := range []*string{i.PrivateIpAddress, i.PublicIpAddress, i.Ipv6Address} {
		if aws.ToString(a) != "" {
			inst.Addresses = append(inst.Addresses, *a)
		}
	}
	if i.StateReason != nil && (inst.State == provisioner.StateStopped || inst.State == provisioner.StateGone) {
		inst.LastError = aws.ToString(i.StateReason.Message)
	}
	return inst
}

// renderBootstrap returns the base64 user data for one instance.
func (p *Provisioner) renderBootstrap(token secret.String) (string, error) {
	script, err := renderUserData(userData{
		RegistrationURL: p.s.registrationURL,
		Token:           token.Reveal(),
		RunnerDir:       p.s.runnerDir,
		RunnerUser:      p.s.runnerUser,
		Shutdown:        true,
	})
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString([]byte(script)), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
