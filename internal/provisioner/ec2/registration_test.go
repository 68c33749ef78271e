package ec2

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/runnerscaler/runnerscaler/internal/clocktest"
)

func get(t *testing.T, h http.Handler, method, path, auth string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return rec, body
}

func testBundle() Bundle {
	return Bundle{RunnerName: "r1", Pool: "p", Labels: []string{"a", "b"}, URL: "https://github.com/o",
		JITConfig: "the-jit-config", PackageURL: "https://dl/x.tar.gz", PackageSHA256: "abc"}
}

func TestRegistrationFetchOnce(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	s := NewRegistrationServer(WithLogger(zap.New(core)))
	tok, err := s.Offer(testBundle(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	rec, body := get(t, s, http.MethodGet, RegistrationPath, "Bearer "+tok.Reveal())
	if rec.Code != http.StatusOK || body["jit_config"] != "the-jit-config" || body["runner_name"] != "r1" ||
		body["package_sha256"] != "abc" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %v", rec.Code, body)
	}
	if rec, _ := get(t, s, http.MethodGet, RegistrationPath, "Bearer "+tok.Reveal()); rec.Code != http.StatusGone {
		t.Errorf("second fetch: %d, want 410", rec.Code)
	}
	if rec, _ := get(t, s, http.MethodGet, RegistrationPath, "bearer "+tok.Reveal()); rec.Code != http.StatusGone {
		t.Errorf("scheme is case-insensitive; got %d", rec.Code)
	}
	for _, e := range logs.All() {
		line, _ := json.Marshal(e.ContextMap())
		if strings.Contains(string(line)+e.Message, tok.Reveal()) || strings.Contains(string(line), "the-jit-config") {
			t.Errorf("secret logged: %s %s", e.Message, line)
		}
	}
	if n := s.Outstanding(); n != 0 {
		t.Errorf("%d outstanding", n)
	}
}

func TestRegistrationRefusals(t *testing.T) {
	s := NewRegistrationServer()
	tok, _ := s.Offer(testBundle(), time.Minute)
	tests := []struct {
		name, method, path, auth string
		want                     int
	}{
		{"no header", http.MethodGet, RegistrationPath, "", http.StatusUnauthorized},
		{"not bearer", http.MethodGet, RegistrationPath, "Basic " + tok.Reveal(), http.StatusUnauthorized},
		{"empty bearer", http.MethodGet, RegistrationPath, "Bearer ", http.StatusUnauthorized},
		{"unknown token", http.MethodGet, RegistrationPath, "Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", http.StatusUnauthorized},
		{"token prefix", http.MethodGet, RegistrationPath, "Bearer " + tok.Reveal()[:20], http.StatusUnauthorized},
		{"wrong method", http.MethodPost, RegistrationPath, "Bearer " + tok.Reveal(), http.StatusMethodNotAllowed},
		{"wrong path", http.MethodGet, "/instance/v1/other", "Bearer " + tok.Reveal(), http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, _ := get(t, s, tc.method, tc.path, tc.auth)
			if rec.Code != tc.want {
				t.Errorf("%d, want %d", rec.Code, tc.want)
			}
			if tc.want == http.StatusUnauthorized && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Error("no WWW-Authenticate: Bearer")
			}
		})
	}
	// None of the refusals used the token up.
	if rec, _ := get(t, s, http.MethodGet, RegistrationPath, "Bearer "+tok.Reveal()); rec.Code != http.StatusOK {
		t.Errorf("fetch after refusals: %d", rec.Code)
	}
}

func TestRegistrationExpiry(t *testing.T) {
	clock := clocktest.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	s := NewRegistrationServer(WithClock(clock.Now))
	early, _ := s.Offer(testBundle(), 10*time.Minute)
	late, _ := s.Offer(testBundle(), 10*time.Minute)

	clock.Advance(10*time.Minute - time.Second)
	if rec, _ := get(t, s, http.MethodGet, RegistrationPath, "Bearer "+early.Reveal()); rec.Code != http.StatusOK {
		t.Fatalf("fetch just before the bootstrap timeout: %d", rec.Code)
	}
	clock.Advance(time.Second)
	if rec, body := get(t, s, http.MethodGet, RegistrationPath, "Bearer "+late.Reveal()); rec.Code != http.StatusGone ||
		!strings.Contains(body["error"].(string), "expired") {
		t.Fatalf("fetch at the bootstrap timeout: %d %v", rec.Code, body)
	}
	if n := s.Outstanding(); n != 0 {
		t.Errorf("%d outstanding after expiry", n)
	}
	// Tombstones answer 410 for a while, then the tokens are forgotten.
	clock.Advance(tombstoneRetention)
	if rec, _ := get(t, s, http.MethodGet, RegistrationPath, "Bearer "+late.Reveal()); rec.Code != http.StatusUnauthorized {
		t.Errorf("after pruning: %d, want 401", rec.Code)
	}
	s.mu.Lock()
	n := len(s.entries)
	s.mu.Unlock()
	if n != 0 {
		t.Errorf("%d entries kept after pruning", n)
	}
}

func TestRegistrationRevoke(t *testing.T) {
	s := NewRegistrationServer()
	a, _ := s.Offer(testBundle(), time.Minute)
	b, _ := s.Offer(testBundle(), time.Minute)
	s.Bind(a, "i-aaa")
	s.RevokeInstance("i-aaa")
	s.Revoke(b)
	s.RevokeInstance("i-unknown")
	for _, tok := range []string{a.Reveal(), b.Reveal()} {
		if rec, body := get(t, s, http.MethodGet, RegistrationPath, "Bearer "+tok); rec.Code != http.StatusGone ||
			!strings.Contains(body["error"].(string), "revoked") {
			t.Errorf("revoked token: %d %v", rec.Code, body)
		}
	}
	if _, err := s.Offer(testBundle(), 0); err == nil {
		t.Error("a zero ttl must be refused")
	}
}

func TestRegistrationConcurrentFetchesServeOnce(t *testing.T) {
	s := NewRegistrationServer()
	srv := httptest.NewServer(s)
	defer srv.Close()
	tok, _ := s.Offer(testBundle(), time.Minute)
	var ok, gone atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, srv.URL+RegistrationPath, nil)
			req.Header.Set("Authorization", "Bearer "+tok.Reveal())
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				ok.Add(1)
			case http.StatusGone:
				gone.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || gone.Load() != 15 {
		t.Errorf("%d served, %d gone; want 1 and 15", ok.Load(), gone.Load())
	}
}
