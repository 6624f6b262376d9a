package plugincodec

import (
	"bytes"
	"strconv"
	"testing"

	opencdcv1 "github.com/conduitio/conduit-commons/proto/opencdc/v1"
	connectorv2 "github.com/conduitio/conduit-connector-protocol/proto/connector/v2"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"
)

// TestCodecKnowsEveryField fails when the protocol gains a field the codec
// would drop: teach the codec the field (and this list) before upgrading.
func TestCodecKnowsEveryField(t *testing.T) {
	known := map[protoreflect.FullName][]string{
		"connector.v2.Destination.Run.Request": {"1 records"},
		"connector.v2.Source.Run.Response":     {"1 records"},
		"opencdc.v1.Record":                    {"1 position", "2 operation", "3 metadata", "4 key", "5 payload"},
		"opencdc.v1.Change":                    {"1 before", "2 after"},
		"opencdc.v1.Data":                      {"1 raw_data", "2 structured_data"},
	}
	for _, m := range []proto.Message{
		&connectorv2.Destination_Run_Request{}, &connectorv2.Source_Run_Response{},
		&opencdcv1.Record{}, &opencdcv1.Change{}, &opencdcv1.Data{},
	} {
		d := m.ProtoReflect().Descriptor()
		var got []string
		for i := range d.Fields().Len() {
			f := d.Fields().Get(i)
			got = append(got, strconv.Itoa(int(f.Number()))+" "+string(f.Name()))
		}
		want := known[d.FullName()]
		if len(got) != len(want) {
			t.Errorf("%s has fields %v; the codec knows %v", d.FullName(), got, want)
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s has fields %v; the codec knows %v", d.FullName(), got, want)
				break
			}
		}
	}
	ops := opencdcv1.Operation(0).Descriptor().Values()
	if ops.Len() != 5 {
		t.Errorf("opencdc.v1.Operation has %d values; the codec passes any number through, check nothing else changed", ops.Len())
	}
}

func raw(b string) *opencdcv1.Data {
	return &opencdcv1.Data{Data: &opencdcv1.Data_RawData{RawData: []byte(b)}}
}

func structured(tb testing.TB, v map[string]any) *opencdcv1.Data {
	tb.Helper()
	s, err := structpb.NewStruct(v)
	if err != nil {
		tb.Fatal(err)
	}
	return &opencdcv1.Data{Data: &opencdcv1.Data_StructuredData{StructuredData: s}}
}

func testRecords(tb testing.TB) []*opencdcv1.Record {
	tb.Helper()
	return []*opencdcv1.Record{
		{
			Position: []byte("pos-1"), Operation: opencdcv1.Operation_OPERATION_CREATE,
			Metadata: map[string]string{"opencdc.collection": "orders", "": "empty key", "empty value": "", "ünï": "cödé"},
			Key:      raw("key"), Payload: &opencdcv1.Change{After: raw(string(bytes.Repeat([]byte{0xab}, 2048)))},
		},
		{
			Position: []byte("pos-2"), Operation: opencdcv1.Operation_OPERATION_UPDATE,
			Key:     structured(tb, map[string]any{"id": 7.0}),
			Payload: &opencdcv1.Change{Before: structured(tb, map[string]any{"a": "b", "n": nil, "l": []any{1.0, "x"}}), After: raw("")},
		},
		{},              // every field zero
		{Operation: -3}, // an unknown, negative operation
		{Key: &opencdcv1.Data{}, Payload: &opencdcv1.Change{}},                                       // empty key (no oneof set), empty change
		{Payload: &opencdcv1.Change{After: &opencdcv1.Data{Data: &opencdcv1.Data_StructuredData{}}}}, // nil struct
	}
}

// TestMarshalMatchesProtobuf decodes what the codec writes with the
// protobuf library and compares it with the message encoded.
func TestMarshalMatchesProtobuf(t *testing.T) {
	c := New()
	for i, rec := range testRecords(t) {
		for _, msg := range []*connectorv2.Source_Run_Response{
			{Records: []*opencdcv1.Record{rec}},
			{Records: testRecords(t)[:i+1]},
		} {
			data, err := c.Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			encoded := data.Materialize()
			data.Free()
			if want := proto.Size(msg); len(encoded) != want {
				t.Errorf("record %d: encoded %d bytes, protobuf's size is %d", i, len(encoded), want)
			}
			got := &connectorv2.Source_Run_Response{}
			if err := proto.Unmarshal(encoded, got); err != nil {
				t.Fatalf("record %d: protobuf cannot decode the encoding: %v", i, err)
			}
			if !proto.Equal(got, msg) {
				t.Errorf("record %d: decoded %v, want %v", i, got, msg)
			}
		}
	}
}

// Metadata that is not UTF-8 is the protobuf library's to refuse.
func TestMarshalRefusesInvalidUTF8LikeProtobuf(t *testing.T) {
	msg := &connectorv2.Source_Run_Response{Records: []*opencdcv1.Record{{Metadata: map[string]string{"k": "\xff"}}}}
	_, want := proto.Marshal(msg)
	if want == nil {
		t.Fatal("protobuf encoded invalid UTF-8")
	}
	if _, err := New().Marshal(msg); err == nil {
		t.Fatalf("encoded invalid UTF-8; protobuf refuses it: %v", want)
	}
}

func TestUnmarshalMatchesProtobuf(t *testing.T) {
	encoded, err := proto.Marshal(&connectorv2.Destination_Run_Request{Records: testRecords(t)})
	if err != nil {
		t.Fatal(err)
	}
	checkDecodeLikeProtobuf(t, encoded)
}

// Other messages go through the protobuf codec.
func TestOtherMessagesUseProtobuf(t *testing.T) {
	c := New()
	msg := &connectorv2.Source_Run_Request{AckPositions: [][]byte{[]byte("p")}}
	data, err := c.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	got := &connectorv2.Source_Run_Request{}
	if err := c.Unmarshal(data, got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, msg) {
		t.Fatalf("got %v, want %v", got, msg)
	}
}

// FuzzUnmarshal holds the decoder to the protobuf library on any input:
// both fail, or both succeed with the same records (apart from unknown
// fields, which the decoder skips).
func FuzzUnmarshal(f *testing.F) {
	for _, r := range testRecords(f) {
		if b, err := proto.Marshal(&connectorv2.Destination_Run_Request{Records: []*opencdcv1.Record{r}}); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte{0x0a, 0x06, 0x1a, 0x04, 0x0a, 0x02, 0xff, 0xfe})             // metadata key not UTF-8
	f.Add([]byte{0x0a, 0x08, 0x22, 0x02, 0x0a, 0x00, 0x22, 0x02, 0x12, 0x00}) // key twice: merged, oneof switches
	f.Fuzz(checkDecodeLikeProtobuf)
}

func checkDecodeLikeProtobuf(t *testing.T, b []byte) {
	t.Helper()
	want := &connectorv2.Destination_Run_Request{}
	wantErr := proto.Unmarshal(b, want)
	got := &connectorv2.Destination_Run_Request{}
	gotErr := New().Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got)
	if (gotErr != nil) != (wantErr != nil) {
		t.Fatalf("decode error %v, protobuf's %v", gotErr, wantErr)
	}
	if wantErr != nil {
		return
	}
	clearUnknown(want.ProtoReflect())
	for _, r := range want.Records {
		clearUnknown(r.ProtoReflect())
		for _, d := range []*opencdcv1.Data{r.Key, r.GetPayload().GetBefore(), r.GetPayload().GetAfter()} {
			clearUnknown(d.ProtoReflect())
		}
		clearUnknown(r.Payload.ProtoReflect())
	}
	if !proto.Equal(got, want) {
		t.Fatalf("decoded %v, protobuf decoded %v", got, want)
	}
}

func clearUnknown(m protoreflect.Message) {
	if m.IsValid() {
		m.SetUnknown(nil)
	}
}

// BenchmarkCodec encodes the records the source sends and decodes the
// records the destination receives: batches of 1 (Conduit's classic
// pipeline) of a record like the generator's (1 KiB raw payload, six
// metadata keys), with gRPC's protobuf codec and this one. One op is one
// record.
//
//	go test -run '^$' -bench . -benchmem ./internal/plugincodec/
func BenchmarkCodec(b *testing.B) {
	md := map[string]string{"opencdc.collection": "orders", "opencdc.version": "v1"}
	for i := range 4 {
		md["meta."+strconv.Itoa(i)] = "value-" + strconv.Itoa(i)
	}
	rec := &opencdcv1.Record{
		Position: []byte("position-000042"), Operation: opencdcv1.Operation_OPERATION_CREATE, Metadata: md,
		Key: raw("key-42"), Payload: &opencdcv1.Change{After: raw(string(bytes.Repeat([]byte("x"), 1024)))},
	}
	resp := &connectorv2.Source_Run_Response{Records: []*opencdcv1.Record{rec}}
	encoded, err := proto.Marshal(&connectorv2.Destination_Run_Request{Records: []*opencdcv1.Record{rec}})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		codec encoding.CodecV2
	}{{"protobuf", encoding.GetCodecV2(grpcproto.Name)}, {"plugincodec", New()}} {
		b.Run("encode/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				data, err := c.codec.Marshal(resp)
				if err != nil {
					b.Fatal(err)
				}
				data.Free()
			}
		})
		b.Run("decode/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var m connectorv2.Destination_Run_Request
				if err := c.codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(encoded)}, &m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
