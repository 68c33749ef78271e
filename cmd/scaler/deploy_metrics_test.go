package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/runnerscaler/runnerscaler/internal/ghsim"
	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

// The deploy/ files (Prometheus rules and their unit tests, the Grafana
// dashboard) may only use metrics the daemon exports: this test extracts
// every metric name they use and finds each in a /metrics scrape of a daemon
// that has just run a small burst against the simulator. With promtool on
// PATH it also lints the scrape and checks the rules, their unit tests, the
// example scrape configuration and the dashboard's PromQL.

// deployDir is the repository's deploy directory, from this package's.
const deployDir = "../../deploy"

// deployBuiltinMetrics are series Prometheus makes itself when it scrapes.
var deployBuiltinMetrics = map[string]bool{
	"up": true, "scrape_duration_seconds": true, "scrape_samples_scraped": true,
	"scrape_samples_post_metric_relabeling": true, "scrape_series_added": true,
}

// deployMayBeAbsent lists metrics the deploy files may use although the
// burst below cannot make them appear, each with the reason. Keep it short:
// a metric listed here is not checked at all.
var deployMayBeAbsent = map[string]string{}

func TestDeployMetricNamesExist(t *testing.T) {
	used, recorded := deployUsedMetrics(t)
	if len(used) == 0 {
		t.Fatal("no metric names found in the deploy files")
	}
	t.Logf("deploy files use %d metrics; %d recording rules", len(used), len(recorded))

	t.Run("promtool rules and config", deployPromtoolRules)
	t.Run("promtool dashboard PromQL", deployPromtoolDashboard)

	skipWithoutProcesses(t)
	wanted := map[string]bool{}
	for name := range used {
		base := deployBaseName(name)
		if _, ok := deployMayBeAbsent[base]; !ok && !deployBuiltinMetrics[base] {
			wanted[base] = true
		}
	}
	body, families := deployScrapeDaemon(t, wanted, func(addr string) { prometheusScrapes(t, addr) })

	// By family: x_bucket, x_sum and x_count are x's series.
	byFamily := map[string][]string{}
	for name, where := range used {
		base := deployBaseName(name)
		for _, w := range where {
			if !slices.Contains(byFamily[base], w) {
				byFamily[base] = append(byFamily[base], w)
			}
		}
		if typ, ok := families[base]; ok && base != name && typ != "histogram" && typ != "summary" {
			t.Errorf("%s is used as %s, but the daemon exports it as a %s", base, name, typ)
		}
	}
	var missing []string
	for base, where := range byFamily {
		if deployBuiltinMetrics[base] {
			continue
		}
		if reason, ok := deployMayBeAbsent[base]; ok {
			t.Logf("not checked: %s (%s)", base, reason)
			continue
		}
		if _, ok := families[base]; !ok {
			sort.Strings(where)
			missing = append(missing, fmt.Sprintf("%s (used in %s)", base, strings.Join(where, "; ")))
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("not in the daemon's /metrics: %s", m)
	}
	if t.Failed() {
		var names []string
		for n := range families {
			names = append(names, n)
		}
		sort.Strings(names)
		t.Logf("families in /metrics: %s", strings.Join(names, " "))
	}

	t.Run("promtool check metrics", func(t *testing.T) {
		promtool := deployPromtool(t)
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		out, err := cmd.CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	})
}

// deployBaseName strips the series suffixes of a histogram or summary.
func deployBaseName(name string) string {
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		if b, ok := strings.CutSuffix(name, s); ok {
			return b
		}
	}
	return name
}

// deployUsedMetrics returns the metric names the rules, their unit tests and
// the dashboard use (each with where), minus the recording rules' own names,
// which it returns apart.
func deployUsedMetrics(t *testing.T) (used map[string][]string, recorded map[string]bool) {
	t.Helper()
	used, recorded = map[string][]string{}, map[string]bool{}
	var exprs []deployExpr

	ruleFiles, err := filepath.Glob(filepath.Join(deployDir, "prometheus", "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	testFiles, err := filepath.Glob(filepath.Join(deployDir, "prometheus", "tests", "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ruleFiles) == 0 || len(testFiles) == 0 {
		t.Fatalf("no rule files or rule tests under %s/prometheus", deployDir)
	}
	for _, path := range ruleFiles {
		var doc struct {
			Groups []struct {
				Name  string `yaml:"name"`
				Rules []struct {
					Record string `yaml:"record"`
					Alert  string `yaml:"alert"`
					Expr   string `yaml:"expr"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		deployReadYAML(t, path, &doc)
		for _, g := range doc.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					recorded[r.Record] = true
				}
				exprs = append(exprs, deployExpr{filepath.Base(path) + ": " + r.Record + r.Alert, r.Expr})
			}
		}
	}
	for _, path := range testFiles {
		var doc struct {
			Tests []struct {
				Name        string `yaml:"name"`
				InputSeries []struct {
					Series string `yaml:"series"`
				} `yaml:"input_series"`
				PromQLExprTest []struct {
					Expr string `yaml:"expr"`
				} `yaml:"promql_expr_test"`
			} `yaml:"tests"`
		}
		deployReadYAML(t, path, &doc)
		for _, tc := range doc.Tests {
			where := filepath.Base(path) + ": " + tc.Name
			for _, s := range tc.InputSeries {
				exprs = append(exprs, deployExpr{where, s.Series})
			}
			for _, e := range tc.PromQLExprTest {
				exprs = append(exprs, deployExpr{where, e.Expr})
			}
		}
	}
	dash, err := deployDashboardExprs(filepath.Join(deployDir, "grafana", "runnerscaler.json"))
	if err != nil {
		t.Fatal(err)
	}
	exprs = append(exprs, dash...)

	for _, e := range exprs {
		for _, name := range promqlMetricNames(e.expr) {
			if recorded[name] {
				continue
			}
			if !slices.Contains(used[name], e.where) {
				used[name] = append(used[name], e.where)
			}
		}
	}
	return used, recorded
}

func deployReadYAML(t *testing.T, path string, out any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// deployExpr is a PromQL expression and where it was found.
type deployExpr struct{ where, expr string }

// deployDashboardExprs returns the PromQL of every panel target (rows'
// nested panels included) and of every query variable of a Grafana
// dashboard.
func deployDashboardExprs(path string) ([]deployExpr, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	type panel struct {
		Title   string  `json:"title"`
		Panels  []panel `json:"panels"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	}
	var dash struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []deployExpr
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if tg.Expr != "" {
					out = append(out, deployExpr{"dashboard panel " + p.Title, tg.Expr})
				}
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no panel expressions", path)
	}
	for _, v := range dash.Templating.List {
		if v.Type != "query" || len(v.Query) == 0 {
			continue
		}
		var q string
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var obj struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &obj); err != nil {
				return nil, fmt.Errorf("%s: variable %s: query is neither a string nor an object", path, v.Name)
			}
			q = obj.Query
		}
		out = append(out, deployExpr{"dashboard variable " + v.Name, grafanaVariableExpr(q)})
	}
	return out, nil
}

// grafanaVariableExpr is the PromQL inside a Grafana Prometheus variable
// query: label_values(EXPR, label) gives EXPR, query_result(EXPR) EXPR,
// label_values(label) and label_names() none.
func grafanaVariableExpr(q string) string {
	q = strings.TrimSpace(q)
	for _, fn := range []string{"label_values(", "query_result("} {
		inner, ok := strings.CutPrefix(q, fn)
		if !ok {
			continue
		}
		inner = strings.TrimSuffix(strings.TrimSpace(inner), ")")
		if fn == "label_values(" {
			i := strings.LastIndex(inner, ",")
			if i < 0 {
				return "" // label_values(label): every series
			}
			inner = inner[:i]
		}
		return inner
	}
	if strings.HasPrefix(q, "label_names(") || strings.HasPrefix(q, "metrics(") {
		return ""
	}
	return q
}

// promqlAggregations are PromQL's aggregation operators, which may be
// followed by by/without before their parenthesis.
var promqlAggregations = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
}

// promqlKeywords are PromQL words that are not metric names; those in
// promqlLabelLists are followed by a parenthesised label list.
var (
	promqlKeywords = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	}
	promqlLabelLists = map[string]bool{
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	}
)

// promqlMetricNames returns the metric names an expression selects: the
// identifiers that are not functions, aggregations, keywords, label names,
// durations or Grafana variables. It is a lexer, not a parser; promtool
// checks the syntax.
func promqlMetricNames(expr string) []string {
	var names []string
	s := expr
	i := 0
	skipString := func(q byte) {
		i++
		for i < len(s) && s[i] != q {
			if s[i] == '\\' && q != '`' {
				i++
			}
			i++
		}
		i++
	}
	// skipGroup skips from an opening bracket to its closing one, strings
	// included.
	skipGroup := func(open, close byte) {
		depth := 0
		for i < len(s) {
			switch c := s[i]; {
			case c == '"' || c == '\'' || c == '`':
				skipString(c)
				continue
			case c == open:
				depth++
			case c == close:
				depth--
				if depth == 0 {
					i++
					return
				}
			}
			i++
		}
	}
	nextNonSpace := func() byte {
		for j := i; j < len(s); j++ {
			if !strings.ContainsRune(" \t\r\n", rune(s[j])) {
				return s[j]
			}
		}
		return 0
	}
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			skipString(c)
		case c == '{':
			skipGroup('{', '}')
		case c == '[':
			skipGroup('[', ']')
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '$': // a Grafana variable: $name or ${name}
			i++
			if i < len(s) && s[i] == '{' {
				skipGroup('{', '}')
			}
			for i < len(s) && isIdent(s[i]) {
				i++
			}
		case c >= '0' && c <= '9' || c == '.': // numbers and durations
			for i < len(s) && (isIdent(s[i]) || s[i] == '.') {
				i++
			}
		case isIdentStart(c):
			start := i
			for i < len(s) && isIdent(s[i]) {
				i++
			}
			word := s[start:i]
			lower := strings.ToLower(word)
			switch {
			case promqlLabelLists[lower]:
				if nextNonSpace() == '(' {
					for s[i] != '(' {
						i++
					}
					skipGroup('(', ')')
				}
			case promqlKeywords[lower], promqlAggregations[lower]:
			case nextNonSpace() == '(':
				// a function
			default:
				if !slices.Contains(names, word) {
					names = append(names, word)
				}
			}
		default:
			i++
		}
	}
	return names
}

func TestPromqlMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`up{job="runnerscaler"} == 0 or absent(up{job="runnerscaler"})`:                                                   {"up"},
		`histogram_quantile(0.95, sum by (pool, le) (rate(a_seconds_bucket{pool=~"$pool"}[$__rate_interval])))`:           {"a_seconds_bucket"},
		`(sum by (pool) (b{state="queued", pool!=""}) > 0) unless on (pool) (sum by (pool) (increase(c_total[15m])) > 0)`: {"b", "c_total"},
		`max by (x) (d) / on (x) group_left (y) max without (z) (e > 0) and f offset 5m`:                                  {"d", "e", "f"},
		`time() - process_start_time_seconds{instance=~"${instance}", note="sum(x)"}`:                                     {"process_start_time_seconds"},
		`pool:rec:p95_10m > 300`: {"pool:rec:p95_10m"},
	} {
		if got := promqlMetricNames(expr); !slices.Equal(got, want) {
			t.Errorf("promqlMetricNames(%q) = %q, want %q", expr, got, want)
		}
	}
	for q, want := range map[string]string{
		`label_values(runnerscaler_build_info{job=~"$job"}, instance)`: `runnerscaler_build_info{job=~"$job"}`,
		`label_values(job)`:         "",
		`query_result(sum(x))`:      "sum(x)",
		`runnerscaler_build_info`:   "runnerscaler_build_info",
		`label_names()`:             "",
		` label_values(a, b) `:      "a",
		`label_values(a{b=","}, c)`: `a{b=","}`,
	} {
		if got := grafanaVariableExpr(q); got != want {
			t.Errorf("grafanaVariableExpr(%q) = %q, want %q", q, got, want)
		}
	}
}

// deployPromtool returns promtool's path, or skips the test without it.
func deployPromtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (Debian: apt-get install prometheus); CI installs it")
	}
	return p
}

func deployPromtoolRules(t *testing.T) {
	promtool := deployPromtool(t)
	tests, _ := filepath.Glob(filepath.Join(deployDir, "prometheus", "tests", "*.yml"))
	for _, args := range [][]string{
		{"check", "rules", filepath.Join(deployDir, "prometheus", "runnerscaler.rules.yml")},
		{"check", "config", filepath.Join(deployDir, "prometheus", "prometheus.yml")},
		append([]string{"test", "rules"}, tests...),
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// grafanaVarRE matches a Grafana variable reference.
var grafanaVarRE = regexp.MustCompile(`\$(\{[A-Za-z0-9_]+(:[a-z]+)?\}|[A-Za-z0-9_]+)`)

// deployPromtoolDashboard checks the dashboard's PromQL: each expression,
// with its Grafana variables replaced, becomes a recording rule that
// promtool check rules parses.
func deployPromtoolDashboard(t *testing.T) {
	promtool := deployPromtool(t)
	exprs, err := deployDashboardExprs(filepath.Join(deployDir, "grafana", "runnerscaler.json"))
	if err != nil {
		t.Fatal(err)
	}
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, e := range exprs {
		if e.expr == "" {
			continue
		}
		expr := grafanaVarRE.ReplaceAllStringFunc(e.expr, func(v string) string {
			switch strings.Trim(v, "${}") {
			case "__rate_interval", "__interval":
				return "1m"
			case "__range":
				return "1h"
			}
			return ".*"
		})
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:expr:%d", i), Expr: expr})
	}
	doc := map[string]any{"groups": []map[string]any{{"name": "dashboard", "rules": rules}}}
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard.rules.yml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("the dashboard's PromQL does not parse: %v\n%s\n%s", err, out, b)
	}
}

// deployConfig runs every pool kind a short burst can exercise: linux-small
// runs jobs on local runner processes; wrong-arch asks the local
// provisioner for another architecture than this host's, so each of its
// creates fails at once, permanently (create failures, provisioner errors).
const deployConfig = `
github:
  api_url: SIMURL
webhook:
  listen: WEBHOOK
  path: /webhook
metrics:
  listen: METRICS
store:
  path: DIR/state.db
log:
  level: error
pools:
  - name: linux-small
    scope: {org: octo-org}
    labels: [linux-small]
    max_runners: 5
    provisioner: local
  - name: wrong-arch
    scope: {org: octo-org}
    labels: [wrong-arch]
    arch: ARCH
    max_runners: 1
    provisioner: local
provisioners:
  local:
    type: local
    settings:
      work_dir: DIR/local
      cache_dir: DIR/cache
      max_instances: 10
      grace_period: 5s
      extra_env: {EXECMAIN: "1"}
`

// deployScrapeDaemon runs `scaler run` in this process against the
// simulator, submits a small burst (runnable jobs, an unmatched one, one for
// a pool whose creates fail), and scrapes /metrics until every wanted family
// is there, or 10 seconds have passed. It returns the last body and its
// families with their types.
func deployScrapeDaemon(t *testing.T, wanted map[string]bool, whileRunning ...func(metricsAddr string)) (string, map[string]string) {
	t.Helper()
	const pat, secret = "ghp_deploymetrics", "deploy-metrics-webhook-secret"
	dir := t.TempDir()
	webhookAddr, metricsAddr := freePort(t), freePort(t)
	sim, err := ghsim.New(ghsim.Options{
		PAT: pat, WebhookURL: "http://" + webhookAddr + "/webhook", WebhookSecret: secret,
		RunnerCommand: scalerExe(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	simURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()

	arch := "arm64" // any architecture but this host's
	if runtime.GOARCH == "arm64" {
		arch = "x64"
	}
	cfg := strings.NewReplacer("SIMURL", simURL, "WEBHOOK", webhookAddr, "METRICS", metricsAddr,
		"DIR", dir, "ARCH", arch, "EXECMAIN", execMainEnv).Replace(deployConfig)
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.MkdirAll(filepath.Join(dir, "local"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SCALER_GITHUB_TOKEN": pat, "SCALER_WEBHOOK_SECRET": secret}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- cli(ctx, []string{"run", "-config", cfgPath}, env, &stdout, &stderr) }()
	stopped := false
	defer func() {
		if stopped {
			return
		}
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("daemon exited %d after cancel:\n%s", code, stderr.String())
			}
		case <-time.After(20 * time.Second):
			t.Errorf("daemon did not stop within 20s of cancel")
		}
	}()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s\ndaemon log:\n%s", fmt.Sprintf(format, args...), stderr.String())
	}

	// Ready: /readyz 200 (or /healthz where there is no /readyz) and the
	// webhook port bound.
	client := &http.Client{Timeout: 2 * time.Second}
	get := func(path string) (int, string, error) {
		resp, err := client.Get("http://" + metricsAddr + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case code := <-done:
			stopped = true
			fail("daemon exited %d during start-up", code)
		default:
		}
		ready := false
		if code, _, err := get("/readyz"); err == nil && code == http.StatusOK {
			ready = true
		} else if err == nil && code == http.StatusNotFound {
			hc, _, herr := get("/healthz")
			ready = herr == nil && hc == http.StatusOK
		}
		if ready {
			if c, err := net.DialTimeout("tcp", webhookAddr, time.Second); err == nil {
				c.Close()
				break
			}
		}
		if time.Now().After(deadline) {
			fail("daemon not ready after 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The burst: runnable jobs and one no pool matches; once those are done,
	// one for the pool whose creates fail.
	w := sim.World()
	var runnable []int64
	for _, in := range []world.JobInput{
		{Repo: "octo-org/app", Labels: []string{"linux-small"}, Duration: 200 * time.Millisecond, Count: 3},
		{Repo: "octo-org/website", Labels: []string{"ubuntu-latest"}, Count: 1}, // no pool: unmatched
	} {
		ids, err := w.CreateJobs(in)
		if err != nil {
			fail("submit jobs: %v", err)
		}
		if in.Labels[0] == "linux-small" {
			runnable = append(runnable, ids...)
		}
	}
	// settled: the runnable jobs are done and their (ephemeral) runners
	// gone, so no runner process outlives the daemon.
	settled := func() bool {
		for _, id := range runnable {
			if j, _, ok := w.Job(id); !ok || j.Status != world.JobCompleted {
				return false
			}
		}
		for _, r := range w.Runners(world.Scope{Kind: world.Org, Name: "octo-org"}) {
			if strings.HasPrefix(r.Name, "linux-small-") {
				return false
			}
		}
		return true
	}
	deadline = time.Now().Add(15 * time.Second)
	for !settled() {
		if time.Now().After(deadline) {
			fail("the runnable jobs did not complete, or their runners were not removed, within 15s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := w.CreateJobs(world.JobInput{Repo: "octo-org/app", Labels: []string{"wrong-arch"}}); err != nil {
		fail("submit jobs: %v", err)
	}

	// Scrape until every wanted family is present.
	var body string
	var families map[string]string
	deadline = time.Now().Add(10 * time.Second)
	for {
		code, b, err := get("/metrics")
		if err == nil && code == http.StatusOK {
			body, families = b, deployFamilies(b)
			all := true
			for name := range wanted {
				if _, ok := families[name]; !ok {
					all = false
					break
				}
			}
			if all {
				break
			}
		}
		if time.Now().After(deadline) {
			if body == "" {
				fail("no /metrics answer: %v (status %d)", err, code)
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, f := range whileRunning {
		f(metricsAddr)
	}
	return body, families
}

// deployFamilies returns the metric families of a text-format scrape, by
// name, with their types.
func deployFamilies(body string) map[string]string {
	fams := map[string]string{}
	for _, line := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(line, "# TYPE ")
		if !ok {
			continue
		}
		if f := strings.Fields(rest); len(f) == 2 {
			fams[f[0]] = f[1]
		}
	}
	return fams
}
