package webhook

import (
	"context"
	"slices"
	"sync"

	"github.com/runnerscaler/runnerscaler/internal/store"
)

// fakeStore is an in-memory Recorder with the store's dedupe rules: a known
// GUID changes nothing; a (job, action) is applied once.
type fakeStore struct {
	mu          sync.Mutex
	err         error // returned by every Ingest when set
	deliveries  map[string]store.Delivery
	transitions map[int64][]string
	jobs        map[int64]store.Job
	events      []store.JobEvent
}

func newFakeStore() *fakeStore {
	return &fakeStore{
		deliveries:  map[string]store.Delivery{},
		transitions: map[int64][]string{},
		jobs:        map[int64]store.Job{},
	}
}

func (f *fakeStore) Ingest(ctx context.Context, d store.Delivery, ev *store.JobEvent) (store.IngestResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return store.IngestResult{}, f.err
	}
	if err := ctx.Err(); err != nil {
		return store.IngestResult{}, err
	}
	if _, ok := f.deliveries[d.GUID]; ok {
		return store.IngestResult{Duplicate: true}, nil
	}
	f.deliveries[d.GUID] = d
	var res store.IngestResult
	if ev != nil {
		f.events = append(f.events, *ev)
		j := f.jobs[ev.JobID]
		if !slices.Contains(f.transitions[ev.JobID], ev.Action) {
			f.transitions[ev.JobID] = append(f.transitions[ev.JobID], ev.Action)
			j.ID, j.Status, j.Labels, j.Repo = ev.JobID, ev.Action, ev.Labels, ev.Repo
			f.jobs[ev.JobID] = j
			res.Applied = true
		}
		res.Job = j
	}
	return res, nil
}

func (f *fakeStore) CountDeliveries(context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.deliveries), nil
}

func (f *fakeStore) JobTransitions(_ context.Context, id int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.transitions[id]), nil
}

func (f *fakeStore) HasDelivery(_ context.Context, guid string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.deliveries[guid]
	return ok, nil
}

func (f *fakeStore) delivery(guid string) (store.Delivery, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.deliveries[guid]
	return d, ok
}

func (f *fakeStore) lastEvent() (store.JobEvent, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.events) == 0 {
		return store.JobEvent{}, false
	}
	return f.events[len(f.events)-1], true
}
