package ghsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

// ctlMaxBody caps control API request bodies.
const ctlMaxBody = 1 << 20

// ctlMaxJobs caps the jobs one POST /_sim/jobs creates.
const ctlMaxJobs = 10_000

// control serves the /_sim/ control API: JSON in and out, loopback callers
// only, no GitHub authentication.
type control struct {
	s      *Server
	routes []ctlRoute
}

// ctlRoute is one path pattern ("{id}" matches a numeric segment) and its
// handlers by method.
type ctlRoute struct {
	pattern  []string
	handlers map[string]func(w http.ResponseWriter, r *http.Request, id int64)
}

// newControl serves the /_sim/ control API.
func newControl(s *Server) http.Handler {
	c := &control{s: s}
	c.handle("/_sim/jobs", map[string]ctlHandler{http.MethodGet: c.listJobs, http.MethodPost: c.createJobs})
	c.handle("/_sim/jobs/{id}", map[string]ctlHandler{http.MethodGet: c.getJob})
	c.handle("/_sim/jobs/{id}/cancel", map[string]ctlHandler{http.MethodPost: c.cancelJob})
	c.handle("/_sim/jobs/{id}/release", map[string]ctlHandler{http.MethodPost: c.releaseJob})
	c.handle("/_sim/runners", map[string]ctlHandler{http.MethodGet: c.listRunners})
	c.handle("/_sim/stats", map[string]ctlHandler{http.MethodGet: c.stats})
	c.handle("/_sim/faults", map[string]ctlHandler{
		http.MethodGet: c.listFaults, http.MethodPost: c.addFault, http.MethodDelete: c.clearFaults,
	})
	c.handle("/_sim/faults/{id}", map[string]ctlHandler{http.MethodDelete: c.removeFault})
	c.handle("/_sim/webhooks", map[string]ctlHandler{http.MethodGet: c.getWebhooks, http.MethodPost: c.setWebhooks})
	c.handle("/_sim/world", map[string]ctlHandler{http.MethodGet: c.getWorld, http.MethodPost: c.applyWorld})
	c.handle("/_sim/config", map[string]ctlHandler{http.MethodGet: c.getConfig, http.MethodPost: c.setConfig})
	return c
}

type ctlHandler = func(w http.ResponseWriter, r *http.Request, id int64)

func (c *control) handle(pattern string, h map[string]ctlHandler) {
	c.routes = append(c.routes, ctlRoute{pattern: strings.Split(strings.Trim(pattern, "/"), "/"), handlers: h})
}

// match returns the route for path and the value of its {id} segment.
// found is true when the path matched a pattern even if the id did not parse.
func (c *control) match(path string) (route *ctlRoute, id int64, found bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i := range c.routes {
		rt := &c.routes[i]
		if len(rt.pattern) != len(segs) {
			continue
		}
		ok, idOK := true, true
		var n int64
		for k, p := range rt.pattern {
			if p == "{id}" {
				v, err := strconv.ParseInt(segs[k], 10, 64)
				if err != nil || v <= 0 {
					idOK = false
				}
				n = v
				continue
			}
			if p != segs[k] {
				ok = false
				break
			}
		}
		if ok {
			return rt, n, idOK
		}
	}
	return nil, 0, false
}

func (c *control) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !ctlLoopback(r.RemoteAddr) {
		ctlError(w, http.StatusForbidden, "the simulator control API answers loopback callers only")
		return
	}
	rt, id, idOK := c.match(r.URL.Path)
	if rt == nil || !idOK {
		ctlError(w, http.StatusNotFound, "Not Found")
		return
	}
	h, ok := rt.handlers[r.Method]
	if !ok {
		methods := make([]string, 0, len(rt.handlers))
		for m := range rt.handlers {
			methods = append(methods, m)
		}
		sort.Strings(methods)
		w.Header().Set("Allow", strings.Join(methods, ", "))
		ctlError(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	h(w, r, id)
}

// ctlLoopback reports whether a RemoteAddr ("host:port") is a loopback address.
func ctlLoopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

func ctlJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func ctlError(w http.ResponseWriter, status int, msg string) {
	ctlJSON(w, status, map[string]string{"message": msg})
}

// ctlWorldError answers a world error with its status: 404 not found, 409
// conflict, 422 otherwise (validation, busy, bad scope).
func ctlWorldError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, world.ErrNotFound):
		ctlError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, world.ErrConflict):
		ctlError(w, http.StatusConflict, err.Error())
	default:
		ctlError(w, http.StatusUnprocessableEntity, err.Error())
	}
}

// ctlDecode reads a JSON body strictly (unknown fields are errors); an empty
// body is allowed when emptyOK. It answers 400 itself and reports false.
func ctlDecode(w http.ResponseWriter, r *http.Request, v any, emptyOK bool) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, ctlMaxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) && emptyOK {
		return true
	}
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if err != nil {
		ctlError(w, http.StatusBadRequest, "Problems parsing JSON: "+err.Error())
		return false
	}
	return true
}

// ---- jobs ----

type ctlJobsRequest struct {
	Repo       string   `json:"repo"`
	Labels     []string `json:"labels"`
	DurationMS int64    `json:"duration_ms"`
	Count      int      `json:"count"`
	Waiting    bool     `json:"waiting"`
	Name       string   `json:"name"`
}

// CtlJob is a job as GET /_sim/jobs lists it.
type CtlJob struct {
	ID              int64      `json:"id"`
	RunID           int64      `json:"run_id"`
	Repo            string     `json:"repo"`
	Name            string     `json:"name"`
	Labels          []string   `json:"labels"`
	Status          string     `json:"status"`
	Conclusion      *string    `json:"conclusion"`
	RunnerID        *int64     `json:"runner_id"`
	RunnerName      *string    `json:"runner_name"`
	RunnerGroupID   *int64     `json:"runner_group_id"`
	RunnerGroupName *string    `json:"runner_group_name"`
	DurationMS      int64      `json:"duration_ms"`
	CreatedAt       *time.Time `json:"created_at"`
	StartedAt       *time.Time `json:"started_at"`
	CompletedAt     *time.Time `json:"completed_at"`
}

func ctlTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func ctlJobView(j world.Job, repo string) CtlJob {
	v := CtlJob{
		ID: j.ID, RunID: j.RunID, Repo: repo, Name: j.Name, Labels: append([]string{}, j.Labels...),
		Status: j.Status, DurationMS: j.Duration.Milliseconds(),
		CreatedAt: ctlTime(j.CreatedAt), StartedAt: ctlTime(j.StartedAt), CompletedAt: ctlTime(j.CompletedAt),
	}
	if j.Conclusion != "" {
		c := j.Conclusion
		v.Conclusion = &c
	}
	if j.RunnerID != 0 {
		id, name, gid, gname := j.RunnerID, j.RunnerName, j.GroupID, j.GroupName
		v.RunnerID, v.RunnerName, v.RunnerGroupID, v.RunnerGroupName = &id, &name, &gid, &gname
	}
	return v
}

func (c *control) createJobs(w http.ResponseWriter, r *http.Request, _ int64) {
	var in ctlJobsRequest
	if !ctlDecode(w, r, &in, false) {
		return
	}
	switch {
	case in.Repo == "":
		ctlError(w, http.StatusUnprocessableEntity, "repo is required (owner/name)")
		return
	case len(in.Labels) == 0:
		ctlError(w, http.StatusUnprocessableEntity, "labels: a job needs at least one label")
		return
	case in.DurationMS < 0:
		ctlError(w, http.StatusUnprocessableEntity, "duration_ms must not be negative")
		return
	case in.Count < 0 || in.Count > ctlMaxJobs:
		ctlError(w, http.StatusUnprocessableEntity, fmt.Sprintf("count must be 0 to %d", ctlMaxJobs))
		return
	}
	for _, l := range in.Labels {
		if strings.TrimSpace(l) == "" {
			ctlError(w, http.StatusUnprocessableEntity, "labels must not be empty strings")
			return
		}
	}
	ids, err := c.s.world.CreateJobs(world.JobInput{
		Repo: in.Repo, Name: in.Name, Labels: in.Labels, Duration: time.Duration(in.DurationMS) * time.Millisecond,
		Count: in.Count, Waiting: in.Waiting,
	})
	if err != nil {
		ctlWorldError(w, err)
		return
	}
	ctlJSON(w, http.StatusCreated, map[string][]int64{"ids": ids})
}

func (c *control) repoNames() map[int64]string {
	names := map[int64]string{}
	for _, r := range c.s.world.Repos("") {
		names[r.ID] = r.FullName()
	}
	return names
}

func (c *control) listJobs(w http.ResponseWriter, r *http.Request, _ int64) {
	status := r.URL.Query().Get("status")
	switch status {
	case "", world.JobWaiting, world.JobQueued, world.JobInProgress, world.JobCompleted:
	default:
		ctlError(w, http.StatusUnprocessableEntity, "status must be waiting, queued, in_progress or completed")
		return
	}
	names := c.repoNames()
	out := []CtlJob{}
	for _, j := range c.s.world.Jobs(status) {
		out = append(out, ctlJobView(j, names[j.RepoID]))
	}
	ctlJSON(w, http.StatusOK, map[string][]CtlJob{"jobs": out})
}

func (c *control) getJob(w http.ResponseWriter, _ *http.Request, id int64) {
	j, repo, ok := c.s.world.Job(id)
	if !ok {
		ctlError(w, http.StatusNotFound, fmt.Sprintf("job %d not found", id))
		return
	}
	ctlJSON(w, http.StatusOK, ctlJobView(j, repo.FullName()))
}

func (c *control) cancelJob(w http.ResponseWriter, r *http.Request, id int64) {
	c.jobChange(w, r, id, c.s.world.CancelJob)
}

func (c *control) releaseJob(w http.ResponseWriter, r *http.Request, id int64) {
	c.jobChange(w, r, id, c.s.world.ReleaseJob)
}

// jobChange applies a state change; a job in the wrong state is 409.
func (c *control) jobChange(w http.ResponseWriter, r *http.Request, id int64, change func(int64) error) {
	if err := change(id); err != nil {
		if errors.Is(err, world.ErrValidation) {
			ctlError(w, http.StatusConflict, err.Error())
			return
		}
		ctlWorldError(w, err)
		return
	}
	c.getJob(w, r, id)
}

// ---- runners ----

// CtlRunner is a runner as GET /_sim/runners lists it.
type CtlRunner struct {
	ID          int64    `json:"id"`
	Name        string   `json:"name"`
	Scope       string   `json:"scope"`
	GroupID     int64    `json:"group_id"`
	Group       string   `json:"group"`
	Labels      []string `json:"labels"`
	OS          string   `json:"os"`
	Status      string   `json:"status"`
	Busy        bool     `json:"busy"`         // the truth
	VisibleBusy bool     `json:"visible_busy"` // what the REST API reports (see busy lag)
	Ephemeral   bool     `json:"ephemeral"`
	JIT         bool     `json:"jit"`
	JobID       *int64   `json:"job_id"`
}

func (c *control) listRunners(w http.ResponseWriter, _ *http.Request, _ int64) {
	out := []CtlRunner{}
	for _, rn := range c.s.world.Runners(world.Scope{}) {
		group := "Default"
		if g, err := c.s.world.Group(rn.Scope, rn.GroupID); err == nil {
			group = g.Name
		}
		v := CtlRunner{
			ID: rn.ID, Name: rn.Name, Scope: rn.Scope.String(), GroupID: rn.GroupID, Group: group,
			Labels: rn.LabelNames(), OS: rn.OS, Status: rn.Status, Busy: rn.Busy,
			VisibleBusy: c.s.world.VisibleBusy(rn), Ephemeral: rn.Ephemeral, JIT: rn.JIT,
		}
		if rn.JobID != 0 {
			id := rn.JobID
			v.JobID = &id
		}
		out = append(out, v)
	}
	ctlJSON(w, http.StatusOK, map[string][]CtlRunner{"runners": out})
}

// ---- stats ----

func (c *control) stats(w http.ResponseWriter, _ *http.Request, _ int64) {
	ctlJSON(w, http.StatusOK, c.s.Stats())
}

// ---- faults ----

func (c *control) listFaults(w http.ResponseWriter, _ *http.Request, _ int64) {
	ctlJSON(w, http.StatusOK, map[string][]FaultRule{"faults": c.s.faults.list()})
}

func (c *control) addFault(w http.ResponseWriter, r *http.Request, _ int64) {
	var spec FaultSpec
	if !ctlDecode(w, r, &spec, false) {
		return
	}
	rule, err := c.s.faults.add(spec)
	if err != nil {
		ctlWorldError(w, err)
		return
	}
	ctlJSON(w, http.StatusCreated, rule)
}

func (c *control) clearFaults(w http.ResponseWriter, _ *http.Request, _ int64) {
	c.s.faults.clear()
	w.WriteHeader(http.StatusNoContent)
}

func (c *control) removeFault(w http.ResponseWriter, _ *http.Request, id int64) {
	if !c.s.faults.remove(id) {
		ctlError(w, http.StatusNotFound, fmt.Sprintf("fault %d not found", id))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ---- webhooks ----

type ctlWebhooksRequest struct {
	URL             *string  `json:"url"`
	DropProbability *float64 `json:"drop_probability"`
}

func (c *control) getWebhooks(w http.ResponseWriter, _ *http.Request, _ int64) {
	ctlJSON(w, http.StatusOK, c.s.hooks.settings())
}

func (c *control) setWebhooks(w http.ResponseWriter, r *http.Request, _ int64) {
	var in ctlWebhooksRequest
	if !ctlDecode(w, r, &in, false) {
		return
	}
	st, err := c.s.hooks.configure(in.URL, in.DropProbability)
	if err != nil {
		ctlWorldError(w, err)
		return
	}
	ctlJSON(w, http.StatusOK, st)
}

// ---- world ----

// CtlWorld summarises the world for POST and GET /_sim/world.
type CtlWorld struct {
	Enterprise struct {
		ID   int64  `json:"id"`
		Slug string `json:"slug"`
	} `json:"enterprise"`
	Orgs   []CtlOrg   `json:"orgs"`
	Repos  []CtlRepo  `json:"repos"`
	Groups []CtlGroup `json:"groups"`
}

// CtlOrg is an organization in the world summary.
type CtlOrg struct {
	ID             int64  `json:"id"`
	Login          string `json:"login"`
	InstallationID int64  `json:"installation_id"`
}

// CtlRepo is a repository in the world summary.
type CtlRepo struct {
	ID       int64  `json:"id"`
	FullName string `json:"full_name"`
	Private  bool   `json:"private"`
}

// CtlGroup is a runner group in the world summary.
type CtlGroup struct {
	ID                       int64  `json:"id"`
	Scope                    string `json:"scope"`
	Name                     string `json:"name"`
	Visibility               string `json:"visibility"`
	Default                  bool   `json:"default"`
	AllowsPublicRepositories bool   `json:"allows_public_repositories"`
}

func (c *control) summary() CtlWorld {
	wd := c.s.world
	var out CtlWorld
	ent := wd.Enterprise()
	out.Enterprise.ID, out.Enterprise.Slug = ent.ID, ent.Login
	out.Orgs, out.Repos, out.Groups = []CtlOrg{}, []CtlRepo{}, []CtlGroup{}
	scopes := []world.Scope{{Kind: world.Enterprise, Name: ent.Login}}
	for _, o := range wd.Orgs() {
		out.Orgs = append(out.Orgs, CtlOrg{ID: o.ID, Login: o.Login, InstallationID: installationIDFor(o.ID)})
		scopes = append(scopes, world.Scope{Kind: world.Org, Name: o.Login})
	}
	for _, r := range wd.Repos("") {
		out.Repos = append(out.Repos, CtlRepo{ID: r.ID, FullName: r.FullName(), Private: r.Private})
	}
	for _, s := range scopes {
		groups, err := wd.Groups(s)
		if err != nil {
			continue
		}
		for _, g := range groups {
			if g.Inherited {
				continue // listed under the enterprise
			}
			out.Groups = append(out.Groups, CtlGroup{
				ID: g.ID, Scope: g.Scope.String(), Name: g.Name, Visibility: g.Visibility,
				Default: g.Default, AllowsPublicRepositories: g.AllowsPublicRepositories,
			})
		}
	}
	return out
}

func (c *control) getWorld(w http.ResponseWriter, _ *http.Request, _ int64) {
	ctlJSON(w, http.StatusOK, c.summary())
}

func (c *control) applyWorld(w http.ResponseWriter, r *http.Request, _ int64) {
	var spec world.Spec
	if !ctlDecode(w, r, &spec, false) {
		return
	}
	if err := c.s.world.Apply(spec); err != nil {
		ctlWorldError(w, err)
		return
	}
	ctlJSON(w, http.StatusOK, c.summary())
}

// ---- config ----

type ctlConfig struct {
	BusyLagMS *int64 `json:"busy_lag_ms"`
}

func (c *control) getConfig(w http.ResponseWriter, _ *http.Request, _ int64) {
	ms := c.s.world.BusyLag().Milliseconds()
	ctlJSON(w, http.StatusOK, ctlConfig{BusyLagMS: &ms})
}

func (c *control) setConfig(w http.ResponseWriter, r *http.Request, id int64) {
	var in ctlConfig
	if !ctlDecode(w, r, &in, false) {
		return
	}
	if in.BusyLagMS != nil {
		if *in.BusyLagMS < 0 {
			ctlError(w, http.StatusUnprocessableEntity, "busy_lag_ms must not be negative")
			return
		}
		c.s.world.SetBusyLag(time.Duration(*in.BusyLagMS) * time.Millisecond)
	}
	c.getConfig(w, r, id)
}
