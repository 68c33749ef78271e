package main

import (
	"context"
	"database/sql"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

func TestReadiness(t *testing.T) {
	r := newReadiness()
	now := time.Now()
	r.now = func() time.Time { return now }
	srv := httptest.NewServer(earlyMux(r))
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz before start-up: %d", code)
	}
	code, body := get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "store not open") || !strings.Contains(body, "GitHub has not answered") {
		t.Errorf("/readyz before start-up: %d %q", code, body)
	}
	r.config.Store(true)
	r.store.Store(true)
	r.provisioners.Store(true)
	r.started.Store(true)
	r.github.ObserveRequest("GET /rate_limit", 502, time.Millisecond) // a server error is no answer
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "GitHub has not answered") {
		t.Errorf("/readyz after a 502 only: %d %q", code, body)
	}
	r.github.ObserveRequest("GET /orgs/{org}/actions/runners", 200, time.Millisecond)
	if code, body := get("/readyz"); code != http.StatusOK || body != "ready\n" {
		t.Errorf("/readyz when ready: %d %q", code, body)
	}
	now = now.Add(githubFreshness + time.Minute)
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "GitHub last answered") {
		t.Errorf("/readyz after GitHub went quiet: %d %q", code, body)
	}
}

// /readyz says 503 "store not open" while the store cannot be opened (here
// another connection holds its write lock, so the schema cannot be
// created), and stops saying so once it is open.
func TestReadyzWaitsForTheStore(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "state.db")
	db, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"PRAGMA journal_mode=WAL", "BEGIN IMMEDIATE", "CREATE TABLE hold (x)"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	released := false
	release := func() {
		if !released {
			released = true
			if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer release()

	metricsAddr := freePort(t)
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := strings.NewReplacer("METRICS", metricsAddr, "STORE", dbPath).Replace(runConfig)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SCALER_GITHUB_TOKEN": "ghp_x", "SCALER_WEBHOOK_SECRET": "whsec_x"}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- cli(rctx, []string{"run", "-config", cfgPath}, env, &stdout, &stderr) }()

	readyz := func() (int, string) {
		resp, err := http.Get("http://" + metricsAddr + "/readyz")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitReadyz := func(what string, ok func(int, string) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, body := readyz()
			if ok(code, body) {
				return
			}
			select {
			case c := <-done:
				t.Fatalf("daemon exited with %d: %s", c, stderr.String())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: last /readyz %d %q", what, code, body)
			}
		}
	}
	waitReadyz("503 while the store is locked", func(code int, body string) bool {
		return code == http.StatusServiceUnavailable && strings.Contains(body, "store not open")
	})
	release()
	waitReadyz("the store open", func(code int, body string) bool {
		return code != 0 && !strings.Contains(body, "store not open")
	})
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d: %s", code, stderr.String())
	}
}

// Under systemd (Type=notify) the daemon says READY=1 once it serves and
// STOPPING=1 when it begins to stop.
func TestRunNotifiesSystemd(t *testing.T) {
	dir := t.TempDir()
	sockPath := filepath.Join(dir, "notify.sock")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	got := make(chan string, 4)
	go func() {
		buf := make([]byte, 256)
		for {
			n, _, err := sock.ReadFromUnix(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
		}
	}()
	metricsAddr := freePort(t)
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := strings.NewReplacer("METRICS", metricsAddr, "STORE", filepath.Join(dir, "state.db")).Replace(runConfig)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SCALER_GITHUB_TOKEN": "ghp_x", "SCALER_WEBHOOK_SECRET": "whsec_x", "NOTIFY_SOCKET": sockPath}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- cli(ctx, []string{"run", "-config", cfgPath}, env, &stdout, &stderr) }()
	expect := func(want string) {
		t.Helper()
		select {
		case msg := <-got:
			if msg != want {
				t.Fatalf("systemd was told %q, want %q", msg, want)
			}
		case code := <-done:
			t.Fatalf("daemon exited %d before %s: %s", code, want, stderr.String())
		case <-time.After(15 * time.Second):
			t.Fatalf("no %s within 15 s: %s", want, stderr.String())
		}
	}
	expect("READY=1")
	// Ready means serving: /healthz answers.
	if resp, err := http.Get("http://" + metricsAddr + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz after READY=1: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	cancel()
	expect("STOPPING=1")
	if code := <-done; code != 0 {
		t.Errorf("exit %d: %s", code, stderr.String())
	}
}
