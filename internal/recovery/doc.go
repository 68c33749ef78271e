// Package recovery brings back jobs whose workflow_job webhooks never
// reached the daemon.
//
// GitHub never redelivers a failed webhook by itself. A delivery that failed
// (the daemon was down, restarting, or answered an error; the receiver timed
// out) is only recorded in the App's delivery log. A queued job whose
// "queued" delivery was lost is demand nobody knows about, and a job whose
// "in_progress" or "completed" was lost stays demand forever, so the scaler
// keeps launching runners for it. Two mechanisms close those gaps:
//
// # Redeliverer (GitHub App only)
//
// Every interval (lifecycle.redeliver_interval) it reads the App's delivery
// log (GET /app/hook/deliveries, newest first, cursor pagination) back to
// the newest delivery it had already examined (its watermark), and asks
// GitHub to redeliver (POST /app/hook/deliveries/{id}/attempts) every
// workflow_job delivery that failed and has no successful attempt with the
// same GUID among those read. A redelivery carries the same GUID, so the
// intake's GUID dedupe makes a redelivery of something that did arrive
// harmless; the bounds below keep the API budget safe.
//
//   - At most MaxPerCycle redelivery requests per cycle, oldest failure
//     first; the rest wait for the next cycle (the watermark stays below
//     them, so they are read again).
//   - A GUID is asked for again only when a newer attempt for it failed too
//     (a failed redelivery), and at most MaxAttempts times; after that it is
//     given up, counted and logged.
//   - A failure delivered less than SettleDelay ago is not judged yet: the
//     watermark stays below it until it is.
//   - What was asked is remembered for Horizon (GitHub keeps deliveries
//     for a limited time, and a job queued longer than a day is cancelled
//     by GitHub anyway), so memory is bounded.
//
// The watermark is persisted through a CursorStore, so a restart continues
// where the last run stopped and recovers what failed while the daemon was
// down. On the very first start it looks back Lookback (default 1h).
//
// # StaleJobs checker
//
// Every interval it lists the jobs the store holds as queued, and asks
// GitHub (GET /repos/{owner}/{repo}/actions/jobs/{job_id}) about those
// queued for longer than lifecycle.stale_job_after, oldest first, at most
// MaxChecksPerCycle per cycle, and none checked less than Recheck ago. When
// GitHub says the job is in progress or completed, or no longer knows it
// (404), the checker reports the transitions the lost webhooks would have
// carried to a JobApplier (the daemon writes them to the store and tells the
// engine). It is the backstop when redelivery is impossible (PAT auth,
// deliveries older than GitHub keeps them) or gave up.
//
// Both expose Cycle, one pass that tests drive directly, and Run, which
// loops until its context ends. A failing GitHub call is retried on the next
// cycle, never dropped; Run logs what a cycle returned.
package recovery
