package ghsim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/ghsim/simrunner"
	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

// onEvent hands an in_progress job to its runner's session, and ends the
// session of an ephemeral runner whose job completed.
func (h *runnerHub) onEvent(e world.Event) {
	rid := e.Job.RunnerID
	if rid == 0 {
		return
	}
	switch e.Action {
	case world.JobInProgress:
		h.post(rid, simrunner.Message{Type: simrunner.MsgJob, Job: sessionJobMessage(e.Job, e.Repo)})
	case world.JobCompleted:
		_, registered := h.s.world.RunnerByID(rid)
		h.mu.Lock()
		defer h.mu.Unlock()
		mb := h.mail[rid]
		if mb == nil {
			if !registered {
				h.forgetLocked(rid)
			}
			return
		}
		mb.dropJob(e.Job.ID)
		switch {
		case !registered && mb.attached:
			mb.push(simrunner.Message{Type: simrunner.MsgExit, Reason: "removed"})
		case !registered:
			h.forgetLocked(rid)
		case mb.attached && e.Job.Conclusion == "cancelled":
			mb.push(simrunner.Message{Type: simrunner.MsgCancel, JobID: e.Job.ID})
		}
	}
}

func sessionJobMessage(j world.Job, repo world.Repository) *simrunner.Job {
	return &simrunner.Job{
		ID: j.ID, RunID: j.RunID, Name: j.Name, Repo: repo.FullName(), Labels: j.Labels,
		DurationMS: j.Duration.Milliseconds(),
	}
}

// post queues a message for a runner's (present or future) session.
func (h *runnerHub) post(rid int64, m simrunner.Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mailboxLocked(rid).push(m)
}

func (h *runnerHub) mailboxLocked(rid int64) *sessionMailbox {
	mb := h.mail[rid]
	if mb == nil {
		mb = &sessionMailbox{wake: make(chan struct{}, 1)}
		h.mail[rid] = mb
	}
	return mb
}

func (mb *sessionMailbox) push(m simrunner.Message) {
	mb.queue = append(mb.queue, m)
	select {
	case mb.wake <- struct{}{}:
	default:
	}
}

// dropJob removes an undelivered assignment of a job that has ended.
func (mb *sessionMailbox) dropJob(jobID int64) {
	q := mb.queue[:0]
	for _, m := range mb.queue {
		if m.Type != simrunner.MsgJob || m.Job.ID != jobID {
			q = append(q, m)
		}
	}
	mb.queue = q
}

// forgetLocked drops everything kept for a runner that no longer exists.
func (h *runnerHub) forgetLocked(rid int64) {
	delete(h.mail, rid)
	for _, c := range h.credsOf[rid] {
		delete(h.creds, c)
	}
	delete(h.credsOf, rid)
}

// serveComplete records a finished job.
func (h *runnerHub) serveComplete(w http.ResponseWriter, r *http.Request) {
	rid, ok := h.credentialRunner(runnerBearer(r))
	if !ok {
		writeRunnerError(w, http.StatusUnauthorized, "runner credentials are invalid")
		return
	}
	jobID, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeRunnerError(w, http.StatusNotFound, "no such job")
		return
	}
	if err := h.s.world.FinishJob(rid, jobID); err != nil {
		writeRunnerError(w, runnerWorldStatus(err), err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// serveSession is the long-lived connection of a runner process: it holds
// the runner online and carries its assignments. When the request ends
// (the process is gone), the runner goes offline.
func (h *runnerHub) serveSession(w http.ResponseWriter, r *http.Request) {
	tok := runnerBearer(r)
	h.mu.Lock()
	c, ok := h.creds[tok]
	if !ok || tok == "" {
		h.mu.Unlock()
		writeRunnerError(w, http.StatusUnauthorized, "runner credentials are invalid")
		return
	}
	if c.oneTime && c.used {
		h.mu.Unlock()
		writeRunnerError(w, http.StatusUnauthorized, "this JIT config was already used")
		return
	}
	rid := c.runnerID
	mb := h.mailboxLocked(rid)
	if mb.attached {
		h.mu.Unlock()
		writeRunnerError(w, http.StatusConflict, "a session is already open for this runner")
		return
	}
	if h.closed {
		h.mu.Unlock()
		writeRunnerError(w, http.StatusServiceUnavailable, "simulator is shutting down")
		return
	}
	c.used = true
	mb.attached = true
	h.mu.Unlock()

	run, registered := h.s.world.RunnerByID(rid)
	if !registered {
		h.detach(rid, false)
		writeRunnerError(w, http.StatusNotFound, "runner not found: it was removed")
		return
	}
	log := h.log.With(zap.String("runner", run.Name), zap.Int64("runner_id", rid))

	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	enc := json.NewEncoder(w)
	send := func(m simrunner.Message) error {
		_ = rc.SetWriteDeadline(time.Now().Add(sessionWriteWait))
		if err := enc.Encode(m); err != nil {
			return err
		}
		return rc.Flush()
	}

	// RunnerOnline may assign a job at once; onEvent queues it in mb.
	if err := h.s.world.RunnerOnline(rid); err != nil {
		_ = send(simrunner.Message{Type: simrunner.MsgExit, Reason: "removed"})
		h.detach(rid, false)
		return
	}
	log.Info("runner session opened")
	// A job assigned before this session opened (and not queued) goes out too.
	if now, ok := h.s.world.RunnerByID(rid); ok && now.Busy {
		if j, repo, ok := h.s.world.Job(now.JobID); ok {
			h.mu.Lock()
			queued := false
			for _, m := range mb.queue {
				queued = queued || (m.Type == simrunner.MsgJob && m.Job.ID == j.ID)
			}
			if !queued && mb.sentJob != j.ID {
				mb.push(simrunner.Message{Type: simrunner.MsgJob, Job: sessionJobMessage(j, repo)})
			}
			h.mu.Unlock()
		}
	}

	offline := true
	defer func() {
		h.detach(rid, offline)
		log.Info("runner session closed", zap.Bool("offline", offline))
	}()
	tick := time.NewTicker(sessionPoll)
	defer tick.Stop()
	lastSent := time.Now()
	for {
		h.mu.Lock()
		msgs := mb.queue
		mb.queue = nil
		h.mu.Unlock()
		for _, m := range msgs {
			if m.Type == simrunner.MsgJob && !h.deliverable(rid, mb, m.Job.ID) {
				continue
			}
			if err := send(m); err != nil {
				log.Info("runner session lost", zap.Error(err))
				return
			}
			lastSent = time.Now()
			if m.Type == simrunner.MsgJob {
				log.Info("job handed to runner", zap.Int64("job_id", m.Job.ID))
			}
			if m.Type == simrunner.MsgExit {
				return
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			offline = false // the simulator stops; the world is left as it was
			return
		case <-mb.wake:
		case <-tick.C:
			if _, ok := h.s.world.RunnerByID(rid); !ok {
				_ = send(simrunner.Message{Type: simrunner.MsgExit, Reason: "removed"})
				return
			}
			if time.Since(lastSent) >= sessionKeepAlive {
				if err := send(simrunner.Message{Type: simrunner.MsgPing}); err != nil {
					return
				}
				lastSent = time.Now()
			}
		}
	}
}

// deliverable reports whether a queued assignment is still the runner's
// (it may have been cancelled or failed since) and not yet handed over, and
// marks it handed over.
func (h *runnerHub) deliverable(rid int64, mb *sessionMailbox, jobID int64) bool {
	j, _, ok := h.s.world.Job(jobID)
	if !ok || j.Status != world.JobInProgress || j.RunnerID != rid {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if mb.sentJob == jobID {
		return false
	}
	mb.sentJob = jobID
	return true
}

// detach ends a runner's session: the runner goes offline (the world fails a
// job it was running and counts the loss), and what is kept for a runner that
// no longer exists is dropped.
func (h *runnerHub) detach(rid int64, offline bool) {
	if offline {
		h.s.world.RunnerOffline(rid)
	}
	_, registered := h.s.world.RunnerByID(rid)
	h.mu.Lock()
	defer h.mu.Unlock()
	if mb := h.mail[rid]; mb != nil {
		mb.attached = false
		mb.queue = nil
	}
	if !registered {
		h.forgetLocked(rid)
	}
}
