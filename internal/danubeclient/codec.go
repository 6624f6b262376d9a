package danubeclient

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// codec encodes the messages sent once per message (SendMessage and Ack
// requests) and decodes the messages delivered to consumers with
// hand-written code, and everything else with gRPC's protobuf codec. The
// generic code walks the attributes map by reflection, allocating for every
// key and value (twice when encoding: once to size the message, once to
// write it): a tenth of the client's CPU per message.
//
// The encoders write the fields the client sets; they do not write unknown
// fields, which messages built by this package never carry. The decoder
// skips fields it does not know, as the client reads none.
type codec struct{ proto encoding.CodecV2 }

func newCodec() codec {
	return codec{proto: encoding.GetCodecV2(grpcproto.Name)}
}

func (c codec) Name() string { return grpcproto.Name }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *danubepb.StreamMessage:
		buf, pool := allocate(sizeStreamMessage(m))
		*buf = appendStreamMessage(*buf, m)
		return wrap(buf, pool), nil
	case *danubepb.AckRequest:
		buf, pool := allocate(sizeAckRequest(m))
		*buf = appendAckRequest(*buf, m)
		return wrap(buf, pool), nil
	}
	data, err := c.proto.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return data, nil
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(*danubepb.StreamMessage); ok {
		buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
		defer buf.Free()
		m.Reset()
		if err := decodeStreamMessage(buf.ReadOnlyData(), m); err != nil {
			return fmt.Errorf("decode a delivered message: %w", err)
		}
		return nil
	}
	if err := c.proto.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	return nil
}

// allocate returns an empty buffer for a message of size bytes: from gRPC's
// pool when the message is large enough to be pooled, as gRPC's own codec
// does (gRPC returns it once the message is on the wire), else a new one.
func allocate(size int) (*[]byte, mem.BufferPool) {
	if mem.IsBelowBufferPoolingThreshold(size) {
		b := make([]byte, 0, size)
		return &b, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	*buf = (*buf)[:0]
	return buf, pool
}

func wrap(buf *[]byte, pool mem.BufferPool) mem.BufferSlice {
	if pool == nil {
		return mem.BufferSlice{mem.SliceBuffer(*buf)}
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}
}

// Field numbers of danube.proto.
const (
	smRequestID        protowire.Number = 1
	smMsgID            protowire.Number = 2
	smPayload          protowire.Number = 3
	smPublishTime      protowire.Number = 4
	smProducerName     protowire.Number = 5
	smSubscriptionName protowire.Number = 6
	smAttributes       protowire.Number = 7
	smSchemaID         protowire.Number = 8
	smSchemaVersion    protowire.Number = 9
	smRoutingKey       protowire.Number = 10

	idProducerID  protowire.Number = 1
	idTopicName   protowire.Number = 2
	idBrokerAddr  protowire.Number = 3
	idTopicOffset protowire.Number = 5

	ackRequestID        protowire.Number = 1
	ackMsgID            protowire.Number = 2
	ackSubscriptionName protowire.Number = 3

	mapKey   protowire.Number = 1
	mapValue protowire.Number = 2
)

// Sizes follow proto3: scalars and strings only when not zero, optional
// fields and sub-messages whenever set, map entries with key and value.

func sizeVarint(n protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(n) + protowire.SizeVarint(v)
}

func sizeBytes(n protowire.Number, l int) int {
	if l == 0 {
		return 0
	}
	return protowire.SizeTag(n) + protowire.SizeBytes(l)
}

func appendVarint(b []byte, n protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, n, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendString(b []byte, n protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func sizeMsgIDBody(id *danubepb.MsgID) int {
	return sizeVarint(idProducerID, id.GetProducerId()) + sizeBytes(idTopicName, len(id.GetTopicName())) +
		sizeBytes(idBrokerAddr, len(id.GetBrokerAddr())) + sizeVarint(idTopicOffset, id.GetTopicOffset())
}

func sizeMsgID(n protowire.Number, id *danubepb.MsgID) int {
	if id == nil {
		return 0
	}
	return protowire.SizeTag(n) + protowire.SizeBytes(sizeMsgIDBody(id))
}

func appendMsgID(b []byte, n protowire.Number, id *danubepb.MsgID) []byte {
	if id == nil {
		return b
	}
	b = protowire.AppendTag(b, n, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(sizeMsgIDBody(id)))
	b = appendVarint(b, idProducerID, id.GetProducerId())
	b = appendString(b, idTopicName, id.GetTopicName())
	b = appendString(b, idBrokerAddr, id.GetBrokerAddr())
	return appendVarint(b, idTopicOffset, id.GetTopicOffset())
}

func sizeMapEntry(k, v string) int {
	return protowire.SizeTag(mapKey) + protowire.SizeBytes(len(k)) + protowire.SizeTag(mapValue) + protowire.SizeBytes(len(v))
}

func sizeStreamMessage(m *danubepb.StreamMessage) int {
	n := sizeVarint(smRequestID, m.RequestId) + sizeMsgID(smMsgID, m.MsgId) + sizeBytes(smPayload, len(m.Payload)) +
		sizeVarint(smPublishTime, m.PublishTime) + sizeBytes(smProducerName, len(m.ProducerName)) +
		sizeBytes(smSubscriptionName, len(m.SubscriptionName))
	for k, v := range m.Attributes {
		n += protowire.SizeTag(smAttributes) + protowire.SizeBytes(sizeMapEntry(k, v))
	}
	if m.SchemaId != nil {
		n += protowire.SizeTag(smSchemaID) + protowire.SizeVarint(*m.SchemaId)
	}
	if m.SchemaVersion != nil {
		n += protowire.SizeTag(smSchemaVersion) + protowire.SizeVarint(uint64(*m.SchemaVersion))
	}
	if m.RoutingKey != nil {
		n += protowire.SizeTag(smRoutingKey) + protowire.SizeBytes(len(*m.RoutingKey))
	}
	return n
}

func appendStreamMessage(b []byte, m *danubepb.StreamMessage) []byte {
	b = appendVarint(b, smRequestID, m.RequestId)
	b = appendMsgID(b, smMsgID, m.MsgId)
	if len(m.Payload) > 0 {
		b = protowire.AppendTag(b, smPayload, protowire.BytesType)
		b = protowire.AppendBytes(b, m.Payload)
	}
	b = appendVarint(b, smPublishTime, m.PublishTime)
	b = appendString(b, smProducerName, m.ProducerName)
	b = appendString(b, smSubscriptionName, m.SubscriptionName)
	for k, v := range m.Attributes {
		b = protowire.AppendTag(b, smAttributes, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeMapEntry(k, v)))
		b = protowire.AppendTag(b, mapKey, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = protowire.AppendTag(b, mapValue, protowire.BytesType)
		b = protowire.AppendString(b, v)
	}
	if m.SchemaId != nil {
		b = protowire.AppendTag(b, smSchemaID, protowire.VarintType)
		b = protowire.AppendVarint(b, *m.SchemaId)
	}
	if m.SchemaVersion != nil {
		b = protowire.AppendTag(b, smSchemaVersion, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(*m.SchemaVersion))
	}
	if m.RoutingKey != nil {
		b = protowire.AppendTag(b, smRoutingKey, protowire.BytesType)
		b = protowire.AppendString(b, *m.RoutingKey)
	}
	return b
}

func sizeAckRequest(m *danubepb.AckRequest) int {
	return sizeVarint(ackRequestID, m.RequestId) + sizeMsgID(ackMsgID, m.MsgId) +
		sizeBytes(ackSubscriptionName, len(m.SubscriptionName))
}

func appendAckRequest(b []byte, m *danubepb.AckRequest) []byte {
	b = appendVarint(b, ackRequestID, m.RequestId)
	b = appendMsgID(b, ackMsgID, m.MsgId)
	return appendString(b, ackSubscriptionName, m.SubscriptionName)
}

// decodeStreamMessage reads a StreamMessage as the protobuf library does:
// the last value of a repeated scalar wins, repeated sub-messages merge,
// strings must be UTF-8.
func decodeStreamMessage(b []byte, m *danubepb.StreamMessage) error {
	return decodeFields(b, func(num protowire.Number, typ protowire.Type, b []byte) (n int, err error) {
		switch {
		case num == smRequestID && typ == protowire.VarintType:
			m.RequestId, n = protowire.ConsumeVarint(b)
		case num == smMsgID && typ == protowire.BytesType:
			var v []byte
			if v, n = protowire.ConsumeBytes(b); n >= 0 {
				if m.MsgId == nil {
					m.MsgId = &danubepb.MsgID{}
				}
				err = decodeMsgID(v, m.MsgId)
			}
		case num == smPayload && typ == protowire.BytesType:
			var v []byte
			if v, n = protowire.ConsumeBytes(b); n >= 0 {
				m.Payload = append([]byte{}, v...)
			}
		case num == smPublishTime && typ == protowire.VarintType:
			m.PublishTime, n = protowire.ConsumeVarint(b)
		case num == smProducerName && typ == protowire.BytesType:
			m.ProducerName, n, err = consumeString(b)
		case num == smSubscriptionName && typ == protowire.BytesType:
			m.SubscriptionName, n, err = consumeString(b)
		case num == smAttributes && typ == protowire.BytesType:
			var v []byte
			if v, n = protowire.ConsumeBytes(b); n >= 0 {
				if m.Attributes == nil {
					m.Attributes = map[string]string{}
				}
				err = decodeMapEntry(v, m.Attributes)
			}
		case num == smSchemaID && typ == protowire.VarintType:
			var v uint64
			v, n = protowire.ConsumeVarint(b)
			m.SchemaId = &v
		case num == smSchemaVersion && typ == protowire.VarintType:
			var v uint64
			v, n = protowire.ConsumeVarint(b)
			version := uint32(v) // protobuf truncates a uint32 field's varint the same way
			m.SchemaVersion = &version
		case num == smRoutingKey && typ == protowire.BytesType:
			var v string
			v, n, err = consumeString(b)
			m.RoutingKey = &v
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		return n, err
	})
}

func decodeMsgID(b []byte, id *danubepb.MsgID) error {
	return decodeFields(b, func(num protowire.Number, typ protowire.Type, b []byte) (n int, err error) {
		switch {
		case num == idProducerID && typ == protowire.VarintType:
			id.ProducerId, n = protowire.ConsumeVarint(b)
		case num == idTopicName && typ == protowire.BytesType:
			id.TopicName, n, err = consumeString(b)
		case num == idBrokerAddr && typ == protowire.BytesType:
			id.BrokerAddr, n, err = consumeString(b)
		case num == idTopicOffset && typ == protowire.VarintType:
			id.TopicOffset, n = protowire.ConsumeVarint(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		return n, err
	})
}

// decodeMapEntry adds one map<string, string> entry to m; a missing key or
// value is empty.
func decodeMapEntry(b []byte, m map[string]string) error {
	var k, v string
	err := decodeFields(b, func(num protowire.Number, typ protowire.Type, b []byte) (n int, err error) {
		switch {
		case num == mapKey && typ == protowire.BytesType:
			k, n, err = consumeString(b)
		case num == mapValue && typ == protowire.BytesType:
			v, n, err = consumeString(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		return n, err
	})
	if err != nil {
		return err
	}
	m[k] = v
	return nil
}

// decodeFields calls field with the number, type and following bytes of
// each field in b; field returns the length of the value it read, negative
// for protowire's error codes.
func decodeFields(b []byte, field func(protowire.Number, protowire.Type, []byte) (int, error)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("protobuf: %w", protowire.ParseError(n))
		}
		if !num.IsValid() { // ConsumeTag takes numbers up to 2^31
			return fmt.Errorf("protobuf: field number %d is out of range", num)
		}
		b = b[n:]
		n, err := field(num, typ, b)
		if err != nil {
			return err
		}
		if n < 0 {
			return fmt.Errorf("protobuf field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	return nil
}

var errInvalidUTF8 = errors.New("a string field is not valid UTF-8")

func consumeString(b []byte) (string, int, error) {
	v, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return "", n, nil
	}
	if !utf8.Valid(v) {
		return "", n, errInvalidUTF8
	}
	return string(v), n, nil
}
