package danubetest

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

func subscribeErr(t *testing.T, c clients, topic, sub, name string, typ danubepb.ConsumerRequest_SubscriptionType) error {
	t.Helper()
	_, err := c.cons.Subscribe(ctxT(t), &danubepb.ConsumerRequest{TopicName: topic, ConsumerName: name, Subscription: sub, SubscriptionType: typ})
	return err
}

func healthOf(t *testing.T, c clients, id uint64) danubepb.HealthCheckResponse_ClientStatus {
	t.Helper()
	resp, err := c.health.HealthCheck(ctxT(t), &danubepb.HealthCheckRequest{Client: danubepb.HealthCheckRequest_Consumer, Id: id})
	if err != nil {
		t.Fatalf("HealthCheck: %v", err)
	}
	return resp.GetStatus()
}

func TestSubscribeMissingTopic(t *testing.T) {
	b := newBroker(t)
	c := connect(t, b)
	err := subscribeErr(t, c, "/default/none", "s", "c", shared)
	wantCode(t, err, codes.NotFound, "Unable to find the topic: /default/none")
	is.New(t).Equal(len(b.Topics()), 1) // only the system topic: Subscribe never creates
}

func TestNewSubscriptionStartsAtLatest(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	p := c.producer(t, "/default/l", "p", true)
	p.send("before")
	cons := c.consume(t, "/default/l", "s", "c", exclusive)
	p.send("after")
	m := cons.next()
	is.Equal(string(m.GetPayload()), "after")
	is.Equal(m.GetMsgId().GetTopicOffset(), uint64(1))
}

func TestExclusiveRejectsOtherNames(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	c.producer(t, "/default/e", "p", true)
	first := c.consume(t, "/default/e", "s", "c1", exclusive)
	err := subscribeErr(t, c, "/default/e", "s", "c2", exclusive)
	const denied = "Not able to subscribe to the topic /default/e due to Not allowed to add the Consumer: c2, the Exclusive subscription can't be shared with other consumers"
	wantCode(t, err, codes.PermissionDenied, denied)

	// Still refused after the first consumer's stream is gone: entries are never removed.
	first.cancel()
	eventually(t, "consumer inactive", func() bool { return healthOf(t, c, first.id) == danubepb.HealthCheckResponse_CLOSE })
	err = subscribeErr(t, c, "/default/e", "s", "c2", shared)
	wantCode(t, err, codes.PermissionDenied, denied)

	// The same name takes over, with the same id.
	is.Equal(c.subscribe(t, "/default/e", "s", "c1", exclusive), first.id)
	is.Equal(healthOf(t, c, first.id), danubepb.HealthCheckResponse_OK)
}

func TestTakeoverEndsOldStreamWithOK(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	p := c.producer(t, "/default/t", "p", true)

	t.Run("by Subscribe", func(t *testing.T) {
		old := c.consume(t, "/default/t", "s1", "c", exclusive)
		id := c.subscribe(t, "/default/t", "s1", "c", exclusive)
		is.Equal(id, old.id)
		is.True(errors.Is(old.waitEnd(), io.EOF)) // status OK reaches the client as EOF
	})
	t.Run("by a second ReceiveMessages", func(t *testing.T) {
		old := c.consume(t, "/default/t", "s2", "c", exclusive)
		fresh := c.stream(t, old.id, "/default/t", "s2")
		is.True(errors.Is(old.waitEnd(), io.EOF))
		p.send("x")
		is.Equal(string(fresh.next().GetPayload()), "x")
	})
	t.Run("unknown consumer id", func(t *testing.T) {
		st, err := c.cons.ReceiveMessages(ctxT(t), &danubepb.ReceiveRequest{ConsumerId: 99})
		is.NoErr(err)
		_, err = st.Recv()
		wantCode(t, err, codes.NotFound, "The consumer with the id 99 does not exist")
	})
}

func TestStreamCloseRedeliversToReconnectedConsumer(t *testing.T) {
	is := is.New(t)
	b := newBroker(t, WithHeartbeat(10*time.Millisecond))
	c := connect(t, b)
	p := c.producer(t, "/default/r", "p", true)
	cons := c.consume(t, "/default/r", "s", "c", exclusive)
	p.send("a", "b")
	is.Equal(string(cons.next().GetPayload()), "a")
	cons.cancel()
	eventually(t, "consumer inactive", func() bool { return healthOf(t, c, cons.id) == danubepb.HealthCheckResponse_CLOSE })

	again := c.consume(t, "/default/r", "s", "c", exclusive)
	is.Equal(again.id, cons.id)
	got := map[uint64]bool{}
	for range 2 {
		m := again.next()
		got[m.GetMsgId().GetTopicOffset()] = true
		again.ack(m)
	}
	is.Equal(got, map[uint64]bool{0: true, 1: true})
}

func TestSharedRoundRobin(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	p := c.producer(t, "/default/sh", "p", true)
	c1 := c.consume(t, "/default/sh", "s", "c1", shared)
	c2 := c.consume(t, "/default/sh", "s", "c2", shared)
	p.send("0", "1", "2", "3")
	n1, n2 := 0, 0
	for range 2 {
		c1.ack(c1.next())
		n1++
		c2.ack(c2.next())
		n2++
	}
	is.Equal(n1, 2)
	is.Equal(n2, 2)

	// A closed consumer's messages go to the remaining one.
	c2.cancel()
	eventually(t, "c2 inactive", func() bool { return healthOf(t, c, c2.id) == danubepb.HealthCheckResponse_CLOSE })
	p.send("4", "5")
	is.Equal(string(c1.next().GetPayload()), "4")
	is.Equal(string(c1.next().GetPayload()), "5")
}

func TestFailoverFirstConsumerStaysActive(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	p := c.producer(t, "/default/f", "p", true)
	first := c.consume(t, "/default/f", "s", "c1", failover)
	standby := c.consume(t, "/default/f", "s", "c2", failover)
	p.send("a")
	first.ack(first.next())

	// No standby promotion: with the first consumer gone, nothing is dispatched.
	first.cancel()
	eventually(t, "first inactive", func() bool { return healthOf(t, c, first.id) == danubepb.HealthCheckResponse_CLOSE })
	p.send("b")
	standby.none(100 * time.Millisecond)
	st, _ := b.Subscription("/default/f", "s")
	is.Equal(st.InFlight, 0)

	back := c.consume(t, "/default/f", "s", "c1", failover)
	is.Equal(string(back.next().GetPayload()), "b")
}

func TestAckAndNackErrors(t *testing.T) {
	b := newBroker(t)
	c := connect(t, b)
	c.producer(t, "/default/a", "p", true)
	c.subscribe(t, "/default/a", "s", "c", shared)
	ctx := ctxT(t)

	_, err := c.cons.Ack(ctx, &danubepb.AckRequest{MsgId: &danubepb.MsgID{TopicName: "/default/zz"}, SubscriptionName: "s"})
	wantCode(t, err, codes.Internal, "Error acknowledging message: Topic /default/zz not found in registry")
	_, err = c.cons.Ack(ctx, &danubepb.AckRequest{MsgId: &danubepb.MsgID{TopicName: "/default/a"}, SubscriptionName: "zz"})
	wantCode(t, err, codes.Internal, "Error acknowledging message: Subscription not found")
	_, err = c.cons.Nack(ctx, &danubepb.NackRequest{MsgId: &danubepb.MsgID{TopicName: "/default/a"}, SubscriptionName: "zz"})
	wantCode(t, err, codes.Internal, "Error negatively acknowledging message: Subscription not found")

	// Unknown offsets are ignored with OK.
	is := is.New(t)
	resp, err := c.cons.Ack(ctx, &danubepb.AckRequest{RequestId: 5, MsgId: &danubepb.MsgID{TopicName: "/default/a", TopicOffset: 77}, SubscriptionName: "s"})
	is.NoErr(err)
	is.Equal(resp.GetRequestId(), uint64(5))
	_, err = c.cons.Nack(ctx, &danubepb.NackRequest{MsgId: &danubepb.MsgID{TopicName: "/default/a", TopicOffset: 77}, SubscriptionName: "s"})
	is.NoErr(err)
}
