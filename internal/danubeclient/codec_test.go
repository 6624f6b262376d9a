package danubeclient

import (
	"bytes"
	"strconv"
	"testing"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
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
	for _, c := range benchCodecs() {
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

type namedCodec struct {
	name  string
	codec encoding.CodecV2
}

func benchCodecs() []namedCodec {
	return []namedCodec{{"protobuf", encoding.GetCodecV2(grpcproto.Name)}, {"client", newCodec()}}
}

// BenchmarkCodec_Receive decodes a delivered message like the one of
// BenchmarkCodec_SendMessage, with its offset.
func BenchmarkCodec_Receive(b *testing.B) {
	attrs := map[string]string{"conduit.record.format": "opencdc/json"}
	for i := range 6 {
		attrs["opencdc.metadata."+strconv.Itoa(i)] = "value-" + strconv.Itoa(i)
	}
	encoded, err := proto.Marshal(&danubepb.StreamMessage{
		RequestId: 12345, MsgId: &danubepb.MsgID{ProducerId: 1 << 60, TopicName: "/default/orders-part-1", BrokerAddr: "http://127.0.0.1:6650", TopicOffset: 1 << 20},
		Payload: make([]byte, 1400), PublishTime: 1_700_000_000_000, ProducerName: "conduit-orders-1",
		Attributes: attrs, RoutingKey: ptr("customer-42"),
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range benchCodecs() {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var m danubepb.StreamMessage
				if err := c.codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(encoded)}, &m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestDecodeStreamMessageMatchesProtobuf decodes what protobuf encodes.
func TestDecodeStreamMessageMatchesProtobuf(t *testing.T) {
	for name, msg := range codecCases() {
		sm, ok := msg.(*danubepb.StreamMessage)
		if !ok {
			continue
		}
		t.Run(name, func(t *testing.T) {
			encoded, err := proto.Marshal(sm)
			if err != nil {
				t.Fatal(err)
			}
			checkDecodeLikeProtobuf(t, encoded)
		})
	}
}

// FuzzDecodeStreamMessage checks the decoder against the protobuf library
// on any input: both fail, or both succeed with the same message (apart
// from unknown fields, which the decoder skips).
func FuzzDecodeStreamMessage(f *testing.F) {
	for _, msg := range codecCases() {
		if b, err := proto.Marshal(msg); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte{0x3a, 0x04, 0x0a, 0x02, 0xff, 0xfe})             // attribute key not UTF-8
	f.Add([]byte{0x12, 0x02, 0x08, 0x01, 0x12, 0x02, 0x28, 0x05}) // msg_id twice: merged
	f.Fuzz(checkDecodeLikeProtobuf)
}

func checkDecodeLikeProtobuf(t *testing.T, b []byte) {
	t.Helper()
	want := &danubepb.StreamMessage{}
	wantErr := proto.Unmarshal(b, want)
	got := &danubepb.StreamMessage{}
	gotErr := decodeStreamMessage(b, got)
	if (gotErr != nil) != (wantErr != nil) {
		t.Fatalf("decode error %v, protobuf's %v", gotErr, wantErr)
	}
	if wantErr != nil {
		return
	}
	want.ProtoReflect().SetUnknown(nil)
	if want.MsgId != nil {
		want.MsgId.ProtoReflect().SetUnknown(nil)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("decoded %v, protobuf decoded %v", got, want)
	}
}
