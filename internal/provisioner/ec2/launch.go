package ec2

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
	"github.com/runnerscaler/runnerscaler/internal/secret"
)

// What a RunInstances error tells the launch loop to do next.
type fallback int

const (
	nextType   fallback = iota + 1 // this instance type cannot be had here: try the next type
	nextSubnet                     // this subnet is full: try the next subnet
	nextMarket                     // spot cannot be had at all: go on-demand (if allowed)
)

// fallbackCodes are the EC2 errors a launch falls back on. All of them mean
// EC2 refused the request: nothing was created.
var fallbackCodes = map[string]fallback{
	"InsufficientInstanceCapacity":         nextType, // no capacity for the type in the AZ (HTTP 500)
	"InsufficientHostCapacity":             nextType,
	"InsufficientReservedInstanceCapacity": nextType,
	"InsufficientCapacity":                 nextType,
	"Unsupported":                          nextType, // e.g. the type is not offered in this AZ
	"InstanceLimitExceeded":                nextType, // instance-count quota; a smaller type may still fit
	"VcpuLimitExceeded":                    nextType, // vCPU quota (per family class); a smaller or other type may fit
	"SpotMaxPriceTooLow":                   nextType, // spot price of this type is above the maximum
	"InsufficientFreeAddressesInSubnet":    nextSubnet,
	"InsufficientAddressCapacity":          nextSubnet,
	"MaxSpotInstanceCountExceeded":         nextMarket, // spot quota: no spot type will do
}

// uncertainCodes are server errors after which EC2 may have created the
// instance anyway.
var uncertainCodes = map[string]bool{
	"InternalError":      true,
	"InternalFailure":    true,
	"ServiceUnavailable": true,
	"Unavailable":        true,
}

// launchAttempt is one RunInstances call of the fallback plan.
type launchAttempt struct {
	market       string // MarketSpot or MarketOnDemand
	instanceType string // empty: the launch template's
	subnet       string // empty: the launch template's or the default VPC's
}

func (a launchAttempt) String() string {
	return fmt.Sprintf("%s/%s/%s", a.market, orDefault(a.instanceType), orDefault(a.subnet))
}

func orDefault(s string) string {
	if s == "" {
		return "default"
	}
	return s
}

// launch runs the fallback plan: for each market (spot, then on-demand with
// spot-with-fallback), for each subnet starting at a rotating offset, each
// instance type in order. Capacity errors move on; any other error ends the
// plan. It returns the first instance launched.
func (p *Provisioner) launch(ctx context.Context, spec provisioner.Spec, token secret.String) (provisioner.Instance, error) {
	ud, err := p.renderBootstrap(token)
	if err != nil {
		return provisioner.Instance{}, provisioner.NotCreated(fmt.Errorf("render user data: %w", err))
	}
	var markets []string
	switch p.s.market {
	case MarketSpot:
		markets = []string{MarketSpot}
	case MarketSpotWithFallback:
		markets = []string{MarketSpot, MarketOnDemand}
	default:
		markets = []string{MarketOnDemand}
	}
	subnets := p.s.subnets
	if len(subnets) == 0 {
		subnets = []string{""}
	} else {
		start := int(p.rotation.Add(1)-1) % len(subnets)
		subnets = append(append([]string{}, subnets[start:]...), subnets[:start]...)
	}
	instanceTypes := p.s.instanceTypes
	if len(instanceTypes) == 0 {
		instanceTypes = []string{""}
	}

	base := "rs-" + randomHex(12)
	n := 0
	var refusals []string
	var lastErr error
	for _, market := range markets {
	subnetLoop:
		for _, subnet := range subnets {
			for _, typ := range instanceTypes {
				if err := ctx.Err(); err != nil {
					// Everything tried so far was refused: nothing exists.
					return provisioner.Instance{}, provisioner.NotCreated(err)
				}
				n++
				a := launchAttempt{market: market, instanceType: typ, subnet: subnet}
				clientToken := fmt.Sprintf("%s-%d", base, n)
				attempts := &attemptLog{}
				out, err := p.api.RunInstances(ctx, p.runInput(spec, a, ud, clientToken), attempts.option)
				if err == nil {
					return p.launched(spec, a, out)
				}
				code := errorCode(err)
				fb, capacity := fallbackCodes[code]
				if !capacity || attempts.uncertain.Load() {
					return p.launchFailed(ctx, spec, a, clientToken, err, attempts.uncertain.Load())
				}
				refusals = append(refusals, a.String()+": "+code)
				lastErr = err
				p.logger.Info("launch refused; falling back",
					zap.String("runner", spec.RunnerName), zap.String("pool", spec.Pool),
					zap.String("market", market), zap.String("instance_type", typ),
					zap.String("subnet", subnet), zap.String("code", code))
				switch fb {
				case nextSubnet:
					continue subnetLoop
				case nextMarket:
					if market == MarketSpot {
						break subnetLoop
					}
				}
			}
		}
	}
	return provisioner.Instance{}, provisioner.NotCreated(fmt.Errorf("no capacity after %d launch attempts (%s): %w",
		n, strings.Join(refusals, "; "), lastErr))
}

func (p *Provisioner) runInput(spec provisioner.Spec, a launchAttempt, userData, clientToken string) *ec2.RunInstancesInput {
	tags := []types.Tag{
		{Key: aws.String("Name"), Value: aws.String(spec.RunnerName)},
		{Key: aws.String(TagDaemonID), Value: aws.String(p.daemonID)},
		{Key: aws.String(TagProvisioner), Value: aws.String(p.name)},
		{Key: aws.String(TagPool), Value: aws.String(spec.Pool)},
		{Key: aws.String(TagRunnerName), Value: aws.String(spec.RunnerName)},
	}
	for k, v := range p.s.extraTags {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	in := &ec2.RunInstancesInput{
		MinCount:                          aws.Int32(1),
		MaxCount:                          aws.Int32(1),
		ClientToken:                       aws.String(clientToken),
		UserData:                          aws.String(userData),
		InstanceInitiatedShutdownBehavior: types.ShutdownBehaviorTerminate,
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: tags},
			{ResourceType: types.ResourceTypeVolume, Tags: tags},
		},
	}
	if p.s.launchTemplate() {
		lt := &types.LaunchTemplateSpecification{}
		if p.s.ltID != "" {
			lt.LaunchTemplateId = aws.String(p.s.ltID)
		} else {
			lt.LaunchTemplateName = aws.String(p.s.ltName)
		}
		if p.s.ltVersion != "" {
			lt.Version = aws.String(p.s.ltVersion)
		}
		in.LaunchTemplate = lt
	} else {
		in.ImageId = aws.String(p.s.ami)
		// IMDSv2 only: the instance's role credentials are not one SSRF away.
		in.MetadataOptions = &types.InstanceMetadataOptionsRequest{HttpTokens: types.HttpTokensStateRequired}
	}
	if a.instanceType != "" {
		in.InstanceType = types.InstanceType(a.instanceType)
	}
	if a.subnet != "" {
		in.SubnetId = aws.String(a.subnet)
	}
	if len(p.s.securityGroups) > 0 {
		in.SecurityGroupIds = p.s.securityGroups
	}
	if p.s.keyName != "" {
		in.KeyName = aws.String(p.s.keyName)
	}
	if prof := p.s.iamInstanceProfile; prof != "" {
		if strings.HasPrefix(prof, "arn:") {
			in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Arn: aws.String(prof)}
		} else {
			in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: aws.String(prof)}
		}
	}
	if a.market == MarketSpot {
		in.InstanceMarketOptions = &types.InstanceMarketOptionsRequest{
			MarketType: types.MarketTypeSpot,
			SpotOptions: &types.SpotMarketOptions{
				SpotInstanceType:             types.SpotInstanceTypeOneTime,
				InstanceInterruptionBehavior: types.InstanceInterruptionBehaviorTerminate,
			},
		}
	}
	return in
}

func (p *Provisioner) launched(spec provisioner.Spec, a launchAttempt, out *ec2.RunInstancesOutput) (provisioner.Instance, error) {
	if out == nil || len(out.Instances) == 0 {
		// EC2 accepted the request but named no instance: treat it as
		// possibly created (List will show it by its tags).
		return provisioner.Instance{}, errors.New("RunInstances answered without an instance")
	}
	inst := toInstance(out.Instances[0])
	// The response may lack tags; fill in what we asked for.
	inst.Pool, inst.RunnerName = spec.Pool, spec.RunnerName
	if inst.State == provisioner.StateFailed {
		inst.State = provisioner.StatePending
	}
	p.logger.Info("instance launched",
		zap.String("runner", spec.RunnerName), zap.String("pool", spec.Pool),
		zap.String("instance", inst.ID), zap.String("market", a.market),
		zap.String("instance_type", string(out.Instances[0].InstanceType)),
		zap.String("subnet", aws.ToString(out.Instances[0].SubnetId)))
	return inst, nil
}

// launchFailed classifies a RunInstances error that ends the plan. EC2
// refused the request (nothing exists) when every attempt of the call was
// refused: a client error (4xx), throttling or a capacity error. A server
// error or a transport failure in any attempt leaves it open, so the
// instance is looked up by its client token and adopted if it exists.
func (p *Provisioner) launchFailed(ctx context.Context, spec provisioner.Spec, a launchAttempt, clientToken string, err error, uncertain bool) (provisioner.Instance, error) {
	err = fmt.Errorf("launch %s: %w", a, err)
	if !uncertain && refused(err) {
		code := errorCode(err)
		if _, capacity := fallbackCodes[code]; capacity || isThrottle(code) {
			return provisioner.Instance{}, provisioner.NotCreated(err)
		}
		// A refused request: bad AMI, subnet, profile, permissions... Retrying
		// the same request will not help.
		return provisioner.Instance{}, provisioner.Permanent(provisioner.NotCreated(err))
	}
	// The request may have succeeded. Look for the instance by its client
	// token (RunInstances is idempotent on it); adopt it if it exists.
	lookCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	out, derr := p.api.DescribeInstances(lookCtx, &ec2.DescribeInstancesInput{
		Filters: append(p.ownerFilters(), filter("client-token", clientToken)),
	})
	if derr == nil {
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				if aws.ToString(i.ClientToken) == clientToken && p.owns(i) {
					p.logger.Warn("launch answered with an error but the instance exists; adopting it",
						zap.String("runner", spec.RunnerName), zap.String("instance", aws.ToString(i.InstanceId)),
						zap.Error(err))
					return p.launched(spec, a, &ec2.RunInstancesOutput{Instances: []types.Instance{i}})
				}
			}
		}
	}
	p.logger.Warn("launch failed; an instance may exist (it would be listed by its tags and, without its registration, shut itself down)",
		zap.String("runner", spec.RunnerName), zap.String("pool", spec.Pool), zap.Error(err))
	return provisioner.Instance{}, err
}

// refused reports whether err proves EC2 refused the request: an API error
// that is a client error (4xx), throttling or a capacity refusal.
func refused(err error) bool {
	code := errorCode(err)
	switch {
	case code == "" || uncertainCodes[code]:
		return false
	case isThrottle(code):
		return true
	}
	if _, capacity := fallbackCodes[code]; capacity {
		return true
	}
	status := httpStatus(err)
	return status >= 400 && status < 500
}

// attemptLog notes whether any attempt of one SDK call (the SDK retries
// inside a call) failed in a way that leaves open whether EC2 acted on it:
// the last attempt's error alone does not tell.
type attemptLog struct{ uncertain atomic.Bool }

// option is a per-call ec2.Options function that wraps the call's retryer.
func (l *attemptLog) option(o *ec2.Options) {
	if r, ok := o.Retryer.(aws.RetryerV2); ok {
		o.Retryer = recordingRetryer{RetryerV2: r, log: l}
	}
}

type recordingRetryer struct {
	aws.RetryerV2
	log *attemptLog
}

// IsErrorRetryable is asked about every failed attempt.
func (r recordingRetryer) IsErrorRetryable(err error) bool {
	if !refused(err) {
		r.log.uncertain.Store(true)
	}
	return r.RetryerV2.IsErrorRetryable(err)
}

// errorCode returns the EC2 error code of err, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func isCode(err error, codes ...string) bool {
	if err == nil {
		return false
	}
	c := errorCode(err)
	for _, want := range codes {
		if c == want {
			return true
		}
	}
	return false
}

func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func isThrottle(code string) bool {
	switch code {
	case "RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled", "EC2ThrottledException":
		return true
	}
	return false
}
