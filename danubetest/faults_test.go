package danubetest

import (
	"testing"
	"time"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

const sendMethod = "/danube.ProducerService/SendMessage"

func TestFailNext(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	p := c.producer(t, "/default/fn", "p", true)
	b.FailNext(sendMethod, 2, codes.Unavailable)
	for range 2 {
		_, err := c.prod.SendMessage(ctxT(t), p.message("x"))
		wantCode(t, err, codes.Unavailable, "")
	}
	p.send("ok")
	is.Equal(b.Messages("/default/fn"), 1) // failed calls stored nothing

	b.FailNext("/danube.ConsumerService/ReceiveMessages", 1, codes.ResourceExhausted)
	id := c.subscribe(t, "/default/fn", "s", "c", shared)
	st, err := c.cons.ReceiveMessages(ctxT(t), &danubepb.ReceiveRequest{ConsumerId: id})
	is.NoErr(err)
	_, err = st.Recv()
	wantCode(t, err, codes.ResourceExhausted, "")
}

func TestDelay(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	p := c.producer(t, "/default/dl", "p", true)
	b.Delay(sendMethod, 100*time.Millisecond)
	start := time.Now()
	p.send("x")
	is.True(time.Since(start) >= 100*time.Millisecond)
	b.Delay(sendMethod, 0)
}

func TestCutStreams(t *testing.T) {
	is := is.New(t)
	b := newBroker(t, WithHeartbeat(10*time.Millisecond))
	c := connect(t, b)
	p := c.producer(t, "/default/cut", "p", true)
	cons := c.consume(t, "/default/cut", "s", "c", exclusive)
	p.send("a")
	m := cons.next()
	b.CutStreams()
	wantCode(t, cons.waitEnd(), codes.Unavailable, "")
	is.Equal(healthOf(t, c, cons.id), danubepb.HealthCheckResponse_CLOSE)

	again := c.stream(t, cons.id, "/default/cut", "s")
	re := again.next() // the in-flight message is redelivered
	is.Equal(re.GetMsgId().GetTopicOffset(), m.GetMsgId().GetTopicOffset())
	is.Equal(healthOf(t, c, cons.id), danubepb.HealthCheckResponse_OK)
}

func TestStopStartKeepsState(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	url := b.URL()
	p := c.producer(t, "/default/ss", "p", true)
	cons := c.consume(t, "/default/ss", "s", "c", exclusive)
	p.send("a")
	cons.ack(cons.next())

	b.Stop()
	_, err := c.prod.SendMessage(ctxT(t), p.message("down"))
	wantCode(t, err, codes.Unavailable, "")
	is.True(cons.waitEnd() != nil) // the stream ended with an error
	is.NoErr(b.Start())
	is.Equal(b.URL(), url)

	c = connect(t, b) // a fresh connection: the old one backs off after the outage
	p.c = c
	p.send("b") // the producer survived
	back := c.consume(t, "/default/ss", "s", "c", exclusive)
	is.Equal(back.id, cons.id)
	m := back.next()
	is.Equal(string(m.GetPayload()), "b")
	is.Equal(m.GetMsgId().GetTopicOffset(), uint64(1))
}

func TestStopWithCallsInFlight(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	c.producer(t, "/default/inflight", "p", true)
	const lookup = "/danube.Discovery/TopicLookup"
	b.Delay(lookup, 50*time.Millisecond)
	done := make(chan error, 1)
	go func() {
		_, err := c.disc.TopicLookup(ctxT(t), &danubepb.TopicLookupRequest{Topic: "/default/inflight"})
		done <- err
	}()
	eventually(t, "the lookup to reach the broker", func() bool { return b.faultsPending(lookup) })
	b.Stop() // must not wait on a handler that needs the broker
	is.True(<-done != nil)
	is.NoErr(b.Start())
}
