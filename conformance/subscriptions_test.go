package conformance

import (
	"errors"
	"slices"
	"testing"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/adminpb"
)

// TestNewSubscriptionStartsAtLatest also shows that Subscribe returns only
// once the subscription exists: a message sent right after it returns is
// delivered, with no pause in between.
func TestNewSubscriptionStartsAtLatest(t *testing.T) {
	is := is.New(t)
	c := shared.client(t)
	topic := newTopic(t)
	p := newProducer(t, c, danubeclient.ProducerOptions{Topic: topic, Dispatch: danubeclient.Reliable})

	send(t, p, payloads("before", 3)...)
	first := subscribe(t, c, danubeclient.ConsumerOptions{Topic: topic, Name: "c1", Subscription: "first"})
	send(t, p, payloads("after", 3)...)
	is.Equal(receiveAndAck(t, first, 3), payloads("after", 3)) // nothing from before the subscription

	second := subscribe(t, c, danubeclient.ConsumerOptions{Topic: topic, Name: "c2", Subscription: "second"})
	send(t, p, "later")
	is.Equal(receiveAndAck(t, second, 1), []string{"later"}) // a later subscription starts later still
	is.Equal(receiveAndAck(t, first, 1), []string{"later"})
}

func TestReliableOffsetsAreDenseFromZero(t *testing.T) {
	is := is.New(t)
	c := shared.client(t)
	topic := newTopic(t)
	p := newProducer(t, c, danubeclient.ProducerOptions{Topic: topic, Dispatch: danubeclient.Reliable})
	co := subscribe(t, c, danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s"})

	send(t, p, payloads("m", 4)...)
	for i := range 4 {
		m := receive(t, co)
		ack(t, co, m)
		is.Equal(m.ID.Topic, topic)
		is.Equal(m.ID.Offset, uint64(i)) // the first message of a topic is offset 0
	}
}

func TestNonReliableOffsetsAreZero(t *testing.T) {
	is := is.New(t)
	c := shared.client(t)
	topic := newTopic(t)
	p := newProducer(t, c, danubeclient.ProducerOptions{Topic: topic, Dispatch: danubeclient.NonReliable})
	co := subscribe(t, c, danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s"})

	send(t, p, payloads("m", 3)...)
	for _, want := range payloads("m", 3) {
		m := receive(t, co)
		is.Equal(string(m.Payload), want)
		is.Equal(m.ID.Offset, uint64(0)) // nothing is stored, nothing is numbered
		ack(t, co, m)                    // a no-op on NonReliable, but not an error
	}
}

func TestSubscriptionKeepsItsPlaceAcrossReconnects(t *testing.T) {
	for _, tc := range []struct {
		name         string
		typ          danubeclient.SubscriptionType
		secondName   string
		unackedCheck bool
	}{
		{"exclusive, same consumer name", danubeclient.Exclusive, "c", true},
		{"shared, same consumer name", danubeclient.Shared, "c", true},
		{"shared, another consumer name", danubeclient.Shared, "other", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			topic := newTopic(t)
			p := newProducer(t, shared.client(t), danubeclient.ProducerOptions{Topic: topic, Dispatch: danubeclient.Reliable})
			opts := danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s", Type: tc.typ}

			// A separate client per consumer, as a restarted process would have.
			first := subscribe(t, shared.client(t), opts)
			send(t, p, payloads("a", 3)...)
			is.Equal(receiveAndAck(t, first, 3), payloads("a", 3))
			is.NoErr(first.Close())

			send(t, p, payloads("b", 3)...) // while nobody is connected
			opts.Name = tc.secondName
			second := subscribe(t, shared.client(t), opts)
			is.Equal(receiveDistinctAndAck(t, second, 3), payloads("b", 3)) // from where it stopped, not from Latest

			if !tc.unackedCheck {
				return
			}
			send(t, p, "unacked")
			m := receive(t, second)
			for slices.Contains(payloads("b", 3), string(m.Payload)) { // a late duplicate
				ack(t, second, m)
				m = receive(t, second)
			}
			is.Equal(string(m.Payload), "unacked")
			is.NoErr(second.Close())

			third := subscribe(t, shared.client(t), opts)
			again := receive(t, third)
			is.Equal(string(again.Payload), "unacked") // an unacked message comes back…
			is.Equal(again.ID.Offset, m.ID.Offset)     // …as the same message
			ack(t, third, again)
		})
	}
}

func TestExclusiveSubscription(t *testing.T) {
	is := is.New(t)
	topic := newTopic(t)
	p := newProducer(t, shared.client(t), danubeclient.ProducerOptions{Topic: topic, Dispatch: danubeclient.Reliable})
	owner := danubeclient.ConsumerOptions{Topic: topic, Name: "owner", Subscription: "s", Type: danubeclient.Exclusive}
	intruder := owner
	intruder.Name = "intruder"

	wantTaken := func(t *testing.T, what string) {
		t.Helper()
		_, err := shared.client(t).Subscribe(opContext(t), intruder)
		if !errors.Is(err, danubeclient.ErrSubscriptionTaken) {
			t.Fatalf("%s: %v, want ErrSubscriptionTaken", what, err)
		}
		wantCode(t, err, codes.PermissionDenied, what)
	}

	first := subscribe(t, shared.client(t), owner)
	wantTaken(t, "another consumer while the owner is connected")

	is.NoErr(first.Close())
	// The broker never removes a consumer entry, so the lock outlives the
	// connection (until an admin Unsubscribe or a broker restart).
	wantTaken(t, "another consumer after the owner disconnected")

	// The owner's name takes the subscription over.
	second := subscribe(t, shared.client(t), owner)
	send(t, p, "for-the-owner")
	is.Equal(receiveAndAck(t, second, 1), []string{"for-the-owner"})

	// An admin Unsubscribe (allowed once no consumer is connected) frees it.
	// In a cluster another broker's metadata may lag a moment behind.
	admin := shared.admin(t)
	subs, err := admin.ListSubscriptions(opContext(t), topic)
	is.NoErr(err)
	is.True(slices.Contains(subs, "s"))
	is.NoErr(second.Close())
	waitFor(t, "Unsubscribe to succeed once the owner is gone", func() (bool, error) {
		return admin.Unsubscribe(opContext(t), topic, "s") == nil, nil
	})
	waitFor(t, "the subscription to leave the listing", func() (bool, error) {
		subs, err := shared.admin(t).ListSubscriptions(opContext(t), topic)
		return !slices.Contains(subs, "s"), err
	})
	subscribe(t, shared.client(t), intruder)
}

// TestListSubscriptionsRepeatsNames pins the broker's ListSubscriptions: it
// lists one entry per metadata key under each subscription (the subscription
// itself, its failure policy, later its cursor and dispatch config), so a name
// appears more than once (resources/topic.rs get_subscription_for_topic).
func TestListSubscriptionsRepeatsNames(t *testing.T) {
	is := is.New(t)
	topic, _ := reliableTopic(t, nil)
	subscribe(t, shared.client(t), danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s"})

	raw, err := shared.wire(t).topics.ListSubscriptions(opContext(t), &adminpb.TopicRequest{Name: topic})
	is.NoErr(err)
	is.True(len(raw.Subscriptions) >= 2) // "s" for the subscription and "s" for its failure policy
	for _, name := range raw.Subscriptions {
		is.Equal(name, "s")
	}
}

// TestAdminListsEachSubscriptionOnce: whatever the broker repeats, the
// client reports each subscription name once.
func TestAdminListsEachSubscriptionOnce(t *testing.T) {
	is := is.New(t)
	topic, _ := reliableTopic(t, nil)
	c := shared.client(t)
	subscribe(t, c, danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s"})
	subscribe(t, c, danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "t"})

	subs, err := shared.admin(t).ListSubscriptions(opContext(t), topic)
	is.NoErr(err)
	slices.Sort(subs)
	is.Equal(subs, []string{"s", "t"})
}

// TestUnsubscribeUnknownSubscription: the broker answers NOT_FOUND, with a
// misleading text ("… has active consumers"), because
// topic_control.rs unsubscribe treats "no such subscription" like "busy".
func TestUnsubscribeUnknownSubscription(t *testing.T) {
	topic, _ := reliableTopic(t, nil)
	_, err := shared.wire(t).topics.Unsubscribe(opContext(t), &adminpb.SubscriptionRequest{Topic: topic, Subscription: "none"})
	wantCode(t, err, codes.NotFound, "Unsubscribe of an unknown subscription")
}

// TestFailoverNeverPromotesAStandby pins broker v0.15.1: Failover runs on the
// exclusive dispatcher and the first consumer stays the active one for good;
// when it disconnects, dispatch waits for it (same name) instead of switching
// to the standby.
func TestFailoverNeverPromotesAStandby(t *testing.T) {
	is := is.New(t)
	topic, p := reliableTopic(t, nil)
	first := danubeclient.ConsumerOptions{Topic: topic, Name: "first", Subscription: "s", Type: danubeclient.Failover}
	standbyOpts := first
	standbyOpts.Name = "standby"

	active := subscribe(t, shared.client(t), first)
	standby := subscribe(t, shared.client(t), standbyOpts)
	send(t, p, "one")
	is.Equal(receiveAndAck(t, active, 1), []string{"one"})

	is.NoErr(active.Close())
	send(t, p, "two")
	expectNothing(t, standby, quietWindow, "a delivery to the standby after the active consumer left")

	back := subscribe(t, shared.client(t), first)
	is.Equal(receiveAndAck(t, back, 1), []string{"two"})
}

// TestSharedRoundRobin: a Shared subscription alternates between its active
// consumers.
func TestSharedRoundRobin(t *testing.T) {
	is := is.New(t)
	topic, p := reliableTopic(t, nil)
	consumers := map[string]*danubeclient.Consumer{}
	for _, name := range []string{"a", "b"} {
		consumers[name] = subscribe(t, shared.client(t), danubeclient.ConsumerOptions{
			Topic: topic, Name: name, Subscription: "s", Type: danubeclient.Shared,
		})
	}
	send(t, p, payloads("m", 10)...)
	perConsumer := map[string]int{}
	for _, d := range collect(t, consumers, 10, noNack) {
		perConsumer[d.consumer]++
	}
	is.Equal(perConsumer, map[string]int{"a": 5, "b": 5})
}
