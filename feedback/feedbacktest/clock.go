// Package feedbacktest holds test helpers of the feedback domain shared by
// every package's tests: a settable clock and the shared data. Fresh databases come from
// feedback/store/storetest.
package feedbacktest

import (
	"sync"
	"time"
)

// Clock is a settable clock for tests of cooldowns, budgets, retries and
// caches: pass its Now wherever a component takes a clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock forward by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}
