package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// appYAML is a valid configuration using App authentication and a YAML
// webhook secret.
const appYAML = `
github:
  app: {id: 1, private_key_file: /yaml/app.pem}
webhook:
  secrets: [from-yaml]
` + validPools

func TestEnvOverrides(t *testing.T) {
	t.Parallel()
	environ := map[string]string{
		"SCALER_GITHUB_API_URL":              "https://ghe.example.com/api/v3",
		"SCALER_GITHUB_API_VERSION":          "2026-03-10",
		"SCALER_GITHUB_APP_ID":               "987",
		"SCALER_GITHUB_APP_PRIVATE_KEY_FILE": "/env/app.pem",
		"SCALER_GITHUB_APP_INSTALLATION_ID":  "654",
		"SCALER_WEBHOOK_LISTEN":              "127.0.0.1:9000",
		"SCALER_WEBHOOK_PATH":                "/gh",
		"SCALER_WEBHOOK_SECRET":              "from-env",
		"SCALER_METRICS_LISTEN":              "127.0.0.1:9001",
		"SCALER_STORE_PATH":                  "/tmp/state.db",
		"SCALER_LOG_LEVEL":                   "debug",
		"SCALER_LOG_FORMAT":                  "console",
		"UNRELATED":                          "ignored",
	}
	cfg, err := Parse([]byte(appYAML), environ)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"api_url (normalised)", cfg.GitHub.APIURL, "https://ghe.example.com/api/v3/"},
		{"api_version", cfg.GitHub.APIVersion, "2026-03-10"},
		{"app.id", cfg.GitHub.App.ID, int64(987)},
		{"app.private_key_file", cfg.GitHub.App.PrivateKeyFile, "/env/app.pem"},
		{"app.installation_id", cfg.GitHub.App.InstallationID, int64(654)},
		{"webhook.listen", cfg.Webhook.Listen, "127.0.0.1:9000"},
		{"webhook.path", cfg.Webhook.Path, "/gh"},
		{"webhook.secrets (appended)", cfg.Webhook.Secrets, []Secret{"from-yaml", "from-env"}},
		{"metrics.listen", cfg.Metrics.Listen, "127.0.0.1:9001"},
		{"store.path", cfg.Store.Path, "/tmp/state.db"},
		{"log.level", cfg.Log.Level, "debug"},
		{"log.format", cfg.Log.Format, "console"},
	}
	for _, tc := range checks {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
}

func TestEnvSecrets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		yaml    string
		environ map[string]string
		check   func(t *testing.T, c *Config)
		paths   []string
	}{
		{
			name:    "webhook secret appended to none",
			yaml:    "github: {token: t}\n" + validPools,
			environ: map[string]string{"SCALER_WEBHOOK_SECRET": "s1"},
			check: func(t *testing.T, c *Config) {
				if !slices.Equal(c.Webhook.Secrets, []Secret{"s1"}) {
					t.Errorf("secrets = %d entries", len(c.Webhook.Secrets))
				}
			},
		},
		{
			name:    "token from env",
			yaml:    validPools,
			environ: map[string]string{"SCALER_GITHUB_TOKEN": "ghp_env"},
			check: func(t *testing.T, c *Config) {
				if c.GitHub.Token.Reveal() != "ghp_env" || c.GitHub.UsesApp() {
					t.Error("token not taken from the environment")
				}
			},
		},
		{
			name:    "private key from env",
			yaml:    "github: {app: {id: 3}}\n" + validPools,
			environ: map[string]string{"SCALER_GITHUB_APP_PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----"},
			check: func(t *testing.T, c *Config) {
				if !strings.HasPrefix(c.GitHub.App.PrivateKey.Reveal(), "-----BEGIN") {
					t.Error("private key not taken from the environment")
				}
			},
		},
		{
			name:    "env token with YAML app is both",
			yaml:    appYAML,
			environ: map[string]string{"SCALER_GITHUB_TOKEN": "ghp_env"},
			paths:   []string{"github"},
		},
		{
			name:    "env key with YAML key file is both",
			yaml:    appYAML,
			environ: map[string]string{"SCALER_GITHUB_APP_PRIVATE_KEY": "pem"},
			paths:   []string{"github.app.private_key_file"},
		},
		{
			name:    "empty variables are unset",
			yaml:    appYAML,
			environ: map[string]string{"SCALER_GITHUB_TOKEN": "", "SCALER_LOG_LEVEL": "", "SCALER_WEBHOOK_SECRET": ""},
			check: func(t *testing.T, c *Config) {
				if c.GitHub.Token != "" || c.Log.Level != "info" || len(c.Webhook.Secrets) != 1 {
					t.Errorf("empty variables changed the config: %+v", c)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Parse([]byte(tc.yaml), tc.environ)
			if got := paths(problemsOf(t, err)); !slices.Equal(got, tc.paths) {
				t.Fatalf("problem paths = %q, want %q (%v)", got, tc.paths, err)
			}
			if tc.check != nil {
				tc.check(t, cfg)
			}
		})
	}
}

func TestEnvBadValues(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(appYAML), map[string]string{
		"SCALER_GITHUB_APP_ID":              "abc",
		"SCALER_GITHUB_APP_INSTALLATION_ID": "99999999999999999999",
		"SCALER_LOG_LEVEL":                  "loud",
	})
	want := []Problem{
		{"env SCALER_GITHUB_APP_ID", `must be an integer, got "abc"`},
		{"env SCALER_GITHUB_APP_INSTALLATION_ID", `must be an integer that fits in 64 bits, got "99999999999999999999"`},
		{"log.level", `must be one of "debug", "info", "warn" or "error", got "loud" (value from SCALER_LOG_LEVEL)`},
	}
	if got := problemsOf(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
	// A variable that did not parse leaves the YAML value alone.
	if cfg.GitHub.App.ID != 1 {
		t.Errorf("app.id = %d, want the YAML value 1", cfg.GitHub.App.ID)
	}
}

func TestNilEnvironIgnoresProcessEnvironment(t *testing.T) {
	t.Setenv("SCALER_LOG_LEVEL", "debug")
	t.Setenv("SCALER_GITHUB_TOKEN", "ghp_process")
	cfg, err := Parse([]byte(appYAML), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.Log.Level != "info" || cfg.GitHub.Token != "" {
		t.Error("Parse with a nil environ read the process environment")
	}
	cfg, err = Parse([]byte(appYAML), EnvironFromOS())
	if err == nil || cfg.Log.Level != "debug" {
		t.Errorf("Parse with EnvironFromOS: level %q, err %v; want debug and a both-credentials error", cfg.Log.Level, err)
	}
}

func TestEnvVars(t *testing.T) {
	t.Parallel()
	want := []string{
		"SCALER_GITHUB_API_URL", "SCALER_GITHUB_API_VERSION", "SCALER_GITHUB_APP_ID",
		"SCALER_GITHUB_APP_PRIVATE_KEY_FILE", "SCALER_GITHUB_APP_PRIVATE_KEY", "SCALER_GITHUB_APP_INSTALLATION_ID",
		"SCALER_GITHUB_TOKEN", "SCALER_WEBHOOK_LISTEN", "SCALER_WEBHOOK_PATH", "SCALER_WEBHOOK_SECRET",
		"SCALER_METRICS_LISTEN", "SCALER_STORE_PATH", "SCALER_LOG_LEVEL", "SCALER_LOG_FORMAT", "SCALER_ADMIN_TOKEN",
	}
	if got := EnvVars(); !slices.Equal(got, want) {
		t.Errorf("EnvVars() = %q, want %q", got, want)
	}
	// Every variable really is read: setting each to a distinctive value
	// changes the parsed configuration.
	base, _ := Parse([]byte(appYAML), map[string]string{})
	for _, name := range EnvVars() {
		value := "x"
		if strings.HasSuffix(name, "_ID") {
			value = "4242"
		}
		cfg, _ := Parse([]byte(appYAML), map[string]string{name: value})
		if reflect.DeepEqual(cfg, base) {
			t.Errorf("%s changes nothing", name)
		}
	}
}
