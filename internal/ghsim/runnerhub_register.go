package ghsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/ghsim/simrunner"
	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

// runnerGitHubURL is the web URL config.sh is given for a scope.
func runnerGitHubURL(s world.Scope) string {
	if s.Kind == world.Enterprise {
		return "https://github.com/enterprises/" + s.Name
	}
	return "https://github.com/" + s.Name
}

// runnerScopeFromURL maps a config.sh --url (any host) to a scope: /ORG,
// /OWNER/REPO or /enterprises/SLUG.
func runnerScopeFromURL(raw string) (world.Scope, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Path == "" {
		return world.Scope{}, fmt.Errorf("url %q: want https://github.com/ORG, /OWNER/REPO or /enterprises/SLUG", raw)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	switch {
	case len(parts) == 2 && parts[0] == "enterprises" && parts[1] != "":
		return world.Scope{Kind: world.Enterprise, Name: parts[1]}, nil
	case len(parts) == 1 && parts[0] != "" && parts[0] != "enterprises":
		return world.Scope{Kind: world.Org, Name: parts[0]}, nil
	case len(parts) == 2 && parts[0] != "" && parts[1] != "":
		return world.Scope{Kind: world.Repo, Name: parts[0] + "/" + parts[1]}, nil
	}
	return world.Scope{}, fmt.Errorf("url %q: want https://github.com/ORG, /OWNER/REPO or /enterprises/SLUG", raw)
}

func runnerSameScope(a, b world.Scope) bool {
	return a.Kind == b.Kind && strings.EqualFold(a.Name, b.Name)
}

func writeRunnerJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeRunnerError(w http.ResponseWriter, status int, msg string) {
	writeRunnerJSON(w, status, simrunner.ErrorResponse{Message: msg})
}

// runnerWorldStatus maps a world error to its HTTP status.
func runnerWorldStatus(err error) int {
	switch {
	case errors.Is(err, world.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, world.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, world.ErrBusy), errors.Is(err, world.ErrValidation):
		return http.StatusUnprocessableEntity
	}
	return http.StatusInternalServerError
}

func decodeRunnerBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := dec.Decode(v); err != nil {
		// The decoder's error may quote the body, which holds a token.
		writeRunnerError(w, http.StatusBadRequest, "body is not the expected JSON object")
		return false
	}
	return true
}

// runnerBearer returns the credential of an Authorization header ("Bearer X" or
// "token X").
func runnerBearer(r *http.Request) string {
	v := r.Header.Get("Authorization")
	for _, p := range []string{"Bearer ", "bearer ", "token ", "Token "} {
		if strings.HasPrefix(v, p) {
			return strings.TrimSpace(v[len(p):])
		}
	}
	return strings.TrimSpace(v)
}

// credentialRunner returns the runner a credential belongs to.
func (h *runnerHub) credentialRunner(tok string) (int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.creds[tok]
	if !ok || tok == "" {
		return 0, false
	}
	return c.runnerID, true
}

// runnerOSArch maps config.sh's os and architecture to the world's names.
func runnerOSArch(osName, arch string) (string, string, error) {
	var wos string
	switch strings.ToLower(osName) {
	case "", "linux":
		wos = "linux"
	case "osx", "macos", "darwin":
		wos = "macos"
	case "win", "windows":
		wos = "windows"
	default:
		return "", "", fmt.Errorf("os %q: want linux, osx or win", osName)
	}
	var warch string
	switch strings.ToLower(arch) {
	case "", "x64", "amd64":
		warch = "x64"
	case "arm64", "aarch64":
		warch = "arm64"
	case "arm":
		warch = "arm"
	default:
		return "", "", fmt.Errorf("architecture %q: want x64, arm64 or arm", arch)
	}
	return wos, warch, nil
}

// serveRegister is config.sh: a registration token buys a runner and its
// credential.
func (h *runnerHub) serveRegister(w http.ResponseWriter, r *http.Request) {
	var req simrunner.RegisterRequest
	if !decodeRunnerBody(w, r, &req) {
		return
	}
	scope, err := runnerScopeFromURL(req.URL)
	if err != nil {
		writeRunnerError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !h.checkToken(h.regTokens, req.Token, scope) {
		writeRunnerError(w, http.StatusUnauthorized, "registration token is invalid, expired or not for "+req.URL)
		return
	}
	wos, warch, err := runnerOSArch(req.OS, req.Arch)
	if err != nil {
		writeRunnerError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	wd := h.s.world
	groupID := int64(world.DefaultGroupID)
	if scope.Kind != world.Repo { // repository runners have no group choice; config.sh ignores --runnergroup
		name := req.RunnerGroup
		if name == "" {
			name = "Default"
		}
		groups, err := wd.Groups(scope)
		if err != nil {
			writeRunnerError(w, runnerWorldStatus(err), err.Error())
			return
		}
		groupID = 0
		for _, g := range groups {
			if strings.EqualFold(g.Name, name) && !g.Inherited {
				groupID = g.ID
				break
			}
		}
		if groupID == 0 {
			writeRunnerError(w, http.StatusNotFound, fmt.Sprintf("runner group %q not found in %s", name, scope))
			return
		}
	}
	if req.Replace {
		for _, old := range wd.Runners(scope) {
			if strings.EqualFold(old.Name, req.Name) {
				if err := wd.DeleteRunner(scope, old.ID); err != nil {
					writeRunnerError(w, runnerWorldStatus(err), "replace runner "+old.Name+": "+err.Error())
					return
				}
				h.log.Info("runner replaced", zap.String("runner", old.Name), zap.Int64("runner_id", old.ID))
			}
		}
	}
	run, err := wd.RegisterRunner(world.RunnerInput{
		Scope: scope, Name: req.Name, GroupID: groupID, Labels: req.Labels, OS: wos, Arch: warch,
		NoDefaultLabels: req.NoDefaultLabels, Ephemeral: req.Ephemeral,
	})
	if err != nil {
		writeRunnerError(w, runnerWorldStatus(err), err.Error())
		return
	}
	tok, err := h.newCredential(run.ID, false)
	if err != nil {
		writeRunnerError(w, http.StatusInternalServerError, err.Error())
		return
	}
	work := req.WorkFolder
	if work == "" {
		work = "_work"
	}
	h.log.Info("runner registered", zap.String("runner", run.Name), zap.Int64("runner_id", run.ID),
		zap.Stringer("scope", run.Scope), zap.Bool("ephemeral", run.Ephemeral))
	writeRunnerJSON(w, http.StatusCreated, simrunner.RegisterResponse{
		RunnerID: run.ID, Name: run.Name, Runner: h.settings(run, work), Credentials: sessionCredentials(tok),
	})
}

// serveRemove is config.sh remove.
func (h *runnerHub) serveRemove(w http.ResponseWriter, r *http.Request) {
	var req simrunner.RemoveRequest
	if !decodeRunnerBody(w, r, &req) {
		return
	}
	rid, ok := h.credentialRunner(req.Credentials)
	if !ok {
		writeRunnerError(w, http.StatusUnauthorized, "runner credentials are invalid")
		return
	}
	run, ok := h.s.world.RunnerByID(rid)
	if !ok {
		writeRunnerError(w, http.StatusNotFound, "runner not found: it was removed")
		return
	}
	if !h.checkToken(h.rmTokens, req.Token, run.Scope) {
		writeRunnerError(w, http.StatusUnauthorized, "remove token is invalid, expired or not for "+run.Scope.String())
		return
	}
	if err := h.s.world.DeleteRunner(run.Scope, rid); err != nil {
		writeRunnerError(w, runnerWorldStatus(err), err.Error())
		return
	}
	h.mu.Lock()
	if mb := h.mail[rid]; mb == nil || !mb.attached {
		h.forgetLocked(rid)
	} // else the session notices and cleans up
	h.mu.Unlock()
	h.log.Info("runner removed", zap.String("runner", run.Name), zap.Int64("runner_id", rid))
	w.WriteHeader(http.StatusNoContent)
}

// serveDownload serves a runner application package.
func (h *runnerHub) serveDownload(w http.ResponseWriter, r *http.Request) {
	p, ok := h.downloads.get(h.s.URL(), r.PathValue("file"))
	if !ok {
		writeRunnerError(w, http.StatusNotFound, "no such runner package")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, p.app.Filename, time.Time{}, bytes.NewReader(p.data))
}
