package source

import (
	"context"
	"fmt"
	"time"

	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// CDCConfig describes a CDC iterator.
type CDCConfig struct {
	Live LiveConfig
	// Ordered is set for exclusive and failover subscriptions: every message
	// of a partition comes to this consumer in offset order, so offsets that
	// were already emitted identify redeliveries, which are dropped, and
	// jumps identify skipped messages, which Loss handles.
	Ordered bool
	Loss    LossPolicy
}

// CDC reads live subscriptions: one consumer per configured topic, merged
// into one bounded queue.
//
// Guarantees: at-least-once on reliable topics. With Ordered, the emitted
// offsets of every partition travel in each record's position; after Open at a
// position (or a broker restart while running), redeliveries of messages
// emitted at or before it are dropped and acknowledged, so Conduit sees each
// message once unless more than maxSpans gaps were open. Without Ordered
// (shared, keyShared) redeliveries of unacknowledged messages reach Conduit
// again.
type CDC struct {
	*live

	// Guarded by live.mu.
	tracker *tracker
	// unacked counts the records in Conduit per message (a shared
	// subscription may emit a redelivery again).
	unacked map[msgKey]int
	// redelivered counts the redeliveries of records Conduit still holds
	// (ordered subscriptions), to warn before the broker's poison policy acts.
	redelivered map[msgKey]int
	seq         uint64
	posCap      int // capacity for the next encoded position
	failure     error
	gaps        gapWatch
	failOnLoss  bool
	now         func() time.Time
	timer       *time.Timer // wakes Next at a gap's deadline; Next is not called concurrently
	// resumedAt holds, per partition the position named, the offset after
	// the last one emitted before Open, until the partition's first delivery.
	resumedAt map[string]uint64
}

type msgKey struct {
	topic  string // partition topic
	offset uint64
}

var _ Iterator = (*CDC)(nil)

// NewCDC starts reading. resume, when not nil, is the position of the last
// record Conduit processed.
func NewCDC(cfg CDCConfig, resume *Position) (*CDC, error) {
	l, err := newLive(cfg.Live)
	if err != nil {
		return nil, fmt.Errorf("cdc iterator: %w", err)
	}
	c := &CDC{
		live: l, unacked: map[msgKey]int{}, redelivered: map[msgKey]int{},
		gaps: gapWatch{timeout: cfg.Loss.Timeout}, failOnLoss: cfg.Loss.Fail, now: time.Now,
	}
	if c.gaps.timeout <= 0 {
		c.gaps.timeout = defaultLossTimeout
	}
	var emitted map[string]offsetSet
	if resume != nil {
		c.seq = resume.Seq
		emitted = make(map[string]offsetSet, len(resume.Emitted))
		c.resumedAt = map[string]uint64{}
		for topic, set := range resume.Emitted {
			if l.knows(topic) { // partitions no longer configured are forgotten
				emitted[topic] = set
				c.resumedAt[topic] = set[len(set)-1].hi + 1
			}
		}
	}
	c.tracker = newTracker(cfg.Ordered, emitted)
	l.start()
	return c, nil
}

// Next returns the next record, skipping redeliveries.
func (c *CDC) Next(ctx context.Context) (opencdc.Record, error) {
	for {
		if err := c.err(); err != nil {
			return opencdc.Record{}, err
		}
		due, err := c.settleGaps(ctx)
		if err != nil {
			return opencdc.Record{}, err
		}
		var gapTimer <-chan time.Time
		if !due.IsZero() {
			gapTimer = c.gapTimer(due.Sub(c.now()))
		}
		select {
		case <-ctx.Done():
			return opencdc.Record{}, ctx.Err()
		case <-c.acker.failed:
		case <-gapTimer:
		case d := <-c.msgs:
			rec, ok, err := c.process(ctx, d)
			if err != nil {
				return opencdc.Record{}, err
			}
			if ok {
				return rec, nil
			}
		}
	}
}

// NextN returns the records that are ready, at least one, at most n.
func (c *CDC) NextN(ctx context.Context, n int) ([]opencdc.Record, error) {
	first, err := c.Next(ctx)
	if err != nil {
		return nil, err
	}
	recs := make([]opencdc.Record, 1, max(1, min(n, cap(c.msgs)+1)))
	recs[0] = first
	for len(recs) < n {
		rec, ok, more := c.ready(ctx)
		if !more {
			break
		}
		if ok {
			recs = append(recs, rec)
		}
	}
	return recs, nil
}

// ready processes a delivery that is already queued, without waiting. more
// is false when nothing is queued or the delivery failed (the failure is
// kept and returned by the next call).
func (c *CDC) ready(ctx context.Context) (rec opencdc.Record, ok, more bool) {
	select {
	case d := <-c.msgs:
		rec, ok, err := c.process(ctx, d)
		return rec, ok, err == nil
	default:
		return opencdc.Record{}, false, false
	}
}

// err returns the failure that ends reading, if any.
func (c *CDC) err() error {
	c.mu.Lock()
	err := c.failure
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.acker.failure()
}

// process turns a delivery into a record; ok is false for a dropped
// redelivery.
func (c *CDC) process(ctx context.Context, d delivery) (rec opencdc.Record, ok bool, err error) {
	if err := c.check(d); err != nil {
		c.mu.Lock()
		c.failure = err
		c.mu.Unlock()
		return opencdc.Record{}, false, err
	}
	msg := d.msg
	part := d.reader.index[msg.ID.Topic]

	key := msgKey{msg.ID.Topic, msg.ID.Offset}
	c.mu.Lock()
	dup, becameLossy := c.tracker.observe(msg.ID)
	if dup {
		isPending := c.unacked[key] > 0
		deliveries := 0
		if isPending {
			c.redelivered[key]++
			deliveries = c.redelivered[key] + 1 // the first delivery was emitted
		}
		c.mu.Unlock()
		if deliveries == danubeMaxDeliveries {
			logPoisonRisk(ctx, msg.ID)
		}
		sdk.Logger(ctx).Debug().Str("topic", msg.ID.Topic).Uint64("offset", msg.ID.Offset).
			Msg("dropping a redelivered message that was already emitted")
		if isPending {
			return opencdc.Record{}, false, nil // Conduit's acknowledgement of the first copy covers it
		}
		return opencdc.Record{}, false, c.ack(ctx, d.reader, msg.ID)
	}
	if skipped := c.tracker.takeSkipped(); skipped != nil {
		if at, ok := c.resumedAt[skipped.topic]; ok && at == skipped.lo {
			skipped.afterRestart = true
		}
		c.gaps.add(*skipped, c.now())
	}
	delete(c.resumedAt, msg.ID.Topic)
	c.seq++
	pos := appendPositionHead(make([]byte, 0, c.posCap), d.reader.topicJSON, part, msg.ID.Offset, c.seq)
	pos = append(c.tracker.appendEmitted(pos), '}')
	c.posCap = len(pos) + 16
	c.hold(pos, d.reader, msg.ID)
	c.unacked[key]++
	c.mu.Unlock()

	if becameLossy {
		sdk.Logger(ctx).Warn().Str("topic", msg.ID.Topic).
			Msg("topic is NonReliable (its messages carry no offsets): the broker drops messages when the " +
				"consumer falls behind or is not connected, so messages can be lost; use a reliable topic " +
				"for at-least-once delivery")
	}
	return c.record(ctx, msg, d.reader, pos, toRecord), true, nil
}

// gapTimer returns a channel that fires after d.
func (c *CDC) gapTimer(d time.Duration) <-chan time.Time {
	if c.timer == nil {
		c.timer = time.NewTimer(d)
	} else {
		c.timer.Reset(d)
	}
	return c.timer.C
}

// settleGaps reports the gaps whose time is up and still miss offsets: at
// error level, and as the iterator's failure with Loss.Fail. It returns the
// next deadline of an open gap (zero when none is open).
func (c *CDC) settleGaps(ctx context.Context) (time.Time, error) {
	if len(c.gaps.open) == 0 {
		return time.Time{}, nil // the usual case; gaps change only on Next's goroutine
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	lost := c.gaps.expired(c.now(), c.tracker.emittedOf)
	if len(lost) > 0 {
		err := &LostMessagesError{Ranges: lost}
		ev := sdk.Logger(ctx).Error().Uint64("count", err.Count())
		for _, r := range lost {
			ev = ev.Str("topic", r.topic).Uint64("from", r.lo).Uint64("to", r.hi)
		}
		ev.Msg(err.Error())
		if c.failOnLoss {
			c.failure = err
			return time.Time{}, err
		}
	}
	due, _ := c.gaps.next()
	return due, nil
}

// danubeMaxDeliveries is Danube's default limit of deliveries of one message
// before its subscription's poison policy applies.
const danubeMaxDeliveries = 6

// logPoisonRisk explains why a message Conduit is still processing keeps
// coming back, and what the broker does next.
func logPoisonRisk(ctx context.Context, id danubeclient.MessageID) {
	sdk.Logger(ctx).Error().Str("topic", id.Topic).Uint64("offset", id.Offset).
		Msgf("message at %s offset %d was delivered %d times while Conduit still processes it: the broker's ack "+
			"timeout (default 30 s) passed each time; under Danube's default poison policy Block the subscription "+
			"stops at the next timeout and ignores late acknowledgements; speed up the destination, raise the "+
			"subscription's ack timeout or maximum redeliveries, or set its poison policy to drop or dead_letter; "+
			"a broker restart resumes a blocked subscription", id.Topic, id.Offset, danubeMaxDeliveries)
}

// Ack acknowledges the record at pos to the broker, asynchronously.
func (c *CDC) Ack(ctx context.Context, pos opencdc.Position) error {
	if err := c.acker.failure(); err != nil {
		return err
	}
	var lossy bool
	c.mu.Lock()
	e, found := c.release(pos)
	if found {
		key := msgKey{e.id.Topic, e.id.Offset}
		if c.unacked[key]--; c.unacked[key] <= 0 {
			delete(c.unacked, key)
			delete(c.redelivered, key)
		}
		lossy = c.tracker.lossy(e.id.Topic) // in the same critical section: Next contends for c.mu
	}
	c.mu.Unlock()
	if !found {
		var err error
		if e, err = c.positionRecord(pos); err != nil {
			return err
		}
		c.mu.Lock()
		lossy = c.tracker.lossy(e.id.Topic)
		c.mu.Unlock()
	}
	if lossy {
		return nil // NonReliable topics have nothing to acknowledge
	}
	return c.ack(ctx, e.reader, e.id)
}

// positionRecord decodes a position this iterator did not emit (or already
// saw acknowledged) into the message to acknowledge.
func (c *CDC) positionRecord(pos opencdc.Position) (emittedRecord, error) {
	p, err := ParsePosition(pos)
	if err != nil {
		return emittedRecord{}, err
	}
	r := c.readers[p.Topic]
	if r == nil || p.Partition >= len(r.partitions) {
		return emittedRecord{}, fmt.Errorf("%w: topic %q partition %d is not read by this source",
			ErrInvalidPosition, p.Topic, p.Partition)
	}
	return emittedRecord{reader: r, id: danubeclient.MessageID{Topic: r.partitions[p.Partition], Offset: p.Offset}}, nil
}

// Close stops the receive goroutines, waits for queued acknowledgements
// until ctx ends and closes the consumers. It returns the first
// acknowledgement failure. Later calls return the same result.
func (c *CDC) Close(ctx context.Context) error {
	return c.close(ctx)
}
