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
