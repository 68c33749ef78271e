package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestSecretRendering(t *testing.T) {
	t.Parallel()
	s := Secret("hunter2")
	renderings := map[string]string{
		"%v":     fmt.Sprintf("%v", s),
		"%+v":    fmt.Sprintf("%+v", s),
		"%#v":    fmt.Sprintf("%#v", s),
		"%s":     fmt.Sprintf("%s", s),
		"%q":     fmt.Sprintf("%q", s),
		"%x":     fmt.Sprintf("%x", s),
		"%d":     fmt.Sprintf("%d", s),
		"Sprint": fmt.Sprint(s),
	}
	for verb, out := range renderings {
		if strings.Contains(out, "hunter2") || !strings.Contains(out, "[redacted]") {
			t.Errorf("%s rendered %q", verb, out)
		}
	}
	if j, _ := json.Marshal(s); string(j) != `"[redacted]"` {
		t.Errorf("JSON = %s", j)
	}
	if txt, _ := s.MarshalText(); string(txt) != "[redacted]" {
		t.Errorf("text = %s", txt)
	}
	if s.Reveal() != "hunter2" {
		t.Error("Reveal lost the value")
	}
	var empty Secret
	if fmt.Sprint(empty) != "" || empty.String() != "" {
		t.Error("an empty secret must render empty")
	}
	if j, _ := json.Marshal(empty); string(j) != `""` {
		t.Errorf("empty JSON = %s", j)
	}
}

func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	const (
		token   = "ghp_TOKENVALUE1234"
		key     = "KEYMATERIALxyz"
		webhook = "WEBHOOKSECRET987"
	)
	// Credentials from every source, plus problems next to them.
	cfg, err := Parse([]byte(`
github:
  token: `+token+`
  app: {id: 1}
webhook:
  secrets: [`+webhook+`, ""]
`+validPools), map[string]string{
		"SCALER_GITHUB_APP_PRIVATE_KEY": key,
		"SCALER_WEBHOOK_SECRET":         webhook + "-2",
	})
	if err == nil {
		t.Fatal("want problems (both credentials, empty secret)")
	}
	runtimeErr := cfg.CheckRuntime()
	yamlDump, _ := yaml.Marshal(cfg)
	jsonDump, _ := json.Marshal(cfg)
	outputs := map[string]string{
		"error":        err.Error(),
		"CheckRuntime": fmt.Sprint(runtimeErr),
		"%v":           fmt.Sprintf("%v", cfg),
		"%+v":          fmt.Sprintf("%+v", cfg),
		"%#v":          fmt.Sprintf("%#v", cfg),
		"%+v value":    fmt.Sprintf("%+v", *cfg),
		"yaml":         string(yamlDump),
		"json":         string(jsonDump),
	}
	for name, out := range outputs {
		for _, secret := range []string{token, key, webhook} {
			if strings.Contains(out, secret) {
				t.Errorf("%s shows a secret:\n%s", name, out)
			}
		}
	}
	if !strings.Contains(outputs["%+v"], "[redacted]") {
		t.Errorf("%%+v does not show that secrets are set: %s", outputs["%+v"])
	}
}

func TestSecretTypeErrorsDoNotQuote(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte("github: {token: {x: 1}}\nwebhook: {secrets: plainSECRETvalue}\n"+validPools), nil)
	got := problemsOf(t, err)
	want := []Problem{
		{"github", "no GitHub credentials: set github.app.id and github.app.private_key_file (or SCALER_GITHUB_APP_PRIVATE_KEY) " +
			"to act as a GitHub App, or set SCALER_GITHUB_TOKEN to use a personal access token"},
		{"github.token", "must be a string, got a mapping"},
		{"webhook.secrets", "must be a list, got a scalar value"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
	if strings.Contains(err.Error(), "plainSECRETvalue") {
		t.Error("a secret was quoted in an error")
	}
}

func TestDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90s", 90 * time.Second, true},
		{"10m", 10 * time.Minute, true},
		{"1h30m", 90 * time.Minute, true},
		{"0s", 0, true},
		{"0", 0, true}, // Go accepts a bare zero; it is unambiguous
		{"600", 0, false},
		{"1.5", 0, false},
		{"ten minutes", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			var d Duration
			err := d.UnmarshalText([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("UnmarshalText(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if tc.ok && d.D() != tc.want {
				t.Errorf("D() = %v, want %v", d.D(), tc.want)
			}
			if !tc.ok && !strings.Contains(err.Error(), `like "90s", "10m" or "1h30m"`) {
				t.Errorf("error %q does not show the expected form", err)
			}
		})
	}
	var d Duration
	if err := yaml.Unmarshal([]byte("[1, 2]"), &d); err == nil {
		t.Error("a list decoded as a duration")
	}
	out, _ := yaml.Marshal(map[string]Duration{"t": Duration(90 * time.Second)})
	if strings.TrimSpace(string(out)) != "t: 1m30s" {
		t.Errorf("YAML = %q", out)
	}
}
