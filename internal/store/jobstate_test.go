package store

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

var actions = []string{JobWaiting, JobQueued, JobInProgress, JobCompleted}

// permutations returns every ordering of xs.
func permutations(xs []string) [][]string {
	if len(xs) <= 1 {
		return [][]string{append([]string(nil), xs...)}
	}
	var out [][]string
	for i := range xs {
		rest := make([]string, 0, len(xs)-1)
		rest = append(rest, xs[:i]...)
		rest = append(rest, xs[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]string{xs[i]}, p...))
		}
	}
	return out
}

var evBase = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)

// testEvent is the event GitHub would send for action on job id. The
// descriptive fields are the same in every event (as on GitHub); the runner
// differs between in_progress and completed so the tests can tell which one
// won.
func testEvent(id int64, action string) JobEvent {
	ev := JobEvent{
		Action:         action,
		JobID:          id,
		RunID:          id * 10,
		RepoID:         4242,
		Repo:           "acme/widgets",
		Org:            "acme",
		InstallationID: 99,
		Labels:         []string{"self-hosted", "linux", "x64"},
		Name:           "build (ubuntu)",
		WorkflowName:   "CI",
		At:             evBase.Add(time.Duration(jobRank(action)) * time.Second),
	}
	switch action {
	case JobInProgress:
		ev.RunnerID, ev.RunnerName, ev.RunnerGroupID, ev.RunnerGroupName = 11, "rs-ip", 1, "Default"
	case JobCompleted:
		ev.RunnerID, ev.RunnerName, ev.RunnerGroupID, ev.RunnerGroupName = 12, "rs-done", 2, "big"
		ev.Conclusion = "success"
	}
	return ev
}

// expectJob is what the job must be after the events in seen (any order).
func expectJob(id int64, seen []string, now time.Time) Job {
	has := map[string]bool{}
	top := -1
	for _, a := range seen {
		has[a] = true
		top = max(top, jobRank(a))
	}
	j := Job{ID: id, UpdatedAt: now}
	if len(seen) == 0 {
		return Job{}
	}
	j.Status = actions[top]
	e := testEvent(id, JobQueued)
	j.RunID, j.RepoID, j.Repo, j.Org, j.InstallationID = e.RunID, e.RepoID, e.Repo, e.Org, e.InstallationID
	j.Labels, j.Name, j.WorkflowName = e.Labels, e.Name, e.WorkflowName
	stamp := func(a string) time.Time {
		if has[a] {
			return testEvent(id, a).At
		}
		return time.Time{}
	}
	j.WaitingAt, j.QueuedAt = stamp(JobWaiting), stamp(JobQueued)
	j.InProgressAt, j.CompletedAt = stamp(JobInProgress), stamp(JobCompleted)
	// The completed event's runner wins whatever the order; without it,
	// in_progress's.
	switch {
	case has[JobCompleted]:
		r := testEvent(id, JobCompleted)
		j.RunnerID, j.RunnerName, j.RunnerGroupID, j.RunnerGroupName = r.RunnerID, r.RunnerName, r.RunnerGroupID, r.RunnerGroupName
		j.Conclusion = r.Conclusion
	case has[JobInProgress]:
		r := testEvent(id, JobInProgress)
		j.RunnerID, j.RunnerName, j.RunnerGroupID, j.RunnerGroupName = r.RunnerID, r.RunnerName, r.RunnerGroupID, r.RunnerGroupName
	}
	return j
}

func TestApplyJobEventEveryOrder(t *testing.T) {
	now := time.Date(2025, 3, 4, 6, 0, 0, 0, time.UTC)
	perms := permutations(actions)
	if len(perms) != 24 {
		t.Fatalf("%d permutations, want 24", len(perms))
	}
	for _, order := range perms {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			var j Job
			for i, a := range order {
				prev := j
				j = applyJobEvent(j, testEvent(7, a), now)
				seen := order[:i+1]
				if want := expectJob(7, seen, now); !reflect.DeepEqual(j, want) {
					t.Fatalf("after %v:\n got %+v\nwant %+v", seen, j, want)
				}
				if jobRank(j.Status) < jobRank(prev.Status) {
					t.Fatalf("after %v: status went back from %s to %s", seen, prev.Status, j.Status)
				}
				if prev.Status == JobCompleted && j.Status != JobCompleted {
					t.Fatalf("after %v: completed job became %s", seen, j.Status)
				}
				sawCompleted := false
				for _, s := range seen {
					sawCompleted = sawCompleted || s == JobCompleted
				}
				if sawCompleted && (j.Demand() || j.Status != JobCompleted) {
					t.Fatalf("after %v: a completed job shows as %s (demand=%v)", seen, j.Status, j.Demand())
				}
			}
		})
	}
}

func TestApplyJobEventRules(t *testing.T) {
	now := evBase.Add(time.Hour)
	tests := []struct {
		name  string
		cur   Job
		ev    JobEvent
		check func(t *testing.T, j Job)
	}{
		{
			name: "waiting is not demand",
			ev:   testEvent(1, JobWaiting),
			check: func(t *testing.T, j Job) {
				if j.Status != JobWaiting || j.Demand() {
					t.Errorf("status %s demand %v, want waiting and no demand", j.Status, j.Demand())
				}
			},
		},
		{
			name: "queued is demand",
			cur:  applyJobEvent(Job{}, testEvent(1, JobWaiting), now),
			ev:   testEvent(1, JobQueued),
			check: func(t *testing.T, j Job) {
				if j.Status != JobQueued || !j.Demand() {
					t.Errorf("status %s demand %v, want queued and demand", j.Status, j.Demand())
				}
			},
		},
		{
			name: "in_progress before queued records the runner; late queued keeps it",
			cur:  applyJobEvent(Job{}, testEvent(1, JobInProgress), now),
			ev:   JobEvent{Action: JobQueued, JobID: 1, Repo: "acme/widgets", At: evBase},
			check: func(t *testing.T, j Job) {
				if j.Status != JobInProgress || j.RunnerName != "rs-ip" || j.RunnerID != 11 || !j.QueuedAt.Equal(evBase) {
					t.Errorf("got %+v", j)
				}
			},
		},
		{
			name: "late lower-rank event fills only missing fields",
			cur:  Job{ID: 1, Status: JobCompleted, Repo: "acme/widgets", RunnerName: "a"},
			ev:   JobEvent{Action: JobQueued, JobID: 1, Repo: "other/repo", RunnerName: "b", Org: "acme", Labels: []string{"x"}},
			check: func(t *testing.T, j Job) {
				if j.Status != JobCompleted || j.Repo != "acme/widgets" || j.RunnerName != "a" || j.Org != "acme" ||
					!reflect.DeepEqual(j.Labels, []string{"x"}) {
					t.Errorf("got %+v", j)
				}
			},
		},
		{
			name: "a zero At is stamped with now",
			ev:   JobEvent{Action: JobQueued, JobID: 1},
			check: func(t *testing.T, j Job) {
				if !j.QueuedAt.Equal(now) || !j.UpdatedAt.Equal(now) {
					t.Errorf("queued_at %v updated_at %v, want %v", j.QueuedAt, j.UpdatedAt, now)
				}
			},
		},
		{
			name: "own timestamp is not overwritten",
			cur:  Job{ID: 1, Status: JobQueued, QueuedAt: evBase},
			ev:   JobEvent{Action: JobQueued, JobID: 1, At: evBase.Add(time.Minute)},
			check: func(t *testing.T, j Job) {
				if !j.QueuedAt.Equal(evBase) {
					t.Errorf("queued_at %v, want %v", j.QueuedAt, evBase)
				}
			},
		},
		{
			name: "pool is the scaler's",
			cur:  Job{ID: 1, Status: JobQueued, Pool: "linux"},
			ev:   testEvent(1, JobCompleted),
			check: func(t *testing.T, j Job) {
				if j.Pool != "linux" || j.Status != JobCompleted {
					t.Errorf("got %+v", j)
				}
			},
		},
		{
			name: "labels are copied, not aliased",
			ev:   testEvent(1, JobQueued),
			check: func(t *testing.T, j Job) {
				j.Labels[0] = "changed"
				if testEvent(1, JobQueued).Labels[0] == "changed" {
					t.Error("aliased")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, applyJobEvent(tt.cur, tt.ev, now))
		})
	}
}

func TestApplyJobEventIdempotentValue(t *testing.T) {
	// The store never applies a (job, action) twice, but the function is
	// also harmless if it were: the same event again changes nothing but
	// UpdatedAt.
	now := evBase.Add(time.Hour)
	for _, a := range actions {
		j1 := applyJobEvent(Job{}, testEvent(3, a), now)
		j2 := applyJobEvent(j1, testEvent(3, a), now.Add(time.Minute))
		j2.UpdatedAt = j1.UpdatedAt
		if !reflect.DeepEqual(j1, j2) {
			t.Errorf("%s twice:\n%+v\n%+v", a, j1, j2)
		}
	}
}
