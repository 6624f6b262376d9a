package segment

import (
	"maps"
	"slices"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// MsgID is danube_core::message::MessageID.
type MsgID struct {
	ProducerID  uint64
	TopicName   string
	BrokerAddr  string
	TopicOffset uint64
}

// Message is danube_core::message::StreamMessage as the WAL stores it. The
// fields are in bincode order: request_id, msg_id {producer_id, topic_name,
// broker_addr, topic_offset}, payload, publish_time, producer_name,
// subscription_name (Option), attributes (map), schema_id (Option<u64>),
// schema_version (Option<u32>), routing_key (Option).
type Message struct {
	RequestID        uint64
	MsgID            MsgID
	Payload          []byte
	PublishTime      uint64 // milliseconds since the Unix epoch
	ProducerName     string
	SubscriptionName *string // the broker stores Some("") for produced messages
	Attributes       map[string]string
	SchemaID         *uint64
	SchemaVersion    *uint32
	RoutingKey       *string
}

// Offset is the message's topic offset.
func (m *Message) Offset() uint64 { return m.MsgID.TopicOffset }

// DecodeMessage decodes a frame payload. Like the broker's decoder
// (bincode::serde::decode_from_slice) it ignores bytes after the message.
// Payload and strings are copies, independent of payload.
func DecodeMessage(payload []byte) (Message, error) {
	r := &bincodeReader{buf: payload}
	var m Message
	m.RequestID = r.u64("request_id")
	m.MsgID.ProducerID = r.u64("msg_id.producer_id")
	m.MsgID.TopicName = r.str("msg_id.topic_name")
	m.MsgID.BrokerAddr = r.str("msg_id.broker_addr")
	m.MsgID.TopicOffset = r.u64("msg_id.topic_offset")
	m.Payload = slices.Clone(r.bytes("payload"))
	m.PublishTime = r.u64("publish_time")
	m.ProducerName = r.str("producer_name")
	m.SubscriptionName = optional(r, "subscription_name", r.str)
	m.Attributes = decodeAttributes(r)
	m.SchemaID = optional(r, "schema_id", r.u64)
	m.SchemaVersion = optional(r, "schema_version", r.u32)
	m.RoutingKey = optional(r, "routing_key", r.str)
	if r.err != nil {
		return Message{}, r.err
	}
	return m, nil
}

func optional[T any](r *bincodeReader, field string, decode func(string) T) *T {
	if !r.some(field) {
		return nil
	}
	v := decode(field)
	return &v
}

func decodeAttributes(r *bincodeReader) map[string]string {
	n := r.u64("attributes")
	if r.err != nil {
		return nil
	}
	// Each entry takes at least two bytes (two empty strings): a count above
	// that is corrupt, and checking first keeps the map allocation bounded.
	if n > uint64(len(r.buf)-r.pos)/2 {
		r.fail("attributes", r.pos, ErrUnexpectedEnd)
		return nil
	}
	attrs := make(map[string]string, n)
	for range n {
		k := r.str("attributes.key")
		v := r.str("attributes.value")
		if r.err != nil {
			return nil
		}
		attrs[k] = v // a repeated key keeps the last value, as serde's HashMap
	}
	return attrs
}

// AppendMessage appends m encoded as the broker's WAL payload to dst.
// Attributes are written in key order so the output is deterministic.
func AppendMessage(dst []byte, m *Message) []byte {
	dst = appendVarint(dst, m.RequestID)
	dst = appendVarint(dst, m.MsgID.ProducerID)
	dst = appendString(dst, m.MsgID.TopicName)
	dst = appendString(dst, m.MsgID.BrokerAddr)
	dst = appendVarint(dst, m.MsgID.TopicOffset)
	dst = appendBytes(dst, m.Payload)
	dst = appendVarint(dst, m.PublishTime)
	dst = appendString(dst, m.ProducerName)
	dst = appendOptional(dst, m.SubscriptionName, appendString)
	dst = appendVarint(dst, uint64(len(m.Attributes)))
	for _, k := range slices.Sorted(maps.Keys(m.Attributes)) {
		dst = appendString(appendString(dst, k), m.Attributes[k])
	}
	dst = appendOptional(dst, m.SchemaID, appendVarint)
	dst = appendOptional(dst, m.SchemaVersion, func(b []byte, v uint32) []byte { return appendVarint(b, uint64(v)) })
	return appendOptional(dst, m.RoutingKey, appendString)
}

func appendOptional[T any](dst []byte, v *T, appendValue func([]byte, T) []byte) []byte {
	if v == nil {
		return append(dst, 0)
	}
	return appendValue(append(dst, 1), *v)
}

// ToProto converts m to the wire message consumers receive, so history and
// live messages can share one record mapping. A missing subscription name
// becomes "", as the broker's conversion does.
func (m *Message) ToProto() *danubepb.StreamMessage {
	var sub string
	if m.SubscriptionName != nil {
		sub = *m.SubscriptionName
	}
	return &danubepb.StreamMessage{
		RequestId: m.RequestID,
		MsgId: &danubepb.MsgID{
			ProducerId:  m.MsgID.ProducerID,
			TopicName:   m.MsgID.TopicName,
			BrokerAddr:  m.MsgID.BrokerAddr,
			TopicOffset: m.MsgID.TopicOffset,
		},
		Payload:          m.Payload,
		PublishTime:      m.PublishTime,
		ProducerName:     m.ProducerName,
		SubscriptionName: sub,
		Attributes:       m.Attributes,
		SchemaId:         m.SchemaID,
		SchemaVersion:    m.SchemaVersion,
		RoutingKey:       m.RoutingKey,
	}
}

// MessageFromProto converts a published message to what the broker's WAL
// stores: subscription_name becomes Some(name), as the broker's
// From<ProtoStreamMessage> does. A missing msg_id gives a zero MsgID.
func MessageFromProto(p *danubepb.StreamMessage) Message {
	sub := p.GetSubscriptionName()
	id := p.GetMsgId()
	return Message{
		RequestID: p.GetRequestId(),
		MsgID: MsgID{
			ProducerID:  id.GetProducerId(),
			TopicName:   id.GetTopicName(),
			BrokerAddr:  id.GetBrokerAddr(),
			TopicOffset: id.GetTopicOffset(),
		},
		Payload:          p.GetPayload(),
		PublishTime:      p.GetPublishTime(),
		ProducerName:     p.GetProducerName(),
		SubscriptionName: &sub,
		Attributes:       p.GetAttributes(),
		SchemaID:         p.SchemaId,
		SchemaVersion:    p.SchemaVersion,
		RoutingKey:       p.RoutingKey,
	}
}

// AppendMessageFrame appends m as one WAL frame at its topic offset, as the
// broker's WAL writer does.
func AppendMessageFrame(dst []byte, m *Message) []byte {
	return AppendFrame(dst, m.Offset(), AppendMessage(nil, m))
}
