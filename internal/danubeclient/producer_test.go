package danubeclient

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

const (
	mCreateProducer = "/danube.ProducerService/CreateProducer"
	mSendMessage    = "/danube.ProducerService/SendMessage"
	mSubscribe      = "/danube.ConsumerService/Subscribe"
	mReceive        = "/danube.ConsumerService/ReceiveMessages"
	mAck            = "/danube.ConsumerService/Ack"
	mNack           = "/danube.ConsumerService/Nack"
	mLookup         = "/danube.Discovery/TopicLookup"
	mPartitions     = "/danube.Discovery/TopicPartitions"
	mHealth         = "/danube.HealthCheck/HealthCheck"
)

func newTestProducer(tb testing.TB, c *Client, opts ProducerOptions) *Producer {
	tb.Helper()
	p, err := c.NewProducer(context.Background(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func TestSendWritesWireFields(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	c := newTestClient(t, testConfig(b.url))
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})

	before := time.Now().Add(-time.Second)
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("one"), Key: "k1", Attributes: map[string]string{"a": "b"}}))
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("two")}))

	msgs := b.stored("/default/t")
	is.Equal(len(msgs), 2)
	m := msgs[0]
	is.Equal(string(m.GetPayload()), "one")
	is.Equal(m.GetProducerName(), "prod")
	is.Equal(m.GetMsgId().GetTopicName(), "/default/t")
	is.Equal(m.GetMsgId().GetBrokerAddr(), b.url)
	is.True(m.GetMsgId().GetProducerId() != 0)
	is.Equal(m.GetRoutingKey(), "k1")
	is.Equal(m.GetAttributes()["a"], "b")
	is.True(time.UnixMilli(int64(m.GetPublishTime())).After(before))
	is.True(m.SchemaId == nil)
	is.True(msgs[1].RoutingKey == nil)                       // no key, no routing_key
	is.True(msgs[1].GetRequestId() > m.GetRequestId())       // per-producer counter
	is.Equal(msgs[1].GetMsgId().GetTopicOffset(), uint64(1)) // offsets dense from 0
}

func TestPartitionedProducerNamesAndRouting(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	c := newTestClient(t, testConfig(b.url))
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/p", Name: "prod", Partitions: 3, Dispatch: Reliable})
	is.Equal(p.Partitions(), 3)
	is.Equal(p.Topics(), []string{"/default/p-part-0", "/default/p-part-1", "/default/p-part-2"})

	// Keyless: round-robin from partition 0.
	for range 3 {
		is.NoErr(p.Send(context.Background(), Message{Payload: []byte("x")}))
	}
	for i := range 3 {
		msgs := b.stored(PartitionTopic("/default/p", i))
		is.Equal(len(msgs), 1)
		is.Equal(msgs[0].GetProducerName(), "prod-"+string(rune('0'+i))) // "{name}-{i}", as the official clients
	}
	// Keyed: FNV-1a 64 modulo 3.
	for _, key := range []string{"a", "foobar", "order-17"} {
		part := PartitionForKey(key, 3)
		n := len(b.stored(PartitionTopic("/default/p", part)))
		is.NoErr(p.Send(context.Background(), Message{Payload: []byte(key), Key: key}))
		is.Equal(len(b.stored(PartitionTopic("/default/p", part))), n+1)
	}
}

func TestSendRecreatesProducerAfterBrokerRestart(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	c := newTestClient(t, testConfig(b.url))
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("before")}))
	is.Equal(b.callCount(mCreateProducer), 1)

	b.restart() // the broker forgets the producer: the next send gets NOT_FOUND

	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("after")}))
	is.Equal(b.callCount(mCreateProducer), 2)
	msgs := b.stored("/default/t")
	is.Equal(len(msgs), 2)
	is.Equal(string(msgs[1].GetPayload()), "after")
	is.True(msgs[1].GetMsgId().GetProducerId() != msgs[0].GetMsgId().GetProducerId()) // a new broker-side producer
}

func TestHealthCloseRecreatesProducer(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	cfg := testConfig(b.url)
	cfg.HealthInterval = 10 * time.Millisecond
	c := newTestClient(t, cfg)
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("a")}))
	oldID := p.parts[0].cur.Load().id

	b.restart() // health check now answers CLOSE
	eventually(t, "the producer re-created after CLOSE", func() bool { return p.parts[0].cur.Load().id != oldID })
	is.Equal(b.callCount(mCreateProducer), 2)
	sends := b.callCount(mSendMessage)
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("b")}))
	is.Equal(b.callCount(mSendMessage), sends+1) // no NOT_FOUND round trip: already healed
}

func TestNamespaceMissingIsPermanent(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	c := newTestClient(t, testConfig(b.url))
	_, err := c.NewProducer(context.Background(), ProducerOptions{Topic: "/nope/t", Name: "prod", Dispatch: Reliable})
	is.True(errors.Is(err, ErrNamespaceNotFound))
	is.True(!IsTransient(err))
	is.True(strings.Contains(err.Error(), "CreateNamespace"))
	is.Equal(b.callCount(mCreateProducer), 1) // not retried
}

func TestStrategyMismatch(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	b.createTopic("/default/t", danubepb.DispatchStrategy_NonReliable)
	c := newTestClient(t, testConfig(b.url))
	_, err := c.NewProducer(context.Background(), ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	is.True(errors.Is(err, ErrStrategyMismatch))
}

func TestMessageTooLargeIsRefusedBeforeSending(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	c := newTestClient(t, testConfig(b.url))
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})

	big := Message{Payload: make([]byte, MaxMessageSize)}
	err := p.Send(context.Background(), big)
	is.True(errors.Is(err, ErrMessageTooLarge))
	is.True(strings.Contains(err.Error(), "4194304"))
	err = p.SendAsync(context.Background(), big, func(error) { t.Error("done called for a refused message") })
	is.True(errors.Is(err, ErrMessageTooLarge))
	is.Equal(b.callCount(mSendMessage), 0)

	// Just under the limit goes through the exact size check and is sent.
	is.NoErr(p.Send(context.Background(), Message{Payload: make([]byte, MaxMessageSize-200)}))
}

func TestOutOfRangeMapsToMessageTooLarge(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	c := newTestClient(t, testConfig(b.url))
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	b.failNextCalls(mSendMessage, status.Error(codes.OutOfRange, "Error, decoded message length too large"))
	err := p.Send(context.Background(), Message{Payload: []byte("x")})
	is.True(errors.Is(err, ErrMessageTooLarge))
	is.Equal(b.callCount(mSendMessage), 1)
}

func TestSendRetriesTransientErrors(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	c := newTestClient(t, testConfig(b.url))
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	b.failNextCalls(mSendMessage,
		status.Error(codes.Unavailable, "busy"),
		status.Error(codes.ResourceExhausted, "slow down"),
		status.Error(codes.DeadlineExceeded, "late"))
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("x")}))
	is.Equal(b.callCount(mSendMessage), 4)
	is.Equal(len(b.stored("/default/t")), 1)
}

func TestSendPermanentErrorIsNotRetried(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	c := newTestClient(t, testConfig(b.url))
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	b.failNextCalls(mSendMessage, status.Error(codes.PermissionDenied, "Unable to publish the message: denied"))
	err := p.Send(context.Background(), Message{Payload: []byte("x")})
	is.Equal(status.Code(err), codes.PermissionDenied)
	is.True(strings.Contains(err.Error(), `"/default/t"`))
	is.Equal(b.callCount(mSendMessage), 1)
}

func TestSendRetryGivesUpAfterPolicy(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	cfg := testConfig(b.url)
	cfg.Retry.MaxRetries = 2
	c := newTestClient(t, cfg)
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	b.sendHook = func(context.Context, *danubepb.StreamMessage) error { return status.Error(codes.Unavailable, "down") }
	err := p.Send(context.Background(), Message{Payload: []byte("x")})
	is.Equal(status.Code(err), codes.Unavailable)
	is.True(IsTransient(err))
	is.Equal(b.callCount(mSendMessage), 3)
	is.Equal(b.callCount(mCreateProducer), 2) // one re-registration attempt, not a nested retry loop
}

func TestSendBackoffHonoursContext(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	cfg := testConfig(b.url)
	cfg.Retry = RetryPolicy{MaxRetries: -1, Base: time.Hour, Max: time.Hour} // only ctx can end it
	c := newTestClient(t, cfg)
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	b.sendHook = func(context.Context, *danubepb.StreamMessage) error { return status.Error(codes.Unavailable, "down") }

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := p.Send(ctx, Message{Payload: []byte("x")})
	is.True(errors.Is(err, context.DeadlineExceeded))
	is.True(strings.Contains(err.Error(), "down")) // the last broker error is kept
	is.True(time.Since(start) < 5*time.Second)     // not the hour-long backoff
}

func TestUnreachableBrokerFailsWithinContext(t *testing.T) {
	is := is.New(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	is.NoErr(err)
	url := "http://" + lis.Addr().String()
	is.NoErr(lis.Close()) // nothing listens there now

	cfg := testConfig(url)
	cfg.Retry = RetryPolicy{MaxRetries: -1, Base: 10 * time.Millisecond, Max: 50 * time.Millisecond}
	c := newTestClient(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err = c.NewProducer(ctx, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	is.True(errors.Is(err, ErrBrokerUnreachable))
	is.True(strings.Contains(err.Error(), url))
	is.True(IsTransient(err))

	// With a bounded policy it gives up on its own, still naming the broker.
	cfg.Retry = RetryPolicy{MaxRetries: 1, Base: time.Millisecond, Max: time.Millisecond}
	c2 := newTestClient(t, cfg)
	_, err = c2.Partitions(context.Background(), "/default/t")
	is.True(errors.Is(err, ErrBrokerUnreachable))
	is.True(strings.Contains(err.Error(), url))
}

func TestSchemaIsResolvedAndStamped(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	c := newTestClient(t, testConfig(b.url))

	p := newTestProducer(t, c, ProducerOptions{
		Topic: "/default/s", Name: "latest", Dispatch: Reliable,
		Schema: &SchemaRef{Subject: "orders"},
	})
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("{}")}))
	m := b.stored("/default/s")[0]
	is.Equal(m.GetSchemaId(), uint64(7))
	is.Equal(m.GetSchemaVersion(), uint32(3))

	p2 := newTestProducer(t, c, ProducerOptions{
		Topic: "/default/s2", Name: "pinned", Dispatch: Reliable,
		Schema: &SchemaRef{Subject: "orders", Version: 2},
	})
	is.NoErr(p2.Send(context.Background(), Message{Payload: []byte("{}")}))
	is.Equal(b.stored("/default/s2")[0].GetSchemaVersion(), uint32(2))

	_, err := c.NewProducer(context.Background(), ProducerOptions{
		Topic: "/default/s3", Name: "x", Dispatch: Reliable,
		Schema: &SchemaRef{Subject: "orders", MinVersion: 4},
	})
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "minimum 4"))
	_, err = c.NewProducer(context.Background(), ProducerOptions{
		Topic: "/default/s3", Name: "x", Dispatch: Reliable,
		Schema: &SchemaRef{Subject: "orders", Version: 9},
	})
	is.True(strings.Contains(err.Error(), "version 9 does not exist"))
}

func TestProducerOptionsAreValidated(t *testing.T) {
	b := newFakeBroker(t)
	c := newTestClient(t, testConfig(b.url))
	for _, o := range []ProducerOptions{
		{Topic: "bad", Name: "p"},
		{Topic: "/default/t"},
		{Topic: "/default/t", Name: "p", Partitions: -1},
		{Topic: "/default/t", Name: "p", Dispatch: 7},
		{Topic: "/default/t", Name: "p", MaxInFlight: -1},
		{Topic: "/default/t", Name: "p", Ordering: 9},
		{Topic: "/default/t", Name: "p", Schema: &SchemaRef{}},
	} {
		if _, err := c.NewProducer(context.Background(), o); err == nil {
			t.Errorf("NewProducer(%+v) succeeded, want an error", o)
		}
	}
	if n := b.callCount(mCreateProducer); n != 0 {
		t.Errorf("%d CreateProducer calls for invalid options", n)
	}
}

func TestProducerSendAfterClose(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	c := newTestClient(t, testConfig(b.url))
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	is.NoErr(p.Close(context.Background()))
	is.True(errors.Is(p.Send(context.Background(), Message{}), ErrClosed))
	is.True(errors.Is(p.SendAsync(context.Background(), Message{}, nil), ErrClosed))
	is.NoErr(p.Close(context.Background())) // idempotent
}

// Send holds no lock across the call: concurrent Sends are on the wire together.
func TestConcurrentSendsAreNotSerialised(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	const n = 8
	arrived := make(chan struct{}, n)
	release := make(chan struct{})
	b.sendHook = func(context.Context, *danubepb.StreamMessage) error {
		arrived <- struct{}{}
		<-release
		return nil
	}
	c := newTestClient(t, testConfig(b.url))
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	errs := make(chan error, n)
	for range n {
		go func() { errs <- p.Send(context.Background(), Message{Payload: []byte("x")}) }()
	}
	for range n {
		<-arrived // all n calls reach the broker before any is answered
	}
	close(release)
	for range n {
		is.NoErr(<-errs)
	}
}

func TestPartitionFailuresAreSummarised(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	c := newTestClient(t, testConfig(b.url))
	_, err := c.NewProducer(context.Background(), ProducerOptions{Topic: "/nope/t", Name: "p", Partitions: 4, Dispatch: Reliable})
	is.True(errors.Is(err, ErrNamespaceNotFound))
	is.True(strings.Contains(err.Error(), "4 of 4 partitions failed"))
	is.Equal(strings.Count(err.Error(), "Unable to find the namespace"), 1)
}
