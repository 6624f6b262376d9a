package danubeclient

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// healthLoop runs one object's periodic health check on its own goroutine
// until stop, which waits for it to end.
type healthLoop struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startHealth calls check every interval. check gets a context that ends
// when the loop stops.
func startHealth(interval time.Duration, check func(ctx context.Context)) *healthLoop {
	ctx, cancel := context.WithCancel(context.Background())
	h := &healthLoop{cancel: cancel}
	h.wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				check(ctx)
			}
		}
	})
	return h
}

func (h *healthLoop) stop() {
	if h == nil {
		return
	}
	h.cancel()
	h.wg.Wait()
}

// healthCheck asks the broker whether producer or consumer id is still alive.
// closed means the broker answered CLOSE: it no longer knows the id, or the
// consumer's stream is gone.
func (c *Client) healthCheck(ctx context.Context, r *route, kind danubepb.HealthCheckRequest_ClientType, id uint64) (closed bool, err error) {
	cctx, cancel := context.WithTimeout(ctx, max(c.health, time.Second))
	defer cancel()
	resp, err := danubepb.NewHealthCheckClient(r.cc).HealthCheck(r.outgoing(cctx),
		&danubepb.HealthCheckRequest{RequestId: c.reqID.Add(1), Client: kind, Id: id})
	if err != nil {
		return false, r.decorate(fmt.Errorf("health check of %s %d at %s: %w", kind, id, r.connectURL, err))
	}
	return resp.GetStatus() == danubepb.HealthCheckResponse_CLOSE, nil
}
