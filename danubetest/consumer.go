package danubetest

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

type consumerService struct {
	danubepb.UnimplementedConsumerServiceServer
	b *Broker
}

// Subscribe never auto-creates the topic (NOT_FOUND "Unable to find the
// topic: {t}"). A known consumer_name takes the consumer over (same id, old
// stream ends OK, an EOF at the client); a new name on an Exclusive
// subscription with any consumer entry is PERMISSION_DENIED with the
// broker's text. Consumers are never removed (only Unsubscribe or Restart
// drops them), so Failover keeps its first consumer for good.
//
// Differs from the broker: no consumer or subscription limits; a NonReliable
// subscription is never reaped when idle, so an Exclusive one stays taken
// until Unsubscribe or Restart.
func (s consumerService) Subscribe(_ context.Context, req *danubepb.ConsumerRequest) (*danubepb.ConsumerResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	t, err := b.getTopicLocked(req.GetTopicName(), nil, nil, false)
	if err != nil {
		return nil, err
	}
	typ := subscriptionType(req.GetSubscriptionType())
	sub := t.subs[req.GetSubscription()]
	switch {
	case sub == nil:
		sub = b.newSubscriptionLocked(t, req.GetSubscription(), typ)
	case !sub.loaded:
		sub.load(typ)
	}
	if c := sub.byName[req.GetConsumerName()]; c != nil {
		b.takeoverLocked(c, nil)
		return &danubepb.ConsumerResponse{RequestId: req.GetRequestId(), ConsumerId: c.id, ConsumerName: c.name}, nil
	}
	if sub.typ == subExclusive && len(sub.consumer) > 0 {
		return nil, status.Errorf(codes.PermissionDenied, "Not able to subscribe to the topic %s due to Not allowed to add the Consumer: %s, the Exclusive subscription can't be shared with other consumers",
			t.name, req.GetConsumerName())
	}
	c := &consumer{
		id:         b.newIDLocked(),
		name:       req.GetConsumerName(),
		sub:        sub,
		active:     true, // active right after Subscribe, before any stream
		keyFilters: append([]string(nil), req.GetKeyFilters()...),
	}
	sub.consumer = append(sub.consumer, c)
	sub.byName[c.name] = c
	b.consumers[c.id] = c
	sub.keySharedAddConsumer(c)
	sub.signal()
	return &danubepb.ConsumerResponse{RequestId: req.GetRequestId(), ConsumerId: c.id, ConsumerName: c.name}, nil
}

// takeoverLocked ends the consumer's current stream with endErr (nil: OK),
// marks it active and reschedules what it had in flight.
func (b *Broker) takeoverLocked(c *consumer, endErr error) {
	if c.session != nil {
		c.session.end(endErr)
		c.session = nil
	}
	c.queue = nil
	c.active = true
	c.sub.rescheduleInFlight(c)
}

// ReceiveMessages streams the consumer's deliveries. A second call for the
// same id takes over: the older stream ends with OK and what it was sent
// stays in flight until the ack timeout (consumer.rs takeover reschedules
// nothing; Subscribe does). When a stream ends on its own, the
// consumer turns inactive and its unacked messages are sent again to the
// next stream or consumer (topic_control.rs trigger_dispatcher_on_reconnect).
//
// Differs from the broker: deliveries to a consumer queue here (bounded by
// the window), where the broker awaits the consumer's 4-slot channel and a
// consumer without a stream can stall a reliable dispatcher; and the queue is
// dropped on disconnect, where the broker's channel survives a reconnect and
// delivers those messages once more besides the rescheduled copies.
func (s consumerService) ReceiveMessages(req *danubepb.ReceiveRequest, stream danubepb.ConsumerService_ReceiveMessagesServer) error {
	b := s.b
	b.mu.Lock()
	c := b.consumers[req.GetConsumerId()]
	if c == nil {
		b.mu.Unlock()
		return status.Errorf(codes.NotFound, "The consumer with the id %d does not exist", req.GetConsumerId())
	}
	if c.session != nil {
		c.session.end(nil)
	}
	sess := newSession()
	c.session = sess
	if !c.active {
		c.active = true
		c.sub.signal()
	}
	b.mu.Unlock()

	// The real broker answers with headers as soon as the stream is attached;
	// clients wait for them before they treat the consumer as receiving.
	if err := stream.SendHeader(nil); err != nil {
		b.disconnect(c, sess)
		return fmt.Errorf("send headers to consumer %d: %w", c.id, err)
	}
	ctx := stream.Context()
	for {
		b.mu.Lock()
		var batch []*danubepb.StreamMessage
		if c.session == sess {
			batch, c.queue = c.queue, nil
		}
		b.mu.Unlock()
		for _, m := range batch {
			if err := stream.Send(m); err != nil {
				b.disconnect(c, sess)
				return fmt.Errorf("send to consumer %d: %w", c.id, err)
			}
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-sess.notify:
		case <-sess.done:
			return sess.err
		case <-ctx.Done():
			b.disconnect(c, sess)
			return contextStatus(ctx.Err())
		}
	}
}

// disconnect marks the consumer inactive when its live stream goes away and
// reschedules its in-flight messages, as the broker's stream task does.
func (b *Broker) disconnect(c *consumer, sess *session) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.session != sess {
		return
	}
	c.session = nil
	c.active = false
	c.queue = nil
	c.sub.rescheduleInFlight(c)
}

// Ack finds the topic by msg_id.topic_name and the subscription by name: an
// unknown one is INTERNAL "Error acknowledging message: Topic {t} not found
// in registry" / "…: Subscription not found"; a late or unknown offset is
// ignored. The cursor advances over contiguous acks only.
//
// Differs from the broker: a missing msg_id is INTERNAL (the broker panics);
// an ack during a reader stall applies at once (the broker queues it behind
// the blocked poll until the next publish; only the cursor shows it).
func (s consumerService) Ack(_ context.Context, req *danubepb.AckRequest) (*danubepb.AckResponse, error) {
	if req.GetMsgId() == nil {
		return nil, status.Errorf(codes.Internal, "ack has no msg_id (the real broker resets the stream)")
	}
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	sub, err := b.ackTargetLocked(req.GetMsgId().GetTopicName(), req.GetSubscriptionName())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "Error acknowledging message: %s", err.Error())
	}
	if sub.t.reliable {
		sub.ackLocked(req.GetMsgId().GetTopicOffset())
	}
	return &danubepb.AckResponse{RequestId: req.GetRequestId()}, nil
}

// Nack schedules a redelivery with the same offset after
// min(max(backoff, delay_ms), max delay); errors as Ack's.
//
// Differs from the broker: a missing msg_id is INTERNAL (the broker panics).
func (s consumerService) Nack(_ context.Context, req *danubepb.NackRequest) (*danubepb.NackResponse, error) {
	if req.GetMsgId() == nil {
		return nil, status.Errorf(codes.Internal, "nack has no msg_id (the real broker resets the stream)")
	}
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	sub, err := b.ackTargetLocked(req.GetMsgId().GetTopicName(), req.GetSubscriptionName())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "Error negatively acknowledging message: %s", err.Error())
	}
	if sub.t.reliable {
		delay := time.Duration(req.GetDelayMs()) * time.Millisecond
		sub.nackLocked(req.GetMsgId().GetTopicOffset(), delay, req.GetReason())
	}
	return &danubepb.NackResponse{RequestId: req.GetRequestId()}, nil
}

type ackError string

func (e ackError) Error() string { return string(e) }

func (b *Broker) ackTargetLocked(topicName, subName string) (*subscription, error) {
	t := b.topics[topicName]
	if t == nil || t.owner != b {
		return nil, ackError(fmt.Sprintf("Topic %s not found in registry", topicName))
	}
	sub := t.subs[subName]
	if sub == nil || !sub.loaded {
		return nil, ackError("Subscription not found")
	}
	return sub, nil
}
