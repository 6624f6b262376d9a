package danubetest

import (
	"testing"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/adminpb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

func TestAdminNamespaces(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	ctx := ctxT(t)

	resp, err := c.ns.CreateNamespace(ctx, &adminpb.NamespaceRequest{Name: "team"})
	is.NoErr(err)
	is.True(resp.GetSuccess())
	_, err = c.ns.CreateNamespace(ctx, &adminpb.NamespaceRequest{Name: "team"})
	wantCode(t, err, codes.NotFound, "Unable to create the namespace team due to Namespace team already exists.")
	is.Equal(b.Namespaces(), []string{"default", "system", "team"})

	c.producer(t, "/team/t", "p", true)
	topics, err := c.ns.GetNamespaceTopics(ctx, &adminpb.NamespaceRequest{Name: "team"})
	is.NoErr(err)
	is.Equal(topics.GetTopics(), []string{"/team/t"})
	_, err = c.ns.DeleteNamespace(ctx, &adminpb.NamespaceRequest{Name: "team"})
	wantCode(t, err, codes.NotFound, "Unable to delete the namespace team due to Can't delete and non empty namespace: team")
}

func TestAdminTopicsAndSubscriptions(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	ctx := ctxT(t)

	_, err := c.topics.CreateTopic(ctx, &adminpb.NewTopicRequest{Name: "/default/adm", DispatchStrategy: adminpb.DispatchStrategy_Reliable})
	is.NoErr(err)
	_, err = c.topics.CreateTopic(ctx, &adminpb.NewTopicRequest{Name: "/default/adm", DispatchStrategy: adminpb.DispatchStrategy_Reliable})
	wantCode(t, err, codes.NotFound, "Unable to create the topic /default/adm due to Topic '/default/adm' already exists")

	first := c.consume(t, "/default/adm", "s1", "c1", exclusive)
	c.subscribe(t, "/default/adm", "s2", "c", shared)
	// One entry per metadata key: the subscription and its failure policy.
	subs, err := c.topics.ListSubscriptions(ctx, &adminpb.TopicRequest{Name: "/default/adm"})
	is.NoErr(err)
	is.Equal(subs.GetSubscriptions(), []string{"s1", "s1", "s2", "s2"})

	desc, err := c.topics.DescribeTopic(ctx, &adminpb.DescribeTopicRequest{Name: "/default/adm"})
	is.NoErr(err)
	is.Equal(desc.GetDelivery(), "Reliable")
	is.Equal(desc.GetSubscriptions(), []string{"s1", "s1", "s2", "s2"})

	// Unsubscribe refuses a subscription with an active consumer, and an
	// unknown one, with the same text.
	_, err = c.topics.Unsubscribe(ctx, &adminpb.SubscriptionRequest{Topic: "/default/adm", Subscription: "s1"})
	wantCode(t, err, codes.NotFound, "Unable to unsubscribe the subscription s1 due to error: Unable to unsubscribe as the subscription s1 has active consumers")
	_, err = c.topics.Unsubscribe(ctx, &adminpb.SubscriptionRequest{Topic: "/default/adm", Subscription: "none"})
	wantCode(t, err, codes.NotFound, "Unable to unsubscribe the subscription none due to error: Unable to unsubscribe as the subscription none has active consumers")

	// Once the consumer's stream is gone it removes the subscription, and
	// another name may take the Exclusive slot.
	unsubscribeOnceGone(t, b, c, first)
	is.Equal(b.Subscriptions("/default/adm"), []string{"s2"})
	c.subscribe(t, "/default/adm", "s1", "other", exclusive)

	_, err = c.topics.DeleteTopic(ctx, &adminpb.TopicRequest{Name: "/default/adm"})
	is.NoErr(err)
	_, err = c.disc.TopicLookup(ctx, &danubepb.TopicLookupRequest{Topic: "/default/adm"})
	wantCode(t, err, codes.NotFound, "")
}

func TestAdminFailurePolicy(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	ctx := ctxT(t)
	c.producer(t, "/default/fp", "p", true)
	c.producer(t, "/default/fpn", "p", false)

	get := func(sub string) *adminpb.GetSubscriptionFailurePolicyResponse {
		resp, err := c.topics.GetSubscriptionFailurePolicy(ctx, &adminpb.GetSubscriptionFailurePolicyRequest{Topic: "/default/fp", Subscription: sub})
		is.NoErr(err)
		return resp
	}
	is.True(get("s").FailurePolicy == nil) // nothing stored yet

	c.subscribe(t, "/default/fp", "s", "c", shared)
	def := get("s")
	is.Equal(def.GetSubscriptionType(), int32(1))
	is.Equal(def.GetFailurePolicy().GetMaxRedeliveryCount(), uint32(5))
	is.Equal(def.GetFailurePolicy().GetAckTimeoutMs(), uint64(30000))
	is.Equal(def.GetFailurePolicy().GetPoisonPolicy(), adminpb.SubscriptionPoisonPolicy_Block)

	fp := &adminpb.SubscriptionFailurePolicy{MaxRedeliveryCount: 2, AckTimeoutMs: 100, BaseRedeliveryDelayMs: 5, MaxRedeliveryDelayMs: 50, PoisonPolicy: adminpb.SubscriptionPoisonPolicy_Drop}
	_, err := c.topics.SetSubscriptionFailurePolicy(ctx, &adminpb.SetSubscriptionFailurePolicyRequest{Topic: "/default/fp", Subscription: "s", FailurePolicy: fp})
	is.NoErr(err)
	is.Equal(get("s").GetFailurePolicy().GetPoisonPolicy(), adminpb.SubscriptionPoisonPolicy_Drop)

	_, err = c.topics.SetSubscriptionFailurePolicy(ctx, &adminpb.SetSubscriptionFailurePolicyRequest{Topic: "/default/fpn", Subscription: "s", FailurePolicy: fp})
	wantCode(t, err, codes.FailedPrecondition, "subscription failure policy can only be configured for reliable topics")
	fp.PoisonPolicy = adminpb.SubscriptionPoisonPolicy_DeadLetter
	_, err = c.topics.SetSubscriptionFailurePolicy(ctx, &adminpb.SetSubscriptionFailurePolicyRequest{Topic: "/default/fp", Subscription: "s", FailurePolicy: fp})
	wantCode(t, err, codes.InvalidArgument, "dead_letter_topic must be configured when poison_policy is DeadLetter")
}

func TestAdminDispatchConfigIsStoredNotApplied(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	ctx := ctxT(t)
	c.producer(t, "/default/dc", "p", true)

	_, err := c.topics.SetSubscriptionDispatchConfig(ctx, &adminpb.SetSubscriptionDispatchConfigRequest{Topic: "/default/dc", Subscription: "s", DispatchConfig: &adminpb.SubscriptionDispatchConfig{MaxUnackedMessages: 0}})
	wantCode(t, err, codes.InvalidArgument, "max_unacked_messages must be between 1 and 10000")
	_, err = c.topics.SetSubscriptionDispatchConfig(ctx, &adminpb.SetSubscriptionDispatchConfigRequest{Topic: "/default/dc", Subscription: "s", DispatchConfig: &adminpb.SubscriptionDispatchConfig{MaxUnackedMessages: 250}})
	is.NoErr(err)
	got, err := c.topics.GetSubscriptionDispatchConfig(ctx, &adminpb.GetSubscriptionDispatchConfigRequest{Topic: "/default/dc", Subscription: "s"})
	is.NoErr(err)
	is.Equal(got.GetDispatchConfig().GetMaxUnackedMessages(), uint32(250))

	c.subscribe(t, "/default/dc", "s", "c", shared)
	st, _ := b.Subscription("/default/dc", "s")
	is.Equal(st.DispatchConfig, 250)
	is.Equal(st.MaxUnacked, DefaultMaxUnacked) // v0.15.1 never reads the stored value
}

// TestAdminListSubscriptionsOneEntryPerKey: the list grows with each key the
// broker writes under a subscription (cursor, dispatch config), and the
// dispatch config outlives Unsubscribe.
func TestAdminListSubscriptionsOneEntryPerKey(t *testing.T) {
	is := is.New(t)
	b := newBroker(t, WithCursorFlushInterval(-1))
	c := connect(t, b)
	ctx := ctxT(t)
	list := func() []string {
		t.Helper()
		resp, err := c.topics.ListSubscriptions(ctx, &adminpb.TopicRequest{Name: "/default/keys"})
		is.NoErr(err)
		return resp.GetSubscriptions()
	}
	p := c.producer(t, "/default/keys", "p", true)
	_, err := c.topics.SetSubscriptionDispatchConfig(ctx, &adminpb.SetSubscriptionDispatchConfigRequest{
		Topic: "/default/keys", Subscription: "s", DispatchConfig: &adminpb.SubscriptionDispatchConfig{MaxUnackedMessages: 20},
	})
	is.NoErr(err)
	is.Equal(list(), []string{"s"}) // dispatch_config only

	h := c.consume(t, "/default/keys", "s", "c", exclusive)
	is.Equal(list(), []string{"s", "s", "s"}) // + subscription, failure_policy

	p.send("m")
	h.ack(h.next())
	b.PersistCursors()
	is.Equal(list(), []string{"s", "s", "s", "s"}) // + cursor

	unsubscribeOnceGone(t, b, c, h)
	is.Equal(list(), []string{"s"}) // the broker leaves dispatch_config behind
}

// unsubscribeOnceGone ends h's stream, waits until the broker no longer
// counts its consumer as active and unsubscribes h's subscription.
func unsubscribeOnceGone(t *testing.T, b *Broker, c clients, h *consumerHandle) {
	t.Helper()
	h.cancel()
	eventually(t, "the consumer to become inactive", func() bool {
		st, _ := b.Subscription(h.topic, h.sub)
		return len(st.Active) == 0
	})
	if _, err := c.topics.Unsubscribe(ctxT(t), &adminpb.SubscriptionRequest{Topic: h.topic, Subscription: h.sub}); err != nil {
		t.Fatalf("Unsubscribe(%s, %s): %v", h.topic, h.sub, err)
	}
}
