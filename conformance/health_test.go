package conformance

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

const fastHealth = 200 * time.Millisecond

func healthStatus(t *testing.T, w wire, kind danubepb.HealthCheckRequest_ClientType, id uint64) danubepb.HealthCheckResponse_ClientStatus {
	t.Helper()
	resp, err := w.health.HealthCheck(opContext(t), &danubepb.HealthCheckRequest{RequestId: 1, Client: kind, Id: id})
	if err != nil {
		t.Fatalf("HealthCheck(%v %d): %v", kind, id, err)
	}
	return resp.Status
}

// rawStream is a ReceiveMessages stream opened by the test itself.
type rawStream struct {
	stream danubepb.ConsumerService_ReceiveMessagesClient
	cancel context.CancelFunc
}

// openStream opens ReceiveMessages for a consumer. The broker attaches it
// asynchronously; receiving a message proves it is attached.
func openStream(t *testing.T, w wire, consumerID uint64) rawStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := w.consumers.ReceiveMessages(ctx, &danubepb.ReceiveRequest{RequestId: 1, ConsumerId: consumerID})
	if err != nil {
		t.Fatalf("ReceiveMessages(%d): %v", consumerID, err)
	}
	return rawStream{stream: stream, cancel: cancel}
}

// recv is Recv bounded by deliveryTimeout: a stream still silent then is
// cancelled, so that Recv reports Canceled instead of hanging.
func (r rawStream) recv() (*danubepb.StreamMessage, error) {
	timer := time.AfterFunc(deliveryTimeout, r.cancel)
	defer timer.Stop()
	return r.stream.Recv()
}

// sendRaw publishes payload through a producer created on the wire.
func sendRaw(t *testing.T, w wire, topic string, producerID uint64, payload string) {
	t.Helper()
	_, err := w.producers.SendMessage(opContext(t), &danubepb.StreamMessage{
		RequestId:   1,
		MsgId:       &danubepb.MsgID{ProducerId: producerID, TopicName: topic, BrokerAddr: shared.url},
		Payload:     []byte(payload),
		PublishTime: uint64(time.Now().UnixMilli()),
	})
	if err != nil {
		t.Fatalf("SendMessage(%q): %v", payload, err)
	}
}

// TestHealthCheckReportsClose pins what clients heal from: CLOSE for unknown
// IDs and for a consumer whose stream went away, OK again after a takeover.
func TestHealthCheckReportsClose(t *testing.T) {
	is := is.New(t)
	topic := newTopic(t)
	const (
		producerKind = danubepb.HealthCheckRequest_Producer
		consumerKind = danubepb.HealthCheckRequest_Consumer
		ok           = danubepb.HealthCheckResponse_OK
		closed       = danubepb.HealthCheckResponse_CLOSE
	)

	w, prod, err := createProducerOnOwner(t, &danubepb.ProducerRequest{
		RequestId: 1, ProducerName: "p", TopicName: topic, DispatchStrategy: danubepb.DispatchStrategy_Reliable,
	})
	is.NoErr(err)
	is.Equal(healthStatus(t, w, producerKind, prod.ProducerId), ok)
	is.Equal(healthStatus(t, w, producerKind, prod.ProducerId+1), closed) // unknown producer
	is.Equal(healthStatus(t, w, consumerKind, prod.ProducerId+1), closed) // unknown consumer

	req := exclusiveC(topic)
	sub, err := w.consumers.Subscribe(opContext(t), req)
	is.NoErr(err)
	is.Equal(healthStatus(t, w, consumerKind, sub.ConsumerId), ok) // active before any stream

	raw := openStream(t, w, sub.ConsumerId)
	sendRaw(t, w, topic, prod.ProducerId, "m")
	m, err := raw.recv()
	is.NoErr(err)
	is.Equal(string(m.Payload), "m")
	is.Equal(m.SubscriptionName, "") // the broker leaves it empty on deliveries
	is.Equal(healthStatus(t, w, consumerKind, sub.ConsumerId), ok)
	raw.cancel()
	waitFor(t, "CLOSE for a consumer whose stream ended", func() (bool, error) {
		return healthStatus(t, w, consumerKind, sub.ConsumerId) == closed, nil
	})

	again, err := w.consumers.Subscribe(opContext(t), req)
	is.NoErr(err)
	is.Equal(again.ConsumerId, sub.ConsumerId) // same name: the same consumer, taken over
	is.Equal(healthStatus(t, w, consumerKind, sub.ConsumerId), ok)
}

// TestConsumerSurvivesForcedReconnect takes the client's consumer over from
// outside, as a second process with the same consumer name would: a
// Subscribe (which ends the client's stream) and a stream of its own. The
// client takes the consumer back, which ends that stream whichever of the two
// attached last, and keeps receiving.
//
// Nothing is sent while the consumer is contested: a message the outside
// stream received would stay in flight until the ack timeout (see
// TestStreamTakeoverKeepsDeliveriesInFlight).
func TestConsumerSurvivesForcedReconnect(t *testing.T) {
	is := is.New(t)
	topic, p, co := receivingConsumer(t)

	w, sub, err := subscribeOnOwner(t, exclusiveC(topic))
	is.NoErr(err)
	raw := openStream(t, w, sub.ConsumerId)
	_, err = raw.recv()
	is.Equal(err, io.EOF) // the client took the consumer back

	send(t, p, payloads("after", 3)...)
	is.Equal(receiveAndAck(t, co, 3), payloads("after", 3))
}

// TestStreamTakeoverKeepsDeliveriesInFlight pins broker v0.15.1: a second
// ReceiveMessages for a consumer ends the first stream (OK) without
// rescheduling what it delivered, which waits for the ack timeout; a
// Subscribe under the same name reschedules it at once. This is why clients
// subscribe again before every new stream.
func TestStreamTakeoverKeepsDeliveriesInFlight(t *testing.T) {
	is := is.New(t)
	topic, p := reliableTopic(t, nil)
	w, sub, first, _ := rawDelivery(t, topic, p, "m")

	second := openStream(t, w, sub.ConsumerId)
	_, err := first.recv()
	is.Equal(err, io.EOF) // the second stream took over
	send(t, p, "n")
	m, err := second.recv()
	is.NoErr(err)
	is.Equal(string(m.Payload), "n") // "m" was not sent again first

	_, err = w.consumers.Subscribe(opContext(t), exclusiveC(topic))
	is.NoErr(err)
	_, err = second.recv()
	is.Equal(err, io.EOF)
	third := openStream(t, w, sub.ConsumerId)
	got := map[string]bool{}
	for range 2 {
		m, err := third.recv()
		is.NoErr(err)
		got[string(m.Payload)] = true
	}
	is.Equal(got, map[string]bool{"m": true, "n": true}) // both unacked, both sent again
}

func TestConsumerSurvivesCutStreams(t *testing.T) {
	needTestBroker(t, "CutStreams ends every receive stream with UNAVAILABLE")
	is := is.New(t)
	_, p, co := receivingConsumer(t)

	for round := range 3 {
		shared.cutStreams()
		send(t, p, payloads("after-cut-"+string(rune('a'+round)), 2)...)
		is.Equal(receiveAndAck(t, co, 2), payloads("after-cut-"+string(rune('a'+round)), 2))
	}
}

// rawDelivery subscribes exclusiveC(topic) on the topic's owner, opens its
// stream and publishes payload, which the stream receives and leaves unacked.
func rawDelivery(t *testing.T, topic string, p *danubeclient.Producer, payload string) (wire, *danubepb.ConsumerResponse, rawStream, *danubepb.StreamMessage) {
	t.Helper()
	w, sub, err := subscribeOnOwner(t, exclusiveC(topic))
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	raw := openStream(t, w, sub.ConsumerId)
	send(t, p, payload)
	m, err := raw.recv()
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	if string(m.Payload) != payload {
		t.Fatalf("first delivery %q, want %q", m.Payload, payload)
	}
	return w, sub, raw, m
}

// receivingConsumer returns a Reliable topic, its producer and a consumer on
// subscription "s" (consumer "c") that has already received one message; the
// consumer's client checks health often so that it heals fast.
func receivingConsumer(t *testing.T) (string, *danubeclient.Producer, *danubeclient.Consumer) {
	t.Helper()
	topic, p := reliableTopic(t, nil)
	c := shared.client(t, func(cfg *danubeclient.Config) { cfg.HealthInterval = fastHealth })
	co := subscribe(t, c, danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s"})
	send(t, p, "before")
	if got := receiveAndAck(t, co, 1); got[0] != "before" {
		t.Fatalf("first delivery %q, want %q", got[0], "before")
	}
	return topic, p, co
}

// TestReceiveStreamSendsHeadersAtOnce: the broker (tonic) sends the response
// headers of ReceiveMessages as soon as the stream is attached, before any
// message.
func TestReceiveStreamSendsHeadersAtOnce(t *testing.T) {
	is := is.New(t)
	topic, _ := reliableTopic(t, nil)
	w, sub, err := subscribeOnOwner(t, exclusiveC(topic))
	is.NoErr(err)
	raw := openStream(t, w, sub.ConsumerId)
	headers := make(chan error, 1)
	go func() {
		_, err := raw.stream.Header()
		headers <- err
	}()
	select {
	case err := <-headers:
		is.NoErr(err)
	case <-time.After(deliveryTimeout):
		raw.cancel()
		<-headers
		t.Fatalf("no response headers within %v of opening the stream", deliveryTimeout)
	}
	raw.cancel()
}
