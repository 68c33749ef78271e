package recovery

import (
	"context"
	"fmt"
	"sync"

	"github.com/runnerscaler/runnerscaler/internal/ghapi"
	"github.com/runnerscaler/runnerscaler/internal/store"
)

// DeliveriesAPI is what the Redeliverer needs from GitHub: the App's webhook
// delivery log and redelivery. *ghapi.Client satisfies it; both calls need
// GitHub App auth.
type DeliveriesAPI interface {
	// ListHookDeliveries returns one page, newest first, and the cursor of
	// the next page ("" at the end).
	ListHookDeliveries(ctx context.Context, opts ghapi.ListDeliveriesOptions) ([]*ghapi.HookDelivery, string, error)
	// RedeliverHookDelivery asks GitHub to send a delivery again.
	RedeliverHookDelivery(ctx context.Context, deliveryID int64) error
}

// JobsAPI reads one workflow job from GitHub; s is the job's repository.
// *ghapi.Client satisfies it.
type JobsAPI interface {
	GetWorkflowJob(ctx context.Context, s ghapi.Scope, jobID int64) (*ghapi.WorkflowJob, error)
}

var (
	_ DeliveriesAPI = (*ghapi.Client)(nil)
	_ JobsAPI       = (*ghapi.Client)(nil)
)

// QueuedJobs lists jobs from the store; the checker asks for
// store.JobFilter{Status: store.JobQueued}. *store.Store satisfies it.
type QueuedJobs interface {
	Jobs(ctx context.Context, f store.JobFilter) ([]store.Job, error)
}

var _ QueuedJobs = (*store.Store)(nil)

// JobApplier takes a job transition the StaleJobs checker learned from
// GitHub instead of from a webhook. The daemon records it in the store (see
// SyntheticDelivery) and hands it to the engine, as the intake does with a
// webhook. It must be idempotent: a transition whose apply failed is
// reported again on a later cycle.
type JobApplier interface {
	ApplyJobEvent(ctx context.Context, ev store.JobEvent) error
}

// CursorStore keeps small named values across restarts; the Redeliverer
// keeps its watermark under one name. LoadCursor reports ok=false for a name
// never saved.
type CursorStore interface {
	LoadCursor(ctx context.Context, name string) (value string, ok bool, err error)
	SaveCursor(ctx context.Context, name, value string) error
}

// MemoryCursors is a CursorStore in memory: a restart forgets it. The zero
// value is ready to use; it is safe for concurrent use.
type MemoryCursors struct {
	mu sync.Mutex
	m  map[string]string
}

var _ CursorStore = (*MemoryCursors)(nil)

// LoadCursor implements CursorStore.
func (m *MemoryCursors) LoadCursor(_ context.Context, name string) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[name]
	return v, ok, nil
}

// SaveCursor implements CursorStore.
func (m *MemoryCursors) SaveCursor(_ context.Context, name, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string]string{}
	}
	m.m[name] = value
	return nil
}

// SyntheticDelivery is the delivery record under which a JobApplier can
// store a transition the checker reported (store.Ingest needs one). Its GUID
// is derived from the job and the action, so reporting the same transition
// twice is a duplicate, not a second delivery; it cannot collide with
// GitHub's GUIDs, which are UUIDs. ReceivedAt is left for the store to stamp
// (now): it is when the daemon learned the transition.
func SyntheticDelivery(ev store.JobEvent) store.Delivery {
	return store.Delivery{
		GUID:    fmt.Sprintf("recovery:job:%d:%s", ev.JobID, ev.Action),
		Event:   "workflow_job",
		Action:  ev.Action,
		Outcome: "job",
	}
}
