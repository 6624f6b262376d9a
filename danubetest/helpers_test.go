package danubetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/adminpb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/schemapb"
)

// clients are the raw generated clients for one broker.
type clients struct {
	b      *Broker
	prod   danubepb.ProducerServiceClient
	cons   danubepb.ConsumerServiceClient
	disc   danubepb.DiscoveryClient
	health danubepb.HealthCheckClient
	store  danubepb.StorageServiceClient
	schema schemapb.SchemaRegistryClient
	ns     adminpb.NamespaceAdminClient
	topics adminpb.TopicAdminClient
}

func newBroker(t *testing.T, opts ...Option) *Broker {
	t.Helper()
	b, err := New(opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

func dial(t *testing.T, url string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	target := strings.TrimPrefix(strings.TrimPrefix(url, "http://"), "https://")
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func connect(t *testing.T, b *Broker) clients {
	t.Helper()
	c := dial(t, b.URL())
	a := dial(t, b.AdminURL())
	return clients{
		b:      b,
		prod:   danubepb.NewProducerServiceClient(c),
		cons:   danubepb.NewConsumerServiceClient(c),
		disc:   danubepb.NewDiscoveryClient(c),
		health: danubepb.NewHealthCheckClient(c),
		store:  danubepb.NewStorageServiceClient(c),
		schema: schemapb.NewSchemaRegistryClient(c),
		ns:     adminpb.NewNamespaceAdminClient(a),
		topics: adminpb.NewTopicAdminClient(a),
	}
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// producerHandle is a created producer.
type producerHandle struct {
	t     *testing.T
	c     clients
	id    uint64
	topic string
	name  string
	reqID uint64
}

func (c clients) producer(t *testing.T, topic, name string, reliable bool) *producerHandle {
	t.Helper()
	ds := danubepb.DispatchStrategy_NonReliable
	if reliable {
		ds = danubepb.DispatchStrategy_Reliable
	}
	resp, err := c.prod.CreateProducer(ctxT(t), &danubepb.ProducerRequest{
		RequestId: 1, ProducerName: name, TopicName: topic, DispatchStrategy: ds,
	})
	if err != nil {
		t.Fatalf("CreateProducer(%s, %s): %v", topic, name, err)
	}
	return &producerHandle{t: t, c: c, id: resp.GetProducerId(), topic: topic, name: name}
}

func (p *producerHandle) message(payload string) *danubepb.StreamMessage {
	p.reqID++
	return &danubepb.StreamMessage{
		RequestId:    p.reqID,
		MsgId:        &danubepb.MsgID{ProducerId: p.id, TopicName: p.topic, BrokerAddr: "test"},
		Payload:      []byte(payload),
		PublishTime:  uint64(time.Now().UnixMilli()),
		ProducerName: p.name,
		Attributes:   map[string]string{},
	}
}

func (p *producerHandle) send(payloads ...string) {
	p.t.Helper()
	for _, pl := range payloads {
		if _, err := p.c.prod.SendMessage(ctxT(p.t), p.message(pl)); err != nil {
			p.t.Fatalf("SendMessage(%q): %v", pl, err)
		}
	}
}

func (p *producerHandle) sendKey(key string, payloads ...string) {
	p.t.Helper()
	for _, pl := range payloads {
		m := p.message(pl)
		m.RoutingKey = &key
		if _, err := p.c.prod.SendMessage(ctxT(p.t), m); err != nil {
			p.t.Fatalf("SendMessage(%q): %v", pl, err)
		}
	}
}

// consumerHandle is a subscribed consumer with an open stream.
type consumerHandle struct {
	t      *testing.T
	c      clients
	id     uint64
	topic  string
	sub    string
	msgs   chan *danubepb.StreamMessage
	ended  chan error
	cancel context.CancelFunc
}

func (c clients) subscribe(t *testing.T, topic, sub, name string, typ danubepb.ConsumerRequest_SubscriptionType, filters ...string) uint64 {
	t.Helper()
	resp, err := c.cons.Subscribe(ctxT(t), &danubepb.ConsumerRequest{
		RequestId: 1, TopicName: topic, ConsumerName: name, Subscription: sub, SubscriptionType: typ, KeyFilters: filters,
	})
	if err != nil {
		t.Fatalf("Subscribe(%s, %s, %s): %v", topic, sub, name, err)
	}
	return resp.GetConsumerId()
}

// consume subscribes and opens the receive stream.
func (c clients) consume(t *testing.T, topic, sub, name string, typ danubepb.ConsumerRequest_SubscriptionType, filters ...string) *consumerHandle {
	t.Helper()
	id := c.subscribe(t, topic, sub, name, typ, filters...)
	return c.stream(t, id, topic, sub)
}

func (c clients) stream(t *testing.T, id uint64, topic, sub string) *consumerHandle {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := c.cons.ReceiveMessages(ctx, &danubepb.ReceiveRequest{RequestId: 1, ConsumerId: id})
	if err != nil {
		cancel()
		t.Fatalf("ReceiveMessages: %v", err)
	}
	h := &consumerHandle{
		t: t, c: c, id: id, topic: topic, sub: sub,
		msgs: make(chan *danubepb.StreamMessage, 1000), ended: make(chan error, 1), cancel: cancel,
	}
	eventually(t, "the broker to see the stream", func() bool { return c.b.StreamOpen(id) })
	go func() {
		for {
			m, err := st.Recv()
			if err != nil {
				h.ended <- err
				close(h.msgs)
				return
			}
			h.msgs <- m
		}
	}()
	return h
}

// next waits for the next delivery.
func (h *consumerHandle) next() *danubepb.StreamMessage {
	h.t.Helper()
	select {
	case m, ok := <-h.msgs:
		if !ok {
			h.t.Fatalf("stream ended while waiting for a message")
		}
		return m
	case <-time.After(10 * time.Second):
		h.t.Fatalf("no message within 10s")
		return nil
	}
}

// none asserts that nothing arrives within d (used only where the absence of
// a delivery is the behaviour under test).
func (h *consumerHandle) none(d time.Duration) {
	h.t.Helper()
	select {
	case m, ok := <-h.msgs:
		if ok {
			h.t.Fatalf("unexpected delivery %q (offset %d)", m.GetPayload(), m.GetMsgId().GetTopicOffset())
		}
	case <-time.After(d):
	}
}

// waitEnd waits for the stream to end and returns its error.
func (h *consumerHandle) waitEnd() error {
	h.t.Helper()
	select {
	case err := <-h.ended:
		return err
	case <-time.After(10 * time.Second):
		h.t.Fatalf("stream did not end within 10s")
		return nil
	}
}

func (h *consumerHandle) ack(m *danubepb.StreamMessage) {
	h.t.Helper()
	_, err := h.c.cons.Ack(ctxT(h.t), &danubepb.AckRequest{RequestId: m.GetRequestId(), MsgId: m.GetMsgId(), SubscriptionName: h.sub})
	if err != nil {
		h.t.Fatalf("Ack: %v", err)
	}
}

func (h *consumerHandle) nack(m *danubepb.StreamMessage, delay time.Duration) {
	h.t.Helper()
	ms := uint64(delay.Milliseconds())
	_, err := h.c.cons.Nack(ctxT(h.t), &danubepb.NackRequest{RequestId: m.GetRequestId(), MsgId: m.GetMsgId(), SubscriptionName: h.sub, DelayMs: &ms})
	if err != nil {
		h.t.Fatalf("Nack: %v", err)
	}
}

// eventually polls cond until it holds or 10s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wantCode(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	is := is.New(t)
	is.True(err != nil) // an error was expected
	st := status.Convert(err)
	if st.Code() != code || (msg != "" && st.Message() != msg) {
		t.Fatalf("got %s %q, want %s %q", st.Code(), st.Message(), code, msg)
	}
}

const (
	exclusive = danubepb.ConsumerRequest_Exclusive
	shared    = danubepb.ConsumerRequest_Shared
	failover  = danubepb.ConsumerRequest_Failover
	keyShared = danubepb.ConsumerRequest_KeyShared
)
