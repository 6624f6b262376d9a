package danubeclient

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// The answers of a broker v0.15.1 in cluster mode that ask the client to look
// the topic up again (broker_service.rs, topic.rs, topic_registry.rs).
var (
	errRedoCreated   = status.Error(codes.Unavailable, "The topic metadata was created, need to redo the lookup to find the correct broker")
	errRedoElsewhere = status.Error(codes.Unavailable, "The topic exists but is served by another broker, redo the Lookup request")
	errDraining      = status.Error(codes.PermissionDenied, "Unable to publish the message: Topic /default/t is draining or closed; retry lookup/moved")
	errNotInRegistry = status.Error(codes.PermissionDenied, "Unable to publish the message: Topic /default/t not found in registry")
	errProducerGone  = status.Error(codes.NotFound, "The producer with id 1001 does not exist")
	errAckMoved      = status.Error(codes.Internal, "Error acknowledging message: Topic /default/t not found in registry")
	errNackMoved     = status.Error(codes.Internal, "Error negatively acknowledging message: Topic /default/t not found in registry")
	errAckNoSub      = status.Error(codes.Internal, "Error acknowledging message: Subscription not found")
)

// fakeCluster is a service broker that answers every lookup with a scripted
// owner: nil stands for a topic the cluster has not assigned yet (NOT_FOUND).
// The last entry of the script repeats.
type fakeCluster struct {
	front *fakeBroker

	mu     sync.Mutex
	script []*fakeBroker
}

func newFakeCluster(t *testing.T, owners ...*fakeBroker) *fakeCluster {
	t.Helper()
	fc := &fakeCluster{front: newFakeBroker(t), script: owners}
	fc.front.lookup = func(topic string) (*danubepb.TopicLookupResponse, error) {
		fc.mu.Lock()
		owner := fc.script[0]
		if len(fc.script) > 1 {
			fc.script = fc.script[1:]
		}
		fc.mu.Unlock()
		if owner == nil {
			return nil, status.Errorf(codes.NotFound, "Unable to find the requested topic: %s", topic)
		}
		return &danubepb.TopicLookupResponse{
			ResponseType: danubepb.TopicLookupResponse_Redirect, ConnectUrl: owner.url, BrokerUrl: owner.url,
		}, nil
	}
	return fc
}

// moveTo scripts the next lookups.
func (fc *fakeCluster) moveTo(owners ...*fakeBroker) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.script = owners
}

// patientConfig retries fast and until the caller's context ends, so a test
// waits on the healing itself, however loaded the machine.
func patientConfig(url string, logs *logRecorder) Config {
	cfg := testConfig(url)
	cfg.Retry = RetryPolicy{MaxRetries: -1, Base: time.Millisecond, Max: 20 * time.Millisecond}
	cfg.Logger = slog.New(logs)
	return cfg
}

// healWithin bounds a call that heals inside the client.
func healWithin(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const redoLog = "does not serve the topic"

// A new topic in cluster mode: the service broker creates its metadata and
// asks for another lookup; the lookup finds nothing until the leader has
// assigned the topic, then the owner.
func TestNewProducerFollowsANewTopicToItsOwner(t *testing.T) {
	is := is.New(t)
	owner := newFakeBroker(t)
	fc := newFakeCluster(t, nil, nil, owner)
	fc.front.refuse(mCreateProducer, errRedoCreated)
	logs := &logRecorder{}
	c := newTestClient(t, patientConfig(fc.front.url, logs))

	p, err := c.NewProducer(healWithin(t), ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	is.NoErr(err)
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("x")}))

	is.Equal(len(owner.stored("/default/t")), 1)
	is.Equal(fc.front.callCount(mCreateProducer), 2) // two lookups found no owner yet
	is.Equal(owner.callCount(mCreateProducer), 1)
	is.Equal(logs.count(slog.LevelDebug, redoLog), 2) // one line per redo
	is.Equal(logs.atLeast(slog.LevelInfo), 0)
}

func TestSubscribeFollowsTheTopicToItsOwner(t *testing.T) {
	is := is.New(t)
	owner := newFakeBroker(t)
	owner.createTopic("/default/t", danubepb.DispatchStrategy_Reliable)
	fc := newFakeCluster(t, nil, owner)
	fc.front.refuse(mSubscribe, errRedoElsewhere)
	fc.front.partitions = func(string) []string { return []string{"/default/t"} }
	logs := &logRecorder{}
	c := newTestClient(t, patientConfig(fc.front.url, logs))

	co, err := c.Subscribe(healWithin(t), ConsumerOptions{Topic: "/default/t", Name: "c", Subscription: "s"})
	is.NoErr(err)
	t.Cleanup(func() { _ = co.Close() })
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("x")}))
	is.Equal(string(receive(t, co).Payload), "x")
	is.Equal(fc.front.callCount(mSubscribe), 1)
	is.Equal(logs.count(slog.LevelDebug, redoLog), 1)
}

// A topic moves while a producer sends: the old owner answers with one of
// the ways a broker says so, and the send lands at the new owner.
func TestSendFollowsTheTopicWhenItMoves(t *testing.T) {
	for _, answer := range []error{errDraining, errNotInRegistry, errProducerGone, errRedoElsewhere} {
		t.Run(status.Convert(answer).Message(), func(t *testing.T) {
			is := is.New(t)
			from, to := newFakeBroker(t), newFakeBroker(t)
			fc := newFakeCluster(t, from)
			c := newTestClient(t, patientConfig(fc.front.url, &logRecorder{}))
			p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
			is.NoErr(p.Send(context.Background(), Message{Payload: []byte("before")}))

			fc.moveTo(nil, to) // unassigned for one lookup, then at its new owner
			from.refuse(mSendMessage, answer)
			from.refuse(mCreateProducer, errRedoElsewhere)
			fc.front.refuse(mCreateProducer, errRedoElsewhere)

			is.NoErr(p.Send(healWithin(t), Message{Payload: []byte("after")}))
			is.Equal(len(from.stored("/default/t")), 1)
			msgs := to.stored("/default/t")
			is.Equal(len(msgs), 1)
			is.Equal(string(msgs[0].GetPayload()), "after")
			is.Equal(msgs[0].GetMsgId().GetBrokerAddr(), to.url) // stamped with the new owner
		})
	}
}

// A topic that never settles: every retry of the policy is spent, one lookup
// and one send per retry, and the error says which topic, which broker
// answered what, and what to check.
func TestSendGivesUpNamingTheTopicAndTheBroker(t *testing.T) {
	is := is.New(t)
	owner := newFakeBroker(t)
	fc := newFakeCluster(t, owner)
	c := newTestClient(t, testConfig(fc.front.url)) // 5 retries
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	owner.refuse(mSendMessage, errDraining)
	owner.refuse(mCreateProducer, errRedoElsewhere)
	lookups := fc.front.callCount(mLookup)

	err := p.Send(context.Background(), Message{Payload: []byte("x")})
	is.True(errors.Is(err, ErrTopicMoved))
	is.Equal(status.Code(err), codes.PermissionDenied) // the broker's answer stays in the chain
	for _, want := range []string{`"/default/t"`, owner.url, "retry lookup/moved", "reachable", "gave up after 5 retries"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	is.Equal(owner.callCount(mSendMessage), 1+5)                  // the first send, then one per retry
	is.Equal(fc.front.callCount(mLookup)-lookups, 5)              // one lookup per retry: no storm
	is.Equal(owner.callCount(mCreateProducer), 1+5)               // the creation, then one per retry
	is.True(!strings.Contains(err.Error(), "broker unreachable")) // it was reached every time
}

func TestNewProducerGivesUpWhenNoBrokerTakesTheTopic(t *testing.T) {
	is := is.New(t)
	fc := newFakeCluster(t, nil)
	fc.front.refuse(mCreateProducer, errRedoElsewhere)
	c := newTestClient(t, testConfig(fc.front.url))

	_, err := c.NewProducer(context.Background(), ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	is.True(errors.Is(err, ErrTopicMoved))
	is.True(strings.Contains(err.Error(), `create producer "prod" on topic "/default/t"`))
	is.True(strings.Contains(err.Error(), fc.front.url))
	is.Equal(fc.front.callCount(mCreateProducer), 6) // MaxRetries 5
	is.Equal(fc.front.callCount(mLookup), 6)
}

// movingTopic is a Reliable topic "/default/t" served by from, with a
// consumer (subscription "s") and a producer through the cluster's front
// broker; to already has the topic, ready for a move.
type movingTopic struct {
	from, to *fakeBroker
	fc       *fakeCluster
	logs     *logRecorder
	co       *Consumer
	p        *Producer
}

func newMovingTopic(t *testing.T) *movingTopic {
	t.Helper()
	mt := &movingTopic{from: newFakeBroker(t), to: newFakeBroker(t), logs: &logRecorder{}}
	mt.from.createTopic("/default/t", danubepb.DispatchStrategy_Reliable)
	mt.to.createTopic("/default/t", danubepb.DispatchStrategy_Reliable)
	mt.fc = newFakeCluster(t, mt.from)
	mt.fc.front.partitions = func(string) []string { return []string{"/default/t"} }
	c := newTestClient(t, patientConfig(mt.fc.front.url, mt.logs))
	mt.co = newTestConsumer(t, c, ConsumerOptions{Topic: "/default/t", Name: "c", Subscription: "s"})
	mt.p = newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	return mt
}

// The old owner's stream ends when the topic moves; the consumer looks the
// topic up again and receives from the new owner.
func TestConsumerFollowsTheTopicWhenItMoves(t *testing.T) {
	is := is.New(t)
	mt := newMovingTopic(t)
	from, to, fc, co, p := mt.from, mt.to, mt.fc, mt.co, mt.p
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("before")}))
	is.Equal(string(receive(t, co).Payload), "before")

	fc.moveTo(nil, to)
	from.refuse(mSubscribe, errRedoElsewhere)
	from.refuse(mSendMessage, errDraining)
	from.refuse(mCreateProducer, errRedoElsewhere)
	fc.front.refuse(mSubscribe, errRedoElsewhere)
	fc.front.refuse(mCreateProducer, errRedoElsewhere)
	from.endStreams()

	eventually(t, "the consumer attached at the new owner", func() bool { return to.liveStreams() == 1 })
	is.NoErr(p.Send(healWithin(t), Message{Payload: []byte("after")}))
	is.Equal(string(receive(t, co).Payload), "after")
	is.Equal(to.callCount(mSubscribe), 1)
}

// An ack or nack at the old owner after the topic moved: the client
// resubscribes at the new owner (the stream may still look alive) and sends
// the ack there.
func TestAckAndNackFollowTheTopicWhenItMoves(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		answer error
		settle func(ctx context.Context, co *Consumer, id MessageID) error
		seen   func(b *fakeBroker) []uint64
	}{
		{
			"ack", mAck, errAckMoved, func(ctx context.Context, co *Consumer, id MessageID) error { return co.Ack(ctx, id) },
			func(b *fakeBroker) []uint64 { return b.ackedOffsets() },
		},
		{"nack", mNack, errNackMoved, func(ctx context.Context, co *Consumer, id MessageID) error {
			return co.Nack(ctx, id, 0, "retry")
		}, func(b *fakeBroker) []uint64 { return b.nackedOffsets() }},
		{"ack where the topic came back", mAck, errAckNoSub, func(ctx context.Context, co *Consumer, id MessageID) error {
			return co.Ack(ctx, id)
		}, func(b *fakeBroker) []uint64 { return b.ackedOffsets() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			mt := newMovingTopic(t)
			from, to, fc, co, p, logs := mt.from, mt.to, mt.fc, mt.co, mt.p, mt.logs
			is.NoErr(p.Send(context.Background(), Message{Payload: []byte("m")}))
			m := receive(t, co)

			fc.moveTo(to)
			from.refuse(tc.method, tc.answer)
			from.refuse(mSubscribe, errRedoElsewhere)

			is.NoErr(tc.settle(healWithin(t), co, m.ID))
			is.True(slices.Contains(tc.seen(to), m.ID.Offset))
			is.Equal(len(tc.seen(from)), 0)
			is.Equal(to.callCount(mSubscribe), 1) // resubscribed there
			is.True(logs.count(slog.LevelDebug, redoLog) >= 1)
		})
	}
}

// Producers, consumers and partitions healing at once look a topic up with
// one call at a time; a caller that gives up does not end the shared call.
func TestLookupsOfATopicShareOneCall(t *testing.T) {
	is := is.New(t)
	owner := newFakeBroker(t)
	front := newFakeBroker(t)
	release := make(chan struct{})
	entered := make(chan struct{}, 64)
	var inFlight, most atomic.Int32
	front.lookup = func(string) (*danubepb.TopicLookupResponse, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		entered <- struct{}{}
		<-release
		return &danubepb.TopicLookupResponse{
			ResponseType: danubepb.TopicLookupResponse_Redirect, ConnectUrl: owner.url, BrokerUrl: owner.url,
		}, nil
	}
	c := newTestClient(t, testConfig(front.url))

	impatient, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		_, err := c.lookupOnce(impatient, "/default/t")
		gaveUp <- err
	}()
	<-entered
	const callers = 8
	var wg sync.WaitGroup
	routes := make([]*route, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() { routes[i], errs[i] = c.lookupOnce(context.Background(), "/default/t") })
	}
	cancel()
	is.True(errors.Is(<-gaveUp, context.Canceled))
	close(release)
	wg.Wait()
	for i := range callers {
		is.NoErr(errs[i])
		is.Equal(routes[i].connectURL, owner.url)
	}
	is.Equal(most.Load(), int32(1))
}
