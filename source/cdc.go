package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// TopicConsumer is a configured topic and the consumer reading it.
type TopicConsumer struct {
	Topic    string
	Consumer Consumer
}

// CDCConfig describes a CDC iterator.
type CDCConfig struct {
	Topics []TopicConsumer
	// Ordered is set for exclusive and failover subscriptions: every message
	// of a partition comes to this consumer in offset order, so offsets that
	// were already emitted identify redeliveries, which are dropped.
	Ordered bool
	// Buffer bounds the deliveries waiting to be read.
	Buffer int
	// AckConcurrency is the number of acknowledgement workers.
	AckConcurrency int
	// Subscription and ConsumerName are used in error messages.
	Subscription, ConsumerName string
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
	readers map[string]*topicReader
	cfg     CDCConfig
	msgs    chan delivery
	acker   *acker

	pumpCtx    context.Context //nolint:containedctx // lifetime of the receive goroutines, ended by Close
	pumpCancel context.CancelFunc
	pumpWG     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	mu      sync.Mutex
	tracker *tracker
	// inConduit holds the records emitted and not yet acknowledged, by
	// position; positions are unique, so Ack finds its message without
	// decoding the position.
	inConduit map[string]emittedRecord
	// unacked counts those records per message (a shared subscription may
	// emit a redelivery again).
	unacked map[msgKey]int
	// redelivered counts the redeliveries of records Conduit still holds
	// (ordered subscriptions), to warn before the broker's poison policy acts.
	redelivered map[msgKey]int
	seq         uint64
	posCap      int // capacity for the next encoded position
	failure     error
}

type topicReader struct {
	topic      string
	topicJSON  []byte
	consumer   Consumer
	partitions []string
	index      map[string]int
}

type delivery struct {
	reader *topicReader
	msg    *danubeclient.ReceivedMessage
	err    error
}

type msgKey struct {
	topic  string // partition topic
	offset uint64
}

// emittedRecord is what acknowledging a record needs.
type emittedRecord struct {
	reader *topicReader
	id     danubeclient.MessageID
}

var _ Iterator = (*CDC)(nil)

// NewCDC starts reading. resume, when not nil, is the position of the last
// record Conduit processed.
func NewCDC(cfg CDCConfig, resume *Position) (*CDC, error) {
	if len(cfg.Topics) == 0 {
		return nil, errors.New("cdc iterator: no topics")
	}
	cfg.Buffer = max(cfg.Buffer, 1)
	cfg.AckConcurrency = max(cfg.AckConcurrency, 1)

	c := &CDC{
		readers:   make(map[string]*topicReader, len(cfg.Topics)),
		cfg:       cfg,
		msgs:      make(chan delivery, cfg.Buffer),
		inConduit: map[string]emittedRecord{},
		unacked:   map[msgKey]int{},

		redelivered: map[msgKey]int{},
	}
	known := map[string]bool{}
	for _, tc := range cfg.Topics {
		parts := tc.Consumer.Partitions()
		topicJSON, err := json.Marshal(tc.Topic)
		if err != nil {
			return nil, fmt.Errorf("cdc iterator: topic %q: %w", tc.Topic, err)
		}
		r := &topicReader{
			topic: tc.Topic, topicJSON: topicJSON, consumer: tc.Consumer,
			partitions: parts, index: make(map[string]int, len(parts)),
		}
		for i, p := range parts {
			r.index[p] = i
			known[p] = true
		}
		c.readers[tc.Topic] = r
	}

	var emitted map[string]offsetSet
	if resume != nil {
		c.seq = resume.Seq
		emitted = make(map[string]offsetSet, len(resume.Emitted))
		for topic, set := range resume.Emitted {
			if known[topic] { // partitions no longer configured are forgotten
				emitted[topic] = set
			}
		}
	}
	c.tracker = newTracker(cfg.Ordered, emitted)
	c.acker = newAcker(cfg.AckConcurrency)

	c.pumpCtx, c.pumpCancel = context.WithCancel(context.Background())
	for _, r := range c.readers {
		c.pumpWG.Add(1)
		go pump(c.pumpCtx, &c.pumpWG, r, c.msgs)
	}
	return c, nil
}

// pump moves deliveries of one consumer into the shared queue until ctx
// ends or the consumer fails; the queue's capacity and the consumer's own
// bounded queue cap memory use.
func pump(ctx context.Context, wg *sync.WaitGroup, r *topicReader, out chan<- delivery) {
	defer wg.Done()
	for {
		msg, err := r.consumer.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		select {
		case out <- delivery{reader: r, msg: msg, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// Next returns the next record, skipping redeliveries.
func (c *CDC) Next(ctx context.Context) (opencdc.Record, error) {
	for {
		if err := c.err(); err != nil {
			return opencdc.Record{}, err
		}
		select {
		case <-ctx.Done():
			return opencdc.Record{}, ctx.Err()
		case <-c.acker.failed:
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
	if d.err != nil {
		err = c.consumerError(d.reader.topic, d.err)
		c.mu.Lock()
		c.failure = err
		c.mu.Unlock()
		return opencdc.Record{}, false, err
	}
	msg := d.msg
	part, found := d.reader.index[msg.ID.Topic]
	if !found {
		return opencdc.Record{}, false, fmt.Errorf("received a message from %q, which is not a partition of %q",
			msg.ID.Topic, d.reader.topic)
	}

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
		if err := c.acker.enqueue(ctx, ackJob{consumer: d.reader.consumer, id: msg.ID}); err != nil {
			return opencdc.Record{}, false, err
		}
		return opencdc.Record{}, false, nil
	}
	skipped := c.tracker.takeSkipped()
	c.seq++
	pos := appendPositionHead(make([]byte, 0, c.posCap), d.reader.topicJSON, part, msg.ID.Offset, c.seq)
	pos = append(c.tracker.appendEmitted(pos), '}')
	c.posCap = len(pos) + 16
	c.inConduit[string(pos)] = emittedRecord{reader: d.reader, id: msg.ID}
	c.unacked[key]++
	c.mu.Unlock()

	if skipped != nil {
		// A warning, not an error: after a broken stream the broker may still
		// redeliver these offsets, out of order.
		sdk.Logger(ctx).Warn().Str("topic", skipped.topic).Uint64("from", skipped.lo).Uint64("to", skipped.hi).
			Msgf("%s offsets %d..%d were skipped by the broker: unless they arrive shortly (redeliveries after "+
				"a broken stream can come out of order), they are lost for this subscription, for example "+
				"because the broker restarted before it wrote the subscription's cursor; republish them if needed",
				skipped.topic, skipped.lo, skipped.hi)
	}
	if becameLossy {
		sdk.Logger(ctx).Warn().Str("topic", msg.ID.Topic).
			Msg("topic is NonReliable (its messages carry no offsets): the broker drops messages when the " +
				"consumer falls behind or is not connected, so messages can be lost; use a reliable topic " +
				"for at-least-once delivery")
	}
	rec, restoreErr := toRecord(msg, d.reader.topic, pos)
	if restoreErr != nil {
		sdk.Logger(ctx).Warn().Err(restoreErr).Str("topic", msg.ID.Topic).Uint64("offset", msg.ID.Offset).
			Msgf("message is marked %s=%s but its payload could not be decoded: passing it through as raw data",
				FormatAttribute, FormatOpenCDCJSON)
	}
	return rec, true, nil
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

func (c *CDC) consumerError(topic string, err error) error {
	if errors.Is(err, danubeclient.ErrSubscriptionTaken) {
		return SubscriptionTakenError(topic, c.cfg.Subscription, c.cfg.ConsumerName, err)
	}
	return fmt.Errorf("read %s: %w", topic, err)
}

// SubscriptionTakenError explains how to recover from an exclusive
// subscription held by another consumer name.
func SubscriptionTakenError(topic, subscription, consumer string, err error) error {
	return fmt.Errorf("topic %s: subscription %q is exclusive and registered to another consumer than %q: "+
		"set consumerName to the name used before, or remove the subscription with the admin API "+
		"(Unsubscribe, or delete the pipeline with adminURL set) and start again: %w",
		topic, subscription, consumer, err)
}

// Ack acknowledges the record at pos to the broker, asynchronously.
func (c *CDC) Ack(ctx context.Context, pos opencdc.Position) error {
	if err := c.acker.failure(); err != nil {
		return err
	}
	var lossy bool
	c.mu.Lock()
	e, found := c.inConduit[string(pos)]
	if found {
		delete(c.inConduit, string(pos))
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
	return c.acker.enqueue(ctx, ackJob{consumer: e.reader.consumer, id: e.id})
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
	c.closeOnce.Do(func() { c.closeErr = c.close(ctx) })
	return c.closeErr
}

func (c *CDC) close(ctx context.Context) error {
	return errors.Join(stopReading(ctx, c.pumpCancel, &c.pumpWG, c.acker), CloseConsumers(ctx, c.cfg.Topics))
}

// stopReading ends the receive goroutines, then waits until ctx ends for the
// queued acknowledgements; it returns the first acknowledgement failure.
func stopReading(ctx context.Context, stopPumps context.CancelFunc, pumps *sync.WaitGroup, a *acker) error {
	stopPumps()
	pumps.Wait()
	if abandoned := a.close(ctx); abandoned > 0 {
		sdk.Logger(ctx).Warn().Int("count", abandoned).
			Msg("acknowledgements still queued when closing were abandoned: the broker redelivers those messages")
	}
	return a.failure()
}
