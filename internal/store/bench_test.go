package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkStoreIngest writes workflow_job deliveries (each job queued, then
// in_progress, then completed) from 16 goroutines per CPU, as concurrent
// webhook handlers would, into a real file. ns/op is the store's cost per
// durable delivery at that concurrency; writes/commit is the mean batch.
func BenchmarkStoreIngest(b *testing.B) {
	for _, sync := range []string{SyncNormal, SyncFull} {
		b.Run("sync="+sync, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "state.db")
			s, err := Open(context.Background(), path, Options{Sync: sync})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var seq atomic.Int64
			steps := []string{JobQueued, JobInProgress, JobCompleted}
			now := time.Now()
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					n := seq.Add(1)
					id := 10_000_000 + n/3
					action := steps[n%3]
					ev := JobEvent{
						Action:         action,
						JobID:          id,
						RunID:          id / 4,
						RepoID:         123456,
						Repo:           "acme/widgets",
						Org:            "acme",
						InstallationID: 987654,
						Labels:         []string{"self-hosted", "linux", "x64", "gpu"},
						Name:           "build (ubuntu-22.04, go1.26)",
						WorkflowName:   "CI",
						At:             now,
					}
					if action != JobQueued {
						ev.RunnerID, ev.RunnerName = id, fmt.Sprintf("rs-linux-%d", id)
						ev.RunnerGroupID, ev.RunnerGroupName = 1, "Default"
					}
					if action == JobCompleted {
						ev.Conclusion = "success"
					}
					d := Delivery{
						GUID:    fmt.Sprintf("6b3f2d4e-%08x-11ef-8a1c-%012x", n, id),
						Event:   "workflow_job",
						Action:  action,
						HookID:  4242,
						Outcome: "job",
					}
					if _, err := s.Ingest(ctx, d, &ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			st := s.Stats()
			if st.Commits > 0 {
				b.ReportMetric(float64(st.Writes)/float64(st.Commits), "writes/commit")
			}
		})
	}
}
