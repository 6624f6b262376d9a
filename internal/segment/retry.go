package segment

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Retrier runs a call again while retryable accepts its error, under the
// connector's retry policy (danubeclient.RetryPolicy, set by retry.*).
type Retrier interface {
	Do(ctx context.Context, retryable func(error) bool, call func(context.Context) error) error
}

// retry runs call under the configured Retrier, retrying the broker's
// transient errors (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED).
func (r *Reader) retry(ctx context.Context, call func(context.Context) error) error {
	if r.cfg.Retry == nil {
		return call(ctx)
	}
	return r.cfg.Retry.Do(ctx, transient, call)
}

func transient(err error) bool {
	switch status.Code(err) { //nolint:exhaustive // every other code is permanent
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		return true
	default:
		return false
	}
}
