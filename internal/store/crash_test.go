package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

const crashEnv = "RUNNERSCALER_STORE_CRASH_CHILD"

// TestCrashChild is the child of TestSIGKILLLosesNothing: it ingests from
// many goroutines until killed, printing each GUID after Ingest returned.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("only runs as the child of TestSIGKILLLosesNothing")
	}
	s, err := Open(context.Background(), path, Options{Sync: SyncNormal})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := int64(w*1_000_000 + i + 1)
				guid := fmt.Sprintf("crash-%d", id)
				ev := testEvent(id, JobQueued)
				if _, err := s.Ingest(context.Background(), delivery(guid), &ev); err != nil {
					fmt.Println("ingest:", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(out, "%s %d\n", guid, id)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func TestSIGKILLLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	path := filepath.Join(t.TempDir(), "state.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type ack struct {
		guid string
		id   int64
	}
	var acked []ack
	sc := bufio.NewScanner(stdout)
	killed := false
	for sc.Scan() {
		var a ack
		if _, err := fmt.Sscanf(sc.Text(), "%s %d", &a.guid, &a.id); err != nil {
			_ = cmd.Process.Kill()
			t.Fatalf("child said %q", sc.Text())
		}
		acked = append(acked, a)
		if len(acked) == 500 && !killed {
			// Mid-stream: 16 writers are between Ingest and commit.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	_ = cmd.Wait()
	if !killed {
		t.Fatalf("child ended after %d acknowledgements without being killed", len(acked))
	}

	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	ctx := context.Background()
	lost := 0
	for _, a := range acked {
		ok, err := s.HasDelivery(ctx, a.guid)
		if err != nil {
			t.Fatal(err)
		}
		j, found, err := s.Job(ctx, a.id)
		if err != nil {
			t.Fatal(err)
		}
		if !ok || !found || j.Status != JobQueued {
			lost++
		}
	}
	n, _ := s.CountDeliveries(ctx)
	t.Logf("%d acknowledged, %d stored, %d lost", len(acked), n, lost)
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged writes lost", lost, len(acked))
	}
	// And the store still takes writes.
	if _, err := s.Ingest(ctx, delivery("after-crash"), nil); err != nil {
		t.Fatal(err)
	}
}
