package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// testPool returns a valid pool with the YAML defaults applied.
func testPool(name string, scope Scope, labels ...string) Pool {
	var p Pool
	p.setDefaults()
	p.Name = name
	p.Scope = scope
	p.Labels = labels
	p.MaxRunners = 5
	p.Provisioner = "local"
	return p
}

// validConfig returns a configuration that passes Validate; each case below
// breaks (or stretches) one thing.
func validConfig() *Config {
	c := Default()
	c.GitHub.App = GitHubApp{ID: 1, PrivateKeyFile: "/etc/runnerscaler/app.pem"}
	c.Provisioners = map[string]Provisioner{"local": {Type: "local"}}
	c.Pools = []Pool{testPool("linux", Scope{Org: "acme"}, "linux-4core")}
	return c
}

func orgGroup(name string) RunnerGroup {
	return RunnerGroup{Scope: Scope{Org: "acme"}, Name: name, Visibility: "all"}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	type want struct{ path, msg string } // msg: a substring of the message
	no := []want(nil)
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []want
	}{
		{"valid base", func(c *Config) {}, no},

		// github.api_url
		{"api_url GHES", func(c *Config) { c.GitHub.APIURL = "https://ghe.example.com/api/v3/" }, no},
		{"api_url http", func(c *Config) { c.GitHub.APIURL = "http://127.0.0.1:8081/" }, no},
		{"api_url no scheme", func(c *Config) { c.GitHub.APIURL = "api.github.com" }, []want{{"github.api_url", "absolute http(s) URL"}}},
		{"api_url ftp", func(c *Config) { c.GitHub.APIURL = "ftp://example.com/" }, []want{{"github.api_url", "absolute http(s) URL"}}},
		{"api_url no host", func(c *Config) { c.GitHub.APIURL = "https:///api/v3/" }, []want{{"github.api_url", "no host"}}},
		{"api_url credentials", func(c *Config) { c.GitHub.APIURL = "https://user:hunter2@ghe.example.com/" }, []want{{"github.api_url", "credentials"}}},
		{"api_url query", func(c *Config) { c.GitHub.APIURL = "https://ghe.example.com/?x=1" }, []want{{"github.api_url", "query"}}},
		{"api_url empty", func(c *Config) { c.GitHub.APIURL = "" }, []want{{"github.api_url", "absolute"}}},

		// github.api_version
		{"api_version other date", func(c *Config) { c.GitHub.APIVersion = "2026-03-10" }, no},
		{"api_version word", func(c *Config) { c.GitHub.APIVersion = "latest" }, []want{{"github.api_version", `got "latest"`}}},
		{"api_version impossible date", func(c *Config) { c.GitHub.APIVersion = "2022-13-01" }, []want{{"github.api_version", "version date"}}},

		// limits
		{"max_in_flight 100", func(c *Config) { c.GitHub.MaxInFlight = 100 }, no},
		{"max_in_flight 0", func(c *Config) { c.GitHub.MaxInFlight = 0 }, []want{{"github.max_in_flight", "between 1 and 100"}}},
		{"max_in_flight 101", func(c *Config) { c.GitHub.MaxInFlight = 101 }, []want{{"github.max_in_flight", "got 101"}}},
		{"max_attempts 10", func(c *Config) { c.GitHub.MaxAttempts = 10 }, no},
		{"max_attempts 0", func(c *Config) { c.GitHub.MaxAttempts = 0 }, []want{{"github.max_attempts", "between 1 and 10"}}},
		{"max_attempts 11", func(c *Config) { c.GitHub.MaxAttempts = 11 }, []want{{"github.max_attempts", "got 11"}}},
		{"request_timeout 0", func(c *Config) { c.GitHub.RequestTimeout = 0 }, []want{{"github.request_timeout", "more than 0s"}}},

		// authentication
		{"token only", func(c *Config) { c.GitHub.App = GitHubApp{}; c.GitHub.Token = "ghp_x" }, no},
		{"app with env key", func(c *Config) { c.GitHub.App = GitHubApp{ID: 7, PrivateKey: "pem"} }, no},
		{"app with installation", func(c *Config) { c.GitHub.App.InstallationID = 42 }, no},
		{"app and token", func(c *Config) { c.GitHub.Token = "ghp_x" }, []want{{"github", "keep exactly one"}}},
		{"no credentials", func(c *Config) { c.GitHub.App = GitHubApp{} }, []want{{"github", "SCALER_GITHUB_TOKEN"}}},
		{"app id without key", func(c *Config) { c.GitHub.App = GitHubApp{ID: 7} }, []want{{"github.app.private_key_file", "SCALER_GITHUB_APP_PRIVATE_KEY"}}},
		{"key without app id", func(c *Config) { c.GitHub.App = GitHubApp{PrivateKeyFile: "/k.pem"} }, []want{{"github.app.id", "App ID"}}},
		{"negative app id", func(c *Config) { c.GitHub.App.ID = -1 }, []want{{"github.app.id", "positive"}}},
		{"key file and env key", func(c *Config) { c.GitHub.App.PrivateKey = "pem" }, []want{{"github.app.private_key_file", "not both"}}},
		{"installation only", func(c *Config) { c.GitHub.App = GitHubApp{InstallationID: 3} }, []want{
			{"github.app.id", "App ID"}, {"github.app.private_key_file", "required"},
		}},
		{"negative installation", func(c *Config) { c.GitHub.App.InstallationID = -3 }, []want{{"github.app.installation_id", "positive"}}},

		// webhook
		{"webhook listen port 0", func(c *Config) { c.Webhook.Listen = "127.0.0.1:0" }, no},
		{"webhook listen no port", func(c *Config) { c.Webhook.Listen = "8080" }, []want{{"webhook.listen", "host:port"}}},
		{"webhook listen big port", func(c *Config) { c.Webhook.Listen = ":99999" }, []want{{"webhook.listen", "0 to 65535"}}},
		{"webhook listen named port", func(c *Config) { c.Webhook.Listen = ":http" }, []want{{"webhook.listen", "0 to 65535"}}},
		{"webhook path relative", func(c *Config) { c.Webhook.Path = "webhook" }, []want{{"webhook.path", `start with "/"`}}},
		{"webhook path query", func(c *Config) { c.Webhook.Path = "/hook?x=1" }, []want{{"webhook.path", "plain URL path"}}},
		{"webhook secrets", func(c *Config) { c.Webhook.Secrets = []Secret{"a", "b"} }, no},
		{"webhook empty secret", func(c *Config) { c.Webhook.Secrets = []Secret{"a", ""} }, []want{{"webhook.secrets[1]", "must not be empty"}}},
		{"max_body_bytes 1", func(c *Config) { c.Webhook.MaxBodyBytes = 1 }, no},
		{"max_body_bytes 0", func(c *Config) { c.Webhook.MaxBodyBytes = 0 }, []want{{"webhook.max_body_bytes", "between 1 and 26214400"}}},
		{"max_body_bytes over 25MiB", func(c *Config) { c.Webhook.MaxBodyBytes = 26214401 }, []want{{"webhook.max_body_bytes", "25 MB"}}},

		// metrics
		{"metrics same as webhook", func(c *Config) { c.Metrics.Listen = ":8080" }, []want{{"metrics.listen", `must differ from webhook.listen (":8080")`}}},
		{"metrics same port, wildcard", func(c *Config) { c.Metrics.Listen = "127.0.0.1:8080" }, []want{{"metrics.listen", "must differ"}}},
		{"metrics same port, other host", func(c *Config) { c.Webhook.Listen = "127.0.0.1:8080"; c.Metrics.Listen = "127.0.0.2:8080" }, no},
		{"both on port 0", func(c *Config) { c.Webhook.Listen = "127.0.0.1:0"; c.Metrics.Listen = "127.0.0.1:0" }, no},
		{"metrics listen bad", func(c *Config) { c.Metrics.Listen = "localhost" }, []want{{"metrics.listen", "host:port"}}},

		// store, log
		{"store path empty", func(c *Config) { c.Store.Path = "" }, []want{{"store.path", "must not be empty"}}},
		{"store sync unknown", func(c *Config) { c.Store.Sync = "paranoid" }, []want{{"store.sync", "must be normal or full"}}},
		{"store sync full", func(c *Config) { c.Store.Sync = "full" }, nil},
		{"store retention too short", func(c *Config) { c.Store.Retention = Duration(time.Minute) }, []want{{"store.retention", "at least 1h"}}},
		{"log debug console", func(c *Config) { c.Log = Log{Level: "debug", Format: "console"} }, no},
		{"log level", func(c *Config) { c.Log.Level = "verbose" }, []want{{"log.level", `got "verbose"`}}},
		{"log format", func(c *Config) { c.Log.Format = "text" }, []want{{"log.format", `must be one of "json" or "console", got "text"`}}},

		// runner groups
		{"org group selected", func(c *Config) {
			g := orgGroup("ci")
			g.Visibility, g.Repositories = "selected", []string{"acme/web", "api"}
			c.RunnerGroups = []RunnerGroup{g}
		}, no},
		{"org group private", func(c *Config) { g := orgGroup("ci"); g.Visibility = "private"; c.RunnerGroups = []RunnerGroup{g} }, no},
		{"enterprise group selected", func(c *Config) {
			c.RunnerGroups = []RunnerGroup{{Scope: Scope{Enterprise: "big"}, Name: "ci", Visibility: "selected", Organizations: []string{"acme", "acme-labs"}}}
		}, no},
		{"group at repo scope", func(c *Config) {
			g := orgGroup("ci")
			g.Scope = Scope{Repo: "acme/web"}
			c.RunnerGroups = []RunnerGroup{g}
		}, []want{
			{"runner_groups[0].scope", "repositories have no runner groups"},
		}},
		{"group without scope", func(c *Config) { g := orgGroup("ci"); g.Scope = Scope{}; c.RunnerGroups = []RunnerGroup{g} }, []want{
			{"runner_groups[0].scope", "set exactly one of enterprise, org or repo"},
		}},
		{"group without name", func(c *Config) { c.RunnerGroups = []RunnerGroup{orgGroup("")} }, []want{{"runner_groups[0].name", "required"}}},
		{"group named default", func(c *Config) { c.RunnerGroups = []RunnerGroup{orgGroup("default")} }, []want{{"runner_groups[0].name", "built-in"}}},
		{"group names clash ignoring case", func(c *Config) { c.RunnerGroups = []RunnerGroup{orgGroup("CI"), orgGroup("ci")} }, []want{
			{"runner_groups[1].name", "duplicates runner_groups[0]"},
		}},
		{"same group name in two orgs", func(c *Config) {
			other := orgGroup("ci")
			other.Scope = Scope{Org: "other"}
			c.RunnerGroups = []RunnerGroup{orgGroup("ci"), other}
		}, no},
		{"enterprise group private", func(c *Config) {
			c.RunnerGroups = []RunnerGroup{{Scope: Scope{Enterprise: "big"}, Name: "ci", Visibility: "private"}}
		}, []want{{"runner_groups[0].visibility", "only for org groups"}}},
		{"visibility public", func(c *Config) { g := orgGroup("ci"); g.Visibility = "public"; c.RunnerGroups = []RunnerGroup{g} }, []want{
			{"runner_groups[0].visibility", `got "public"`},
		}},
		{"repositories without selected", func(c *Config) {
			g := orgGroup("ci")
			g.Repositories = []string{"web"}
			c.RunnerGroups = []RunnerGroup{g}
		}, []want{
			{"runner_groups[0].repositories", "only used with visibility: selected"},
		}},
		{"repositories on enterprise group", func(c *Config) {
			c.RunnerGroups = []RunnerGroup{{Scope: Scope{Enterprise: "big"}, Name: "ci", Visibility: "selected", Organizations: []string{"acme"}, Repositories: []string{"acme/web"}}}
		}, []want{{"runner_groups[0].repositories", "only org groups"}}},
		{"selected without repositories", func(c *Config) { g := orgGroup("ci"); g.Visibility = "selected"; c.RunnerGroups = []RunnerGroup{g} }, []want{
			{"runner_groups[0].repositories", "at least one repository"},
		}},
		{"repository of another org", func(c *Config) {
			g := orgGroup("ci")
			g.Visibility, g.Repositories = "selected", []string{"other/web"}
			c.RunnerGroups = []RunnerGroup{g}
		}, []want{{"runner_groups[0].repositories[0]", `belongs to "other"`}}},
		{"repository malformed", func(c *Config) {
			g := orgGroup("ci")
			g.Visibility, g.Repositories = "selected", []string{"acme/web/x", "bad name"}
			c.RunnerGroups = []RunnerGroup{g}
		}, []want{{"runner_groups[0].repositories[0]", "owner/name"}, {"runner_groups[0].repositories[1]", "repository name"}}},
		{"repository listed twice", func(c *Config) {
			g := orgGroup("ci")
			g.Visibility, g.Repositories = "selected", []string{"ACME/Web", "web"}
			c.RunnerGroups = []RunnerGroup{g}
		}, []want{{"runner_groups[0].repositories[1]", "duplicates repositories[0]"}}},
		{"organizations on org group", func(c *Config) {
			g := orgGroup("ci")
			g.Visibility, g.Repositories, g.Organizations = "selected", []string{"web"}, []string{"acme"}
			c.RunnerGroups = []RunnerGroup{g}
		}, []want{{"runner_groups[0].organizations", "only enterprise groups"}}},
		{"organizations without selected", func(c *Config) {
			c.RunnerGroups = []RunnerGroup{{Scope: Scope{Enterprise: "big"}, Name: "ci", Visibility: "all", Organizations: []string{"acme"}}}
		}, []want{{"runner_groups[0].organizations", "only used with visibility: selected"}}},
		{"enterprise selected without organizations", func(c *Config) {
			c.RunnerGroups = []RunnerGroup{{Scope: Scope{Enterprise: "big"}, Name: "ci", Visibility: "selected"}}
		}, []want{{"runner_groups[0].organizations", "at least one organization"}}},
		{"organization malformed and repeated", func(c *Config) {
			c.RunnerGroups = []RunnerGroup{{Scope: Scope{Enterprise: "big"}, Name: "ci", Visibility: "selected", Organizations: []string{"acme", "-bad", "ACME"}}}
		}, []want{{"runner_groups[0].organizations[1]", "GitHub login"}, {"runner_groups[0].organizations[2]", "duplicates organizations[0]"}}},
		{"restricted to workflows", func(c *Config) {
			g := orgGroup("ci")
			g.RestrictedToWorkflows, g.SelectedWorkflows = true, []string{"acme/web/.github/workflows/ci.yml@refs/heads/main"}
			c.RunnerGroups = []RunnerGroup{g}
		}, no},
		{"workflows without restriction", func(c *Config) {
			g := orgGroup("ci")
			g.SelectedWorkflows = []string{"acme/web/.github/workflows/ci.yml@main"}
			c.RunnerGroups = []RunnerGroup{g}
		}, []want{{"runner_groups[0].selected_workflows", "only used with restricted_to_workflows: true"}}},
		{"restriction without workflows", func(c *Config) {
			g := orgGroup("ci")
			g.RestrictedToWorkflows = true
			c.RunnerGroups = []RunnerGroup{g}
		}, []want{{"runner_groups[0].selected_workflows", "at least one workflow"}}},
		{"workflow malformed", func(c *Config) {
			g := orgGroup("ci")
			g.RestrictedToWorkflows, g.SelectedWorkflows = true, []string{"ci.yml"}
			c.RunnerGroups = []RunnerGroup{g}
		}, []want{{"runner_groups[0].selected_workflows[0]", "owner/repo/.github/workflows/FILE@REF"}}},
		{"public repositories allowed", func(c *Config) {
			g := orgGroup("ci")
			g.AllowsPublicRepositories = true
			c.RunnerGroups = []RunnerGroup{g}
		}, no},

		// pools: names
		{"no pools", func(c *Config) { c.Pools = nil }, []want{{"pools", "at least one pool"}}},
		{"pool without name", func(c *Config) { c.Pools[0].Name = "" }, []want{{"pools[0].name", "required"}}},
		{"pool name uppercase", func(c *Config) { c.Pools[0].Name = "Linux" }, []want{{"pools[0].name", "lowercase"}}},
		{"pool name underscore", func(c *Config) { c.Pools[0].Name = "linux_x64" }, []want{{"pools[0].name", "lowercase"}}},
		{"pool name leading hyphen", func(c *Config) { c.Pools[0].Name = "-linux" }, []want{{"pools[0].name", "lowercase"}}},
		{"pool name 39 characters", func(c *Config) { c.Pools[0].Name = strings.Repeat("a", 39) }, no},
		{"pool name 40 characters", func(c *Config) { c.Pools[0].Name = strings.Repeat("a", 40) }, []want{{"pools[0].name", "1 to 39"}}},
		{"pool names clash", func(c *Config) { c.Pools = append(c.Pools, testPool("linux", Scope{Org: "acme"}, "other")) }, []want{
			{"pools[1].name", "duplicates pools[0].name"},
		}},

		// pools: scope
		{"pool without scope", func(c *Config) { c.Pools[0].Scope = Scope{} }, []want{{"pools[0].scope", "required"}}},
		{"pool with two scopes", func(c *Config) { c.Pools[0].Scope = Scope{Org: "acme", Repo: "acme/web"} }, []want{{"pools[0].scope", "not several"}}},
		{"pool repo scope", func(c *Config) { c.Pools[0].Scope = Scope{Repo: "acme/web.site_2"} }, no},
		{"pool enterprise scope", func(c *Config) { c.Pools[0].Scope = Scope{Enterprise: "big-corp"} }, no},
		{"repo without owner", func(c *Config) { c.Pools[0].Scope = Scope{Repo: "web"} }, []want{{"pools[0].scope.repo", "owner/name"}}},
		{"repo with extra slash", func(c *Config) { c.Pools[0].Scope = Scope{Repo: "acme/web/x"} }, []want{{"pools[0].scope.repo", "owner/name"}}},
		{"repo with empty name", func(c *Config) { c.Pools[0].Scope = Scope{Repo: "acme/"} }, []want{{"pools[0].scope.repo", "owner/name"}}},
		{"repo named dot-dot", func(c *Config) { c.Pools[0].Scope = Scope{Repo: "acme/.."} }, []want{{"pools[0].scope.repo", "owner/name"}}},
		{"org with space", func(c *Config) { c.Pools[0].Scope = Scope{Org: "ac me"} }, []want{{"pools[0].scope.org", "GitHub login"}}},
		{"org too long", func(c *Config) { c.Pools[0].Scope = Scope{Org: strings.Repeat("a", 40)} }, []want{{"pools[0].scope.org", "at most 39"}}},
		{"enterprise with underscore", func(c *Config) { c.Pools[0].Scope = Scope{Enterprise: "big_corp"} }, []want{{"pools[0].scope.enterprise", "slug"}}},

		// pools: runner group
		{"repo pool in Default group", func(c *Config) {
			c.Pools[0].Scope = Scope{Repo: "acme/web"}
			c.Pools[0].RunnerGroup = "default"
		}, no},
		{"repo pool in another group", func(c *Config) {
			c.Pools[0].Scope = Scope{Repo: "acme/web"}
			c.Pools[0].RunnerGroup = "ci"
		}, []want{{"pools[0].runner_group", "repository runners cannot be put in a runner group"}}},
		{"undeclared group", func(c *Config) { c.Pools[0].RunnerGroup = "made-on-github" }, no},
		{"declared group, same org", func(c *Config) {
			c.RunnerGroups = []RunnerGroup{orgGroup("CI")}
			c.Pools[0].RunnerGroup = "ci"
		}, no},
		{"declared group of another org", func(c *Config) {
			g := orgGroup("ci")
			g.Scope = Scope{Org: "other"}
			c.RunnerGroups = []RunnerGroup{g}
			c.Pools[0].RunnerGroup = "ci"
		}, []want{{"pools[0].runner_group", `runner group "ci" is declared in runner_groups for org:other, but this pool is at org:acme`}}},
		{"declared org group for an enterprise pool", func(c *Config) {
			c.RunnerGroups = []RunnerGroup{orgGroup("ci")}
			c.Pools[0].Scope = Scope{Enterprise: "big"}
			c.Pools[0].RunnerGroup = "ci"
		}, []want{{"pools[0].runner_group", "declared in runner_groups for org:acme"}}},
		{"declared enterprise group for an org pool", func(c *Config) {
			c.RunnerGroups = []RunnerGroup{{Scope: Scope{Enterprise: "big"}, Name: "ci", Visibility: "all"}}
			c.Pools[0].RunnerGroup = "ci"
		}, []want{{"pools[0].runner_group", "declared in runner_groups for enterprise:big"}}},
		{"declared enterprise group for an enterprise pool", func(c *Config) {
			c.RunnerGroups = []RunnerGroup{{Scope: Scope{Enterprise: "big"}, Name: "ci", Visibility: "all"}}
			c.Pools[0].Scope = Scope{Enterprise: "BIG"}
			c.Pools[0].RunnerGroup = "ci"
		}, no},
		{"empty group", func(c *Config) { c.Pools[0].RunnerGroup = "" }, []want{{"pools[0].runner_group", "omit it"}}},

		// pools: labels
		{"no labels", func(c *Config) { c.Pools[0].Labels = nil }, []want{{"pools[0].labels", "at least one label"}}},
		{"empty label", func(c *Config) { c.Pools[0].Labels = []string{"a", " "} }, []want{{"pools[0].labels[1]", "must not be empty"}}},
		{"label with comma", func(c *Config) { c.Pools[0].Labels = []string{"a,b"} }, []want{{"pools[0].labels[0]", "comma"}}},
		{"label with spaces around", func(c *Config) { c.Pools[0].Labels = []string{" a"} }, []want{{"pools[0].labels[0]", "spaces"}}},
		{"label of 256 characters", func(c *Config) { c.Pools[0].Labels = []string{strings.Repeat("x", 256)} }, no},
		{"label of 257 characters", func(c *Config) { c.Pools[0].Labels = []string{strings.Repeat("x", 257)} }, []want{{"pools[0].labels[0]", "at most 256"}}},
		{"labels repeated ignoring case", func(c *Config) { c.Pools[0].Labels = []string{"GPU", "big", "gpu"} }, []want{{"pools[0].labels[2]", "duplicates labels[0]"}}},
		{"default label listed again", func(c *Config) { c.Pools[0].Labels = []string{"self-hosted", "Linux", "gpu"} }, no},
		{"97 labels plus 3 defaults", func(c *Config) { c.Pools[0].Labels = numbered(97) }, no},
		{"98 labels plus 3 defaults", func(c *Config) { c.Pools[0].Labels = numbered(98) }, []want{{"pools[0].labels", "101 labels"}}},

		// pools: machine, sizes, lifecycle
		{"windows arm64", func(c *Config) { c.Pools[0].OS, c.Pools[0].Arch = "windows", "arm64" }, no},
		{"macos arm", func(c *Config) { c.Pools[0].OS, c.Pools[0].Arch = "macos", "arm" }, no},
		{"bad os", func(c *Config) { c.Pools[0].OS = "freebsd" }, []want{{"pools[0].os", `got "freebsd"`}}},
		{"bad arch", func(c *Config) { c.Pools[0].Arch = "386" }, []want{{"pools[0].arch", `got "386"`}}},
		{"min_idle equals max", func(c *Config) { c.Pools[0].MinIdle = 5 }, no},
		{"negative min_idle", func(c *Config) { c.Pools[0].MinIdle = -1 }, []want{{"pools[0].min_idle", "must be >= 0"}}},
		{"max_runners missing", func(c *Config) { c.Pools[0].MaxRunners = 0 }, []want{{"pools[0].max_runners", "must be >= 1"}}},
		{"max_runners below min_idle", func(c *Config) { c.Pools[0].MinIdle, c.Pools[0].MaxRunners = 3, 2 }, []want{{"pools[0].max_runners", "must be >= min_idle (3)"}}},
		{"persistent token runners", func(c *Config) {
			f := false
			c.Pools[0].Ephemeral, c.Pools[0].Registration = &f, RegistrationToken
		}, no},
		{"ephemeral token runners", func(c *Config) { c.Pools[0].Registration = RegistrationToken }, no},
		{"persistent jit runners", func(c *Config) { f := false; c.Pools[0].Ephemeral = &f }, []want{{"pools[0].ephemeral", "use registration: token for persistent runners"}}},
		{"bad registration", func(c *Config) { c.Pools[0].Registration = "pat" }, []want{{"pools[0].registration", `must be one of "jit" or "token", got "pat"`}}},
		{"idle_timeout zero", func(c *Config) { c.Pools[0].IdleTimeout = 0 }, no},
		{"idle_timeout negative", func(c *Config) { c.Pools[0].IdleTimeout = Duration(-time.Second) }, []want{{"pools[0].idle_timeout", "must be >= 0s"}}},

		// pools: provisioner
		{"no provisioner", func(c *Config) { c.Pools[0].Provisioner = "" }, []want{{"pools[0].provisioner", "required"}}},
		{"unknown provisioner", func(c *Config) { c.Pools[0].Provisioner = "cloud" }, []want{{"pools[0].provisioner", `unknown provisioner "cloud" (defined: local)`}}},
		{"no provisioners at all", func(c *Config) { c.Provisioners = nil }, []want{{"pools[0].provisioner", "no provisioners are defined"}}},

		// pools: duplicates
		{"same labels, other order and case", func(c *Config) {
			c.Pools[0].Labels = []string{"gpu", "big"}
			c.Pools = append(c.Pools, testPool("other", Scope{Org: "ACME"}, "BIG", "GPU"))
		}, []want{{"pools[1]", "duplicates pools[0]"}}},
		{"same labels, other os", func(c *Config) {
			p := testPool("win", Scope{Org: "acme"}, "linux-4core")
			p.OS = "windows"
			c.Pools = append(c.Pools, p)
		}, no},
		{"same labels, other group", func(c *Config) {
			p := testPool("other", Scope{Org: "acme"}, "linux-4core")
			p.RunnerGroup = "ci"
			c.Pools = append(c.Pools, p)
		}, no},
		{"same labels, other scope", func(c *Config) { c.Pools = append(c.Pools, testPool("other", Scope{Org: "beta"}, "linux-4core")) }, no},

		// provisioners
		{"unused provisioner", func(c *Config) { c.Provisioners["spare"] = Provisioner{Type: "ec2"} }, no},
		{"all provisioner types", func(c *Config) {
			for _, typ := range ProvisionerTypes() {
				c.Provisioners["p-"+typ] = Provisioner{Type: typ}
			}
		}, no},
		{"provisioner bad name", func(c *Config) { c.Provisioners["Big_One"] = Provisioner{Type: "fake"} }, []want{{"provisioners.Big_One", "lowercase"}}},
		{"provisioner without type", func(c *Config) { c.Provisioners["spare"] = Provisioner{} }, []want{{"provisioners.spare.type", "required: one of"}}},
		{"provisioner bad type", func(c *Config) { c.Provisioners["spare"] = Provisioner{Type: "docker"} }, []want{{"provisioners.spare.type", `got "docker"`}}},
		{"provisioner problems in key order", func(c *Config) {
			c.Provisioners["zz"] = Provisioner{}
			c.Provisioners["aa"] = Provisioner{}
		}, []want{{"provisioners.aa.type", "required"}, {"provisioners.zz.type", "required"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tc.mutate(c)
			got := problemsOf(t, c.Validate())
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tc.want), (&ValidationError{got}).Error())
			}
			for i, w := range tc.want {
				if got[i].Path != w.path || !strings.Contains(got[i].Message, w.msg) {
					t.Errorf("problem %d = %q, want path %q and a message containing %q", i, got[i], w.path, w.msg)
				}
			}
		})
	}
}

func numbered(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("label-%d", i)
	}
	return out
}

func TestValidateSortsByPath(t *testing.T) {
	t.Parallel()
	c := validConfig()
	for i := range 11 {
		c.Pools = append(c.Pools, testPool(fmt.Sprintf("p%d", i), Scope{Org: "acme"}, fmt.Sprintf("l%d", i)))
		c.Pools[len(c.Pools)-1].MaxRunners = 0
	}
	c.Log.Level = "loud"
	got := paths(problemsOf(t, c.Validate()))
	if got[0] != "log.level" || got[1] != "pools[1].max_runners" || got[2] != "pools[2].max_runners" || got[len(got)-1] != "pools[11].max_runners" {
		t.Errorf("paths not in natural order: %q", got)
	}
}
