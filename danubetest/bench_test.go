package danubetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// BenchmarkReliableRoundTrip measures one reliable message end to end:
// SendMessage, delivery on the stream, Ack. It is the test broker's own
// overhead, a floor under any client measured against it.
func BenchmarkReliableRoundTrip(b *testing.B) {
	br, err := New(WithMaxUnacked(10000))
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	conn, err := grpc.NewClient(strings.TrimPrefix(br.URL(), "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prod, cons := danubepb.NewProducerServiceClient(conn), danubepb.NewConsumerServiceClient(conn)
	pr, err := prod.CreateProducer(ctx, &danubepb.ProducerRequest{ProducerName: "p", TopicName: "/default/bench", DispatchStrategy: danubepb.DispatchStrategy_Reliable})
	if err != nil {
		b.Fatal(err)
	}
	sub, err := cons.Subscribe(ctx, &danubepb.ConsumerRequest{TopicName: "/default/bench", ConsumerName: "c", Subscription: "s", SubscriptionType: danubepb.ConsumerRequest_Exclusive})
	if err != nil {
		b.Fatal(err)
	}
	stream, err := cons.ReceiveMessages(ctx, &danubepb.ReceiveRequest{ConsumerId: sub.GetConsumerId()})
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 256)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		msg := &danubepb.StreamMessage{
			RequestId: uint64(i), Payload: payload, ProducerName: "p",
			MsgId: &danubepb.MsgID{ProducerId: pr.GetProducerId(), TopicName: "/default/bench"},
		}
		if _, err := prod.SendMessage(ctx, msg); err != nil {
			b.Fatal(err)
		}
		m, err := stream.Recv()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cons.Ack(ctx, &danubepb.AckRequest{MsgId: m.GetMsgId(), SubscriptionName: "s"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
