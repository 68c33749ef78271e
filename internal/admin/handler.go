package admin

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/secret"
)

// SourceTimeout bounds one call to Source.Status: a status that takes longer
// is a stuck engine, and the client is better told so than left hanging.
const SourceTimeout = 5 * time.Second

// allowedMethods is the Allow header of a 405.
const allowedMethods = "GET, HEAD"

// Handler serves GET and HEAD of Path with src's status as JSON; every other
// path is 404.
//
// With a token, every request must carry "Authorization: Bearer TOKEN" (401
// otherwise), from wherever it comes. Without one, only loopback clients that
// address the daemon by a loopback name are answered (403 otherwise): the
// Host check stops a web page in a local browser from reading the status
// through DNS rebinding. Forwarding headers (X-Forwarded-For) are ignored:
// anyone can set them.
//
// logger may be nil.
func Handler(src Source, token secret.String, logger *zap.Logger) http.Handler {
	if src == nil {
		panic("admin: Handler needs a Source")
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	h := &handler{src: src, log: logger, hasToken: token != ""}
	if h.hasToken {
		h.tokenSum = sha256.Sum256([]byte(token.Reveal()))
	}
	return h
}

type handler struct {
	src      Source
	log      *zap.Logger
	hasToken bool
	// tokenSum is the token's SHA-256: comparing fixed-size digests keeps
	// the comparison constant-time in the token's length too
	// (subtle.ConstantTimeCompare returns at once on a length mismatch).
	tokenSum [sha256.Size]byte
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Authorization comes first so that a client without it learns nothing,
	// not even which paths and methods exist.
	if status, reason := h.authorize(r); status != 0 {
		h.log.Warn("admin request refused",
			zap.String("remote", r.RemoteAddr), zap.String("method", r.Method),
			zap.Int("status", status), zap.String("reason", reason))
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="runnerscaler admin"`)
		}
		writeError(w, r, status, reason)
		return
	}
	if r.URL.Path != Path {
		writeError(w, r, http.StatusNotFound, "not found: the status is at "+Path)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", allowedMethods)
		writeError(w, r, http.StatusMethodNotAllowed, "method not allowed: use GET")
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), SourceTimeout)
	defer cancel()
	st, err := h.src.Status(ctx)
	if err != nil {
		// The error stays in the log: its text is the engine's business,
		// not something to hand to a client.
		h.log.Error("admin status unavailable", zap.Error(err))
		writeError(w, r, http.StatusServiceUnavailable, "status unavailable: see the daemon's log")
		return
	}
	body, err := json.Marshal(normalize(st, time.Now()))
	if err != nil {
		h.log.Error("admin status not encodable", zap.Error(err))
		writeError(w, r, http.StatusInternalServerError, "status not encodable: see the daemon's log")
		return
	}
	writeBody(w, r, http.StatusOK, append(body, '\n'))
}

// authorize returns 0 when r may be answered, else the status to refuse it
// with and why (fit for the client and the log: it never holds the token).
func (h *handler) authorize(r *http.Request) (int, string) {
	if h.hasToken {
		presented, ok := bearerToken(r.Header.Get("Authorization"))
		if !ok {
			return http.StatusUnauthorized, "unauthorized: send Authorization: Bearer <admin token>"
		}
		sum := sha256.Sum256([]byte(presented))
		if subtle.ConstantTimeCompare(sum[:], h.tokenSum[:]) != 1 {
			return http.StatusUnauthorized, "unauthorized: wrong admin token"
		}
		return 0, ""
	}
	if !loopbackRemote(r.RemoteAddr) {
		return http.StatusForbidden, "forbidden: without admin.token only loopback clients are answered"
	}
	if !loopbackHost(r.Host) {
		return http.StatusForbidden, "forbidden: without admin.token the daemon must be addressed as localhost or a loopback IP"
	}
	return 0, ""
}

// bearerToken extracts the credentials of a Bearer Authorization header. The
// scheme is case-insensitive (RFC 7235).
func bearerToken(header string) (string, bool) {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	cred = strings.TrimSpace(cred)
	return cred, cred != ""
}

// loopbackRemote reports whether a RemoteAddr (ip:port) is a loopback
// address, IPv4-mapped IPv6 included.
func loopbackRemote(remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	return ap.Addr().Unmap().IsLoopback()
}

// loopbackHost reports whether a Host header names loopback: localhost or a
// loopback IP, with or without a port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// normalize returns st ready to serve: lists bounded and in their documented
// order, JSON arrays and objects never null, every runner state present. It
// copies whatever it changes, as st may be shared with the Source.
func normalize(st Status, now time.Time) Status {
	if st.GeneratedAt.IsZero() {
		st.GeneratedAt = now
	}
	pools := make([]PoolStatus, len(st.Pools))
	for i, p := range st.Pools {
		p.Labels = nonNil(p.Labels)
		runners := make(map[string]int, len(p.Runners)+len(RunnerStates()))
		for _, s := range RunnerStates() {
			runners[s] = 0
		}
		maps.Copy(runners, p.Runners)
		p.Runners = runners
		pools[i] = p
	}
	st.Pools = pools

	st.Jobs.OldestQueued = boundJobs(st.Jobs.OldestQueued, MaxQueuedJobs, func(j JobEntry) time.Time { return j.QueuedAt })
	st.Jobs.RunningJobs = boundJobs(st.Jobs.RunningJobs, MaxRunningJobs, func(j JobEntry) time.Time { return j.StartedAt })

	errs := slices.Clone(st.RecentErrors)
	slices.SortStableFunc(errs, func(a, b ErrorEntry) int { return b.Time.Compare(a.Time) })
	st.RecentErrors = nonNil(errs[:min(len(errs), MaxRecentErrors)])
	return st
}

// boundJobs returns the n jobs with the earliest key, earliest first (ties by
// ID, so the order does not depend on the Source's).
func boundJobs(jobs []JobEntry, n int, key func(JobEntry) time.Time) []JobEntry {
	jobs = slices.Clone(jobs)
	slices.SortStableFunc(jobs, func(a, b JobEntry) int {
		if c := key(a).Compare(key(b)); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	jobs = jobs[:min(len(jobs), n)]
	for i := range jobs {
		jobs[i].Labels = nonNil(jobs[i].Labels)
	}
	return nonNil(jobs)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// errorBody is the JSON of every refusal and failure.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	var buf bytes.Buffer
	// Encoding a struct of one string cannot fail.
	_ = json.NewEncoder(&buf).Encode(errorBody{Error: msg})
	writeBody(w, r, status, buf.Bytes())
}

func writeBody(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json; charset=utf-8")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	// The status changes by the second and may name private repositories:
	// no cache should keep it.
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		// A failed write means the client went away; nothing to tell it.
		_, _ = w.Write(body)
	}
}
