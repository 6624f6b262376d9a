package danubeclient

import (
	"context"
	"crypto/tls"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/schemapb"
)

// fakeBroker is a small in-test broker speaking the client protocol, with
// hooks for precise fault control. It models only what the unit tests need.
type fakeBroker struct {
	url string
	srv *grpc.Server

	mu          sync.Mutex
	nextID      uint64
	namespaces  map[string]bool
	producers   map[uint64]*fakeProducer
	producerIDs map[string]uint64 // topic + "|" + name
	topics      map[string]*fakeTopic
	consumers   map[uint64]*fakeConsumer
	calls       map[string]int
	seen        []seenCall
	failNext    map[string][]error
	refused     map[string]error // every call of the method fails with it
	acks, nacks []*danubepb.MsgID
	nackDelays  []uint64

	// Hooks, set before use; called without the lock.
	sendHook   func(ctx context.Context, m *danubepb.StreamMessage) error
	lookup     func(topic string) (*danubepb.TopicLookupResponse, error)
	partitions func(topic string) []string
}

type seenCall struct {
	method string
	md     metadata.MD
}

type fakeProducer struct{ topic, name string }

type fakeTopic struct {
	strategy danubepb.DispatchStrategy
	offset   uint64
	msgs     []*danubepb.StreamMessage
	subs     map[string]*fakeSub
}

type fakeSub struct {
	typ       danubepb.ConsumerRequest_SubscriptionType
	consumers map[string]uint64
	ch        chan *danubepb.StreamMessage
}

type fakeConsumer struct {
	topic, sub, name string
	active           bool
	streams          int // live ReceiveMessages handlers
	cancel           context.CancelCauseFunc
}

type fakeOption func(*fakeBroker, *[]grpc.ServerOption)

func withServerTLS(tc *tls.Config) fakeOption {
	return func(_ *fakeBroker, opts *[]grpc.ServerOption) {
		*opts = append(*opts, grpc.Creds(credentials.NewTLS(tc)))
	}
}

func newFakeBroker(tb testing.TB, opts ...fakeOption) *fakeBroker {
	tb.Helper()
	b := &fakeBroker{
		namespaces:  map[string]bool{"default": true},
		producers:   map[uint64]*fakeProducer{},
		producerIDs: map[string]uint64{},
		topics:      map[string]*fakeTopic{},
		consumers:   map[uint64]*fakeConsumer{},
		calls:       map[string]int{},
		failNext:    map[string][]error{},
		refused:     map[string]error{},
		nextID:      1000,
	}
	sopts := []grpc.ServerOption{
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := b.intercept(ctx, info.FullMethod); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := b.intercept(ss.Context(), info.FullMethod); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}
	for _, o := range opts {
		o(b, &sopts)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	b.url = "http://" + lis.Addr().String()
	b.srv = grpc.NewServer(sopts...)
	danubepb.RegisterProducerServiceServer(b.srv, fakeProducerSvc{b: b})
	danubepb.RegisterConsumerServiceServer(b.srv, fakeConsumerSvc{b: b})
	danubepb.RegisterDiscoveryServer(b.srv, fakeDiscoverySvc{b: b})
	danubepb.RegisterHealthCheckServer(b.srv, fakeHealthSvc{b: b})
	schemapb.RegisterSchemaRegistryServer(b.srv, fakeSchemaSvc{b: b})
	go func() { _ = b.srv.Serve(lis) }()
	tb.Cleanup(b.srv.Stop)
	return b
}

func (b *fakeBroker) intercept(ctx context.Context, method string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls[method]++
	b.seen = append(b.seen, seenCall{method: method, md: md.Copy()})
	if errs := b.failNext[method]; len(errs) > 0 {
		b.failNext[method] = errs[1:]
		return errs[0]
	}
	return b.refused[method]
}

// failNextCalls makes the next calls of method fail with errs, in order.
func (b *fakeBroker) failNextCalls(method string, errs ...error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failNext[method] = append(b.failNext[method], errs...)
}

// refuse makes every later call of method fail with err (nil: accept again).
func (b *fakeBroker) refuse(method string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refused[method] = err
}

func (b *fakeBroker) callCount(method string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[method]
}

func (b *fakeBroker) stored(topic string) []*danubepb.StreamMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t := b.topics[topic]; t != nil {
		return slices.Clone(t.msgs)
	}
	return nil
}

func (b *fakeBroker) ackedOffsets() []uint64 { return b.offsetsOf(&b.acks) }

func (b *fakeBroker) nackedOffsets() []uint64 { return b.offsetsOf(&b.nacks) }

func (b *fakeBroker) offsetsOf(ids *[]*danubepb.MsgID) []uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]uint64, 0, len(*ids))
	for _, id := range *ids {
		out = append(out, id.GetTopicOffset())
	}
	return out
}

// restart forgets producers and consumers and ends live streams, like a
// broker restart; topics and subscriptions stay.
func (b *fakeBroker) restart() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.consumers {
		if c.cancel != nil {
			c.cancel(status.Error(codes.Unavailable, "broker shutting down"))
		}
	}
	b.producers = map[uint64]*fakeProducer{}
	b.producerIDs = map[string]uint64{}
	b.consumers = map[uint64]*fakeConsumer{}
	for _, t := range b.topics {
		for _, s := range t.subs {
			s.consumers = map[string]uint64{}
		}
	}
}

// liveStreams counts the stream handlers running now.
func (b *fakeBroker) liveStreams() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, c := range b.consumers {
		n += c.streams
	}
	return n
}

// endStreams ends every live stream with OK, which the client sees as EOF.
func (b *fakeBroker) endStreams() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.consumers {
		if c.cancel != nil {
			c.cancel(nil)
		}
	}
}

func (b *fakeBroker) createTopic(name string, strategy danubepb.DispatchStrategy) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.topics[name] == nil {
		b.topics[name] = &fakeTopic{strategy: strategy, subs: map[string]*fakeSub{}}
	}
}

func namespaceOf(topic string) string {
	parts := strings.Split(topic, "/")
	if len(parts) < 3 {
		return ""
	}
	return parts[1]
}

type fakeProducerSvc struct {
	danubepb.UnimplementedProducerServiceServer
	b *fakeBroker
}

func (s fakeProducerSvc) CreateProducer(_ context.Context, req *danubepb.ProducerRequest) (*danubepb.ProducerResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.namespaces[namespaceOf(req.GetTopicName())] {
		return nil, status.Errorf(codes.Unavailable, "Unable to find the namespace %s, the topic can be created only for an exisiting namespace", namespaceOf(req.GetTopicName()))
	}
	t := b.topics[req.GetTopicName()]
	if t == nil {
		t = &fakeTopic{strategy: req.GetDispatchStrategy(), subs: map[string]*fakeSub{}}
		b.topics[req.GetTopicName()] = t
	} else if t.strategy != req.GetDispatchStrategy() {
		return nil, status.Error(codes.FailedPrecondition, "Producer requested dispatch strategy does not match topic strategy")
	}
	key := req.GetTopicName() + "|" + req.GetProducerName()
	id, ok := b.producerIDs[key]
	if !ok {
		b.nextID++
		id = b.nextID
		b.producerIDs[key] = id
		b.producers[id] = &fakeProducer{topic: req.GetTopicName(), name: req.GetProducerName()}
	}
	return &danubepb.ProducerResponse{RequestId: req.GetRequestId(), ProducerId: id, ProducerName: req.GetProducerName()}, nil
}

func (s fakeProducerSvc) SendMessage(ctx context.Context, m *danubepb.StreamMessage) (*danubepb.MessageResponse, error) {
	b := s.b
	b.mu.Lock()
	_, ok := b.producers[m.GetMsgId().GetProducerId()]
	hook := b.sendHook
	b.mu.Unlock()
	if !ok {
		return nil, status.Errorf(codes.NotFound, "The producer with id %d does not exist", m.GetMsgId().GetProducerId())
	}
	if hook != nil {
		if err := hook(ctx, m); err != nil {
			return nil, err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[m.GetMsgId().GetTopicName()]
	if t == nil {
		return nil, status.Error(codes.PermissionDenied, "Unable to publish the message: topic not found")
	}
	c, ok := proto.Clone(m).(*danubepb.StreamMessage)
	if !ok {
		return nil, status.Error(codes.Internal, "clone failed")
	}
	if t.strategy == danubepb.DispatchStrategy_Reliable {
		c.MsgId.TopicOffset = t.offset
		t.offset++
	}
	t.msgs = append(t.msgs, c)
	for _, sub := range t.subs {
		select {
		case sub.ch <- c:
		default:
		}
	}
	return &danubepb.MessageResponse{RequestId: m.GetRequestId()}, nil
}

type fakeConsumerSvc struct {
	danubepb.UnimplementedConsumerServiceServer
	b *fakeBroker
}

func (s fakeConsumerSvc) Subscribe(_ context.Context, req *danubepb.ConsumerRequest) (*danubepb.ConsumerResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[req.GetTopicName()]
	if t == nil {
		return nil, status.Errorf(codes.NotFound, "Unable to find the topic: %s", req.GetTopicName())
	}
	sub := t.subs[req.GetSubscription()]
	if sub == nil {
		sub = &fakeSub{typ: req.GetSubscriptionType(), consumers: map[string]uint64{}, ch: make(chan *danubepb.StreamMessage, 4096)}
		t.subs[req.GetSubscription()] = sub
	}
	if id, ok := sub.consumers[req.GetConsumerName()]; ok {
		if c := b.consumers[id]; c != nil {
			if c.cancel != nil {
				c.cancel(nil)
			}
			c.active = true
		}
		return &danubepb.ConsumerResponse{RequestId: req.GetRequestId(), ConsumerId: id, ConsumerName: req.GetConsumerName()}, nil
	}
	if sub.typ == danubepb.ConsumerRequest_Exclusive && len(sub.consumers) > 0 {
		return nil, status.Errorf(codes.PermissionDenied, "Not able to subscribe to the topic %s due to Not allowed to add the Consumer: %s, the Exclusive subscription can't be shared with other consumers", req.GetTopicName(), req.GetConsumerName())
	}
	b.nextID++
	id := b.nextID
	sub.consumers[req.GetConsumerName()] = id
	b.consumers[id] = &fakeConsumer{topic: req.GetTopicName(), sub: req.GetSubscription(), name: req.GetConsumerName(), active: true}
	return &danubepb.ConsumerResponse{RequestId: req.GetRequestId(), ConsumerId: id, ConsumerName: req.GetConsumerName()}, nil
}

func (s fakeConsumerSvc) ReceiveMessages(req *danubepb.ReceiveRequest, stream grpc.ServerStreamingServer[danubepb.StreamMessage]) error {
	b := s.b
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)
	b.mu.Lock()
	c := b.consumers[req.GetConsumerId()]
	if c == nil {
		b.mu.Unlock()
		return status.Errorf(codes.NotFound, "The consumer with the id %d does not exist", req.GetConsumerId())
	}
	if c.cancel != nil {
		c.cancel(nil)
	}
	c.cancel, c.active = cancel, true
	c.streams++
	ch := b.topics[c.topic].subs[c.sub].ch
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		c.active = false
		c.streams--
		b.mu.Unlock()
	}()
	if err := stream.SendHeader(nil); err != nil { // attached, like the real broker
		return err
	}
	for {
		select {
		case <-ctx.Done():
			if err := context.Cause(ctx); status.Code(err) != codes.Unknown {
				return err
			}
			return nil
		case m := <-ch:
			if err := stream.Send(m); err != nil {
				return err
			}
		}
	}
}

func (s fakeConsumerSvc) Ack(_ context.Context, req *danubepb.AckRequest) (*danubepb.AckResponse, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.acks = append(s.b.acks, req.GetMsgId())
	return &danubepb.AckResponse{RequestId: req.GetRequestId()}, nil
}

func (s fakeConsumerSvc) Nack(_ context.Context, req *danubepb.NackRequest) (*danubepb.NackResponse, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.nacks = append(s.b.nacks, req.GetMsgId())
	s.b.nackDelays = append(s.b.nackDelays, req.GetDelayMs())
	return &danubepb.NackResponse{RequestId: req.GetRequestId()}, nil
}

type fakeDiscoverySvc struct {
	danubepb.UnimplementedDiscoveryServer
	b *fakeBroker
}

func (s fakeDiscoverySvc) TopicLookup(_ context.Context, req *danubepb.TopicLookupRequest) (*danubepb.TopicLookupResponse, error) {
	b := s.b
	b.mu.Lock()
	hook := b.lookup
	_, known := b.topics[req.GetTopic()]
	b.mu.Unlock()
	if hook != nil {
		return hook(req.GetTopic())
	}
	if !known {
		return nil, status.Errorf(codes.NotFound, "Unable to find the requested topic: %s", req.GetTopic())
	}
	return &danubepb.TopicLookupResponse{
		RequestId: req.GetRequestId(), ResponseType: danubepb.TopicLookupResponse_Connect,
		BrokerUrl: b.url, ConnectUrl: b.url,
	}, nil
}

func (s fakeDiscoverySvc) TopicPartitions(_ context.Context, req *danubepb.TopicLookupRequest) (*danubepb.TopicPartitionsResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	resp := &danubepb.TopicPartitionsResponse{RequestId: req.GetRequestId()}
	switch {
	case b.partitions != nil:
		resp.Partitions = b.partitions(req.GetTopic())
	case b.topics[req.GetTopic()] != nil:
		resp.Partitions = []string{req.GetTopic()}
	default:
		// The broker's prefix scan, byte-sorted.
		for name := range b.topics {
			if strings.HasPrefix(name, req.GetTopic()) {
				resp.Partitions = append(resp.Partitions, name)
			}
		}
		slices.Sort(resp.Partitions)
	}
	return resp, nil
}

type fakeHealthSvc struct {
	danubepb.UnimplementedHealthCheckServer
	b *fakeBroker
}

func (s fakeHealthSvc) HealthCheck(_ context.Context, req *danubepb.HealthCheckRequest) (*danubepb.HealthCheckResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	alive := false
	switch req.GetClient() {
	case danubepb.HealthCheckRequest_Producer:
		alive = b.producers[req.GetId()] != nil
	case danubepb.HealthCheckRequest_Consumer:
		c := b.consumers[req.GetId()]
		alive = c != nil && c.active
	}
	if alive {
		return &danubepb.HealthCheckResponse{Status: danubepb.HealthCheckResponse_OK}, nil
	}
	return &danubepb.HealthCheckResponse{Status: danubepb.HealthCheckResponse_CLOSE}, nil
}

// fakeSchemaSvc knows subject "orders" at versions 1..3, schema id 7.
type fakeSchemaSvc struct {
	schemapb.UnimplementedSchemaRegistryServer
	b *fakeBroker
}

func (fakeSchemaSvc) GetLatestSchema(_ context.Context, req *schemapb.GetLatestSchemaRequest) (*schemapb.GetSchemaResponse, error) {
	if req.GetSubject() != "orders" {
		return nil, status.Errorf(codes.NotFound, "subject %s not found", req.GetSubject())
	}
	return &schemapb.GetSchemaResponse{SchemaId: 7, Version: 3, Subject: "orders"}, nil
}

func (fakeSchemaSvc) GetSchema(_ context.Context, req *schemapb.GetSchemaRequest) (*schemapb.GetSchemaResponse, error) {
	if req.GetSchemaId() != 7 || req.GetVersion() < 1 || req.GetVersion() > 3 {
		return nil, status.Errorf(codes.NotFound, "schema %d version %d not found", req.GetSchemaId(), req.GetVersion())
	}
	return &schemapb.GetSchemaResponse{SchemaId: 7, Version: req.GetVersion(), Subject: "orders"}, nil
}

// eventually polls cond until it holds or the deadline passes.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testConfig(url string) Config {
	return Config{
		URL:            url,
		Retry:          RetryPolicy{MaxRetries: 5, Base: time.Millisecond, Max: 20 * time.Millisecond},
		HealthInterval: time.Hour,
	}
}

func newTestClient(tb testing.TB, cfg Config) *Client {
	tb.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}
