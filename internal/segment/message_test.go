package segment

import (
	"errors"
	"testing"

	"github.com/matryer/is"
	"google.golang.org/protobuf/proto"
)

// fullMessage is a StreamMessage written byte by byte from bincode 2's
// standard configuration and the field order of danube_core::message. The
// bytes are identical to bincode::serde::encode_to_vec(&msg,
// bincode::config::standard()) of bincode 2.0.1 for the same value.
var fullMessage = []byte{
	0x01,             // request_id 1
	0xFB, 0x2C, 0x01, // msg_id.producer_id 300: marker 251 + u16 LE
	0x0A, '/', 'd', 'e', 'f', 'a', 'u', 'l', 't', '/', 't', // msg_id.topic_name: len 10 + bytes
	0x00,                         // msg_id.broker_addr ""
	0xFC, 0x70, 0x11, 0x01, 0x00, // msg_id.topic_offset 70000: marker 252 + u32 LE
	0x02, 0xDE, 0xAD, // payload: len 2 + bytes
	0xFD, 0x00, 0x68, 0xE5, 0xCF, 0x8B, 0x01, 0x00, 0x00, // publish_time 1700000000000: marker 253 + u64 LE
	0x01, 'p', // producer_name "p"
	0x01, 0x00, // subscription_name Some("")
	0x01, 0x01, 'k', 0x01, 'v', // attributes: 1 entry, "k" => "v"
	0x01, 0x05, // schema_id Some(5)
	0x01, 0xFB, 0xFB, 0x00, // schema_version Some(251): 251 needs the u16 marker
	0x00, // routing_key None
}

func fullMessageValue() Message {
	empty, schemaID, schemaVersion := "", uint64(5), uint32(251)
	return Message{
		RequestID:        1,
		MsgID:            MsgID{ProducerID: 300, TopicName: "/default/t", TopicOffset: 70000},
		Payload:          []byte{0xDE, 0xAD},
		PublishTime:      1700000000000,
		ProducerName:     "p",
		SubscriptionName: &empty,
		Attributes:       map[string]string{"k": "v"},
		SchemaID:         &schemaID,
		SchemaVersion:    &schemaVersion,
	}
}

// minimalMessage: every integer 0, every string empty, every Option None but
// routing_key Some("key").
var minimalMessage = []byte{
	0x00,                   // request_id
	0x00, 0x00, 0x00, 0x00, // msg_id: producer_id, topic_name, broker_addr, topic_offset
	0x00,       // payload
	0x00,       // publish_time
	0x00,       // producer_name
	0x00,       // subscription_name None
	0x00,       // attributes: 0 entries
	0x00, 0x00, // schema_id, schema_version None
	0x01, 0x03, 'k', 'e', 'y', // routing_key Some("key")
}

func TestDecodeMessageHandBuilt(t *testing.T) {
	is := is.New(t)
	m, err := DecodeMessage(fullMessage)
	is.NoErr(err)
	is.Equal(m, fullMessageValue())
	is.Equal(m.Offset(), uint64(70000))
}

func TestDecodeMessageMinimal(t *testing.T) {
	is := is.New(t)
	m, err := DecodeMessage(minimalMessage)
	is.NoErr(err)
	key := "key"
	is.Equal(m, Message{Payload: []byte{}, Attributes: map[string]string{}, RoutingKey: &key})
}

func TestAppendMessageWritesTheDocumentedLayout(t *testing.T) {
	is := is.New(t)
	full := fullMessageValue()
	is.Equal(AppendMessage(nil, &full), fullMessage)
	key := "key"
	is.Equal(AppendMessage(nil, &Message{RoutingKey: &key}), minimalMessage)
}

func TestAppendMessageVarintWidths(t *testing.T) {
	is := is.New(t)
	for _, tc := range []struct {
		v    uint64
		want []byte
	}{
		{250, []byte{250}},
		{251, []byte{0xFB, 0xFB, 0x00}},
		{0xFFFF, []byte{0xFB, 0xFF, 0xFF}},
		{0x10000, []byte{0xFC, 0x00, 0x00, 0x01, 0x00}},
		{0xFFFF_FFFF, []byte{0xFC, 0xFF, 0xFF, 0xFF, 0xFF}},
		{0x1_0000_0000, []byte{0xFD, 0, 0, 0, 0, 1, 0, 0, 0}},
	} {
		got := AppendMessage(nil, &Message{RequestID: tc.v})
		is.Equal(got[:len(tc.want)], tc.want) // request_id is the first field
		m, err := DecodeMessage(got)
		is.NoErr(err)
		is.Equal(m.RequestID, tc.v)
	}
}

func TestDecodeMessageAcceptsWiderVarintsAndTrailingBytes(t *testing.T) {
	is := is.New(t)
	// request_id 1 written with the u16 marker, and one byte after the
	// message: bincode 2.0.1 decodes this as request_id 1 and stops before
	// the extra byte.
	buf := append([]byte{0xFB, 0x01, 0x00}, minimalMessage[1:]...)
	buf = append(buf, 0x99)
	m, err := DecodeMessage(buf)
	is.NoErr(err)
	is.Equal(m.RequestID, uint64(1))
}

func TestDecodeMessageEveryTruncationFails(t *testing.T) {
	is := is.New(t)
	for n := range len(fullMessage) {
		_, err := DecodeMessage(fullMessage[:n])
		is.True(errors.Is(err, ErrUnexpectedEnd)) // every proper prefix is cut short
	}
}

func TestDecodeMessageRejectsCorruptFields(t *testing.T) {
	for name, tc := range map[string]struct {
		edit  func([]byte) []byte
		want  error
		field string
	}{
		"option tag 2": {
			edit:  func(b []byte) []byte { b[35] = 2; return b }, // subscription_name tag
			want:  ErrInvalidOption,
			field: "subscription_name",
		},
		"u64 marker on a u32": {
			edit: func(b []byte) []byte {
				return append(b[:44], 0x01, 0xFD, 1, 0, 0, 0, 0, 0, 0, 0, 0x00)
			},
			want:  ErrInvalidInteger,
			field: "schema_version",
		},
		"u128 marker on a u64": {
			edit:  func(b []byte) []byte { b[0] = 0xFE; return b },
			want:  ErrInvalidInteger,
			field: "request_id",
		},
		"reserved marker 255": {
			edit:  func(b []byte) []byte { b[0] = 0xFF; return b },
			want:  ErrInvalidInteger,
			field: "request_id",
		},
		"invalid UTF-8": {
			edit:  func(b []byte) []byte { b[5] = 0xFF; return b }, // inside topic_name
			want:  ErrInvalidUTF8,
			field: "msg_id.topic_name",
		},
		"payload length beyond the end": {
			edit:  func(b []byte) []byte { b[21] = 0xFC; b[22], b[23], b[24], b[25] = 0xFF, 0xFF, 0xFF, 0x7F; return b },
			want:  ErrUnexpectedEnd,
			field: "payload",
		},
		"attribute count beyond the end": {
			edit:  func(b []byte) []byte { return append(b[:37], 0xFD, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF) },
			want:  ErrUnexpectedEnd,
			field: "attributes",
		},
	} {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			_, err := DecodeMessage(tc.edit(append([]byte(nil), fullMessage...)))
			is.True(errors.Is(err, tc.want))
			var me *MessageError
			is.True(errors.As(err, &me))
			is.Equal(me.Field, tc.field)
		})
	}
}

func TestDecodeMessageRepeatedAttributeKeepsTheLast(t *testing.T) {
	is := is.New(t)
	buf := append([]byte(nil), minimalMessage[:9]...)
	buf = append(buf, 0x02, 0x01, 'k', 0x01, '1', 0x01, 'k', 0x01, '2') // 2 entries, same key
	buf = append(buf, minimalMessage[10:]...)
	m, err := DecodeMessage(buf)
	is.NoErr(err)
	is.Equal(m.Attributes, map[string]string{"k": "2"})
}

func TestDecodeMessageCopiesPayload(t *testing.T) {
	is := is.New(t)
	buf := append([]byte(nil), fullMessage...)
	m, err := DecodeMessage(buf)
	is.NoErr(err)
	buf[22] = 0
	is.Equal(m.Payload, []byte{0xDE, 0xAD})
}

func TestMessageProtoConversion(t *testing.T) {
	is := is.New(t)
	m := fullMessageValue()
	p := m.ToProto()
	is.Equal(p.GetMsgId().GetTopicOffset(), uint64(70000))
	is.Equal(p.GetSubscriptionName(), "")
	is.Equal(p.GetSchemaVersion(), uint32(251))
	back := MessageFromProto(p)
	is.Equal(back, m)
	is.True(proto.Equal(back.ToProto(), p))

	// A missing subscription name goes on the wire as "" and comes back as
	// Some(""), as the broker stores produced messages.
	m.SubscriptionName = nil
	is.Equal(*MessageFromProto(m.ToProto()).SubscriptionName, "")
}
