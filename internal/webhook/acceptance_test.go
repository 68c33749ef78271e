package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"testing"

	"github.com/runnerscaler/runnerscaler/internal/secret"
	"github.com/runnerscaler/runnerscaler/internal/store"
	"github.com/runnerscaler/runnerscaler/internal/webhook/webhooktest"
)

// Acceptance tests of issue #4: the handler over real HTTP on loopback, in
// front of a real store file.

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// intake serves h the way `scaler run` does (NewServer's handler) on a
// loopback port and returns the webhook URL.
func intake(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(NewServer("", h, "/webhook").Handler)
	t.Cleanup(srv.Close)
	return srv.URL + "/webhook"
}

// send POSTs d to u and returns the status.
func send(t testing.TB, u string, d delivery) int {
	t.Helper()
	r := d.request()
	req, err := http.NewRequest(r.Method, u, r.Body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = r.Header
	if d.chunked {
		req.ContentLength = -1
	} else {
		req.ContentLength = int64(len(d.body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("send: %v", err)
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func countDeliveries(t testing.TB, st *store.Store) int {
	t.Helper()
	n, err := st.CountDeliveries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAcceptanceExamplesAndRefusals(t *testing.T) {
	st := openStore(t)
	u := intake(t, New(testConfig(), st))
	ctx := context.Background()
	stored := 0
	for name, body := range examples(t) {
		event := exampleEvent(name)
		guid := "ok-" + name
		if code := send(t, u, delivery{event: event, guid: guid, body: body}); code < 200 || code > 299 {
			t.Errorf("%s: %d, want 2xx", name, code)
		}
		stored++
		if ok, err := st.HasDelivery(ctx, guid); !ok || err != nil {
			t.Errorf("%s: acknowledged but not stored (%v)", name, err)
		}

		flipped := bytes.Clone(body)
		flipped[len(flipped)/3] ^= 0x20
		truncated := body[:len(body)-len(body)/4]
		big := append(bytes.Repeat([]byte(" "), 64<<10), body...)
		for _, r := range []struct {
			what string
			d    delivery
			want int
		}{
			{"one byte changed", delivery{event: event, guid: "x" + guid, body: flipped, signature: webhooktest.Sign(testSecret, body)}, 401},
			{"unsigned", delivery{event: event, guid: "x" + guid, body: body, signature: "-"}, 401},
			{"GET", delivery{method: http.MethodGet, event: event, guid: "x" + guid}, 405},
			{"oversize", delivery{event: event, guid: "x" + guid, body: big}, 413},
			{"oversize chunked", delivery{event: event, guid: "x" + guid, body: big, chunked: true}, 413},
			{"truncated JSON", delivery{event: event, guid: "x" + guid, body: truncated}, 400},
		} {
			if code := send(t, u, r.d); code != r.want {
				t.Errorf("%s, %s: %d, want %d", name, r.what, code, r.want)
			}
		}
		if n := countDeliveries(t, st); n != stored {
			t.Fatalf("after %s: %d deliveries stored, want %d (a refused one was stored)", name, n, stored)
		}
	}

	// Form-encoded: the JSON in the payload field, the signature over the raw form.
	payload := examples(t)["workflow_job.completed.2.json"]
	form := []byte(url.Values{"payload": {string(payload)}}.Encode())
	if code := send(t, u, delivery{event: "workflow_job", guid: "form", body: form, contentType: "application/x-www-form-urlencoded"}); code != 202 {
		t.Errorf("form-encoded: %d, want 202", code)
	}
	if n := countDeliveries(t, st); n != stored+1 {
		t.Errorf("form-encoded delivery not stored: %d", n)
	}
}

func TestAcceptanceSameGUIDConcurrently(t *testing.T) {
	st := openStore(t)
	n := &recordingNotifier{}
	u := intake(t, New(testConfig(), st, WithNotifier(n)))
	body := examples(t)["workflow_job.queued.5.json"]
	const senders = 100
	codes := make(chan int, senders)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes <- send(t, u, delivery{event: "workflow_job", guid: "the-one-guid", body: body})
		}()
	}
	close(start)
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[202] != 1 || count[200] != senders-1 {
		t.Errorf("statuses %v, want one 202 and %d 200", count, senders-1)
	}
	if got := countDeliveries(t, st); got != 1 {
		t.Errorf("%d delivery rows, want 1", got)
	}
	tr, err := st.JobTransitions(context.Background(), 289782451)
	if err != nil || tr != 1 {
		t.Errorf("%d job transitions (%v), want 1", tr, err)
	}
	if n.count() != 1 {
		t.Errorf("scaler notified %d times, want 1", n.count())
	}

	// The same transition under a new GUID (GitHub sends some twice):
	// stored as a delivery, not applied again.
	if code := send(t, u, delivery{event: "workflow_job", guid: "another-guid", body: body}); code != 202 {
		t.Errorf("same transition, new GUID: %d", code)
	}
	if tr, _ := st.JobTransitions(context.Background(), 289782451); tr != 1 || n.count() != 1 {
		t.Errorf("a repeated transition was applied again: %d transitions, %d notifications", tr, n.count())
	}
}

func TestAcceptanceStoreFailureIs503(t *testing.T) {
	fs := newFakeStore()
	fs.err = fmt.Errorf("commit: %w", errors.New("disk I/O error"))
	u := intake(t, New(testConfig(), fs))
	for name, body := range examples(t) {
		if code := send(t, u, delivery{event: exampleEvent(name), guid: name, body: body}); code != 503 {
			t.Errorf("%s: %d, want 503", name, code)
		}
	}
}

func TestAcceptanceSecretRotation(t *testing.T) {
	st := openStore(t)
	cfg := Config{Secrets: []secret.String{"whsec_old", "whsec_new"}}
	u := intake(t, New(cfg, st))
	body := examples(t)["ping.event.1.json"]
	for i, s := range []string{"whsec_old", "whsec_new"} {
		if code := send(t, u, delivery{event: "ping", guid: fmt.Sprint("rot-", i), body: body, signature: webhooktest.Sign(s, body)}); code != 200 {
			t.Errorf("signed with %s: %d, want 200", s, code)
		}
	}
	if code := send(t, u, delivery{event: "ping", guid: "rot-x", body: body, signature: webhooktest.Sign("whsec_retired", body)}); code != 401 {
		t.Errorf("signed with a removed secret: %d, want 401", code)
	}
	if n := countDeliveries(t, st); n != 2 {
		t.Errorf("%d deliveries stored, want 2", n)
	}
}
