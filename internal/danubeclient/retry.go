package danubeclient

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// RetryPolicy bounds retries of transient errors. Backoff grows from Base to
// Max with jitter and is cut short by the caller's context.
type RetryPolicy struct {
	MaxRetries int           // retries after the first attempt; negative: until ctx ends
	Base       time.Duration // first backoff
	Max        time.Duration // backoff cap
}

// DefaultRetry matches the official clients' bounds.
var DefaultRetry = RetryPolicy{MaxRetries: 5, Base: 200 * time.Millisecond, Max: 5 * time.Second}

// noRetry makes a single attempt.
var noRetry = RetryPolicy{MaxRetries: 0, Base: time.Millisecond, Max: time.Millisecond}

// normalized fills in defaults: the zero policy is DefaultRetry, and a
// missing Base or Max takes the default's value.
func (r RetryPolicy) normalized() RetryPolicy {
	if r == (RetryPolicy{}) {
		return DefaultRetry
	}
	if r.Base <= 0 {
		r.Base = DefaultRetry.Base
	}
	if r.Max <= 0 {
		r.Max = DefaultRetry.Max
	}
	if r.Max < r.Base {
		r.Max = r.Base
	}
	return r
}

// exhausted reports whether retry number attempt (1-based) is beyond the bound.
func (r RetryPolicy) exhausted(attempt int) bool {
	return r.MaxRetries >= 0 && attempt > r.MaxRetries
}

// Backoff returns the wait before retry number attempt (0-based): exponential
// from Base, capped at Max, drawn uniformly from the upper half so concurrent
// clients spread out.
func (r RetryPolicy) Backoff(attempt int) time.Duration {
	r = r.normalized()
	limit := r.Base
	for i := 0; i < attempt && limit < r.Max; i++ {
		limit *= 2
	}
	limit = min(limit, r.Max)
	half := limit / 2
	return half + rand.N(limit-half+1) //nolint:gosec // jitter, not security
}

// sleep waits d, or less when ctx ends or stop closes. It returns ctx's
// error, ErrClosed when stopped, or nil after the full wait.
func sleep(ctx context.Context, d time.Duration, stop <-chan struct{}) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-stop:
		return ErrClosed
	}
}

// Do runs call until it succeeds, fails with an error retryable does not
// accept, the policy is exhausted or ctx ends. It is the one retry loop of
// the connector: the client's calls, segment reads and acknowledgements all
// retry through it under the user's retry.* settings.
func (r RetryPolicy) Do(ctx context.Context, retryable func(error) bool, call func(context.Context) error) error {
	return r.run(ctx, nil, retryable, call)
}

// retry retries the transient errors of a client call.
func retry(ctx context.Context, r RetryPolicy, call func(context.Context) error) error {
	return r.run(ctx, nil, IsTransient, call)
}

// run is Do that also ends when stop closes. The last error is returned
// unclassified; callers classify it.
func (r RetryPolicy) run(ctx context.Context, stop <-chan struct{}, retryable func(error) bool,
	call func(context.Context) error,
) error {
	r = r.normalized()
	for attempt := 1; ; attempt++ {
		err := call(ctx)
		if err != nil && ctx.Err() != nil {
			// Keep errors.Is(err, context.DeadlineExceeded) true: gRPC's own
			// status for an ended context does not wrap it.
			return fmt.Errorf("%w; last error: %w", ctx.Err(), err)
		}
		if err == nil || !retryable(err) {
			return err
		}
		if r.exhausted(attempt) {
			return fmt.Errorf("gave up after %d retries: %w", attempt-1, err)
		}
		if serr := sleep(ctx, r.Backoff(attempt-1), stop); serr != nil {
			return fmt.Errorf("%w while retrying; last error: %w", serr, err)
		}
	}
}
