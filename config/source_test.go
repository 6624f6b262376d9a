package config_test

import (
	"context"
	"strings"
	"testing"
	"time"

	cconfig "github.com/conduitio/conduit-commons/config"
	sdk "github.com/conduitio/conduit-connector-sdk"
	"github.com/matryer/is"

	danube "github.com/conduitio-labs/conduit-connector-danube"
	"github.com/conduitio-labs/conduit-connector-danube/config"
	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// parseSource parses raw as the SDK does before Open.
func parseSource(raw cconfig.Config) (config.SourceConfig, error) {
	var c config.SourceConfig
	err := sdk.Util.ParseConfig(context.Background(), raw, &c, danube.Connector.NewSpecification().SourceParams)
	return c, err
}

func validSource(t *testing.T) config.SourceConfig {
	t.Helper()
	c, err := parseSource(cconfig.Config{
		"url": "http://127.0.0.1:6650", "topics": "/default/orders,/default/users",
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSourceConfig_ParseAppliesTheSpecDefaults(t *testing.T) {
	is := is.New(t)
	c := validSource(t)
	is.Equal(c.Topics, []string{"/default/orders", "/default/users"})
	is.Equal(c.SubscriptionType, config.SubscriptionExclusive)
	is.Equal(c.ReadBuffer, 100)
	is.Equal(c.AckConcurrency, 8)
	is.True(!c.CreateMissingTopics)
	is.Equal(c.RetryMax, 5)
	is.Equal(c.DanubeSubscriptionType(), danubeclient.Exclusive)
	is.True(c.Ordered())
}

func TestSourceConfig_ValidateNamesTheParameter(t *testing.T) {
	tests := []struct {
		name    string
		change  func(c *config.SourceConfig)
		wantErr string
	}{
		{"no topics", func(c *config.SourceConfig) { c.Topics = nil }, `"topics" is required`},
		{"bad topic", func(c *config.SourceConfig) { c.Topics = []string{"orders"} }, `"topics"`},
		{"topic twice", func(c *config.SourceConfig) { c.Topics = []string{"/default/a", "/default/a"} }, `lists "/default/a" twice`},
		{"bad subscription", func(c *config.SourceConfig) { c.Subscription = "a/b" }, `"subscription" is "a/b"`},
		{"bad consumer name", func(c *config.SourceConfig) { c.ConsumerName = "x y" }, `"consumerName" is "x y"`},
		{"filters without keyShared", func(c *config.SourceConfig) { c.KeyFilters = []string{"a*"} }, `"keyFilters" only applies`},
		{"empty filter", func(c *config.SourceConfig) {
			c.SubscriptionType, c.KeyFilters = config.SubscriptionKeyShared, []string{"a*", " "}
		}, `"keyFilters" holds an empty pattern`},
		{"window too large", func(c *config.SourceConfig) { c.MaxUnackedMessages = 10001 }, `"maxUnackedMessages" is 10001`},
		{"window without admin", func(c *config.SourceConfig) { c.MaxUnackedMessages = 100 }, `"maxUnackedMessages" needs "adminURL"`},
		{"bad url", func(c *config.SourceConfig) { c.URL = "127.0.0.1" }, `"url"`},
		{"snapshot without root", func(c *config.SourceConfig) { c.Snapshot.Enabled = true }, `"snapshot.storage.root" (or "snapshot.segmentRoot") is required`},
		{"snapshot root missing", func(c *config.SourceConfig) {
			c.Snapshot.Enabled, c.Snapshot.SegmentRoot = true, "/nonexistent/durable"
		}, `"snapshot.segmentRoot"`},
		{"snapshot on shared", func(c *config.SourceConfig) {
			c.Snapshot.Enabled, c.Snapshot.SegmentRoot, c.SubscriptionType = true, t.TempDir(), config.SubscriptionShared
		}, `"snapshot.enabled" needs subscriptionType exclusive or failover`},
		{"snapshot without seal timeout", func(c *config.SourceConfig) {
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

	c, err := parseSource(cconfig.Config{
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
