package transport

import (
	"context"
	"sync/atomic"
)

// Semaphore caps the number of GitHub requests in flight. One Semaphore may
// be shared by many Transports (for example one per installation) so that the
// whole process stays under GitHub's concurrency limit. A slot is held from
// the moment an attempt is sent until its response body is closed (or read to
// EOF), so callers that keep many bodies open can starve other requests.
type Semaphore struct {
	slots   chan struct{}
	waiting atomic.Int64
}

// NewSemaphore returns a Semaphore allowing n concurrent holders; n < 1 is
// treated as 1.
func NewSemaphore(n int) *Semaphore {
	if n < 1 {
		n = 1
	}
	return &Semaphore{slots: make(chan struct{}, n)}
}

// acquire takes a slot, waiting until one is free or ctx ends (then it
// returns ctx.Err() and holds nothing).
func (s *Semaphore) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case s.slots <- struct{}{}:
		return nil
	default:
	}
	s.waiting.Add(1)
	defer s.waiting.Add(-1)
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release frees a slot taken by acquire. The transport guarantees exactly
// one release per successful acquire (see releaseBody).
func (s *Semaphore) release() {
	select {
	case <-s.slots:
	default:
	}
}

// Cap returns the number of slots.
func (s *Semaphore) Cap() int { return cap(s.slots) }

// InUse returns the number of slots currently held.
func (s *Semaphore) InUse() int { return len(s.slots) }

// Waiting returns the number of requests waiting for a slot.
func (s *Semaphore) Waiting() int { return int(s.waiting.Load()) }
