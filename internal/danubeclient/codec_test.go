package danubeclient

import (
	"bytes"
	"strconv"
	"testing"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/protobuf/proto"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

func ptr[T any](v T) *T { return &v }

// codecCases cover every field, zero values (left out by proto3), set
// optional fields holding zero (written), and a message large enough for
// gRPC's buffer pool.
func codecCases() map[string]proto.Message {
	attrs := map[string]string{"conduit.record.format": "opencdc/json", "": "empty key", "empty value": "", "ünï": "cödé"}
	return map[string]proto.Message{
		"empty stream message": &danubepb.StreamMessage{},
		"full stream message": &danubepb.StreamMessage{
			RequestId: 1<<63 + 5, MsgId: &danubepb.MsgID{ProducerId: 42, TopicName: "/default/t-part-1", BrokerAddr: "http://b:6650", TopicOffset: 300},
			Payload: []byte("payload"), PublishTime: 1_700_000_000_000, ProducerName: "p", SubscriptionName: "s",
			Attributes: attrs, SchemaId: ptr[uint64](7), SchemaVersion: ptr[uint32](3), RoutingKey: ptr("key"),
		},
		"set optionals holding zero": &danubepb.StreamMessage{
			MsgId: &danubepb.MsgID{}, SchemaId: ptr[uint64](0), SchemaVersion: ptr[uint32](0), RoutingKey: ptr(""),
		},
		"pooled size": &danubepb.StreamMessage{
			RequestId: 9, MsgId: &danubepb.MsgID{ProducerId: 1, TopicName: "/default/t"},
			Payload: bytes.Repeat([]byte{0xab}, 64<<10), Attributes: attrs,
		},
		"empty ack":  &danubepb.AckRequest{},
		"full ack":   &danubepb.AckRequest{RequestId: 3, MsgId: &danubepb.MsgID{ProducerId: 1, TopicName: "/default/t", BrokerAddr: "b", TopicOffset: 1 << 40}, SubscriptionName: "sub"},
		"ack no id":  &danubepb.AckRequest{RequestId: 3, SubscriptionName: "sub"},
		"other type": &danubepb.MessageResponse{RequestId: 12},
	}
}

// TestCodecMatchesProtobuf decodes what the codec writes with the protobuf
// library and compares it with the message encoded, and checks the sizes
// the client computes against the library's.
func TestCodecMatchesProtobuf(t *testing.T) {
	c := newCodec()
	for name, msg := range codecCases() {
		t.Run(name, func(t *testing.T) {
			data, err := c.Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			encoded := data.Materialize()
			data.Free()
			if want := proto.Size(msg); len(encoded) != want {
				t.Errorf("encoded %d bytes, protobuf's size is %d", len(encoded), want)
			}
			got := msg.ProtoReflect().New().Interface()
			if err := proto.Unmarshal(encoded, got); err != nil {
				t.Fatalf("protobuf cannot decode the encoding: %v", err)
			}
			if !proto.Equal(got, msg) {
				t.Errorf("decoded %v, want %v", got, msg)
			}
			if sm, ok := msg.(*danubepb.StreamMessage); ok {
				if got, want := sizeStreamMessage(sm), proto.Size(sm); got != want {
					t.Errorf("sizeStreamMessage = %d, protobuf's size is %d", got, want)
				}
			}
		})
	}
}

// BenchmarkCodec_SendMessage encodes the SendMessage request of a 1 KiB
// record from the destination (six metadata attributes and the format
// marker, a routing key) with gRPC's protobuf codec and with the client's.
//
//	go test -run '^$' -bench Codec -benchmem ./internal/danubeclient/
func BenchmarkCodec_SendMessage(b *testing.B) {
	attrs := map[string]string{"conduit.record.format": "opencdc/json"}
	for i := range 6 {
		attrs["opencdc.metadata."+strconv.Itoa(i)] = "value-" + strconv.Itoa(i)
	}
	msg := &danubepb.StreamMessage{
		RequestId: 12345, MsgId: &danubepb.MsgID{ProducerId: 1 << 60, TopicName: "/default/orders-part-1", BrokerAddr: "http://127.0.0.1:6650"},
		Payload: make([]byte, 1400), PublishTime: 1_700_000_000_000, ProducerName: "conduit-orders-1",
		Attributes: attrs, RoutingKey: ptr("customer-42"),
	}
	for _, c := range []struct {
		name  string
		codec encoding.CodecV2
	}{{"protobuf", encoding.GetCodecV2(grpcproto.Name)}, {"client", newCodec()}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				data, err := c.codec.Marshal(msg)
				if err != nil {
					b.Fatal(err)
				}
				data.Free()
			}
		})
	}
}
