package config

import (
	"context"
	"strings"
	"testing"
	"time"

	cconfig "github.com/conduitio/conduit-commons/config"
	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danube"
)

func validSource(t *testing.T) SourceConfig {
	t.Helper()
	c, err := ParseSource(context.Background(), cconfig.Config{
		"url": "http://127.0.0.1:6650", "topics": "/default/orders,/default/users",
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseSource_AppliesTagDefaults(t *testing.T) {
	is := is.New(t)
	c := validSource(t)
	is.Equal(c.Topics, []string{"/default/orders", "/default/users"})
	is.Equal(c.SubscriptionType, SubscriptionExclusive)
	is.Equal(c.ReadBuffer, 100)
	is.Equal(c.AckConcurrency, 8)
	is.True(c.CreateMissingTopics)
	is.Equal(c.RetryMax, 5)
	is.Equal(c.DanubeSubscriptionType(), danube.Exclusive)
	is.True(c.Ordered())
}

func TestSourceConfig_ValidateNamesTheParameter(t *testing.T) {
	tests := []struct {
		name    string
		change  func(c *SourceConfig)
		wantErr string
	}{
		{"no topics", func(c *SourceConfig) { c.Topics = nil }, `"topics" is required`},
		{"bad topic", func(c *SourceConfig) { c.Topics = []string{"orders"} }, `"topics"`},
		{"topic twice", func(c *SourceConfig) { c.Topics = []string{"/default/a", "/default/a"} }, `lists "/default/a" twice`},
		{"bad subscription", func(c *SourceConfig) { c.Subscription = "a/b" }, `"subscription" is "a/b"`},
		{"bad consumer name", func(c *SourceConfig) { c.ConsumerName = "x y" }, `"consumerName" is "x y"`},
		{"bad type", func(c *SourceConfig) { c.SubscriptionType = "queue" }, `"subscriptionType" is "queue"`},
		{"filters without keyShared", func(c *SourceConfig) { c.KeyFilters = []string{"a*"} }, `"keyFilters" only applies`},
		{"empty filter", func(c *SourceConfig) {
			c.SubscriptionType, c.KeyFilters = SubscriptionKeyShared, []string{"a*", " "}
		}, `"keyFilters" holds an empty pattern`},
		{"window too large", func(c *SourceConfig) { c.MaxUnackedMessages = 10001 }, `"maxUnackedMessages" is 10001`},
		{"window without admin", func(c *SourceConfig) { c.MaxUnackedMessages = 100 }, `"maxUnackedMessages" needs "adminURL"`},
		{"no read buffer", func(c *SourceConfig) { c.ReadBuffer = 0 }, `"readBuffer" is 0`},
		{"no ack workers", func(c *SourceConfig) { c.AckConcurrency = 0 }, `"ackConcurrency" is 0`},
		{"bad url", func(c *SourceConfig) { c.URL = "127.0.0.1" }, `"url"`},
		{"snapshot without root", func(c *SourceConfig) { c.Snapshot.Enabled = true }, `"snapshot.segmentRoot" is required`},
		{"snapshot root missing", func(c *SourceConfig) {
			c.Snapshot.Enabled, c.Snapshot.SegmentRoot = true, "/nonexistent/durable"
		}, `"snapshot.segmentRoot"`},
		{"snapshot on shared", func(c *SourceConfig) {
			c.Snapshot.Enabled, c.Snapshot.SegmentRoot, c.SubscriptionType = true, t.TempDir(), SubscriptionShared
		}, `"snapshot.enabled" needs subscriptionType exclusive or failover`},
		{"snapshot without seal timeout", func(c *SourceConfig) {
			c.Snapshot.Enabled, c.Snapshot.SegmentRoot, c.Snapshot.SealTimeout = true, t.TempDir(), 0
		}, `"snapshot.sealTimeout" is 0s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validSource(t)
			tt.change(&c)
			err := c.Validate(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v does not say %q", err, tt.wantErr)
			}
		})
	}
}

func TestSourceConfig_SnapshotIsOffByDefault(t *testing.T) {
	is := is.New(t)
	c := validSource(t)
	is.True(!c.Snapshot.Enabled)
	is.Equal(c.Snapshot.SealTimeout, 10*time.Minute)

	c, err := ParseSource(context.Background(), cconfig.Config{
		"url": "http://127.0.0.1:6650", "topics": "/default/orders",
		"snapshot.enabled": "true", "snapshot.segmentRoot": t.TempDir(),
	})
	is.NoErr(err)
	is.True(c.Snapshot.Enabled)
}

func TestSourceConfig_WindowWithAdminIsValid(t *testing.T) {
	is := is.New(t)
	c := validSource(t)
	c.AdminURL, c.MaxUnackedMessages = "http://127.0.0.1:50051", 1000
	is.NoErr(c.Validate(context.Background()))
}

func TestSourceConfig_StableDefaultNames(t *testing.T) {
	is := is.New(t)
	c := validSource(t)
	is.Equal(c.SubscriptionName(context.Background()), "conduit-danube-source") // no connector ID (tests)
	is.Equal(c.subscriptionFor("pipeline:danube-in"), "conduit-pipeline:danube-in")
	is.Equal(c.consumerFor("pipeline:danube-in"), "conduit-pipeline:danube-in")
	is.Equal(c.subscriptionFor("p/1 é"), "conduit-p_1__")

	c.Subscription, c.ConsumerName = "orders-sub", "node-a"
	is.Equal(c.subscriptionFor("pipeline:danube-in"), "orders-sub")
	is.Equal(c.consumerFor("pipeline:danube-in"), "node-a")
}
