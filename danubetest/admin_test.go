package danubetest

import (
	"errors"
	"io"
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
	subs, err := c.topics.ListSubscriptions(ctx, &adminpb.TopicRequest{Name: "/default/adm"})
	is.NoErr(err)
	is.Equal(subs.GetSubscriptions(), []string{"s1", "s2"})

	desc, err := c.topics.DescribeTopic(ctx, &adminpb.DescribeTopicRequest{Name: "/default/adm"})
	is.NoErr(err)
	is.Equal(desc.GetDelivery(), "Reliable")
	is.Equal(desc.GetSubscriptions(), []string{"s1", "s2"})

	// Unsubscribe removes the subscription and its consumers: the old
	// consumer's stream ends and another name may take the Exclusive slot.
	_, err = c.topics.Unsubscribe(ctx, &adminpb.SubscriptionRequest{Topic: "/default/adm", Subscription: "s1"})
	is.NoErr(err)
	is.True(errors.Is(first.waitEnd(), io.EOF)) // status OK
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
