package config

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

func validDestinationConfig() DestinationConfig {
	return DestinationConfig{
		ServiceConnection: ServiceConnection{
			URL:             "http://127.0.0.1:6650",
			RetryMax:        5,
			RetryMaxBackoff: 5 * time.Second,
		},
		Topic:            "/default/orders",
		DispatchStrategy: DispatchReliable,
		Ordering:         OrderingKey,
		MaxInFlight:      256,
		MaxProducers:     256,
		SendTimeout:      30 * time.Second,
		Metadata:         DestinationMetadata{Attributes: true},
	}
}

func TestDestinationConfig_Valid(t *testing.T) {
	is := is.New(t)
	for _, topic := range []string{
		"/default/orders",
		"/sales/orders_2024-q1",
		`/default/{{ index .Metadata "opencdc.collection" }}`,
		`/default/{{ index .Metadata "opencdc.collection" | lower }}`,
	} {
		cfg := validDestinationConfig()
		cfg.Topic = topic
		is.NoErr(cfg.Validate(context.Background()))
	}
}

func TestDestinationConfig_RejectsEachBadValueByName(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*DestinationConfig)
		want   []string // substrings of the error
	}{
		{"empty topic", func(c *DestinationConfig) { c.Topic = "" }, []string{`"topic" is required`}},
		{"topic without namespace", func(c *DestinationConfig) { c.Topic = "orders" }, []string{`"topic"`, "orders"}},
		{"topic with bad chars", func(c *DestinationConfig) { c.Topic = "/default/a b" }, []string{`"topic"`}},
		{"broken template", func(c *DestinationConfig) { c.Topic = "/default/{{ .Metadata" }, []string{`"topic" is not a valid Go template`}},
		{"negative partitions", func(c *DestinationConfig) { c.Partitions = -1 }, []string{`"partitions" is -1`}},
		{"absurd partitions", func(c *DestinationConfig) { c.Partitions = 100000 }, []string{`"partitions" is 100000`, "1..1024"}},
		{"unknown strategy", func(c *DestinationConfig) { c.DispatchStrategy = "best" }, []string{`"dispatchStrategy" is "best"`, "reliable"}},
		{"unknown ordering", func(c *DestinationConfig) { c.Ordering = "total" }, []string{`"ordering" is "total"`, `"key"`}},
		{"zero maxInFlight", func(c *DestinationConfig) { c.MaxInFlight = 0 }, []string{`"maxInFlight" is 0`}},
		{"absurd maxInFlight", func(c *DestinationConfig) { c.MaxInFlight = 1 << 20 }, []string{`"maxInFlight"`}},
		{"zero sendTimeout", func(c *DestinationConfig) { c.SendTimeout = 0 }, []string{`"sendTimeout" is 0s`}},
		{"negative schema version", func(c *DestinationConfig) { c.Schema.Version = -2 }, []string{`"schema.version" is -2`}},
		{"version without subject", func(c *DestinationConfig) { c.Schema.Version = 3 }, []string{`"schema.subject"`}},
		{"empty include entry", func(c *DestinationConfig) { c.Metadata.Include = []string{"a", " "} }, []string{`"metadata.include"`}},
		{"inner wildcard", func(c *DestinationConfig) { c.Metadata.Exclude = []string{"a*b"} }, []string{`"metadata.exclude"`, `"a*b"`}},
		{
			"unknown record format", func(c *DestinationConfig) { c.DestinationWithRecordFormat.RecordFormat = formatName("xml") },
			[]string{`"sdk.record.format" is "xml"`, "opencdc/json"},
		},
		{"broken format template", func(c *DestinationConfig) {
			c.DestinationWithRecordFormat.RecordFormat = formatName("template")
			c.RecordFormatOptions = "{{ .Payload"
		}, []string{`"sdk.record.format.options"`}},
		{"connection checked", func(c *DestinationConfig) { c.URL = "" }, []string{`"url" is required`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			cfg := validDestinationConfig()
			tc.mutate(&cfg)
			err := cfg.Validate(context.Background())
			is.True(err != nil)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func formatName(s string) *string { return &s }

func TestDestinationConfig_RecordFormatDefault(t *testing.T) {
	is := is.New(t)
	cfg := validDestinationConfig()
	is.Equal(cfg.RecordFormat(), "opencdc/json")
	cfg.DestinationWithRecordFormat.RecordFormat = formatName("template")
	is.Equal(cfg.RecordFormat(), "template")
}
