package danubeclient

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

func newTestConsumer(tb testing.TB, c *Client, opts ConsumerOptions) *Consumer {
	tb.Helper()
	co, err := c.Subscribe(context.Background(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = co.Close() })
	return co
}

func receive(tb testing.TB, co *Consumer) *ReceivedMessage {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := co.Receive(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func (b *fakeBroker) deactivateConsumers() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.consumers {
		c.active = false
	}
}

func TestReceiveAckNack(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	c := newTestClient(t, testConfig(b.url))
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	co := newTestConsumer(t, c, ConsumerOptions{Topic: "/default/t", Name: "cons", Subscription: "sub", Type: Exclusive})
	is.Equal(co.Partitions(), []string{"/default/t"})

	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("m0"), Key: "k", Attributes: map[string]string{"x": "y"}}))
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("m1")}))
	m0, m1 := receive(t, co), receive(t, co)
	is.Equal(string(m0.Payload), "m0")
	is.Equal(m0.ID.Topic, "/default/t")
	is.Equal(m0.ID.Offset, uint64(0))
	is.Equal(m1.ID.Offset, uint64(1))
	is.True(m0.ID.ProducerID != 0)
	is.Equal(m0.ID.BrokerAddr, b.url)
	is.True(m0.ID.RequestID != 0)
	is.Equal(m0.Key, "k")
	is.True(m0.HasKey)
	is.True(!m1.HasKey)
	is.Equal(m0.Attributes["x"], "y")
	is.Equal(m0.ProducerName, "prod")
	is.True(time.Since(m0.PublishTime) < time.Minute)

	is.NoErr(co.Ack(context.Background(), m0.ID))
	is.NoErr(co.Nack(context.Background(), m1.ID, 2*time.Second, "retry later"))
	is.Equal(b.ackedOffsets(), []uint64{0})
	b.mu.Lock()
	is.Equal(b.nacks[0].GetTopicOffset(), uint64(1))
	is.Equal(b.nackDelays[0], uint64(2000))
	b.mu.Unlock()

	// A message ID from elsewhere is an error, not a panic.
	err := co.Ack(context.Background(), MessageID{Topic: "/default/other"})
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "/default/other"))
}

func TestConsumerReadsAllPartitions(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	c := newTestClient(t, testConfig(b.url))
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/p", Name: "prod", Partitions: 3, Dispatch: Reliable})
	b.createTopic("/default/p2", danubepb.DispatchStrategy_Reliable) // shares the prefix: must not be read
	co := newTestConsumer(t, c, ConsumerOptions{Topic: "/default/p", Name: "cons", Subscription: "sub", Type: Shared})
	is.Equal(co.Partitions(), p.Topics())

	for range 6 {
		is.NoErr(p.Send(context.Background(), Message{Payload: []byte("x")}))
	}
	perTopic := map[string]int{}
	var wg sync.WaitGroup
	for range 6 {
		m := receive(t, co)
		perTopic[m.ID.Topic]++
		wg.Go(func() { is.NoErr(co.Ack(context.Background(), m.ID)) }) // concurrent acks
	}
	wg.Wait()
	is.Equal(perTopic, map[string]int{"/default/p-part-0": 2, "/default/p-part-1": 2, "/default/p-part-2": 2})
	is.Equal(len(b.ackedOffsets()), 6)
}

func TestConsumerResubscribesAfterStreamEnd(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	c := newTestClient(t, testConfig(b.url))
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	co := newTestConsumer(t, c, ConsumerOptions{Topic: "/default/t", Name: "cons", Subscription: "sub", Type: Exclusive})
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("a")}))
	is.Equal(string(receive(t, co).Payload), "a")

	b.endStreams() // EOF, as after a takeover
	eventually(t, "a resubscribe", func() bool { return b.callCount(mSubscribe) >= 2 })
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("b")}))
	is.Equal(string(receive(t, co).Payload), "b")
}

func TestConsumerResubscribesAfterBrokerRestart(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	c := newTestClient(t, testConfig(b.url))
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	co := newTestConsumer(t, c, ConsumerOptions{Topic: "/default/t", Name: "cons", Subscription: "sub", Type: Exclusive})
	oldID := co.parts[0].cur.Load().id

	// The restart ends the stream with UNAVAILABLE, and the first reopen
	// finds an unknown consumer (NOT_FOUND) until the loop resubscribes.
	b.restart()
	eventually(t, "a new consumer id", func() bool { return co.parts[0].cur.Load().id != oldID })
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("after restart")}))
	is.Equal(string(receive(t, co).Payload), "after restart")
}

func TestConsumerResubscribesOnHealthClose(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	cfg := testConfig(b.url)
	cfg.HealthInterval = 10 * time.Millisecond
	c := newTestClient(t, cfg)
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	co := newTestConsumer(t, c, ConsumerOptions{Topic: "/default/t", Name: "cons", Subscription: "sub", Type: Exclusive})
	eventually(t, "the stream open", func() bool { return b.liveStreams() == 1 })

	b.deactivateConsumers() // the stream is still open, but the broker answers CLOSE
	eventually(t, "a resubscribe after CLOSE", func() bool { return b.callCount(mSubscribe) >= 2 && b.callCount(mReceive) >= 2 })
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("x")}))
	is.Equal(string(receive(t, co).Payload), "x")
}

func TestExclusiveSubscriptionTaken(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	b.createTopic("/default/t", danubepb.DispatchStrategy_Reliable)
	c := newTestClient(t, testConfig(b.url))
	newTestConsumer(t, c, ConsumerOptions{Topic: "/default/t", Name: "first", Subscription: "sub", Type: Exclusive})
	_, err := c.Subscribe(context.Background(), ConsumerOptions{Topic: "/default/t", Name: "second", Subscription: "sub", Type: Exclusive})
	is.True(errors.Is(err, ErrSubscriptionTaken))
	is.True(strings.Contains(err.Error(), "same consumer name"))
	is.True(strings.Contains(err.Error(), "Unsubscribe"))
	is.Equal(b.callCount(mSubscribe), 2) // permanent: not retried

	// The same name takes over.
	newTestConsumer(t, c, ConsumerOptions{Topic: "/default/t", Name: "first", Subscription: "sub", Type: Exclusive})
}

func TestSubscribeRetriesTheBrokersTimeout(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	b.createTopic("/default/t", danubepb.DispatchStrategy_Reliable)
	b.failNextCalls(mSubscribe, status.Error(codes.Canceled, "Timeout expired"))
	c := newTestClient(t, testConfig(b.url))
	newTestConsumer(t, c, ConsumerOptions{Topic: "/default/t", Name: "c", Subscription: "s", Type: Exclusive})
	is.Equal(b.callCount(mSubscribe), 2)

	// A cancellation that is not the broker's timeout is not retried.
	b.failNextCalls(mSubscribe, status.Error(codes.Canceled, "context canceled"))
	_, err := c.Subscribe(context.Background(), ConsumerOptions{Topic: "/default/t", Name: "d", Subscription: "s2", Type: Exclusive})
	is.Equal(status.Code(err), codes.Canceled)
	is.Equal(b.callCount(mSubscribe), 3)
}

func TestSubscribeUnknownTopic(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	c := newTestClient(t, testConfig(b.url))
	_, err := c.Subscribe(context.Background(), ConsumerOptions{Topic: "/default/none", Name: "c", Subscription: "s", Type: Shared})
	is.True(errors.Is(err, ErrTopicNotFound))
}

func TestPermanentStreamErrorSurfacesThroughReceive(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	b.createTopic("/default/t", danubepb.DispatchStrategy_Reliable)
	b.failNextCalls(mReceive, status.Error(codes.Unauthenticated, "Invalid token"))
	c := newTestClient(t, testConfig(b.url))
	co := newTestConsumer(t, c, ConsumerOptions{Topic: "/default/t", Name: "c", Subscription: "s", Type: Shared})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := co.Receive(ctx)
	is.True(errors.Is(err, ErrUnauthenticated))
	_, err = co.Receive(ctx) // stays failed
	is.True(errors.Is(err, ErrUnauthenticated))
}

func TestResubscribeFailureSurfacesThroughReceive(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	b.createTopic("/default/t", danubepb.DispatchStrategy_Reliable)
	c := newTestClient(t, testConfig(b.url))
	co := newTestConsumer(t, c, ConsumerOptions{Topic: "/default/t", Name: "c", Subscription: "s", Type: Shared})
	eventually(t, "the stream open", func() bool { return b.liveStreams() == 1 })

	down := status.Error(codes.Unavailable, "broker down")
	b.failNextCalls(mLookup, down, down, down, down, down, down, down, down)
	b.endStreams()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := co.Receive(ctx)
	is.Equal(status.Code(err), codes.Unavailable)
	is.True(strings.Contains(err.Error(), "resubscribe"))
}

func TestReceiveHonoursContextAndClose(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	b.createTopic("/default/t", danubepb.DispatchStrategy_Reliable)
	c := newTestClient(t, testConfig(b.url))
	co, err := c.Subscribe(context.Background(), ConsumerOptions{Topic: "/default/t", Name: "c", Subscription: "s", Type: KeyShared, KeyFilters: []string{"a*"}})
	is.NoErr(err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = co.Receive(ctx)
	is.True(errors.Is(err, context.DeadlineExceeded))
	is.NoErr(co.Close())
	_, err = co.Receive(context.Background())
	is.True(errors.Is(err, ErrClosed))
	is.True(errors.Is(co.Ack(context.Background(), MessageID{Topic: "/default/t"}), ErrClosed))
}

func TestConsumerOptionsAreValidated(t *testing.T) {
	b := newFakeBroker(t)
	c := newTestClient(t, testConfig(b.url))
	for _, o := range []ConsumerOptions{
		{Topic: "/default/t", Subscription: "s"},
		{Topic: "/default/t", Name: "c"},
		{Topic: "t", Name: "c", Subscription: "s"},
		{Topic: "/default/t", Name: "c", Subscription: "s", Type: 4},
		{Topic: "/default/t", Name: "c", Subscription: "s", Type: Shared, KeyFilters: []string{"a"}},
		{Topic: "/default/t", Name: "c", Subscription: "s", Buffer: -1},
	} {
		if _, err := c.Subscribe(context.Background(), o); err == nil {
			t.Errorf("Subscribe(%+v) succeeded, want an error", o)
		}
	}
}
