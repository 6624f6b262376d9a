package danubetest

import (
	"fmt"
	"testing"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

func TestRestartForgetsClients(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	p := c.producer(t, "/default/rs", "p", true)
	cons := c.consume(t, "/default/rs", "s", "c1", exclusive)
	p.send("a")
	cons.ack(cons.next())

	is.NoErr(b.Restart(RestartOptions{}))
	_ = cons.waitEnd()
	c = connect(t, b)
	_, err := c.prod.SendMessage(ctxT(t), p.message("x"))
	wantCode(t, err, codes.NotFound, fmt.Sprintf("The producer with id %d does not exist", p.id))
	is.Equal(healthOf(t, c, cons.id), danubepb.HealthCheckResponse_CLOSE)
	_, err = c.cons.Ack(ctxT(t), &danubepb.AckRequest{MsgId: &danubepb.MsgID{TopicName: "/default/rs"}, SubscriptionName: "s"})
	wantCode(t, err, codes.Internal, "Error acknowledging message: Subscription not found")

	// Exclusive is free again and the log is kept.
	c.subscribe(t, "/default/rs", "s", "c2", exclusive)
	is.Equal(b.Messages("/default/rs"), 1)
	is.Equal(b.Subscriptions("/default/rs"), []string{"s"})
}

func TestRestartResumesAfterCursor(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	p := c.producer(t, "/default/rc", "p", true)
	cons := c.consume(t, "/default/rc", "s", "c", exclusive)
	p.send("0", "1", "2")
	cons.ack(cons.next())
	cons.ack(cons.next())
	unacked := cons.next()
	is.Equal(unacked.GetMsgId().GetTopicOffset(), uint64(2))
	eventually(t, "cursor 1", func() bool { st, _ := b.Subscription("/default/rc", "s"); return st.SafeCursor == 1 })

	is.NoErr(b.Restart(RestartOptions{}))
	c = connect(t, b)
	p = c.producer(t, "/default/rc", "p", true) // re-create after restart
	p.send("3")                                 // published before the subscription is loaded again
	back := c.consume(t, "/default/rc", "s", "c", exclusive)
	for _, want := range []uint64{2, 3} {
		m := back.next()
		is.Equal(m.GetMsgId().GetTopicOffset(), want)
		back.ack(m)
	}
}

func TestRestartRollbackRedeliversAfterPersistedCursor(t *testing.T) {
	is := is.New(t)
	b := newBroker(t, WithCursorFlushInterval(-1)) // only PersistCursors writes
	c := connect(t, b)
	p := c.producer(t, "/default/rb", "p", true)
	cons := c.consume(t, "/default/rb", "s", "c", exclusive)
	p.send("0", "1", "2", "3")
	cons.ack(cons.next())
	eventually(t, "cursor 0", func() bool { st, _ := b.Subscription("/default/rb", "s"); return st.SafeCursor == 0 })
	b.PersistCursors()
	cons.ack(cons.next())
	cons.ack(cons.next())
	eventually(t, "cursor 2", func() bool { st, _ := b.Subscription("/default/rb", "s"); return st.SafeCursor == 2 })

	is.NoErr(b.Restart(RestartOptions{RollbackCursors: true}))
	c = connect(t, b)
	back := c.consume(t, "/default/rb", "s", "c", exclusive)
	for _, want := range []uint64{1, 2, 3} { // 1 and 2 were acked but not persisted
		m := back.next()
		is.Equal(m.GetMsgId().GetTopicOffset(), want)
		back.ack(m)
	}
	st, _ := b.Subscription("/default/rb", "s")
	is.Equal(st.Persisted, int64(0))
}

func TestRestartWithoutCursorStartsAtLatest(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	p := c.producer(t, "/default/rl", "p", true)
	cons := c.consume(t, "/default/rl", "s", "c", exclusive)
	p.send("never acked")
	cons.next()
	is.NoErr(b.Restart(RestartOptions{}))
	c = connect(t, b)
	p = c.producer(t, "/default/rl", "p", true)
	back := c.consume(t, "/default/rl", "s", "c", exclusive)
	p.send("new")
	m := back.next()
	is.Equal(string(m.GetPayload()), "new") // no cursor was ever written: Latest
	is.Equal(m.GetMsgId().GetTopicOffset(), uint64(1))
}
