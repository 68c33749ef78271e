package webhooktest

import (
	"encoding/json"
	"regexp"
	"testing"
)

func TestSignDocumentedVector(t *testing.T) {
	const want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got := Sign("It's a Secret to Everybody", []byte("Hello, World!")); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestNewGUID(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := NewGUID(), NewGUID()
	if !uuid.MatchString(a) || a == b {
		t.Errorf("GUIDs %q %q", a, b)
	}
}

func TestJobTemplate(t *testing.T) {
	for _, action := range []string{"waiting", "queued", "in_progress", "completed"} {
		tm, err := NewJobTemplate(action, 6<<10)
		if err != nil {
			t.Fatal(err)
		}
		body := tm.Body(123456789012345)
		if len(body) < 5<<10 || len(body) > 6<<10 {
			t.Errorf("%s: %d bytes, want about 6 KB", action, len(body))
		}
		var p struct {
			Action      string `json:"action"`
			WorkflowJob struct {
				ID     int64    `json:"id"`
				Status string   `json:"status"`
				Labels []string `json:"labels"`
			} `json:"workflow_job"`
			Repository struct {
				ID       int64  `json:"id"`
				FullName string `json:"full_name"`
			} `json:"repository"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		if p.Action != action || p.WorkflowJob.ID != 123456789012345 || p.WorkflowJob.Status != action ||
			len(p.WorkflowJob.Labels) == 0 || p.Repository.ID == 0 || p.Repository.FullName == "" {
			t.Errorf("%s: %+v", action, p)
		}
	}
	if _, err := NewJobTemplate("teleported", 6<<10); err == nil {
		t.Error("unknown action accepted")
	}
}
