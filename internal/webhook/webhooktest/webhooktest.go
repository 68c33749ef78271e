// Package webhooktest makes signed, realistic GitHub webhook deliveries for
// tests, benchmarks and the `scaler bench ingest` load generator. It does
// not import package webhook, so it can check it independently.
package webhooktest

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Sign returns the X-Hub-Signature-256 header value of body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// NewGUID returns a random version 4 UUID, the form of X-GitHub-Delivery.
func NewGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// workflowJobExample is Octokit's workflow_job in_progress example
// (testdata/workflow_job.in_progress.4.json in package webhook), compacted.
//
//go:embed workflow_job.json
var workflowJobExample []byte

// idMark stands for the job id in a template; it occurs nowhere else.
const idMark = 987654321012345

// JobTemplate makes workflow_job bodies of one action and about one size
// that differ only in the job id, cheaply enough for a load generator.
type JobTemplate struct {
	prefix, suffix []byte
}

// NewJobTemplate builds bodies for action (queued, waiting, in_progress or
// completed) of about size bytes, from GitHub's example payload: repository
// URL fields are dropped while the body is too big, then steps are added
// until it reaches size. GitHub's own workflow_job deliveries run 7 to 12 KB.
func NewJobTemplate(action string, size int) (*JobTemplate, error) {
	var p map[string]any
	if err := json.Unmarshal(workflowJobExample, &p); err != nil {
		return nil, err
	}
	p["action"] = action
	job := p["workflow_job"].(map[string]any)
	job["id"] = idMark
	job["status"] = action
	job["steps"] = []any{}
	job["labels"] = []any{"self-hosted", "linux", "x64", "bench"}
	switch action {
	case "queued", "waiting":
		for _, k := range []string{"runner_id", "runner_name", "runner_group_id", "runner_group_name", "conclusion", "completed_at"} {
			job[k] = nil
		}
	case "in_progress":
		job["conclusion"], job["completed_at"] = nil, nil
	case "completed":
		job["conclusion"], job["completed_at"] = "success", "2023-06-26T03:33:02Z"
	default:
		return nil, fmt.Errorf("webhooktest: action %q is not a workflow_job transition", action)
	}
	repo := p["repository"].(map[string]any)
	var urlKeys []string
	for k := range repo {
		if strings.HasSuffix(k, "_url") {
			urlKeys = append(urlKeys, k)
		}
	}
	slices.Sort(urlKeys)
	body, err := json.Marshal(p)
	for err == nil && len(body) > size-200 && len(urlKeys) > 0 {
		delete(repo, urlKeys[len(urlKeys)-1])
		urlKeys = urlKeys[:len(urlKeys)-1]
		body, err = json.Marshal(p)
	}
	var steps []any
	for n := 1; err == nil; n++ {
		step := map[string]any{
			"name": fmt.Sprintf("Run ./scripts/step-%02d.sh --shard %d", n, n), "status": "queued",
			"conclusion": nil, "number": n, "started_at": nil, "completed_at": nil,
		}
		job["steps"] = append(steps, step)
		var next []byte
		if next, err = json.Marshal(p); err != nil || len(next) > size {
			break
		}
		steps, body = append(steps, step), next
	}
	if err != nil {
		return nil, err
	}
	mark := []byte(strconv.Itoa(idMark))
	if bytes.Count(body, mark) != 1 {
		return nil, fmt.Errorf("webhooktest: the template holds the job id mark %d times", bytes.Count(body, mark))
	}
	i := bytes.Index(body, mark)
	return &JobTemplate{prefix: body[:i], suffix: body[i+len(mark):]}, nil
}

// Body returns a body for job id (a new slice each time).
func (t *JobTemplate) Body(id int64) []byte {
	b := make([]byte, 0, len(t.prefix)+20+len(t.suffix))
	b = append(b, t.prefix...)
	b = strconv.AppendInt(b, id, 10)
	return append(b, t.suffix...)
}

// Size is the length of a body with a 15-digit job id.
func (t *JobTemplate) Size() int { return len(t.prefix) + 15 + len(t.suffix) }
