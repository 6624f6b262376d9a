package danubetest

import (
	"context"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

func TestNonReliableDelivery(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	p := c.producer(t, "/default/nr", "p", false)
	p.send("dropped: no subscription")
	cons := c.consume(t, "/default/nr", "s", "c", exclusive)
	p.send("x")
	m := cons.next()
	is.Equal(string(m.GetPayload()), "x")
	is.Equal(m.GetMsgId().GetTopicOffset(), uint64(0))
	is.Equal(b.Messages("/default/nr"), 0) // nothing stored
	cons.ack(m)                            // no-op, OK
	cons.nack(m, 0)                        // no-op, OK
	cons.none(50 * time.Millisecond)
}

func TestNonReliableDropsWhenBufferFull(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	p := c.producer(t, "/default/nrf", "p", false)
	// Subscribed but no stream: the consumer's buffer (4 + 4) fills up.
	id := c.subscribe(t, "/default/nrf", "s", "c", shared)
	p.send(payloads(20)...)
	st, err := c.cons.ReceiveMessages(ctxT(t), &danubepb.ReceiveRequest{ConsumerId: id})
	is.NoErr(err)
	for i := range nonReliableBuffer {
		m, err := st.Recv()
		is.NoErr(err)
		is.Equal(string(m.GetPayload()), payloads(nonReliableBuffer)[i])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	got := make(chan error, 1)
	go func() { _, err := st.Recv(); got <- err }()
	select {
	case err := <-got:
		t.Fatalf("a dropped message arrived (err %v)", err)
	case <-ctx.Done():
	}
}
