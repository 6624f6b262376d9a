package danubetest

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

type producerService struct {
	danubepb.UnimplementedProducerServiceServer
	b *Broker
}

// CreateProducer finds or auto-creates the topic (getTopicLocked) and
// registers the producer, as broker_service.rs get_topic and the producer
// handler do: a bad name is INVALID_ARGUMENT "The topic: {t} has an invalid
// format…"; a missing namespace UNAVAILABLE "Unable to find the namespace
// {ns}…"; auto-create off NOT_FOUND; a strategy mismatch or a refused schema
// subject FAILED_PRECONDITION; a plain/partitioned clash ALREADY_EXISTS
// (with the broker's prefix scan, so /ns/a is refused when /ns/ab-part-0
// exists). The same (topic, producer_name) gets the same producer_id back.
// The creator's schema subject is recorded unchecked; on a loaded topic the
// first producer naming a registered subject assigns it.
//
// Differs from the broker: a new topic is created and served on the spot,
// as a standalone broker does; no producer limit (never RESOURCE_EXHAUSTED).
func (s producerService) CreateProducer(_ context.Context, req *danubepb.ProducerRequest) (*danubepb.ProducerResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	strategy := req.GetDispatchStrategy()
	t, err := b.getTopicLocked(req.GetTopicName(), &strategy, req.GetSchemaRef(), true)
	if err != nil {
		return nil, err
	}
	p := t.producers[req.GetProducerName()]
	if p == nil {
		p = &producer{id: b.newIDLocked(), name: req.GetProducerName(), topic: t}
		t.producers[p.name] = p
		b.producers[p.id] = p
	}
	return &danubepb.ProducerResponse{
		RequestId:    req.GetRequestId(),
		ProducerId:   p.id,
		ProducerName: req.GetProducerName(),
	}, nil
}

// SendMessage routes by msg_id.producer_id and msg_id.topic_name, as the
// broker: an unknown producer is NOT_FOUND "The producer with id {id} does
// not exist", a topic or producer mismatch PERMISSION_DENIED "Unable to
// publish the message: …", a request over 4 MiB OUT_OF_RANGE with tonic's
// text (sizeLimitUnary).
//
// Differs from the broker: the 4 MiB check is made on the re-encoded request
// after grpc-go decoded it; a missing msg_id is INTERNAL (the broker panics
// and the client sees a reset stream); no message size policy, rate limit or
// schema validation of payloads.
func (s producerService) SendMessage(_ context.Context, req *danubepb.StreamMessage) (*danubepb.MessageResponse, error) {
	if req.GetMsgId() == nil {
		// The real broker panics here and the client sees a reset stream.
		return nil, status.Errorf(codes.Internal, "message has no msg_id (the real broker resets the stream)")
	}
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	id := req.GetMsgId().GetProducerId()
	if b.producers[id] == nil {
		return nil, status.Errorf(codes.NotFound, "The producer with id %d does not exist", id)
	}
	name := req.GetMsgId().GetTopicName()
	t := b.topics[name]
	if t == nil || t.owner != b {
		return nil, status.Errorf(codes.PermissionDenied, "Unable to publish the message: Topic %s not found in registry", name)
	}
	if t.draining {
		return nil, status.Errorf(codes.PermissionDenied, "Unable to publish the message: Topic %s is draining or closed; retry lookup/moved", name)
	}
	if b.producers[id].topic != t {
		return nil, status.Errorf(codes.PermissionDenied, "Unable to publish the message: the producer with id %d is not attached to topic name: %s", id, name)
	}
	msg, ok := proto.Clone(req).(*danubepb.StreamMessage)
	if !ok {
		return nil, status.Errorf(codes.Internal, "clone message")
	}
	msg.SubscriptionName = ""
	b.publishLocked(t, msg)
	return &danubepb.MessageResponse{RequestId: req.GetRequestId()}, nil
}

// publishLocked appends to a reliable topic's log (stamping the offset) and
// wakes its subscriptions, or pushes a non-reliable message to the consumers.
func (b *Broker) publishLocked(t *topic, msg *danubepb.StreamMessage) {
	if !t.reliable {
		b.dispatchNonReliableLocked(t, msg)
		return
	}
	msg.MsgId.TopicOffset = uint64(len(t.log))
	t.log = append(t.log, msg)
	b.autoSealLocked(t)
	for _, sub := range t.subs {
		sub.signal()
	}
}
