package store

import (
	"slices"
	"time"
)

// jobRank orders job statuses: waiting < queued < in_progress < completed.
// Anything else (including "", a job not seen yet) ranks -1.
func jobRank(status string) int {
	switch status {
	case JobWaiting:
		return 0
	case JobQueued:
		return 1
	case JobInProgress:
		return 2
	case JobCompleted:
		return 3
	}
	return -1
}

// validAction reports whether a is one of the four workflow_job actions.
func validAction(a string) bool { return jobRank(a) >= 0 }

// Demand reports whether the job is waiting for a runner: queued, and not
// yet seen in progress or completed. A waiting job (environment protection,
// concurrency group) is not demand until GitHub queues it.
func (j Job) Demand() bool { return j.Status == JobQueued }

// applyJobEvent is the job state machine: the job after ev, given the job as
// stored (the zero Job when there is none). It is pure; the store calls it
// only for a (job, action) not applied before, which is what makes a
// repeated transition a no-op.
//
// Rules:
//   - Status only moves forward (waiting < queued < in_progress < completed).
//     An event of lower rank than the stored status, arriving late, never
//     moves it back: a completed that came before its queued stays
//     completed, so it never becomes demand.
//   - Each action stamps its own timestamp (ev.At, or now when GitHub gave
//     none), whatever order it arrives in, and only if that timestamp is not
//     already set.
//   - Descriptive fields (repository, labels, names, runner, conclusion):
//     an event not behind the stored status overwrites them with any
//     non-empty value it carries; a late (lower-rank) event only fills in
//     fields still empty. So an in_progress that arrives before its queued
//     records the runner, and the late queued cannot erase it.
//   - UpdatedAt is now. Pool is the scaler's and is never touched here.
func applyJobEvent(cur Job, ev JobEvent, now time.Time) Job {
	j := cur
	j.ID = ev.JobID
	evRank := jobRank(ev.Action)
	forward := evRank >= jobRank(cur.Status)
	if evRank > jobRank(cur.Status) {
		j.Status = ev.Action
	}

	at := ev.At
	if at.IsZero() {
		at = now
	}
	at = at.UTC()
	switch ev.Action {
	case JobWaiting:
		fillTime(&j.WaitingAt, at)
	case JobQueued:
		fillTime(&j.QueuedAt, at)
	case JobInProgress:
		fillTime(&j.InProgressAt, at)
	case JobCompleted:
		fillTime(&j.CompletedAt, at)
	}

	setInt(&j.RunID, ev.RunID, forward)
	setInt(&j.RepoID, ev.RepoID, forward)
	setStr(&j.Repo, ev.Repo, forward)
	setStr(&j.Org, ev.Org, forward)
	setInt(&j.InstallationID, ev.InstallationID, forward)
	if len(ev.Labels) > 0 && (forward || len(j.Labels) == 0) {
		j.Labels = slices.Clone(ev.Labels)
	}
	setStr(&j.Name, ev.Name, forward)
	setStr(&j.WorkflowName, ev.WorkflowName, forward)
	setStr(&j.Conclusion, ev.Conclusion, forward)
	setInt(&j.RunnerID, ev.RunnerID, forward)
	setStr(&j.RunnerName, ev.RunnerName, forward)
	setInt(&j.RunnerGroupID, ev.RunnerGroupID, forward)
	setStr(&j.RunnerGroupName, ev.RunnerGroupName, forward)

	j.UpdatedAt = now.UTC()
	return j
}

func fillTime(dst *time.Time, v time.Time) {
	if dst.IsZero() {
		*dst = v
	}
}

func setStr(dst *string, v string, overwrite bool) {
	if v != "" && (overwrite || *dst == "") {
		*dst = v
	}
}

func setInt(dst *int64, v int64, overwrite bool) {
	if v != 0 && (overwrite || *dst == 0) {
		*dst = v
	}
}
