package danubeclient

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// codec encodes the messages sent once per message (SendMessage and Ack
// requests) with hand-written encoders and everything else with gRPC's
// protobuf codec. The generic encoder walks the attributes map by
// reflection, allocating for every key and value twice (once to size the
// message, once to write it): a tenth of the client's CPU per message.
//
// The encoders write the fields the client sets; they do not write unknown
// fields, which messages built by this package never carry.
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
