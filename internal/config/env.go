package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/caarlos0/env/v11"
)

// envVars lists every environment variable the configuration reads. Fields
// are pointers so that "not set" differs from a zero value: only variables
// that are set (and non-empty, as the env library treats empty as unset)
// override the YAML.
//
// The yaml tag records the key path a variable overrides; it is not used for
// YAML decoding, only to tell the operator which setting a variable changed.
type envVars struct {
	APIURL         *string `env:"SCALER_GITHUB_API_URL" yaml:"github.api_url"`
	APIVersion     *string `env:"SCALER_GITHUB_API_VERSION" yaml:"github.api_version"`
	AppID          *int64  `env:"SCALER_GITHUB_APP_ID" yaml:"github.app.id"`
	PrivateKeyFile *string `env:"SCALER_GITHUB_APP_PRIVATE_KEY_FILE" yaml:"github.app.private_key_file"`
	PrivateKey     *string `env:"SCALER_GITHUB_APP_PRIVATE_KEY" yaml:"github.app.private_key"`
	InstallationID *int64  `env:"SCALER_GITHUB_APP_INSTALLATION_ID" yaml:"github.app.installation_id"`
	Token          *string `env:"SCALER_GITHUB_TOKEN" yaml:"github.token"`
	WebhookListen  *string `env:"SCALER_WEBHOOK_LISTEN" yaml:"webhook.listen"`
	WebhookPath    *string `env:"SCALER_WEBHOOK_PATH" yaml:"webhook.path"`
	WebhookSecret  *string `env:"SCALER_WEBHOOK_SECRET" yaml:"webhook.secrets"`
	MetricsListen  *string `env:"SCALER_METRICS_LISTEN" yaml:"metrics.listen"`
	StorePath      *string `env:"SCALER_STORE_PATH" yaml:"store.path"`
	LogLevel       *string `env:"SCALER_LOG_LEVEL" yaml:"log.level"`
	LogFormat      *string `env:"SCALER_LOG_FORMAT" yaml:"log.format"`
	AdminToken     *string `env:"SCALER_ADMIN_TOKEN" yaml:"admin.token"`
}

// EnvVars returns the name of every environment variable the configuration
// reads, in a fixed order, for documentation and tests.
func EnvVars() []string {
	t := reflect.TypeOf(envVars{})
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		names = append(names, t.Field(i).Tag.Get("env"))
	}
	return names
}

// applyEnv overrides cfg with the variables set in environ. Secrets are
// added; everything else replaces the YAML value. Unparseable variables are
// reported as problems (without their value when it may be secret) and left
// out. It returns, for each key path changed, the variable that changed it.
func applyEnv(cfg *Config, environ map[string]string, ps *problems) map[string]string {
	if environ == nil {
		// The env library falls back to the process environment when given
		// no map; a nil map here means "no variables", never "os.Environ".
		environ = map[string]string{}
	}
	var ev envVars
	failed := make(map[string]bool)
	if err := env.ParseWithOptions(&ev, env.Options{Environment: environ}); err != nil {
		for _, name := range reportEnvErrors(err, ps) {
			failed[name] = true
		}
	}

	overridden := make(map[string]string)
	t := reflect.TypeOf(ev)
	v := reflect.ValueOf(ev)
	for i := range t.NumField() {
		f := t.Field(i)
		if v.Field(i).IsNil() || failed[f.Name] {
			continue
		}
		overridden[f.Tag.Get("yaml")] = f.Tag.Get("env")
	}

	setString := func(dst *string, src *string, field string) {
		if src != nil && !failed[field] {
			*dst = *src
		}
	}
	setInt := func(dst *int64, src *int64, field string) {
		if src != nil && !failed[field] {
			*dst = *src
		}
	}
	setString(&cfg.GitHub.APIURL, ev.APIURL, "APIURL")
	setString(&cfg.GitHub.APIVersion, ev.APIVersion, "APIVersion")
	setInt(&cfg.GitHub.App.ID, ev.AppID, "AppID")
	setString(&cfg.GitHub.App.PrivateKeyFile, ev.PrivateKeyFile, "PrivateKeyFile")
	setInt(&cfg.GitHub.App.InstallationID, ev.InstallationID, "InstallationID")
	setString(&cfg.Webhook.Listen, ev.WebhookListen, "WebhookListen")
	setString(&cfg.Webhook.Path, ev.WebhookPath, "WebhookPath")
	setString(&cfg.Metrics.Listen, ev.MetricsListen, "MetricsListen")
	setString(&cfg.Store.Path, ev.StorePath, "StorePath")
	setString(&cfg.Log.Level, ev.LogLevel, "LogLevel")
	setString(&cfg.Log.Format, ev.LogFormat, "LogFormat")
	if ev.PrivateKey != nil {
		cfg.GitHub.App.PrivateKey = Secret(unescapePEM(*ev.PrivateKey))
	}
	if ev.Token != nil {
		cfg.GitHub.Token = Secret(*ev.Token)
	}
	if ev.AdminToken != nil {
		cfg.Admin.Token = Secret(*ev.AdminToken)
	}
	if ev.WebhookSecret != nil {
		// Appended, not replacing: during a rotation the file can hold the
		// old secret while the deployment injects the new one.
		cfg.Webhook.Secrets = append(cfg.Webhook.Secrets, Secret(*ev.WebhookSecret))
		overridden[fmt.Sprintf("webhook.secrets[%d]", len(cfg.Webhook.Secrets)-1)] = "SCALER_WEBHOOK_SECRET"
	}
	return overridden
}

// reportEnvErrors turns the env library's aggregate error into problems at
// "env NAME" and returns the Go field names that failed.
func reportEnvErrors(err error, ps *problems) []string {
	var agg env.AggregateError
	errs := []error{err}
	if errors.As(err, &agg) {
		errs = agg.Errors
	}
	t := reflect.TypeOf(envVars{})
	var failed []string
	for _, e := range errs {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			// Only a mistake in envVars' tags gets here; the env library's
			// other errors name fields and types, never values.
			ps.add("env", "internal error reading environment variables: "+e.Error())
			continue
		}
		failed = append(failed, pe.Name)
		name := pe.Name
		if f, ok := t.FieldByName(pe.Name); ok {
			name = f.Tag.Get("env")
		}
		ps.add("env "+name, envParseMessage(pe.Err))
	}
	return failed
}

// envParseMessage explains a parse failure. Only integer variables can fail
// to parse and none of them is secret, so quoting the value is safe.
func envParseMessage(err error) string {
	var num *strconv.NumError
	if errors.As(err, &num) {
		if errors.Is(num.Err, strconv.ErrRange) {
			return fmt.Sprintf("must be an integer that fits in 64 bits, got %q", num.Num)
		}
		return fmt.Sprintf("must be an integer, got %q", num.Num)
	}
	return "invalid value"
}

// unescapePEM restores line breaks written as the two characters `\n`: many
// deployment tools (env files, some secret stores) cannot hold a multi-line
// value. A PEM key never contains a backslash, so the repair cannot damage a
// real key, and doing it here means every reader of PrivateKey sees real PEM.
func unescapePEM(key string) string {
	if !strings.Contains(key, "\n") && strings.Contains(key, `\n`) {
		return strings.ReplaceAll(key, `\n`, "\n")
	}
	return key
}
