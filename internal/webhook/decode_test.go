package webhook

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/store"
)

// examples returns the example payloads in testdata by file name; the event
// is the part of the name before the first dot.
func examples(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no example payloads in testdata: %v", err)
	}
	out := make(map[string][]byte, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

func exampleEvent(name string) string { return name[:strings.IndexByte(name, '.')] }

func TestDecodeWorkflowJobExamples(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	ts := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	want := map[string]store.JobEvent{
		"workflow_job.queued.5.json": {Action: "queued", JobID: 289782451, RunID: 2202229078, RepoID: 186853002,
			Repo: "Codertocat/Hello-World", Org: "Octocoders", InstallationID: 3456996, Labels: []string{"ubuntu-latest"},
			Name: "update", WorkflowName: "CodeQL", RunnerID: 5, RunnerName: "GitHub Actions 5", RunnerGroupID: 2,
			RunnerGroupName: "GitHub Actions", At: ts("2021-09-13T02:21:13Z")},
		// action queued, status waiting: the action is the transition.
		"workflow_job.queued.6.json": {Action: "queued", JobID: 12877621891, At: ts("2023-04-19T21:12:12Z")},
		"workflow_job.waiting.7.json": {Action: "waiting", JobID: 12877621891, At: ts("2023-04-19T21:12:12Z"),
			Labels: []string{"self-hosted", "k8s"}},
		// created_at is null here, but in_progress stamps started_at.
		"workflow_job.in_progress.0.json": {Action: "in_progress", JobID: 2832853555, At: ts("2021-06-15T19:22:27Z"),
			Labels: []string{"gpu", "db-app", "dc-03"}, InstallationID: 0},
		"workflow_job.in_progress.4.json": {Action: "in_progress", JobID: 14541957942, RunnerID: 6,
			RunnerName: "GitHub Actions 6", At: ts("2023-06-26T03:31:36Z")},
		"workflow_job.completed.1.json": {Action: "completed", JobID: 289782451, Conclusion: "failure", At: ts("2021-08-05T10:38:16Z")},
		"workflow_job.completed.2.json": {Action: "completed", JobID: 289782451, Conclusion: "success", At: ts("2021-08-05T10:38:16Z")},
	}
	for name, body := range examples(t) {
		if exampleEvent(name) != "workflow_job" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			action, ev, err := decodeWorkflowJob(body, now)
			if err != nil || ev == nil {
				t.Fatalf("decode: %v (event %v)", err, ev)
			}
			if action != ev.Action || ev.JobID == 0 || ev.RepoID == 0 || ev.Repo == "" || ev.Labels == nil {
				t.Errorf("incomplete event %+v", ev)
			}
			w, ok := want[name]
			if !ok {
				return
			}
			if w.RepoID != 0 && !equalEvents(*ev, w) {
				t.Errorf("got  %+v\nwant %+v", *ev, w)
			}
			if ev.Action != w.Action || ev.JobID != w.JobID || !ev.At.Equal(w.At) || ev.Conclusion != w.Conclusion {
				t.Errorf("got action %s job %d at %s conclusion %q, want %s %d %s %q",
					ev.Action, ev.JobID, ev.At, ev.Conclusion, w.Action, w.JobID, w.At, w.Conclusion)
			}
			if w.Labels != nil && !slices.Equal(ev.Labels, w.Labels) {
				t.Errorf("labels %v, want %v", ev.Labels, w.Labels)
			}
			if w.RunnerName != "" && (ev.RunnerName != w.RunnerName || ev.RunnerID != w.RunnerID) {
				t.Errorf("runner %d %q, want %d %q", ev.RunnerID, ev.RunnerName, w.RunnerID, w.RunnerName)
			}
		})
	}
}

func equalEvents(a, b store.JobEvent) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// jobBody edits the queued example: set replaces keys of workflow_job (nil
// deletes), top replaces top-level keys.
func jobBody(t testing.TB, job map[string]any, top map[string]any) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(examples(t)["workflow_job.queued.5.json"], &p); err != nil {
		t.Fatal(err)
	}
	wj := p["workflow_job"].(map[string]any)
	for k, v := range job {
		if v == nil {
			delete(wj, k)
		} else {
			wj[k] = v
		}
	}
	for k, v := range top {
		if v == nil {
			delete(p, k)
		} else {
			p[k] = v
		}
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeWorkflowJobRefusals(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		body   []byte
		reason string // "" = accepted
	}{
		{"no id", jobBody(t, map[string]any{"id": nil}, nil), "workflow_job.id missing"},
		{"zero id", jobBody(t, map[string]any{"id": 0}, nil), "workflow_job.id missing"},
		{"string id", jobBody(t, map[string]any{"id": "12"}, nil), "workflow_job.id is a JSON string"},
		{"no status", jobBody(t, map[string]any{"status": nil}, nil), "workflow_job.status missing"},
		{"no labels", jobBody(t, map[string]any{"labels": nil}, nil), "workflow_job.labels missing"},
		{"null labels", []byte(strings.Replace(string(jobBody(t, nil, nil)), `"labels":["ubuntu-latest"]`, `"labels":null`, 1)), "workflow_job.labels missing"},
		{"empty labels", jobBody(t, map[string]any{"labels": []string{}}, nil), ""},
		{"no repository", jobBody(t, nil, map[string]any{"repository": nil}), "repository missing"},
		{"repository without name", jobBody(t, nil, map[string]any{"repository": map[string]any{"id": 1}}), "repository.id or repository.full_name missing"},
		{"no workflow_job", jobBody(t, nil, map[string]any{"workflow_job": nil}), "workflow_job object missing"},
		{"no action", jobBody(t, nil, map[string]any{"action": nil}), "action missing"},
		{"unknown action", jobBody(t, nil, map[string]any{"action": "teleported", "workflow_job": nil}), ""},
		{"truncated", jobBody(t, nil, nil)[:100], "invalid JSON: truncated"},
		{"array", []byte(`[1,2]`), "not a JSON object"},
		{"null", []byte(`null`), "not a JSON object"},
		{"empty", nil, "not a JSON object"},
		{"odd timestamp", jobBody(t, map[string]any{"created_at": "yesterday"}, nil), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ev, err := decodeWorkflowJob(tc.body, now)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if tc.name == "odd timestamp" && !ev.At.Equal(now) {
					t.Errorf("At = %s, want the clock's %s", ev.At, now)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err %v, want %q", err, tc.reason)
			}
			if _, ok := err.(payloadError); !ok {
				t.Errorf("err is a %T, want payloadError", err)
			}
		})
	}
}

func TestDecodeActionOtherEvents(t *testing.T) {
	for name, body := range examples(t) {
		if exampleEvent(name) == "workflow_job" {
			continue
		}
		action, err := decodeAction(body)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if parts := strings.Split(name, "."); exampleEvent(name) != "ping" && action != parts[1] {
			t.Errorf("%s: action %q", name, action)
		}
	}
}
