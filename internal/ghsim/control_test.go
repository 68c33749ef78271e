package ghsim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

func ctlServer(t *testing.T) *Server {
	t.Helper()
	s, err := New(Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// ctlDo calls the control handler from a loopback address and decodes the
// JSON answer into out (when not nil).
func ctlDo(t *testing.T, s *Server, method, path, body string, wantStatus int, out any) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	req.RemoteAddr = "127.0.0.1:40000"
	rec := httptest.NewRecorder()
	s.control.ServeHTTP(rec, req)
	if rec.Code != wantStatus {
		t.Fatalf("%s %s: %d %s, want %d", method, path, rec.Code, rec.Body, wantStatus)
	}
	if rec.Code != http.StatusNoContent {
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("%s %s: Content-Type %q", method, path, ct)
		}
		var msg struct {
			Message *string `json:"message"`
		}
		if rec.Code >= 400 && (json.Unmarshal(rec.Body.Bytes(), &msg) != nil || msg.Message == nil) {
			t.Fatalf("%s %s: error body %q has no message", method, path, rec.Body)
		}
	}
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: %v in %q", method, path, err, rec.Body)
		}
	}
	return rec
}

func TestControlLoopbackOnly(t *testing.T) {
	s := ctlServer(t)
	for addr, want := range map[string]int{
		"192.0.2.1:1234":       http.StatusForbidden,
		"10.0.0.8:80":          http.StatusForbidden,
		"[2001:db8::1]:80":     http.StatusForbidden,
		"garbage":              http.StatusForbidden,
		"127.0.0.1:5555":       http.StatusOK,
		"127.8.9.10:5555":      http.StatusOK,
		"[::1]:5555":           http.StatusOK,
		"[::ffff:127.0.0.1]:1": http.StatusOK,
	} {
		req := httptest.NewRequest(http.MethodGet, "/_sim/stats", nil)
		req.RemoteAddr = addr
		rec := httptest.NewRecorder()
		s.control.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("from %s: %d, want %d", addr, rec.Code, want)
		}
	}

	// Over a real loopback connection, through the full handler.
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/_sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("loopback GET /_sim/stats: %d", resp.StatusCode)
	}
}

func TestControlRouting(t *testing.T) {
	s := ctlServer(t)
	ctlDo(t, s, http.MethodGet, "/_sim/nope", "", http.StatusNotFound, nil)
	ctlDo(t, s, http.MethodGet, "/_sim/", "", http.StatusNotFound, nil)
	ctlDo(t, s, http.MethodPost, "/_sim/jobs/abc/cancel", "", http.StatusNotFound, nil)
	rec := ctlDo(t, s, http.MethodPut, "/_sim/jobs", "", http.StatusMethodNotAllowed, nil)
	if a := rec.Header().Get("Allow"); a != "GET, POST" {
		t.Fatalf("Allow %q", a)
	}
	ctlDo(t, s, http.MethodGet, "/_sim/jobs/1/cancel", "", http.StatusMethodNotAllowed, nil)
	ctlDo(t, s, http.MethodDelete, "/_sim/stats", "", http.StatusMethodNotAllowed, nil)
	ctlDo(t, s, http.MethodGet, "/_sim/stats/", "", http.StatusOK, nil) // a trailing slash is tolerated
}

func TestControlJobs(t *testing.T) {
	s := ctlServer(t)
	var created struct{ IDs []int64 }
	ctlDo(t, s, http.MethodPost, "/_sim/jobs",
		`{"repo":"octo-org/app","labels":["self-hosted","linux"],"duration_ms":2000,"count":2,"name":"test"}`,
		http.StatusCreated, &created)
	if len(created.IDs) != 2 {
		t.Fatalf("ids %v", created.IDs)
	}
	var waiting struct{ IDs []int64 }
	ctlDo(t, s, http.MethodPost, "/_sim/jobs", `{"repo":"octo-org/app","labels":["linux"],"waiting":true}`, http.StatusCreated, &waiting)

	// Errors.
	for _, c := range []struct {
		body string
		code int
	}{
		{`{"repo":"octo-org/nope","labels":["x"]}`, http.StatusNotFound},
		{`{"repo":"octo-org/app"}`, http.StatusUnprocessableEntity},
		{`{"repo":"octo-org/app","labels":[""]}`, http.StatusUnprocessableEntity},
		{`{"labels":["x"]}`, http.StatusUnprocessableEntity},
		{`{"repo":"octo-org/app","labels":["x"],"duration_ms":-1}`, http.StatusUnprocessableEntity},
		{`{"repo":"octo-org/app","labels":["x"],"count":-2}`, http.StatusUnprocessableEntity},
		{`{"repo":"octo-org/app","labels":["x"],"count":1000000}`, http.StatusUnprocessableEntity},
		{`{"repo":"octo-org/app","labels":["x"],"colour":"red"}`, http.StatusBadRequest},
		{`{"repo":`, http.StatusBadRequest},
		{``, http.StatusBadRequest},
		{`{"repo":"octo-org/app","labels":"x"}`, http.StatusBadRequest},
	} {
		ctlDo(t, s, http.MethodPost, "/_sim/jobs", c.body, c.code, nil)
	}

	// List, all and by status.
	var all struct{ Jobs []map[string]any }
	ctlDo(t, s, http.MethodGet, "/_sim/jobs", "", http.StatusOK, &all)
	if len(all.Jobs) != 3 {
		t.Fatalf("%d jobs", len(all.Jobs))
	}
	j := all.Jobs[0]
	for _, k := range []string{"id", "run_id", "repo", "name", "labels", "status", "conclusion", "runner_id", "runner_name",
		"runner_group_id", "runner_group_name", "duration_ms", "created_at", "started_at", "completed_at"} {
		if _, ok := j[k]; !ok {
			t.Errorf("job has no %s: %v", k, j)
		}
	}
	if j["repo"] != "octo-org/app" || j["name"] != "test" || j["status"] != "queued" || j["duration_ms"] != 2000.0 ||
		j["started_at"] != nil || j["conclusion"] != nil || j["runner_id"] != nil || j["created_at"] == nil {
		t.Errorf("job %v", j)
	}
	var byStatus struct{ Jobs []CtlJob }
	ctlDo(t, s, http.MethodGet, "/_sim/jobs?status=waiting", "", http.StatusOK, &byStatus)
	if len(byStatus.Jobs) != 1 || byStatus.Jobs[0].ID != waiting.IDs[0] {
		t.Fatalf("waiting jobs %+v", byStatus.Jobs)
	}
	ctlDo(t, s, http.MethodGet, "/_sim/jobs?status=in_progress", "", http.StatusOK, &byStatus)
	if len(byStatus.Jobs) != 0 {
		t.Fatalf("in_progress jobs %+v", byStatus.Jobs)
	}
	ctlDo(t, s, http.MethodGet, "/_sim/jobs?status=running", "", http.StatusUnprocessableEntity, nil)

	// Release and cancel.
	id := waiting.IDs[0]
	var job CtlJob
	ctlDo(t, s, http.MethodPost, "/_sim/jobs/"+ctlItoa(id)+"/release", "", http.StatusOK, &job)
	if job.Status != world.JobQueued {
		t.Fatalf("released job %+v", job)
	}
	ctlDo(t, s, http.MethodPost, "/_sim/jobs/"+ctlItoa(id)+"/release", "", http.StatusConflict, nil)
	ctlDo(t, s, http.MethodPost, "/_sim/jobs/"+ctlItoa(id)+"/cancel", "", http.StatusOK, &job)
	if job.Status != world.JobCompleted || job.Conclusion == nil || *job.Conclusion != "cancelled" || job.CompletedAt == nil {
		t.Fatalf("cancelled job %+v", job)
	}
	ctlDo(t, s, http.MethodPost, "/_sim/jobs/"+ctlItoa(id)+"/cancel", "", http.StatusConflict, nil)
	ctlDo(t, s, http.MethodPost, "/_sim/jobs/99999/cancel", "", http.StatusNotFound, nil)
	ctlDo(t, s, http.MethodPost, "/_sim/jobs/99999/release", "", http.StatusNotFound, nil)
	ctlDo(t, s, http.MethodGet, "/_sim/jobs/"+ctlItoa(id), "", http.StatusOK, &job)
	ctlDo(t, s, http.MethodGet, "/_sim/jobs/99999", "", http.StatusNotFound, nil)
}

func ctlItoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestControlRunnersAndStats(t *testing.T) {
	s := ctlServer(t)
	w := s.World()
	grp, err := w.CreateGroup(world.Scope{Kind: world.Org, Name: "octo-org"}, world.GroupInput{Name: "gpu"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.RegisterRunner(world.RunnerInput{Scope: world.Scope{Kind: world.Org, Name: "octo-org"}, Name: "r1",
		GroupID: grp.ID, Labels: []string{"gpu"}, JIT: true})
	if err != nil {
		t.Fatal(err)
	}
	idle, err := w.RegisterRunner(world.RunnerInput{Scope: world.Scope{Kind: world.Repo, Name: "octo-org/app"}, Name: "r2"})
	if err != nil {
		t.Fatal(err)
	}
	// A lag keeps the API's busy flag false while the truth is busy.
	ctlDo(t, s, http.MethodPost, "/_sim/config", `{"busy_lag_ms":3600000}`, http.StatusOK, nil)
	if err := w.RunnerOnline(r.ID); err != nil {
		t.Fatal(err)
	}
	var created struct{ IDs []int64 }
	ctlDo(t, s, http.MethodPost, "/_sim/jobs", `{"repo":"octo-org/app","labels":["gpu"]}`, http.StatusCreated, &created)

	var out struct{ Runners []CtlRunner }
	ctlDo(t, s, http.MethodGet, "/_sim/runners", "", http.StatusOK, &out)
	if len(out.Runners) != 2 {
		t.Fatalf("runners %+v", out.Runners)
	}
	got := out.Runners[0]
	if got.ID != r.ID || got.Name != "r1" || got.Scope != "org:octo-org" || got.GroupID != grp.ID || got.Group != "gpu" ||
		!got.Busy || got.VisibleBusy || !got.Ephemeral || !got.JIT || got.JobID == nil || *got.JobID != created.IDs[0] ||
		got.Status != "online" || len(got.Labels) == 0 {
		t.Errorf("busy runner %+v", got)
	}
	other := out.Runners[1]
	if other.ID != idle.ID || other.Scope != "repo:octo-org/app" || other.Group != "Default" || other.Busy || other.JobID != nil ||
		other.Status != "offline" {
		t.Errorf("idle runner %+v", other)
	}
	var raw map[string][]map[string]any
	ctlDo(t, s, http.MethodGet, "/_sim/runners", "", http.StatusOK, &raw)
	for _, k := range []string{"id", "name", "scope", "group_id", "group", "labels", "status", "busy", "visible_busy", "ephemeral", "jit", "job_id"} {
		if _, ok := raw["runners"][0][k]; !ok {
			t.Errorf("runner has no %s", k)
		}
	}

	var st StatsSnapshot
	ctlDo(t, s, http.MethodGet, "/_sim/stats", "", http.StatusOK, &st)
	if st.Jobs.InProgress != 1 || st.APICalls == nil {
		t.Errorf("stats %+v", st)
	}
	var rawStats map[string]any
	ctlDo(t, s, http.MethodGet, "/_sim/stats", "", http.StatusOK, &rawStats)
	for _, k := range []string{"api_calls", "api_calls_total", "webhooks", "jobs", "violations"} {
		if _, ok := rawStats[k]; !ok {
			t.Errorf("stats has no %s", k)
		}
	}
}

func TestControlFaults(t *testing.T) {
	s := ctlServer(t)
	var rule FaultRule
	ctlDo(t, s, http.MethodPost, "/_sim/faults",
		`{"route":"POST /orgs/{org}/actions/runners/generate-jitconfig","status":502,"probability":0.3,"latency_ms":0,"count":10}`,
		http.StatusCreated, &rule)
	if rule.ID == 0 || rule.Status != 502 || rule.Probability != 0.3 || rule.Count != 10 || rule.Remaining == nil || *rule.Remaining != 10 {
		t.Fatalf("rule %+v", rule)
	}
	var second FaultRule
	ctlDo(t, s, http.MethodPost, "/_sim/faults", `{"route":"*","reset":true}`, http.StatusCreated, &second)
	ctlDo(t, s, http.MethodPost, "/_sim/faults", `{"route":"*","status":200}`, http.StatusUnprocessableEntity, nil)
	ctlDo(t, s, http.MethodPost, "/_sim/faults", `{"route":"*","status":"x"}`, http.StatusBadRequest, nil)

	var list struct{ Faults []map[string]any }
	ctlDo(t, s, http.MethodGet, "/_sim/faults", "", http.StatusOK, &list)
	if len(list.Faults) != 2 || list.Faults[0]["hits"] != 0.0 || list.Faults[0]["remaining"] != 10.0 || list.Faults[1]["remaining"] != nil {
		t.Fatalf("faults %v", list.Faults)
	}
	ctlDo(t, s, http.MethodDelete, "/_sim/faults/"+ctlItoa(second.ID), "", http.StatusNoContent, nil)
	ctlDo(t, s, http.MethodDelete, "/_sim/faults/"+ctlItoa(second.ID), "", http.StatusNotFound, nil)
	ctlDo(t, s, http.MethodDelete, "/_sim/faults", "", http.StatusNoContent, nil)
	ctlDo(t, s, http.MethodGet, "/_sim/faults", "", http.StatusOK, &list)
	if len(list.Faults) != 0 {
		t.Fatalf("faults after DELETE %v", list.Faults)
	}
}

func TestControlWebhooks(t *testing.T) {
	s := ctlServer(t)
	var st HookSettings
	ctlDo(t, s, http.MethodGet, "/_sim/webhooks", "", http.StatusOK, &st)
	if st.URL != "" || st.DropProbability != 0 {
		t.Fatalf("settings %+v", st)
	}
	ctlDo(t, s, http.MethodPost, "/_sim/webhooks", `{"drop_probability":0.2}`, http.StatusOK, &st)
	if st.DropProbability != 0.2 || st.URL != "" {
		t.Fatalf("settings %+v", st)
	}
	ctlDo(t, s, http.MethodPost, "/_sim/webhooks", `{"url":"http://127.0.0.1:9/hook"}`, http.StatusOK, &st)
	if st.DropProbability != 0.2 || st.URL != "http://127.0.0.1:9/hook" {
		t.Fatalf("settings %+v", st)
	}
	ctlDo(t, s, http.MethodPost, "/_sim/webhooks", `{"drop_probability":1.5}`, http.StatusUnprocessableEntity, nil)
	ctlDo(t, s, http.MethodPost, "/_sim/webhooks", `{"url":"not a url"}`, http.StatusUnprocessableEntity, nil)
	ctlDo(t, s, http.MethodPost, "/_sim/webhooks", `{"secret":"x"}`, http.StatusBadRequest, nil)
	ctlDo(t, s, http.MethodGet, "/_sim/webhooks", "", http.StatusOK, &st)
	if st.DropProbability != 0.2 || st.URL != "http://127.0.0.1:9/hook" {
		t.Fatalf("settings after bad input %+v", st)
	}
	ctlDo(t, s, http.MethodPost, "/_sim/webhooks", `{"url":""}`, http.StatusOK, &st)
	if st.URL != "" {
		t.Fatalf("url not cleared: %+v", st)
	}
}

func TestControlWorld(t *testing.T) {
	s := ctlServer(t)
	var sum CtlWorld
	ctlDo(t, s, http.MethodGet, "/_sim/world", "", http.StatusOK, &sum)
	if sum.Enterprise.Slug != "octo-ent" || len(sum.Orgs) != 2 || len(sum.Repos) != 3 || len(sum.Groups) != 3 {
		t.Fatalf("default world %+v", sum)
	}
	spec := world.Spec{
		Orgs: []world.OrgSpec{{Login: "new-org", Repos: []world.RepoSpec{{Name: "svc", Private: true}}}},
		Groups: []world.GroupSpec{{Scope: "org:new-org", Name: "fast", Visibility: "selected",
			Repositories: []string{"new-org/svc"}}},
	}
	body, _ := json.Marshal(spec)
	ctlDo(t, s, http.MethodPost, "/_sim/world", string(body), http.StatusOK, &sum)
	var org CtlOrg
	for _, o := range sum.Orgs {
		if o.Login == "new-org" {
			org = o
		}
	}
	if org.ID == 0 || org.InstallationID != installationIDFor(org.ID) {
		t.Fatalf("orgs %+v", sum.Orgs)
	}
	found := false
	for _, g := range sum.Groups {
		found = found || (g.Scope == "org:new-org" && g.Name == "fast" && g.Visibility == "selected")
	}
	if !found || len(sum.Repos) != 4 {
		t.Fatalf("world after apply %+v", sum)
	}
	if _, ok := s.World().Repo("new-org/svc"); !ok {
		t.Fatal("repository not added")
	}

	ctlDo(t, s, http.MethodPost, "/_sim/world", `{"orgs":[{"login":""}]}`, http.StatusUnprocessableEntity, nil)
	ctlDo(t, s, http.MethodPost, "/_sim/world", `{"groups":[{"scope":"org:nobody","name":"g"}]}`, http.StatusNotFound, nil)
	ctlDo(t, s, http.MethodPost, "/_sim/world", `{"groups":[{"scope":"org:new-org","name":"fast"}]}`, http.StatusConflict, nil)
	ctlDo(t, s, http.MethodPost, "/_sim/world", `{"groups":[{"scope":"planet:x","name":"g"}]}`, http.StatusUnprocessableEntity, nil)
	ctlDo(t, s, http.MethodPost, "/_sim/world", `{"orgz":[]}`, http.StatusBadRequest, nil)
}

func TestControlConfig(t *testing.T) {
	s := ctlServer(t)
	var cfg struct {
		BusyLagMS int64 `json:"busy_lag_ms"`
	}
	ctlDo(t, s, http.MethodGet, "/_sim/config", "", http.StatusOK, &cfg)
	if cfg.BusyLagMS != 0 {
		t.Fatalf("config %+v", cfg)
	}
	ctlDo(t, s, http.MethodPost, "/_sim/config", `{"busy_lag_ms":30000}`, http.StatusOK, &cfg)
	if cfg.BusyLagMS != 30000 || s.World().BusyLag().Milliseconds() != 30000 {
		t.Fatalf("config %+v, world %v", cfg, s.World().BusyLag())
	}
	ctlDo(t, s, http.MethodGet, "/_sim/config", "", http.StatusOK, &cfg)
	if cfg.BusyLagMS != 30000 {
		t.Fatalf("config %+v", cfg)
	}
	ctlDo(t, s, http.MethodPost, "/_sim/config", `{"busy_lag_ms":-1}`, http.StatusUnprocessableEntity, nil)
	ctlDo(t, s, http.MethodPost, "/_sim/config", `{"busy_lag":"30s"}`, http.StatusBadRequest, nil)
	ctlDo(t, s, http.MethodPost, "/_sim/config", `{}`, http.StatusOK, &cfg)
	if cfg.BusyLagMS != 30000 {
		t.Fatalf("an empty change changed the lag: %+v", cfg)
	}
}
