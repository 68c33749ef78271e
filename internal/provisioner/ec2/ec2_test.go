package ec2

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdkec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
	"github.com/runnerscaler/runnerscaler/internal/secret"
)

func TestMain(m *testing.M) {
	// Keep the SDK's default configuration chain away from the host's AWS
	// files, profiles and instance metadata.
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		os.Unsetenv(k)
	}
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Exit(m.Run())
}

const daemonID = "daemon-1"

type fakeDownloads struct {
	calls atomic.Int32
	apps  []provisioner.RunnerApplication
}

func (d *fakeDownloads) RunnerApplications(context.Context) ([]provisioner.RunnerApplication, error) {
	d.calls.Add(1)
	return d.apps, nil
}

func newDownloads() *fakeDownloads {
	return &fakeDownloads{apps: []provisioner.RunnerApplication{
		{OS: "linux", Architecture: "arm64", DownloadURL: "https://dl.example/arm64.tar.gz", SHA256: "bbbb"},
		{OS: "linux", Architecture: "x64", DownloadURL: "https://dl.example/actions-runner-linux-x64-2.330.0.tar.gz", SHA256: "aaaa"},
	}}
}

func baseSettings(f *fakeEC2) map[string]any {
	return map[string]any{
		"region":               "us-east-1",
		"endpoint":             f.srv.URL,
		"ami":                  "ami-0123456789abcdef0",
		"instance_types":       []any{"m7i.large", "m6i.large"},
		"subnets":              []any{"subnet-aaa", "subnet-bbb"},
		"security_groups":      []any{"sg-0aaa", "sg-0bbb"},
		"key_name":             "ops",
		"iam_instance_profile": "runner-profile",
		"extra_tags":           map[string]any{"team": "ci"},
		"registration_url":     "https://scaler.example.com:8443/",
		"api_max_attempts":     3,
	}
}

type harness struct {
	f    *fakeEC2
	p    *Provisioner
	regs *RegistrationServer
	reg  *httptest.Server
	logs *observer.ObservedLogs
	dl   *fakeDownloads
}

// newHarness builds a provisioner on the real SDK client, pointed at the
// fake EC2 endpoint with static test credentials and no back-off delay.
func newHarness(t *testing.T, edit func(map[string]any)) *harness {
	t.Helper()
	h := &harness{f: newFakeEC2(t), dl: newDownloads()}
	core, logs := observer.New(zap.DebugLevel)
	h.logs = logs
	h.regs = NewRegistrationServer(WithLogger(zap.New(core)))
	h.reg = httptest.NewServer(h.regs)
	t.Cleanup(h.reg.Close)
	s := baseSettings(h.f)
	if edit != nil {
		edit(s)
	}
	p, err := NewWithOptions(s, provisioner.Env{Name: "aws", DaemonID: daemonID, Downloads: h.dl, Logger: zap.New(core)}, Options{
		Registrations: h.regs,
		Credentials:   credentials.NewStaticCredentialsProvider("AKIDTEST", "test-secret-key", ""),
		RetryBackoff:  func(int, error) (time.Duration, error) { return 0, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	return h
}

func jitSpec(name string) provisioner.Spec {
	return provisioner.Spec{
		RunnerName:   name,
		Pool:         "linux-large",
		Labels:       []string{"self-hosted", "linux", "large"},
		RunnerGroup:  "Default",
		ScopeURL:     "https://github.com/octo-org",
		Registration: provisioner.Registration{JITConfig: secret.String("JITSECRET-" + secretSuffix(name))},
	}
}

func secretSuffix(name string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(name + "-jit"))
}

var tokenRE = regexp.MustCompile(`printf 'Authorization: Bearer %s\\n' '([A-Za-z0-9_-]+)'`)

// userDataOf decodes a RunInstances call's user data and the one-time token in it.
func userDataOf(t *testing.T, call url.Values) (script, token string) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(call.Get("UserData"))
	if err != nil {
		t.Fatalf("user data is not base64: %v", err)
	}
	m := tokenRE.FindStringSubmatch(string(raw))
	if m == nil {
		t.Fatalf("no one-time token in user data:\n%s", raw)
	}
	return string(raw), m[1]
}

// fetch does the instance's one-time registration fetch.
func (h *harness) fetch(t *testing.T, token string) (int, bundleJSON) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.reg.URL+RegistrationPath, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := h.reg.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bundleJSON
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &b); err != nil {
			t.Fatalf("bundle: %v: %s", err, body)
		}
	}
	return resp.StatusCode, b
}

// noSecretsLogged fails if any log line carries a secret.
func (h *harness) noSecretsLogged(t *testing.T, secrets ...string) {
	t.Helper()
	for _, e := range h.logs.All() {
		line, _ := json.Marshal(map[string]any{"msg": e.Message, "fields": e.ContextMap()})
		for _, s := range secrets {
			if s != "" && strings.Contains(string(line), s) {
				t.Errorf("secret %q logged: %s", s, line)
			}
		}
	}
}

func TestCreateRequestParameters(t *testing.T) {
	h := newHarness(t, nil)
	spec := jitSpec("runner-1")
	inst, err := h.p.Create(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	runs := h.f.callsOf("RunInstances")
	if len(runs) != 1 {
		t.Fatalf("%d RunInstances calls, want 1", len(runs))
	}
	c := runs[0]
	want := map[string]string{
		"ImageId":                           "ami-0123456789abcdef0",
		"InstanceType":                      "m7i.large",
		"SubnetId":                          "subnet-aaa",
		"SecurityGroupId.1":                 "sg-0aaa",
		"SecurityGroupId.2":                 "sg-0bbb",
		"KeyName":                           "ops",
		"IamInstanceProfile.Name":           "runner-profile",
		"MinCount":                          "1",
		"MaxCount":                          "1",
		"InstanceInitiatedShutdownBehavior": "terminate",
		"MetadataOptions.HttpTokens":        "required",
		"TagSpecification.1.ResourceType":   "instance",
		"TagSpecification.2.ResourceType":   "volume",
	}
	for k, v := range want {
		if got := c.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if c.Get("ClientToken") == "" {
		t.Error("no ClientToken: RunInstances retries would not be idempotent")
	}
	if _, spot := c["InstanceMarketOptions.MarketType"]; spot {
		t.Error("on-demand launch sent InstanceMarketOptions")
	}
	for _, n := range []int{1, 2} {
		tags := map[string]string{}
		for m := 1; ; m++ {
			k := c.Get(fmt.Sprintf("TagSpecification.%d.Tag.%d.Key", n, m))
			if k == "" {
				break
			}
			tags[k] = c.Get(fmt.Sprintf("TagSpecification.%d.Tag.%d.Value", n, m))
		}
		wantTags := map[string]string{TagDaemonID: daemonID, TagProvisioner: "aws", TagPool: "linux-large",
			TagRunnerName: "runner-1", "Name": "runner-1", "team": "ci"}
		for k, v := range wantTags {
			if tags[k] != v {
				t.Errorf("TagSpecification.%d tag %s = %q, want %q (all: %v)", n, k, tags[k], v, tags)
			}
		}
	}

	script, token := userDataOf(t, c)
	jit := spec.Registration.JITConfig.Reveal()
	if strings.Contains(script, jit) || strings.Contains(c.Get("UserData"), jit) {
		t.Fatal("the JIT config is in the user data")
	}
	if !strings.Contains(script, "'https://scaler.example.com:8443"+RegistrationPath+"'") {
		t.Errorf("user data does not fetch from the registration URL:\n%s", script)
	}
	if len(token) != 43 {
		t.Errorf("one-time token %q: want 32 random bytes, base64url (43 chars)", token)
	}

	if inst.ID == "" || inst.State != provisioner.StatePending || inst.Pool != "linux-large" || inst.RunnerName != "runner-1" ||
		len(inst.Addresses) != 1 || inst.CreatedAt.IsZero() {
		t.Errorf("instance %+v", inst)
	}

	// The instance's one fetch: the bundle carries the secret and the package.
	status, b := h.fetch(t, token)
	if status != http.StatusOK {
		t.Fatalf("fetch: %d", status)
	}
	if b.JITConfig != jit || b.RunnerName != "runner-1" || b.URL != "https://github.com/octo-org" ||
		strings.Join(b.Labels, ",") != "self-hosted,linux,large" || b.RunnerGroup != "Default" ||
		b.PackageURL != "https://dl.example/actions-runner-linux-x64-2.330.0.tar.gz" || b.PackageSHA256 != "aaaa" {
		t.Errorf("bundle %+v", b)
	}
	if status, _ := h.fetch(t, token); status != http.StatusGone {
		t.Errorf("second fetch: %d, want 410", status)
	}
	h.noSecretsLogged(t, jit, token)
}

func TestCreateRotatesSubnetsAndCachesThePackage(t *testing.T) {
	h := newHarness(t, nil)
	for i := range 3 {
		if _, err := h.p.Create(context.Background(), jitSpec(fmt.Sprintf("r-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, c := range h.f.callsOf("RunInstances") {
		got = append(got, c.Get("SubnetId"))
	}
	if strings.Join(got, ",") != "subnet-aaa,subnet-bbb,subnet-aaa" {
		t.Errorf("subnets %v, want rotation", got)
	}
	if n := h.dl.calls.Load(); n != 1 {
		t.Errorf("runner application list fetched %d times, want 1", n)
	}
}

func TestCreatePicksThePoolsArchAndOS(t *testing.T) {
	h := newHarness(t, nil)
	spec := jitSpec("arm")
	spec.OS, spec.Arch = "linux", "arm64"
	if _, err := h.p.Create(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	_, token := userDataOf(t, h.f.callsOf("RunInstances")[0])
	if st, b := h.fetch(t, token); st != http.StatusOK || b.PackageURL != "https://dl.example/arm64.tar.gz" || b.PackageSHA256 != "bbbb" {
		t.Errorf("%d %+v", st, b)
	}
	spec.RunnerName, spec.OS = "win", "windows"
	if _, err := h.p.Create(context.Background(), spec); !provisioner.IsPermanent(err) || !strings.Contains(err.Error(), "linux runners only") {
		t.Errorf("windows pool: %v", err)
	}
	spec.OS, spec.Arch = "linux", "s390x"
	if _, err := h.p.Create(context.Background(), spec); !provisioner.IsNotCreated(err) || !strings.Contains(err.Error(), "linux-s390x") {
		t.Errorf("unknown arch: %v", err)
	}
	if n := len(h.f.callsOf("RunInstances")); n != 1 {
		t.Errorf("%d launches", n)
	}
}

func TestCreateLaunchTemplate(t *testing.T) {
	h := newHarness(t, func(s map[string]any) {
		delete(s, "ami")
		delete(s, "instance_types")
		delete(s, "subnets")
		s["launch_template"] = map[string]any{"name": "runners", "version": "$Latest"}
		s["iam_instance_profile"] = "arn:aws:iam::123456789012:instance-profile/runner"
	})
	if _, err := h.p.Create(context.Background(), jitSpec("lt-1")); err != nil {
		t.Fatal(err)
	}
	c := h.f.callsOf("RunInstances")[0]
	if c.Get("LaunchTemplate.LaunchTemplateName") != "runners" || c.Get("LaunchTemplate.Version") != "$Latest" {
		t.Errorf("launch template params: %v", c)
	}
	for _, k := range []string{"ImageId", "InstanceType", "SubnetId", "MetadataOptions.HttpTokens"} {
		if _, ok := c[k]; ok {
			t.Errorf("%s sent with a launch template and no override", k)
		}
	}
	if c.Get("IamInstanceProfile.Arn") != "arn:aws:iam::123456789012:instance-profile/runner" {
		t.Errorf("profile by ARN: %v", c)
	}
}

func refuse(status int, code string) *fakeError { return &fakeError{status, code} }

func TestCreateFallsBackOnCapacity(t *testing.T) {
	tests := []struct {
		name    string
		market  string
		fail    func(n int, form url.Values) *fakeError
		want    []string // market/type/subnet of each RunInstances call
		wantErr bool
	}{
		{
			name: "next instance type after InsufficientInstanceCapacity",
			fail: func(n int, form url.Values) *fakeError {
				if form.Get("InstanceType") == "m7i.large" {
					return refuse(500, "InsufficientInstanceCapacity")
				}
				return nil
			},
			want: []string{"on-demand/m7i.large/subnet-aaa", "on-demand/m6i.large/subnet-aaa"},
		},
		{
			name: "next subnet after every type is refused",
			fail: func(n int, form url.Values) *fakeError {
				if form.Get("SubnetId") == "subnet-aaa" {
					return refuse(500, "InsufficientInstanceCapacity")
				}
				return nil
			},
			want: []string{"on-demand/m7i.large/subnet-aaa", "on-demand/m6i.large/subnet-aaa", "on-demand/m7i.large/subnet-bbb"},
		},
		{
			name: "a full subnet skips its other types",
			fail: func(n int, form url.Values) *fakeError {
				if form.Get("SubnetId") == "subnet-aaa" {
					return refuse(400, "InsufficientFreeAddressesInSubnet")
				}
				return nil
			},
			want: []string{"on-demand/m7i.large/subnet-aaa", "on-demand/m7i.large/subnet-bbb"},
		},
		{
			name: "Unsupported and vCPU quota fall back too",
			fail: func(n int, form url.Values) *fakeError {
				switch n {
				case 1:
					return refuse(400, "Unsupported")
				case 2:
					return refuse(400, "VcpuLimitExceeded")
				}
				return nil
			},
			want: []string{"on-demand/m7i.large/subnet-aaa", "on-demand/m6i.large/subnet-aaa", "on-demand/m7i.large/subnet-bbb"},
		},
		{
			name:   "spot falls back to on-demand after spot capacity runs out",
			market: MarketSpotWithFallback,
			fail: func(n int, form url.Values) *fakeError {
				if form.Get("InstanceMarketOptions.MarketType") == "spot" {
					if form.Get("InstanceType") == "m7i.large" {
						return refuse(500, "InsufficientInstanceCapacity")
					}
					return refuse(400, "SpotMaxPriceTooLow")
				}
				return nil
			},
			want: []string{"spot/m7i.large/subnet-aaa", "spot/m6i.large/subnet-aaa", "spot/m7i.large/subnet-bbb",
				"spot/m6i.large/subnet-bbb", "on-demand/m7i.large/subnet-aaa"},
		},
		{
			name:   "the spot quota goes straight to on-demand",
			market: MarketSpotWithFallback,
			fail: func(n int, form url.Values) *fakeError {
				if form.Get("InstanceMarketOptions.MarketType") == "spot" {
					return refuse(400, "MaxSpotInstanceCountExceeded")
				}
				return nil
			},
			want: []string{"spot/m7i.large/subnet-aaa", "on-demand/m7i.large/subnet-aaa"},
		},
		{
			name:   "spot without fallback gives up",
			market: MarketSpot,
			fail: func(n int, form url.Values) *fakeError {
				return refuse(400, "MaxSpotInstanceCountExceeded")
			},
			want:    []string{"spot/m7i.large/subnet-aaa"},
			wantErr: true,
		},
		{
			name: "all capacity exhausted",
			fail: func(n int, form url.Values) *fakeError {
				return refuse(500, "InsufficientInstanceCapacity")
			},
			want: []string{"on-demand/m7i.large/subnet-aaa", "on-demand/m6i.large/subnet-aaa",
				"on-demand/m7i.large/subnet-bbb", "on-demand/m6i.large/subnet-bbb"},
			wantErr: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(s map[string]any) {
				if tc.market != "" {
					s["market"] = tc.market
				}
			})
			h.f.failRun = func(n int, form url.Values) (*fakeError, bool) { return tc.fail(n, form), false }
			inst, err := h.p.Create(context.Background(), jitSpec("fb"))

			runs := h.f.callsOf("RunInstances")
			var got []string
			tokens := map[string]bool{}
			for _, c := range runs {
				m := "on-demand"
				if c.Get("InstanceMarketOptions.MarketType") == "spot" {
					m = "spot"
					if c.Get("InstanceMarketOptions.SpotOptions.SpotInstanceType") != "one-time" ||
						c.Get("InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior") != "terminate" {
						t.Errorf("spot options: %v", c)
					}
				}
				got = append(got, m+"/"+c.Get("InstanceType")+"/"+c.Get("SubnetId"))
				tokens[c.Get("ClientToken")] = true
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("attempts\n got %v\nwant %v", got, tc.want)
			}
			if len(tokens) != len(runs) {
				t.Errorf("%d distinct client tokens for %d different requests", len(tokens), len(runs))
			}
			_, token := userDataOf(t, runs[0])
			if tc.wantErr {
				if err == nil || !provisioner.IsNotCreated(err) || provisioner.IsPermanent(err) {
					t.Fatalf("err = %v; want a retryable NotCreated error", err)
				}
				if st, _ := h.fetch(t, token); st != http.StatusGone {
					t.Errorf("registration after a failed launch: %d, want 410 (revoked)", st)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if inst.ID == "" {
				t.Errorf("instance %+v", inst)
			}
			if st, _ := h.fetch(t, token); st != http.StatusOK {
				t.Errorf("registration after a launch: %d", st)
			}
		})
	}
}

func TestCreateThrottlingIsRetriedBounded(t *testing.T) {
	t.Run("retried then succeeds", func(t *testing.T) {
		h := newHarness(t, nil) // api_max_attempts 3
		h.f.failRun = func(n int, _ url.Values) (*fakeError, bool) {
			if n <= 2 {
				return refuse(503, "RequestLimitExceeded"), false
			}
			return nil, true
		}
		if _, err := h.p.Create(context.Background(), jitSpec("t1")); err != nil {
			t.Fatal(err)
		}
		runs := h.f.callsOf("RunInstances")
		if len(runs) != 3 {
			t.Fatalf("%d RunInstances calls, want 3", len(runs))
		}
		for _, c := range runs {
			if c.Get("ClientToken") != runs[0].Get("ClientToken") || c.Get("InstanceType") != "m7i.large" {
				t.Errorf("a retry changed the request: %v", c)
			}
		}
	})
	t.Run("gives up after the attempts", func(t *testing.T) {
		h := newHarness(t, nil)
		h.f.failRun = func(int, url.Values) (*fakeError, bool) { return refuse(503, "RequestLimitExceeded"), false }
		_, err := h.p.Create(context.Background(), jitSpec("t2"))
		if err == nil || !provisioner.IsNotCreated(err) || provisioner.IsPermanent(err) || !strings.Contains(err.Error(), "RequestLimitExceeded") {
			t.Fatalf("err = %v; want a retryable NotCreated RequestLimitExceeded", err)
		}
		if n := len(h.f.callsOf("RunInstances")); n != 3 {
			t.Errorf("%d RunInstances calls, want exactly api_max_attempts (3)", n)
		}
	})
	t.Run("throttled after a server error is not proof of nothing", func(t *testing.T) {
		h := newHarness(t, nil)
		h.f.failRun = func(n int, _ url.Values) (*fakeError, bool) {
			if n == 1 {
				return refuse(500, "InternalError"), false
			}
			return refuse(503, "RequestLimitExceeded"), false
		}
		_, err := h.p.Create(context.Background(), jitSpec("t3"))
		if err == nil || provisioner.IsNotCreated(err) {
			t.Fatalf("err = %v; the first attempt may have created it, so not NotCreated", err)
		}
		if n := len(h.f.callsOf("DescribeInstances")); n != 1 {
			t.Errorf("%d lookups by client token, want 1", n)
		}
	})
	t.Run("list retried too", func(t *testing.T) {
		h := newHarness(t, nil)
		h.f.add("running", daemonID, "aws", "p", "r")
		h.f.failDescribe = func(n int, _ url.Values) *fakeError {
			if n == 1 {
				return refuse(503, "RequestLimitExceeded")
			}
			return nil
		}
		got, err := h.p.List(context.Background())
		if err != nil || len(got) != 1 {
			t.Fatalf("list after a throttle: %v, %v", got, err)
		}
	})
}

func TestCreateErrors(t *testing.T) {
	t.Run("a refused request is permanent and not created", func(t *testing.T) {
		h := newHarness(t, nil)
		h.f.failRun = func(int, url.Values) (*fakeError, bool) { return refuse(400, "InvalidAMIID.NotFound"), false }
		_, err := h.p.Create(context.Background(), jitSpec("e1"))
		if !provisioner.IsNotCreated(err) || !provisioner.IsPermanent(err) || !strings.Contains(err.Error(), "InvalidAMIID.NotFound") {
			t.Fatalf("err = %v", err)
		}
		if n := len(h.f.callsOf("RunInstances")); n != 1 {
			t.Errorf("%d calls; a configuration error must not fall back", n)
		}
	})
	t.Run("a server error is retried with the same client token", func(t *testing.T) {
		h := newHarness(t, nil)
		// The first answer is lost after the instance was made; the retry
		// (same client token) gets the same instance, not a second one.
		h.f.failRun = func(n int, _ url.Values) (*fakeError, bool) { return refuse(500, "InternalError"), true }
		inst, err := h.p.Create(context.Background(), jitSpec("e2"))
		if err != nil {
			t.Fatal(err)
		}
		runs := h.f.callsOf("RunInstances")
		if len(runs) != 2 || runs[0].Get("ClientToken") != runs[1].Get("ClientToken") {
			t.Errorf("%d RunInstances calls; want 2 with one client token", len(runs))
		}
		if got := h.f.count(); got != 1 || inst.ID == "" || inst.RunnerName != "e2" {
			t.Errorf("%d instances exist, instance %+v", got, inst)
		}
	})
	t.Run("an instance made despite the error is adopted by its client token", func(t *testing.T) {
		h := newHarness(t, func(s map[string]any) { s["api_max_attempts"] = 1 })
		h.f.failRun = func(int, url.Values) (*fakeError, bool) { return refuse(500, "InternalError"), true }
		inst, err := h.p.Create(context.Background(), jitSpec("e2b"))
		if err != nil {
			t.Fatal(err)
		}
		if got := h.f.count(); got != 1 || inst.ID == "" || inst.RunnerName != "e2b" {
			t.Errorf("%d instances exist, instance %+v", got, inst)
		}
		descs := h.f.callsOf("DescribeInstances")
		if len(descs) != 1 || descs[0].Get("Filter.3.Name") != "client-token" {
			t.Errorf("lookup by client token: %v", descs)
		}
		_, token := userDataOf(t, h.f.callsOf("RunInstances")[0])
		if st, _ := h.fetch(t, token); st != http.StatusOK {
			t.Errorf("the adopted instance's registration: %d", st)
		}
	})
	t.Run("a server error with nothing found is not marked not-created", func(t *testing.T) {
		h := newHarness(t, nil)
		h.f.failRun = func(int, url.Values) (*fakeError, bool) { return refuse(500, "InternalError"), false }
		_, err := h.p.Create(context.Background(), jitSpec("e3"))
		if err == nil || provisioner.IsNotCreated(err) {
			t.Fatalf("err = %v; want an error not marked NotCreated", err)
		}
		runs := h.f.callsOf("RunInstances")
		if len(runs) != 3 {
			t.Errorf("%d RunInstances calls, want 3 (SDK retries with the same client token)", len(runs))
		}
		descs := h.f.callsOf("DescribeInstances")
		if len(descs) != 1 || descs[0].Get("Filter.3.Name") != "client-token" || descs[0].Get("Filter.3.Value.1") != runs[0].Get("ClientToken") {
			t.Errorf("lookup by client token: %v", descs)
		}
		_, token := userDataOf(t, runs[0])
		if st, _ := h.fetch(t, token); st != http.StatusGone {
			t.Errorf("registration: %d, want 410 (revoked)", st)
		}
	})
	t.Run("a spec without registration is refused before any call", func(t *testing.T) {
		h := newHarness(t, nil)
		spec := jitSpec("e4")
		spec.Registration = provisioner.Registration{}
		_, err := h.p.Create(context.Background(), spec)
		if !provisioner.IsPermanent(err) || !provisioner.IsNotCreated(err) {
			t.Fatalf("err = %v", err)
		}
		if n := len(h.f.callsOf("RunInstances")); n != 0 {
			t.Errorf("%d calls", n)
		}
	})
	t.Run("a context cancelled before the launch creates nothing", func(t *testing.T) {
		h := newHarness(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := h.p.Create(ctx, jitSpec("e5"))
		if !errors.Is(err, context.Canceled) || !provisioner.IsNotCreated(err) {
			t.Fatalf("err = %v", err)
		}
		if n := len(h.f.callsOf("RunInstances")); n != 0 {
			t.Errorf("%d calls", n)
		}
	})
	t.Run("a context cancelled during the launch leaves it open", func(t *testing.T) {
		h := newHarness(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		h.f.failRun = func(n int, _ url.Values) (*fakeError, bool) {
			cancel() // the client gives up before it reads the answer
			return nil, true
		}
		// The answer is lost or read; either way the instance is the one
		// result (adopted by its client token when the answer was lost).
		inst, err := h.p.Create(ctx, jitSpec("e6"))
		if err != nil || inst.ID == "" || h.f.count() != 1 {
			t.Fatalf("instance %+v, err %v, %d instances", inst, err, h.f.count())
		}
	})
}

func TestTokenRegistration(t *testing.T) {
	h := newHarness(t, nil)
	spec := jitSpec("tok")
	spec.Registration = provisioner.Registration{Token: "AABBCCREGTOKEN", Ephemeral: true}
	if _, err := h.p.Create(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	c := h.f.callsOf("RunInstances")[0]
	script, token := userDataOf(t, c)
	if strings.Contains(script, "AABBCCREGTOKEN") {
		t.Fatal("registration token in user data")
	}
	st, b := h.fetch(t, token)
	if st != http.StatusOK || b.Token != "AABBCCREGTOKEN" || !b.Ephemeral || b.JITConfig != "" {
		t.Errorf("%d %+v", st, b)
	}
	h.noSecretsLogged(t, "AABBCCREGTOKEN", token)
}

func TestDelete(t *testing.T) {
	h := newHarness(t, nil)
	inst, err := h.p.Create(context.Background(), jitSpec("del"))
	if err != nil {
		t.Fatal(err)
	}
	_, token := userDataOf(t, h.f.callsOf("RunInstances")[0])
	if err := h.p.Delete(context.Background(), inst.ID); err != nil {
		t.Fatal(err)
	}
	if got := h.f.instance(inst.ID).state; got != "shutting-down" {
		t.Errorf("state after delete %q", got)
	}
	if st, _ := h.fetch(t, token); st != http.StatusGone {
		t.Errorf("registration after delete: %d, want 410 (revoked)", st)
	}
	terms := h.f.callsOf("TerminateInstances")
	if len(terms) != 1 || terms[0].Get("InstanceId.1") != inst.ID {
		t.Fatalf("terminate calls %v", terms)
	}

	t.Run("already gone", func(t *testing.T) {
		if err := h.p.Delete(context.Background(), inst.ID); err != nil { // shutting-down
			t.Error(err)
		}
		if err := h.p.Delete(context.Background(), "i-0000000000000dead"); err != nil { // unknown to EC2
			t.Error(err)
		}
		if n := len(h.f.callsOf("TerminateInstances")); n != 1 {
			t.Errorf("%d terminate calls, want no more", n)
		}
	})
	t.Run("vanishing between describe and terminate", func(t *testing.T) {
		i := h.f.add("running", daemonID, "aws", "p", "race")
		h.f.mu.Lock()
		h.f.failTerminate = func(url.Values) *fakeError { return refuse(400, "InvalidInstanceID.NotFound") }
		h.f.mu.Unlock()
		defer func() {
			h.f.mu.Lock()
			h.f.failTerminate = nil
			h.f.mu.Unlock()
		}()
		if err := h.p.Delete(context.Background(), i.id); err != nil {
			t.Errorf("delete of an instance gone meanwhile: %v", err)
		}
	})
	t.Run("foreign instances are never touched", func(t *testing.T) {
		for _, f := range []*fakeInstance{
			h.f.add("running", "other-daemon", "aws", "p", "x"),
			h.f.add("running", daemonID, "other-provisioner", "p", "x"),
		} {
			err := h.p.Delete(context.Background(), f.id)
			if !errors.Is(err, provisioner.ErrNotFound) {
				t.Errorf("delete foreign %s: %v, want ErrNotFound", f.id, err)
			}
			if got := h.f.instance(f.id).state; got != "running" {
				t.Errorf("foreign instance state %q", got)
			}
		}
		if n := len(h.f.callsOf("TerminateInstances")); n != 2 {
			t.Errorf("%d terminate calls, want none for foreign instances", n)
		}
	})
}

func TestListAndGet(t *testing.T) {
	h := newHarness(t, nil)
	h.f.pageSize = 2
	want := map[string]provisioner.State{}
	for _, s := range []struct{ state string }{{"pending"}, {"running"}, {"stopping"}, {"stopped"}, {"running"}} {
		i := h.f.add(s.state, daemonID, "aws", "pool-a", "runner-"+s.state)
		want[i.id] = map[string]provisioner.State{"pending": provisioner.StatePending, "running": provisioner.StateRunning,
			"stopping": provisioner.StateStopped, "stopped": provisioner.StateStopped}[s.state]
	}
	gone := h.f.add("terminated", daemonID, "aws", "pool-a", "old")
	h.f.add("shutting-down", daemonID, "aws", "pool-a", "leaving")
	foreign := h.f.add("running", "other-daemon", "aws", "pool-a", "theirs")
	otherProv := h.f.add("running", daemonID, "aws-eu", "pool-a", "sibling")

	got, err := h.p.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, i := range got {
		ids = append(ids, i.ID)
		if w, ok := want[i.ID]; !ok || i.State != w {
			t.Errorf("listed %+v; want state %q (ours: %v)", i, w, ok)
		}
		if i.Pool != "pool-a" || !strings.HasPrefix(i.RunnerName, "runner-") || len(i.Addresses) != 1 || i.CreatedAt.IsZero() {
			t.Errorf("instance %+v", i)
		}
	}
	if len(got) != len(want) {
		sort.Strings(ids)
		t.Errorf("listed %v, want the %d of ours that are not gone", ids, len(want))
	}
	descs := h.f.callsOf("DescribeInstances")
	if len(descs) != 3 {
		t.Errorf("%d DescribeInstances pages, want 3 (page size 2)", len(descs))
	}
	filters := map[string]string{}
	for n := 1; n <= 3; n++ {
		filters[descs[0].Get(fmt.Sprintf("Filter.%d.Name", n))] = strings.Join(indexed(descs[0], fmt.Sprintf("Filter.%d.Value", n)), ",")
	}
	if filters["tag:"+TagDaemonID] != daemonID || filters["tag:"+TagProvisioner] != "aws" ||
		filters["instance-state-name"] != "pending,running,stopping,stopped" {
		t.Errorf("filters %v", filters)
	}

	for id, w := range want {
		i, err := h.p.Get(context.Background(), id)
		if err != nil || i.State != w {
			t.Errorf("get %s: %+v %v", id, i, err)
		}
	}
	if i, err := h.p.Get(context.Background(), gone.id); err != nil || i.State != provisioner.StateGone {
		t.Errorf("get terminated: %+v %v", i, err)
	}
	for _, id := range []string{foreign.id, otherProv.id, "i-0000000000000beef", "not-an-id"} {
		if _, err := h.p.Get(context.Background(), id); !errors.Is(err, provisioner.ErrNotFound) {
			t.Errorf("get %s: %v, want ErrNotFound", id, err)
		}
	}
}

func TestStateReasonBecomesLastError(t *testing.T) {
	h := newHarness(t, nil)
	i := h.f.add("running", daemonID, "aws", "p", "r")
	if err := h.p.Delete(context.Background(), i.id); err != nil {
		t.Fatal(err)
	}
	got, err := h.p.Get(context.Background(), i.id)
	if err != nil || got.State != provisioner.StateGone || !strings.Contains(got.LastError, "User initiated shutdown") {
		t.Errorf("%+v %v", got, err)
	}
}

func TestConcurrentCreates(t *testing.T) {
	h := newHarness(t, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := h.p.Create(context.Background(), jitSpec(fmt.Sprintf("c-%d", i)))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	got, err := h.p.List(context.Background())
	if err != nil || len(got) != 8 {
		t.Fatalf("list: %d, %v", len(got), err)
	}
	if n := h.regs.Outstanding(); n != 8 {
		t.Errorf("%d registrations outstanding, want 8", n)
	}
}

func TestNewWithClientAndRegistry(t *testing.T) {
	f := newFakeEC2(t)
	client := sdkec2.New(sdkec2.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(f.srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "k", ""),
	})
	regs := NewRegistrationServer()
	s := baseSettings(f)
	s["runner_preinstalled"] = true
	p, err := NewWithClient(s, provisioner.Env{Name: "aws", DaemonID: daemonID}, client, regs)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := p.Create(context.Background(), jitSpec("wc"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.Get(context.Background(), inst.ID); err != nil || got.RunnerName != "wc" {
		t.Errorf("%+v %v", got, err)
	}

	r := provisioner.NewRegistry()
	r.Register("ec2", NewFactory(regs))
	built, err := r.Build("ec2", baseSettings(f), provisioner.Env{Name: "aws", DaemonID: daemonID, Downloads: newDownloads()})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := built.(*Provisioner); !ok {
		t.Errorf("built %T", built)
	}
	_, err = r.Build("ec2", map[string]any{"region": "us-east-1"}, provisioner.Env{Name: "aws", DaemonID: daemonID})
	var se *provisioner.SettingsError
	if !errors.As(err, &se) {
		t.Errorf("bad settings: %v, want *SettingsError", err)
	}
	if _, err := NewWithOptions(baseSettings(f), provisioner.Env{Name: "aws", DaemonID: daemonID}, Options{Registrations: regs}); err == nil ||
		!strings.Contains(err.Error(), "runner_preinstalled") {
		t.Errorf("no downloads source: %v", err)
	}
	if _, err := NewWithOptions(s, provisioner.Env{Name: "aws"}, Options{Registrations: regs}); err == nil {
		t.Error("an empty daemon id must be refused")
	}
	if _, err := NewWithOptions(s, provisioner.Env{Name: "aws", DaemonID: daemonID}, Options{}); err == nil {
		t.Error("a provisioner without a registration server must be refused")
	}
}
