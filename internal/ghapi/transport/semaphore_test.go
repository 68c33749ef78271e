package transport

import (
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
)

// waitFor yields until cond holds (no sleeping).
func waitFor(cond func() bool) {
	for !cond() {
		runtime.Gosched()
	}
}

func TestSemaphoreCapsInFlight(t *testing.T) {
	unblock := make(chan struct{})
	var hits atomic.Int32
	// The server sends headers, then holds the body open until released.
	blocking := func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(200)
		_, _ = io.WriteString(w, "partial")
		http.NewResponseController(w).Flush()
		select {
		case <-unblock:
		case <-r.Context().Done():
		}
	}
	sem := NewSemaphore(2)
	e := newEnv(t, Options{InFlight: sem}, blocking)
	defer close(unblock)
	// A second Transport sharing the Semaphore.
	other := New(Options{InFlight: sem, Base: e.srv.Client().Transport})

	r1, err := e.do(context.Background(), "GET", runnersPath, "")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+runnersPath, nil)
	r2, err := other.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if sem.InUse() != 2 || sem.Cap() != 2 {
		t.Fatalf("InUse = %d, Cap = %d", sem.InUse(), sem.Cap())
	}

	third := make(chan *http.Response)
	go func() {
		resp, err := e.do(context.Background(), "GET", runnersPath, "")
		if err != nil {
			t.Error(err)
		}
		third <- resp
	}()
	waitFor(func() bool { return sem.Waiting() == 1 })
	if n := hits.Load(); n != 2 {
		t.Fatalf("server saw %d requests while the third waits, want 2", n)
	}

	// Cancellation while waiting for a slot returns promptly.
	ctx, cancel := context.WithCancel(context.Background())
	fourth := make(chan error)
	go func() {
		_, err := e.do(ctx, "GET", runnersPath, "")
		fourth <- err
	}()
	waitFor(func() bool { return sem.Waiting() == 2 })
	cancel()
	if err := <-fourth; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled waiter: err = %v, want context.Canceled", err)
	}

	// Closing a body (twice: released once) lets the third through.
	r1.Body.Close()
	r1.Body.Close()
	r3 := <-third
	if n := hits.Load(); n != 3 {
		t.Errorf("server hits = %d, want 3", n)
	}
	if sem.InUse() != 2 {
		t.Errorf("InUse = %d, want 2 (double Close must release once)", sem.InUse())
	}
	r2.Body.Close()
	r3.Body.Close()
	if sem.InUse() != 0 || sem.Waiting() != 0 {
		t.Errorf("InUse = %d, Waiting = %d after all closed", sem.InUse(), sem.Waiting())
	}
}

func TestBodyReleasesOnEOF(t *testing.T) {
	sem := NewSemaphore(1)
	e := newEnv(t, Options{InFlight: sem}, respond(200, `{"a":1}`))
	resp, err := e.do(context.Background(), "GET", runnersPath, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	if sem.InUse() != 0 {
		t.Errorf("slot held after EOF")
	}
	resp.Body.Close()
	if sem.InUse() != 0 {
		t.Errorf("InUse = %d after EOF and Close", sem.InUse())
	}
	// The slot is free: another request goes through.
	resp, err = e.do(context.Background(), "GET", runnersPath, "")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func TestNewSemaphoreMinimum(t *testing.T) {
	if c := NewSemaphore(0).Cap(); c != 1 {
		t.Errorf("NewSemaphore(0).Cap() = %d, want 1", c)
	}
	if c := New(Options{}).sem.Cap(); c != 10 {
		t.Errorf("default in-flight cap = %d, want 10", c)
	}
}
