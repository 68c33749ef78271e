package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/store"
)

const crashConfig = `
github:
  api_url: http://127.0.0.1:1/
webhook:
  listen: WEBHOOK
  path: /webhook
metrics:
  listen: METRICS
admin:
  listen: 127.0.0.1:0
store:
  path: STORE
log:
  level: info
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

// daemon is a `scaler run` child process.
type daemon struct {
	*proc
	webhookURL, healthURL string
}

func startDaemon(t *testing.T, name, dir, cfgPath string, env []string, webhookAddr, metricsAddr string) daemon {
	t.Helper()
	d := daemon{
		proc:       startProc(t, name, dir, env, scalerExe(t), "run", "-config", cfgPath),
		webhookURL: "http://" + webhookAddr + "/webhook",
		healthURL:  "http://" + metricsAddr + "/healthz",
	}
	// Ready when /healthz answers: both listeners are bound by then.
	waitFor(t, name+" healthy", func() bool {
		if !d.running() {
			t.Fatalf("%s exited before it was ready: %s", name, d.stderr.String())
		}
		resp, err := http.Get(d.healthURL)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return d
}

// TestCrashLosesNoAcknowledgedDelivery is the crash test of issue #4:
// `scaler run` as a child process takes 2,000 signed deliveries from 32
// concurrent senders over loopback and is SIGKILLed once about half have been
// acknowledged. Restarted on the same store, it must start and take new
// deliveries; after it stops, every delivery that was answered 2xx, before
// the crash or after, must be in the store.
func TestCrashLosesNoAcknowledgedDelivery(t *testing.T) {
	skipWithoutProcesses(t)
	dir := t.TempDir()
	storePath := filepath.Join(dir, "state.db")
	webhookAddr, metricsAddr := freePort(t), freePort(t)
	for metricsAddr == webhookAddr {
		metricsAddr = freePort(t)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := strings.NewReplacer("WEBHOOK", webhookAddr, "METRICS", metricsAddr, "STORE", storePath).Replace(crashConfig)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	const whSecret = "whsec_crash_DONOTLEAK"
	env := []string{"SCALER_GITHUB_TOKEN=ghp_crash_DONOTLEAK", "SCALER_WEBHOOK_SECRET=" + whSecret}

	first := startDaemon(t, "scaler run (first)", dir, cfgPath, env, webhookAddr, metricsAddr)
	const total, senders, killAt = 2000, 32, 1000
	var killOnce sync.Once
	var killedAfter int
	load := ingestLoad{URL: first.webhookURL, Secret: whSecret, N: total, C: senders, Size: 6 << 10, Timeout: 10 * time.Second,
		OnAck: func(_ string, acked int) {
			if acked >= killAt {
				killOnce.Do(func() {
					killedAfter = acked
					if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
						t.Errorf("SIGKILL: %v", err)
					}
				})
			}
		}}
	before, err := load.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-first.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon outlived SIGKILL")
	}
	if ws, ok := first.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("first daemon ended with %v, not by SIGKILL (was it killed at all? %d acknowledged)", first.cmd.ProcessState, len(before.Acked))
	}
	t.Logf("before the crash: %d acknowledged (kill sent at %d), %d sent, statuses %v",
		len(before.Acked), killedAfter, before.Sent, before.Codes)
	if len(before.Acked) < killAt || len(before.Acked) == total {
		t.Fatalf("%d acknowledged: the kill did not land mid-stream", len(before.Acked))
	}

	second := startDaemon(t, "scaler run (restarted)", dir, cfgPath, env, webhookAddr, metricsAddr)
	after, err := ingestLoad{URL: second.webhookURL, Secret: whSecret, N: 100, C: 8, Size: 6 << 10, Timeout: 10 * time.Second}.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Acked) != 100 {
		t.Errorf("restarted daemon acknowledged %d of 100 new deliveries: %v %s", len(after.Acked), after.Codes, after.FirstErr)
	}
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := second.exitCode(t); code != 0 {
		t.Errorf("restarted daemon exit %d after SIGTERM", code)
	}

	st, err := store.Open(context.Background(), storePath, store.Options{})
	if err != nil {
		t.Fatalf("the store does not open after the crash and restart: %v", err)
	}
	defer st.Close()
	lost := 0
	for _, g := range append(before.Acked, after.Acked...) {
		ok, err := st.HasDelivery(context.Background(), g)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			lost++
		}
	}
	n, _ := st.CountDeliveries(context.Background())
	t.Logf("store: %d deliveries; %d acknowledged before the crash, %d after; %d lost", n, len(before.Acked), len(after.Acked), lost)
	if lost != 0 {
		t.Errorf("%d acknowledged deliveries lost", lost)
	}
	for _, p := range []*proc{first.proc, second.proc} {
		if out := p.stdout.String() + p.stderr.String(); strings.Contains(out, "DONOTLEAK") {
			t.Errorf("%s printed a secret", p.name)
		}
	}
	if !strings.Contains(second.stderr.String(), `"msg":"store open"`) {
		t.Errorf("restarted daemon did not log the store opening:\n%s", second.stderr.String())
	}
}
