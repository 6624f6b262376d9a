package conformance

import (
	"fmt"
	"testing"

	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/adminpb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// Broker v0.15.1 reads a subscription created while it runs through the
// WAL's live tail, a broadcast channel of 256 messages (wal.rs tail_reader),
// and its reliable dispatcher polls that reader only while its window of 10
// has room and the consumer is active. More than 256 messages published
// between two polls make the next poll fail with Lagged(n); the reader goes on
// from the oldest message still buffered, and the n skipped offsets never
// enter the window. See the test broker's WithLiveBuffer.

const (
	window     = 10  // the broker's default max_unacked_messages
	liveBuffer = 256 // the live tail's broadcast channel
	paused     = 400 // messages published while the dispatcher does not poll
)

// numberedFrom is m-from … m-(to-1): payload m-i is offset i on a fresh topic.
func numberedFrom(from, to int) []string {
	out := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("m-%d", i))
	}
	return out
}

// receiveOffsets receives and acks each offset of [from, to) in order.
func receiveOffsets(t *testing.T, co *danubeclient.Consumer, from, to uint64) {
	t.Helper()
	for off := from; off < to; off++ {
		m := receive(t, co)
		if m.ID.Offset != off || string(m.Payload) != fmt.Sprintf("m-%d", off) {
			t.Fatalf("got %q at offset %d, want m-%d", m.Payload, m.ID.Offset, off)
		}
		ack(t, co, m)
	}
}

// TestReaderLagSkipsMessagesForGood: the consumer holds a full window, 400
// messages are published, then it acks. The first poll reports the lag, the
// reader resumes at the oldest of the newest 256, so offsets 10..153 are
// never delivered: not after the drain, not to a consumer that takes the
// subscription over. The dispatcher, its safe cursor stuck at 9, then waits
// for the next publish, which it delivers.
func TestReaderLagSkipsMessagesForGood(t *testing.T) {
	for _, typ := range []danubeclient.SubscriptionType{danubeclient.Exclusive, danubeclient.Shared} {
		t.Run(typeName(typ), func(t *testing.T) {
			is := is.New(t)
			topic, p := reliableTopic(t, nil)
			opts := danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s", Type: typ}
			co := subscribe(t, shared.client(t), opts)

			send(t, p, numberedFrom(0, window)...)
			held := make([]*danubeclient.ReceivedMessage, 0, window)
			for i := range window {
				m := receive(t, co)
				is.Equal(m.ID.Offset, uint64(i))
				held = append(held, m)
			}
			// The window is full: the dispatcher stops polling.
			send(t, p, numberedFrom(window, window+paused)...)
			for _, m := range held {
				ack(t, co, m)
			}
			end := uint64(window + paused)
			receiveOffsets(t, co, end-liveBuffer, end) // 154..409: the newest 256
			expectNothing(t, co, quietWindow, "a skipped message (offsets 10..153)")
			if !realBroker() {
				st, _ := shared.fake.Subscription(topic, "s")
				is.Equal(st.Skipped, uint64(paused-liveBuffer))
				is.Equal(st.SafeCursor, int64(window-1)) // stuck before the gap
			}

			is.NoErr(co.Close())
			co = subscribe(t, shared.client(t), opts) // same name: a takeover
			expectNothing(t, co, quietWindow, "a skipped message after a takeover")

			send(t, p, fmt.Sprintf("m-%d", end))
			receiveOffsets(t, co, end, end+1)
		})
	}
}

// TestReaderLagWhileTheConsumerIsAway: an Exclusive dispatcher does not poll
// while its consumer is inactive. What was in the window when the stream
// ended comes back on reconnect; of the 400 published meanwhile only the
// newest 256 follow (offsets 1..144 are lost).
func TestReaderLagWhileTheConsumerIsAway(t *testing.T) {
	is := is.New(t)
	topic, p := reliableTopic(t, nil)
	w, sub, raw, m0 := rawDelivery(t, topic, p, "m-0")
	is.Equal(m0.GetMsgId().GetTopicOffset(), uint64(0)) // left unacked in the window
	raw.cancel()
	waitFor(t, "the broker to mark the consumer inactive", func() (bool, error) {
		return healthStatus(t, w, danubepb.HealthCheckRequest_Consumer, sub.ConsumerId) == danubepb.HealthCheckResponse_CLOSE, nil
	})

	send(t, p, numberedFrom(1, 1+paused)...)
	co := subscribe(t, shared.client(t), danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s"})
	receiveOffsets(t, co, 0, 1) // the unacked message, redelivered
	end := uint64(1 + paused)
	receiveOffsets(t, co, end-liveBuffer, end) // 145..400
	expectNothing(t, co, quietWindow, "a skipped message (offsets 1..144)")
}

// TestDispatcherWaitsForAPublishWhenTheNewestIsAcked pins the dispatcher's
// fill guard (has_unpolled_messages): it compares the highest offset in the
// window with the topic's head, so when the newest message is acked while an
// older one stays in the window, the dispatcher polls a reader with nothing
// to read and blocks until the next publish. Meanwhile no ack timeout and no
// nack is acted on; after the publish the new message goes out first, then
// the older one is redelivered.
func TestDispatcherWaitsForAPublishWhenTheNewestIsAcked(t *testing.T) {
	for _, settle := range []string{"left unacked", "nacked"} {
		t.Run(settle, func(t *testing.T) {
			is := is.New(t)
			topic, p := reliableTopic(t, fastFailurePolicy(5, adminpb.SubscriptionPoisonPolicy_Block))
			co := subscribe(t, shared.client(t), danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s"})

			send(t, p, "m-0", "m-1")
			older := receive(t, co)
			is.Equal(older.ID.Offset, uint64(0))
			newest := receive(t, co)
			is.Equal(newest.ID.Offset, uint64(1))
			ack(t, co, newest)
			if settle == "nacked" {
				is.NoErr(co.Nack(opContext(t), older.ID, 0, "retry"))
			}
			// The policy's ack timeout is 1 s and its retry delay 100 ms.
			expectNothing(t, co, quietWindow, "a redelivery while the dispatcher waits for a publish")

			send(t, p, "m-2")
			next := receive(t, co)
			is.Equal(next.ID.Offset, uint64(2))
			// m-2 stays unacked until the redelivery came: acking it first
			// could park the dispatcher again before the retry is due.
			again := receive(t, co)
			is.Equal(again.ID.Offset, uint64(0)) // now redelivered
			ack(t, co, again)
			ack(t, co, next)
		})
	}
}
