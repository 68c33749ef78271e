package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestDemo runs `scaler demo` in-process with a small burst: the simulator,
// the daemon and real runner processes (this test binary as sim-runner).
func TestDemo(t *testing.T) {
	skipWithoutProcesses(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var progress strings.Builder
	sum, err := runDemo(ctx, demoOptions{
		Jobs: 10, JobDuration: 200 * time.Millisecond, Timeout: 60 * time.Second,
		RunnerCommand: scalerExe(t), ExtraEnv: map[string]string{execMainEnv: "1"},
		Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(sum)
	t.Logf("summary: %s", b)
	if !sum.OK {
		t.Fatalf("demo failed: %v\nprogress:\n%s", sum.Problems, progress.String())
	}
	if sum.JobsSubmitted != 10 || sum.JobsCompleted != sum.JobsRunnable || sum.JobsUnmatched != sum.JobsNotRunnable ||
		sum.JobsNotRunnable < 2 || sum.JobsRunnable+sum.JobsNotRunnable != 10 {
		t.Errorf("jobs: %+v", sum)
	}
	if sum.RunnersLaunched != sum.JobsRunnable {
		t.Errorf("%d runners launched for %d runnable ephemeral jobs", sum.RunnersLaunched, sum.JobsRunnable)
	}
	if sum.LeftoverRunners != 0 || sum.LeftoverInstances != 0 || sum.Violations != 0 {
		t.Errorf("left behind or harmed: %+v", sum)
	}
}

func TestDemoJSONKeys(t *testing.T) {
	b, err := json.Marshal(demoSummary{})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"jobs_submitted", "jobs_runnable", "jobs_completed", "jobs_unmatched", "runners_launched",
		"api_calls", "api_calls_per_job", "queue_seconds_p50", "queue_seconds_p95", "leftover_runners",
		"leftover_instances", "violations"} {
		if _, ok := m[k]; !ok {
			t.Errorf("summary JSON lacks %q", k)
		}
	}
}

func TestDemoCounts(t *testing.T) {
	for _, n := range []int{1, 3, 5, 10, 20, 50, 101} {
		c := demoCounts(n)
		total := 0
		for _, x := range c {
			total += x
		}
		if total != n {
			t.Errorf("demoCounts(%d) = %v, sum %d", n, c, total)
		}
		if n >= len(demoMix) {
			for i, x := range c {
				if x == 0 {
					t.Errorf("demoCounts(%d): kind %d gets no job", n, i)
				}
			}
		}
	}
}
