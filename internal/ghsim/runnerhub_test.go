package ghsim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/clocktest"
	"github.com/runnerscaler/runnerscaler/internal/ghsim/simrunner"
	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

// Helpers here are prefixed "hub" so they never collide with the other test
// files of the package.

var hubOrg = world.Scope{Kind: world.Org, Name: "octo-org"}

// hubServer serves a simulator of the default world over httptest.
func hubServer(t *testing.T, mutate func(*Options)) (*Server, *httptest.Server, *clocktest.Clock) {
	t.Helper()
	clock := clocktest.New(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	w, err := world.NewFromSpec(clock, world.DefaultSpec())
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{World: w, Clock: clock, RunnerCommand: "/opt/scaler/bin/scaler"}
	if mutate != nil {
		mutate(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	s.SetURL(ts.URL)
	t.Cleanup(func() {
		_ = s.Close() // ends sessions first, so the httptest server can close
		ts.Close()
	})
	return s, ts, clock
}

// hubEventually polls cond until it holds or 5s pass.
func hubEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hubSession is an open session as a test reads it.
type hubSession struct {
	resp   *http.Response
	cancel context.CancelFunc
	lines  chan simrunner.Message
}

func hubOpen(t *testing.T, base, token string) (*hubSession, int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+simrunner.PathSession, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		cancel()
		return nil, resp.StatusCode
	}
	s := &hubSession{resp: resp, cancel: cancel, lines: make(chan simrunner.Message, 16)}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var m simrunner.Message
			if json.Unmarshal(sc.Bytes(), &m) == nil && m.Type != simrunner.MsgPing {
				s.lines <- m
			}
		}
	}()
	t.Cleanup(s.close)
	return s, resp.StatusCode
}

func (s *hubSession) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next returns the next message; ok is false when the stream ended.
func (s *hubSession) next(t *testing.T) (simrunner.Message, bool) {
	t.Helper()
	select {
	case m, ok := <-s.lines:
		return m, ok
	case <-time.After(5 * time.Second):
		t.Fatal("no session message within 5s")
	}
	return simrunner.Message{}, false
}

func hubPost(t *testing.T, url, auth string, body any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func hubJIT(t *testing.T, s *Server, name string, labels ...string) (world.Runner, string) {
	t.Helper()
	r, enc, err := s.GenerateJITConfig(world.RunnerInput{Scope: hubOrg, Name: name, Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	return r, enc
}

func hubJITToken(t *testing.T, enc string) string {
	t.Helper()
	cfg, err := simrunner.DecodeJIT(enc)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Token.Reveal()
}

func TestJITConfigShapeAndSingleUse(t *testing.T) {
	s, ts, _ := hubServer(t, nil)
	r, enc := hubJIT(t, s, "jit-1", "gpu")

	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		t.Fatalf("JIT config is not base64: %v", err)
	}
	var files map[string]string
	if err := json.Unmarshal(raw, &files); err != nil {
		t.Fatalf("JIT config is not a JSON object of strings: %v", err)
	}
	if len(files) != 3 {
		t.Errorf("files %v, want .runner, .credentials, .credentials_rsaparams", files)
	}
	decode := func(name string) map[string]any {
		b, err := base64.StdEncoding.DecodeString(files[name])
		if err != nil {
			t.Fatalf("%s is not base64: %v", name, err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s is not JSON: %v", name, err)
		}
		return m
	}
	settings := decode(".runner")
	for key, want := range map[string]any{
		"agentId": float64(r.ID), "agentName": "jit-1", "poolId": float64(1), "poolName": "Default",
		"serverUrl": ts.URL + "/", "gitHubUrl": "https://github.com/octo-org", "workFolder": "_work",
		"ephemeral": true, "useV2Flow": true,
	} {
		if settings[key] != want {
			t.Errorf(".runner %s = %v, want %v", key, settings[key], want)
		}
	}
	creds := decode(".credentials")
	data, _ := creds["data"].(map[string]any)
	if creds["scheme"] != "OAuthAccessToken" || data == nil || data["token"] == "" || data["token"] == nil {
		t.Errorf(".credentials = %v", creds)
	}
	rsa := decode(".credentials_rsaparams")
	for _, k := range []string{"d", "dp", "dq", "exponent", "inverseQ", "modulus", "p", "q"} {
		v, _ := rsa[k].(string)
		if _, err := base64.StdEncoding.DecodeString(v); v == "" || err != nil {
			t.Errorf(".credentials_rsaparams %s = %q", k, v)
		}
	}

	tok := data["token"].(string)
	if got, _ := s.World().RunnerByID(r.ID); got.Status != world.StatusOffline || !got.JIT || !got.Ephemeral {
		t.Errorf("before connecting: %+v", got)
	}
	sess, code := hubOpen(t, ts.URL+"/", tok)
	if code != http.StatusOK {
		t.Fatalf("first connect: %d", code)
	}
	hubEventually(t, "runner online", func() bool {
		got, _ := s.World().RunnerByID(r.ID)
		return got.Status == world.StatusOnline
	})
	if _, code := hubOpen(t, ts.URL+"/", tok); code != http.StatusUnauthorized {
		t.Errorf("second connect while the first is open: %d, want 401", code)
	}
	sess.close()
	hubEventually(t, "runner offline", func() bool {
		got, _ := s.World().RunnerByID(r.ID)
		return got.Status == world.StatusOffline
	})
	if _, code := hubOpen(t, ts.URL+"/", tok); code != http.StatusUnauthorized {
		t.Errorf("reconnect with a spent JIT config: %d, want 401", code)
	}
	if v := s.World().Violations(); v != (world.Violations{}) {
		t.Errorf("violations %+v", v)
	}
}

func TestJITRepoAndEnterpriseURLs(t *testing.T) {
	s, _, _ := hubServer(t, nil)
	for _, tc := range []struct {
		scope world.Scope
		url   string
	}{
		{world.Scope{Kind: world.Repo, Name: "octo-org/app"}, "https://github.com/octo-org/app"},
		{world.Scope{Kind: world.Enterprise, Name: "octo-ent"}, "https://github.com/enterprises/octo-ent"},
	} {
		_, enc, err := s.GenerateJITConfig(world.RunnerInput{Scope: tc.scope, Name: "r-" + string(tc.scope.Kind)})
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := simrunner.DecodeJIT(enc)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Settings.GitHubURL != tc.url || !cfg.JIT {
			t.Errorf("%s: gitHubUrl %q, want %q", tc.scope, cfg.Settings.GitHubURL, tc.url)
		}
	}
}

func TestRegistrationTokens(t *testing.T) {
	s, ts, clock := hubServer(t, nil)
	if _, err := s.World().CreateGroup(hubOrg, world.GroupInput{Name: "linux-fleet"}); err != nil {
		t.Fatal(err)
	}
	tok, expires := s.RegistrationToken(hubOrg)
	if len(tok) != 29 || strings.ToUpper(tok) != tok {
		t.Errorf("token %q does not look like GitHub's", tok)
	}
	if want := clock.Now().Add(time.Hour); !expires.Equal(want) {
		t.Errorf("expires %v, want %v", expires, want)
	}
	register := func(req simrunner.RegisterRequest) (int, simrunner.RegisterResponse) {
		t.Helper()
		code, body := hubPost(t, ts.URL+"/"+simrunner.PathRegister, "", req)
		var out simrunner.RegisterResponse
		if code == http.StatusCreated {
			if err := json.Unmarshal(body, &out); err != nil {
				t.Fatal(err)
			}
		}
		return code, out
	}
	// Reusable for many runners, with labels, group and flags as config.sh gives them.
	code, a := register(simrunner.RegisterRequest{Token: tok, URL: "https://github.com/octo-org", Name: "a",
		Labels: []string{"big"}, RunnerGroup: "linux-fleet", Ephemeral: true, OS: "linux", Arch: "arm64"})
	if code != http.StatusCreated {
		t.Fatalf("register a: %d", code)
	}
	ra, ok := s.World().RunnerByID(a.RunnerID)
	if !ok || ra.Name != "a" || !ra.Ephemeral || ra.JIT || ra.GroupID == world.DefaultGroupID ||
		strings.Join(ra.LabelNames(), ",") != "self-hosted,linux,arm64,big" {
		t.Errorf("runner a = %+v", ra)
	}
	if a.Runner.AgentID != a.RunnerID || a.Runner.PoolName != "linux-fleet" || a.Runner.ServerURL != ts.URL+"/" ||
		a.Credentials.Scheme != simrunner.CredentialScheme || a.Credentials.Data.Token == "" {
		t.Errorf("register answer %+v", a)
	}
	code, b := register(simrunner.RegisterRequest{Token: tok, URL: ts.URL + "/octo-org", Name: "b",
		Labels: []string{"only"}, NoDefaultLabels: true})
	if code != http.StatusCreated {
		t.Fatalf("register b with the same token: %d", code)
	}
	if rb, _ := s.World().RunnerByID(b.RunnerID); strings.Join(rb.LabelNames(), ",") != "only" || rb.GroupID != world.DefaultGroupID {
		t.Errorf("runner b = %+v", rb)
	}

	repoTok, _ := s.RegistrationToken(world.Scope{Kind: world.Repo, Name: "octo-org/app"})
	entTok, _ := s.RegistrationToken(world.Scope{Kind: world.Enterprise, Name: "octo-ent"})
	for _, tc := range []struct {
		name string
		req  simrunner.RegisterRequest
		want int
	}{
		{"bad token", simrunner.RegisterRequest{Token: "NOPE", URL: "https://github.com/octo-org", Name: "x"}, 401},
		{"org token for a repo", simrunner.RegisterRequest{Token: tok, URL: "https://github.com/octo-org/app", Name: "x"}, 401},
		{"repo token for the org", simrunner.RegisterRequest{Token: repoTok, URL: "https://github.com/octo-org", Name: "x"}, 401},
		{"name taken", simrunner.RegisterRequest{Token: tok, URL: "https://github.com/octo-org", Name: "A"}, 409},
		{"unknown group", simrunner.RegisterRequest{Token: tok, URL: "https://github.com/octo-org", Name: "x", RunnerGroup: "nope"}, 404},
		{"bad url", simrunner.RegisterRequest{Token: tok, URL: "https://github.com/", Name: "x"}, 400},
		{"repo runner", simrunner.RegisterRequest{Token: repoTok, URL: "https://github.com/octo-org/app", Name: "r", RunnerGroup: "ignored"}, 201},
		{"enterprise runner", simrunner.RegisterRequest{Token: entTok, URL: "https://github.com/enterprises/octo-ent", Name: "e"}, 201},
		{"replace", simrunner.RegisterRequest{Token: tok, URL: "https://github.com/octo-org", Name: "b", Replace: true}, 201},
	} {
		if code, _ := register(tc.req); code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, code, tc.want)
		}
	}
	if _, ok := s.World().RunnerByID(b.RunnerID); ok {
		t.Error("replace kept the old runner b")
	}

	clock.Advance(time.Hour)
	if code, _ := register(simrunner.RegisterRequest{Token: tok, URL: "https://github.com/octo-org", Name: "late"}); code != http.StatusUnauthorized {
		t.Errorf("expired token: %d, want 401", code)
	}
}

func TestRemoveWithRemoveToken(t *testing.T) {
	s, ts, _ := hubServer(t, nil)
	tok, _ := s.RegistrationToken(hubOrg)
	code, body := hubPost(t, ts.URL+"/"+simrunner.PathRegister, "", simrunner.RegisterRequest{Token: tok, URL: "https://github.com/octo-org", Name: "p"})
	if code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, body)
	}
	var reg simrunner.RegisterResponse
	_ = json.Unmarshal(body, &reg)
	cred := reg.Credentials.Data.Token

	if code, _ := hubPost(t, ts.URL+"/"+simrunner.PathRemove, "", simrunner.RemoveRequest{Token: tok, Credentials: cred}); code != http.StatusUnauthorized {
		t.Errorf("a registration token as remove token: %d, want 401", code)
	}
	otherRm, _ := s.RemoveToken(world.Scope{Kind: world.Org, Name: "octo-labs"})
	if code, _ := hubPost(t, ts.URL+"/"+simrunner.PathRemove, "", simrunner.RemoveRequest{Token: otherRm, Credentials: cred}); code != http.StatusUnauthorized {
		t.Errorf("another org's remove token: %d, want 401", code)
	}
	rm, _ := s.RemoveToken(hubOrg)
	if code, _ := hubPost(t, ts.URL+"/"+simrunner.PathRemove, "", simrunner.RemoveRequest{Token: rm, Credentials: "bogus"}); code != http.StatusUnauthorized {
		t.Errorf("bogus credentials: %d, want 401", code)
	}
	if code, body := hubPost(t, ts.URL+"/"+simrunner.PathRemove, "", simrunner.RemoveRequest{Token: rm, Credentials: cred}); code != http.StatusNoContent {
		t.Fatalf("remove: %d %s", code, body)
	}
	if _, ok := s.World().RunnerByID(reg.RunnerID); ok {
		t.Error("runner still registered after remove")
	}
	if _, code := hubOpen(t, ts.URL+"/", cred); code != http.StatusUnauthorized {
		t.Errorf("session after remove: %d, want 401", code)
	}
}

func TestSessionRunsJobAndEphemeralExits(t *testing.T) {
	s, ts, _ := hubServer(t, nil)
	r, enc := hubJIT(t, s, "eph", "gpu")
	tok := hubJITToken(t, enc)
	sess, code := hubOpen(t, ts.URL+"/", tok)
	if code != http.StatusOK {
		t.Fatalf("connect: %d", code)
	}
	hubEventually(t, "online", func() bool { got, _ := s.World().RunnerByID(r.ID); return got.Status == world.StatusOnline })
	ids, err := s.World().CreateJobs(world.JobInput{Repo: "octo-org/app", Labels: []string{"self-hosted", "GPU"}, Duration: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	m, ok := sess.next(t)
	if !ok || m.Type != simrunner.MsgJob || m.Job.ID != ids[0] || m.Job.DurationMS != 1500 || m.Job.Repo != "octo-org/app" {
		t.Fatalf("first message %+v (ok %v)", m, ok)
	}
	if code, _ := hubPost(t, ts.URL+"/"+simrunner.CompletePath(ids[0]), "wrong", nil); code != http.StatusUnauthorized {
		t.Errorf("complete with bad credentials: %d", code)
	}
	if code, body := hubPost(t, ts.URL+"/"+simrunner.CompletePath(ids[0]), tok, nil); code != http.StatusNoContent {
		t.Fatalf("complete: %d %s", code, body)
	}
	m, ok = sess.next(t)
	if !ok || m.Type != simrunner.MsgExit {
		t.Fatalf("after its job an ephemeral runner is told to exit; got %+v (ok %v)", m, ok)
	}
	if _, ok := sess.next(t); ok {
		t.Error("the stream goes on after exit")
	}
	if _, ok := s.World().RunnerByID(r.ID); ok {
		t.Error("ephemeral runner still registered after its job")
	}
	j, _, _ := s.World().Job(ids[0])
	if j.Status != world.JobCompleted || j.Conclusion != "success" {
		t.Errorf("job %+v", j)
	}
	if v := s.World().Violations(); v != (world.Violations{}) {
		t.Errorf("violations %+v", v)
	}
}

// A job queued before the runner connects is assigned inside RunnerOnline,
// before the session loop runs: it must still be delivered, once.
func TestSessionDeliversAssignmentMadeWhileGoingOnline(t *testing.T) {
	s, ts, _ := hubServer(t, nil)
	ids, err := s.World().CreateJobs(world.JobInput{Repo: "octo-org/app", Labels: []string{"linux"}})
	if err != nil {
		t.Fatal(err)
	}
	_, enc := hubJIT(t, s, "late")
	sess, _ := hubOpen(t, ts.URL+"/", hubJITToken(t, enc))
	if m, ok := sess.next(t); !ok || m.Type != simrunner.MsgJob || m.Job.ID != ids[0] {
		t.Fatalf("got %+v", m)
	}
	select {
	case m := <-sess.lines:
		t.Errorf("unexpected second message %+v", m)
	case <-time.After(3 * sessionPoll):
	}
}

// The world may assign a job to a runner marked online without a session
// (tests do); the session that opens later delivers it.
func TestSessionDeliversJobAssignedBeforeConnect(t *testing.T) {
	s, ts, _ := hubServer(t, nil)
	r, enc := hubJIT(t, s, "pre")
	if err := s.World().RunnerOnline(r.ID); err != nil {
		t.Fatal(err)
	}
	ids, _ := s.World().CreateJobs(world.JobInput{Repo: "octo-org/app", Labels: []string{"self-hosted"}})
	sess, _ := hubOpen(t, ts.URL+"/", hubJITToken(t, enc))
	if m, ok := sess.next(t); !ok || m.Type != simrunner.MsgJob || m.Job.ID != ids[0] {
		t.Fatalf("got %+v", m)
	}
}

func TestSessionLostWhileBusyCountsKilledRunner(t *testing.T) {
	s, ts, _ := hubServer(t, nil)
	r, enc := hubJIT(t, s, "doomed")
	sess, _ := hubOpen(t, ts.URL+"/", hubJITToken(t, enc))
	ids, _ := s.World().CreateJobs(world.JobInput{Repo: "octo-org/app", Labels: []string{"self-hosted"}, Duration: time.Hour})
	if m, _ := sess.next(t); m.Type != simrunner.MsgJob {
		t.Fatalf("got %+v", m)
	}
	sess.close() // the process dies
	hubEventually(t, "job_runner_killed", func() bool { return s.World().Violations().JobRunnerKilled == 1 })
	if j, _, _ := s.World().Job(ids[0]); j.Status != world.JobCompleted || j.Conclusion != "failure" {
		t.Errorf("job %+v", j)
	}
	if _, ok := s.World().RunnerByID(r.ID); ok {
		t.Error("an ephemeral runner whose job ended is removed")
	}
}

func TestPersistentRunnerSessions(t *testing.T) {
	s, ts, _ := hubServer(t, nil)
	tok, _ := s.RegistrationToken(hubOrg)
	_, body := hubPost(t, ts.URL+"/"+simrunner.PathRegister, "", simrunner.RegisterRequest{Token: tok, URL: "https://github.com/octo-org", Name: "p"})
	var reg simrunner.RegisterResponse
	_ = json.Unmarshal(body, &reg)
	cred := reg.Credentials.Data.Token

	sess, code := hubOpen(t, ts.URL+"/", cred)
	if code != http.StatusOK {
		t.Fatalf("connect: %d", code)
	}
	if _, code := hubOpen(t, ts.URL+"/", cred); code != http.StatusConflict {
		t.Errorf("second concurrent session: %d, want 409", code)
	}
	// Two jobs, one after the other; the runner stays.
	ids, _ := s.World().CreateJobs(world.JobInput{Repo: "octo-org/app", Labels: []string{"self-hosted"}, Count: 2})
	for i := range ids {
		m, _ := sess.next(t)
		if m.Type != simrunner.MsgJob || m.Job.ID != ids[i] {
			t.Fatalf("message %d: %+v", i, m)
		}
		if code, _ := hubPost(t, ts.URL+"/"+simrunner.CompletePath(m.Job.ID), cred, nil); code != http.StatusNoContent {
			t.Fatalf("complete: %d", code)
		}
	}
	// A cancelled job is withdrawn.
	ids, _ = s.World().CreateJobs(world.JobInput{Repo: "octo-org/app", Labels: []string{"self-hosted"}, Duration: time.Hour})
	if m, _ := sess.next(t); m.Type != simrunner.MsgJob {
		t.Fatalf("got %+v", m)
	}
	if err := s.World().CancelJob(ids[0]); err != nil {
		t.Fatal(err)
	}
	if m, _ := sess.next(t); m.Type != simrunner.MsgCancel || m.JobID != ids[0] {
		t.Fatalf("want cancel, got %+v", m)
	}
	// Reconnect after the session ends; then a delete ends the session.
	sess.close()
	hubEventually(t, "offline", func() bool { got, _ := s.World().RunnerByID(reg.RunnerID); return got.Status == world.StatusOffline })
	// The old session may still be detaching (409) for a moment.
	hubEventually(t, "reconnect", func() bool {
		sess, code = hubOpen(t, ts.URL+"/", cred)
		if code != http.StatusOK && code != http.StatusConflict {
			t.Fatalf("reconnect: %d", code)
		}
		return code == http.StatusOK
	})
	if err := s.World().DeleteRunner(hubOrg, reg.RunnerID); err != nil {
		t.Fatal(err)
	}
	if m, ok := sess.next(t); !ok || m.Type != simrunner.MsgExit {
		t.Fatalf("deleted runner: want exit, got %+v", m)
	}
	if v := s.World().Violations(); v != (world.Violations{}) {
		t.Errorf("violations %+v", v)
	}
}

func TestCloseEndsSessions(t *testing.T) {
	s, ts, _ := hubServer(t, nil)
	r, enc := hubJIT(t, s, "c")
	sess, _ := hubOpen(t, ts.URL+"/", hubJITToken(t, enc))
	hubEventually(t, "online", func() bool { got, _ := s.World().RunnerByID(r.ID); return got.Status == world.StatusOnline })
	done := make(chan struct{})
	go func() { _ = s.Close(); close(done) }()
	if _, ok := sess.next(t); ok {
		t.Error("session still streaming after Close")
	}
	<-done
}

func TestRunnerRoutesRejectJunk(t *testing.T) {
	_, ts, _ := hubServer(t, nil)
	resp, err := http.Post(ts.URL+"/"+simrunner.PathRegister, "application/json", strings.NewReader("{not json"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("junk body: %d", resp.StatusCode)
	}
	if _, code := hubOpen(t, ts.URL+"/", ""); code != http.StatusUnauthorized {
		t.Errorf("no credentials: %d", code)
	}
	resp, err = http.Get(ts.URL + "/_runner/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown route: %d", resp.StatusCode)
	}
}

func TestRunnerScopeFromURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://github.com/octo-org":             "org:octo-org",
		"https://github.com/octo-org/":            "org:octo-org",
		"https://github.com/octo-org/app":         "repo:octo-org/app",
		"https://github.com/enterprises/octo-ent": "enterprise:octo-ent",
		"http://127.0.0.1:9999/octo-org":          "org:octo-org",
	} {
		got, err := runnerScopeFromURL(in)
		if err != nil || got.String() != want {
			t.Errorf("%s: %v %v, want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "https://github.com", "https://github.com/a/b/c", "https://github.com/enterprises/"} {
		if _, err := runnerScopeFromURL(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestSecretsStayOutOfErrors(t *testing.T) {
	s, ts, _ := hubServer(t, nil)
	tok, _ := s.RegistrationToken(hubOrg)
	_, body := hubPost(t, ts.URL+"/"+simrunner.PathRegister, "", simrunner.RegisterRequest{Token: tok, URL: "https://github.com/octo-labs", Name: "x"})
	if bytes.Contains(body, []byte(tok)) {
		t.Errorf("error body quotes the token: %s", body)
	}
	if _, err := simrunner.DecodeJIT("c2VjcmV0LXNlY3JldA=="); err == nil || strings.Contains(err.Error(), "secret") || !errors.Is(err, simrunner.ErrBadJITConfig) {
		t.Errorf("DecodeJIT error %v", err)
	}
}
