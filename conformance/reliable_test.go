package conformance

import (
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/adminpb"
)

// quietWindow is how long a test watches for a delivery that must not come:
// several of the real broker's 500 ms dispatcher heartbeats and well past the
// fast failure policy's redelivery delays.
const quietWindow = 2500 * time.Millisecond

// reliableTopic creates a Reliable topic with a producer and, before anyone
// subscribes, gives subscription "s" the failure policy (nil: the default).
func reliableTopic(t *testing.T, policy *adminpb.SubscriptionFailurePolicy) (string, *danubeclient.Producer) {
	t.Helper()
	topic := newTopic(t)
	p := newProducer(t, shared.client(t), danubeclient.ProducerOptions{Topic: topic, Dispatch: danubeclient.Reliable})
	if policy != nil {
		setFailurePolicy(t, shared.wire(t), topic, "s", policy)
	}
	return topic, p
}

func TestUnackedWindowDefaultsToTen(t *testing.T) {
	is := is.New(t)
	topic, p := reliableTopic(t, nil)
	co := subscribe(t, shared.client(t), danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s"})

	send(t, p, payloads("m", 15)...)
	held := make([]*danubeclient.ReceivedMessage, 0, 10)
	for _, want := range payloads("m", 10) {
		m := receive(t, co)
		is.Equal(string(m.Payload), want)
		held = append(held, m)
	}
	expectNothing(t, co, quietWindow, "an 11th delivery while 10 are unacked")

	ack(t, co, held[0]) // one slot frees, one more message comes
	is.Equal(string(receive(t, co).Payload), "m-10")
	expectNothing(t, co, quietWindow, "a 12th delivery while 10 are unacked")
}

// TestSetMaxUnackedIsStoredButNotApplied pins broker v0.15.1: the admin call
// SetSubscriptionDispatchConfig only writes the value to the metadata store
// (resources/topic.rs set_subscription_dispatch_config); nothing reads it back
// when dispatching, so a subscription's window stays at the broker-wide
// dispatch.max_unacked_messages (10 in standalone mode).
func TestSetMaxUnackedIsStoredButNotApplied(t *testing.T) {
	is := is.New(t)
	topic, p := reliableTopic(t, nil)
	is.NoErr(shared.admin(t).SetMaxUnacked(opContext(t), topic, "s", 20))
	co := subscribe(t, shared.client(t), danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s"})

	resp, err := shared.wire(t).topics.GetSubscriptionDispatchConfig(opContext(t),
		&adminpb.GetSubscriptionDispatchConfigRequest{Topic: topic, Subscription: "s"})
	is.NoErr(err)
	is.Equal(resp.GetDispatchConfig().GetMaxUnackedMessages(), uint32(20)) // the setting is stored

	send(t, p, payloads("m", 25)...)
	for _, want := range payloads("m", 10) {
		is.Equal(string(receive(t, co).Payload), want)
	}
	expectNothing(t, co, quietWindow, "an 11th delivery: the stored window of 20 is not applied")
}

func TestAckTimeoutRedeliversTheSameMessage(t *testing.T) {
	is := is.New(t)
	topic, p := reliableTopic(t, fastFailurePolicy(5, adminpb.SubscriptionPoisonPolicy_Block))
	co := subscribe(t, shared.client(t), danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s"})

	send(t, p, "acked", "left")
	acked := receive(t, co)
	is.Equal(string(acked.Payload), "acked")
	ack(t, co, acked)
	left := receive(t, co)
	is.Equal(string(left.Payload), "left")
	deliveredAt := time.Now()

	again := receive(t, co)
	is.Equal(string(again.Payload), "left")                  // only the unacked message comes back…
	is.Equal(again.ID.Offset, left.ID.Offset)                // …as the same message…
	is.True(time.Since(deliveredAt) >= 900*time.Millisecond) // …once the 1 s ack timeout passed
	ack(t, co, again)
	expectNothing(t, co, quietWindow, "a redelivery of an acked message")
}

func TestNackRedeliversTheSameMessage(t *testing.T) {
	is := is.New(t)
	policy := fastFailurePolicy(5, adminpb.SubscriptionPoisonPolicy_Block)
	policy.MaxRedeliveryDelayMs = 5000 // the cap would also cut a requested delay
	topic, p := reliableTopic(t, policy)
	co := subscribe(t, shared.client(t), danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s"})
	send(t, p, "m")

	first := receive(t, co)
	is.NoErr(co.Nack(opContext(t), first.ID, 0, "retry at once"))
	second := receive(t, co)
	is.Equal(string(second.Payload), "m")
	is.Equal(second.ID.Offset, first.ID.Offset)

	// The broker waits min(max(policy delay, requested delay), max delay).
	const asked = 1500 * time.Millisecond
	nackedAt := time.Now()
	is.NoErr(co.Nack(opContext(t), second.ID, asked, "retry later"))
	third := receive(t, co)
	is.Equal(third.ID.Offset, first.ID.Offset)
	is.True(time.Since(nackedAt) >= asked-100*time.Millisecond)
	ack(t, co, third)
}

// TestRedeliveryLimit: a message is delivered max_redelivery_count+1 times;
// then the poison policy decides: Block stops the subscription, Drop skips the
// message and carries on.
func TestRedeliveryLimit(t *testing.T) {
	const maxRedeliveries = 2

	// exhaust nacks the message on every delivery and checks there are
	// exactly maxRedeliveries+1 deliveries of the same offset.
	exhaust := func(t *testing.T, co *danubeclient.Consumer) {
		t.Helper()
		is := is.New(t)
		var offset uint64
		for i := range maxRedeliveries + 1 {
			m := receive(t, co)
			is.Equal(string(m.Payload), "poison")
			if i == 0 {
				offset = m.ID.Offset
			}
			is.Equal(m.ID.Offset, offset)
			is.NoErr(co.Nack(opContext(t), m.ID, 0, "cannot process"))
		}
	}

	// poisoned subscribes with the given policy and exhausts one message.
	poisoned := func(t *testing.T, typ danubeclient.SubscriptionType, poison adminpb.SubscriptionPoisonPolicy) (*danubeclient.Producer, *danubeclient.Consumer) {
		t.Helper()
		topic, p := reliableTopic(t, fastFailurePolicy(maxRedeliveries, poison))
		co := subscribe(t, shared.client(t), danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s", Type: typ})
		send(t, p, "poison")
		exhaust(t, co)
		return p, co
	}

	for _, typ := range []danubeclient.SubscriptionType{danubeclient.Exclusive, danubeclient.Shared} {
		t.Run("block/"+typeName(typ), func(t *testing.T) {
			p, co := poisoned(t, typ, adminpb.SubscriptionPoisonPolicy_Block)
			send(t, p, "next")
			expectNothing(t, co, quietWindow, "any delivery on a blocked subscription")
		})

		t.Run("drop/"+typeName(typ), func(t *testing.T) {
			p, co := poisoned(t, typ, adminpb.SubscriptionPoisonPolicy_Drop)
			send(t, p, "next")
			is.New(t).Equal(receiveAndAck(t, co, 1), []string{"next"}) // the poison message is gone
		})
	}

	t.Run("ack timeouts count too", func(t *testing.T) {
		is := is.New(t)
		topic, p := reliableTopic(t, fastFailurePolicy(1, adminpb.SubscriptionPoisonPolicy_Drop))
		co := subscribe(t, shared.client(t), danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s"})
		send(t, p, "poison")
		first := receive(t, co)
		second := receive(t, co) // after the ack timeout
		is.Equal(second.ID.Offset, first.ID.Offset)
		send(t, p, "next")
		is.Equal(receiveAndAck(t, co, 1), []string{"next"})
		// At its second ack timeout the poison message is exhausted and dropped.
		expectNothing(t, co, quietWindow, "a third delivery of a message allowed 1 redelivery")
	})
}

func typeName(typ danubeclient.SubscriptionType) string {
	switch typ {
	case danubeclient.Exclusive:
		return "exclusive"
	case danubeclient.Shared:
		return "shared"
	case danubeclient.Failover:
		return "failover"
	case danubeclient.KeyShared:
		return "key-shared"
	default:
		return "unknown"
	}
}

// TestFailurePolicyAppliesFromSubscriptionCreation pins broker v0.15.1: the
// failure policy is read from the metadata store when the subscription is
// created (topic.rs subscribe → ensure_subscription_failure_policy); setting
// it afterwards changes nothing while the subscription lives. Set it first.
func TestFailurePolicyAppliesFromSubscriptionCreation(t *testing.T) {
	is := is.New(t)
	topic, p := reliableTopic(t, nil)
	co := subscribe(t, shared.client(t), danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s"})
	setFailurePolicy(t, shared.wire(t), topic, "s", fastFailurePolicy(5, adminpb.SubscriptionPoisonPolicy_Drop))

	stored, err := shared.wire(t).topics.GetSubscriptionFailurePolicy(opContext(t),
		&adminpb.GetSubscriptionFailurePolicyRequest{Topic: topic, Subscription: "s"})
	is.NoErr(err)
	is.Equal(stored.GetFailurePolicy().GetAckTimeoutMs(), uint64(1000)) // stored…

	send(t, p, "m")
	is.Equal(string(receive(t, co).Payload), "m")
	expectNothing(t, co, quietWindow, "a redelivery after the new 1 s ack timeout") // …but the 30 s timeout still rules
}
