package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"

	"go.uber.org/zap"
)

// Group commit.
//
// Every write is a writeReq handed to one writer goroutine that owns the
// only read-write connection. The writer takes the first request waiting,
// then whatever else is already queued (up to MaxBatch) without waiting for
// more, and runs them all in one transaction, each inside its own SAVEPOINT
// so that a request that fails is rolled back alone and its batch-mates
// still commit. After the one COMMIT it answers every request. A caller
// therefore returns only once the commit holding its write is done, and
// concurrent callers share that commit (and, with synchronous=FULL, its
// fsync) instead of queueing one transaction each. Batches form by
// themselves: while one commits, the next requests pile up in the channel.

// writeReq is one write waiting for the writer.
type writeReq struct {
	ctx  context.Context
	key  string           // what the write is about (a delivery GUID, ...), for logs and test hooks
	fn   func(*wtx) error // the write; runs inside the request's savepoint
	done chan error       // buffered(1): the request's outcome, sent after the commit
}

// wtx is what a write sees: the writer's connection, inside a transaction,
// and its prepared statements. Only the writer goroutine uses it.
type wtx struct {
	conn *sql.Conn
	st   *writeStmts
}

func (w *wtx) exec(q string, args ...any) (sql.Result, error) {
	return w.conn.ExecContext(context.Background(), q, args...)
}

// writeStmts are the statements the writer runs on every batch, prepared
// once on its connection.
type writeStmts struct {
	savepoint, release, rollbackTo *sql.Stmt
	insDelivery, insTransition     *sql.Stmt
	selJob, upsertJob              *sql.Stmt
}

func prepareWriteStmts(ctx context.Context, c *sql.Conn) (*writeStmts, error) {
	st := &writeStmts{}
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&st.savepoint, "SAVEPOINT w"},
		{&st.release, "RELEASE w"},
		{&st.rollbackTo, "ROLLBACK TO w"},
		{&st.insDelivery, `INSERT INTO deliveries (guid, event, action, hook_id, received_at, outcome)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (guid) DO NOTHING`},
		{&st.insTransition, `INSERT INTO job_transitions (job_id, action, delivery_guid, at)
			VALUES (?, ?, ?, ?) ON CONFLICT (job_id, action) DO NOTHING`},
		{&st.selJob, "SELECT " + jobColumns + " FROM jobs WHERE id = ?"},
		{&st.upsertJob, upsertJobSQL},
	} {
		s, err := c.PrepareContext(ctx, p.q)
		if err != nil {
			st.close()
			return nil, fmt.Errorf("prepare %q: %w", p.q, err)
		}
		*p.dst = s
	}
	return st, nil
}

func (st *writeStmts) close() {
	for _, s := range []*sql.Stmt{st.savepoint, st.release, st.rollbackTo,
		st.insDelivery, st.insTransition, st.selJob, st.upsertJob} {
		if s != nil {
			_ = s.Close()
		}
	}
}

// writerStats are the writer's counters (see Stats).
type writerStats struct {
	writes  atomic.Uint64 // requests run inside a transaction
	failed  atomic.Uint64 // requests answered with an error
	commits atomic.Uint64 // transactions committed
}

// Stats are the store's write counters since Open.
type Stats struct {
	Writes  uint64 // write requests executed in a transaction (Ingest, PutRunner, ...)
	Failed  uint64 // write requests that returned an error
	Commits uint64 // transactions committed; Writes/Commits is the mean batch size
}

// Stats returns the write counters.
func (s *Store) Stats() Stats {
	return Stats{
		Writes:  s.stats.writes.Load(),
		Failed:  s.stats.failed.Load(),
		Commits: s.stats.commits.Load(),
	}
}

// write hands fn to the writer and waits for the commit that holds it.
//
// If ctx ends first, write returns ctx.Err() at once, but a request the
// writer has already started still commits: the caller cannot know whether
// its write landed. (The webhook intake answers 503 then; GitHub's
// redelivery is deduplicated by GUID, so that is safe.) A request whose ctx
// has ended before the writer reaches it is skipped.
func (s *Store) write(ctx context.Context, key string, fn func(*wtx) error) error {
	select {
	case <-s.quit:
		return ErrClosed
	default:
	}
	req := &writeReq{ctx: ctx, key: key, fn: fn, done: make(chan error, 1)}
	select {
	case s.reqs <- req:
	case <-s.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.writerDone:
		// The writer has stopped; it answered everything it took.
		select {
		case err := <-req.done:
			return err
		default:
			return ErrClosed
		}
	}
}

// writer is the one goroutine that writes. It ends when quit is closed and
// the requests already queued are done.
func (s *Store) writer(conn *sql.Conn, st *writeStmts) {
	defer close(s.writerDone)
	defer func() {
		st.close()
		_ = conn.Close()
	}()
	w := &wtx{conn: conn, st: st}
	batch := make([]*writeReq, 0, s.maxBatch)
	for {
		select {
		case req := <-s.reqs:
			batch = append(batch, req)
		drain:
			for len(batch) < s.maxBatch {
				select {
				case req := <-s.reqs:
					batch = append(batch, req)
				default:
					break drain
				}
			}
			s.runBatch(w, batch)
			clear(batch)
			batch = batch[:0]
		case <-s.quit:
			// Close: finish what is queued, then stop. Senders racing Close
			// either got in before this drain empties the channel or see
			// writerDone and get ErrClosed.
			for {
				select {
				case req := <-s.reqs:
					batch = append(batch, req)
					if len(batch) == s.maxBatch {
						s.runBatch(w, batch)
						clear(batch)
						batch = batch[:0]
					}
				default:
					if len(batch) > 0 {
						s.runBatch(w, batch)
					}
					return
				}
			}
		}
	}
}

// runBatch runs reqs in one transaction and answers each.
func (s *Store) runBatch(w *wtx, reqs []*writeReq) {
	if h := s.hooks.beforeBatch; h != nil {
		h(len(reqs))
	}
	// Skip requests whose caller has already given up.
	live := reqs[:0:0]
	for _, r := range reqs {
		if err := r.ctx.Err(); err != nil {
			s.stats.failed.Add(1)
			r.done <- err
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	errs := make([]error, len(live))
	if err := s.execBatch(w, live, errs); err != nil {
		// The transaction as a whole failed: nothing of the batch is stored.
		s.log.Error("store batch failed", zap.Int("writes", len(live)), zap.Error(err))
		s.stats.writes.Add(uint64(len(live)))
		s.stats.failed.Add(uint64(len(live)))
		for _, r := range live {
			r.done <- err
		}
		return
	}
	s.stats.commits.Add(1)
	s.stats.writes.Add(uint64(len(live)))
	for i, r := range live {
		if errs[i] != nil {
			s.stats.failed.Add(1)
		}
		r.done <- errs[i]
	}
}

// execBatch runs the transaction: BEGIN, a savepoint per request, COMMIT.
// errs receives each request's own error; the returned error means the
// whole transaction was rolled back.
func (s *Store) execBatch(w *wtx, reqs []*writeReq, errs []error) (err error) {
	ctx := context.Background()
	if _, err := w.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer func() {
		if err != nil {
			if _, rerr := w.conn.ExecContext(ctx, "ROLLBACK"); rerr != nil {
				s.log.Error("store rollback failed", zap.Error(rerr))
			}
		}
	}()
	for i, r := range reqs {
		if _, err := w.st.savepoint.ExecContext(ctx); err != nil {
			return fmt.Errorf("store: savepoint: %w", err)
		}
		rerr := r.fn(w)
		if rerr == nil && s.hooks.failWrite != nil {
			rerr = s.hooks.failWrite(r.key)
		}
		if rerr != nil {
			errs[i] = rerr
			if _, err := w.st.rollbackTo.ExecContext(ctx); err != nil {
				return fmt.Errorf("store: rollback to savepoint after %v: %w", rerr, err)
			}
		}
		if _, err := w.st.release.ExecContext(ctx); err != nil {
			return fmt.Errorf("store: release savepoint: %w", err)
		}
	}
	if _, err := w.conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}
