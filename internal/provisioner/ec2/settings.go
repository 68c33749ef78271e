package ec2

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
)

// Markets.
const (
	MarketOnDemand         = "on-demand"
	MarketSpot             = "spot"
	MarketSpotWithFallback = "spot-with-fallback"
)

// Defaults.
const (
	DefaultBootstrapTimeout = 10 * time.Minute
	DefaultAPIMaxAttempts   = 5
	DefaultRunnerDir        = "/opt/actions-runner"
	DefaultRunnerUser       = "runner"
	DefaultRunnerArch       = "x64"
	maxBootstrapTimeout     = 24 * time.Hour
	maxAPIMaxAttempts       = 20
)

// rawSettings is provisioners.<name>.settings as written in the config.
type rawSettings struct {
	Region             string            `json:"region"`
	Endpoint           string            `json:"endpoint"`
	LaunchTemplate     map[string]any    `json:"launch_template"`
	AMI                string            `json:"ami"`
	InstanceTypes      []string          `json:"instance_types"`
	Subnets            []string          `json:"subnets"`
	SecurityGroups     []string          `json:"security_groups"`
	KeyName            string            `json:"key_name"`
	IAMInstanceProfile string            `json:"iam_instance_profile"`
	Market             string            `json:"market"`
	ExtraTags          map[string]string `json:"extra_tags"`
	BootstrapTimeout   string            `json:"bootstrap_timeout"`
	RegistrationURL    string            `json:"registration_url"`
	RunnerArch         string            `json:"runner_arch"` // when the pool names no arch
	RunnerDir          string            `json:"runner_dir"`
	RunnerUser         *string           `json:"runner_user"`
	RunnerPreinstalled bool              `json:"runner_preinstalled"`
	APIMaxAttempts     int               `json:"api_max_attempts"`
}

type rawLaunchTemplate struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Version string `json:"version"`
}

// settings are the validated settings with defaults applied.
type settings struct {
	region             string
	endpoint           string
	ltID, ltName       string // at most one set; both empty in AMI mode
	ltVersion          string
	ami                string
	instanceTypes      []string
	subnets            []string
	securityGroups     []string
	keyName            string
	iamInstanceProfile string
	market             string
	extraTags          map[string]string
	bootstrapTimeout   time.Duration
	registrationURL    string // the full URL of the registration endpoint
	runnerArch         string
	runnerDir          string
	runnerUser         string // empty: run as the user running the bootstrap script
	runnerPreinstalled bool
	apiMaxAttempts     int
}

func (s *settings) launchTemplate() bool { return s.ltID != "" || s.ltName != "" }

// parseSettings decodes and validates the settings of provisioners.<name>,
// reporting every problem with its key path.
func parseSettings(name string, in map[string]any) (*settings, error) {
	probs := provisioner.NewProblems(name)
	var raw rawSettings
	if !provisioner.DecodeSettings(in, &raw, probs) {
		return nil, probs.Err()
	}
	s := &settings{
		region:             strings.TrimSpace(raw.Region),
		endpoint:           raw.Endpoint,
		ami:                raw.AMI,
		instanceTypes:      raw.InstanceTypes,
		subnets:            raw.Subnets,
		securityGroups:     raw.SecurityGroups,
		keyName:            raw.KeyName,
		iamInstanceProfile: raw.IAMInstanceProfile,
		market:             raw.Market,
		extraTags:          raw.ExtraTags,
		bootstrapTimeout:   DefaultBootstrapTimeout,
		runnerArch:         raw.RunnerArch,
		runnerDir:          raw.RunnerDir,
		runnerUser:         DefaultRunnerUser,
		runnerPreinstalled: raw.RunnerPreinstalled,
		apiMaxAttempts:     raw.APIMaxAttempts,
	}

	if s.region == "" {
		probs.Add("region", "required (e.g. us-east-1)")
	}
	if s.endpoint != "" {
		if err := checkHTTPURL(s.endpoint); err != nil {
			probs.Add("endpoint", "%v", err)
		}
	}

	if raw.LaunchTemplate != nil {
		parseLaunchTemplate(name, raw.LaunchTemplate, s, probs)
	}
	switch {
	case raw.LaunchTemplate != nil && s.ami != "":
		probs.Add("ami", "set either launch_template or ami, not both")
	case raw.LaunchTemplate == nil && s.ami == "":
		probs.Add("ami", "required unless launch_template is set")
	case s.ami != "" && !strings.HasPrefix(s.ami, "ami-"):
		probs.Add("ami", "must be an AMI id (ami-...), got %q", s.ami)
	}
	if s.ami != "" && len(s.instanceTypes) == 0 {
		probs.Add("instance_types", "at least one instance type is required with ami")
	}
	checkList(probs, "instance_types", s.instanceTypes, "")
	checkList(probs, "subnets", s.subnets, "subnet-")
	checkList(probs, "security_groups", s.securityGroups, "sg-")

	switch s.market {
	case "":
		s.market = MarketOnDemand
	case MarketOnDemand, MarketSpot, MarketSpotWithFallback:
	default:
		probs.Add("market", "must be on-demand, spot or spot-with-fallback, got %q", s.market)
	}

	for k, v := range s.extraTags {
		key := "extra_tags." + k
		switch {
		case strings.TrimSpace(k) == "":
			probs.Add("extra_tags", "tag keys must not be empty")
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			probs.Add(key, "the aws: prefix is reserved by AWS")
		case strings.HasPrefix(k, "runnerscaler:") || k == "Name":
			probs.Add(key, "is set by runnerscaler and cannot be overridden")
		case len(k) > 128:
			probs.Add(key, "tag keys are at most 128 characters")
		case len(v) > 256:
			probs.Add(key, "tag values are at most 256 characters")
		}
	}

	if raw.BootstrapTimeout != "" {
		d, err := time.ParseDuration(raw.BootstrapTimeout)
		switch {
		case err != nil:
			probs.Add("bootstrap_timeout", "must be a duration like 10m, got %q", raw.BootstrapTimeout)
		case d <= 0 || d > maxBootstrapTimeout:
			probs.Add("bootstrap_timeout", "must be between 0 and %s, got %s", maxBootstrapTimeout, d)
		default:
			s.bootstrapTimeout = d
		}
	}

	if raw.RegistrationURL == "" {
		probs.Add("registration_url", "required: the daemon's public base URL that instances fetch their registration from (e.g. https://scaler.example.com:8443)")
	} else if err := checkHTTPURL(raw.RegistrationURL); err != nil {
		probs.Add("registration_url", "%v", err)
	} else {
		s.registrationURL = strings.TrimRight(raw.RegistrationURL, "/") + RegistrationPath
	}

	switch s.runnerArch {
	case "":
		s.runnerArch = DefaultRunnerArch
	case "x64", "arm64", "arm":
	default:
		probs.Add("runner_arch", "must be x64, arm64 or arm, got %q", s.runnerArch)
	}
	if s.runnerDir == "" {
		s.runnerDir = DefaultRunnerDir
	} else if !strings.HasPrefix(s.runnerDir, "/") {
		probs.Add("runner_dir", "must be an absolute path, got %q", s.runnerDir)
	}
	if raw.RunnerUser != nil {
		s.runnerUser = *raw.RunnerUser
		if s.runnerUser == "root" {
			probs.Add("runner_user", `the runner refuses to configure as root; use another user, or "" to run as the bootstrap user`)
		}
	}

	switch {
	case s.apiMaxAttempts == 0:
		s.apiMaxAttempts = DefaultAPIMaxAttempts
	case s.apiMaxAttempts < 1 || s.apiMaxAttempts > maxAPIMaxAttempts:
		probs.Add("api_max_attempts", "must be between 1 and %d, got %d", maxAPIMaxAttempts, s.apiMaxAttempts)
	}

	if err := probs.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// parseLaunchTemplate decodes the launch_template block, reporting problems
// under launch_template.<key>.
func parseLaunchTemplate(name string, in map[string]any, s *settings, probs *provisioner.Problems) {
	sub := provisioner.NewProblems(name)
	var lt rawLaunchTemplate
	if !provisioner.DecodeSettings(in, &lt, sub) {
		var se *provisioner.SettingsError
		if errors.As(sub.Err(), &se) {
			prefix := "provisioners." + name + ".settings"
			for _, p := range se.Problems {
				key := strings.TrimPrefix(strings.TrimPrefix(p.Path, prefix), ".")
				if key == "" {
					probs.Add("launch_template", "%s", p.Message)
				} else {
					probs.Add("launch_template."+key, "%s", p.Message)
				}
			}
		}
		return
	}
	switch {
	case lt.ID != "" && lt.Name != "":
		probs.Add("launch_template", "set either id or name, not both")
	case lt.ID == "" && lt.Name == "":
		probs.Add("launch_template", "id or name is required")
	case lt.ID != "" && !strings.HasPrefix(lt.ID, "lt-"):
		probs.Add("launch_template.id", "must be a launch template id (lt-...), got %q", lt.ID)
	}
	if v := lt.Version; v != "" && v != "$Latest" && v != "$Default" && strings.Trim(v, "0123456789") != "" {
		probs.Add("launch_template.version", `must be a version number, "$Latest" or "$Default", got %q`, v)
	}
	s.ltID, s.ltName, s.ltVersion = lt.ID, lt.Name, lt.Version
}

func checkList(probs *provisioner.Problems, key string, list []string, prefix string) {
	seen := map[string]bool{}
	for i, v := range list {
		k := fmt.Sprintf("%s[%d]", key, i)
		switch {
		case strings.TrimSpace(v) == "":
			probs.Add(k, "must not be empty")
		case prefix != "" && !strings.HasPrefix(v, prefix):
			probs.Add(k, "must start with %q, got %q", prefix, v)
		case seen[v]:
			probs.Add(k, "%q is listed twice", v)
		}
		seen[v] = true
	}
}

func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("must be a URL: %v", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an absolute http(s) URL, got %q", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("must not have a query or fragment, got %q", raw)
	}
	return nil
}
