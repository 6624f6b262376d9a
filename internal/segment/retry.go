package segment

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Retry says how often, and how patiently, a transient broker error
// (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED) is retried. Zero
// fields take the defaults: 5 attempts, 100ms doubling up to 5s.
type Retry struct {
	Attempts  int
	BaseDelay time.Duration
	MaxDelay  time.Duration
}

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = 5
	}
	if r.BaseDelay <= 0 {
		r.BaseDelay = 100 * time.Millisecond
	}
	if r.MaxDelay <= 0 {
		r.MaxDelay = 5 * time.Second
	}
	return r
}

func transient(err error) bool {
	switch status.Code(err) { //nolint:exhaustive // every other code is permanent
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		return true
	default:
		return false
	}
}

// do runs call until it succeeds, fails permanently, runs out of attempts or
// ctx ends.
func (r Retry) do(ctx context.Context, call func(context.Context) error) error {
	r = r.withDefaults()
	delay := r.BaseDelay
	for attempt := 1; ; attempt++ {
		err := call(ctx)
		if err == nil || !transient(err) || ctx.Err() != nil {
			return err
		}
		if attempt >= r.Attempts {
			return fmt.Errorf("gave up after %d attempts: %w", attempt, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-t.C:
		}
		delay = min(2*delay, r.MaxDelay)
	}
}
