package ghsim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

// Delivery behaviour, as GitHub's.
const (
	hookTimeout      = 10 * time.Second // GitHub gives up on a receiver after 10 s
	hookWorkers      = 8                // deliveries in flight at once
	hookQueueCap     = 10_000           // deliveries waiting for a worker
	hookLogCap       = 10_000           // deliveries kept in the log (oldest forgotten)
	hookRespBodyCap  = 64 << 10         // response body bytes recorded
	hookUserAgent    = "GitHub-Hookshot/5e1c0de"
	hookEvent        = "workflow_job"
	hookStatusOK     = "OK"
	hookStatusDrop   = "Dropped by simulator"
	hookStatusClosed = "Simulator shut down before delivery"
	hookStatusFull   = "Simulator delivery queue full"
	hookCursorPrefix = "v1_"
	hookClosedGrace  = 5 * time.Second // close waits this long before aborting deliveries
)

// errHooksClosed is returned by Redeliver after close.
var errHooksClosed = errors.New("webhook deliveries are shut down")

// webhooks sends workflow_job deliveries and keeps the delivery log.
//
// A transition is rendered and decided (dropped or not) synchronously in
// onEvent, in transition order, then queued; up to hookWorkers goroutines
// send from the queue in FIFO order and exit when it is empty, so delivery
// order follows the transitions but is not guaranteed. Every attempt,
// dropped ones included, is recorded; nothing is retried automatically.
type webhooks struct {
	s       *Server
	client  *http.Client
	tr      *http.Transport
	timeout time.Duration // per attempt; hookTimeout (tests shorten it)
	grace   time.Duration // how long close waits before aborting; hookClosedGrace

	ctx    context.Context // cancelled when close gives up waiting
	cancel context.CancelFunc
	wg     sync.WaitGroup // workers

	mu       sync.Mutex
	url      string  // where deliveries go; "" sends none
	dropP    float64 // probability that a delivery is dropped
	queue    []hookTask
	active   int // running workers
	closed   bool
	log      []Delivery // ascending ID
	nextID   int64
	logLimit int
}

// hookTask is one delivery attempt waiting for a worker.
type hookTask struct {
	guid           string
	action         string
	installationID int64
	repositoryID   int64
	url            string
	payload        json.RawMessage
	redelivery     bool
}

func newWebhooks(s *Server) *webhooks {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = hookWorkers
	ctx, cancel := context.WithCancel(context.Background())
	return &webhooks{
		s:  s,
		tr: tr,
		client: &http.Client{
			Transport: tr,
			// GitHub does not follow redirects: a 3xx is a failed delivery.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		timeout:  hookTimeout,
		grace:    hookClosedGrace,
		ctx:      ctx,
		cancel:   cancel,
		url:      s.opts.WebhookURL,
		logLimit: hookLogCap,
	}
}

// HookSettings are the delivery settings the control API changes at run time.
type HookSettings struct {
	URL             string  `json:"url"`
	DropProbability float64 `json:"drop_probability"`
}

// settings returns the current delivery settings.
func (h *webhooks) settings() HookSettings {
	h.mu.Lock()
	defer h.mu.Unlock()
	return HookSettings{URL: h.url, DropProbability: h.dropP}
}

// configure changes the URL and/or the drop probability (nil leaves a
// setting as it is) and returns the settings now in force.
func (h *webhooks) configure(u *string, dropP *float64) (HookSettings, error) {
	if dropP != nil && (*dropP < 0 || *dropP > 1) {
		return HookSettings{}, fmt.Errorf("drop_probability %v is outside [0, 1]: %w", *dropP, world.ErrValidation)
	}
	if u != nil && *u != "" {
		p, err := url.Parse(*u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return HookSettings{}, fmt.Errorf("url %q is not an absolute http(s) URL: %w", *u, world.ErrValidation)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if u != nil {
		h.url = *u
	}
	if dropP != nil {
		h.dropP = *dropP
	}
	return HookSettings{URL: h.url, DropProbability: h.dropP}, nil
}

// onEvent sends the delivery for one job transition (asynchronously). With no
// URL configured nothing is sent or recorded. A dropped delivery is recorded
// at once as a failure with status code 0.
func (h *webhooks) onEvent(e world.Event) {
	h.mu.Lock()
	target, dropP, closed := h.url, h.dropP, h.closed
	h.mu.Unlock()
	if target == "" || closed {
		return
	}
	apiBase := h.s.URL()
	if apiBase == "" {
		apiBase = "https://api.github.com/"
	}
	body, err := buildHookPayload(e, apiBase)
	if err != nil {
		h.s.log.Error("render workflow_job payload", zap.Int64("job_id", e.Job.ID), zap.Error(err))
		return
	}
	account := e.Org.ID
	if account == 0 {
		account = e.Repo.OwnerID
	}
	t := hookTask{
		guid: newGUID(), action: e.Action, installationID: installationIDFor(account),
		repositoryID: e.Repo.ID, url: target, payload: body,
	}
	// Draw only when dropping is on, so that runs without drops make the
	// same fault decisions whether or not webhooks are configured.
	if dropP > 0 && h.s.rng.Float64() < dropP {
		h.fail(t, h.headers(t), hookStatusDrop, hookDropped)
		return
	}
	h.enqueue(t)
}

// enqueue hands a task to the workers, starting one if fewer than
// hookWorkers run. It reports false after close.
func (h *webhooks) enqueue(t hookTask) bool {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return false
	}
	if len(h.queue) >= hookQueueCap {
		h.mu.Unlock()
		h.fail(t, h.headers(t), hookStatusFull, hookFailed)
		return true
	}
	h.queue = append(h.queue, t)
	if h.active < hookWorkers {
		h.active++
		h.wg.Add(1)
		go h.work()
	}
	h.mu.Unlock()
	return true
}

// work sends queued deliveries until the queue is empty, then exits.
func (h *webhooks) work() {
	defer h.wg.Done()
	for {
		h.mu.Lock()
		if len(h.queue) == 0 {
			h.active--
			h.mu.Unlock()
			return
		}
		t := h.queue[0]
		h.queue[0] = hookTask{}
		h.queue = h.queue[1:]
		h.mu.Unlock()
		h.deliver(t)
	}
}

// headers are the request headers of a delivery attempt, under GitHub's
// spelling (they are set as given, not canonicalised).
func (h *webhooks) headers(t hookTask) map[string]string {
	hd := map[string]string{
		"Accept":                                 "*/*",
		"Content-Type":                           "application/json",
		"User-Agent":                             hookUserAgent,
		"X-GitHub-Delivery":                      t.guid,
		"X-GitHub-Event":                         hookEvent,
		"X-GitHub-Hook-ID":                       strconv.FormatInt(h.s.opts.HookID, 10),
		"X-GitHub-Hook-Installation-Target-ID":   strconv.FormatInt(h.s.opts.AppID, 10),
		"X-GitHub-Hook-Installation-Target-Type": "integration",
	}
	if secret := h.s.opts.WebhookSecret; secret != "" {
		hd["X-Hub-Signature"] = hookSignature1(secret, t.payload)
		hd["X-Hub-Signature-256"] = hookSignature256(secret, t.payload)
	}
	return hd
}

// deliver makes one attempt and records it.
func (h *webhooks) deliver(t hookTask) {
	hd := h.headers(t)
	if h.ctx.Err() != nil {
		h.fail(t, hd, hookStatusClosed, hookFailed)
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(t.payload))
	if err != nil {
		h.fail(t, hd, "Invalid URL: "+err.Error(), hookFailed)
		return
	}
	for k, v := range hd {
		req.Header[k] = []string{v}
	}
	d := h.newDelivery(t, hd)
	start := time.Now()
	resp, err := h.client.Do(req)
	if err != nil {
		d.Duration = time.Since(start)
		d.Status = hookFailureText(ctx, err)
		h.s.stats.webhook(hookFailed)
		h.record(d)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, hookRespBodyCap))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // lets the connection be reused
	resp.Body.Close()
	d.Duration = time.Since(start)
	d.StatusCode = resp.StatusCode
	d.ResponseBody = string(body)
	d.ResponseHeaders = make(map[string]string, len(resp.Header))
	for k, v := range resp.Header {
		d.ResponseHeaders[k] = strings.Join(v, ", ")
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		d.Status = hookStatusOK
		h.s.stats.webhook(hookSent)
	} else {
		d.Status = "Invalid HTTP Response: " + strconv.Itoa(resp.StatusCode)
		h.s.stats.webhook(hookFailed)
	}
	h.record(d)
}

// hookFailureText describes an attempt that got no HTTP answer.
func hookFailureText(ctx context.Context, err error) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "timed out"
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return hookStatusClosed
	}
	return "We couldn't deliver this payload: " + err.Error()
}

func (h *webhooks) newDelivery(t hookTask, hd map[string]string) Delivery {
	return Delivery{
		GUID: t.guid, DeliveredAt: h.s.clock.Now(), Redelivery: t.redelivery,
		Event: hookEvent, Action: t.action, InstallationID: t.installationID, RepositoryID: t.repositoryID,
		URL: t.url, RequestHeaders: hd, RequestPayload: t.payload,
	}
}

// fail records an attempt that was never made (dropped, queue full, closed).
func (h *webhooks) fail(t hookTask, hd map[string]string, status, outcome string) {
	d := h.newDelivery(t, hd)
	d.Status = status
	h.s.stats.webhook(outcome)
	h.record(d)
}

// record appends a finished attempt to the log under the next id, so ids
// grow in the order attempts end and a cursor never skips a later record.
func (h *webhooks) record(d Delivery) {
	h.mu.Lock()
	h.nextID++
	d.ID = h.nextID
	h.log = append(h.log, d)
	if over := len(h.log) - h.logLimit; over > 0 {
		h.log = slices.Delete(h.log, 0, over)
	}
	h.mu.Unlock()
	h.s.log.Debug("webhook delivery", zap.String("delivery", d.GUID), zap.Int64("delivery_id", d.ID),
		zap.String("action", d.Action), zap.Int("status_code", d.StatusCode), zap.String("status", d.Status),
		zap.Bool("redelivery", d.Redelivery))
}

// close stops new deliveries and waits for those queued and in flight; after
// a grace period (hookClosedGrace) it aborts them (recorded as failed) and waits for the
// workers to end.
func (h *webhooks) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(h.grace)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		h.cancel()
		<-done
	}
	h.cancel()
	h.tr.CloseIdleConnections()
}

// Delivery is one recorded webhook delivery attempt.
type Delivery struct {
	ID              int64
	GUID            string
	DeliveredAt     time.Time
	Redelivery      bool
	Duration        time.Duration
	Status          string // "OK", or the failure text
	StatusCode      int    // 0 when no HTTP answer (dropped, refused)
	Event           string
	Action          string
	InstallationID  int64
	RepositoryID    int64
	URL             string
	RequestHeaders  map[string]string
	RequestPayload  json.RawMessage
	ResponseHeaders map[string]string
	ResponseBody    string
}

// Succeeded reports whether the receiver answered 2xx.
func (d Delivery) Succeeded() bool { return d.StatusCode >= 200 && d.StatusCode < 300 }

// List returns deliveries newest first from cursor ("" = newest), at most
// perPage (1..100; 0 means GitHub's default 30, more than 100 means 100),
// filtered by status "success"/"failure" ("" = all), and the cursor of the
// next page ("" at the end). A cursor is "v1_<id>": the page starts below
// that delivery id, so pages stay stable while new deliveries arrive. A bad
// cursor or status is world.ErrValidation (GitHub answers 422).
func (h *webhooks) List(cursor string, perPage int, status string) ([]Delivery, string, error) {
	switch {
	case perPage <= 0:
		perPage = 30
	case perPage > 100:
		perPage = 100
	}
	var keep func(Delivery) bool
	switch status {
	case "":
		keep = func(Delivery) bool { return true }
	case "success":
		keep = Delivery.Succeeded
	case "failure":
		keep = func(d Delivery) bool { return !d.Succeeded() }
	default:
		return nil, "", fmt.Errorf("status %q: want success or failure: %w", status, world.ErrValidation)
	}
	before := int64(-1) // no bound
	if cursor != "" {
		n, err := strconv.ParseInt(strings.TrimPrefix(cursor, hookCursorPrefix), 10, 64)
		if !strings.HasPrefix(cursor, hookCursorPrefix) || err != nil || n <= 0 {
			return nil, "", fmt.Errorf("cursor %q: %w", cursor, world.ErrValidation)
		}
		before = n
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	i := len(h.log) - 1
	if before >= 0 {
		i = sort.Search(len(h.log), func(k int) bool { return h.log[k].ID >= before }) - 1
	}
	var out []Delivery
	for ; i >= 0; i-- {
		d := h.log[i]
		if !keep(d) {
			continue
		}
		if len(out) == perPage {
			return out, hookCursorPrefix + strconv.FormatInt(out[len(out)-1].ID, 10), nil
		}
		out = append(out, cloneDelivery(d))
	}
	return out, "", nil
}

func cloneDelivery(d Delivery) Delivery {
	c := d
	c.RequestHeaders = cloneStringMap(d.RequestHeaders)
	c.ResponseHeaders = cloneStringMap(d.ResponseHeaders)
	return c // RequestPayload is never written after it is rendered
}

func cloneStringMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Get returns one delivery.
func (h *webhooks) Get(id int64) (Delivery, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	i, ok := slices.BinarySearchFunc(h.log, id, func(d Delivery, id int64) int {
		switch {
		case d.ID < id:
			return -1
		case d.ID > id:
			return 1
		}
		return 0
	})
	if !ok {
		return Delivery{}, false
	}
	return cloneDelivery(h.log[i]), true
}

// Redeliver resends a delivery with the same GUID and body, recorded as a new
// delivery with Redelivery set; world.ErrNotFound for an unknown id.
//
// Like GitHub (which answers 202 Accepted), it only queues the attempt: the
// new record appears in the log once the attempt ends. It goes to the URL
// configured now and is never dropped (a redelivery is a deliberate act).
// With no URL configured it is world.ErrValidation.
func (h *webhooks) Redeliver(id int64) error {
	d, ok := h.Get(id)
	if !ok {
		return fmt.Errorf("hook delivery %d: %w", id, world.ErrNotFound)
	}
	target := h.settings().URL
	if target == "" {
		return fmt.Errorf("redeliver %d: no webhook URL is configured: %w", id, world.ErrValidation)
	}
	t := hookTask{
		guid: d.GUID, action: d.Action, installationID: d.InstallationID, repositoryID: d.RepositoryID,
		url: target, payload: d.RequestPayload, redelivery: true,
	}
	if !h.enqueue(t) {
		return fmt.Errorf("redeliver %d: %w", id, errHooksClosed)
	}
	return nil
}

// newGUID returns a random (version 4) UUID, as X-GitHub-Delivery carries.
// It comes from crypto/rand, not the seeded source: two runs with the same
// seed must not produce deliveries a receiver would take for duplicates.
func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
