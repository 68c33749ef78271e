package recovery

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/ghapi"
)

// Defaults of RedelivererConfig, matching the config file's defaults.
const (
	DefaultRedeliverInterval       = 2 * time.Minute
	DefaultMaxRedeliveriesPerCycle = 100
	DefaultRedeliverLookback       = time.Hour
	DefaultRedeliverHorizon        = 24 * time.Hour
	DefaultMaxRedeliveryAttempts   = 3
	DefaultRedeliverSettleDelay    = 10 * time.Second
	DefaultMaxDeliveryPages        = 100
	DefaultRedeliverCursorName     = "redeliverer"
)

// deliveriesPerPage is GitHub's largest page of deliveries.
const deliveriesPerPage = 100

// maxRemembered caps the GUIDs the Redeliverer remembers, whatever the
// horizon: at the default bound and interval a day asks for at most 72,000.
const maxRemembered = 100_000

// workflowJobEvent is the only event redelivered: the others (ping,
// installation) do not carry demand, and a lost one heals by itself.
const workflowJobEvent = "workflow_job"

// RedelivererConfig tunes a Redeliverer; zero values take the defaults.
type RedelivererConfig struct {
	// Interval separates cycles in Run (lifecycle.redeliver_interval). The
	// config's 0 ("off") means: do not start the Redeliverer at all.
	Interval time.Duration
	// MaxPerCycle bounds the redelivery requests of one cycle
	// (lifecycle.max_redeliveries_per_cycle).
	MaxPerCycle int
	// Lookback is how far back the very first cycle (no saved watermark)
	// looks, so jobs queued while the daemon was first down are recovered.
	Lookback time.Duration
	// Horizon: deliveries older than this are never judged, and what was
	// asked for is forgotten after it. GitHub cancels a job queued for a day.
	Horizon time.Duration
	// MaxAttempts bounds the redeliveries asked for one GUID (and the failed
	// requests for it).
	MaxAttempts int
	// SettleDelay: a failure delivered more recently is judged next cycle.
	SettleDelay time.Duration
	// MaxPages bounds the pages (of 100) one cycle reads.
	MaxPages int
	// CursorName is the CursorStore name of the watermark.
	CursorName string
	// Clock tells the time; nil is time.Now.
	Clock func() time.Time
	// Metrics counts outcomes; nil counts nothing.
	Metrics Metrics
}

func (c RedelivererConfig) withDefaults() RedelivererConfig {
	if c.Interval <= 0 {
		c.Interval = DefaultRedeliverInterval
	}
	if c.MaxPerCycle <= 0 {
		c.MaxPerCycle = DefaultMaxRedeliveriesPerCycle
	}
	if c.Lookback <= 0 {
		c.Lookback = DefaultRedeliverLookback
	}
	if c.Horizon <= 0 {
		c.Horizon = DefaultRedeliverHorizon
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxRedeliveryAttempts
	}
	if c.SettleDelay <= 0 {
		c.SettleDelay = DefaultRedeliverSettleDelay
	}
	if c.MaxPages <= 0 {
		c.MaxPages = DefaultMaxDeliveryPages
	}
	if c.CursorName == "" {
		c.CursorName = DefaultRedeliverCursorName
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Metrics == nil {
		c.Metrics = discardMetrics{}
	}
	return c
}

// Redeliverer asks GitHub to redeliver failed workflow_job webhooks (see the
// package documentation). It is safe for concurrent use; cycles run one at a
// time.
type Redeliverer struct {
	api     DeliveriesAPI
	cursors CursorStore
	cfg     RedelivererConfig
	log     *zap.Logger

	mu        sync.Mutex // held by Cycle; guards everything below
	loaded    bool       // the saved cursor was read
	cur       cursorState
	lastSaved string                 // the cursor value last saved ("" = none)
	asked     map[string]*guidMemory // by GUID
	// afterCycle, when set (tests), is called by Run after every cycle.
	afterCycle func(RedeliveryResult, error)
}

// guidMemory is what the Redeliverer did about one GUID.
type guidMemory struct {
	attempts int       // redeliveries GitHub accepted
	failures int       // redelivery requests that failed
	lastID   int64     // the newest failed delivery already acted on (asked for or given up)
	done     bool      // an attempt succeeded, or the GUID was given up
	at       time.Time // last change, for forgetting
}

// cursorState is the persisted watermark: deliveries with ID <= ID, or
// delivered before Since, are not read again. Handled remembers the GUIDs
// acted on above the watermark (it is held below a failure still to judge),
// so a restart does not ask for them twice.
type cursorState struct {
	Version int            `json:"v"`
	ID      int64          `json:"id"`
	At      time.Time      `json:"at,omitzero"` // delivered_at of delivery ID, when read (for operators)
	Since   time.Time      `json:"since"`
	Handled []handledEntry `json:"handled,omitempty"`
}

type handledEntry struct {
	GUID     string `json:"guid"`
	ID       int64  `json:"id"`
	Attempts int    `json:"attempts"`
	Done     bool   `json:"done,omitempty"`
}

const cursorVersion = 1

// RedeliveryResult says what one cycle did.
type RedeliveryResult struct {
	Pages         int   // list calls made
	Examined      int   // workflow_job deliveries read above the watermark
	Failed        int   // GUIDs not acted on before whose newest attempt failed and none succeeded
	Requested     int   // redeliveries GitHub accepted
	RequestFailed int   // redelivery requests that failed
	SkippedLimit  int   // left for the next cycle by MaxPerCycle
	Deferred      int   // left for the next cycle after a rate limit or cancellation
	Pending       int   // failures too recent to judge
	Exhausted     int   // GUIDs given up this cycle
	Truncated     bool  // MaxPages was reached before the watermark
	Watermark     int64 // the watermark after the cycle
}

// NewRedeliverer returns a Redeliverer reading deliveries through api and
// keeping its watermark in cursors (nil keeps it in memory only, so a
// restart looks back cfg.Lookback again). A nil logger logs nothing. It does
// no I/O.
func NewRedeliverer(api DeliveriesAPI, cursors CursorStore, cfg RedelivererConfig, logger *zap.Logger) *Redeliverer {
	if logger == nil {
		logger = zap.NewNop()
	}
	if cursors == nil {
		cursors = &MemoryCursors{}
	}
	return &Redeliverer{
		api:     api,
		cursors: cursors,
		cfg:     cfg.withDefaults(),
		log:     logger,
		asked:   map[string]*guidMemory{},
	}
}

// Run runs a cycle at once (deliveries that failed while the daemon was
// down are asked for as soon as it is back) and then every Interval, until
// ctx ends. A failed cycle is logged and the next one retries. It returns
// nil when ctx ends.
func (r *Redeliverer) Run(ctx context.Context) error {
	return runEvery(ctx, r.cfg.Interval, func(ctx context.Context) {
		res, err := r.Cycle(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("webhook redelivery cycle failed; retrying on the next cycle",
				zap.Int("requested", res.Requested), zap.Error(err))
		}
		r.mu.Lock()
		after := r.afterCycle
		r.mu.Unlock()
		if after != nil {
			after(res, err)
		}
	})
}

// runEvery calls cycle at once and then every interval until ctx ends; it
// returns nil then.
func runEvery(ctx context.Context, interval time.Duration, cycle func(context.Context)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		cycle(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Cycle makes one pass: it reads the deliveries above the watermark, asks
// for the redeliveries due, and saves the new watermark. Errors are returned
// joined; what failed is retried by a later cycle.
func (r *Redeliverer) Cycle(ctx context.Context) (RedeliveryResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Clock()
	var res RedeliveryResult
	if !r.loaded {
		if err := r.load(ctx, now); err != nil {
			return res, err
		}
	}
	r.forget(now)

	sc, err := r.scan(ctx, now)
	res.Pages, res.Examined, res.Truncated = sc.pages, sc.examined, sc.truncated
	if err != nil {
		res.Watermark = r.cur.ID
		return res, fmt.Errorf("redeliver webhooks: read the delivery log: %w", err)
	}
	if sc.truncated {
		// Reading on would spend the App's budget on one cycle; what lies
		// between the watermark and the oldest page read is not examined.
		r.log.Error("webhook delivery log has more new deliveries than one cycle reads; older ones are not examined",
			zap.Int("pages", sc.pages), zap.Int64("watermark", r.cur.ID), zap.Int64("oldest_read", sc.oldestID))
	}

	hold := int64(0) // the lowest delivery id still to judge (0 = none)
	holdAt := func(id int64) {
		if hold == 0 || id < hold {
			hold = id
		}
	}
	settled := now.Add(-r.cfg.SettleDelay)
	var due []*ghapi.HookDelivery
	for _, guid := range sc.order {
		st := sc.guids[guid]
		mem := r.asked[guid]
		if st.succeeded {
			if mem != nil && !mem.done {
				mem.done, mem.at = true, now
			}
			continue
		}
		f := st.failure
		if mem != nil && (mem.done || f.GetID() <= mem.lastID) {
			continue // acted on already; a newer failed attempt would have a higher id
		}
		res.Failed++
		if pending(f, settled) {
			res.Pending++
			holdAt(f.GetID())
			continue
		}
		if mem != nil && mem.attempts >= r.cfg.MaxAttempts {
			mem.done, mem.lastID, mem.at = true, f.GetID(), now
			res.Exhausted++
			r.log.Warn("webhook redelivered too often without success; giving up",
				zap.String("delivery", guid), zap.Int64("delivery_id", f.GetID()), zap.String("action", f.GetAction()),
				zap.Int("attempts", mem.attempts), zap.String("status", f.GetStatus()))
			continue
		}
		due = append(due, f)
	}
	// Oldest first: those jobs have waited longest, and it lets the
	// watermark move up to the first one left for later.
	slices.SortFunc(due, func(a, b *ghapi.HookDelivery) int { return cmp.Compare(a.GetID(), b.GetID()) })

	var errs []error
	stop := false
	for _, f := range due {
		switch {
		case stop:
			res.Deferred++
			holdAt(f.GetID())
			continue
		case res.Requested+res.RequestFailed >= r.cfg.MaxPerCycle:
			res.SkippedLimit++
			holdAt(f.GetID())
			continue
		}
		guid := f.GetGUID()
		mem := r.asked[guid]
		if mem == nil {
			mem = &guidMemory{}
			r.asked[guid] = mem
		}
		mem.at = now
		err := r.api.RedeliverHookDelivery(ctx, f.GetID())
		if err == nil {
			mem.attempts++
			mem.lastID = f.GetID()
			res.Requested++
			r.log.Info("failed webhook delivery redelivered",
				zap.String("delivery", guid), zap.Int64("delivery_id", f.GetID()), zap.String("action", f.GetAction()),
				zap.Int64("repository_id", f.GetRepositoryID()), zap.Int("attempt", mem.attempts), zap.String("status", f.GetStatus()))
			continue
		}
		res.RequestFailed++
		mem.failures++
		switch {
		case errors.Is(err, ghapi.ErrNotFound) || errors.Is(err, ghapi.ErrValidation):
			// GitHub refuses this delivery for good (gone from its log, or
			// not redeliverable): asking again would fail the same way.
			mem.done, mem.lastID = true, f.GetID()
			r.log.Warn("GitHub refuses to redeliver a failed webhook; giving up",
				zap.String("delivery", guid), zap.Int64("delivery_id", f.GetID()), zap.Error(err))
		case mem.failures >= r.cfg.MaxAttempts:
			mem.done, mem.lastID = true, f.GetID()
			res.Exhausted++
			r.log.Warn("webhook redelivery request failed too often; giving up",
				zap.String("delivery", guid), zap.Int64("delivery_id", f.GetID()), zap.Int("failures", mem.failures), zap.Error(err))
		default:
			holdAt(f.GetID())
			errs = append(errs, fmt.Errorf("redeliver delivery %s (id %d): %w", guid, f.GetID(), err))
		}
		var rl *ghapi.RateLimitError
		if errors.As(err, &rl) || ctx.Err() != nil {
			stop = true // the rest would fail the same way; next cycle
		}
	}

	r.advance(sc, hold)
	res.Watermark = r.cur.ID
	m := r.cfg.Metrics
	m.Redeliveries(RedeliveryRequested, res.Requested)
	m.Redeliveries(RedeliveryFailed, res.RequestFailed)
	m.Redeliveries(RedeliverySkippedLimit, res.SkippedLimit)
	m.Redeliveries(RedeliveryExhausted, res.Exhausted)

	if err := r.save(ctx); err != nil {
		errs = append(errs, err)
	}
	logAt := r.log.Debug
	if res.Requested+res.RequestFailed+res.SkippedLimit+res.Exhausted > 0 {
		logAt = r.log.Info
	}
	logAt("webhook redelivery cycle",
		zap.Int("pages", res.Pages), zap.Int("examined", res.Examined), zap.Int("failed", res.Failed),
		zap.Int("requested", res.Requested), zap.Int("request_failed", res.RequestFailed),
		zap.Int("skipped_limit", res.SkippedLimit), zap.Int("pending", res.Pending),
		zap.Int("exhausted", res.Exhausted), zap.Int64("watermark", res.Watermark))
	return res, errors.Join(errs...)
}

// guidScan is what one cycle read about one GUID.
type guidScan struct {
	succeeded bool                // some attempt read got a 2xx
	failure   *ghapi.HookDelivery // the newest failed attempt read
}

type scanResult struct {
	pages, examined int
	truncated       bool
	guids           map[string]*guidScan
	order           []string // GUIDs in the order first read (newest first)
	maxID, oldestID int64
	ats             map[int64]time.Time // delivered_at by id, for the watermark's At
}

// scan reads the log newest first down to the watermark (or Since, or the
// horizon), keeping workflow_job deliveries.
func (r *Redeliverer) scan(ctx context.Context, now time.Time) (scanResult, error) {
	sc := scanResult{guids: map[string]*guidScan{}, ats: map[int64]time.Time{}}
	cutoff := now.Add(-r.cfg.Horizon)
	if r.cur.Since.After(cutoff) {
		cutoff = r.cur.Since
	}
	cursor := ""
	for {
		if sc.pages == r.cfg.MaxPages {
			sc.truncated = true
			return sc, nil
		}
		page, next, err := r.api.ListHookDeliveries(ctx, ghapi.ListDeliveriesOptions{Cursor: cursor, PerPage: deliveriesPerPage})
		if err != nil {
			return sc, err
		}
		sc.pages++
		for _, d := range page {
			id := d.GetID()
			if id <= r.cur.ID {
				return sc, nil // examined by an earlier cycle
			}
			sc.maxID = max(sc.maxID, id)
			if sc.oldestID == 0 || id < sc.oldestID {
				sc.oldestID = id
			}
			at := d.GetDeliveredAt().Time
			sc.ats[id] = at
			if at.Before(cutoff) {
				// Older than the first start's look-back or the horizon.
				// The log is in id order, which follows delivery time
				// closely enough for a bound this coarse.
				return sc, nil
			}
			guid := d.GetGUID()
			if d.GetEvent() != workflowJobEvent || guid == "" {
				continue
			}
			sc.examined++
			st := sc.guids[guid]
			if st == nil {
				st = &guidScan{}
				sc.guids[guid] = st
				sc.order = append(sc.order, guid)
			}
			switch {
			case succeeded(d):
				st.succeeded = true
			case st.failure == nil:
				st.failure = d
			}
		}
		if next == "" || len(page) == 0 {
			return sc, nil
		}
		cursor = next
	}
}

// succeeded reports whether the receiver answered 2xx.
func succeeded(d *ghapi.HookDelivery) bool {
	code := d.GetStatusCode()
	return code >= 200 && code < 300 || code == 0 && d.GetStatus() == "OK"
}

// pending reports whether a failure is too recent (or still in progress) to
// judge: someone may be redelivering it already.
func pending(d *ghapi.HookDelivery, settled time.Time) bool {
	return strings.EqualFold(d.GetStatus(), "pending") || d.GetDeliveredAt().Time.After(settled)
}

// advance moves the watermark to the newest delivery read, but below the
// oldest failure still to judge (hold), so the next cycle reads it again.
func (r *Redeliverer) advance(sc scanResult, hold int64) {
	id := max(r.cur.ID, sc.maxID)
	if hold > 0 && hold-1 < id {
		id = hold - 1
	}
	if id == r.cur.ID {
		return
	}
	r.cur.ID = id
	// At is the delivery time of the newest delivery read at or below the
	// watermark (the watermark itself may fall between two ids).
	best := int64(0)
	for did, at := range sc.ats {
		if did <= id && did > best {
			best, r.cur.At = did, at
		}
	}
}

// load reads the saved watermark. With none, the first cycle looks back
// Lookback. An unreadable value is logged and treated as none: a
// redelivery asked twice is harmless, the intake drops duplicates by GUID.
func (r *Redeliverer) load(ctx context.Context, now time.Time) error {
	v, ok, err := r.cursors.LoadCursor(ctx, r.cfg.CursorName)
	if err != nil {
		return fmt.Errorf("redeliver webhooks: load watermark %q: %w", r.cfg.CursorName, err)
	}
	r.loaded = true
	r.cur = cursorState{Version: cursorVersion, Since: now.Add(-r.cfg.Lookback)}
	if !ok {
		r.log.Info("no webhook redelivery watermark saved; looking back", zap.Duration("lookback", r.cfg.Lookback))
		return nil
	}
	var cs cursorState
	if err := json.Unmarshal([]byte(v), &cs); err != nil || cs.Version != cursorVersion || cs.ID < 0 {
		r.log.Warn("saved webhook redelivery watermark unreadable; looking back instead",
			zap.String("cursor", r.cfg.CursorName), zap.Duration("lookback", r.cfg.Lookback), zap.Error(err))
		return nil
	}
	r.cur = cursorState{Version: cursorVersion, ID: cs.ID, At: cs.At, Since: cs.Since}
	for _, h := range cs.Handled {
		if h.GUID == "" {
			continue
		}
		r.asked[h.GUID] = &guidMemory{attempts: h.Attempts, lastID: h.ID, done: h.Done, at: now}
	}
	r.lastSaved = v
	r.log.Debug("webhook redelivery watermark loaded", zap.Int64("watermark", cs.ID), zap.Time("delivered_at", cs.At))
	return nil
}

// save persists the watermark and the GUIDs acted on above it, when they
// changed. A failed save is retried by the next cycle.
func (r *Redeliverer) save(ctx context.Context) error {
	cs := r.cur
	cs.Handled = nil
	for guid, m := range r.asked {
		if m.lastID > cs.ID {
			cs.Handled = append(cs.Handled, handledEntry{GUID: guid, ID: m.lastID, Attempts: m.attempts, Done: m.done})
		}
	}
	slices.SortFunc(cs.Handled, func(a, b handledEntry) int { return cmp.Compare(a.ID, b.ID) })
	b, err := json.Marshal(cs)
	if err != nil {
		return fmt.Errorf("redeliver webhooks: encode watermark: %w", err)
	}
	v := string(b)
	if v == r.lastSaved {
		return nil
	}
	if err := r.cursors.SaveCursor(ctx, r.cfg.CursorName, v); err != nil {
		return fmt.Errorf("redeliver webhooks: save watermark %q: %w", r.cfg.CursorName, err)
	}
	r.lastSaved = v
	return nil
}

// forget drops GUIDs not touched within the horizon, and the oldest ones
// beyond maxRemembered.
func (r *Redeliverer) forget(now time.Time) {
	old := now.Add(-r.cfg.Horizon)
	for guid, m := range r.asked {
		if m.at.Before(old) {
			delete(r.asked, guid)
		}
	}
	if over := len(r.asked) - maxRemembered; over > 0 {
		type aged struct {
			guid string
			at   time.Time
		}
		all := make([]aged, 0, len(r.asked))
		for guid, m := range r.asked {
			all = append(all, aged{guid, m.at})
		}
		slices.SortFunc(all, func(a, b aged) int { return a.at.Compare(b.at) })
		for _, a := range all[:over] {
			delete(r.asked, a.guid)
		}
	}
}
