package clocktest

import (
	"context"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := New(start)
	c.Advance(time.Minute)
	if !c.Now().Equal(start.Add(time.Minute)) {
		t.Errorf("after Advance: %v", c.Now())
	}
	if err := c.Sleep(context.Background(), time.Hour); err != nil || !c.Now().Equal(start.Add(61*time.Minute)) {
		t.Errorf("after Sleep: %v, %v", c.Now(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Sleep(ctx, time.Hour); err == nil || !c.Now().Equal(start.Add(61*time.Minute)) {
		t.Errorf("Sleep on a done context: %v, clock %v", err, c.Now())
	}
	c.Set(start)
	if !c.Now().Equal(start) {
		t.Errorf("after Set: %v", c.Now())
	}
}
