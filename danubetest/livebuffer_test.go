package danubetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

func numbered(from, to int) []string {
	out := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprint(i))
	}
	return out
}

func offsetRange(from, to uint64) []uint64 {
	out := make([]uint64, 0, to-from)
	for o := from; o < to; o++ {
		out = append(out, o)
	}
	return out
}

// take receives n messages without acking them.
func (h *consumerHandle) take(n int) []*danubepb.StreamMessage {
	h.t.Helper()
	out := make([]*danubepb.StreamMessage, 0, n)
	for range n {
		out = append(out, h.next())
	}
	return out
}

// drain receives n messages, acks each and returns their offsets.
func (h *consumerHandle) drain(n int) []uint64 {
	h.t.Helper()
	out := make([]uint64, 0, n)
	for range n {
		m := h.next()
		h.ack(m)
		out = append(out, m.GetMsgId().GetTopicOffset())
	}
	return out
}

// holdAndPublish publishes 10 messages, holds them (the window is full),
// publishes 400 more and then acks the 10 in order. It returns the offsets
// held, which depend on where the subscription's reader is.
func (h *consumerHandle) holdAndPublish(p *producerHandle, from int) []uint64 {
	h.t.Helper()
	p.send(numbered(from, from+10)...)
	held := h.take(10)
	p.send(numbered(from+10, from+410)...)
	for _, m := range held {
		h.ack(m)
	}
	return offsetsOf(held)
}

func offsetsOf(msgs []*danubepb.StreamMessage) []uint64 {
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		out[i] = m.GetMsgId().GetTopicOffset()
	}
	return out
}

// subState is the state of subscription "s" on topic.
func subState(t *testing.T, b *Broker, topic string) SubscriptionState {
	t.Helper()
	st, ok := b.Subscription(topic, "s")
	if !ok {
		t.Fatalf("no subscription s on %s", topic)
	}
	return st
}

// quiet is how long a test watches for a delivery that must not come; the
// heartbeat is 10ms in these tests.
const quiet = 300 * time.Millisecond

// A consumer holding a full window stops the dispatcher's polls. Of the 400
// messages published meanwhile only the newest 256 are still in the live
// buffer when it acks: 10..153 are skipped for good, the safe cursor stays
// at 9, and once the window is empty the dispatcher waits for the next
// publish.
func TestLiveBufferSkipsOnLag(t *testing.T) {
	for _, typ := range []danubepb.ConsumerRequest_SubscriptionType{exclusive, shared, failover} {
		t.Run(typ.String(), func(t *testing.T) {
			is := is.New(t)
			b := newBroker(t, WithHeartbeat(10*time.Millisecond))
			c := connect(t, b)
			const topic = "/default/lag"
			p := c.producer(t, topic, "p", true)
			cons := c.consume(t, topic, "s", "c", typ)

			is.Equal(cons.holdAndPublish(p, 0), offsetRange(0, 10))
			is.Equal(cons.drain(256), offsetRange(154, 410)) // the newest 256
			cons.none(quiet)                                 // 10..153 never come

			st := subState(t, b, topic)
			is.Equal(st.Skipped, uint64(144))
			is.Equal(st.SafeCursor, int64(9)) // stuck before the gap
			is.True(st.Stalled)               // waiting in poll_next for the next publish

			p.send("410")
			is.Equal(cons.drain(1), []uint64{410})
			cons.none(quiet)
			is.Equal(subState(t, b, topic).SafeCursor, int64(9))
		})
	}
}

// A disconnected Exclusive consumer stops the polls too: what was published
// while it was away is cut to the newest 256 when it comes back.
func TestLiveBufferSkipsWhileDisconnected(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	const topic = "/default/away"
	p := c.producer(t, topic, "p", true)
	cons := c.consume(t, topic, "s", "c", exclusive)
	p.send("0")
	is.Equal(cons.drain(1), []uint64{0})
	cons.cancel()
	is.True(cons.waitEnd() != nil)
	eventually(t, "the consumer to be inactive", func() bool { return len(subState(t, b, topic).Active) == 0 })

	p.send(numbered(1, 401)...)
	back := c.consume(t, topic, "s", "c", exclusive) // takeover
	is.Equal(back.drain(256), offsetRange(145, 401))
	back.none(quiet)
	is.Equal(subState(t, b, topic).Skipped, uint64(144))
}

// A Shared subscription whose consumers are all inactive still polls: each
// pass puts one message into the window to retry later, so the first 10
// published while nobody is connected survive besides the newest 256.
func TestLiveBufferSharedWithoutActiveConsumers(t *testing.T) {
	is := is.New(t)
	b := newBroker(t, WithHeartbeat(10*time.Millisecond))
	c := connect(t, b)
	const topic = "/default/away-shared"
	p := c.producer(t, topic, "p", true)
	cons := c.consume(t, topic, "s", "c", shared)
	cons.cancel()
	is.True(cons.waitEnd() != nil)
	eventually(t, "the consumer to be inactive", func() bool { return len(subState(t, b, topic).Active) == 0 })

	for i := range 10 {
		p.send(fmt.Sprint(i))
		eventually(t, "the message in the window", func() bool { return subState(t, b, topic).InFlight == i+1 })
	}
	p.send(numbered(10, 410)...)
	back := c.consume(t, topic, "s", "c", shared)
	got := back.drain(266)
	is.Equal(got, append(offsetRange(0, 10), offsetRange(154, 410)...))
	back.none(quiet)
}

// WithLiveBuffer(0) makes the live reader unbounded: nothing is skipped.
func TestLiveBufferUnbounded(t *testing.T) {
	is := is.New(t)
	b := newBroker(t, WithLiveBuffer(0))
	c := connect(t, b)
	const topic = "/default/unbounded"
	p := c.producer(t, topic, "p", true)
	cons := c.consume(t, topic, "s", "c", exclusive)

	cons.holdAndPublish(p, 0)
	is.Equal(cons.drain(400), offsetRange(10, 410))
	st := subState(t, b, topic)
	is.Equal(st.Skipped, uint64(0))
	is.Equal(st.SafeCursor, int64(409))
}

// WithLiveBuffer(0) never blocks the dispatcher either: acking the newest
// message before an older one does not hold back the older one's
// redelivery.
func TestLiveBufferUnboundedNeverStalls(t *testing.T) {
	is := is.New(t)
	b := newBroker(t, WithLiveBuffer(0), WithHeartbeat(10*time.Millisecond), WithAckTimeout(50*time.Millisecond))
	c := connect(t, b)
	const topic = "/default/nostall"
	p := c.producer(t, topic, "p", true)
	cons := c.consume(t, topic, "s", "c", exclusive)
	p.send("0", "1")
	older := cons.next()
	cons.ack(cons.next())
	again := cons.next() // after the ack timeout, without a publish
	is.Equal(again.GetMsgId().GetTopicOffset(), older.GetMsgId().GetTopicOffset())
	is.True(!subState(t, b, topic).Stalled)
}

// After a restart a subscription with a persisted cursor reads through the
// lag-repairing reader: it resumes after the cursor stuck before the gap, so
// the skipped messages come back (with the acked ones after them), and it
// no longer skips on lag.
func TestLiveBufferRepairingReaderAfterRestart(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	const topic = "/default/repair"
	p := c.producer(t, topic, "p", true)
	cons := c.consume(t, topic, "s", "c", exclusive)
	cons.holdAndPublish(p, 0)
	is.Equal(cons.drain(256), offsetRange(154, 410))
	is.True(!subState(t, b, topic).Repairing)

	is.NoErr(b.Restart(RestartOptions{})) // graceful: persists the safe cursor, 9
	c = connect(t, b)
	p = c.producer(t, topic, "p", true)
	back := c.consume(t, topic, "s", "c", exclusive)
	st := subState(t, b, topic)
	is.True(st.Repairing)
	is.Equal(st.Persisted, int64(9))

	is.Equal(back.holdAndPublish(p, 410), offsetRange(10, 20)) // resumed after the cursor
	is.Equal(back.drain(800), offsetRange(20, 820))            // 800 waited unread: nothing skipped
	is.Equal(subState(t, b, topic).SafeCursor, int64(819))
}

// A subscription that never acked has no persisted cursor: after a restart
// it is loaded at Latest and reads the live buffer again.
func TestLiveBufferAfterRestartWithoutCursor(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	const topic = "/default/nocursor"
	c.producer(t, topic, "p", true)
	c.subscribe(t, topic, "s", "c", exclusive)
	is.NoErr(b.Restart(RestartOptions{}))
	c = connect(t, b)
	p := c.producer(t, topic, "p", true)
	cons := c.consume(t, topic, "s", "c", exclusive)
	st := subState(t, b, topic)
	is.Equal(st.Persisted, int64(-1))
	is.True(!st.Repairing)

	cons.holdAndPublish(p, 0)
	is.Equal(cons.drain(256), offsetRange(154, 410))
	is.Equal(subState(t, b, topic).Skipped, uint64(144))
}

func TestLiveBufferOption(t *testing.T) {
	_, err := New(WithLiveBuffer(-1))
	is.New(t).True(err != nil) // a negative buffer is refused
}

// The fill guard compares the window's highest offset with the log head, so
// acking the newest message while an older one stays in the window parks the
// dispatcher until the next publish: no ack timeout fires meanwhile.
func TestDispatcherStallsWhenTheNewestIsAcked(t *testing.T) {
	is := is.New(t)
	b := newBroker(t, WithHeartbeat(10*time.Millisecond), WithAckTimeout(50*time.Millisecond),
		WithRedeliveryBaseDelay(10*time.Millisecond))
	c := connect(t, b)
	const topic = "/default/stall"
	p := c.producer(t, topic, "p", true)
	cons := c.consume(t, topic, "s", "c", exclusive)
	p.send("0", "1")
	older := cons.next()
	cons.ack(cons.next())
	eventually(t, "the dispatcher to stall", func() bool { return subState(t, b, topic).Stalled })
	cons.none(quiet) // offset 0 timed out long ago

	p.send("2")
	next := cons.next()
	is.Equal(next.GetMsgId().GetTopicOffset(), uint64(2)) // the blocked poll's message first
	again := cons.next()
	is.Equal(again.GetMsgId().GetTopicOffset(), older.GetMsgId().GetTopicOffset())
	cons.ack(again)
	cons.ack(next)
	eventually(t, "the cursor to pass 2", func() bool { return subState(t, b, topic).SafeCursor == 2 })
}
