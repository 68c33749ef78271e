package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// prometheusScrapes runs a real Prometheus (Debian's package; CI installs it)
// against the daemon's metrics listener, with our rules loaded, and waits
// until its query API says up == 1 and runnerscaler_runners_created_total > 0.
// Without a prometheus binary the check is skipped, unless
// RUNNERSCALER_REQUIRE_PROMETHEUS is set (as CI sets it).
func prometheusScrapes(t *testing.T, metricsAddr string) {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("RUNNERSCALER_REQUIRE_PROMETHEUS") != "" {
			t.Fatalf("prometheus not found and RUNNERSCALER_REQUIRE_PROMETHEUS is set: %v", err)
		}
		t.Log("prometheus not on PATH: the real-Prometheus check is skipped")
		return
	}
	dir := t.TempDir()
	rules, err := filepath.Abs(filepath.Join("..", "..", "deploy", "prometheus", "runnerscaler.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: runnerscaler
    static_configs:
      - targets: [%q]
`, rules, metricsAddr)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := freePort(t)
	p := startProc(t, "prometheus", dir, nil, bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+listen, "--log.level=warn")
	// Stopped before the daemon it scrapes (startProc's cleanup would be
	// later).
	defer func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	}()
	query := func(q string) (float64, bool) {
		resp, err := http.Get("http://" + listen + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return 0, false
		}
		defer resp.Body.Close()
		var out struct {
			Status string `json:"status"`
			Data   struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if json.NewDecoder(resp.Body).Decode(&out) != nil || out.Status != "success" || len(out.Data.Result) == 0 {
			return 0, false
		}
		s, _ := out.Data.Result[0].Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		up, ok1 := query(`up{job="runnerscaler"}`)
		created, ok2 := query(`sum(runnerscaler_runners_created_total{job="runnerscaler"})`)
		if ok1 && ok2 && up == 1 && created > 0 {
			t.Logf("Prometheus: up == 1, runnerscaler_runners_created_total == %v", created)
			break
		}
		if !p.running() {
			t.Fatalf("prometheus exited: %s", p.stderr.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus never saw the daemon: up %v (%v), runners created %v (%v)\n%s", up, ok1, created, ok2, p.stderr.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
	// Our rules loaded and evaluate without errors.
	resp, err := http.Get("http://" + listen + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rs struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rs); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range rs.Data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health == "err" {
				t.Errorf("rule %s: %s", r.Name, r.LastError)
			}
		}
	}
	if n == 0 {
		t.Error("Prometheus loaded no rules")
	}
}
