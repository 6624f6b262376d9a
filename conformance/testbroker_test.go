package conformance

// Tests of the knobs only the in-process test broker has: broker-wide timers
// and limits as options, and fault hooks. Each one skips on a real broker and
// says why. They check that the knobs reproduce the behaviour the rest of the
// suite pins through the admin API.

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"

	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

const sendMethod = "/danube.ProducerService/SendMessage"

// producerAndConsumer sets up a Reliable topic on tg with one consumer.
func producerAndConsumer(t *testing.T, tg target) (*danubeclient.Producer, *danubeclient.Consumer) {
	t.Helper()
	c := tg.client(t)
	topic := newTopic(t)
	p := newProducer(t, c, danubeclient.ProducerOptions{Topic: topic, Dispatch: danubeclient.Reliable})
	co := subscribe(t, c, danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s"})
	return p, co
}

func TestTestBrokerTimerOptions(t *testing.T) {
	is := is.New(t)
	tg := newTestBroker(t, "broker-wide timers as options",
		danubetest.WithAckTimeout(300*time.Millisecond),
		danubetest.WithHeartbeat(50*time.Millisecond),
		danubetest.WithRedeliveryBaseDelay(20*time.Millisecond),
		danubetest.WithMaxRedeliveries(1),
		danubetest.WithPoisonPolicy(danubetest.PoisonDrop),
	)
	p, co := producerAndConsumer(t, tg)

	send(t, p, "poison")
	first := receive(t, co)
	second := receive(t, co) // after the 300 ms ack timeout
	is.Equal(second.ID.Offset, first.ID.Offset)
	send(t, p, "next")
	is.Equal(receiveAndAck(t, co, 1), []string{"next"})
	expectNothing(t, co, time.Second, "a third delivery of a message allowed 1 redelivery")
}

func TestTestBrokerMaxUnackedOption(t *testing.T) {
	is := is.New(t)
	p, co := producerAndConsumer(t, newTestBroker(t, "broker-wide window as an option", danubetest.WithMaxUnacked(3)))

	send(t, p, payloads("m", 5)...)
	first := receive(t, co)
	is.Equal(string(first.Payload), "m-0")
	is.Equal(string(receive(t, co).Payload), "m-1")
	is.Equal(string(receive(t, co).Payload), "m-2")
	expectNothing(t, co, time.Second, "a 4th delivery while 3 are unacked")
	ack(t, co, first)
	is.Equal(string(receive(t, co).Payload), "m-3")
}

func TestTestBrokerAutoCreateOff(t *testing.T) {
	is := is.New(t)
	tg := newTestBroker(t, "auto-create is a broker configuration", danubetest.WithAutoCreate(false))
	c := tg.client(t)
	topic := newTopic(t)

	_, err := c.NewProducer(opContext(t), danubeclient.ProducerOptions{Topic: topic, Name: "p", Dispatch: danubeclient.Reliable})
	if !errors.Is(err, danubeclient.ErrTopicNotFound) {
		t.Fatalf("NewProducer on a missing topic with auto-create off: %v, want ErrTopicNotFound", err)
	}
	is.NoErr(tg.admin(t).CreateTopic(opContext(t), topic, danubeclient.Reliable))
	newProducer(t, c, danubeclient.ProducerOptions{Topic: topic, Dispatch: danubeclient.Reliable})
}

func TestTestBrokerNamespacesOption(t *testing.T) {
	tg := newTestBroker(t, "bootstrap namespaces are a broker configuration", danubetest.WithNamespaces("extra"))
	p := newProducer(t, tg.client(t), danubeclient.ProducerOptions{Topic: "/extra/" + uniqueName(t), Dispatch: danubeclient.Reliable})
	send(t, p, "hello")
}

func TestTestBrokerInjectedFaults(t *testing.T) {
	tg := newTestBroker(t, "FailNext injects errors")
	p, co := producerAndConsumer(t, tg)

	t.Run("transient errors are retried", func(t *testing.T) {
		tg.fake.FailNext(sendMethod, 2, codes.Unavailable)
		send(t, p, "after-two-failures")
		is.New(t).Equal(receiveAndAck(t, co, 1), []string{"after-two-failures"})
	})

	t.Run("permanent errors surface at once", func(t *testing.T) {
		tg.fake.FailNext(sendMethod, 1, codes.InvalidArgument)
		err := p.Send(opContext(t), danubeclient.Message{Payload: []byte("refused")})
		wantCode(t, err, codes.InvalidArgument, "Send with an injected INVALID_ARGUMENT")
		if danubeclient.IsTransient(err) {
			t.Fatalf("INVALID_ARGUMENT reported transient: %v", err)
		}
		send(t, p, "accepted")
		is.New(t).Equal(receiveAndAck(t, co, 1), []string{"accepted"}) // the refused one is not stored
	})
}

func TestTestBrokerOutage(t *testing.T) {
	is := is.New(t)
	tg := newTestBroker(t, "Stop and Start take the broker down and up")
	p, co := producerAndConsumer(t, tg)

	tg.fake.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	err := p.Send(ctx, danubeclient.Message{Payload: []byte("while-down")})
	cancel()
	if err == nil {
		t.Fatal("Send while the broker is down succeeded")
	}
	is.NoErr(tg.fake.Start())
	send(t, p, "after-outage")
	is.Equal(receiveAndAck(t, co, 1), []string{"after-outage"})
}
