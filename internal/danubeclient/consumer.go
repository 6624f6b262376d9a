package danubeclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// SubscriptionType follows the protocol's numbering.
type SubscriptionType int

const (
	Exclusive SubscriptionType = 0
	Shared    SubscriptionType = 1
	Failover  SubscriptionType = 2
	KeyShared SubscriptionType = 3
)

func (t SubscriptionType) String() string {
	switch t {
	case Exclusive:
		return "exclusive"
	case Shared:
		return "shared"
	case Failover:
		return "failover"
	case KeyShared:
		return "key-shared"
	default:
		return fmt.Sprintf("SubscriptionType(%d)", int(t))
	}
}

// ConsumerOptions describe a consumer on one (possibly partitioned) topic.
type ConsumerOptions struct {
	Topic        string // "/namespace/topic"; partitions are discovered
	Name         string // consumer name; stable names take over after reconnects
	Subscription string
	Type         SubscriptionType
	KeyFilters   []string // glob patterns, KeyShared only
	// Buffer is the capacity of the receive queue shared by all partitions;
	// 0 means 100, as the official clients.
	Buffer int
}

const defaultBuffer = 100

func (o *ConsumerOptions) validate() error {
	if err := ValidateTopic(o.Topic); err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	switch {
	case o.Name == "":
		return fmt.Errorf("consumer on topic %q: the consumer name is empty: use a stable name, so a "+
			"restarted consumer takes over its subscription", o.Topic)
	case o.Subscription == "":
		return fmt.Errorf("consumer %q on topic %q: the subscription name is empty", o.Name, o.Topic)
	case o.Type < Exclusive || o.Type > KeyShared:
		return fmt.Errorf("consumer %q: subscription type %d is unknown: use Exclusive, Shared, Failover or KeyShared",
			o.Name, o.Type)
	case len(o.KeyFilters) > 0 && o.Type != KeyShared:
		return fmt.Errorf("consumer %q: key filters need a KeyShared subscription, not %s", o.Name, o.Type)
	case o.Buffer < 0:
		return fmt.Errorf("consumer %q: Buffer is %d: it must be 0 (default 100) or positive", o.Name, o.Buffer)
	}
	return nil
}

// MessageID identifies a delivered message for Ack and Nack.
type MessageID struct {
	Topic      string // partition topic
	Offset     uint64
	ProducerID uint64
	BrokerAddr string
	RequestID  uint64
}

// ReceivedMessage is one delivery.
type ReceivedMessage struct {
	ID            MessageID
	Payload       []byte
	Key           string // routing key; "" when the producer set none
	HasKey        bool
	Attributes    map[string]string
	PublishTime   time.Time
	ProducerName  string
	SchemaID      *uint64
	SchemaVersion *uint32
}

// Consumer receives from every partition of a topic. Safe for concurrent use.
type Consumer struct {
	c       *Client
	opts    ConsumerOptions
	parts   []*partConsumer
	byTopic map[string]*partConsumer // fixed at Subscribe: read without a lock
	queue   chan *ReceivedMessage

	stopLoops context.CancelFunc
	loops     sync.WaitGroup
	health    *healthLoop

	failOnce sync.Once
	failed   chan struct{} // closed with failErr set when the consumer fails for good
	failErr  error

	closeOnce sync.Once
	closed    chan struct{}
}

// Subscribe creates (or rejoins) the subscription on every partition and
// starts receiving. A new subscription starts at the topic's end.
//
//nolint:contextcheck // the receive loops and health check run until Close, not until ctx ends
func (c *Client) Subscribe(ctx context.Context, opts ConsumerOptions) (*Consumer, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if err := c.usable(fmt.Sprintf("subscribe %q", opts.Subscription)); err != nil {
		return nil, err
	}
	if opts.Buffer == 0 {
		opts.Buffer = defaultBuffer
	}
	opts.KeyFilters = append([]string(nil), opts.KeyFilters...)
	topics, err := c.Partitions(ctx, opts.Topic)
	if err != nil {
		return nil, fmt.Errorf("subscribe %q to topic %q: %w", opts.Subscription, opts.Topic, err)
	}
	co := &Consumer{
		c:       c,
		opts:    opts,
		parts:   make([]*partConsumer, len(topics)),
		byTopic: make(map[string]*partConsumer, len(topics)),
		queue:   make(chan *ReceivedMessage, opts.Buffer),
		failed:  make(chan struct{}),
		closed:  make(chan struct{}),
	}
	// The receive loops outlive ctx, which bounds only the subscription and
	// the attaching of the first streams.
	loopCtx, stop := context.WithCancel(context.Background())
	errs := make([]error, len(topics))
	first := make([]*receiveStream, len(topics))
	var wg sync.WaitGroup
	for i, t := range topics {
		pc := &partConsumer{co: co, topic: t}
		co.parts[i], co.byTopic[t] = pc, pc
		wg.Go(func() {
			s, err := pc.subscribe(ctx)
			if err != nil {
				errs[i] = err
				return
			}
			pc.cur.Store(s)
			first[i], errs[i] = pc.open(loopCtx, ctx, s)
		})
	}
	wg.Wait()
	if err := firstOf(errs); err != nil {
		stop() // ends the streams already attached, so the broker marks them inactive
		return nil, err
	}
	if err := c.track(co); err != nil {
		stop()
		return nil, fmt.Errorf("subscribe %q to topic %q: %w", opts.Subscription, opts.Topic, err)
	}
	co.stopLoops = stop
	for i, pc := range co.parts {
		co.loops.Go(func() { pc.run(loopCtx, first[i]) })
	}
	co.health = startHealth(c.health, co.checkHealth) //nolint:contextcheck // runs until Close
	return co, nil
}

// Partitions returns the partition topics this consumer reads.
func (co *Consumer) Partitions() []string {
	out := make([]string, len(co.parts))
	for i, pc := range co.parts {
		out[i] = pc.topic
	}
	return out
}

// Receive returns the next delivery, blocking until one arrives, ctx ends, or
// the consumer fails for good (an error that is not transient, e.g. the
// Exclusive subscription taken by another consumer). Broken streams, health
// CLOSE and broker restarts are healed inside by resubscribing.
func (co *Consumer) Receive(ctx context.Context) (*ReceivedMessage, error) {
	select {
	case m := <-co.queue:
		return m, nil
	default:
	}
	select {
	case m := <-co.queue:
		return m, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("receive from topic %q: %w", co.opts.Topic, ctx.Err())
	case <-co.failed:
		select {
		case m := <-co.queue:
			return m, nil
		default:
			return nil, co.failErr
		}
	case <-co.closed:
		return nil, fmt.Errorf("receive from topic %q: %w", co.opts.Topic, ErrClosed)
	}
}

// Ack acknowledges a delivery (retrying transient errors).
func (co *Consumer) Ack(ctx context.Context, id MessageID) error {
	pc, err := co.partFor("ack", id)
	if err != nil {
		return err
	}
	b := getAckBuf()
	defer putAckBuf(b)
	b.id = danubepb.MsgID{ProducerId: id.ProducerID, TopicName: id.Topic, BrokerAddr: id.BrokerAddr, TopicOffset: id.Offset}
	b.req.RequestId, b.req.MsgId, b.req.SubscriptionName = id.RequestID, &b.id, co.opts.Subscription
	return pc.call(ctx, "ack", id, danubepb.ConsumerService_Ack_FullMethodName, &b.req, &b.resp)
}

// ackBuf holds one Ack request and reply; pooled because the source sends
// one Ack per message.
type ackBuf struct {
	req  danubepb.AckRequest
	id   danubepb.MsgID
	resp danubepb.AckResponse
}

var ackBufs sync.Pool

func getAckBuf() *ackBuf {
	if b, ok := ackBufs.Get().(*ackBuf); ok {
		return b
	}
	return new(ackBuf)
}

func putAckBuf(b *ackBuf) {
	b.req.MsgId, b.req.SubscriptionName = nil, ""
	b.id.TopicName, b.id.BrokerAddr = "", ""
	ackBufs.Put(b)
}

// Nack asks for redelivery after at least delay (the broker waits >= 1s).
func (co *Consumer) Nack(ctx context.Context, id MessageID, delay time.Duration, reason string) error {
	pc, err := co.partFor("nack", id)
	if err != nil {
		return err
	}
	req := &danubepb.NackRequest{RequestId: id.RequestID, MsgId: id.proto(), SubscriptionName: co.opts.Subscription}
	if delay > 0 {
		ms := uint64(delay.Milliseconds())
		req.DelayMs = &ms
	}
	if reason != "" {
		req.Reason = &reason
	}
	return pc.call(ctx, "nack", id, danubepb.ConsumerService_Nack_FullMethodName, req, &danubepb.NackResponse{})
}

func (id MessageID) proto() *danubepb.MsgID {
	return &danubepb.MsgID{ProducerId: id.ProducerID, TopicName: id.Topic, BrokerAddr: id.BrokerAddr, TopicOffset: id.Offset}
}

func (co *Consumer) partFor(op string, id MessageID) (*partConsumer, error) {
	select {
	case <-co.closed:
		return nil, fmt.Errorf("%s offset %d of topic %q: %w", op, id.Offset, id.Topic, ErrClosed)
	default:
	}
	pc := co.byTopic[id.Topic]
	if pc == nil {
		return nil, fmt.Errorf("%s offset %d: the message ID names topic %q, which this consumer (topic %q) does not read",
			op, id.Offset, id.Topic, co.opts.Topic)
	}
	return pc, nil
}

// Close stops receiving and the health checks. The broker keeps the
// subscription: a consumer with the same name resumes it.
func (co *Consumer) Close() error {
	co.closeOnce.Do(func() {
		co.stopLoops()
		co.health.stop()
		co.loops.Wait()
		close(co.closed)
		co.c.untrack(co)
	})
	return nil
}

func (co *Consumer) closeForClient() { _ = co.Close() }

// fail ends the consumer with a permanent error, reported by Receive.
func (co *Consumer) fail(err error) {
	co.failOnce.Do(func() {
		co.c.log.Error("consumer failed", "topic", co.opts.Topic, "consumer", co.opts.Name, "error", err)
		co.failErr = err
		close(co.failed)
		co.stopLoops()
	})
}

func (co *Consumer) checkHealth(ctx context.Context) {
	for _, pc := range co.parts {
		s := pc.cur.Load()
		pc.mu.Lock()
		gen := pc.gen
		pc.mu.Unlock()
		closed, err := co.c.healthCheck(ctx, s.r, danubepb.HealthCheckRequest_Consumer, s.id)
		switch {
		case err != nil:
			co.c.log.DebugContext(ctx, "consumer health check failed", "topic", pc.topic, "error", err)
		case closed:
			co.c.log.InfoContext(ctx, "broker closed the consumer: resubscribing", "topic", pc.topic, "consumer", co.opts.Name)
			pc.restartStream(gen)
		}
	}
}

// partConsumer is the consumer on one partition topic.
type partConsumer struct {
	co    *Consumer
	topic string
	cur   atomic.Pointer[consumerSession]
	reqID atomic.Uint64

	mu           sync.Mutex
	gen          uint64 // counts streams opened, so a stale CLOSE cannot end a newer stream
	cancelStream context.CancelFunc
}

type consumerSession struct {
	id uint64
	r  *route
}

// errRestart marks a stream ended on purpose because the broker reported the
// consumer closed.
var errRestart = errors.New("the broker reported the consumer closed")

func (pc *partConsumer) what() string {
	o := &pc.co.opts
	return fmt.Sprintf("subscription %q (consumer %q) on topic %q", o.Subscription, o.Name, pc.topic)
}

// subscribe looks the topic up and registers the consumer; with a known
// consumer name the broker hands back the same consumer (takeover). Each
// attempt looks the topic up again, so an answer that another broker serves
// the topic leads to the owner.
func (pc *partConsumer) subscribe(ctx context.Context) (*consumerSession, error) {
	o := &pc.co.opts
	c := pc.co.c
	var s *consumerSession
	err := c.retryRouted(ctx, func() string { return "subscribe " + pc.what() }, pc.topic, c.retry, nil, func(ctx context.Context) (*route, error) {
		r, err := c.lookupOnce(ctx, pc.topic)
		if err != nil {
			return nil, err
		}
		cctx, cancel := c.callCtx(ctx)
		defer cancel()
		resp, err := danubepb.NewConsumerServiceClient(r.cc).Subscribe(r.outgoing(cctx), &danubepb.ConsumerRequest{
			RequestId:        pc.reqID.Add(1),
			TopicName:        pc.topic,
			ConsumerName:     o.Name,
			Subscription:     o.Subscription,
			SubscriptionType: danubepb.ConsumerRequest_SubscriptionType(o.Type),
			KeyFilters:       o.KeyFilters,
		})
		if err != nil {
			return r, err
		}
		s = &consumerSession{id: resp.GetConsumerId(), r: r}
		return r, nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// run is the partition's receive loop: it pumps the stream into the shared
// queue and heals every break by resubscribing under the same name, until
// the consumer closes or fails with an error that retrying cannot fix.
func (pc *partConsumer) run(ctx context.Context, rs *receiveStream) {
	policy := pc.co.c.retry
	log := pc.co.c.log
	attempt := 0
	for {
		s := pc.cur.Load()
		opened := time.Now()
		var delivered bool
		var err error
		if rs == nil {
			rs, err = pc.open(ctx, ctx, s)
		}
		if err == nil {
			delivered, err = pc.pump(ctx, rs)
		}
		rs = nil
		if ctx.Err() != nil {
			return
		}
		if !healable(err) {
			pc.co.fail(s.r.decorate(classify("receive from "+pc.what(), err)))
			return
		}
		if delivered || time.Since(opened) > policy.Max {
			attempt = 0
		}
		log.Info("receive stream ended: resubscribing", "topic", pc.topic, "consumer", pc.co.opts.Name,
			"reason", errOrEOF(err), "attempt", attempt)
		if err == nil && attempt >= 3 {
			log.Warn("the stream keeps ending right after it opens: another consumer with the same name "+
				"may be taking the subscription over", "topic", pc.topic, "consumer", pc.co.opts.Name)
		}
		if attempt > 0 {
			if sleep(ctx, policy.Backoff(attempt-1), nil) != nil {
				return
			}
		}
		attempt++
		// Subscribe, not just a new stream: only a Subscribe takeover sends
		// again at once what the old stream had in flight.
		ns, err := pc.subscribe(ctx)
		if err != nil {
			if ctx.Err() == nil {
				pc.co.fail(fmt.Errorf("resubscribe after the stream ended: %w", err))
			}
			return
		}
		pc.cur.Store(ns)
	}
}

func errOrEOF(err error) string {
	if err == nil {
		return "end of stream"
	}
	return err.Error()
}

// healable reports the stream errors a resubscribe fixes: end of stream
// (takeover, broker shutdown, topic moved), a CLOSE from the health check, an
// unknown consumer (broker restart, topic moved), an answer that another
// broker serves the topic, and transient errors.
func healable(err error) bool {
	if err == nil || errors.Is(err, errRestart) || IsTransient(err) || redoLookup(err) {
		return true
	}
	//exhaustive:ignore // the codes listed heal; every other code is permanent
	switch status.Code(err) {
	case codes.NotFound, codes.Canceled, codes.Aborted, codes.Internal, codes.Unknown:
		// INTERNAL/UNKNOWN/ABORTED: a stream reset mid-flight (RST_STREAM, broker crash).
		return true
	default:
		return false
	}
}

// receiveStream is an attached ReceiveMessages stream.
type receiveStream struct {
	grpc.ServerStreamingClient[danubepb.StreamMessage]
	ctx    context.Context //nolint:containedctx // the stream's own context, to tell a restart from a shutdown
	cancel context.CancelFunc
}

// open starts the receive stream of session s under ctx and waits, bounded by
// wait, until the broker has attached it, which the broker signals by sending
// the response headers. Returning earlier would let a caller close a consumer
// the broker has marked active but never sees disconnect, which stalls the
// subscription's dispatcher on a real broker.
func (pc *partConsumer) open(ctx, wait context.Context, s *consumerSession) (*receiveStream, error) {
	sctx, cancel := context.WithCancel(ctx)
	pc.mu.Lock()
	pc.gen++
	pc.cancelStream = cancel
	pc.mu.Unlock()

	stream, err := danubepb.NewConsumerServiceClient(s.r.cc).ReceiveMessages(s.r.outgoing(sctx),
		&danubepb.ReceiveRequest{RequestId: pc.reqID.Add(1), ConsumerId: s.id})
	if err != nil {
		cancel()
		return nil, pc.streamErr(ctx, sctx, err)
	}
	stopWaiting := context.AfterFunc(wait, cancel)
	_, _ = stream.Header() // a stream that ended instead reports why from Recv
	if !stopWaiting() {
		return nil, fmt.Errorf("attach the receive stream of %s: %w", pc.what(), context.Cause(wait))
	}
	return &receiveStream{ServerStreamingClient: stream, ctx: sctx, cancel: cancel}, nil
}

// pump moves deliveries from an attached stream into the queue until the
// stream ends. It reports whether anything was delivered.
func (pc *partConsumer) pump(ctx context.Context, rs *receiveStream) (bool, error) {
	defer rs.cancel()
	delivered := false
	for {
		m, err := rs.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return delivered, nil
			}
			return delivered, pc.streamErr(ctx, rs.ctx, err)
		}
		select {
		case pc.co.queue <- pc.received(m):
			delivered = true
		case <-ctx.Done():
			return delivered, ctx.Err()
		}
	}
}

func (pc *partConsumer) streamErr(ctx, sctx context.Context, err error) error {
	if ctx.Err() == nil && sctx.Err() != nil {
		return errRestart
	}
	return err
}

// restartStream ends stream number gen so the loop resubscribes; a newer
// stream is left alone.
func (pc *partConsumer) restartStream(gen uint64) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.gen == gen && pc.cancelStream != nil {
		pc.cancelStream()
	}
}

func (pc *partConsumer) received(m *danubepb.StreamMessage) *ReceivedMessage {
	id := m.GetMsgId()
	rm := &ReceivedMessage{
		ID: MessageID{
			Topic:      pc.topic,
			Offset:     id.GetTopicOffset(),
			ProducerID: id.GetProducerId(),
			BrokerAddr: id.GetBrokerAddr(),
			RequestID:  m.GetRequestId(),
		},
		Payload:       m.GetPayload(),
		Attributes:    m.GetAttributes(),
		PublishTime:   time.UnixMilli(int64(m.GetPublishTime())),
		ProducerName:  m.GetProducerName(),
		SchemaID:      m.SchemaId,
		SchemaVersion: m.SchemaVersion,
	}
	if m.RoutingKey != nil {
		rm.Key, rm.HasKey = *m.RoutingKey, true
	}
	return rm
}

// call runs a unary consumer call about message id (op names it in errors)
// on the partition's current broker, retrying transient errors. When the
// broker answers that it no longer serves the topic (it moved), the
// partition's stream is restarted so the receive loop resubscribes at the new
// owner, and the call is retried there. The new owner ignores an ack for a
// message it has not delivered itself and delivers that message again:
// at-least-once.
func (pc *partConsumer) call(ctx context.Context, op string, id MessageID, method string, req, resp any) error {
	c := pc.co.c
	what := func() string { return fmt.Sprintf("%s offset %d of topic %q", op, id.Offset, id.Topic) }
	return c.retryRouted(ctx, what, pc.topic, c.retry, pc.co.closed, func(ctx context.Context) (*route, error) {
		s := pc.cur.Load()
		cctx, cancel := c.callCtx(ctx)
		defer cancel()
		err := s.r.cc.Invoke(s.r.outgoing(cctx), method, req, resp)
		if redoLookup(err) {
			pc.resubscribeFrom(s)
		}
		return s.r, err //nolint:wrapcheck // retryRouted classifies it
	})
}

// resubscribeFrom ends the stream of session stale, if it is still the
// current one, so the receive loop subscribes again (with a fresh lookup).
func (pc *partConsumer) resubscribeFrom(stale *consumerSession) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.cur.Load() == stale && pc.cancelStream != nil {
		pc.cancelStream()
	}
}
