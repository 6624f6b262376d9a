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
	"github.com/conduitio-labs/conduit-connector-danube/internal/wire"
)

// TopicConsumer is a configured topic and the consumer reading it.
type TopicConsumer struct {
	Topic    string
	Consumer Consumer
}

// LiveConfig describes the live subscription an iterator reads.
type LiveConfig struct {
	Topics []TopicConsumer
	// Buffer bounds the deliveries waiting to be processed.
	Buffer int
	// AckConcurrency is the number of acknowledgement workers.
	AckConcurrency int
	// Retry governs the acknowledgements (retry.*).
	Retry danubeclient.RetryPolicy
	// Subscription and ConsumerName are used in error messages.
	Subscription, ConsumerName string
}

// live is what both iterators share: one reader per configured topic whose
// deliveries are merged into one bounded queue, the acknowledgement workers,
// and the records emitted from the subscription that Conduit has not yet
// acknowledged. A message is acknowledged to the broker only through ack,
// called when Conduit acknowledges its record or when the iterator knows the
// message was already emitted.
type live struct {
	cfg     LiveConfig
	readers map[string]*topicReader // by configured topic
	msgs    chan delivery
	acker   *acker

	pumpCtx    context.Context //nolint:containedctx // lifetime of the receive goroutines, ended by close
	pumpCancel context.CancelFunc
	pumpWG     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	// mu guards inConduit and the iterator's own bookkeeping: Ack runs
	// concurrently with Next.
	mu sync.Mutex
	// inConduit holds the records emitted from the subscription and not yet
	// acknowledged, by position; positions are unique, so Ack finds its
	// message without decoding the position.
	inConduit map[string]emittedRecord
}

type topicReader struct {
	topic      string
	topicJSON  []byte
	consumer   Consumer
	partitions []string
	index      map[string]int // partition topic → its index
}

type delivery struct {
	reader *topicReader
	msg    *danubeclient.ReceivedMessage
	err    error
}

// emittedRecord is what acknowledging a record needs.
type emittedRecord struct {
	reader *topicReader
	id     danubeclient.MessageID
}

// newLive sets up the readers; start begins receiving.
func newLive(cfg LiveConfig) (*live, error) {
	if len(cfg.Topics) == 0 {
		return nil, errors.New("no topics")
	}
	cfg.Buffer = max(cfg.Buffer, 1)
	cfg.AckConcurrency = max(cfg.AckConcurrency, 1)
	l := &live{
		cfg:       cfg,
		readers:   make(map[string]*topicReader, len(cfg.Topics)),
		msgs:      make(chan delivery, cfg.Buffer),
		inConduit: map[string]emittedRecord{},
	}
	for _, tc := range cfg.Topics {
		topicJSON, err := json.Marshal(tc.Topic)
		if err != nil {
			return nil, fmt.Errorf("topic %q: %w", tc.Topic, err)
		}
		parts := tc.Consumer.Partitions()
		r := &topicReader{
			topic: tc.Topic, topicJSON: topicJSON, consumer: tc.Consumer,
			partitions: parts, index: make(map[string]int, len(parts)),
		}
		for i, p := range parts {
			r.index[p] = i
		}
		l.readers[tc.Topic] = r
	}
	return l, nil
}

// start runs the acknowledgement workers and one receive goroutine per
// topic.
func (l *live) start() {
	l.acker = newAcker(l.cfg.AckConcurrency, l.cfg.Retry)
	l.pumpCtx, l.pumpCancel = context.WithCancel(context.Background())
	for _, r := range l.readers {
		l.pumpWG.Add(1)
		go l.pump(r)
	}
}

// pump moves deliveries of one consumer into the shared queue until the
// live subscription closes or the consumer fails; the queue's capacity and
// the consumer's own bounded queue cap memory use.
func (l *live) pump(r *topicReader) {
	defer l.pumpWG.Done()
	ctx := l.pumpCtx
	for {
		msg, err := r.consumer.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		select {
		case l.msgs <- delivery{reader: r, msg: msg, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// check returns what a delivery reports: the consumer's failure, or a message
// from a partition its reader does not know.
func (l *live) check(d delivery) error {
	if d.err != nil {
		if errors.Is(d.err, danubeclient.ErrSubscriptionTaken) {
			return subscriptionTaken(d.reader.topic, l.cfg.Subscription, l.cfg.ConsumerName, d.err)
		}
		return fmt.Errorf("read %s: %w", d.reader.topic, d.err)
	}
	if _, ok := d.reader.index[d.msg.ID.Topic]; !ok {
		return fmt.Errorf("received a message from %q, which is not a partition of %q", d.msg.ID.Topic, d.reader.topic)
	}
	return nil
}

// subscriptionTaken explains how to recover from an exclusive subscription
// held by another consumer name.
func subscriptionTaken(topic, subscription, consumer string, err error) error {
	return fmt.Errorf("topic %s: subscription %q is exclusive and registered to another consumer than %q: "+
		"set consumerName to the name used before, or remove the subscription with the admin API "+
		"(Unsubscribe, or delete the pipeline with adminURL set) and start again: %w",
		topic, subscription, consumer, err)
}

// ack queues the acknowledgement of a message to the broker.
func (l *live) ack(ctx context.Context, r *topicReader, id danubeclient.MessageID) error {
	return l.acker.enqueue(ctx, ackJob{consumer: r.consumer, id: id})
}

// hold remembers a record emitted from the subscription until Conduit
// acknowledges it. Call with mu held.
func (l *live) hold(pos []byte, r *topicReader, id danubeclient.MessageID) {
	l.inConduit[string(pos)] = emittedRecord{reader: r, id: id}
}

// release forgets the record at pos and returns what acknowledging it needs.
// Call with mu held.
func (l *live) release(pos opencdc.Position) (emittedRecord, bool) {
	e, ok := l.inConduit[string(pos)]
	if ok {
		delete(l.inConduit, string(pos))
	}
	return e, ok
}

// ackFailure returns the first acknowledgement failure.
func (l *live) ackFailure() error {
	return l.acker.failure()
}

// record maps a delivery to a record at pos; a message marked as a record
// whose payload cannot be restored is passed through raw, with a warning.
func (l *live) record(ctx context.Context, msg *danubeclient.ReceivedMessage, r *topicReader, pos opencdc.Position,
	restore func(*danubeclient.ReceivedMessage, string, opencdc.Position) (opencdc.Record, error),
) opencdc.Record {
	rec, err := restore(msg, r.topic, pos)
	if err != nil {
		sdk.Logger(ctx).Warn().Err(err).Str("topic", msg.ID.Topic).Uint64("offset", msg.ID.Offset).
			Msgf("message is marked %s=%s but its payload could not be decoded: passing it through as raw data",
				wire.FormatAttribute, wire.FormatOpenCDCJSON)
	}
	return rec
}

// close stops the receive goroutines, waits until ctx ends for the queued
// acknowledgements, then closes the consumers and runs also. It returns the
// first acknowledgement failure with any close errors. Later calls return
// the same result.
func (l *live) close(ctx context.Context, also ...func() error) error {
	l.closeOnce.Do(func() {
		l.pumpCancel()
		l.pumpWG.Wait()
		if abandoned := l.acker.close(ctx); abandoned > 0 {
			sdk.Logger(ctx).Warn().Int("count", abandoned).
				Msg("acknowledgements still queued when closing were abandoned: the broker redelivers those messages")
		}
		errs := []error{l.acker.failure()}
		for _, f := range also {
			errs = append(errs, f())
		}
		errs = append(errs, closeConsumers(l.cfg.Topics))
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// knows reports whether partition belongs to a configured topic.
func (l *live) knows(partition string) bool {
	for _, r := range l.readers {
		if _, ok := r.index[partition]; ok {
			return true
		}
	}
	return false
}
