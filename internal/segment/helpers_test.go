package segment

import (
	"fmt"
	"testing"
)

// testMessage is a message at offset off with a payload naming it.
func testMessage(off uint64) Message {
	sub := ""
	return Message{
		RequestID:        off + 1,
		MsgID:            MsgID{ProducerID: 42, TopicName: "/default/orders", BrokerAddr: "http://127.0.0.1:6650", TopicOffset: off},
		Payload:          fmt.Appendf(nil, "message %d", off),
		PublishTime:      1_700_000_000_000 + off,
		ProducerName:     "producer",
		SubscriptionName: &sub,
		Attributes:       map[string]string{"n": fmt.Sprint(off)},
	}
}

// framesBytes encodes the messages at offsets as one segment, in that order.
func framesBytes(offsets ...uint64) []byte {
	var b []byte
	for _, off := range offsets {
		m := testMessage(off)
		b = AppendMessageFrame(b, &m)
	}
	return b
}

// segmentBytes encodes the messages at offsets [from, to] as one segment.
func segmentBytes(t *testing.T, from, to uint64) []byte {
	t.Helper()
	var b []byte
	for off := from; off <= to; off++ {
		m := testMessage(off)
		b = AppendMessageFrame(b, &m)
	}
	return b
}
