package world

import (
	"fmt"
	"sort"
	"strings"
)

// RunnerInput registers a runner.
type RunnerInput struct {
	Scope   Scope
	Name    string
	GroupID int64 // 0 means the Default group
	// Labels are the labels asked for. Default labels named here
	// (self-hosted, an OS, an architecture) are typed read-only; the rest custom.
	Labels []string
	OS     string // linux, windows or macos; default linux
	Arch   string // x64, arm64 or arm; default x64
	// NoDefaultLabels is config.sh --no-default-labels: only Labels are set.
	NoDefaultLabels bool
	Ephemeral       bool
	JIT             bool // JIT runners are always ephemeral
}

var defaultLabelNames = map[string]bool{
	"self-hosted": true, "linux": true, "windows": true, "macos": true, "x64": true, "arm64": true, "arm": true,
}

// RegisterRunner adds an offline runner, as generate-jitconfig and config.sh
// do. A name already used in the scope is ErrConflict.
func (w *World) RegisterRunner(in RunnerInput) (Runner, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.scopeExists(in.Scope) {
		return Runner{}, fmt.Errorf("scope %s: %w", in.Scope, ErrNotFound)
	}
	in.Scope = w.canonical(in.Scope)
	if in.Name == "" {
		return Runner{}, fmt.Errorf("runner name is empty: %w", ErrValidation)
	}
	if len(in.Labels) > 100 {
		return Runner{}, fmt.Errorf("%d labels, at most 100: %w", len(in.Labels), ErrValidation)
	}
	for _, r := range w.runners {
		if r.Scope == in.Scope && strings.EqualFold(r.Name, in.Name) {
			return Runner{}, fmt.Errorf("a runner named %s already exists in %s: %w", in.Name, in.Scope, ErrConflict)
		}
	}
	group := int64(DefaultGroupID)
	if in.GroupID != 0 {
		group = in.GroupID
	}
	if in.Scope.Kind == Repo && group != DefaultGroupID {
		return Runner{}, fmt.Errorf("repository runners have no group choice: %w", ErrValidation)
	}
	if in.Scope.Kind != Repo && w.groupFor(in.Scope, group) == nil {
		return Runner{}, fmt.Errorf("runner group %d in %s: %w", group, in.Scope, ErrNotFound)
	}
	if in.OS == "" {
		in.OS = "linux"
	}
	if in.Arch == "" {
		in.Arch = "x64"
	}
	var names []string
	if !in.NoDefaultLabels {
		names = append(names, "self-hosted", in.OS, in.Arch)
	} else if in.JIT {
		names = append(names, "self-hosted")
	}
	names = append(names, in.Labels...)
	w.nextRunner++
	r := &Runner{
		ID: w.nextRunner, Name: in.Name, Scope: in.Scope, GroupID: group, OS: osTitle(in.OS),
		Status: StatusOffline, Ephemeral: in.Ephemeral || in.JIT, JIT: in.JIT, CreatedAt: w.clock.Now(),
	}
	r.Labels = w.mergeLabels(nil, names)
	w.runners[r.ID] = r
	return cloneRunner(r), nil
}

// osTitle is how GitHub spells the OS in the runner's "os" field.
func osTitle(os string) string {
	switch strings.ToLower(os) {
	case "windows":
		return "Windows"
	case "macos":
		return "macOS"
	default:
		return "Linux"
	}
}

// mergeLabels appends names not yet present (case-insensitive), typing
// default names read-only.
func (w *World) mergeLabels(have []Label, names []string) []Label {
	out := append([]Label(nil), have...)
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" || hasLabel(out, n) {
			continue
		}
		typ := LabelCustom
		if defaultLabelNames[strings.ToLower(n)] {
			typ = LabelReadOnly
		}
		out = append(out, Label{ID: w.labelID(n), Name: n, Type: typ})
	}
	return out
}

func (w *World) labelID(name string) int64 {
	key := strings.ToLower(name)
	if id, ok := w.labelIDs[key]; ok {
		return id
	}
	w.nextLabel++
	w.labelIDs[key] = w.nextLabel
	return w.nextLabel
}

func hasLabel(ls []Label, name string) bool {
	for _, l := range ls {
		if strings.EqualFold(l.Name, name) {
			return true
		}
	}
	return false
}

func cloneRunner(r *Runner) Runner {
	c := *r
	c.Labels = append([]Label(nil), r.Labels...)
	return c
}

// Runners lists the runners registered at scope, by id. With a zero Scope it
// lists every runner.
func (w *World) Runners(s Scope) []Runner {
	w.mu.Lock()
	defer w.mu.Unlock()
	s = w.canonical(s)
	var out []Runner
	for _, r := range w.runners {
		if s == (Scope{}) || r.Scope == s {
			out = append(out, cloneRunner(r))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Runner returns a runner of scope by id.
func (w *World) Runner(s Scope, id int64) (Runner, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r, err := w.runnerIn(s, id)
	if err != nil {
		return Runner{}, err
	}
	return cloneRunner(r), nil
}

// RunnerByID returns a runner wherever it is registered.
func (w *World) RunnerByID(id int64) (Runner, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r, ok := w.runners[id]
	if !ok {
		return Runner{}, false
	}
	return cloneRunner(r), true
}

func (w *World) runnerIn(s Scope, id int64) (*Runner, error) {
	r, ok := w.runners[id]
	if !ok || r.Scope != w.canonical(s) {
		return nil, fmt.Errorf("runner %d in %s: %w", id, s, ErrNotFound)
	}
	return r, nil
}

// DeleteRunner unregisters a runner. A runner running a job is ErrBusy,
// except within the busy lag, when the delete succeeds as it has been seen
// to on GitHub; that is counted as a violation.
func (w *World) DeleteRunner(s Scope, id int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	r, err := w.runnerIn(s, id)
	if err != nil {
		return err
	}
	if r.Busy {
		if w.clock.Now().Sub(r.BusySince) >= w.busyLag {
			return fmt.Errorf("runner %s is running job %d: %w", r.Name, r.JobID, ErrBusy)
		}
		w.violations.BusyRunnerDeleted++
	}
	delete(w.runners, id)
	return nil
}

// ListLabels returns a runner's labels.
func (w *World) ListLabels(s Scope, id int64) ([]Label, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r, err := w.runnerIn(s, id)
	if err != nil {
		return nil, err
	}
	return append([]Label(nil), r.Labels...), nil
}

// AddLabels adds custom labels and returns all labels.
func (w *World) AddLabels(s Scope, id int64, names []string) ([]Label, error) {
	return w.changeLabels(s, id, func(r *Runner) error {
		if len(names) == 0 {
			return fmt.Errorf("no labels given: %w", ErrValidation)
		}
		r.Labels = w.mergeLabels(r.Labels, names)
		return nil
	})
}

// SetLabels replaces the custom labels (keeping read-only ones).
func (w *World) SetLabels(s Scope, id int64, names []string) ([]Label, error) {
	return w.changeLabels(s, id, func(r *Runner) error {
		r.Labels = w.mergeLabels(readOnly(r.Labels), names)
		return nil
	})
}

// RemoveAllLabels removes every custom label.
func (w *World) RemoveAllLabels(s Scope, id int64) ([]Label, error) {
	return w.changeLabels(s, id, func(r *Runner) error {
		r.Labels = readOnly(r.Labels)
		return nil
	})
}

// RemoveLabel removes one custom label; a missing one is ErrNotFound and a
// read-only one ErrValidation.
func (w *World) RemoveLabel(s Scope, id int64, name string) ([]Label, error) {
	return w.changeLabels(s, id, func(r *Runner) error {
		for i, l := range r.Labels {
			if strings.EqualFold(l.Name, name) {
				if l.Type == LabelReadOnly {
					return fmt.Errorf("label %s is read-only: %w", name, ErrValidation)
				}
				r.Labels = append(r.Labels[:i:i], r.Labels[i+1:]...)
				return nil
			}
		}
		return fmt.Errorf("label %s: %w", name, ErrNotFound)
	})
}

func readOnly(ls []Label) []Label {
	var out []Label
	for _, l := range ls {
		if l.Type == LabelReadOnly {
			out = append(out, l)
		}
	}
	return out
}

func (w *World) changeLabels(s Scope, id int64, change func(*Runner) error) ([]Label, error) {
	w.mu.Lock()
	r, err := w.runnerIn(s, id)
	if err == nil {
		err = change(r)
	}
	var labels []Label
	var events []Event
	if err == nil {
		labels = append([]Label(nil), r.Labels...)
		events = w.assign() // new labels may fit a waiting job
	}
	w.mu.Unlock()
	w.emit(events)
	return labels, err
}

// RunnerOnline marks a runner's process connected, ready for jobs.
func (w *World) RunnerOnline(id int64) error {
	w.mu.Lock()
	r, ok := w.runners[id]
	if !ok {
		w.mu.Unlock()
		return fmt.Errorf("runner %d: %w", id, ErrNotFound)
	}
	r.Status = StatusOnline
	r.LastOnline = w.clock.Now()
	events := w.assign()
	w.mu.Unlock()
	w.emit(events)
	return nil
}

// RunnerOffline marks a runner's process gone. If it was running a job, the
// job fails and the loss is counted as a violation; an ephemeral runner that
// ran its job is removed, as GitHub removes it.
func (w *World) RunnerOffline(id int64) {
	w.mu.Lock()
	var events []Event
	if r, ok := w.runners[id]; ok {
		r.Status = StatusOffline
		if r.Busy {
			w.violations.JobRunnerKilled++
			if e, ok := w.completeJob(r.JobID, "failure"); ok {
				events = append(events, e)
			}
		}
	} else {
		// Deleted while running (inside the busy lag): its job is lost too.
		for _, j := range w.jobs {
			if j.RunnerID == id && j.Status == JobInProgress {
				w.violations.JobRunnerKilled++
				if e, ok := w.completeJob(j.ID, "failure"); ok {
					events = append(events, e)
				}
			}
		}
	}
	w.mu.Unlock()
	w.emit(events)
}

// FinishJob records that runner id finished jobID successfully.
func (w *World) FinishJob(runnerID, jobID int64) error {
	w.mu.Lock()
	j, ok := w.jobs[jobID]
	if !ok || j.RunnerID != runnerID {
		w.mu.Unlock()
		return fmt.Errorf("job %d on runner %d: %w", jobID, runnerID, ErrNotFound)
	}
	var events []Event
	if e, ok := w.completeJob(jobID, "success"); ok {
		events = append(events, e)
	}
	events = append(events, w.assign()...)
	w.mu.Unlock()
	w.emit(events)
	return nil
}
