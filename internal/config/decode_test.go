package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// validPools is a valid tail for test documents that are about other
// sections.
const validPools = `
pools:
  - {name: p, scope: {org: acme}, labels: [l], max_runners: 1, provisioner: local}
provisioners:
  local: {type: local}
`

func TestParseProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []Problem
	}{
		{
			name: "unknown key with suggestion",
			yaml: `
github: {token: t}
pools:
  - name: p
    scope: {org: acme}
    labels: [l]
    labelz: [m]
    max_runners: 1
    provisioner: local
provisioners:
  local: {type: local}
`,
			want: []Problem{{"pools[0].labelz", `unknown key (did you mean "labels"?)`}},
		},
		{
			name: "unknown top-level key, with and without suggestion",
			yaml: "github: {token: t}\nwebhok: {}\nfrobnicate: 1\n" + validPools,
			want: []Problem{
				{"webhok", `unknown key (did you mean "webhook"?)`},
				{"frobnicate", "unknown key"},
			},
		},
		{
			name: "synonym suggestion",
			yaml: `
github: {token: t}
pools:
  - {name: p, scope: {organization: acme}, labels: [l], max_runners: 1, provisioner: local}
provisioners:
  local: {type: local}
`,
			want: []Problem{
				{"pools[0].scope", "required: set exactly one of enterprise, org or repo"},
				{"pools[0].scope.organization", `unknown key (did you mean "org"?)`},
			},
		},
		{
			name: "trailing document marker is harmless",
			yaml: "github: {token: t}\n" + validPools + "---\n",
		},
		{
			name: "private key in YAML gets a hint",
			yaml: "github:\n  app: {id: 1, private_key_file: /k, private_key: x}\n" + validPools,
			want: []Problem{{"github.app.private_key", "unknown key (the key itself is read only from the environment variable " +
				"SCALER_GITHUB_APP_PRIVATE_KEY; to read it from a file use private_key_file)"}},
		},
		{
			name: "integer type error",
			yaml: `
github: {token: t}
pools:
  - {name: p, scope: {org: acme}, labels: [l], max_runners: 1, provisioner: local}
  - {name: q, scope: {org: acme}, labels: [m], max_runners: ten, provisioner: local}
provisioners:
  local: {type: local}
`,
			want: []Problem{{"pools[1].max_runners", `must be an integer, got "ten"`}},
		},
		{
			name: "quoted integer",
			yaml: "github: {token: t, max_attempts: \"3\"}\n" + validPools,
			want: []Problem{{"github.max_attempts", `must be an integer, got "3" (a quoted string; remove the quotes)`}},
		},
		{
			name: "float for integer",
			yaml: "github: {token: t, max_attempts: 2.5}\n" + validPools,
			want: []Problem{{"github.max_attempts", `must be an integer, got "2.5"`}},
		},
		{
			name: "integer overflow",
			yaml: "github: {token: t, max_in_flight: 99999999999999999999}\n" + validPools,
			want: []Problem{{"github.max_in_flight", `must be an integer between -9223372036854775808 and 9223372036854775807, got "99999999999999999999"`}},
		},
		{
			name: "list where a mapping belongs",
			yaml: "github: [a, b]\n" + validPools,
			want: []Problem{
				// Only one problem: checks of a section that never
				// decoded would only repeat it.
				{"github", "must be a mapping (key: value), got a list"},
			},
		},
		{
			name: "scalar where a list belongs",
			yaml: `
github: {token: t}
pools:
  - {name: p, scope: {org: acme}, labels: gpu, max_runners: 1, provisioner: local}
provisioners:
  local: {type: local}
`,
			want: []Problem{{"pools[0].labels", `must be a list, got "gpu"`}},
		},
		{
			name: "mapping where a string belongs",
			yaml: "github: {token: t}\nlog: {level: {x: 1}}\n" + validPools,
			want: []Problem{{"log.level", "must be a string, got a mapping"}},
		},
		{
			name: "bool type error",
			yaml: `
github: {token: t}
pools:
  - {name: p, scope: {org: acme}, labels: [l], max_runners: 1, provisioner: local, ephemeral: maybe}
provisioners:
  local: {type: local}
`,
			want: []Problem{{"pools[0].ephemeral", `must be true or false, got "maybe"`}},
		},
		{
			name: "duration without unit",
			yaml: "github: {token: t, request_timeout: 30}\n" + validPools,
			want: []Problem{{"github.request_timeout", `must be a duration like "90s", "10m" or "1h30m", got "30" (a bare number has no unit; add one, e.g. "30s")`}},
		},
		{
			name: "duration garbage",
			yaml: "github: {token: t, request_timeout: soon}\n" + validPools,
			want: []Problem{{"github.request_timeout", `must be a duration like "90s", "10m" or "1h30m", got "soon"`}},
		},
		{
			name: "duplicate keys in a struct, a map and free-form settings",
			yaml: `
github: {token: t}
log:
  level: info
  level: debug
pools:
  - {name: p, scope: {org: acme}, labels: [l], max_runners: 1, provisioner: local}
provisioners:
  local:
    type: local
    settings:
      a: 1
      a: 2
  local: {type: fake}
`,
			want: []Problem{
				{"log.level", "duplicate key (first set on line 4)"},
				{"provisioners.local.settings.a", "duplicate key (first set on line 12)"},
				{"provisioners.local", "duplicate key (first set on line 9)"},
			},
		},
		{
			name: "duplicate top-level section",
			yaml: "github: {token: t}\ngithub: {token: u}\n" + validPools,
			want: []Problem{{"github", "duplicate key (first set on line 1)"}},
		},
		{
			name: "several documents",
			yaml: "github: {token: t}\n" + validPools + "---\nlog: {level: debug}\n",
			want: []Problem{{"", `the file holds more than one YAML document ("---"); keep the whole configuration in one`}},
		},
		{
			name: "root is not a mapping",
			yaml: "- a\n- b\n",
			want: []Problem{{"", `the file must be a mapping of settings (key: value), got a list`}},
		},
		{
			name: "alias containing itself",
			yaml: "github: {token: t}\n" + validPools + "  other:\n    type: fake\n    settings: &s {loop: [*s]}\n",
			want: []Problem{{"provisioners.other.settings.loop[0]", "alias *s refers to a value that contains it"}},
		},
		{
			name: "odd map keys are quoted in paths",
			yaml: "github: {token: t}\n" + validPools + "  \"my.prov\": {type: docker}\n",
			want: []Problem{
				{`provisioners["my.prov"]`, `name must be 1 to 39 lowercase letters, digits or hyphens, starting with a letter or digit, got "my.prov"`},
				{`provisioners["my.prov"].type`, `must be one of "local", "external", "ec2", "kubernetes" or "fake", got "docker"`},
			},
		},
		{
			name: "problems come in file order",
			yaml: `
provisioners:
  local: {type: nope}
pools:
  - {name: p, scope: {org: acme}, labels: [l], max_runners: 0, provisioner: local}
log: {level: loud}
github: {token: t, max_attempts: 0}
`,
			want: []Problem{
				{"provisioners.local.type", `must be one of "local", "external", "ec2", "kubernetes" or "fake", got "nope"`},
				{"pools[0].max_runners", "must be >= 1 (the most runners this pool may run at once), got 0"},
				{"log.level", `must be one of "debug", "info", "warn" or "error", got "loud"`},
				{"github.max_attempts", "must be between 1 and 10, got 0"},
			},
		},
		{
			name: "lifecycle and admin",
			yaml: "github: {token: t}\n" + validPools + `
lifecycle: {reconcile_interval: 0s, bootstrap_timeout: 500ms, redeliver_interval: 10ms, max_redeliveries_per_cycle: 0}
admin: {listen: "0.0.0.0:9103"}
`,
			want: []Problem{
				{"lifecycle.reconcile_interval", "must be at least 1s, got 0s"},
				{"lifecycle.bootstrap_timeout", "must be at least 1s, got 500ms"},
				{"lifecycle.redeliver_interval", "must be at least 1s (or 0 to turn redelivery off), got 10ms"},
				{"lifecycle.max_redeliveries_per_cycle", "must be at least 1, got 0"},
				{"admin.listen", `"0.0.0.0:9103" is not a loopback address: set admin.token (or SCALER_ADMIN_TOKEN) so that only holders of the token can read the daemon's state, or listen on 127.0.0.1`},
			},
		},
		{
			name: "admin with a token may listen anywhere, but not on another server's port",
			yaml: "github: {token: t}\n" + validPools + `
admin: {listen: ":9102", token: s3cret}
`,
			want: []Problem{{"admin.listen", `must differ from metrics.listen (":9102")`}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.yaml), map[string]string{})
			got := problemsOf(t, err)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestParseSyntaxError(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte("github:\n  token: [unclosed\n"), nil)
	if cfg != nil {
		t.Error("a file that is not YAML must give a nil *Config")
	}
	got := problemsOf(t, err)
	if len(got) != 1 || got[0].Path != "" || !strings.HasPrefix(got[0].Message, "invalid YAML: ") {
		t.Errorf("problems = %q", got)
	}
}

func TestParseReturnsConfigWithErrors(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte("log: {level: loud}\n"), nil)
	if err == nil || cfg == nil {
		t.Fatalf("Parse = %v, %v; want a config and an error", cfg, err)
	}
	if cfg.Log.Level != "loud" {
		t.Errorf("the returned config should hold what the file said, got level %q", cfg.Log.Level)
	}
}

func TestParseEmptyFileIsDefaults(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{"", "# only a comment\n", "---\n"} {
		cfg, err := Parse([]byte(doc), nil)
		if cfg == nil {
			t.Fatalf("Parse(%q) gave no config", doc)
		}
		if !reflect.DeepEqual(cfg, Default()) {
			t.Errorf("Parse(%q) = %+v, want the defaults", doc, cfg)
		}
		// Validation still runs: no credentials, no pools.
		if got, want := paths(problemsOf(t, err)), []string{"github", "pools"}; !reflect.DeepEqual(got, want) {
			t.Errorf("Parse(%q) problem paths = %q, want %q", doc, got, want)
		}
	}
}

func TestParseValues(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(`
github:
  api_url: https://ghe.example.com/api/v3
  token: t
webhook:
  listen:            # null keeps the default
  path: /hooks/github
base: &base
pools:
  - &linux
    name: a
    scope: {org: acme}
    labels: [l]
    max_runners: 3
    idle_timeout: 0s
    ephemeral: false
    registration: token
    provisioner: local
  - <<: *linux
    name: b
    labels: [m]
    ephemeral: true
    registration: jit
provisioners:
  local:
    type: local
    settings:
      image: ubuntu
      count: 3
      nested: {list: [1, two]}
`), nil)
	// "base" is an unknown key; everything else is valid.
	if got := paths(problemsOf(t, err)); !reflect.DeepEqual(got, []string{"base"}) {
		t.Fatalf("problem paths = %q, want [base]", got)
	}
	if cfg.GitHub.APIURL != "https://ghe.example.com/api/v3/" {
		t.Errorf("api_url not normalised: %q", cfg.GitHub.APIURL)
	}
	if cfg.Webhook.Listen != ":8080" || cfg.Webhook.Path != "/hooks/github" {
		t.Errorf("webhook = %+v", cfg.Webhook)
	}
	a, b := cfg.Pools[0], cfg.Pools[1]
	if a.IdleTimeout != 0 || a.IsEphemeral() || a.Registration != "token" {
		t.Errorf("explicit zero or false values lost: %+v", a)
	}
	if b.Name != "b" || b.MaxRunners != 3 || b.IdleTimeout != 0 || b.Labels[0] != "m" || !b.IsEphemeral() || b.Scope.Org != "acme" {
		t.Errorf("merge key not applied as YAML specifies: %+v", b)
	}
	want := map[string]any{"image": "ubuntu", "count": 3, "nested": map[string]any{"list": []any{1, "two"}}}
	if got := cfg.Provisioners["local"].Settings; !reflect.DeepEqual(got, want) {
		t.Errorf("settings = %#v, want %#v", got, want)
	}
}

func TestParseMergeKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		pool  string // YAML of pools[1]; pools[0] is anchored as &a
		check func(t *testing.T, p Pool)
		want  []Problem
	}{
		{
			name: "list of merges, earlier wins",
			pool: "{<<: [*b, *a], name: q, labels: [m]}",
			check: func(t *testing.T, p Pool) {
				if p.MaxRunners != 9 || p.Scope.Org != "acme" || p.OS != "windows" {
					t.Errorf("pool = %+v", p)
				}
			},
		},
		{
			name: "merge of a scalar",
			pool: "{<<: 5, name: q, labels: [m], scope: {org: acme}, max_runners: 1, provisioner: local}",
			want: []Problem{{"pools[1]", `a merge key (<<) takes a mapping or a list of mappings, got "5"`}},
		},
		{
			name: "merge list holding a scalar",
			pool: "{<<: [*a, 5], name: q, labels: [m]}",
			want: []Problem{{"pools[1]", `a merge key (<<) takes mappings, got "5"`}},
		},
		{
			name: "unknown key inside merged mapping is reported where it lands",
			pool: "{<<: *c, name: q, labels: [m], scope: {org: acme}, max_runners: 1, provisioner: local}",
			want: []Problem{{"pools[1].colour", `unknown key`}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := `
github: {token: t}
anchors:
  - &b {max_runners: 9, os: windows}
  - &c {colour: blue}
pools:
  - &a {name: p, scope: {org: acme}, labels: [l], max_runners: 1, provisioner: local}
  - ` + tc.pool + `
provisioners:
  local: {type: local}
`
			cfg, err := Parse([]byte(doc), nil)
			got := problemsOf(t, err)
			// "anchors" is an unknown key by design: it only holds anchors.
			if len(got) == 0 || got[0].Path != "anchors" {
				t.Fatalf("problems = %q, want the first at anchors", got)
			}
			if got = got[1:]; len(got) != len(tc.want) || (len(got) > 0 && !reflect.DeepEqual(got, tc.want)) {
				t.Errorf("problems:\n got %q\nwant %q", got, tc.want)
			}
			if tc.check != nil {
				tc.check(t, cfg.Pools[1])
			}
		})
	}
}

func TestParseAliasBomb(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("github: {token: t}\n" + validPools + "  bomb:\n    type: fake\n    settings:\n      a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		prev := "*a" + string(rune('0'+i-1))
		b.WriteString("      a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [" + strings.Repeat(prev+", ", 9) + prev + "]\n")
	}
	start := time.Now()
	_, err := Parse([]byte(b.String()), nil)
	got := problemsOf(t, err)
	if len(got) != 1 || !strings.Contains(got[0].Message, "expands to more than") {
		t.Errorf("problems = %q", got)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestEditDistance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"labels", "labels", 0},
		{"labelz", "labels", 1},
		{"lables", "labels", 2},
		{"", "abc", 3},
		{"kitten", "sitting", 3},
	}
	for _, tc := range tests {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
