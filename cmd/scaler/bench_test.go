package main

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/secret"
	"github.com/runnerscaler/runnerscaler/internal/store"
	"github.com/runnerscaler/runnerscaler/internal/webhook"
)

func TestCheckLoopbackURL(t *testing.T) {
	for raw, ok := range map[string]bool{
		"http://127.0.0.1:8080/webhook": true,
		"http://127.9.9.9/webhook":      true,
		"http://[::1]:8080/webhook":     true,
		"http://localhost:8080/webhook": true,
		"https://LOCALHOST/webhook":     true,
		"http://10.0.0.1:8080/webhook":  false,
		"http://example.com/webhook":    false,
		"http://0.0.0.0:8080/webhook":   false,
		"ftp://127.0.0.1/webhook":       false,
		"127.0.0.1:8080":                false,
		"http://127.0.0.1.nip.io/x":     false,
	} {
		if err := checkLoopbackURL(raw); (err == nil) != ok {
			t.Errorf("%s: %v, want ok=%v", raw, err, ok)
		}
	}
}

func TestLoopbackDialerRefusesOtherAddresses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := loopbackDialer().DialContext(ctx, "tcp", "192.0.2.1:80") // TEST-NET-1
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("dial TEST-NET-1: %v", err)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond, 1: time.Millisecond} {
		if got := percentile(d, p); got != want {
			t.Errorf("p%v = %s, want %s", p, got, want)
		}
	}
	if percentile(nil, 99) != 0 || percentile(d[:1], 99) != time.Millisecond {
		t.Error("edge cases")
	}
}

func TestBenchIngestUsage(t *testing.T) {
	env := map[string]string{"BENCH_SECRET": "whsec_DONOTLEAK"}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"bench"}, 2, "Usage: scaler bench ingest"},
		{[]string{"bench", "egress"}, 2, "unknown benchmark"},
		{[]string{"bench", "ingest", "-url", "http://10.1.2.3:8080/webhook", "-secret-env", "BENCH_SECRET"}, 2, "only loopback"},
		{[]string{"bench", "ingest", "-url", "http://127.0.0.1:1/webhook", "-secret-env", "NOPE"}, 2, "no webhook secret: set NOPE"},
		{[]string{"bench", "ingest", "-secret-env", "BENCH_SECRET", "-c", "0"}, 2, "at least 1"},
		{[]string{"bench", "ingest", "-secret-env", "BENCH_SECRET", "-store", "/nonexistent/state.db"}, 2, "-store"},
		{[]string{"bench", "ingest", "-h"}, 0, "-secret-env"},
	} {
		code, _, stderr := runCLI(t, env, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("scaler %v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
		if strings.Contains(stderr, "DONOTLEAK") {
			t.Errorf("scaler %v printed the secret", tc.args)
		}
	}
}

// TestBenchIngestAgainstIntake runs the load command against the real intake
// and store in this process and checks its report, -store included.
func TestBenchIngestAgainstIntake(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const whSecret = "whsec_bench_DONOTLEAK"
	h := webhook.New(webhook.Config{Secrets: []secret.String{whSecret}}, st)
	srv := httptest.NewServer(webhook.NewServer("", h, "/webhook").Handler)
	defer srv.Close()

	code, stdout, stderr := runCLI(t, map[string]string{"WH": whSecret}, "bench", "ingest",
		"-url", srv.URL+"/webhook", "-secret-env", "WH", "-n", "300", "-c", "8", "-store", path)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, re := range []string{
		`acknowledged: 300 of 300 in \S+ = \d+ deliveries/s`,
		`ack latency: p50 [\d.]+ms  p99 [\d.]+ms  max [\d.]+ms`,
		`status: 202=300\n`,
		`store \S+: 300 of 300 acknowledged deliveries found, 0 missing`,
	} {
		if !regexp.MustCompile(re).MatchString(stdout) {
			t.Errorf("output lacks /%s/:\n%s", re, stdout)
		}
	}
	if n, _ := st.CountDeliveries(context.Background()); n != 300 {
		t.Errorf("%d deliveries stored", n)
	}
	if strings.Contains(stdout+stderr, "DONOTLEAK") {
		t.Error("the secret was printed")
	}
}

// TestIngestLoadBodies: the load generator's bodies are about the size asked
// for and pass the intake's checks (each a new job).
func TestIngestLoadBodies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := webhook.New(webhook.Config{Secrets: []secret.String{"s"}}, st)
	srv := httptest.NewServer(h)
	defer srv.Close()
	var acks []int
	res, err := ingestLoad{URL: srv.URL, Secret: "s", N: 20, C: 1, Size: 6 << 10, Timeout: 5 * time.Second,
		OnAck: func(_ string, n int) { acks = append(acks, n) }}.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Acked) != 20 || res.Codes[202] != 20 || len(acks) != 20 || acks[19] != 20 {
		t.Fatalf("result %+v, acks %v", res, acks)
	}
	jobs, err := st.Jobs(context.Background(), store.JobFilter{Status: store.JobQueued})
	if err != nil || len(jobs) != 20 {
		t.Errorf("%d queued jobs (%v), want 20", len(jobs), err)
	}
}
