package faults

import (
	"context"
	"errors"
	"fmt"

	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"
)

// The downstream side: the pipeline that reads through the connector's
// source and acknowledges every record once processed, as Conduit does when
// its destination wrote the record. After an error, or on request, it tears
// the source down and opens a new instance at the position of the last
// acknowledged record, the one Conduit stored.

func (p *Pipeline) readLoop(ctx context.Context, src sdk.Source) {
	defer p.wg.Done()
	var last opencdc.Position
	for {
		readCtx, cancel := context.WithCancel(ctx)
		p.mu.Lock()
		p.cancelRead = cancel
		pending := p.request != nil
		p.mu.Unlock()
		var recs []opencdc.Record
		var err error
		if !pending {
			recs, err = src.ReadN(readCtx, p.cfg.ReadBatch)
		}
		cancel()
		ackErr := p.handle(ctx, src, recs, &last)
		if ctx.Err() != nil {
			p.teardownSource(ctx, src, StopGraceful)
			return
		}
		if req := p.takeRequest(); req != nil {
			src = p.restartSource(ctx, src, last, req.mode)
			close(req.done)
		} else if err != nil || ackErr != nil {
			if err != nil {
				p.ledger.failed("source", err)
			}
			src = p.restartSource(ctx, src, last, StopGraceful)
		}
		if src == nil {
			return
		}
	}
}

// handle processes and acknowledges records in order. It stops at the first
// failed Ack: the record was processed, but Conduit's position stays at the
// one before.
func (p *Pipeline) handle(ctx context.Context, src sdk.Source, recs []opencdc.Record, last *opencdc.Position) error {
	for _, rec := range recs {
		r, err := decodeReceived(rec)
		if err != nil {
			p.ledger.undecodable(err)
		} else {
			if p.cfg.Process != nil {
				p.cfg.Process(r.seq)
			}
			p.ledger.process(r)
		}
		if err := src.Ack(ctx, rec.Position); err != nil {
			if ctx.Err() == nil {
				p.ledger.failed("source ack", err)
			}
			return fmt.Errorf("ack: %w", err)
		}
		*last = rec.Position
	}
	return nil
}

func (p *Pipeline) takeRequest() *sourceRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.request
	p.request = nil
	return r
}

func (p *Pipeline) teardownSource(ctx context.Context, src sdk.Source, mode StopMode) {
	tctx, cancel := teardownCtx(ctx)
	defer cancel()
	if mode == StopAbandoningAcks {
		cancel() // no time to send what is queued
	}
	if err := src.Teardown(tctx); err != nil && mode == StopGraceful {
		p.ledger.failed("source teardown", err)
	}
}

// restartSource tears src down and opens a new instance at last; nil when
// ctx ended meanwhile.
func (p *Pipeline) restartSource(ctx context.Context, src sdk.Source, last opencdc.Position, mode StopMode) sdk.Source {
	p.teardownSource(ctx, src, mode)
	if p.cfg.SourceStopped != nil {
		p.cfg.SourceStopped()
	}
	for {
		next, err := p.openSource(ctx, last)
		if err == nil {
			p.ledger.restarted(true)
			return next
		}
		p.ledger.failed("source", err)
		if !p.pause(ctx) {
			return nil
		}
	}
}

// RestartSource stops the source (mode says how) and opens a new instance
// at the position of the last acknowledged record. It returns once the new
// instance is open.
func (p *Pipeline) RestartSource(ctx context.Context, mode StopMode) error {
	req := &sourceRequest{mode: mode, done: make(chan struct{})}
	p.mu.Lock()
	if p.stopped || p.request != nil {
		p.mu.Unlock()
		return errors.New("faults: the pipeline is stopped or a restart is under way")
	}
	p.request = req
	if p.cancelRead != nil {
		p.cancelRead()
	}
	p.mu.Unlock()
	select {
	case <-req.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("faults: restart the source: %w", ctx.Err())
	}
}
