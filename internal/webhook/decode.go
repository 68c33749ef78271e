package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/store"
)

// payloadError is why a payload is refused with 400: short, and safe to
// answer and log (it never quotes the payload).
type payloadError string

func (e payloadError) Error() string { return string(e) }

func badPayload(format string, args ...any) error {
	return payloadError(fmt.Sprintf(format, args...))
}

// actionPayload is what the intake reads of events other than workflow_job:
// decoding it also checks that the body is JSON.
type actionPayload struct {
	Action string `json:"action"`
}

// decodeAction returns the "action" of a JSON object payload ("" when it has
// none, as ping has not).
func decodeAction(payload []byte) (string, error) {
	if !isObject(payload) {
		return "", badPayload("the payload is not a JSON object")
	}
	var p actionPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return "", badPayload("invalid JSON: %s", jsonErrorText(err))
	}
	return p.Action, nil
}

// workflowJobPayload holds only the fields of a workflow_job delivery the
// daemon uses; encoding/json skips the rest. Fields whose absence must be
// told apart from a zero value are pointers.
type workflowJobPayload struct {
	Action      string `json:"action"`
	WorkflowJob *struct {
		ID              *int64    `json:"id"`
		RunID           int64     `json:"run_id"`
		Name            string    `json:"name"`
		WorkflowName    *string   `json:"workflow_name"`
		Labels          *[]string `json:"labels"`
		Status          string    `json:"status"`
		Conclusion      *string   `json:"conclusion"`
		RunnerID        *int64    `json:"runner_id"`
		RunnerName      *string   `json:"runner_name"`
		RunnerGroupID   *int64    `json:"runner_group_id"`
		RunnerGroupName *string   `json:"runner_group_name"`
		// Timestamps are read as text and parsed leniently: one odd
		// timestamp must not cost the whole job (the clock stands in).
		CreatedAt   *string `json:"created_at"`
		StartedAt   *string `json:"started_at"`
		CompletedAt *string `json:"completed_at"`
	} `json:"workflow_job"`
	Repository *struct {
		ID       int64  `json:"id"`
		FullName string `json:"full_name"`
		Owner    *struct {
			Login string `json:"login"`
		} `json:"owner"`
	} `json:"repository"`
	Installation *struct {
		ID int64 `json:"id"`
	} `json:"installation"`
}

// jobActions are the workflow_job actions that are job transitions.
var jobActions = map[string]bool{
	store.JobWaiting:    true,
	store.JobQueued:     true,
	store.JobInProgress: true,
	store.JobCompleted:  true,
}

// decodeWorkflowJob decodes and checks a workflow_job payload. It returns the
// action and, when the action is a job transition, the event to store; an
// action the daemon does not know gives a nil event (the delivery is recorded
// and ignored). now stands in for a missing or unreadable timestamp.
//
// The event's Action is the delivery's action, not workflow_job.status: the
// two disagree on jobs held for an environment approval (action queued,
// status waiting), and the action is what says which transition this
// delivery reports.
func decodeWorkflowJob(payload []byte, now time.Time) (string, *store.JobEvent, error) {
	if !isObject(payload) {
		return "", nil, badPayload("the payload is not a JSON object")
	}
	var p workflowJobPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return "", nil, badPayload("invalid JSON: %s", jsonErrorText(err))
	}
	if p.Action == "" {
		return "", nil, badPayload("workflow_job: action missing")
	}
	if !jobActions[p.Action] {
		return p.Action, nil, nil
	}
	j := p.WorkflowJob
	switch {
	case j == nil:
		return p.Action, nil, badPayload("workflow_job: workflow_job object missing")
	case j.ID == nil || *j.ID <= 0:
		return p.Action, nil, badPayload("workflow_job: workflow_job.id missing")
	case j.Status == "":
		return p.Action, nil, badPayload("workflow_job: workflow_job.status missing")
	case j.Labels == nil:
		return p.Action, nil, badPayload("workflow_job: workflow_job.labels missing")
	case p.Repository == nil:
		return p.Action, nil, badPayload("workflow_job: repository missing")
	case p.Repository.ID <= 0 || p.Repository.FullName == "":
		return p.Action, nil, badPayload("workflow_job: repository.id or repository.full_name missing")
	}
	ev := &store.JobEvent{
		Action:          p.Action,
		JobID:           *j.ID,
		RunID:           j.RunID,
		RepoID:          p.Repository.ID,
		Repo:            p.Repository.FullName,
		Labels:          append([]string{}, *j.Labels...),
		Name:            j.Name,
		WorkflowName:    deref(j.WorkflowName),
		Conclusion:      deref(j.Conclusion),
		RunnerID:        deref(j.RunnerID),
		RunnerName:      deref(j.RunnerName),
		RunnerGroupID:   deref(j.RunnerGroupID),
		RunnerGroupName: deref(j.RunnerGroupName),
	}
	if p.Repository.Owner != nil {
		ev.Org = p.Repository.Owner.Login
	}
	if p.Installation != nil {
		ev.InstallationID = p.Installation.ID
	}
	var at *string
	switch p.Action {
	case store.JobWaiting, store.JobQueued:
		at = j.CreatedAt
	case store.JobInProgress:
		at = j.StartedAt
	case store.JobCompleted:
		at = j.CompletedAt
	}
	ev.At = parseTime(at, now)
	return p.Action, ev, nil
}

// isObject reports whether payload starts, after white space, with "{";
// json.Unmarshal alone accepts null for a struct.
func isObject(payload []byte) bool {
	for _, c := range payload {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c == '{'
	}
	return false
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// parseTime reads a GitHub timestamp ("2023-06-26T03:31:36Z", sometimes with
// fractional seconds), falling back to now.
func parseTime(s *string, now time.Time) time.Time {
	if s == nil || *s == "" {
		return now
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil || t.IsZero() {
		return now
	}
	return t
}

// jsonErrorText describes a JSON error by kind and position only: the
// decoder's text can quote payload bytes, which do not belong in an answer
// or a log line.
func jsonErrorText(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err.Error() == "unexpected end of JSON input":
		return "truncated"
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		// Value is "string", "array", ... or "number 1.5": keep the kind.
		kind, _, _ := strings.Cut(typ.Value, " ")
		if typ.Field != "" {
			return fmt.Sprintf("%s is a JSON %s, want %s", typ.Field, kind, typ.Type)
		}
		return fmt.Sprintf("the payload is a JSON %s, want an object", kind)
	}
	return "does not parse"
}
