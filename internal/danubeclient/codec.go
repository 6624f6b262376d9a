package danubeclient

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pbwire"
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

// Name is empty: gRPC names a forced codec's name as the content subtype,
// which would turn every call's content type into "application/grpc+proto"
// (built per call). Without one the calls keep "application/grpc", the
// protobuf default.
func (c codec) Name() string { return "" }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *danubepb.StreamMessage:
		return pbwire.Encode(sizeStreamMessage(m), m, appendStreamMessage), nil
	case *danubepb.AckRequest:
		return pbwire.Encode(sizeAckRequest(m), m, appendAckRequest), nil
	}
	data, err := c.proto.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return data, nil
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(*danubepb.StreamMessage); ok {
		m.Reset()
		if err := pbwire.Decode(data, m, decodeStreamMessage); err != nil {
			return fmt.Errorf("decode a delivered message: %w", err)
		}
		return nil
	}
	if err := c.proto.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	return nil
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
)

func sizeMsgIDBody(id *danubepb.MsgID) int {
	return pbwire.SizeVarint(idProducerID, id.GetProducerId()) + pbwire.SizeBytes(idTopicName, len(id.GetTopicName())) +
		pbwire.SizeBytes(idBrokerAddr, len(id.GetBrokerAddr())) + pbwire.SizeVarint(idTopicOffset, id.GetTopicOffset())
}

func sizeMsgID(n protowire.Number, id *danubepb.MsgID) int {
	if id == nil {
		return 0
	}
	return pbwire.SizeBytesAlways(n, sizeMsgIDBody(id))
}

func appendMsgID(b []byte, n protowire.Number, id *danubepb.MsgID) []byte {
	if id == nil {
		return b
	}
	b = pbwire.AppendMessageHeader(b, n, sizeMsgIDBody(id))
	b = pbwire.AppendVarint(b, idProducerID, id.GetProducerId())
	b = pbwire.AppendString(b, idTopicName, id.GetTopicName())
	b = pbwire.AppendString(b, idBrokerAddr, id.GetBrokerAddr())
	return pbwire.AppendVarint(b, idTopicOffset, id.GetTopicOffset())
}

func sizeStreamMessage(m *danubepb.StreamMessage) int {
	n := pbwire.SizeVarint(smRequestID, m.RequestId) + sizeMsgID(smMsgID, m.MsgId) +
		pbwire.SizeBytes(smPayload, len(m.Payload)) + pbwire.SizeVarint(smPublishTime, m.PublishTime) +
		pbwire.SizeBytes(smProducerName, len(m.ProducerName)) + pbwire.SizeBytes(smSubscriptionName, len(m.SubscriptionName)) +
		pbwire.SizeStringMap(smAttributes, m.Attributes)
	if m.SchemaId != nil {
		n += pbwire.SizeVarintAlways(smSchemaID, *m.SchemaId)
	}
	if m.SchemaVersion != nil {
		n += pbwire.SizeVarintAlways(smSchemaVersion, uint64(*m.SchemaVersion))
	}
	if m.RoutingKey != nil {
		n += pbwire.SizeBytesAlways(smRoutingKey, len(*m.RoutingKey))
	}
	return n
}

func appendStreamMessage(b []byte, m *danubepb.StreamMessage) []byte {
	b = pbwire.AppendVarint(b, smRequestID, m.RequestId)
	b = appendMsgID(b, smMsgID, m.MsgId)
	b = pbwire.AppendBytes(b, smPayload, m.Payload)
	b = pbwire.AppendVarint(b, smPublishTime, m.PublishTime)
	b = pbwire.AppendString(b, smProducerName, m.ProducerName)
	b = pbwire.AppendString(b, smSubscriptionName, m.SubscriptionName)
	b = pbwire.AppendStringMap(b, smAttributes, m.Attributes)
	if m.SchemaId != nil {
		b = pbwire.AppendVarintAlways(b, smSchemaID, *m.SchemaId)
	}
	if m.SchemaVersion != nil {
		b = pbwire.AppendVarintAlways(b, smSchemaVersion, uint64(*m.SchemaVersion))
	}
	if m.RoutingKey != nil {
		b = pbwire.AppendStringAlways(b, smRoutingKey, *m.RoutingKey)
	}
	return b
}

func sizeAckRequest(m *danubepb.AckRequest) int {
	return pbwire.SizeVarint(ackRequestID, m.RequestId) + sizeMsgID(ackMsgID, m.MsgId) +
		pbwire.SizeBytes(ackSubscriptionName, len(m.SubscriptionName))
}

func appendAckRequest(b []byte, m *danubepb.AckRequest) []byte {
	b = pbwire.AppendVarint(b, ackRequestID, m.RequestId)
	b = appendMsgID(b, ackMsgID, m.MsgId)
	return pbwire.AppendString(b, ackSubscriptionName, m.SubscriptionName)
}

// decodeStreamMessage reads a StreamMessage as the protobuf library does:
// the last value of a repeated scalar wins, repeated sub-messages merge,
// strings must be UTF-8.
func decodeStreamMessage(b []byte, m *danubepb.StreamMessage) error {
	return pbwire.Fields(b, func(num protowire.Number, typ protowire.Type, b []byte) (n int, err error) {
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
			m.Payload, n = pbwire.ConsumeBytesCopy(b)
		case num == smPublishTime && typ == protowire.VarintType:
			m.PublishTime, n = protowire.ConsumeVarint(b)
		case num == smProducerName && typ == protowire.BytesType:
			m.ProducerName, n, err = pbwire.ConsumeString(b)
		case num == smSubscriptionName && typ == protowire.BytesType:
			m.SubscriptionName, n, err = pbwire.ConsumeString(b)
		case num == smAttributes && typ == protowire.BytesType:
			var v []byte
			if v, n = protowire.ConsumeBytes(b); n >= 0 {
				err = pbwire.DecodeMapEntry(v, &m.Attributes)
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
			v, n, err = pbwire.ConsumeString(b)
			m.RoutingKey = &v
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		return n, err
	})
}

func decodeMsgID(b []byte, id *danubepb.MsgID) error {
	return pbwire.Fields(b, func(num protowire.Number, typ protowire.Type, b []byte) (n int, err error) {
		switch {
		case num == idProducerID && typ == protowire.VarintType:
			id.ProducerId, n = protowire.ConsumeVarint(b)
		case num == idTopicName && typ == protowire.BytesType:
			id.TopicName, n, err = pbwire.ConsumeString(b)
		case num == idBrokerAddr && typ == protowire.BytesType:
			id.BrokerAddr, n, err = pbwire.ConsumeString(b)
		case num == idTopicOffset && typ == protowire.VarintType:
			id.TopicOffset, n = protowire.ConsumeVarint(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		return n, err
	})
}
