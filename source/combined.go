package source

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
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
	// Exported reports whether the broker has exported segments of a
	// partition into the storage History reads. Only then may a live message
	// of it be acknowledged before a record of its offset was processed: see
	// Combined. Nil means never.
	Exported func(ctx context.Context, partition string) (bool, error)
	// IdlePoll is how often a partition with nothing to fill lists its
	// segments again (default 30s): offsets acknowledged but not emitted
	// before a restart come only from there.
	IdlePoll time.Duration
	// PollMin and PollMax bound the wait between listings of newly sealed
	// segments (defaults 20ms and 2s).
	PollMin, PollMax time.Duration
}

// Combined emits every partition's sealed history, then its live messages,
// with contiguous offsets across the seam: no gap, no duplicate.
//
// Per partition it keeps next, the next offset to emit. A live message at
// offset o is held while o >= next and emitted when next reaches it; offsets
// below the held messages are read from the sealed segments, and when the
// broker has not exported them yet the segments are listed again with
// backoff, for at most SealTimeout. A live message below next (a redelivery,
// or a message whose stored copy was emitted in its place) is not emitted.
//
// No loss: a live message is acknowledged to the broker only once Conduit
// has acknowledged a record of its offset, the message itself or the stored
// copy emitted in its place. Conduit's position then covers that offset, so
// a restart resumes after it whatever the broker or its storage does later.
// When history cannot be read (no segments, store errors) the iterator
// fails with every held message still unacknowledged, so the broker delivers
// them again.
//
// The broker's redelivery budget: a held message is delivered again after
// every ack timeout (30 s), and after its sixth delivery Danube's default
// poison policy Block stops the subscription (about 3.5 minutes). A long
// snapshot, or a wait for the next export (every 300 s), outlasts that. So
// when a held message is delivered again and the broker is known to export
// its partition into the storage History reads (Exported, or history of it
// was read), it is acknowledged and dropped from the hold, and its stored
// copy is emitted in its place later: the broker's WAL is its only copy until
// the next export whether it is acknowledged or not, and the export is read
// wherever the source resumes. When the broker is not known to export the
// partition, held messages stay unacknowledged, and at the sixth delivery
// the iterator fails instead of acknowledging one.
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

	// records maps the position of every record in Conduit to its
	// partition and offset. Guarded by live.mu: Ack runs concurrently.
	records map[string]seamRecord
}

// partitionSeam is one partition's state at the seam.
type partitionSeam struct {
	reader  *topicReader
	index   int
	name    string
	next    uint64
	history History
	held    []heldLive // live messages at offsets >= next, by offset, none acknowledged
	// releasedTo is one above the highest held message acknowledged at a
	// redelivery (0: none): the segments must supply the offsets up to it.
	releasedTo uint64
	exported   bool                    // the broker exports this partition (Exported said so, or history was read)
	waitSince  time.Time               // when the wait for a segment began; zero when not waiting
	liveZero   *danubeclient.MessageID // the live message at offset 0, to tell a NonReliable topic
	pollAt     time.Time               // when to list the segments again; zero: at once
	pollDelay  time.Duration

	// Guarded by live.mu.
	// processed is the offset below which Conduit acknowledged every record.
	processed uint64
	// emitted holds the live messages below next whose offset's record
	// Conduit has not acknowledged yet, by offset: acknowledged with it.
	emitted []danubeclient.MessageID
	// released counts held messages acknowledged at the redelivery limit.
	released uint64
}

type heldLive struct {
	msg        *danubeclient.ReceivedMessage
	deliveries int
}

// seamRecord is what acknowledging a record needs.
type seamRecord struct {
	part   *partitionSeam
	offset uint64
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
	if cfg.PollMin <= 0 {
		cfg.PollMin = 20 * time.Millisecond
	}
	if cfg.PollMax < cfg.PollMin {
		cfg.PollMax = max(cfg.PollMin, 2*time.Second)
	}
	if cfg.IdlePoll <= 0 {
		cfg.IdlePoll = 30 * time.Second
	}
	c := &Combined{live: l, cfg: cfg, parts: map[string]*partitionSeam{}, records: map[string]seamRecord{}}
	for _, tc := range cfg.Live.Topics { // in configuration order
		r := l.readers[tc.Topic]
		for i, p := range r.partitions {
			ps := &partitionSeam{reader: r, index: i, name: p}
			if resume != nil {
				if set := resume.Emitted[p]; len(set) > 0 {
					// Conduit processed every record up to the position.
					ps.next = set[len(set)-1].hi + 1
					ps.processed = ps.next
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
		if !p.pollAt.IsZero() && (due.IsZero() || p.pollAt.Before(due)) {
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
	if o < p.next {
		return c.settle(ctx, p, msg.ID)
	}
	i, found := slices.BinarySearchFunc(p.held, o, func(h heldLive, o uint64) int { return cmp.Compare(h.msg.ID.Offset, o) })
	if !found {
		p.held = slices.Insert(p.held, i, heldLive{msg: msg, deliveries: 1})
		return nil
	}
	p.held[i].deliveries++ // a redelivery: the broker's ack timeout passed
	return c.release(ctx, p, i)
}

// settle handles a live message below next: its offset was emitted, from
// the subscription or from segments. It is acknowledged now when Conduit has
// processed that offset, else with the record Conduit holds.
func (c *Combined) settle(ctx context.Context, p *partitionSeam, id danubeclient.MessageID) error {
	c.mu.Lock()
	if id.Offset < p.processed {
		c.mu.Unlock()
		return c.ack(ctx, p.reader, id)
	}
	i, found := slices.BinarySearchFunc(p.emitted, id.Offset, func(e danubeclient.MessageID, o uint64) int {
		return cmp.Compare(e.Offset, o)
	})
	if !found {
		p.emitted = slices.Insert(p.emitted, i, id)
	}
	c.mu.Unlock()
	return nil
}

// release handles a redelivery of the held message at p.held[i]: the
// broker's ack timeout passed, and after its sixth delivery Danube's default
// poison policy Block stops the subscription. When the broker is known to
// export into the storage history is read from, the message is acknowledged
// and left to the segments; otherwise it stays held, and at the sixth
// delivery the iterator fails without acknowledging it.
//
// It is released at its first redelivery, not its last: the broker's count
// carries over when a restarted source subscribes again, and a source that
// releases at the second delivery leaves at most two used.
func (c *Combined) release(ctx context.Context, p *partitionSeam, i int) error {
	h := p.held[i]
	if h.msg.ID.Offset == p.next {
		// Emitted by the next step (deliveries queued while Conduit did not
		// read); Conduit's acknowledgement acknowledges it, as in CDC.
		if h.deliveries == danubeMaxDeliveries {
			logPoisonRisk(ctx, h.msg.ID)
		}
		return nil
	}
	exported, err := c.brokerExports(ctx, p)
	if !exported && h.deliveries < danubeMaxDeliveries {
		return nil // the broker may not have exported its first segment yet
	}
	if !exported {
		why := "no segment of it is in the durable storage the source reads (snapshot.storage.root)"
		if err != nil {
			why = fmt.Sprintf("the durable storage could not be listed (%v)", err)
		}
		return fmt.Errorf("partition %s: the live message at offset %d was delivered %d times while the source "+
			"waited for offsets %d..%d before it, and %s, so the source cannot tell that the broker keeps a copy it "+
			"can read later; it stops without acknowledging any live message it has not emitted (%d held, offsets "+
			"%d..%d): under Danube's default poison policy Block the broker stops this subscription at the next ack "+
			"timeout (restart the broker to release it). History needs a broker in shared_fs or object_store "+
			"storage mode with snapshot.storage.root set to its durable root; a broker exports a topic's first "+
			"segment up to 300 s after its first messages",
			p.name, h.msg.ID.Offset, h.deliveries, p.next, h.msg.ID.Offset-1, why,
			len(p.held), p.held[0].msg.ID.Offset, p.held[len(p.held)-1].msg.ID.Offset)
	}
	if err := c.ack(ctx, p.reader, h.msg.ID); err != nil {
		return err
	}
	p.held = slices.Delete(p.held, i, i+1)
	p.releasedTo = max(p.releasedTo, h.msg.ID.Offset+1)
	c.mu.Lock()
	p.released++
	first := p.released == 1
	c.mu.Unlock()
	if first {
		sdk.Logger(ctx).Info().Str("partition", p.name).Uint64("offset", h.msg.ID.Offset).Uint64("next", p.next).
			Msg("a live message waited longer than the broker's ack timeout for the history before it: " +
				"acknowledged, so that the broker's redelivery limit does not block the subscription, and read " +
				"from the broker's segments instead (further ones are not logged)")
	}
	return nil
}

// brokerExports reports whether the storage history is read from holds
// segments of p the broker exported.
func (c *Combined) brokerExports(ctx context.Context, p *partitionSeam) (bool, error) {
	if p.exported || c.cfg.Exported == nil {
		return p.exported, nil
	}
	ok, err := c.cfg.Exported(ctx, p.name)
	p.exported = ok && err == nil
	return p.exported, err
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
	if len(p.held) > 0 && p.held[0].msg.ID.Offset == p.next {
		h := p.held[0]
		p.held = p.held[1:]
		rec, err := c.emit(ctx, p, h.msg, ModeCDC, true)
		return rec, err == nil, err
	}
	// Between listings wait, unless a partition with nothing to fill now has.
	if now.Before(p.pollAt) && (!p.waitSince.IsZero() || !p.needsHistory()) {
		return opencdc.Record{}, false, nil
	}
	msg, err := c.readHistory(ctx, p)
	if errors.Is(err, io.EOF) {
		return opencdc.Record{}, false, c.endOfHistory(ctx, p, now)
	}
	if err != nil {
		return opencdc.Record{}, false, err
	}
	p.waitSince, p.pollAt = time.Time{}, time.Time{}
	p.exported = true // its segments are where history is read from
	rec, err := c.emit(ctx, p, msg, ModeSnapshot, false)
	return rec, err == nil, err
}

// needsHistory reports whether offsets from next on must come from the
// segments before live messages can follow: some are held above a gap, or
// were acknowledged at a redelivery without being emitted.
func (p *partitionSeam) needsHistory() bool {
	return len(p.held) > 0 || p.next < p.releasedTo
}

// gapEnd is the last offset the segments must supply before the first held
// message (or the last released one) can follow.
func (p *partitionSeam) gapEnd() uint64 {
	if len(p.held) > 0 {
		return p.held[0].msg.ID.Offset - 1
	}
	return p.releasedTo - 1
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

// endOfHistory handles the end of the sealed history: with nothing to fill
// the segments are listed again after IdlePoll; otherwise again with
// backoff, failing after SealTimeout.
func (c *Combined) endOfHistory(ctx context.Context, p *partitionSeam, now time.Time) error {
	if !p.needsHistory() {
		p.waitSince, p.pollAt = time.Time{}, now.Add(c.cfg.IdlePoll)
		return nil
	}
	if p.waitSince.IsZero() {
		p.waitSince, p.pollDelay = now, c.cfg.PollMin
		sdk.Logger(ctx).Info().Str("partition", p.name).Uint64("from", p.next).Uint64("to", p.gapEnd()).
			Dur("sealTimeout", c.cfg.SealTimeout).
			Msg("waiting for the broker to export the segment holding the offsets before the first live message " +
				"(it exports every 300 s, in shared_fs or object_store storage mode only)")
	} else if now.Sub(p.waitSince) > c.cfg.SealTimeout {
		return fmt.Errorf("partition %s: offsets %d..%d are in no sealed segment after waiting %v (snapshot.sealTimeout): "+
			"history needs a broker in shared_fs or object_store storage mode (standalone and local mode never export "+
			"segments) and snapshot.storage.root set to its durable storage root; %s",
			p.name, p.next, p.gapEnd(), c.cfg.SealTimeout, p.liveState())
	}
	p.pollAt = now.Add(p.pollDelay)
	p.pollDelay = min(2*p.pollDelay, c.cfg.PollMax)
	return nil
}

// liveState says what became of the live messages waiting for history.
func (p *partitionSeam) liveState() string {
	var parts []string
	if len(p.held) > 0 {
		parts = append(parts, fmt.Sprintf("the %d live messages held (offsets %d..%d) were not acknowledged, so the "+
			"broker delivers them again", len(p.held), p.held[0].msg.ID.Offset, p.held[len(p.held)-1].msg.ID.Offset))
	}
	if p.next < p.releasedTo {
		parts = append(parts, fmt.Sprintf("live messages up to offset %d were acknowledged when the broker delivered "+
			"them again, as it had exported this partition before: they are read from its next export when the "+
			"source runs again", p.releasedTo-1))
	}
	return strings.Join(parts, "; ")
}

// emit turns msg, the message at p.next, into a record and advances p.next.
// A live message is acknowledged with the record.
func (c *Combined) emit(ctx context.Context, p *partitionSeam, msg *danubeclient.ReceivedMessage, mode Mode, live bool) (opencdc.Record, error) {
	p.next = msg.ID.Offset + 1
	c.seq++
	pos, err := c.position(p, mode)
	if err != nil {
		return opencdc.Record{}, err
	}
	c.mu.Lock()
	c.records[string(pos)] = seamRecord{part: p, offset: msg.ID.Offset}
	if live {
		p.emitted = append(p.emitted, msg.ID) // the highest offset emitted so far
	}
	c.mu.Unlock()
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

// Ack takes Conduit's acknowledgement of a record: Conduit acknowledges in
// order, so every offset of its partition up to the record's is processed,
// and the live messages of those offsets are acknowledged to the broker.
func (c *Combined) Ack(ctx context.Context, pos opencdc.Position) error {
	if err := c.ackFailure(); err != nil {
		return err
	}
	c.mu.Lock()
	r, found := c.records[string(pos)]
	var due []danubeclient.MessageID
	if found {
		delete(c.records, string(pos))
		p := r.part
		p.processed = r.offset + 1
		n := 0
		for n < len(p.emitted) && p.emitted[n].Offset <= r.offset {
			n++
		}
		if n > 0 {
			due = slices.Clone(p.emitted[:n])
			p.emitted = slices.Delete(p.emitted, 0, n)
		}
	}
	c.mu.Unlock()
	for _, id := range due {
		if err := c.ack(ctx, r.part.reader, id); err != nil {
			return err
		}
	}
	return nil
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
