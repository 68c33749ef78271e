// Package webhook is Runnerscaler's HTTP intake for GitHub's webhook
// deliveries: it verifies each request's signature, decodes it, records it in
// the store (which drops redeliveries by GUID) and answers only once the
// record is durable. Nothing acknowledged is ever lost; a request the store
// could not take is answered 503, so GitHub lists it as a failed delivery
// that can be redelivered.
//
// Answers:
//
//	405  not POST (with Allow: POST)
//	413  body over Config.MaxBodyBytes
//	401  X-Hub-Signature-256 missing, malformed or matching no secret
//	400  X-GitHub-Delivery or X-GitHub-Event missing, the body not JSON, or a
//	     workflow_job lacking its id, status, labels or repository
//	503  the store failed
//	200  ping, or a delivery GUID already stored (nothing changes)
//	202  workflow_job, installation, installation_repositories, and any other
//	     event (recorded and ignored)
package webhook

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/runnerscaler/runnerscaler/internal/secret"
	"github.com/runnerscaler/runnerscaler/internal/store"
)

// DefaultMaxBodyBytes is GitHub's own cap on a payload, 25 MB.
const DefaultMaxBodyBytes = 25 << 20

// ingestTimeout bounds the store's part of a request: GitHub gives up after
// 10 s, and a 503 it records is better than an answer it never reads.
const ingestTimeout = 9 * time.Second

// Bounds on header values that are stored: X-GitHub-Delivery is a UUID (36
// characters) and event names are short words at GitHub.
const (
	maxGUIDLen  = 128
	maxEventLen = 64
)

// Config is the intake's settings.
type Config struct {
	// Secrets are the webhook secrets; a signature made with any of them
	// passes. Empty ones are ignored. With none, every request is refused.
	Secrets []secret.String
	// MaxBodyBytes bounds a request body; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// Recorder is what the intake needs of the store (*store.Store): record a
// delivery and its job transition in one durable transaction, a known GUID
// changing nothing.
type Recorder interface {
	Ingest(ctx context.Context, d store.Delivery, ev *store.JobEvent) (store.IngestResult, error)
}

var _ Recorder = (*store.Store)(nil)

// Notifier hears of every job transition the store applied, after its commit
// and before the delivery is answered. It must not block: the scaler queues
// the job and returns.
type Notifier interface {
	JobChanged(ctx context.Context, job store.Job)
}

// Invalidator is told when an installation or its repository access changed,
// so the cached installations and group access lists are refreshed. It must
// not block.
type Invalidator interface {
	InvalidateInstallations()
}

// Option sets an optional collaborator of the Handler.
type Option func(*Handler)

// WithLogger sets the logger (default: none).
func WithLogger(l *zap.Logger) Option {
	return func(h *Handler) {
		if l != nil {
			h.log = l
		}
	}
}

// WithClock sets the clock stamping deliveries (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(h *Handler) {
		if now != nil {
			h.now = now
		}
	}
}

// WithNotifier sets who hears of applied job transitions (default: nobody).
func WithNotifier(n Notifier) Option {
	return func(h *Handler) {
		if n != nil {
			h.notifier = n
		}
	}
}

// WithInvalidator sets who is told of installation changes (default: nobody).
func WithInvalidator(i Invalidator) Option {
	return func(h *Handler) {
		if i != nil {
			h.invalidator = i
		}
	}
}

// WithMetrics sets the metrics recorder (default: discard).
func WithMetrics(m Metrics) Option {
	return func(h *Handler) {
		if m != nil {
			h.metrics = m
		}
	}
}

// Handler is the webhook endpoint, an http.Handler. Safe for concurrent use.
type Handler struct {
	secrets     [][]byte
	maxBody     int64
	store       Recorder
	log         *zap.Logger
	now         func() time.Time
	notifier    Notifier
	invalidator Invalidator
	metrics     Metrics
}

// New returns the intake writing to rec.
func New(cfg Config, rec Recorder, opts ...Option) *Handler {
	h := &Handler{
		maxBody:     cfg.MaxBodyBytes,
		store:       rec,
		log:         zap.NewNop(),
		now:         time.Now,
		notifier:    nopNotifier{},
		invalidator: nopInvalidator{},
		metrics:     nopMetrics{},
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	for _, s := range cfg.Secrets {
		if s != "" {
			h.secrets = append(h.secrets, []byte(s.Reveal()))
		}
	}
	for _, o := range opts {
		o(h)
	}
	if len(h.secrets) == 0 {
		h.log.Warn("no webhook secret configured: every delivery will be refused")
	}
	return h
}

type nopNotifier struct{}

func (nopNotifier) JobChanged(context.Context, store.Job) {}

type nopInvalidator struct{}

func (nopInvalidator) InvalidateInstallations() {}

// result is what became of one request: it decides the answer, the log line
// and the metric.
type result struct {
	status  int
	outcome string
	reason  string // why a request was refused; "" otherwise
	err     error  // a store failure
	guid    string
	event   string
	action  string
	jobID   int64
	applied bool
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	res := h.handle(w, r)
	if res.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(res.status)
	body := res.outcome
	if res.reason != "" {
		body += ": " + res.reason
	}
	_, _ = io.WriteString(w, body+"\n")
	d := time.Since(start)
	h.metrics.ObserveDelivery(eventLabel(res.event), actionLabel(res.action), res.outcome, d)
	h.logResult(res, d)
}

// handle does the work; it writes nothing to w (w is only needed by
// http.MaxBytesReader, to close the connection after an oversize body).
func (h *Handler) handle(w http.ResponseWriter, r *http.Request) result {
	res := result{
		guid:  r.Header.Get("X-GitHub-Delivery"),
		event: r.Header.Get("X-GitHub-Event"),
	}
	refuse := func(status int, outcome, reason string) result {
		res.status, res.outcome, res.reason = status, outcome, reason
		return res
	}
	if r.Method != http.MethodPost {
		return refuse(http.StatusMethodNotAllowed, OutcomeMethodNotAllowed, "use POST")
	}
	if r.ContentLength > h.maxBody {
		return refuse(http.StatusRequestEntityTooLarge, OutcomeTooLarge, "body over "+strconv.FormatInt(h.maxBody, 10)+" bytes")
	}
	body, err := readBody(http.MaxBytesReader(w, r.Body, h.maxBody), r.ContentLength)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return refuse(http.StatusRequestEntityTooLarge, OutcomeTooLarge, "body over "+strconv.FormatInt(h.maxBody, 10)+" bytes")
		}
		return refuse(http.StatusBadRequest, OutcomeBadRequest, "body unreadable")
	}
	// Nothing in the body is looked at before the signature is checked.
	if err := verifySignature(h.secrets, r.Header.Get("X-Hub-Signature-256"), body); err != nil {
		return refuse(http.StatusUnauthorized, OutcomeBadSignature, err.Error())
	}
	switch {
	case res.guid == "":
		return refuse(http.StatusBadRequest, OutcomeBadRequest, "missing X-GitHub-Delivery")
	case len(res.guid) > maxGUIDLen:
		return refuse(http.StatusBadRequest, OutcomeBadRequest, "X-GitHub-Delivery longer than "+strconv.Itoa(maxGUIDLen))
	case res.event == "":
		return refuse(http.StatusBadRequest, OutcomeBadRequest, "missing X-GitHub-Event")
	case len(res.event) > maxEventLen:
		return refuse(http.StatusBadRequest, OutcomeBadRequest, "X-GitHub-Event longer than "+strconv.Itoa(maxEventLen))
	}
	payload, err := payloadOf(r.Header.Get("Content-Type"), body)
	if err != nil {
		return refuse(http.StatusBadRequest, OutcomeBadRequest, err.Error())
	}

	now := h.now()
	d := store.Delivery{GUID: res.guid, Event: res.event, ReceivedAt: now}
	d.HookID, _ = strconv.ParseInt(r.Header.Get("X-GitHub-Hook-ID"), 10, 64)
	var ev *store.JobEvent
	okStatus := http.StatusAccepted
	switch res.event {
	case "workflow_job":
		res.action, ev, err = decodeWorkflowJob(payload, now)
		d.Outcome = OutcomeIgnored
		if ev != nil {
			d.Outcome = OutcomeJob
			res.jobID = ev.JobID
		}
	case "ping":
		res.action, err = decodeAction(payload)
		d.Outcome, okStatus = OutcomePing, http.StatusOK
	case "installation", "installation_repositories":
		res.action, err = decodeAction(payload)
		d.Outcome = OutcomeInstallation
	default:
		res.action, err = decodeAction(payload)
		d.Outcome = OutcomeIgnored
	}
	if err != nil {
		return refuse(http.StatusBadRequest, OutcomeBadRequest, err.Error())
	}
	d.Action = res.action

	ctx, cancel := context.WithTimeout(r.Context(), ingestTimeout)
	defer cancel()
	ir, err := h.store.Ingest(ctx, d, ev)
	if err != nil {
		res.status, res.outcome, res.reason, res.err = http.StatusServiceUnavailable, OutcomeStoreError, "not stored, redeliver later", err
		if r.Context().Err() != nil {
			// The sender hung up first; it will not read the answer.
			res.reason, res.err = "sender went away before the store answered", nil
		}
		return res
	}
	if ir.Duplicate {
		res.status, res.outcome = http.StatusOK, OutcomeDuplicate
		return res
	}
	res.status, res.outcome, res.applied = okStatus, d.Outcome, ir.Applied
	// The delivery is durable: what follows cannot lose it.
	switch {
	case ev != nil && ir.Applied:
		h.notifier.JobChanged(context.WithoutCancel(r.Context()), ir.Job)
	case d.Outcome == OutcomeInstallation:
		h.invalidator.InvalidateInstallations()
	}
	return res
}

// maxPrealloc bounds the buffer allocated up front from a Content-Length
// (which any client can claim before it is authenticated); bigger bodies
// grow as they arrive.
const maxPrealloc = 256 << 10

// readBody reads all of r. A body of known, modest length is read into one
// buffer of that length instead of the several io.ReadAll grows through.
func readBody(r io.Reader, length int64) ([]byte, error) {
	if length <= 0 || length > maxPrealloc {
		return io.ReadAll(r)
	}
	// One byte more than announced, so that a body longer than its
	// Content-Length is noticed (net/http refuses it anyway).
	buf := make([]byte, length+1)
	n, err := io.ReadFull(r, buf)
	switch {
	case err == nil:
		return nil, errors.New("body longer than its Content-Length")
	case errors.Is(err, io.ErrUnexpectedEOF) && int64(n) == length:
		return buf[:n], nil
	}
	return nil, err
}

// payloadOf returns the JSON payload of a body: the body itself, or its
// "payload" field when the hook sends form-encoded bodies.
func payloadOf(contentType string, body []byte) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		// GitHub sends application/json; anything else is given the
		// chance to parse as JSON.
		return body, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errors.New("form body does not parse")
	}
	p, ok := form["payload"]
	if !ok || len(p) != 1 {
		return nil, errors.New("form body needs exactly one payload field")
	}
	return []byte(p[0]), nil
}

// logResult writes one line per request: debug for accepted ones, warn for
// refusals, error for store failures. The signature and the secrets are
// never logged; header values are cut short.
func (h *Handler) logResult(res result, d time.Duration) {
	level, msg := zapcore.DebugLevel, "webhook delivery"
	switch {
	case res.err != nil:
		level, msg = zapcore.ErrorLevel, "webhook delivery not stored"
	case res.reason != "":
		level, msg = zapcore.WarnLevel, "webhook delivery refused"
	}
	ce := h.log.Check(level, msg)
	if ce == nil {
		return
	}
	fields := []zap.Field{
		zap.String("delivery", clip(res.guid)),
		zap.String("event", clip(res.event)),
		zap.String("action", clip(res.action)),
		zap.Int("status", res.status),
		zap.String("outcome", res.outcome),
		zap.Duration("duration", d),
	}
	if res.jobID != 0 {
		fields = append(fields, zap.Int64("job_id", res.jobID), zap.Bool("applied", res.applied))
	}
	if res.reason != "" {
		fields = append(fields, zap.String("reason", res.reason))
	}
	if res.err != nil {
		fields = append(fields, zap.Error(res.err))
	}
	ce.Write(fields...)
}

// clip bounds a value a client chose before it reaches a log line.
func clip(s string) string {
	const max = 128
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
