package danubetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

const sendMethod = "/danube.ProducerService/SendMessage"

func TestControl(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	p := c.producer(t, "/default/ctl", "p", true)

	// A control sees the request and may answer in the broker's place.
	var (
		mu      sync.Mutex // controls run on the server's goroutines
		seen    []string
		lookups int
	)
	remove := b.Control(sendMethod, func(_ context.Context, _ string, req any) *Answer {
		mu.Lock()
		defer mu.Unlock()
		msg, _ := req.(*danubepb.StreamMessage)
		seen = append(seen, string(msg.GetPayload()))
		if string(msg.GetPayload()) == "refused" {
			return &Answer{Err: status.Error(codes.PermissionDenied, "scripted")}
		}
		return nil
	})
	p.send("a")
	_, err := c.prod.SendMessage(ctxT(t), p.message("refused"))
	wantCode(t, err, codes.PermissionDenied, "scripted")
	mu.Lock()
	is.Equal(seen, []string{"a", "refused"})
	mu.Unlock()
	is.Equal(b.Payloads("/default/ctl"), [][]byte{[]byte("a")}) // the broker never saw the refused one

	// A response replaces the broker's; "" sees every method.
	removeAll := b.Control("", func(_ context.Context, method string, req any) *Answer {
		mu.Lock()
		defer mu.Unlock()
		lookup, ok := req.(*danubepb.TopicLookupRequest)
		if !ok || method != danubepb.Discovery_TopicLookup_FullMethodName {
			return nil
		}
		lookups++
		return &Answer{Resp: &danubepb.TopicLookupResponse{
			RequestId:    lookup.GetRequestId(),
			ResponseType: danubepb.TopicLookupResponse_Redirect,
			BrokerUrl:    "http://127.0.0.1:1", ConnectUrl: "http://127.0.0.1:1",
		}}
	})
	resp, err := c.disc.TopicLookup(ctxT(t), &danubepb.TopicLookupRequest{RequestId: 7, Topic: "/default/ctl"})
	is.NoErr(err)
	is.Equal(resp.GetResponseType(), danubepb.TopicLookupResponse_Redirect)
	is.Equal(resp.GetConnectUrl(), "http://127.0.0.1:1")
	mu.Lock()
	is.Equal(lookups, 1)
	mu.Unlock()

	// Removed controls see nothing more.
	remove()
	removeAll()
	p.send("refused")
	resp, err = c.disc.TopicLookup(ctxT(t), &danubepb.TopicLookupRequest{RequestId: 8, Topic: "/default/ctl"})
	is.NoErr(err)
	is.Equal(resp.GetResponseType(), danubepb.TopicLookupResponse_Connect)
	mu.Lock()
	defer mu.Unlock()
	is.Equal(len(seen), 2)
	is.Equal(lookups, 1)
}

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
	eventually(t, "the lookup to reach the broker", func() bool { return b.delayed(lookup) })
	b.Stop() // must not wait on a handler that needs the broker
	is.True(<-done != nil)
	is.NoErr(b.Start())
}
