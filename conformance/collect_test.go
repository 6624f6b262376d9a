package conformance

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// delivery is one message as a named consumer saw it.
type delivery struct {
	consumer string
	msg      *danubeclient.ReceivedMessage
}

// collect receives from several consumers at once until want deliveries
// arrived in total, settling each one: nack(m) true nacks it for an
// immediate retry, false acks it.
func collect(t *testing.T, consumers map[string]*danubeclient.Consumer, want int, nack func(*danubeclient.ReceivedMessage) bool) []delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*deliveryTimeout)
	defer cancel()
	var (
		mu   sync.Mutex
		got  []delivery
		wg   sync.WaitGroup
		errs = make(chan error, len(consumers))
	)
	for name, co := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := co.Receive(ctx)
				if err != nil {
					if ctx.Err() == nil || !isFull(&mu, &got, want) {
						errs <- fmt.Errorf("%s: Receive: %w", name, err)
					}
					return
				}
				mu.Lock()
				retry := nack(m)
				got = append(got, delivery{consumer: name, msg: m})
				full := len(got) >= want
				mu.Unlock()
				if err := settle(context.WithoutCancel(ctx), co, m, retry); err != nil {
					errs <- fmt.Errorf("%s: settle %q: %w", name, m.Payload, err)
					return
				}
				if full {
					cancel() // wake the other consumers
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	return got
}

func isFull(mu *sync.Mutex, got *[]delivery, want int) bool {
	mu.Lock()
	defer mu.Unlock()
	return len(*got) >= want
}

// settle acks m, or nacks it for an immediate retry, with its own deadline so
// that ending the receive loops cannot cut it short.
func settle(parent context.Context, co *danubeclient.Consumer, m *danubeclient.ReceivedMessage, nack bool) error {
	ctx, cancel := context.WithTimeout(parent, opTimeout)
	defer cancel()
	if nack {
		return co.Nack(ctx, m.ID, 0, "retry")
	}
	return co.Ack(ctx, m.ID)
}
