package main

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGTERM with drain_on_shutdown: webhooks are answered 503 with
// Retry-After while the idle runners are removed (safely, so it takes at
// least two confirm intervals), no runner is left registered or running,
// and the daemon exits 0.
func TestE2EShutdownDrains(t *testing.T) {
	e := newLCEnv(t, lcSetup{
		seed: 31,
		pools: `  - name: warm
    scope: {org: octo-org}
    labels: [warm]
    min_idle: 3
    max_runners: 4
    provisioner: local`,
		lifecycle: `  reconcile_interval: 2s
  confirm_interval: 1s
  drain_on_shutdown: true
  shutdown_timeout: 20s`,
	})
	d := e.startDaemon("scaler run")
	waitUntil(t, "three idle warm runners", 30*time.Second, func() bool {
		n := 0
		for _, r := range e.runnersOf("warm") {
			if r.Status == "online" && !r.Busy {
				n++
			}
		}
		return n == 3
	}, func() string { return "" })

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The drain takes two confirm intervals at least: the intake is
	// refusing meanwhile.
	var refused *http.Response
	waitUntil(t, "a webhook answered 503 during the drain", 10*time.Second, func() bool {
		resp, err := http.Post("http://"+e.webhookAddr+"/webhook", "application/json", strings.NewReader("{}"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			refused = resp
			return true
		}
		return false
	}, func() string { return "" })
	if refused.Header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After: %v", refused.Header)
	}
	if code := d.exitCode(t); code != 0 {
		t.Errorf("scaler run exit %d after SIGTERM: %s", code, d.stderr.String())
	}
	if rs := e.runnersOf("warm"); len(rs) != 0 {
		t.Errorf("runners still registered after the drain: %+v", rs)
	}
	if n := signalRunnersUnder(e.dir, 0); n != 0 {
		t.Errorf("%d runner processes still running after the drain", n)
	}
	var removed int
	for _, l := range lcLog(d.proc) {
		if l.Msg == "idle runners drained" {
			removed++
		}
	}
	if removed != 1 {
		t.Errorf("drain logged %d times, want once", removed)
	}
	e.stop(d)
}
