package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/segment"
)

// CombinedConfig describes a combined (snapshot, then live) iterator.
type CombinedConfig struct {
	// Live is the live subscription; it must exist before history is read,
	// so that nothing published meanwhile is missed.
	Live LiveConfig
	// History opens a partition's sealed history.
	History HistoryOpener
	// SealTimeout bounds the wait for a segment holding offsets between the
	// history read so far and the first live message held.
	SealTimeout time.Duration
	// HoldLimit bounds the live messages held per partition while its gap is
	// filled from segments.
	HoldLimit int
	// PollMin and PollMax bound the wait between listings of newly sealed
	// segments (defaults 20ms and 2s).
	PollMin, PollMax time.Duration
}

// Combined emits every partition's sealed history, then its live messages,
// with contiguous offsets across the seam: no gap, no duplicate.
//
// Per partition it keeps next, the next offset to emit. A live message at
// offset o is a duplicate when o < next (acknowledged and dropped), is
// emitted when o == next, and is held when o > next while [next, o-1] is read
// from the sealed segments; when the broker has not exported them yet the
// segments are listed again with backoff, for at most SealTimeout.
//
// Held messages that cannot be emitted yet are acknowledged as they arrive:
// the broker's ack timeout and redelivery limit (poison policy) would
// otherwise redeliver or block them while the gap is filled, which takes up
// to one export interval (300 s). That is safe because sealed segments stay
// until the topic is deleted: a message acknowledged but not emitted is read
// from segments after a restart, which resumes at the position's next
// offsets. For the same reason, when more than HoldLimit messages are held,
// the oldest are dropped (they come back from the next export, and keeping
// the newest lets the first export after the wait close the gap). Messages
// emitted straight from the subscription are acknowledged when Conduit
// acknowledges them, as in CDC.
//
// Positions carry, per partition, the emitted offsets as one span
// [0, next-1]; Open at a position resumes every partition at its next
// offset (0 for partitions the position does not name: their history is read).
type Combined struct {
	*live

	cfg   CombinedConfig
	parts map[string]*partitionSeam
	order []*partitionSeam // round robin over partitions
	turn  int

	seq     uint64
	failure error
}

// partitionSeam is one partition's state at the seam.
type partitionSeam struct {
	reader    *topicReader
	index     int
	name      string
	next      uint64
	history   History
	caughtUp  bool                    // the sealed history was read to its end once
	held      []heldLive              // contiguous live offsets above next, oldest first
	waitSince time.Time               // when the wait for a segment began; zero when not waiting
	liveZero  *danubeclient.MessageID // the live message at offset 0, to tell a NonReliable topic
	pollAt    time.Time
	pollDelay time.Duration
}

type heldLive struct {
	msg   *danubeclient.ReceivedMessage
	acked bool // acknowledged on arrival: nothing to acknowledge when emitted
}

var _ Iterator = (*Combined)(nil)

// NewCombined starts the live consumers; history is opened on first use.
// resume, when not nil, is the position of the last record Conduit processed.
func NewCombined(cfg CombinedConfig, resume *Position) (*Combined, error) {
	if cfg.History == nil {
		return nil, errors.New("combined iterator: no history opener")
	}
	l, err := newLive(cfg.Live)
	if err != nil {
		return nil, fmt.Errorf("combined iterator: %w", err)
	}
	cfg.HoldLimit = max(cfg.HoldLimit, 1)
	if cfg.PollMin <= 0 {
		cfg.PollMin = 20 * time.Millisecond
	}
	if cfg.PollMax < cfg.PollMin {
		cfg.PollMax = max(cfg.PollMin, 2*time.Second)
	}
	c := &Combined{live: l, cfg: cfg, parts: map[string]*partitionSeam{}}
	for _, tc := range cfg.Live.Topics { // in configuration order
		r := l.readers[tc.Topic]
		for i, p := range r.partitions {
			ps := &partitionSeam{reader: r, index: i, name: p}
			if resume != nil {
				if set := resume.Emitted[p]; len(set) > 0 {
					ps.next = set[len(set)-1].hi + 1
				}
			}
			c.parts[p] = ps
			c.order = append(c.order, ps)
		}
	}
	if resume != nil {
		c.seq = resume.Seq
	}
	l.start()
	return c, nil
}

// Next returns the next record of any partition.
func (c *Combined) Next(ctx context.Context) (opencdc.Record, error) {
	for {
		if c.failure != nil {
			return opencdc.Record{}, c.failure
		}
		if err := c.ackFailure(); err != nil {
			return opencdc.Record{}, err
		}
		// Take what the subscription delivered first, so that live messages
		// are classified (and held ones acknowledged) while history is read.
		if err := c.drain(ctx); err != nil {
			return opencdc.Record{}, c.fail(err)
		}
		rec, ok, err := c.step(ctx)
		if err != nil {
			return opencdc.Record{}, c.fail(err)
		}
		if ok {
			return rec, nil
		}
		if err := c.wait(ctx); err != nil {
			return opencdc.Record{}, err
		}
	}
}

// NextN returns between 1 and n records, blocking only for the first.
func (c *Combined) NextN(ctx context.Context, n int) ([]opencdc.Record, error) {
	first, err := c.Next(ctx)
	if err != nil {
		return nil, err
	}
	recs := []opencdc.Record{first}
	for len(recs) < n {
		if err := c.drain(ctx); err != nil {
			c.failure = err
			break // reported by the next call
		}
		rec, ok, err := c.step(ctx)
		if err != nil {
			c.failure = err
			break
		}
		if !ok {
			break
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

func (c *Combined) fail(err error) error {
	c.failure = err
	return err
}

// drain processes the deliveries already queued, at most one queue's worth.
func (c *Combined) drain(ctx context.Context) error {
	for range cap(c.msgs) {
		select {
		case d := <-c.msgs:
			if err := c.classify(ctx, d); err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return nil
}

// wait blocks until a delivery arrives (and processes it), a partition's
// next listing of segments is due, or ctx ends.
func (c *Combined) wait(ctx context.Context) error {
	var timer <-chan time.Time
	if due, ok := c.nextPoll(); ok {
		t := time.NewTimer(time.Until(due))
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.acker.failed:
	case <-timer:
	case d := <-c.msgs:
		if err := c.classify(ctx, d); err != nil {
			return c.fail(err)
		}
	}
	return nil
}

func (c *Combined) nextPoll() (time.Time, bool) {
	var due time.Time
	for _, p := range c.order {
		if p.waitSince.IsZero() {
			continue
		}
		if due.IsZero() || p.pollAt.Before(due) {
			due = p.pollAt
		}
	}
	return due, !due.IsZero()
}

// classify classifies a delivery against its partition's next offset.
func (c *Combined) classify(ctx context.Context, d delivery) error {
	if err := c.check(d); err != nil {
		return err
	}
	msg := d.msg
	p := c.parts[msg.ID.Topic]
	o := msg.ID.Offset
	if o == 0 {
		// A reliable partition has one message at offset 0; on a NonReliable
		// topic every message is at offset 0 and would be dropped as emitted.
		if z := p.liveZero; z != nil && (z.ProducerID != msg.ID.ProducerID || z.RequestID != msg.ID.RequestID) {
			return fmt.Errorf("topic %s is NonReliable: its messages carry no offsets and are not stored, so "+
				"snapshot.enabled cannot read it; use a reliable topic, or turn snapshot.enabled off", p.name)
		}
		id := msg.ID
		p.liveZero = &id
	}
	ack := func() error { return c.ack(ctx, d.reader, msg.ID) }
	switch {
	case o < p.next:
		// Emitted already (from segments, or before a restart). A second
		// acknowledgement of a message Conduit still holds is harmless.
		return ack()
	case len(p.held) > 0 && o < p.held[0].msg.ID.Offset:
		return ack() // between next and the held run: the segments fill it
	case len(p.held) > 0 && o <= p.held[len(p.held)-1].msg.ID.Offset:
		return ack() // a redelivery of a held message
	}
	expected := p.next
	if len(p.held) > 0 {
		expected = p.held[len(p.held)-1].msg.ID.Offset + 1
	}
	if o != expected && len(p.held) > 0 {
		// Not contiguous with the held run (cannot happen on an ordered
		// subscription): start a new run; segments fill what is dropped.
		for _, h := range p.held {
			if !h.acked {
				if err := c.ack(ctx, d.reader, h.msg.ID); err != nil {
					return err
				}
			}
		}
		p.held = p.held[:0]
	}
	emittable := (len(p.held) == 0 && o == p.next) || (len(p.held) > 0 && p.held[0].msg.ID.Offset == p.next)
	if !emittable {
		if err := ack(); err != nil {
			return err
		}
	}
	p.held = append(p.held, heldLive{msg: msg, acked: !emittable})
	if !emittable && len(p.held) > c.cfg.HoldLimit {
		// Every held message is acknowledged here (none is emittable).
		p.held = append(p.held[:0], p.held[len(p.held)-c.cfg.HoldLimit:]...)
	}
	return nil
}

// step emits one record of the first partition (round robin) that has one
// ready: a held live message at next, or the next sealed message.
func (c *Combined) step(ctx context.Context) (opencdc.Record, bool, error) {
	now := time.Now()
	for range c.order {
		p := c.order[c.turn]
		c.turn = (c.turn + 1) % len(c.order)
		rec, ok, err := c.stepPartition(ctx, p, now)
		if err != nil || ok {
			return rec, ok, err
		}
	}
	return opencdc.Record{}, false, nil
}

func (c *Combined) stepPartition(ctx context.Context, p *partitionSeam, now time.Time) (opencdc.Record, bool, error) {
	for len(p.held) > 0 && p.held[0].msg.ID.Offset < p.next {
		p.held = p.held[1:] // read from segments meanwhile; acknowledged on arrival
	}
	if len(p.held) > 0 && p.held[0].msg.ID.Offset == p.next {
		h := p.held[0]
		p.held = p.held[1:]
		rec, err := c.emit(ctx, p, h.msg, ModeCDC, !h.acked)
		return rec, err == nil, err
	}
	if p.caughtUp && len(p.held) == 0 {
		p.waitSince = time.Time{}
		return opencdc.Record{}, false, nil // live: nothing to fill
	}
	if !p.waitSince.IsZero() && now.Before(p.pollAt) {
		return opencdc.Record{}, false, nil
	}
	msg, err := c.readHistory(ctx, p)
	if errors.Is(err, io.EOF) {
		return opencdc.Record{}, false, c.waitForSegments(ctx, p, now)
	}
	if err != nil {
		return opencdc.Record{}, false, err
	}
	p.waitSince = time.Time{}
	rec, err := c.emit(ctx, p, msg, ModeSnapshot, false)
	return rec, err == nil, err
}

// readHistory returns the sealed message at p.next, or io.EOF.
func (c *Combined) readHistory(ctx context.Context, p *partitionSeam) (*danubeclient.ReceivedMessage, error) {
	if p.history == nil {
		h, err := c.cfg.History(p.name, p.next)
		if err != nil {
			return nil, err
		}
		p.history = h
	}
	for {
		m, err := p.history.Next(ctx)
		var gap *segment.GapError
		switch {
		case errors.As(err, &gap) && gap.To < p.next:
			continue // offsets emitted from the subscription already
		case errors.As(err, &gap):
			return nil, fmt.Errorf("partition %s: offsets %d..%d are missing from the sealed segments "+
				"(data loss in the broker's durable storage, or snapshot.storage.root is not the storage root the broker "+
				"writes): %w", p.name, gap.From, gap.To, err)
		case errors.Is(err, io.EOF):
			return nil, io.EOF
		case err != nil:
			return nil, fmt.Errorf("partition %s: read its history at offset %d: %w", p.name, p.next, err)
		}
		switch o := m.Offset(); {
		case o < p.next:
			continue // emitted from the subscription meanwhile
		case o > p.next:
			return nil, fmt.Errorf("partition %s: the sealed history jumps from offset %d to %d", p.name, p.next, o)
		}
		return historyMessage(p.name, &m), nil
	}
}

// waitForSegments handles the end of the sealed history: done when no live
// message waits, else list again later, failing after SealTimeout.
func (c *Combined) waitForSegments(ctx context.Context, p *partitionSeam, now time.Time) error {
	p.caughtUp = true
	if len(p.held) == 0 {
		p.waitSince = time.Time{}
		return nil
	}
	first := p.held[0].msg.ID.Offset
	if p.waitSince.IsZero() {
		p.waitSince, p.pollDelay = now, c.cfg.PollMin
		sdk.Logger(ctx).Info().Str("partition", p.name).Uint64("from", p.next).Uint64("to", first-1).
			Dur("sealTimeout", c.cfg.SealTimeout).
			Msg("waiting for the broker to export the segment holding the offsets before the first live message " +
				"(it exports every 300 s, in shared_fs or object_store storage mode only)")
	} else if now.Sub(p.waitSince) > c.cfg.SealTimeout {
		return fmt.Errorf("partition %s: offsets %d..%d are in no sealed segment after waiting %v (snapshot.sealTimeout): "+
			"history needs a broker in shared_fs or object_store storage mode (standalone and local mode never export "+
			"segments) and snapshot.storage.root set to its durable storage root; or disable snapshot.enabled",
			p.name, p.next, first-1, c.cfg.SealTimeout)
	}
	p.pollAt = now.Add(p.pollDelay)
	p.pollDelay = min(2*p.pollDelay, c.cfg.PollMax)
	return nil
}

// emit turns msg, the message at p.next, into a record and advances p.next.
func (c *Combined) emit(ctx context.Context, p *partitionSeam, msg *danubeclient.ReceivedMessage, mode Mode, needsAck bool) (opencdc.Record, error) {
	p.next = msg.ID.Offset + 1
	c.seq++
	pos, err := c.position(p, mode)
	if err != nil {
		return opencdc.Record{}, err
	}
	if needsAck {
		c.mu.Lock()
		c.hold(pos, p.reader, msg.ID)
		c.mu.Unlock()
	}
	if mode == ModeSnapshot {
		return c.record(ctx, msg, p.reader, pos, snapshotRecord), nil
	}
	return c.record(ctx, msg, p.reader, pos, toRecord), nil
}

func (c *Combined) position(p *partitionSeam, mode Mode) (opencdc.Position, error) {
	emitted := make(map[string]offsetSet, len(c.order))
	for _, q := range c.order {
		if q.next > 0 {
			emitted[q.name] = offsetSet{{0, q.next - 1}}
		}
	}
	return Position{
		Version: PositionVersion, Mode: mode, Topic: p.reader.topic, Partition: p.index,
		Offset: p.next - 1, Seq: c.seq, Emitted: emitted,
	}.Marshal()
}

// Ack acknowledges a record emitted from the subscription; records read from
// segments, and held messages acknowledged on arrival, need nothing.
func (c *Combined) Ack(ctx context.Context, pos opencdc.Position) error {
	if err := c.ackFailure(); err != nil {
		return err
	}
	c.mu.Lock()
	e, found := c.release(pos)
	c.mu.Unlock()
	if !found {
		return nil
	}
	return c.ack(ctx, e.reader, e.id)
}

// Close stops the receive goroutines, waits (bounded by ctx) for queued
// acknowledgements and closes the histories and consumers.
func (c *Combined) Close(ctx context.Context) error {
	return c.close(ctx, c.closeHistories)
}

func (c *Combined) closeHistories() error {
	var errs []error
	for _, p := range c.order {
		if p.history != nil {
			errs = append(errs, p.history.Close())
		}
	}
	return errors.Join(errs...)
}
