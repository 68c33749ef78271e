package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to read while the daemon writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli(context.Background(), args, env, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestValidateThreePlantedErrors(t *testing.T) {
	path := filepath.Join("..", "..", "internal", "config", "testdata", "three-errors.yaml")
	code, stdout, stderr := runCLI(t, map[string]string{}, "validate", "-config", path)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got %d:\n%s", len(lines), stderr)
	}
	for i, want := range []string{"pools[0].idle_timout: unknown key", "pools[1].max_runners: must be >= min_idle (3)", "pools[2].provisioner: unknown provisioner"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %q, want it to contain %q", i+1, lines[i], want)
		}
	}
}

func TestValidateExample(t *testing.T) {
	code, stdout, stderr := runCLI(t, map[string]string{}, "validate", "-config", filepath.Join("..", "..", "config.example.yaml"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "valid") {
		t.Errorf("stdout %q", stdout)
	}
	// -runtime needs the key file, which the example only names.
	code, _, stderr = runCLI(t, map[string]string{}, "validate", "-runtime", "-config", filepath.Join("..", "..", "config.example.yaml"))
	if code != 1 || !strings.Contains(stderr, "private_key_file") || !strings.Contains(stderr, "webhook") {
		t.Errorf("-runtime on the example: exit %d, stderr %q", code, stderr)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"frobnicate"}, 2},
		{[]string{"validate"}, 2},
		{[]string{"validate", "-nope"}, 2},
		{[]string{"validate", "-config", "x.yaml", "extra"}, 2},
		{[]string{"validate", "-h"}, 0},
		{[]string{"run", "-h"}, 0},
		{[]string{"version", "-h"}, 0},
		{[]string{"-h"}, 0},
		{[]string{"validate", "-config", "/nonexistent/config.yaml"}, 1},
	}
	for _, tc := range tests {
		code, _, stderr := runCLI(t, map[string]string{}, tc.args...)
		if code != tc.code {
			t.Errorf("scaler %v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runCLI(t, nil, "version")
	if code != 0 || !strings.HasPrefix(stdout, "scaler dev (revision ") || !strings.Contains(stdout, "go1") {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

const runConfig = `
github:
  api_url: http://127.0.0.1:1/
webhook:
  listen: 127.0.0.1:0
metrics:
  listen: METRICS
admin:
  listen: 127.0.0.1:0
store:
  path: STORE
log:
  level: debug
pools:
  - name: linux
    scope: {org: acme}
    labels: [linux-4core]
    max_runners: 2
    provisioner: local
provisioners:
  local:
    type: local
`

// TestRunServesMetricsAndStops runs the daemon in-process, scrapes its
// metrics over loopback and stops it by cancelling the context, as SIGTERM does.
func TestRunServesMetricsAndStops(t *testing.T) {
	dir := t.TempDir()
	metricsAddr := freePort(t)
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := strings.NewReplacer("METRICS", metricsAddr, "STORE", filepath.Join(dir, "state.db")).Replace(runConfig)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SCALER_GITHUB_TOKEN": "ghp_DONOTLEAK", "SCALER_WEBHOOK_SECRET": "whsec_DONOTLEAK"}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- cli(ctx, []string{"run", "-config", cfgPath}, env, &stdout, &stderr) }()

	var body string
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// 503 while the daemon is starting.
			if resp.StatusCode == http.StatusOK {
				body = string(b)
				break
			}
		}
		select {
		case code := <-done:
			t.Fatalf("daemon exited early with %d: %s", code, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never served: %v\n%s", err, stderr.String())
		}
	}
	for _, want := range []string{`runnerscaler_build_info{goversion="go`, "go_goroutines", "process_"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if resp, err := http.Get("http://" + metricsAddr + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("healthz: %v", err)
	} else {
		resp.Body.Close()
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after cancel: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("daemon did not stop after cancel")
	}
	logs := stderr.String()
	if !strings.Contains(logs, `"msg":"scaler starting"`) || !strings.Contains(logs, `"msg":"scaler stopped"`) {
		t.Errorf("missing start/stop log lines:\n%s", logs)
	}
	if strings.Contains(logs, "DONOTLEAK") || strings.Contains(body, "DONOTLEAK") {
		t.Error("a secret reached the logs or metrics")
	}
}

func TestRunRefusesInvalidConfig(t *testing.T) {
	path := filepath.Join("..", "..", "internal", "config", "testdata", "three-errors.yaml")
	code, _, stderr := runCLI(t, map[string]string{}, "run", "-config", path)
	if code != 1 || strings.Count(stderr, "\n") < 3 {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
