package ghsim

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

// installationIDFor is the id of the simulated App's installation on an
// account (an organization or the enterprise). Every installation id the
// simulator shows (REST, webhooks, control API) comes from here.
func installationIDFor(accountID int64) int64 { return 1_000_000 + accountID }

// The user every workflow_job delivery names as its sender (the user whose
// push or dispatch started the run).
const (
	hookSenderLogin = "octocat"
	hookSenderID    = 583231
)

// hookNodeID builds a legacy GraphQL node id the way GitHub's look:
// base64("0<len(type)>:<type><id>"), e.g. "MDQ6VXNlcjE=" for user 1.
func hookNodeID(typ string, id int64) string {
	raw := "0" + strconv.Itoa(len(typ)) + ":" + typ + strconv.FormatInt(id, 10)
	return base64.StdEncoding.EncodeToString([]byte(raw))
}

// hookSignature256 is the X-Hub-Signature-256 value of body: "sha256=" and
// the hex HMAC-SHA256 of the raw body keyed with the webhook secret.
func hookSignature256(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// hookSignature1 is the legacy X-Hub-Signature value (HMAC-SHA1).
func hookSignature1(secret string, body []byte) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write(body)
	return "sha1=" + hex.EncodeToString(m.Sum(nil))
}

// hookPayload is a workflow_job delivery body, shaped like GitHub's (see
// testdata/webhooks for Octokit's examples). Nullable fields are pointers
// without omitempty so they appear as null, as GitHub sends them.
type hookPayload struct {
	Action       string           `json:"action"`
	WorkflowJob  hookJob          `json:"workflow_job"`
	Repository   hookRepository   `json:"repository"`
	Organization *hookOrg         `json:"organization,omitempty"`
	Sender       hookUser         `json:"sender"`
	Installation hookInstallation `json:"installation"`
}

type hookJob struct {
	ID              int64      `json:"id"`
	RunID           int64      `json:"run_id"`
	WorkflowName    string     `json:"workflow_name"`
	HeadBranch      string     `json:"head_branch"`
	RunURL          string     `json:"run_url"`
	RunAttempt      int        `json:"run_attempt"`
	NodeID          string     `json:"node_id"`
	HeadSHA         string     `json:"head_sha"`
	URL             string     `json:"url"`
	HTMLURL         string     `json:"html_url"`
	Status          string     `json:"status"`
	Conclusion      *string    `json:"conclusion"`
	CreatedAt       string     `json:"created_at"`
	StartedAt       string     `json:"started_at"`
	CompletedAt     *string    `json:"completed_at"`
	Name            string     `json:"name"`
	Steps           []struct{} `json:"steps"`
	CheckRunURL     string     `json:"check_run_url"`
	Labels          []string   `json:"labels"`
	RunnerID        *int64     `json:"runner_id"`
	RunnerName      *string    `json:"runner_name"`
	RunnerGroupID   *int64     `json:"runner_group_id"`
	RunnerGroupName *string    `json:"runner_group_name"`
}

type hookRepository struct {
	ID            int64    `json:"id"`
	NodeID        string   `json:"node_id"`
	Name          string   `json:"name"`
	FullName      string   `json:"full_name"`
	Private       bool     `json:"private"`
	Owner         hookUser `json:"owner"`
	HTMLURL       string   `json:"html_url"`
	Description   *string  `json:"description"`
	Fork          bool     `json:"fork"`
	URL           string   `json:"url"`
	DefaultBranch string   `json:"default_branch"`
	Visibility    string   `json:"visibility"`
}

type hookUser struct {
	Login     string `json:"login"`
	ID        int64  `json:"id"`
	NodeID    string `json:"node_id"`
	AvatarURL string `json:"avatar_url"`
	URL       string `json:"url"`
	HTMLURL   string `json:"html_url"`
	Type      string `json:"type"`
	SiteAdmin bool   `json:"site_admin"`
}

type hookOrg struct {
	Login       string `json:"login"`
	ID          int64  `json:"id"`
	NodeID      string `json:"node_id"`
	URL         string `json:"url"`
	ReposURL    string `json:"repos_url"`
	HooksURL    string `json:"hooks_url"`
	AvatarURL   string `json:"avatar_url"`
	Description string `json:"description"`
}

type hookInstallation struct {
	ID     int64  `json:"id"`
	NodeID string `json:"node_id"`
}

// hookTime formats a timestamp as GitHub does in payloads (UTC, seconds).
func hookTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// buildHookPayload renders the workflow_job delivery for one transition.
// apiBase is the simulator's API base URL ending in "/".
//
// GitHub sets started_at when a job is queued and moves it when a runner
// picks the job up; so does the simulator (created_at until it starts).
func buildHookPayload(e world.Event, apiBase string) ([]byte, error) {
	j, repo, org := e.Job, e.Repo, e.Org
	full := repo.FullName()
	repoAPI := apiBase + "repos/" + full
	jobID := strconv.FormatInt(j.ID, 10)
	runID := strconv.FormatInt(j.RunID, 10)

	job := hookJob{
		ID: j.ID, RunID: j.RunID, WorkflowName: "CI", HeadBranch: j.HeadBranch,
		RunURL: repoAPI + "/actions/runs/" + runID, RunAttempt: 1,
		NodeID: hookNodeID("WorkflowJob", j.ID), HeadSHA: j.HeadSHA,
		URL:     repoAPI + "/actions/jobs/" + jobID,
		HTMLURL: "https://github.com/" + full + "/actions/runs/" + runID + "/job/" + jobID,
		Status:  j.Status, CreatedAt: hookTime(j.CreatedAt), StartedAt: hookTime(j.CreatedAt),
		Name: j.Name, Steps: []struct{}{}, CheckRunURL: repoAPI + "/check-runs/" + jobID,
		Labels: append([]string{}, j.Labels...),
	}
	if !j.StartedAt.IsZero() {
		job.StartedAt = hookTime(j.StartedAt)
	}
	if j.Conclusion != "" {
		c := j.Conclusion
		job.Conclusion = &c
	}
	if !j.CompletedAt.IsZero() && j.Status == world.JobCompleted {
		c := hookTime(j.CompletedAt)
		job.CompletedAt = &c
	}
	if j.RunnerID != 0 {
		id, name, gid, gname := j.RunnerID, j.RunnerName, j.GroupID, j.GroupName
		job.RunnerID, job.RunnerName, job.RunnerGroupID, job.RunnerGroupName = &id, &name, &gid, &gname
	}

	owner := hookUser{
		Login: repo.Owner, ID: repo.OwnerID, NodeID: hookNodeID("Organization", repo.OwnerID),
		AvatarURL: "https://avatars.githubusercontent.com/u/" + strconv.FormatInt(repo.OwnerID, 10) + "?v=4",
		URL:       apiBase + "users/" + repo.Owner, HTMLURL: "https://github.com/" + repo.Owner,
		Type: "Organization",
	}
	visibility := "public"
	if repo.Private {
		visibility = "private"
	}
	p := hookPayload{
		Action:      e.Action,
		WorkflowJob: job,
		Repository: hookRepository{
			ID: repo.ID, NodeID: hookNodeID("Repository", repo.ID), Name: repo.Name, FullName: full,
			Private: repo.Private, Owner: owner, HTMLURL: "https://github.com/" + full,
			URL: repoAPI, DefaultBranch: "main", Visibility: visibility,
		},
		Sender: hookUser{
			Login: hookSenderLogin, ID: hookSenderID, NodeID: hookNodeID("User", hookSenderID),
			AvatarURL: "https://avatars.githubusercontent.com/u/583231?v=4",
			URL:       apiBase + "users/" + hookSenderLogin, HTMLURL: "https://github.com/" + hookSenderLogin,
			Type: "User",
		},
	}
	account := repo.OwnerID
	if org.ID != 0 {
		account = org.ID
		p.Organization = &hookOrg{
			Login: org.Login, ID: org.ID, NodeID: hookNodeID("Organization", org.ID),
			URL: apiBase + "orgs/" + org.Login, ReposURL: apiBase + "orgs/" + org.Login + "/repos",
			HooksURL:  apiBase + "orgs/" + org.Login + "/hooks",
			AvatarURL: owner.AvatarURL,
		}
	}
	inst := installationIDFor(account)
	p.Installation = hookInstallation{ID: inst, NodeID: hookNodeID("IntegrationInstallation", inst)}
	return json.Marshal(p)
}
