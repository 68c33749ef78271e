package ec2

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
)

func validSettings() map[string]any {
	return map[string]any{
		"region":           "eu-west-1",
		"ami":              "ami-0abc",
		"instance_types":   []any{"c7g.large"},
		"registration_url": "https://scaler.example.com",
	}
}

func TestSettingsDefaults(t *testing.T) {
	s, err := parseSettings("aws", validSettings())
	if err != nil {
		t.Fatal(err)
	}
	if s.market != MarketOnDemand || s.bootstrapTimeout != 10*time.Minute || s.apiMaxAttempts != DefaultAPIMaxAttempts ||
		s.registrationURL != "https://scaler.example.com/instance/v1/registration" || s.runnerUser != "runner" ||
		s.runnerDir != "/opt/actions-runner" || s.runnerArch != "x64" {
		t.Errorf("defaults %+v", s)
	}
	in := validSettings()
	in["bootstrap_timeout"] = "90s"
	in["runner_user"] = ""
	in["market"] = "spot-with-fallback"
	s, err = parseSettings("aws", in)
	if err != nil || s.bootstrapTimeout != 90*time.Second || s.runnerUser != "" || s.market != MarketSpotWithFallback {
		t.Errorf("%+v %v", s, err)
	}
}

func TestSettingsValidation(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(map[string]any)
		paths []string // every problem, in any order
	}{
		{"missing region and registration url", func(m map[string]any) { delete(m, "region"); delete(m, "registration_url") },
			[]string{"region", "registration_url"}},
		{"neither ami nor launch template", func(m map[string]any) { delete(m, "ami") }, []string{"ami"}},
		{"both ami and launch template", func(m map[string]any) { m["launch_template"] = map[string]any{"id": "lt-1"} },
			[]string{"ami"}},
		{"ami without instance types", func(m map[string]any) { delete(m, "instance_types") }, []string{"instance_types"}},
		{"bad list entries", func(m map[string]any) {
			m["instance_types"] = []any{"c7g.large", ""}
			m["subnets"] = []any{"subnet-1", "vpc-2", "subnet-1"}
			m["security_groups"] = []any{"default"}
		}, []string{"instance_types[1]", "subnets[1]", "subnets[2]", "security_groups[0]"}},
		{"launch template problems", func(m map[string]any) {
			delete(m, "ami")
			m["launch_template"] = map[string]any{"id": "lt-1", "name": "x"}
		}, []string{"launch_template"}},
		{"launch template unknown key", func(m map[string]any) {
			delete(m, "ami")
			m["launch_template"] = map[string]any{"name": "x", "versoin": "1"}
		}, []string{"launch_template.versoin"}},
		{"launch template bad version", func(m map[string]any) {
			delete(m, "ami")
			m["launch_template"] = map[string]any{"name": "x", "version": "latest"}
		}, []string{"launch_template.version"}},
		{"launch template wrong type", func(m map[string]any) {
			delete(m, "ami")
			m["launch_template"] = map[string]any{"name": "x", "version": 3}
		}, []string{"launch_template.version"}},
		{"bad market, timeout, attempts", func(m map[string]any) {
			m["market"] = "reserved"
			m["bootstrap_timeout"] = "ten minutes"
			m["api_max_attempts"] = 100
		}, []string{"market", "bootstrap_timeout", "api_max_attempts"}},
		{"bad urls", func(m map[string]any) {
			m["registration_url"] = "scaler.example.com"
			m["endpoint"] = "ftp://x"
		}, []string{"registration_url", "endpoint"}},
		{"reserved tags", func(m map[string]any) {
			m["extra_tags"] = map[string]any{"runnerscaler:pool": "x", "aws:foo": "y", "Name": "z", "ok": "fine"}
		}, []string{"extra_tags.runnerscaler:pool", "extra_tags.aws:foo", "extra_tags.Name"}},
		{"runner options", func(m map[string]any) {
			m["runner_arch"] = "sparc"
			m["runner_dir"] = "relative"
			m["runner_user"] = "root"
		}, []string{"runner_arch", "runner_dir", "runner_user"}},
		{"unknown key", func(m map[string]any) { m["instance_type"] = "x" }, []string{"instance_type"}},
		{"wrong type", func(m map[string]any) { m["subnets"] = "subnet-1" }, []string{"subnets"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := validSettings()
			tc.edit(m)
			_, err := parseSettings("aws", m)
			var se *provisioner.SettingsError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want *SettingsError", err)
			}
			got := map[string]bool{}
			for _, p := range se.Problems {
				got[strings.TrimPrefix(p.Path, "provisioners.aws.settings.")] = true
				if !strings.HasPrefix(p.Path, "provisioners.aws.settings.") {
					t.Errorf("path %q lacks the key prefix", p.Path)
				}
			}
			for _, p := range tc.paths {
				if !got[p] {
					t.Errorf("no problem at %s; got:\n%v", p, err)
				}
			}
			if len(got) != len(tc.paths) {
				t.Errorf("problems:\n%v\nwant exactly %v", err, tc.paths)
			}
		})
	}
}
