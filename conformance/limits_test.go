package conformance

import (
	"bytes"
	"errors"
	"testing"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// grpcLimit is the broker's decode limit for one gRPC message (tonic's
// default, never raised by the broker): payload plus envelope.
const grpcLimit = 4 << 20

func TestMessageSizeLimit(t *testing.T) {
	topic := newTopic(t)
	c := shared.client(t)
	p := newProducer(t, c, danubeclient.ProducerOptions{Topic: topic, Dispatch: danubeclient.Reliable})
	co := subscribe(t, c, danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s"})

	for _, tc := range []struct {
		name string
		size int
	}{
		{"just over 4 MiB", grpcLimit + 1},
		{"exactly 4 MiB of payload", grpcLimit},
		{"under 4 MiB of payload, over it with the envelope", grpcLimit - 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Send(opContext(t), danubeclient.Message{Payload: make([]byte, tc.size)})
			if !errors.Is(err, danubeclient.ErrMessageTooLarge) {
				t.Fatalf("Send(%d bytes): %v, want ErrMessageTooLarge", tc.size, err)
			}
			if danubeclient.IsTransient(err) {
				t.Fatalf("Send(%d bytes): %v is reported transient; retrying cannot help", tc.size, err)
			}
		})
	}

	t.Run("a large message that fits is delivered intact", func(t *testing.T) {
		is := is.New(t)
		payload := bytes.Repeat([]byte("0123456789abcdef"), (grpcLimit-64<<10)/16)
		is.NoErr(p.Send(opContext(t), danubeclient.Message{Payload: payload}))
		m := receive(t, co)
		is.True(bytes.Equal(m.Payload, payload))
		ack(t, co, m)
	})

	t.Run("the broker answers OUT_OF_RANGE", func(t *testing.T) {
		is := is.New(t)
		w := shared.ownerWire(t, topic)
		prod, err := w.producers.CreateProducer(opContext(t), &danubepb.ProducerRequest{
			RequestId: 1, ProducerName: "raw", TopicName: topic, DispatchStrategy: danubepb.DispatchStrategy_Reliable,
		})
		is.NoErr(err)
		_, err = w.producers.SendMessage(opContext(t), &danubepb.StreamMessage{
			RequestId: 1,
			MsgId:     &danubepb.MsgID{ProducerId: prod.ProducerId, TopicName: topic, BrokerAddr: shared.url},
			Payload:   make([]byte, grpcLimit),
		})
		wantCode(t, err, codes.OutOfRange, "SendMessage over the decode limit")
	})
}
