package config

import (
	"errors"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// problemsOf returns the problems in err, failing the test if err is not a
// *ValidationError.
func problemsOf(t *testing.T, err error) []Problem {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error is %T, want *ValidationError: %v", err, err)
	}
	return ve.Problems
}

func paths(ps []Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Path
	}
	return out
}

func TestDefault(t *testing.T) {
	t.Parallel()
	c := Default()
	checks := []struct {
		name      string
		got, want any
	}{
		{"github.api_url", c.GitHub.APIURL, "https://api.github.com/"},
		{"github.api_version", c.GitHub.APIVersion, "2022-11-28"},
		{"github.max_in_flight", c.GitHub.MaxInFlight, 10},
		{"github.max_attempts", c.GitHub.MaxAttempts, 4},
		{"github.request_timeout", c.GitHub.RequestTimeout.D(), 30 * time.Second},
		{"webhook.listen", c.Webhook.Listen, ":8080"},
		{"webhook.path", c.Webhook.Path, "/webhook"},
		{"webhook.max_body_bytes", c.Webhook.MaxBodyBytes, int64(26214400)},
		{"metrics.listen", c.Metrics.Listen, ":9102"},
		{"store.path", c.Store.Path, "/var/lib/runnerscaler/state.db"},
		{"store.sync", c.Store.Sync, "normal"},
		{"store.retention", c.Store.Retention.String(), "168h0m0s"},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "json"},
	}
	for _, tc := range checks {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
}

func TestPoolDefaultsFromYAML(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(`
github: {token: x}
runner_groups:
  - scope: {org: acme}
    name: g
pools:
  - name: p
    scope: {org: acme}
    labels: [l]
    max_runners: 1
    provisioner: local
provisioners:
  local: {type: local}
`), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	p := cfg.Pools[0]
	if p.RunnerGroup != "Default" || p.OS != "linux" || p.Arch != "x64" || p.MinIdle != 0 ||
		!p.IsEphemeral() || p.Registration != "jit" || p.IdleTimeout.D() != 10*time.Minute {
		t.Errorf("pool defaults not applied: %+v", p)
	}
	if got := cfg.RunnerGroups[0].Visibility; got != "all" {
		t.Errorf("runner group visibility = %q, want all", got)
	}
}

func TestExampleFileLoads(t *testing.T) {
	t.Parallel()
	cfg, err := Load("../../config.example.yaml", map[string]string{})
	if err != nil {
		t.Fatalf("Load(config.example.yaml): %v", err)
	}
	if cfg.GitHub.App.ID != 123456 || cfg.GitHub.App.PrivateKeyFile != "/etc/runnerscaler/app.pem" {
		t.Errorf("app = %+v", cfg.GitHub.App)
	}
	if len(cfg.Webhook.Secrets) != 0 || cfg.GitHub.Token != "" {
		t.Error("the example must not hold secrets")
	}
	if len(cfg.RunnerGroups) != 1 || cfg.RunnerGroups[0].Visibility != "selected" || len(cfg.RunnerGroups[0].Repositories) != 2 {
		t.Errorf("runner groups = %+v", cfg.RunnerGroups)
	}
	if len(cfg.Pools) != 2 {
		t.Fatalf("pools = %+v", cfg.Pools)
	}
	first := cfg.Pools[0]
	if first.Name != "linux-x64" || first.Scope.Kind() != ScopeOrg || !slices.Equal(first.Labels, []string{"linux-x64-4core"}) ||
		first.MinIdle != 1 || first.MaxRunners != 10 {
		t.Errorf("pools[0] = %+v", first)
	}
	if cfg.Pools[1].Scope.Kind() != ScopeRepo {
		t.Errorf("pools[1] scope = %v, want a repo", cfg.Pools[1].Scope)
	}
	types := map[string]bool{}
	for _, p := range cfg.Provisioners {
		types[p.Type] = true
		if len(p.Settings) == 0 {
			t.Errorf("provisioner %+v has no settings example", p)
		}
	}
	if !types["local"] || !types["fake"] || len(types) != 2 {
		t.Errorf("provisioner types = %v, want local and fake", types)
	}
	// The key file does not exist on a test machine, and no webhook secret
	// is set: run would refuse, validate does not.
	if err := cfg.CheckRuntime(); err == nil {
		t.Error("CheckRuntime passed without key file or webhook secret")
	}
}

// TestExampleDocumentsEveryOption keeps config.example.yaml honest: every
// YAML key of the schema and every environment variable appears in it.
func TestExampleDocumentsEveryOption(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	var keys []string
	var walk func(reflect.Type)
	walk = func(rt reflect.Type) {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice || rt.Kind() == reflect.Map {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct || rt == reflect.TypeOf(time.Time{}) {
			return
		}
		fs := yamlFields(rt)
		keys = append(keys, fs.names...)
		for _, name := range fs.names {
			walk(rt.Field(fs.index[name]).Type)
		}
	}
	walk(reflect.TypeOf(Config{}))
	for _, k := range keys {
		if !strings.Contains(text, k+":") {
			t.Errorf("config.example.yaml does not mention key %q", k)
		}
	}
	for _, v := range EnvVars() {
		if !strings.Contains(text, v) {
			t.Errorf("config.example.yaml does not mention %s", v)
		}
	}
}

func TestThreeErrors(t *testing.T) {
	t.Parallel()
	cfg, err := Load("testdata/three-errors.yaml", map[string]string{})
	if cfg == nil {
		t.Fatal("Load returned a nil *Config for a well-formed file")
	}
	want := []Problem{
		{Path: "pools[0].idle_timout", Message: `unknown key (did you mean "idle_timeout"?)`},
		{Path: "pools[1].max_runners", Message: "must be >= min_idle (3)"},
		{Path: "pools[2].provisioner", Message: `unknown provisioner "cloud" (defined: local)`},
	}
	got := problemsOf(t, err)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
	if _, ok := err.(*ValidationError); !ok {
		t.Errorf("Load returned %T, want the *ValidationError itself", err)
	}
	wantText := "pools[0].idle_timout: unknown key (did you mean \"idle_timeout\"?)\n" +
		"pools[1].max_runners: must be >= min_idle (3)\n" +
		"pools[2].provisioner: unknown provisioner \"cloud\" (defined: local)"
	if err.Error() != wantText {
		t.Errorf("error text = %q, want %q", err.Error(), wantText)
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	cfg, err := Load("testdata/does-not-exist.yaml", nil)
	if cfg != nil {
		t.Error("got a config for a missing file")
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not wrap fs.ErrNotExist", err)
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		t.Error("an unreadable file is not a validation error")
	}
}

func TestValidationErrorText(t *testing.T) {
	t.Parallel()
	e := &ValidationError{Problems: []Problem{
		{Path: "a.b", Message: "first"},
		{Path: "a.b", Message: "first"}, // kept: never deduplicated
		{Path: "", Message: "whole file"},
	}}
	if got, want := e.Error(), "a.b: first\na.b: first\nwhole file"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestScope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		scope        Scope
		kind, str    string
		name         string
		zero         bool
		equalToUpper bool
	}{
		{Scope{Org: "acme"}, "org", "org:acme", "acme", false, true},
		{Scope{Repo: "acme/web"}, "repo", "repo:acme/web", "acme/web", false, true},
		{Scope{Enterprise: "big"}, "enterprise", "enterprise:big", "big", false, true},
		{Scope{}, "", "", "", true, true},
		{Scope{Org: "a", Repo: "a/b"}, "", "org:a+repo:a/b", "", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.str, func(t *testing.T) {
			if got := tc.scope.Kind(); got != tc.kind {
				t.Errorf("Kind() = %q, want %q", got, tc.kind)
			}
			if got := tc.scope.String(); got != tc.str {
				t.Errorf("String() = %q, want %q", got, tc.str)
			}
			if got := tc.scope.Name(); got != tc.name {
				t.Errorf("Name() = %q, want %q", got, tc.name)
			}
			if got := tc.scope.IsZero(); got != tc.zero {
				t.Errorf("IsZero() = %v, want %v", got, tc.zero)
			}
			upper := Scope{Enterprise: strings.ToUpper(tc.scope.Enterprise), Org: strings.ToUpper(tc.scope.Org), Repo: strings.ToUpper(tc.scope.Repo)}
			if got := tc.scope.Equal(upper); got != tc.equalToUpper {
				t.Errorf("Equal(upper-cased) = %v", got)
			}
		})
	}
}

func TestPoolHelpers(t *testing.T) {
	t.Parallel()
	var p Pool
	if !p.IsEphemeral() {
		t.Error("a nil Ephemeral must mean the default, true")
	}
	f := false
	p.Ephemeral = &f
	if p.IsEphemeral() {
		t.Error("IsEphemeral ignores an explicit false")
	}
	p = Pool{OS: "linux", Arch: "arm64", Labels: []string{"Self-Hosted", "gpu", "LINUX"}}
	if got, want := p.EffectiveLabels(), []string{"self-hosted", "linux", "arm64", "gpu"}; !slices.Equal(got, want) {
		t.Errorf("EffectiveLabels() = %q, want %q", got, want)
	}
}

func TestEnvironFromOS(t *testing.T) {
	t.Setenv("SCALER_TEST_ENVIRON", "a=b")
	if got := EnvironFromOS()["SCALER_TEST_ENVIRON"]; got != "a=b" {
		t.Errorf("EnvironFromOS()[SCALER_TEST_ENVIRON] = %q, want %q", got, "a=b")
	}
}

func TestComparePaths(t *testing.T) {
	t.Parallel()
	in := []string{"pools[10].name", "github", "pools[2].name", "pools[2]", "env SCALER_X", "pools[2].labels[11]", "pools[2].labels[3]"}
	want := []string{"env SCALER_X", "github", "pools[2]", "pools[2].labels[3]", "pools[2].labels[11]", "pools[2].name", "pools[10].name"}
	slices.SortFunc(in, comparePaths)
	if !slices.Equal(in, want) {
		t.Errorf("sorted = %q, want %q", in, want)
	}
}

func TestParentPath(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"pools[1].max_runners":     "pools[1]",
		"pools[1]":                 "pools",
		"pools":                    "",
		`provisioners["a.b"].type`: `provisioners["a.b"]`,
		`provisioners["a.b"]`:      "provisioners",
	}
	for in, want := range tests {
		if got := parentPath(in); got != want {
			t.Errorf("parentPath(%q) = %q, want %q", in, got, want)
		}
	}
}
