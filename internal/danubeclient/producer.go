package danubeclient

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// DispatchStrategy is a topic's delivery mode, fixed by the first producer.
type DispatchStrategy int

const (
	NonReliable DispatchStrategy = 0 // lossy: dropped when no consumer can take it
	Reliable    DispatchStrategy = 1 // stored and acked: at-least-once
)

func (d DispatchStrategy) String() string {
	switch d {
	case NonReliable:
		return "non-reliable"
	case Reliable:
		return "reliable"
	default:
		return "DispatchStrategy(" + strconv.Itoa(int(d)) + ")"
	}
}

// Ordering says which sends a pipelined producer keeps in call order.
type Ordering int

const (
	// OrderPerKey keeps call order among messages with the same partition and
	// routing key (messages without a key form one lane per partition).
	OrderPerKey Ordering = iota
	// OrderPerPartition keeps call order among all messages of a partition.
	OrderPerPartition
	// OrderNone keeps no order: every send may run concurrently.
	OrderNone
)

// ProducerOptions describe a producer.
type ProducerOptions struct {
	Topic      string // "/namespace/topic"; the base name when Partitions > 0
	Name       string // stable name: re-creating with it returns the same producer
	Partitions int    // 0: plain topic; N: topic-part-0 … topic-part-N-1
	Dispatch   DispatchStrategy
	Schema     *SchemaRef
	// MaxInFlight bounds pipelined sends across all partitions; 0 means 64.
	MaxInFlight int
	Ordering    Ordering
}

const defaultMaxInFlight = 64

func (o *ProducerOptions) validate() error {
	if err := ValidateTopic(o.Topic); err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	switch {
	case o.Name == "":
		return fmt.Errorf("producer for topic %q: the name is empty: give a stable name so re-creating "+
			"after a reconnect finds the same producer", o.Topic)
	case o.Partitions < 0:
		return fmt.Errorf("producer %q: partitions is %d: use 0 for a plain topic or N > 0", o.Name, o.Partitions)
	case o.Dispatch != NonReliable && o.Dispatch != Reliable:
		return fmt.Errorf("producer %q: dispatch strategy %d is unknown: use Reliable or NonReliable", o.Name, o.Dispatch)
	case o.MaxInFlight < 0:
		return fmt.Errorf("producer %q: MaxInFlight is %d: it must be 0 (default 64) or positive", o.Name, o.MaxInFlight)
	case o.Ordering < OrderPerKey || o.Ordering > OrderNone:
		return fmt.Errorf("producer %q: ordering %d is unknown", o.Name, o.Ordering)
	}
	if o.Schema != nil {
		if err := o.Schema.validate(); err != nil {
			return fmt.Errorf("producer %q: %w", o.Name, err)
		}
	}
	return nil
}

// Message is what a producer sends. The producer keeps a reference to Payload
// and Attributes until the send completes: do not modify them before that.
type Message struct {
	Payload    []byte
	Key        string // routing key: partition choice and KeyShared ordering; "" for none
	Attributes map[string]string
}

// Producer publishes to one (possibly partitioned) topic. Safe for concurrent use.
type Producer struct {
	c      *Client
	opts   ProducerOptions
	parts  []*partProducer
	rr     atomic.Uint64
	pipe   pipeline
	health *healthLoop

	closing   atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// NewProducer creates the producer on every partition (auto-creating the topic
// where the broker allows it) and starts its health check.
func (c *Client) NewProducer(ctx context.Context, opts ProducerOptions) (*Producer, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if err := c.usable(fmt.Sprintf("producer %q", opts.Name)); err != nil {
		return nil, err
	}
	if opts.MaxInFlight == 0 {
		opts.MaxInFlight = defaultMaxInFlight
	}
	var schema *resolvedSchema
	if opts.Schema != nil {
		var err error
		if schema, err = c.resolveSchema(ctx, opts.Schema); err != nil {
			return nil, fmt.Errorf("producer %q: %w", opts.Name, err)
		}
	}
	p := &Producer{c: c, opts: opts}
	n := max(1, opts.Partitions)
	p.parts = make([]*partProducer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		pp := newPartProducer(c, &opts, i, schema)
		p.parts[i] = pp
		wg.Go(func() { errs[i] = pp.start(ctx) })
	}
	wg.Wait()
	if err := firstOf(errs); err != nil {
		return nil, err
	}
	p.pipe.init(p)
	if err := c.track(p); err != nil {
		return nil, fmt.Errorf("producer %q: %w", opts.Name, err)
	}
	// The health check outlives ctx, which bounds only the creation.
	p.health = startHealth(c.health, p.checkHealth) //nolint:contextcheck // runs until Close
	return p, nil
}

// Partitions is the number of partitions written (1 for a plain topic).
func (p *Producer) Partitions() int { return len(p.parts) }

// Topics returns the partition topics written, in partition order.
func (p *Producer) Topics() []string {
	out := make([]string, len(p.parts))
	for i, pp := range p.parts {
		out[i] = pp.topic
	}
	return out
}

// partitionFor picks the partition of a message: by key hash when it has a
// key, round-robin from partition 0 otherwise (as the official clients).
func (p *Producer) partitionFor(m *Message) int {
	n := len(p.parts)
	if n == 1 {
		return 0
	}
	if m.Key != "" {
		return PartitionForKey(m.Key, n)
	}
	return int((p.rr.Add(1) - 1) % uint64(n))
}

// Send publishes msg and waits for the broker's answer, retrying transient
// errors and re-creating the producer after a broker restart (NOT_FOUND).
// Send does not wait behind pipelined sends: mixing Send and SendAsync on
// the same key gives no order between them.
func (p *Producer) Send(ctx context.Context, msg Message) error {
	if p.closing.Load() {
		return fmt.Errorf("producer %q: send: %w", p.opts.Name, ErrClosed)
	}
	pp := p.parts[p.partitionFor(&msg)]
	if err := pp.checkSize(&msg); err != nil {
		return err
	}
	return pp.send(ctx, &msg, p.pipe.abort)
}

// checkHealth asks the broker about each partition's producer. It logs a
// failing check once when checks start failing and once when they pass
// again, not at every interval.
func (p *Producer) checkHealth(ctx context.Context) {
	for _, pp := range p.parts {
		s := pp.cur.Load()
		closed, err := p.c.healthCheck(ctx, s.r, danubepb.HealthCheckRequest_Producer, s.id)
		switch {
		case err != nil && ctx.Err() != nil:
			return // the producer is closing
		case err != nil:
			if pp.unhealthy.CompareAndSwap(false, true) {
				p.c.log.WarnContext(ctx, "producer health check failed; sends retry and re-create the producer as needed",
					"topic", pp.topic, "producer", pp.name, "error", err)
			} else {
				p.c.log.DebugContext(ctx, "producer health check failed", "topic", pp.topic, "producer", pp.name, "error", err)
			}
			continue
		case closed:
			p.c.log.InfoContext(ctx, "the broker no longer knows the producer: re-creating it", "topic", pp.topic, "producer", pp.name)
			if err := pp.recreate(ctx, s, p.c.retry); err != nil {
				p.c.log.WarnContext(ctx, "re-creating the producer failed", "topic", pp.topic, "producer", pp.name, "error", err)
				continue
			}
		}
		if pp.unhealthy.CompareAndSwap(true, false) {
			p.c.log.InfoContext(ctx, "producer health check passes again", "topic", pp.topic, "producer", pp.name)
		}
	}
}

// Flush waits until every accepted send has completed or ctx ends. Ordering
// lanes closed by a failure open again once Flush has seen them drained.
func (p *Producer) Flush(ctx context.Context) error {
	return p.pipe.flush(ctx)
}

// Close waits for in-flight sends (bounded by ctx) and stops the health check.
// When ctx ends first, queued sends fail with ErrClosed and Close waits only
// for the calls already on the wire, each bounded by its own context and the
// client's CallTimeout.
func (p *Producer) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		p.closing.Store(true)
		p.closeErr = p.pipe.close(ctx)
		p.health.stop()
		p.c.untrack(p)
	})
	return p.closeErr
}

func (p *Producer) closeForClient() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.Close(ctx)
}

// partProducer is the producer on one partition topic.
type partProducer struct {
	c        *Client
	topic    string
	name     string
	dispatch danubepb.DispatchStrategy
	ref      *danubepb.SchemaReference
	schemaID *uint64
	schemaV  *uint32
	reqID    atomic.Uint64

	cur       atomic.Pointer[producerSession]
	unhealthy atomic.Bool // the last health check failed
	mu        sync.Mutex
	creating  chan struct{} // non-nil while a re-create runs; closed when it ends
}

// producerSession is one broker-side incarnation of the producer.
type producerSession struct {
	id uint64
	r  *route
}

func newPartProducer(c *Client, o *ProducerOptions, i int, schema *resolvedSchema) *partProducer {
	pp := &partProducer{c: c, topic: o.Topic, name: o.Name, dispatch: danubepb.DispatchStrategy(o.Dispatch)}
	if o.Partitions > 0 {
		pp.topic = PartitionTopic(o.Topic, i)
		pp.name = o.Name + "-" + strconv.Itoa(i)
	}
	if o.Schema != nil {
		pp.ref = o.Schema.proto()
	}
	if schema != nil {
		pp.schemaID, pp.schemaV = &schema.id, &schema.version
	}
	return pp
}

func (pp *partProducer) start(ctx context.Context) error {
	s, err := pp.create(ctx, pp.c.retry)
	if err != nil {
		return err
	}
	pp.cur.Store(s)
	return nil
}

// create looks the topic up and registers the producer. The broker answers a
// known (topic, name) with the existing id, so this is also the reconnect.
// Each attempt looks the topic up again, so an answer that another broker
// serves the topic (or, in cluster mode, that the topic was just created and
// awaits its broker) leads to the owner.
func (pp *partProducer) create(ctx context.Context, policy RetryPolicy) (*producerSession, error) {
	var s *producerSession
	what := func() string { return fmt.Sprintf("create producer %q on topic %q", pp.name, pp.topic) }
	err := pp.c.retryRouted(ctx, what, pp.topic, policy, nil, func(ctx context.Context) (*route, error) {
		r, err := pp.c.lookupOnce(ctx, pp.topic)
		if err != nil {
			return nil, err
		}
		cctx, cancel := pp.c.callCtx(ctx)
		defer cancel()
		resp, err := danubepb.NewProducerServiceClient(r.cc).CreateProducer(r.outgoing(cctx), &danubepb.ProducerRequest{
			RequestId:          pp.reqID.Add(1),
			ProducerName:       pp.name,
			TopicName:          pp.topic,
			SchemaRef:          pp.ref,
			ProducerAccessMode: danubepb.ProducerAccessMode_Shared,
			DispatchStrategy:   pp.dispatch,
		})
		if err != nil {
			return r, err
		}
		s = &producerSession{id: resp.GetProducerId(), r: r}
		return r, nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// recreate replaces the session stale with a new one, once however many
// senders and the health check ask for it at the same time. No lock is held
// across the calls. policy bounds the attempts of this caller.
func (pp *partProducer) recreate(ctx context.Context, stale *producerSession, policy RetryPolicy) error {
	for {
		pp.mu.Lock()
		if pp.cur.Load() != stale {
			pp.mu.Unlock()
			return nil
		}
		if wait := pp.creating; wait != nil {
			pp.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return fmt.Errorf("re-create producer %q on topic %q: %w", pp.name, pp.topic, ctx.Err())
			}
		}
		done := make(chan struct{})
		pp.creating = done
		pp.mu.Unlock()

		s, err := pp.create(ctx, policy)
		if err == nil && s.id != stale.id {
			// The broker gave a new id: it had lost the producer (restart,
			// topic moved). Re-registering under the same id is routine.
			pp.c.log.InfoContext(ctx, "producer re-created on the broker", "topic", pp.topic, "producer", pp.name,
				"broker", s.r.brokerURL)
		}

		pp.mu.Lock()
		if err == nil {
			pp.cur.Store(s)
		}
		pp.creating = nil
		close(done)
		pp.mu.Unlock()
		return err
	}
}

// roughEnvelope over-estimates the encoded size of everything in a message
// but its payload, key and attributes.
const roughEnvelope = 1024

// checkSize refuses a message the broker would reject as too large, before
// anything is sent. The exact encoded size is computed only near the limit.
func (pp *partProducer) checkSize(m *Message) error {
	n := len(m.Payload) + len(m.Key) + roughEnvelope
	if n <= MaxMessageSize-64<<10 {
		for k, v := range m.Attributes {
			n += len(k) + len(v) + 16
		}
		if n <= MaxMessageSize-64<<10 {
			return nil
		}
	}
	b := pp.fill(getSendBuf(), &producerSession{r: pp.c.service}, m)
	size := sizeStreamMessage(&b.msg)
	putSendBuf(b)
	if size <= MaxMessageSize {
		return nil
	}
	return fmt.Errorf("message for topic %q is %d bytes encoded (payload %d bytes), over the broker's limit of "+
		"%d bytes (4 MiB) per message: %w", pp.topic, size, len(m.Payload), MaxMessageSize, ErrMessageTooLarge)
}

// sendBuf holds one SendMessage request and reply; pooled because sending is
// the per-record hot path.
type sendBuf struct {
	msg  danubepb.StreamMessage
	id   danubepb.MsgID
	key  string
	resp danubepb.MessageResponse
}

var sendBufs sync.Pool

func getSendBuf() *sendBuf {
	if b, ok := sendBufs.Get().(*sendBuf); ok {
		return b
	}
	return new(sendBuf)
}

func putSendBuf(b *sendBuf) {
	b.msg.Payload, b.msg.Attributes, b.msg.RoutingKey, b.msg.MsgId = nil, nil, nil, nil
	b.key = ""
	sendBufs.Put(b)
}

func (pp *partProducer) fill(b *sendBuf, s *producerSession, m *Message) *sendBuf {
	b.id.ProducerId, b.id.TopicName, b.id.BrokerAddr, b.id.TopicOffset = s.id, pp.topic, s.r.brokerURL, 0
	b.msg.RequestId = pp.reqID.Add(1)
	b.msg.MsgId = &b.id
	b.msg.Payload = m.Payload
	b.msg.PublishTime = uint64(time.Now().UnixMilli())
	b.msg.ProducerName = pp.name
	b.msg.SubscriptionName = ""
	b.msg.Attributes = m.Attributes
	b.msg.SchemaId, b.msg.SchemaVersion = pp.schemaID, pp.schemaV
	b.msg.RoutingKey = nil
	if m.Key != "" {
		b.key = m.Key
		b.msg.RoutingKey = &b.key
	}
	return b
}

// send delivers one message: transient errors are retried with backoff, a
// producer the broker forgot (restart, topic moved) is re-created and the
// message sent again, an answer that the topic is now served elsewhere is
// followed by a lookup and a re-create at the new owner, anything else is
// returned at once. stop ends retry waits early.
func (pp *partProducer) send(ctx context.Context, m *Message, stop <-chan struct{}) error {
	retries, recreations := 0, 0
	policy := pp.c.retry
	for {
		s := pp.cur.Load()
		err := pp.sendOnce(ctx, s, m)
		if err == nil {
			return nil
		}
		what := fmt.Sprintf("send to topic %q (producer %q)", pp.topic, pp.name)
		moved := redoLookup(err)
		switch {
		case ctx.Err() != nil:
			return s.r.decorate(fmt.Errorf("%s: %w; last error: %w", what, ctx.Err(), err))
		case isProducerGone(err):
			recreations++
			if policy.exhausted(recreations) {
				return classify(what+": the producer keeps disappearing", err)
			}
			if rerr := pp.recreate(ctx, s, policy); rerr != nil {
				return fmt.Errorf("%s: the broker lost the producer and re-creating it failed: %w", what, rerr)
			}
		case moved || IsTransient(err):
			retries++
			if err := pp.retryAfter(ctx, what, s, err, retries, stop); err != nil {
				return err
			}
		default:
			return classify(what, err)
		}
	}
}

// retryAfter waits out retryable send error err, the retries-th, and, when
// the topic moved (or may have: the broker restarted), looks the topic up
// and registers the producer again (same name, so the same producer). It
// returns the error to give up with, nil to send again.
func (pp *partProducer) retryAfter(ctx context.Context, what string, s *producerSession, err error, retries int,
	stop <-chan struct{},
) error {
	policy := pp.c.retry
	moved := redoLookup(err)
	if policy.exhausted(retries) {
		what = fmt.Sprintf("%s: gave up after %d retries", what, retries-1)
		if moved {
			return movedError(what, s.r, err)
		}
		return s.r.decorate(classify(what, err))
	}
	if serr := sleep(ctx, policy.Backoff(retries-1), stop); serr != nil {
		return s.r.decorate(fmt.Errorf("%s: %w while retrying; last error: %w", what, serr, err))
	}
	if moved {
		pp.c.log.DebugContext(ctx, "the broker does not serve the topic any more: looking it up again",
			"topic", pp.topic, "producer", pp.name, "broker", s.r.connectURL,
			"answer", status.Convert(err).Message(), "retry", retries)
	}
	if moved || retries >= 2 {
		// One attempt: the send loop paces the retries.
		if rerr := pp.recreate(ctx, s, noRetry); rerr != nil && !IsTransient(rerr) && !redoLookup(rerr) {
			return fmt.Errorf("%s: %w", what, rerr)
		}
	}
	return nil
}

func (pp *partProducer) sendOnce(ctx context.Context, s *producerSession, m *Message) error {
	cctx, cancel := pp.c.callCtx(ctx)
	defer cancel()
	b := pp.fill(getSendBuf(), s, m)
	err := s.r.cc.Invoke(s.r.outgoing(cctx), danubepb.ProducerService_SendMessage_FullMethodName, &b.msg, &b.resp)
	putSendBuf(b)
	return err //nolint:wrapcheck // the caller classifies the status
}
