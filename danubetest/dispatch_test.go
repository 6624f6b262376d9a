package danubetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/adminpb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

func payloads(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(i)
	}
	return out
}

func TestWindowLimitsInFlight(t *testing.T) {
	is := is.New(t)
	b := newBroker(t, WithMaxUnacked(3))
	c := connect(t, b)
	p := c.producer(t, "/default/w", "p", true)
	cons := c.consume(t, "/default/w", "s", "c", shared)
	p.send(payloads(5)...)
	var got []*danubepb.StreamMessage
	for range 3 {
		got = append(got, cons.next())
	}
	cons.none(50 * time.Millisecond) // window full: the 4th waits for an ack
	st, _ := b.Subscription("/default/w", "s")
	is.Equal(st.InFlight, 3)
	is.Equal(st.NextOffset, uint64(3))

	cons.ack(got[1]) // out of order: cursor stays
	m := cons.next()
	is.Equal(m.GetMsgId().GetTopicOffset(), uint64(3))
	st, _ = b.Subscription("/default/w", "s")
	is.Equal(st.SafeCursor, int64(-1))

	cons.ack(got[0]) // 0 and 1 acked: cursor jumps to 1
	eventually(t, "safe cursor 1", func() bool { st, _ := b.Subscription("/default/w", "s"); return st.SafeCursor == 1 })
	is.Equal(cons.next().GetMsgId().GetTopicOffset(), uint64(4))
	cons.ack(got[1]) // late duplicate ack: ignored
}

func TestNackRedeliversSameOffsetAfterBaseDelay(t *testing.T) {
	is := is.New(t)
	base := 150 * time.Millisecond
	b := newBroker(t, WithRedeliveryBaseDelay(base), WithHeartbeat(10*time.Millisecond))
	c := connect(t, b)
	p := c.producer(t, "/default/n", "p", true)
	cons := c.consume(t, "/default/n", "s", "c", exclusive)
	p.send("a", "b")
	a := cons.next()
	is.Equal(string(cons.next().GetPayload()), "b")

	start := time.Now()
	cons.nack(a, 0) // 0 still waits for the policy delay
	again := cons.next()
	is.True(time.Since(start) >= base)
	is.Equal(again.GetMsgId().GetTopicOffset(), a.GetMsgId().GetTopicOffset())
	is.Equal(string(again.GetPayload()), "a")

	start = time.Now()
	cons.nack(again, 0) // 2nd attempt: base*2
	third := cons.next()
	is.True(time.Since(start) >= 2*base)
	is.Equal(third.GetMsgId().GetTopicOffset(), uint64(0))
}

func TestNackDelayCappedByMax(t *testing.T) {
	is := is.New(t)
	b := newBroker(t, WithRedeliveryBaseDelay(time.Millisecond), WithRedeliveryMaxDelay(50*time.Millisecond), WithHeartbeat(5*time.Millisecond))
	c := connect(t, b)
	p := c.producer(t, "/default/nm", "p", true)
	cons := c.consume(t, "/default/nm", "s", "c", exclusive)
	p.send("a")
	m := cons.next()
	start := time.Now()
	cons.nack(m, time.Hour) // requested delay above max: capped
	is.Equal(cons.next().GetMsgId().GetTopicOffset(), uint64(0))
	is.True(time.Since(start) < 5*time.Second)
}

func TestAckTimeoutRedelivery(t *testing.T) {
	is := is.New(t)
	b := newBroker(t, WithAckTimeout(50*time.Millisecond), WithRedeliveryBaseDelay(10*time.Millisecond), WithHeartbeat(10*time.Millisecond))
	c := connect(t, b)
	p := c.producer(t, "/default/at", "p", true)
	cons := c.consume(t, "/default/at", "s", "c", exclusive)
	p.send("a")
	first := cons.next()
	again := cons.next() // never acked: redelivered
	is.Equal(again.GetMsgId().GetTopicOffset(), first.GetMsgId().GetTopicOffset())
	cons.ack(again)
	cons.none(200 * time.Millisecond)
}

// exhaust nacks every delivery of offset 0 until it stops coming and
// returns the number of deliveries seen.
func exhaust(t *testing.T, cons *consumerHandle) int {
	t.Helper()
	n := 0
	for {
		select {
		case m := <-cons.msgs:
			if m.GetMsgId().GetTopicOffset() != 0 {
				t.Fatalf("unexpected offset %d", m.GetMsgId().GetTopicOffset())
			}
			n++
			cons.nack(m, 0)
		case <-time.After(300 * time.Millisecond):
			return n
		}
	}
}

func fastRetries() []Option {
	return []Option{WithRedeliveryBaseDelay(time.Millisecond), WithRedeliveryMaxDelay(2 * time.Millisecond), WithHeartbeat(5 * time.Millisecond)}
}

func TestRedeliveryLimitBlock(t *testing.T) {
	is := is.New(t)
	b := newBroker(t, fastRetries()...)
	c := connect(t, b)
	p := c.producer(t, "/default/blk", "p", true)
	cons := c.consume(t, "/default/blk", "s", "c", exclusive)
	p.send("poison")
	is.Equal(exhaust(t, cons), 6) // 1 delivery + 5 redeliveries
	st, _ := b.Subscription("/default/blk", "s")
	is.True(st.Blocked)
	p.send("next")
	cons.none(100 * time.Millisecond) // Block stops all new dispatch
}

func TestRedeliveryLimitDrop(t *testing.T) {
	is := is.New(t)
	b := newBroker(t, append(fastRetries(), WithPoisonPolicy(PoisonDrop), WithMaxRedeliveries(2))...)
	c := connect(t, b)
	p := c.producer(t, "/default/drp", "p", true)
	cons := c.consume(t, "/default/drp", "s", "c", exclusive)
	p.send("poison")
	is.Equal(exhaust(t, cons), 3)
	p.send("next")
	m := cons.next()
	is.Equal(string(m.GetPayload()), "next")
	eventually(t, "cursor past the dropped message", func() bool { st, _ := b.Subscription("/default/drp", "s"); return st.SafeCursor == 0 })
}

func TestRedeliveryLimitDeadLetter(t *testing.T) {
	is := is.New(t)
	b := newBroker(t, fastRetries()...)
	c := connect(t, b)
	p := c.producer(t, "/default/dl", "p", true)
	c.producer(t, "/default/dlq", "q", true)
	dlq := "/default/dlq"
	_, err := c.topics.SetSubscriptionFailurePolicy(ctxT(t), &adminpb.SetSubscriptionFailurePolicyRequest{
		Topic: "/default/dl", Subscription: "s",
		FailurePolicy: &adminpb.SubscriptionFailurePolicy{
			MaxRedeliveryCount: 1, AckTimeoutMs: 30000, BaseRedeliveryDelayMs: 1, MaxRedeliveryDelayMs: 2,
			BackoffStrategy: adminpb.SubscriptionBackoffStrategy_Fixed, DeadLetterTopic: &dlq,
			PoisonPolicy: adminpb.SubscriptionPoisonPolicy_DeadLetter,
		},
	})
	is.NoErr(err)
	dead := c.consume(t, dlq, "d", "c", exclusive)
	cons := c.consume(t, "/default/dl", "s", "c", exclusive)
	p.send("poison")
	is.Equal(exhaust(t, cons), 2)
	m := dead.next()
	is.Equal(string(m.GetPayload()), "poison")
	is.Equal(m.GetAttributes()["x-original-topic"], "/default/dl")
	is.Equal(m.GetAttributes()["x-original-subscription"], "s")
	is.Equal(m.GetAttributes()["x-original-topic-offset"], "0")
	is.Equal(m.GetAttributes()["x-poison-policy"], "dead_letter")
	is.Equal(m.GetAttributes()["x-delivery-attempt"], "2")
	is.Equal(m.GetMsgId().GetTopicName(), dlq)
}

func TestRedeliveryMayFollowLaterMessages(t *testing.T) {
	is := is.New(t)
	b := newBroker(t, fastRetries()...)
	c := connect(t, b)
	p := c.producer(t, "/default/ord", "p", true)
	cons := c.consume(t, "/default/ord", "s", "c", exclusive)
	p.send("0", "1", "2")
	m0 := cons.next()
	cons.nack(m0, 0)
	m1, m2 := cons.next(), cons.next()
	cons.ack(m1)
	// The newest (2) is acknowledged only after the redelivery: acking it
	// while 0 waits makes the dispatcher wait for the next publish, as the
	// real broker does (conformance's TestDispatcherWaitsForAPublishWhenTheNewestIsAcked).
	again := cons.next()
	cons.ack(again)
	cons.ack(m2)
	offs := []uint64{m1.GetMsgId().GetTopicOffset(), m2.GetMsgId().GetTopicOffset(), again.GetMsgId().GetTopicOffset()}
	is.Equal(offs, []uint64{1, 2, 0})
}
