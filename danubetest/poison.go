package danubetest

import (
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// deadLetter republishes an exhausted message to the subscription's dead
// letter topic with the broker's x-original-* attributes. It reports false
// (the entry stays, like Block) when there is no such topic.
//
// Differs from the broker: the message keeps its original producer fields
// and is appended to the dead-letter topic directly (which must exist); the
// broker sends it through an internal producer.
func (s *subscription) deadLetter(offset uint64, p *pending) bool {
	dlq := s.b.topics[s.policy.deadLetterTopic]
	if dlq == nil {
		return false
	}
	msg, ok := proto.Clone(p.msg).(*danubepb.StreamMessage)
	if !ok {
		return false
	}
	if msg.Attributes == nil {
		msg.Attributes = map[string]string{}
	}
	msg.Attributes["x-original-topic"] = s.t.name
	msg.Attributes["x-original-subscription"] = s.name
	msg.Attributes["x-original-topic-offset"] = strconv.FormatUint(offset, 10)
	msg.Attributes["x-original-producer-id"] = strconv.FormatUint(p.msg.GetMsgId().GetProducerId(), 10)
	msg.Attributes["x-original-broker-addr"] = p.msg.GetMsgId().GetBrokerAddr()
	msg.Attributes["x-poison-policy"] = "dead_letter"
	msg.Attributes["x-delivery-attempt"] = strconv.Itoa(p.attempts)
	msg.Attributes["x-failure-reason"] = p.reason
	msg.MsgId.TopicName = dlq.name
	s.b.publishLocked(dlq, msg)
	return true
}
