package world

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// JobInput creates jobs through the control API.
type JobInput struct {
	Repo     string // full name
	Name     string // default "build"
	Labels   []string
	Duration time.Duration
	Count    int  // default 1
	Waiting  bool // created waiting (e.g. for an environment approval)
}

// CreateJobs adds jobs to a repository, queued (or waiting), and assigns
// what can start at once.
func (w *World) CreateJobs(in JobInput) ([]int64, error) {
	w.mu.Lock()
	repo := w.repos[strings.ToLower(in.Repo)]
	if repo == nil {
		w.mu.Unlock()
		return nil, fmt.Errorf("repository %s: %w", in.Repo, ErrNotFound)
	}
	if len(in.Labels) == 0 {
		w.mu.Unlock()
		return nil, fmt.Errorf("a job needs at least one label: %w", ErrValidation)
	}
	if in.Count <= 0 {
		in.Count = 1
	}
	if in.Name == "" {
		in.Name = "build"
	}
	now := w.clock.Now()
	w.nextRun++
	ids := make([]int64, 0, in.Count)
	var events []Event
	for i := 0; i < in.Count; i++ {
		w.nextJob++
		status := JobQueued
		if in.Waiting {
			status = JobWaiting
		}
		j := &Job{
			ID: w.nextJob, RunID: w.nextRun, Name: in.Name, RepoID: repo.ID, Labels: slices.Clone(in.Labels),
			Status: status, Duration: in.Duration, CreatedAt: now, HeadBranch: "main", HeadSHA: fakeSHA(w.nextJob),
		}
		w.jobs[j.ID] = j
		w.jobOrder = append(w.jobOrder, j.ID)
		ids = append(ids, j.ID)
		events = append(events, w.event(status, j))
	}
	events = append(events, w.assign()...)
	w.mu.Unlock()
	w.emit(events)
	return ids, nil
}

func fakeSHA(n int64) string {
	sum := sha1.Sum([]byte(strconv.FormatInt(n, 10)))
	return hex.EncodeToString(sum[:])
}

// event builds the webhook-facing record of a transition; caller holds mu.
func (w *World) event(action string, j *Job) Event {
	e := Event{Action: action, Job: cloneJob(j)}
	if r := w.repoByID(j.RepoID); r != nil {
		e.Repo = *r
		if o := w.orgs[strings.ToLower(r.Owner)]; o != nil {
			e.Org = *o
		}
	}
	return e
}

func cloneJob(j *Job) Job {
	c := *j
	c.Labels = slices.Clone(j.Labels)
	return c
}

// ReleaseJob moves a waiting job to queued.
func (w *World) ReleaseJob(id int64) error {
	w.mu.Lock()
	j, ok := w.jobs[id]
	if !ok {
		w.mu.Unlock()
		return fmt.Errorf("job %d: %w", id, ErrNotFound)
	}
	if j.Status != JobWaiting {
		w.mu.Unlock()
		return fmt.Errorf("job %d is %s, not waiting: %w", id, j.Status, ErrValidation)
	}
	j.Status = JobQueued
	events := []Event{w.event(JobQueued, j)}
	events = append(events, w.assign()...)
	w.mu.Unlock()
	w.emit(events)
	return nil
}

// CancelJob cancels a waiting, queued or running job. A running job's runner
// is freed (an ephemeral one is removed, its job having ended).
func (w *World) CancelJob(id int64) error {
	w.mu.Lock()
	j, ok := w.jobs[id]
	if !ok {
		w.mu.Unlock()
		return fmt.Errorf("job %d: %w", id, ErrNotFound)
	}
	if j.Status == JobCompleted {
		w.mu.Unlock()
		return fmt.Errorf("job %d already completed: %w", id, ErrValidation)
	}
	var events []Event
	if e, ok := w.completeJob(id, "cancelled"); ok {
		events = append(events, e)
	}
	events = append(events, w.assign()...)
	w.mu.Unlock()
	w.emit(events)
	return nil
}

// completeJob ends a job and frees its runner; caller holds mu.
func (w *World) completeJob(id int64, conclusion string) (Event, bool) {
	j, ok := w.jobs[id]
	if !ok || j.Status == JobCompleted {
		return Event{}, false
	}
	j.Status = JobCompleted
	j.Conclusion = conclusion
	j.CompletedAt = w.clock.Now()
	if r, ok := w.runners[j.RunnerID]; ok && r.JobID == id {
		r.Busy = false
		r.JobID = 0
		r.BusySince = time.Time{}
		if r.Ephemeral {
			delete(w.runners, r.ID)
		}
	}
	return w.event(JobCompleted, j), true
}

// Jobs lists jobs in creation order, all or those with the given status.
func (w *World) Jobs(status string) []Job {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Job
	for _, id := range w.jobOrder {
		j := w.jobs[id]
		if status == "" || j.Status == status {
			out = append(out, cloneJob(j))
		}
	}
	return out
}

// Job returns a job and its repository.
func (w *World) Job(id int64) (Job, Repository, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	j, ok := w.jobs[id]
	if !ok {
		return Job{}, Repository{}, false
	}
	r := w.repoByID(j.RepoID)
	return cloneJob(j), *r, true
}

// JobCounts counts jobs by status.
func (w *World) JobCounts() JobCounts {
	w.mu.Lock()
	defer w.mu.Unlock()
	var c JobCounts
	for _, j := range w.jobs {
		switch j.Status {
		case JobWaiting:
			c.Waiting++
		case JobQueued:
			c.Queued++
		case JobInProgress:
			c.InProgress++
		case JobCompleted:
			c.Completed++
		}
	}
	return c
}

// assign hands queued jobs, oldest first, to online idle runners that may
// take them, lowest runner id first; caller holds mu. GitHub gives a job to
// any runner that fits, not to the one launched for it.
func (w *World) assign() []Event {
	var events []Event
	var runners []*Runner
	for _, r := range w.runners {
		runners = append(runners, r)
	}
	slices.SortFunc(runners, func(a, b *Runner) int { return int(a.ID - b.ID) })
	now := w.clock.Now()
	for _, id := range w.jobOrder {
		j := w.jobs[id]
		if j.Status != JobQueued {
			continue
		}
		repo := w.repoByID(j.RepoID)
		for _, r := range runners {
			if r.Status != StatusOnline || r.Busy || !w.canRun(j, repo, r) {
				continue
			}
			r.Busy, r.JobID, r.BusySince = true, j.ID, now
			j.Status, j.StartedAt, j.RunnerID, j.RunnerName = JobInProgress, now, r.ID, r.Name
			j.GroupID, j.GroupName = r.GroupID, "Default"
			if g := w.groupFor(r.Scope, r.GroupID); g != nil {
				j.GroupName = g.Name
			}
			events = append(events, w.event(JobInProgress, j))
			break
		}
	}
	return events
}

// canRun is GitHub's rule: the runner has every job label (case-insensitive),
// its scope covers the repository, and its group lets the repository in.
func (w *World) canRun(j *Job, repo *Repository, r *Runner) bool {
	for _, l := range j.Labels {
		if !hasLabel(r.Labels, l) {
			return false
		}
	}
	switch r.Scope.Kind {
	case Repo:
		return strings.EqualFold(r.Scope.Name, repo.FullName()) // repository runners have no group
	case Org:
		if !strings.EqualFold(r.Scope.Name, repo.Owner) {
			return false
		}
		g := w.groupFor(r.Scope, r.GroupID)
		return g != nil && orgGroupAdmits(g, repo)
	case Enterprise:
		g := w.groupFor(r.Scope, r.GroupID)
		return g != nil && w.enterpriseGroupServesOrg(g, repo.OwnerID) && (!repo.Private && g.AllowsPublicRepositories || repo.Private)
	}
	return false
}

// CanRun reports whether runner could take job now, labels and access
// considered (not whether it is online or idle).
func (w *World) CanRun(job Job, runner Runner) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	repo := w.repoByID(job.RepoID)
	return repo != nil && w.canRun(&job, repo, &runner)
}

func orgGroupAdmits(g *Group, repo *Repository) bool {
	if !repo.Private && !g.AllowsPublicRepositories {
		return false
	}
	switch g.Visibility {
	case VisibilityAll:
		return true
	case VisibilitySelected:
		return slices.Contains(g.SelectedRepositoryIDs, repo.ID)
	case VisibilityPrivate:
		return repo.Private
	}
	return false
}

func (w *World) enterpriseGroupServesOrg(g *Group, orgID int64) bool {
	switch g.Visibility {
	case VisibilityAll:
		return true
	case VisibilitySelected:
		return slices.Contains(g.SelectedOrganizationIDs, orgID)
	}
	return false
}
