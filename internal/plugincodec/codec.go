// Package plugincodec speeds up the connector's end of Conduit's plugin
// protocol: the records Conduit streams to the destination are decoded, and
// the records the source streams to Conduit encoded, by hand-written code
// instead of the protobuf library's generic code, which walks each record's
// metadata map by reflection (a tenth of the destination's CPU per record).
// Every other message, and a record's structured data, still goes through
// the protobuf library.
//
// The codec reads and writes exactly the fields of the protocol version the
// connector is built with; TestCodecKnowsEveryField fails when an SDK
// upgrade adds one.
package plugincodec

import (
	"fmt"
	"unicode/utf8"

	opencdcv1 "github.com/conduitio/conduit-commons/proto/opencdc/v1"
	connectorv2 "github.com/conduitio/conduit-connector-protocol/proto/connector/v2"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pbwire"
)

// Register makes the codec gRPC's protobuf codec in this process, so the
// plugin server the SDK starts uses it. Call it before serving.
func Register() {
	encoding.RegisterCodecV2(New())
}

// New returns the codec, falling back to gRPC's protobuf codec for the
// messages it does not handle.
func New() encoding.CodecV2 {
	return codec{proto: encoding.GetCodecV2(grpcproto.Name)}
}

type codec struct{ proto encoding.CodecV2 }

func (c codec) Name() string { return grpcproto.Name }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*connectorv2.Source_Run_Response); ok && len(m.ProtoReflect().GetUnknown()) == 0 {
		if size, ok := sizeRecords(m.Records); ok {
			return pbwire.Encode(size, m.Records, appendRecords), nil
		}
	}
	data, err := c.proto.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return data, nil
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(*connectorv2.Destination_Run_Request); ok {
		m.Reset()
		if err := pbwire.Decode(data, m, decodeRunRequest); err != nil {
			return fmt.Errorf("decode the records from Conduit: %w", err)
		}
		return nil
	}
	if err := c.proto.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	return nil
}

// Field numbers of opencdc.proto and the connector protocol.
const (
	runRecords protowire.Number = 1 // Source.Run.Response, Destination.Run.Request

	recPosition  protowire.Number = 1
	recOperation protowire.Number = 2
	recMetadata  protowire.Number = 3
	recKey       protowire.Number = 4
	recPayload   protowire.Number = 5

	changeBefore protowire.Number = 1
	changeAfter  protowire.Number = 2

	dataRaw        protowire.Number = 1
	dataStructured protowire.Number = 2
)

// Encoding. Structured data is written by the protobuf library.

// sizeRecords sizes the records of a Source.Run.Response, or reports false
// for records the protobuf library should write: with unknown fields (the
// SDK makes records without) or metadata that is not UTF-8 (which the
// library refuses with its error).
func sizeRecords(recs []*opencdcv1.Record) (int, bool) {
	n := 0
	for _, r := range recs {
		if len(r.ProtoReflect().GetUnknown()) > 0 || !validUTF8(r.Metadata) {
			return 0, false
		}
		n += pbwire.SizeBytesAlways(runRecords, sizeRecord(r))
	}
	return n, true
}

func sizeRecord(r *opencdcv1.Record) int {
	n := pbwire.SizeBytes(recPosition, len(r.Position)) +
		pbwire.SizeVarint(recOperation, uint64(r.Operation)) + // a negative enum: 10 bytes, as protobuf writes it
		pbwire.SizeStringMap(recMetadata, r.Metadata)
	if r.Key != nil {
		n += pbwire.SizeBytesAlways(recKey, sizeData(r.Key))
	}
	if r.Payload != nil {
		n += pbwire.SizeBytesAlways(recPayload, sizeChange(r.Payload))
	}
	return n
}

func sizeChange(c *opencdcv1.Change) int {
	n := 0
	if c.Before != nil {
		n += pbwire.SizeBytesAlways(changeBefore, sizeData(c.Before))
	}
	if c.After != nil {
		n += pbwire.SizeBytesAlways(changeAfter, sizeData(c.After))
	}
	return n
}

func sizeData(d *opencdcv1.Data) int {
	switch v := d.Data.(type) {
	case *opencdcv1.Data_RawData:
		return pbwire.SizeBytesAlways(dataRaw, len(v.RawData))
	case *opencdcv1.Data_StructuredData:
		return pbwire.SizeBytesAlways(dataStructured, proto.Size(v.StructuredData))
	}
	return 0
}

func appendRecords(b []byte, recs []*opencdcv1.Record) []byte {
	for _, r := range recs {
		b = pbwire.AppendMessageHeader(b, runRecords, sizeRecord(r))
		b = appendRecord(b, r)
	}
	return b
}

func appendRecord(b []byte, r *opencdcv1.Record) []byte {
	b = pbwire.AppendBytes(b, recPosition, r.Position)
	b = pbwire.AppendVarint(b, recOperation, uint64(r.Operation))
	b = pbwire.AppendStringMap(b, recMetadata, r.Metadata)
	if r.Key != nil {
		b = appendData(b, recKey, r.Key)
	}
	if r.Payload != nil {
		b = pbwire.AppendMessageHeader(b, recPayload, sizeChange(r.Payload))
		if r.Payload.Before != nil {
			b = appendData(b, changeBefore, r.Payload.Before)
		}
		if r.Payload.After != nil {
			b = appendData(b, changeAfter, r.Payload.After)
		}
	}
	return b
}

func appendData(b []byte, n protowire.Number, d *opencdcv1.Data) []byte {
	b = pbwire.AppendMessageHeader(b, n, sizeData(d))
	switch v := d.Data.(type) {
	case *opencdcv1.Data_RawData:
		b = pbwire.AppendBytesAlways(b, dataRaw, v.RawData)
	case *opencdcv1.Data_StructuredData:
		b = pbwire.AppendMessageHeader(b, dataStructured, proto.Size(v.StructuredData))
		// Deterministic is off, as in gRPC's codec; a Struct that
		// protobuf can size it can also write.
		b, _ = proto.MarshalOptions{}.MarshalAppend(b, v.StructuredData)
	}
	return b
}

// Decoding, as the protobuf library does: the last value of a repeated
// scalar or oneof wins, repeated sub-messages merge, strings must be UTF-8,
// unknown fields are skipped (the SDK reads none).

func decodeRunRequest(b []byte, m *connectorv2.Destination_Run_Request) error {
	return pbwire.Fields(b, func(num protowire.Number, typ protowire.Type, b []byte) (n int, err error) {
		if num != runRecords || typ != protowire.BytesType {
			return protowire.ConsumeFieldValue(num, typ, b), nil
		}
		var v []byte
		if v, n = protowire.ConsumeBytes(b); n >= 0 {
			r := &opencdcv1.Record{}
			err = decodeRecord(v, r)
			m.Records = append(m.Records, r)
		}
		return n, err
	})
}

func decodeRecord(b []byte, r *opencdcv1.Record) error {
	return pbwire.Fields(b, func(num protowire.Number, typ protowire.Type, b []byte) (n int, err error) {
		switch {
		case num == recPosition && typ == protowire.BytesType:
			r.Position, n = pbwire.ConsumeBytesCopy(b)
		case num == recOperation && typ == protowire.VarintType:
			var v uint64
			v, n = protowire.ConsumeVarint(b)
			r.Operation = opencdcv1.Operation(int32(v)) // truncated, as protobuf does
		case num == recMetadata && typ == protowire.BytesType:
			var v []byte
			if v, n = protowire.ConsumeBytes(b); n >= 0 {
				err = pbwire.DecodeMapEntry(v, &r.Metadata)
			}
		case num == recKey && typ == protowire.BytesType:
			var v []byte
			if v, n = protowire.ConsumeBytes(b); n >= 0 {
				err = decodeDataInto(v, &r.Key)
			}
		case num == recPayload && typ == protowire.BytesType:
			var v []byte
			if v, n = protowire.ConsumeBytes(b); n >= 0 {
				if r.Payload == nil {
					r.Payload = &opencdcv1.Change{}
				}
				err = decodeChange(v, r.Payload)
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		return n, err
	})
}

func decodeChange(b []byte, c *opencdcv1.Change) error {
	return pbwire.Fields(b, func(num protowire.Number, typ protowire.Type, b []byte) (n int, err error) {
		var into **opencdcv1.Data
		switch {
		case num == changeBefore && typ == protowire.BytesType:
			into = &c.Before
		case num == changeAfter && typ == protowire.BytesType:
			into = &c.After
		default:
			return protowire.ConsumeFieldValue(num, typ, b), nil
		}
		var v []byte
		if v, n = protowire.ConsumeBytes(b); n >= 0 {
			err = decodeDataInto(v, into)
		}
		return n, err
	})
}

// decodeDataInto merges b into *d, making it when nil.
func decodeDataInto(b []byte, d **opencdcv1.Data) error {
	if *d == nil {
		*d = &opencdcv1.Data{}
	}
	data := *d
	return pbwire.Fields(b, func(num protowire.Number, typ protowire.Type, b []byte) (n int, err error) {
		switch {
		case num == dataRaw && typ == protowire.BytesType:
			var raw []byte
			raw, n = pbwire.ConsumeBytesCopy(b)
			data.Data = &opencdcv1.Data_RawData{RawData: raw}
		case num == dataStructured && typ == protowire.BytesType:
			var v []byte
			if v, n = protowire.ConsumeBytes(b); n >= 0 {
				s, ok := data.Data.(*opencdcv1.Data_StructuredData)
				if !ok || s.StructuredData == nil {
					s = &opencdcv1.Data_StructuredData{StructuredData: &structpb.Struct{}}
				}
				if uerr := (proto.UnmarshalOptions{Merge: true}).Unmarshal(v, s.StructuredData); uerr != nil {
					err = fmt.Errorf("structured data: %w", uerr)
				}
				data.Data = s
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		return n, err
	})
}

func validUTF8(md map[string]string) bool {
	for k, v := range md {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return false
		}
	}
	return true
}
