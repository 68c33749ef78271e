package ghsim

import (
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

// Self-hosted runner endpoints at repository, organization and enterprise
// scope (docs.github.com/rest/actions/self-hosted-runners).

// scopePrefixes are the path prefixes of the three scopes.
var scopePrefixes = []string{"/repos/{owner}/{repo}", "/orgs/{org}", "/enterprises/{enterprise}"}

func (a *restAPI) addRunnerRoutes() {
	for _, pre := range scopePrefixes {
		r := pre + "/actions/runners"
		for _, e := range []endpoint{
			{method: http.MethodGet, template: r, handle: (*call).listRunners},
			{method: http.MethodGet, template: r + "/{runner_id}", handle: (*call).getRunner},
			{method: http.MethodDelete, template: r + "/{runner_id}", handle: (*call).deleteRunner},
			{method: http.MethodGet, template: r + "/downloads", handle: (*call).listDownloads},
			{method: http.MethodPost, template: r + "/generate-jitconfig", handle: (*call).generateJIT, jit: true},
			{method: http.MethodPost, template: r + "/registration-token", handle: (*call).registrationToken},
			{method: http.MethodPost, template: r + "/remove-token", handle: (*call).removeToken},
			{method: http.MethodGet, template: r + "/{runner_id}/labels", handle: (*call).listLabels},
			{method: http.MethodPost, template: r + "/{runner_id}/labels", handle: (*call).addLabels},
			{method: http.MethodPut, template: r + "/{runner_id}/labels", handle: (*call).setLabels},
			{method: http.MethodDelete, template: r + "/{runner_id}/labels", handle: (*call).removeAllLabels},
			{method: http.MethodDelete, template: r + "/{runner_id}/labels/{name}", handle: (*call).removeLabel},
		} {
			e.docs = docsRunners
			a.add(e)
		}
	}
	a.add(endpoint{method: http.MethodGet, template: "/enterprises/{enterprise}/actions/runners/deprecations/{version}",
		docs: docsRunners, handle: (*call).runnerDeprecation})
}

func (c *call) listRunners() reply {
	all := c.a.s.world.Runners(c.scope)
	if name := c.r.URL.Query().Get("name"); name != "" {
		var named []world.Runner
		for _, r := range all {
			if r.Name == name {
				named = append(named, r)
			}
		}
		all = named
	}
	page, link := paginate(c, all)
	return c.list(runnerListJSON{TotalCount: len(all), Runners: c.runnersJSON(page)}, link)
}

// runnerParam reads {runner_id}; ok is false (with a 404 reply) when it is not a number.
func (c *call) runnerParam() (int64, bool) { return c.intParam("runner_id") }

func (c *call) getRunner() reply {
	id, ok := c.runnerParam()
	if !ok {
		return c.notFound()
	}
	r, err := c.a.s.world.Runner(c.scope, id)
	if err != nil {
		return c.worldErr(err)
	}
	return c.json(http.StatusOK, c.runnerJSON(r))
}

// deleteRunner refuses a runner that runs a job (422), except within the
// busy lag, when the world lets the delete through as GitHub has been seen to.
func (c *call) deleteRunner() reply {
	id, ok := c.runnerParam()
	if !ok {
		return c.notFound()
	}
	w := c.a.s.world
	r, err := w.Runner(c.scope, id)
	if err != nil {
		return c.worldErr(err)
	}
	if err := w.DeleteRunner(c.scope, id); err != nil {
		if errors.Is(err, world.ErrBusy) {
			return c.fail(http.StatusUnprocessableEntity, `Bad request - Runner "`+r.Name+`" is still running a job"`)
		}
		return c.worldErr(err)
	}
	return c.noContent()
}

type runnerApplicationJSON struct {
	OS             string `json:"os"`
	Architecture   string `json:"architecture"`
	DownloadURL    string `json:"download_url"`
	Filename       string `json:"filename"`
	SHA256Checksum string `json:"sha256_checksum,omitempty"`
}

func (c *call) listDownloads() reply {
	apps := c.a.s.runners.Downloads()
	out := make([]runnerApplicationJSON, len(apps))
	for i, ap := range apps {
		out[i] = runnerApplicationJSON{OS: ap.OS, Architecture: ap.Architecture, DownloadURL: ap.DownloadURL, Filename: ap.Filename, SHA256Checksum: ap.SHA256}
	}
	return c.json(http.StatusOK, out)
}

// runnerDeprecation answers that no end of life is scheduled for any version.
func (c *call) runnerDeprecation() reply {
	return c.json(http.StatusOK, map[string]any{
		"runner_version":             c.params["version"],
		"registration_deprecates_at": nil,
		"runtime_deprecates_at":      nil,
	})
}

var jitBody = []field{
	{name: "name", typ: fString, required: true},
	{name: "runner_group_id", typ: fInt, required: true},
	{name: "labels", typ: fStrings, required: true, minItems: 1, maxItems: 100},
	{name: "work_folder", typ: fString},
}

// generateJIT registers an ephemeral runner with exactly the labels asked
// for (GitHub adds no default labels to a JIT runner; the world adds
// self-hosted) and returns its JIT config: 201, 404 for an unknown group,
// 409 for a name in use, 422 for an invalid body.
func (c *call) generateJIT() reply {
	b, err := decodeBody(c.r, jitBody)
	if err != nil {
		return c.badBody(err)
	}
	labels := b.strings("labels")
	osName, arch := platformOf(labels)
	w := c.a.s.world
	r, err := w.RegisterRunner(world.RunnerInput{
		Scope: c.scope, Name: b.str("name"), GroupID: b.int64("runner_group_id"), Labels: labels,
		OS: osName, Arch: arch, NoDefaultLabels: true, JIT: true,
	})
	if err != nil {
		if errors.Is(err, world.ErrConflict) {
			return c.fail(http.StatusConflict, "Already exists - A runner with the name "+b.str("name")+" already exists.")
		}
		return c.worldErr(err)
	}
	encoded, err := c.a.s.runners.IssueJIT(r)
	if err != nil {
		if derr := w.DeleteRunner(r.Scope, r.ID); derr != nil {
			c.a.s.log.Warn("rest: removing a runner whose JIT config failed", zap.Int64("runner", r.ID), zap.Error(derr))
		}
		c.a.s.log.Error("rest: issuing a JIT config", zap.Int64("runner", r.ID), zap.Error(err))
		return c.fail(http.StatusInternalServerError, "Server Error")
	}
	return c.json(http.StatusCreated, map[string]any{"runner": c.runnerJSON(r), "encoded_jit_config": encoded})
}

// platformOf reads the OS and architecture a JIT runner will report from its
// labels (linux and x64 unless a label names another).
func platformOf(labels []string) (osName, arch string) {
	osName, arch = "linux", "x64"
	for _, l := range labels {
		switch strings.ToLower(l) {
		case "windows", "macos":
			osName = strings.ToLower(l)
		case "arm64", "arm":
			arch = strings.ToLower(l)
		}
	}
	return osName, arch
}

func (c *call) registrationToken() reply {
	tok, exp := c.a.s.runners.IssueRegistrationToken(c.scope)
	return c.json(http.StatusCreated, map[string]any{"token": tok, "expires_at": timestamp(exp)})
}

func (c *call) removeToken() reply {
	tok, exp := c.a.s.runners.IssueRemoveToken(c.scope)
	return c.json(http.StatusCreated, map[string]any{"token": tok, "expires_at": timestamp(exp)})
}

// labelsReply answers a label operation with the runner's labels.
func (c *call) labelsReply(ls []world.Label, err error) reply {
	if err != nil {
		return c.worldErr(err)
	}
	return c.json(http.StatusOK, labelListJSON{TotalCount: len(ls), Labels: labelsJSON(ls)})
}

func (c *call) listLabels() reply {
	id, ok := c.runnerParam()
	if !ok {
		return c.notFound()
	}
	return c.labelsReply(c.a.s.world.ListLabels(c.scope, id))
}

func (c *call) addLabels() reply {
	id, ok := c.runnerParam()
	if !ok {
		return c.notFound()
	}
	b, err := decodeBody(c.r, []field{{name: "labels", typ: fStrings, required: true, minItems: 1, maxItems: 100}})
	if err != nil {
		return c.badBody(err)
	}
	return c.labelsReply(c.a.s.world.AddLabels(c.scope, id, b.strings("labels")))
}

func (c *call) setLabels() reply {
	id, ok := c.runnerParam()
	if !ok {
		return c.notFound()
	}
	b, err := decodeBody(c.r, []field{{name: "labels", typ: fStrings, required: true, maxItems: 100}})
	if err != nil {
		return c.badBody(err)
	}
	return c.labelsReply(c.a.s.world.SetLabels(c.scope, id, b.strings("labels")))
}

func (c *call) removeAllLabels() reply {
	id, ok := c.runnerParam()
	if !ok {
		return c.notFound()
	}
	return c.labelsReply(c.a.s.world.RemoveAllLabels(c.scope, id))
}

func (c *call) removeLabel() reply {
	id, ok := c.runnerParam()
	if !ok {
		return c.notFound()
	}
	return c.labelsReply(c.a.s.world.RemoveLabel(c.scope, id, c.params["name"]))
}
