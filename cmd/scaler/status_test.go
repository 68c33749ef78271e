package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/admin"
	"github.com/runnerscaler/runnerscaler/internal/secret"
)

const statusTestToken = "adm_status_test_DONOTLEAK"

// fakeStatusSource serves a fixed status.
type fakeStatusSource struct{ st admin.Status }

func (f fakeStatusSource) Status(context.Context) (admin.Status, error) { return f.st, nil }

// sampleAdminStatus is in served form (every runner state, no nil lists), so
// the JSON that comes back decodes to it exactly.
func sampleAdminStatus() admin.Status {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	return admin.Status{
		GeneratedAt: t0,
		Daemon:      admin.Daemon{Version: "v1.2.3", StartedAt: t0.Add(-2 * time.Hour), DaemonID: "d-42"},
		Pools: []admin.PoolStatus{
			{
				Name: "linux", Scope: "org/acme", RunnerGroup: "ci", Labels: []string{"linux-4core"}, Provisioner: "local",
				MinIdle: 1, MaxRunners: 10, Desired: 5,
				Runners: map[string]int{"starting": 2, "idle": 1, "busy": 2, "draining": 1},
				Queued:  2, Running: 2,
			},
			{
				Name: "gpu", Scope: "org/acme", RunnerGroup: "ci", Labels: []string{"gpu"}, Provisioner: "ec2-gpu",
				MinIdle: 0, MaxRunners: 3, Desired: 0,
				Runners: map[string]int{"starting": 0, "idle": 0, "busy": 0, "draining": 0},
			},
		},
		Jobs: admin.JobSummary{
			Queued: 3, Unmatched: 1, Running: 2,
			OldestQueued: []admin.JobEntry{
				{ID: 1001, Repo: "acme/api", Labels: []string{"windows"}, QueuedAt: t0.Add(-7 * time.Minute)},
				{ID: 1002, Repo: "acme/web", Labels: []string{"linux-4core"}, Pool: "linux", QueuedAt: t0.Add(-90 * time.Second)},
			},
			RunningJobs: []admin.JobEntry{
				{ID: 990, Repo: "acme/api", Labels: []string{"linux-4core"}, Pool: "linux", QueuedAt: t0.Add(-time.Hour), StartedAt: t0.Add(-58 * time.Minute), Runner: "linux-a1"},
				{ID: 991, Repo: "acme/web", Labels: []string{"linux-4core"}, Pool: "linux", QueuedAt: t0.Add(-time.Hour), StartedAt: t0.Add(-57 * time.Minute), Runner: "linux-a2"},
			},
		},
		RecentErrors: []admin.ErrorEntry{
			{Time: t0.Add(-3 * time.Minute), Component: "provisioner/ec2", Message: "create instance: InsufficientInstanceCapacity"},
		},
	}
}

// startAdmin serves src on a loopback port and returns its host:port.
func startAdmin(t *testing.T, src admin.Source, token string) string {
	t.Helper()
	srv := httptest.NewServer(admin.Handler(src, secret.String(token), zap.NewNop()))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// startFakeDaemon serves h on a loopback port and returns its host:port.
func startFakeDaemon(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func writeTokenFile(t *testing.T, token string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(path, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tableRow returns the fields of the first line of out whose first field is
// first.
func tableRow(out, first string) []string {
	for line := range strings.SplitSeq(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == first {
			return f
		}
	}
	return nil
}

func TestStatusReport(t *testing.T) {
	addr := startAdmin(t, fakeStatusSource{sampleAdminStatus()}, statusTestToken)
	code, stdout, stderr := runCLI(t, map[string]string{"SCALER_ADMIN_TOKEN": statusTestToken}, "status", "-addr", addr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr %q", stderr)
	}
	for _, tc := range []struct {
		first string
		want  []string
	}{
		{"POOL", []string{"POOL", "PROVISIONER", "MIN", "MAX", "DESIRED", "STARTING", "IDLE", "BUSY", "DRAINING", "QUEUED", "RUNNING"}},
		{"linux", []string{"linux", "local", "1", "10", "5", "2", "1", "2", "1", "2", "2"}},
		{"gpu", []string{"gpu", "ec2-gpu", "0", "3", "0", "0", "0", "0", "0", "0", "0"}},
		{"1001", []string{"1001", "acme/api", "-", "7m0s", "windows"}},
		{"1002", []string{"1002", "acme/web", "linux", "1m30s", "linux-4core"}},
		{"3m0s", []string{"3m0s", "provisioner/ec2", "create", "instance:", "InsufficientInstanceCapacity"}},
	} {
		if got := tableRow(stdout, tc.first); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("row %s = %q, want %q", tc.first, got, tc.want)
		}
	}
	for _, want := range []string{
		"Daemon v1.2.3 (id d-42), up 2h0m0s since 2026-05-01T10:00:00Z",
		"Jobs: 3 queued (1 matching no pool), 2 running",
		"Oldest 2 queued:",
		"Recent errors:",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
	// Pools come before jobs, jobs before errors.
	if p, j, e := strings.Index(stdout, "POOL"), strings.Index(stdout, "Jobs:"), strings.Index(stdout, "Recent errors"); p >= j || j >= e {
		t.Errorf("sections out of order:\n%s", stdout)
	}
}

func TestStatusReportEmpty(t *testing.T) {
	addr := startAdmin(t, fakeStatusSource{admin.Status{Pools: []admin.PoolStatus{{Name: "linux", Provisioner: "local", MaxRunners: 1}}}}, "")
	code, stdout, stderr := runCLI(t, nil, "status", "-addr", addr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got := tableRow(stdout, "linux"); len(got) != 11 {
		t.Errorf("pool row %q", got)
	}
	for _, want := range []string{"Jobs: 0 queued, 0 running", "No recent errors."} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
}

func TestStatusJSON(t *testing.T) {
	addr := startAdmin(t, fakeStatusSource{sampleAdminStatus()}, statusTestToken)
	// A token file ends in a newline more often than not.
	tokenFile := writeTokenFile(t, statusTestToken+"\n")
	code, stdout, stderr := runCLI(t, nil, "status", "-addr", addr, "-token-file", tokenFile, "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !json.Valid([]byte(stdout)) {
		t.Fatalf("not JSON: %s", stdout)
	}
	var got admin.Status
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	if want := sampleAdminStatus(); !reflect.DeepEqual(got, want) {
		t.Errorf("JSON differs from the source's status\n got %+v\nwant %+v", got, want)
	}
}

func TestStatusWrongToken(t *testing.T) {
	addr := startAdmin(t, fakeStatusSource{sampleAdminStatus()}, statusTestToken)
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"wrong", map[string]string{"SCALER_ADMIN_TOKEN": "adm_wrong_DONOTLEAK"}, "refused the admin token (401)"},
		{"none", nil, "requires the admin token (401): put it in a file and pass -token-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.env, "status", "-addr", addr)
			if code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			if stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
			if !strings.Contains(stderr, addr) || !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q, want the address and %q", stderr, tc.want)
			}
			if strings.Contains(stderr, "DONOTLEAK") {
				t.Errorf("a token reached the message: %q", stderr)
			}
		})
	}
}

func TestStatusUnreachable(t *testing.T) {
	addr := freePort(t) // closed again: nothing listens there
	code, stdout, stderr := runCLI(t, nil, "status", "-addr", addr)
	if code != 1 || stdout != "" {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	if !strings.Contains(stderr, "cannot reach the daemon's admin endpoint at "+addr) {
		t.Errorf("stderr %q", stderr)
	}
}

// TestStatusDaemonErrors: each refusal or failure the daemon may answer with
// exits 1 with a message that names the address and says what to do.
func TestStatusDaemonErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
		want string
	}{
		{"forbidden", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, `{"error":"forbidden"}`, http.StatusForbidden)
		}, "run scaler status on the daemon's host"},
		{"not found", http.NotFound, "is this the daemon's admin.listen address"},
		{"unavailable", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, `{"error":"status unavailable: see the daemon's log"}`, http.StatusServiceUnavailable)
		}, "answered 503 Service Unavailable: status unavailable: see the daemon's log"},
		{"not a status", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("ok\n"))
		}, "is not a status"},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://203.0.113.1/", http.StatusFound)
		}, "answered 302 Found"},
		{"slow", func(_ http.ResponseWriter, r *http.Request) {
			<-r.Context().Done() // until the client gives up
		}, "no answer from the daemon's admin endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startFakeDaemon(t, tc.h)
			code, stdout, stderr := runCLI(t, nil, "status", "-addr", addr, "-timeout", "300ms")
			if code != 1 || stdout != "" {
				t.Fatalf("exit %d, stdout %q", code, stdout)
			}
			if !strings.Contains(stderr, addr) || !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q, want the address and %q", stderr, tc.want)
			}
		})
	}
}

const statusConfig = `
webhook:
  listen: 127.0.0.1:0
metrics:
  listen: 127.0.0.1:0
admin:
  listen: ADMIN
  token: TOKEN
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

func writeStatusConfig(t *testing.T, listen, token string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	cfg := strings.NewReplacer("ADMIN", `"`+listen+`"`, "TOKEN", `"`+token+`"`).Replace(statusConfig)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestStatusConfig reads the address and token from the daemon's config; a
// wildcard listen address is reached through loopback.
func TestStatusConfig(t *testing.T) {
	addr := startAdmin(t, fakeStatusSource{sampleAdminStatus()}, statusTestToken)
	_, port, _ := net.SplitHostPort(addr)
	env := map[string]string{"SCALER_GITHUB_TOKEN": "ghp_DONOTLEAK"}

	for _, listen := range []string{addr, "0.0.0.0:" + port} {
		code, stdout, stderr := runCLI(t, env, "status", "-config", writeStatusConfig(t, listen, statusTestToken))
		if code != 0 {
			t.Fatalf("listen %s: exit %d: %s", listen, code, stderr)
		}
		if tableRow(stdout, "linux") == nil {
			t.Errorf("listen %s: no pool row:\n%s", listen, stdout)
		}
	}

	// The environment and -token-file win over the file's token.
	cfgPath := writeStatusConfig(t, addr, "adm_stale_DONOTLEAK")
	envTok := map[string]string{"SCALER_GITHUB_TOKEN": "ghp_DONOTLEAK", "SCALER_ADMIN_TOKEN": statusTestToken}
	if code, _, stderr := runCLI(t, envTok, "status", "-config", cfgPath); code != 0 {
		t.Errorf("token from the environment: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, env, "status", "-config", cfgPath, "-token-file", writeTokenFile(t, statusTestToken)); code != 0 {
		t.Errorf("token from -token-file: exit %d: %s", code, stderr)
	}
	// -addr wins over admin.listen.
	if code, _, stderr := runCLI(t, env, "status", "-config", writeStatusConfig(t, "127.0.0.1:1", statusTestToken), "-addr", addr); code != 0 {
		t.Errorf("-addr with -config: exit %d: %s", code, stderr)
	}

	code, _, stderr := runCLI(t, env, "status", "-config", writeStatusConfig(t, "", ""))
	if code != 1 || !strings.Contains(stderr, "admin.listen is empty") {
		t.Errorf("endpoint off: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, nil, "status", "-config", cfgPath) // no GitHub credentials: invalid
	if code != 1 || !strings.Contains(stderr, cfgPath) {
		t.Errorf("invalid config: exit %d, stderr %q", code, stderr)
	}
}

func TestStatusUsage(t *testing.T) {
	empty := writeTokenFile(t, "\n")
	spaced := writeTokenFile(t, "two words")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"status", "-h"}, 0, "Usage: scaler status"},
		{[]string{"status", "extra"}, 2, "unexpected argument"},
		{[]string{"status", "-nope"}, 2, "-nope"},
		{[]string{"status", "-token", "x"}, 2, "-token"},
		{[]string{"status", "-timeout", "0s"}, 2, "-timeout must be positive"},
		{[]string{"status", "-addr", "localhost"}, 2, "want host:port"},
		{[]string{"status", "-addr", "http://127.0.0.1:9103"}, 2, "want host:port"},
		{[]string{"status", "-addr", "127.0.0.1:99999"}, 2, "port from 1 to 65535"},
		{[]string{"status", "-token-file", filepath.Join(t.TempDir(), "missing")}, 1, "reading the admin token"},
		{[]string{"status", "-token-file", empty}, 1, "is empty"},
		{[]string{"status", "-token-file", spaced}, 1, "printable ASCII"},
	} {
		code, _, stderr := runCLI(t, nil, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("scaler %q: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}
