package source

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// errClosed is returned by calls made after Close.
var errClosed = errors.New("iterator closed")

// acker sends acknowledgements to the broker from a fixed set of workers, so
// that acknowledging never blocks reading. The first failure is kept and
// reported by err.
type acker struct {
	retry  danubeclient.RetryPolicy
	jobs   chan ackJob
	stop   chan struct{}
	ctx    context.Context //nolint:containedctx // bounds the workers' calls; cancelled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.RWMutex // held shared while queueing, exclusively to close jobs
	closed bool

	errMu  sync.Mutex
	err    error
	failed chan struct{} // closed on the first failure
}

type ackJob struct {
	consumer Consumer
	id       danubeclient.MessageID
}

func newAcker(workers int, retry danubeclient.RetryPolicy) *acker {
	ctx, cancel := context.WithCancel(context.Background())
	a := &acker{
		retry:  retry,
		jobs:   make(chan ackJob, workers),
		stop:   make(chan struct{}),
		ctx:    ctx,
		cancel: cancel,
		failed: make(chan struct{}),
	}
	a.wg.Add(workers)
	for range workers {
		go a.work()
	}
	return a
}

func (a *acker) work() {
	defer a.wg.Done()
	for j := range a.jobs {
		if err := a.ack(j); err != nil {
			if a.ctx.Err() != nil {
				continue // abandoned at close; the broker redelivers it
			}
			a.fail(fmt.Errorf("acknowledge %s offset %d: %w", j.id.Topic, j.id.Offset, err))
		}
	}
}

// ack sends one acknowledgement under the retry policy. The client already
// retries transient errors; this also retries the broker's "subscription not
// found" right after a restart, until the consumer has subscribed again.
func (a *acker) ack(j ackJob) error {
	return a.retry.Do(a.ctx, func(err error) bool { return !errors.Is(err, danubeclient.ErrClosed) },
		func(ctx context.Context) error { return j.consumer.Ack(ctx, j.id) })
}

func (a *acker) fail(err error) {
	a.errMu.Lock()
	defer a.errMu.Unlock()
	if a.err == nil {
		a.err = err
		close(a.failed)
	}
}

// failure returns the first acknowledgement failure, if any.
func (a *acker) failure() error {
	a.errMu.Lock()
	defer a.errMu.Unlock()
	return a.err
}

// enqueue hands a job to the workers, waiting while all are busy.
func (a *acker) enqueue(ctx context.Context, j ackJob) error {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		return errClosed
	}
	select {
	case a.jobs <- j:
		return nil
	case <-a.stop:
		return errClosed
	case <-ctx.Done():
		return fmt.Errorf("acknowledge %s offset %d: %w", j.id.Topic, j.id.Offset, ctx.Err())
	}
}

// close waits for queued acknowledgements until ctx ends, then abandons the
// rest. It reports how many were abandoned.
func (a *acker) close(ctx context.Context) (abandoned int) {
	close(a.stop)
	a.mu.Lock()
	a.closed = true
	close(a.jobs)
	a.mu.Unlock()

	done := make(chan struct{})
	go func() {
		a.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		abandoned = len(a.jobs)
		a.cancel()
		<-done
	}
	a.cancel()
	return abandoned
}
