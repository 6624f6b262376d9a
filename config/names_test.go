package config

import (
	"context"
	"testing"

	"github.com/matryer/is"
)

func TestSourceConfig_StableDefaultNames(t *testing.T) {
	is := is.New(t)
	c := SourceConfig{}
	is.Equal(c.ResolvedSubscription(context.Background()), "conduit-danube-source") // no connector ID (tests)
	is.Equal(c.subscriptionFor("pipeline:danube-in"), "conduit-pipeline:danube-in")
	is.Equal(c.consumerFor("pipeline:danube-in"), "conduit-pipeline:danube-in")
	is.Equal(c.subscriptionFor("p/1 é"), "conduit-p_1__")

	c.Subscription, c.ConsumerName = "orders-sub", "node-a"
	is.Equal(c.subscriptionFor("pipeline:danube-in"), "orders-sub")
	is.Equal(c.consumerFor("pipeline:danube-in"), "node-a")
}

func TestSourceConfig_SharedConsumersAreNamedPerHost(t *testing.T) {
	is := is.New(t)
	defer func(h func() string) { hostname = h }(hostname)
	hostname = func() string { return "node-7.example" }
	c := SourceConfig{SubscriptionType: SubscriptionShared}
	is.Equal(c.consumerFor("pipeline:danube-in"), "conduit-pipeline:danube-in-node-7.example")
	c.SubscriptionType = SubscriptionKeyShared
	is.Equal(c.consumerFor("p"), "conduit-p-node-7.example")
	c.SubscriptionType = SubscriptionExclusive // one consumer: the name must not depend on the host
	is.Equal(c.consumerFor("p"), "conduit-p")
	c.SubscriptionType, c.ConsumerName = SubscriptionShared, "mine"
	is.Equal(c.consumerFor("p"), "mine")
}
