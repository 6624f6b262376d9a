package faults

import (
	"context"
	"fmt"

	sdk "github.com/conduitio/conduit-connector-sdk"
)

// The upstream side: the pipeline that writes records through the
// connector's destination, resending from the first unconfirmed record after
// a failed Write with a new destination instance, as Conduit's error
// recovery restarts a failed pipeline.

// nextBatch waits until there is something to write after next and returns
// the end of the batch; ok is false once ctx ends.
func (p *Pipeline) nextBatch(ctx context.Context, next int) (end int, ok bool) {
	for {
		p.mu.Lock()
		target, wake := p.target, p.targetWake
		p.mu.Unlock()
		if target > next {
			return min(next+p.cfg.WriteBatch, target), true
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return 0, false
		}
	}
}

func (p *Pipeline) writeLoop(ctx context.Context, dst sdk.Destination) {
	defer p.wg.Done()
	next := 0
	for {
		end, ok := p.nextBatch(ctx, next)
		if !ok {
			break
		}
		batch := makeRecords(next, end, p.cfg.Keys)
		n, err := dst.Write(ctx, batch)
		next += n
		p.ledger.setWritten(next)
		if err == nil && n == len(batch) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		if err == nil {
			err = fmt.Errorf("write confirmed %d of %d records without an error", n, len(batch))
		}
		p.ledger.writeFailed(err, len(batch), n)
		if dst = p.restartDestination(ctx, dst); dst == nil {
			return
		}
	}
	tctx, cancel := teardownCtx(ctx)
	defer cancel()
	_ = dst.Teardown(tctx)
}

// restartDestination replaces dst with a new instance; nil when ctx ended
// meanwhile.
func (p *Pipeline) restartDestination(ctx context.Context, dst sdk.Destination) sdk.Destination {
	tctx, cancel := teardownCtx(ctx)
	defer cancel()
	if err := dst.Teardown(tctx); err != nil {
		p.ledger.failed("destination teardown", err)
	}
	for p.pause(ctx) {
		next, err := p.openDestination(ctx)
		if err == nil {
			p.ledger.restarted(false)
			return next
		}
		p.ledger.failed("destination", err)
	}
	return nil
}
