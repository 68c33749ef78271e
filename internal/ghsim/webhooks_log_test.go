package ghsim

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

func TestHookLogPagination(t *testing.T) {
	rc := newHKReceiver(t)
	s := hkServer(t, rc.srv.URL)
	s.SetURL("http://sim.test:1234")
	hkCreate(t, s, world.JobInput{Count: 5, Waiting: true})
	all := hkWaitLog(t, s, 5)
	if len(all) != 5 {
		t.Fatalf("%d records, want 5", len(all))
	}

	var pages [][]Delivery
	cursor := ""
	for {
		page, next, err := s.hooks.List(cursor, 2, "")
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, page)
		if next == "" {
			break
		}
		if len(pages) > 5 {
			t.Fatal("pagination does not end")
		}
		cursor = next
	}
	if len(pages) != 3 || len(pages[0]) != 2 || len(pages[1]) != 2 || len(pages[2]) != 1 {
		t.Fatalf("page sizes %d/%d/%d...", len(pages[0]), len(pages[1]), len(pages[len(pages)-1]))
	}
	var ids []int64
	for _, p := range pages {
		for _, d := range p {
			ids = append(ids, d.ID)
		}
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] >= ids[i-1] {
			t.Fatalf("ids %v are not newest first", ids)
		}
	}

	// A cursor stays valid while new deliveries arrive: the next page
	// continues below it, the new ones show up on the first page.
	first, next, err := s.hooks.List("", 2, "")
	if err != nil {
		t.Fatal(err)
	}
	hkCreate(t, s, world.JobInput{Waiting: true})
	hkWaitLog(t, s, 6)
	second, _, err := s.hooks.List(next, 2, "")
	if err != nil {
		t.Fatal(err)
	}
	if second[0].ID != first[1].ID-1 {
		t.Fatalf("page after cursor %s starts at %d, want %d", next, second[0].ID, first[1].ID-1)
	}

	// Get and the payload's URLs, which name the simulator.
	d, ok := s.hooks.Get(ids[2])
	if !ok || d.ID != ids[2] {
		t.Fatalf("Get(%d) = %v, %v", ids[2], d.ID, ok)
	}
	var p struct {
		WorkflowJob struct{ URL string } `json:"workflow_job"`
	}
	if err := json.Unmarshal(d.RequestPayload, &p); err != nil || !strings.HasPrefix(p.WorkflowJob.URL, "http://sim.test:1234/repos/octo-org/app/actions/jobs/") {
		t.Fatalf("workflow_job.url %q (%v)", p.WorkflowJob.URL, err)
	}
	if _, ok := s.hooks.Get(12345); ok {
		t.Fatal("Get of an unknown id succeeded")
	}

	// Bad input.
	for _, c := range []struct{ cursor, status string }{{"bogus", ""}, {"v1_x", ""}, {"v1_0", ""}, {"", "ok"}} {
		if _, _, err := s.hooks.List(c.cursor, 10, c.status); !errors.Is(err, world.ErrValidation) {
			t.Errorf("List(%q, %q): %v, want ErrValidation", c.cursor, c.status, err)
		}
	}
	// per_page outside 1..100 is clamped.
	if page, _, err := s.hooks.List("", 0, ""); err != nil || len(page) != 6 {
		t.Errorf("per_page 0: %d records, %v", len(page), err)
	}
	if page, _, err := s.hooks.List("", 1000, ""); err != nil || len(page) != 6 {
		t.Errorf("per_page 1000: %d records, %v", len(page), err)
	}
}

func TestHookFailuresRecordedNotRetried(t *testing.T) {
	rc := newHKReceiver(t)
	rc.status.Store(http.StatusInternalServerError)
	s := hkServer(t, rc.srv.URL)
	hkCreate(t, s, world.JobInput{Count: 2, Waiting: true})
	hkWaitLog(t, s, 2)
	rc.status.Store(http.StatusAccepted)
	hkCreate(t, s, world.JobInput{Count: 3, Waiting: true})
	hkWaitLog(t, s, 5)

	fails := hkAll(t, s, "failure")
	oks := hkAll(t, s, "success")
	if len(fails) != 2 || len(oks) != 3 {
		t.Fatalf("%d failures and %d successes, want 2 and 3", len(fails), len(oks))
	}
	for _, d := range fails {
		if d.StatusCode != 500 || d.Status != "Invalid HTTP Response: 500" || d.Succeeded() {
			t.Errorf("failure record %+v", d)
		}
	}
	for _, d := range oks {
		if d.StatusCode != 202 || d.Status != "OK" {
			t.Errorf("success record %+v", d)
		}
	}
	// Paging through a filtered list.
	page, next, err := s.hooks.List("", 2, "success")
	if err != nil || len(page) != 2 || next == "" {
		t.Fatalf("first success page: %d, %q, %v", len(page), next, err)
	}
	page, next, err = s.hooks.List(next, 2, "success")
	if err != nil || len(page) != 1 || next != "" || page[0].StatusCode != 202 {
		t.Fatalf("second success page: %d, %q, %v", len(page), next, err)
	}

	// Nothing is retried: the receiver saw exactly one request per record.
	if n := len(rc.got); n != 5 {
		t.Fatalf("receiver got %d requests, want 5", n)
	}
	if st := s.Stats().Webhooks; st.Sent != 3 || st.Failed != 2 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	// The workers end once the queue is empty.
	deadline := time.Now().Add(hkWait)
	for {
		s.hooks.mu.Lock()
		active := s.hooks.active
		s.hooks.mu.Unlock()
		if active == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d delivery workers still running", active)
		}
		time.Sleep(hkPollGap)
	}
}

func TestHookReceiverDown(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	url := down.URL
	down.Close()
	s := hkServer(t, url)
	hkCreate(t, s, world.JobInput{Waiting: true})
	d := hkWaitLog(t, s, 1)[0]
	if d.StatusCode != 0 || d.Succeeded() || !strings.HasPrefix(d.Status, "We couldn't deliver this payload") {
		t.Fatalf("record %+v", d)
	}
	if st := s.Stats().Webhooks; st.Failed != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHookTimeout(t *testing.T) {
	rc := newHKReceiver(t)
	rc.hang.Store(true)
	s := hkServer(t, rc.srv.URL)
	s.hooks.timeout = 50 * time.Millisecond
	hkCreate(t, s, world.JobInput{Waiting: true})
	d := hkWaitLog(t, s, 1)[0]
	if d.StatusCode != 0 || d.Status != "timed out" || d.Duration < 50*time.Millisecond {
		t.Fatalf("record %+v", d)
	}
}

func TestHookRedeliver(t *testing.T) {
	rc := newHKReceiver(t)
	rc.status.Store(http.StatusServiceUnavailable)
	s := hkServer(t, rc.srv.URL)
	hkCreate(t, s, world.JobInput{Waiting: true})
	first := rc.next(t)
	orig := hkWaitLog(t, s, 1)[0]
	if orig.Succeeded() {
		t.Fatalf("first attempt %+v", orig)
	}

	rc.status.Store(http.StatusOK)
	if err := s.hooks.Redeliver(orig.ID); err != nil {
		t.Fatal(err)
	}
	again := rc.next(t)
	if g := again.header.Get("X-GitHub-Delivery"); g != first.header.Get("X-GitHub-Delivery") || g != orig.GUID {
		t.Fatalf("redelivery GUID %q, original %q", g, orig.GUID)
	}
	if string(again.body) != string(first.body) {
		t.Fatal("redelivery body differs")
	}
	if again.header.Get("X-Hub-Signature-256") != first.header.Get("X-Hub-Signature-256") {
		t.Fatal("redelivery signature differs")
	}
	log := hkWaitLog(t, s, 2)
	re := log[0]
	if !re.Redelivery || re.GUID != orig.GUID || re.ID <= orig.ID || re.Status != "OK" || re.Action != orig.Action ||
		string(re.RequestPayload) != string(orig.RequestPayload) {
		t.Fatalf("redelivery record %+v", re)
	}
	if o, _ := s.hooks.Get(orig.ID); o.Redelivery || o.Succeeded() {
		t.Fatalf("original record changed: %+v", o)
	}
	if err := s.hooks.Redeliver(999); !errors.Is(err, world.ErrNotFound) {
		t.Fatalf("Redeliver(999): %v, want ErrNotFound", err)
	}
}

func TestHookDropAndRetarget(t *testing.T) {
	rc := newHKReceiver(t)
	s := hkServer(t, rc.srv.URL)
	p := 1.0
	if _, err := s.hooks.configure(nil, &p); err != nil {
		t.Fatal(err)
	}
	hkCreate(t, s, world.JobInput{Count: 3, Waiting: true})
	// Dropped deliveries are recorded at once, as failures with no answer.
	all := hkAll(t, s, "failure")
	if len(all) != 3 {
		t.Fatalf("%d failed records, want 3", len(all))
	}
	for _, d := range all {
		if d.StatusCode != 0 || d.Status != hookStatusDrop || d.GUID == "" || len(d.RequestPayload) == 0 {
			t.Errorf("dropped record %+v", d)
		}
	}
	if st := s.Stats().Webhooks; st.Dropped != 3 || st.Sent != 0 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}

	// A dropped delivery is redeliverable (redeliveries are never dropped),
	// and the receiver's first request is that redelivery: nothing was sent.
	if err := s.hooks.Redeliver(all[1].ID); err != nil {
		t.Fatal(err)
	}
	req := rc.next(t)
	if req.header.Get("X-GitHub-Delivery") != all[1].GUID || string(req.body) != string(all[1].RequestPayload) {
		t.Fatal("the receiver's first request is not the redelivery of the dropped delivery")
	}

	// Retarget and stop dropping.
	rc2 := newHKReceiver(t)
	zero := 0.0
	url := rc2.srv.URL
	st, err := s.hooks.configure(&url, &zero)
	if err != nil || st.URL != url || st.DropProbability != 0 {
		t.Fatalf("configure: %+v, %v", st, err)
	}
	hkCreate(t, s, world.JobInput{Waiting: true})
	if req := rc2.next(t); req.header.Get("X-GitHub-Event") != "workflow_job" {
		t.Fatal("retargeted delivery missing")
	}
	if n := len(rc.got); n != 0 {
		t.Fatalf("old receiver got %d more requests", n)
	}

	// Bad settings change nothing.
	bad, huge := "ftp://x", 1.5
	if _, err := s.hooks.configure(&bad, nil); !errors.Is(err, world.ErrValidation) {
		t.Errorf("url %q: %v", bad, err)
	}
	if _, err := s.hooks.configure(nil, &huge); !errors.Is(err, world.ErrValidation) {
		t.Errorf("drop_probability %v: %v", huge, err)
	}
	if st := s.hooks.settings(); st.URL != url || st.DropProbability != 0 {
		t.Errorf("settings changed by bad input: %+v", st)
	}
}

func TestHookDropProbabilityIsSeeded(t *testing.T) {
	run := func() []bool {
		s := hkServer(t, "http://127.0.0.1:1/") // never reached: everything below is decided first
		p := 0.5
		if _, err := s.hooks.configure(nil, &p); err != nil {
			t.Fatal(err)
		}
		var dropped []bool
		for range 32 {
			before := s.Stats().Webhooks.Dropped
			hkCreate(t, s, world.JobInput{Waiting: true})
			dropped = append(dropped, s.Stats().Webhooks.Dropped > before)
		}
		return dropped
	}
	a, b := run(), run()
	n := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("drop decisions differ at %d with the same seed", i)
		}
		if a[i] {
			n++
		}
	}
	if n == 0 || n == len(a) {
		t.Fatalf("%d of %d dropped at p=0.5", n, len(a))
	}
}

func TestHookCloseWaitsForDeliveries(t *testing.T) {
	rc := newHKReceiver(t)
	s := hkNewServer(t, rc.srv.URL)
	hkCreate(t, s, world.JobInput{Count: 20, Waiting: true})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Every delivery ended before Close returned: no polling needed.
	if all := hkAll(t, s, ""); len(all) != 20 {
		t.Fatalf("%d records after Close, want 20", len(all))
	}
	// After close, nothing more is sent.
	hkCreate(t, s, world.JobInput{Waiting: true})
	if all := hkAll(t, s, ""); len(all) != 20 {
		t.Fatalf("%d records after a transition past Close", len(all))
	}
	if err := s.hooks.Redeliver(1); !errors.Is(err, errHooksClosed) {
		t.Fatalf("Redeliver after close: %v", err)
	}
}

func TestHookCloseAbortsHangingDeliveries(t *testing.T) {
	rc := newHKReceiver(t)
	rc.hang.Store(true)
	s := hkNewServer(t, rc.srv.URL)
	s.hooks.grace = 20 * time.Millisecond
	hkCreate(t, s, world.JobInput{Count: 3, Waiting: true})
	rc.next(t) // at least one attempt is in flight
	done := make(chan struct{})
	go func() {
		_ = s.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(hkWait):
		t.Fatal("Close did not return with a hanging receiver")
	}
	all := hkAll(t, s, "failure")
	if len(all) != 3 {
		t.Fatalf("%d failed records, want 3", len(all))
	}
	for _, d := range all {
		if d.Status != hookStatusClosed {
			t.Errorf("record status %q", d.Status)
		}
	}
}

func TestHookLogCap(t *testing.T) {
	rc := newHKReceiver(t)
	s := hkServer(t, rc.srv.URL)
	s.hooks.logLimit = 3
	hkCreate(t, s, world.JobInput{Count: 5, Waiting: true})
	deadline := time.Now().Add(hkWait)
	for s.Stats().Webhooks.Sent < 5 {
		if time.Now().After(deadline) {
			t.Fatal("deliveries did not finish")
		}
		time.Sleep(hkPollGap)
	}
	all := hkAll(t, s, "")
	if len(all) != 3 || all[0].ID != 5 || all[2].ID != 3 {
		t.Fatalf("kept %d records from %d", len(all), all[0].ID)
	}
	if _, ok := s.hooks.Get(1); ok {
		t.Fatal("a forgotten record is still found")
	}
}
