package config

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/Masterminds/sprig/v3"
	sdk "github.com/conduitio/conduit-connector-sdk"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// Values of the destination's enumerated parameters.
const (
	DispatchReliable    = "reliable"
	DispatchNonReliable = "nonReliable"

	OrderingKey       = "key"
	OrderingPartition = "partition"
	OrderingNone      = "none"
)

// Bounds that catch typos rather than encode broker limits.
const (
	MaxPartitions   = 1024
	MaxMaxInFlight  = 10000
	MaxMaxProducers = 100000
)

// DestinationConfig holds the destination's parameters.
type DestinationConfig struct {
	DestinationMiddleware
	ServiceConnection

	// Topic is where records are written: a static topic "/namespace/topic",
	// or a Go template (with sprig functions) evaluated per record, e.g.
	// /default/{{ index .Metadata "opencdc.collection" }}. Names have two
	// non-empty segments of letters, digits, '_' and '-'; namespaces other
	// than "default" must exist on the broker.
	Topic string `json:"topic" validate:"required"`
	// Partitions is the number of partitions of each topic written: 0 writes
	// a plain topic, N writes the partitioned topic topic-part-0 …
	// topic-part-(N-1), choosing the partition from the record key.
	Partitions int `json:"partitions" default:"0" validate:"gt=-1"`
	// DispatchStrategy is the delivery mode of the topics this connector
	// creates: reliable (stored and acknowledged, at-least-once) or
	// nonReliable (lossy: messages are dropped when no consumer can take them).
	// It must match the strategy of topics that already exist.
	DispatchStrategy string `json:"dispatchStrategy" default:"reliable" validate:"inclusion=reliable|nonReliable"`
	// ProducerName names the producer on the broker. Keep it stable: after a
	// restart the same name resumes the same producer. Empty derives it from
	// the connector ID Conduit assigns.
	ProducerName string `json:"producerName"`

	// Schema optionally ties the producer to a subject of the broker's schema
	// registry.
	Schema DestinationSchema `json:"schema"`

	// Ordering says which records keep their relative order on the broker:
	// key (records with the same key and partition, the default),
	// partition (all records of a partition, less throughput), or none
	// (no order, the most throughput).
	Ordering string `json:"ordering" default:"key" validate:"inclusion=key|partition|none"`
	// MaxInFlight bounds the records sent to the broker but not yet
	// confirmed, per topic. Higher values give more throughput and memory use.
	MaxInFlight int `json:"maxInFlight" default:"256" validate:"gt=0"`
	// MaxProducers bounds the producers kept open, one per topic written.
	// When a topic template writes more topics than this, the producer of the
	// least recently written topic is closed (after its sends complete) and
	// created again when its topic is written again.
	MaxProducers int `json:"maxProducers" default:"256" validate:"gt=0"`
	// SendTimeout bounds the time from handing a record to the producer until
	// the broker confirms it, retries included. Records not confirmed in time
	// fail and are retried by Conduit.
	SendTimeout time.Duration `json:"sendTimeout" default:"30s"`

	// Metadata says how record metadata becomes message attributes.
	Metadata DestinationMetadata `json:"metadata"`
}

// DestinationSchema names a schema-registry subject.
type DestinationSchema struct {
	// Subject is the schema-registry subject messages are produced with.
	// Empty means no schema.
	Subject string `json:"subject"`
	// Version pins a version of the subject; 0 means the latest.
	Version int `json:"version" default:"0" validate:"gt=-1"`
}

// DestinationMetadata selects the metadata written as message attributes.
type DestinationMetadata struct {
	// Attributes writes record metadata as message attributes.
	Attributes bool `json:"attributes" default:"true"`
	// Include, when set, writes only these metadata keys (comma-separated;
	// a trailing * matches a prefix, e.g. opencdc.*).
	Include []string `json:"include"`
	// Exclude leaves out these metadata keys (comma-separated; a trailing *
	// matches a prefix). It applies after include.
	Exclude []string `json:"exclude"`
}

// Validate checks every destination parameter without touching the network.
func (c *DestinationConfig) Validate(ctx context.Context) error {
	var errs []error
	if err := c.DestinationMiddleware.Validate(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := c.ServiceConnection.Validate(ctx); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.RecordSerializer(); err != nil {
		errs = append(errs, err)
	}
	if err := validateTopicParam(c.Topic); err != nil {
		errs = append(errs, err)
	}
	if c.Partitions < 0 || c.Partitions > MaxPartitions {
		errs = append(errs, fmt.Errorf(`"partitions" is %d: use 0 for a plain topic or 1..%d partitions`,
			c.Partitions, MaxPartitions))
	}
	if c.DispatchStrategy != DispatchReliable && c.DispatchStrategy != DispatchNonReliable {
		errs = append(errs, fmt.Errorf(`"dispatchStrategy" is %q: use %q or %q`,
			c.DispatchStrategy, DispatchReliable, DispatchNonReliable))
	}
	if _, err := c.DanubeOrdering(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > MaxMaxInFlight {
		errs = append(errs, fmt.Errorf(`"maxInFlight" is %d: use 1..%d`, c.MaxInFlight, MaxMaxInFlight))
	}
	if c.MaxProducers < 1 || c.MaxProducers > MaxMaxProducers {
		errs = append(errs, fmt.Errorf(`"maxProducers" is %d: use 1..%d`, c.MaxProducers, MaxMaxProducers))
	}
	if c.SendTimeout <= 0 {
		errs = append(errs, fmt.Errorf(`"sendTimeout" is %v: it must be positive, e.g. 30s`, c.SendTimeout))
	}
	if c.Schema.Version < 0 || int64(c.Schema.Version) > int64(^uint32(0)) {
		errs = append(errs, fmt.Errorf(`"schema.version" is %d: use 0 (latest) or a registered version`, c.Schema.Version))
	}
	if c.Schema.Version > 0 && c.Schema.Subject == "" {
		errs = append(errs, errors.New(`"schema.version" is set without "schema.subject": set the subject too`))
	}
	errs = append(errs, validatePatterns("metadata.include", c.Metadata.Include)...)
	errs = append(errs, validatePatterns("metadata.exclude", c.Metadata.Exclude)...)
	return errors.Join(errs...)
}

// IsTopicTemplate reports whether the topic parameter is a template rather
// than a static name.
func IsTopicTemplate(topic string) bool {
	return strings.Contains(topic, "{{")
}

// ParseTopicTemplate parses the topic parameter as a Go template with sprig
// functions.
func ParseTopicTemplate(topic string) (*template.Template, error) {
	t, err := template.New("topic").Funcs(sprig.TxtFuncMap()).Option("missingkey=zero").Parse(topic)
	if err != nil {
		return nil, fmt.Errorf(`"topic" is not a valid Go template: %w`, err)
	}
	return t, nil
}

func validateTopicParam(topic string) error {
	switch {
	case topic == "":
		return errors.New(`"topic" is required: a topic "/namespace/topic" or a template such as ` +
			`/default/{{ index .Metadata "opencdc.collection" }}`)
	case IsTopicTemplate(topic):
		_, err := ParseTopicTemplate(topic)
		return err
	default:
		if err := danubeclient.ValidateTopic(topic); err != nil {
			return fmt.Errorf(`"topic": %w`, err)
		}
		return nil
	}
}

func validatePatterns(param string, patterns []string) []error {
	var errs []error
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		if p == "" || strings.Contains(strings.TrimSuffix(p, "*"), "*") {
			errs = append(errs, fmt.Errorf(`%q has the entry %q: use metadata keys, optionally ending in * for a prefix`,
				param, p))
		}
	}
	return errs
}

// DanubeDispatch returns the configured dispatch strategy.
func (c *DestinationConfig) DanubeDispatch() danubeclient.DispatchStrategy {
	if c.DispatchStrategy == DispatchNonReliable {
		return danubeclient.NonReliable
	}
	return danubeclient.Reliable
}

// DanubeOrdering returns the configured ordering.
func (c *DestinationConfig) DanubeOrdering() (danubeclient.Ordering, error) {
	switch c.Ordering {
	case OrderingKey:
		return danubeclient.OrderPerKey, nil
	case OrderingPartition:
		return danubeclient.OrderPerPartition, nil
	case OrderingNone:
		return danubeclient.OrderNone, nil
	default:
		return 0, fmt.Errorf(`"ordering" is %q: use %q, %q or %q`, c.Ordering, OrderingKey, OrderingPartition, OrderingNone)
	}
}

// RecordFormat is the configured sdk.record.format, e.g. "opencdc/json".
func (c *DestinationConfig) RecordFormat() string {
	if c.DestinationWithRecordFormat.RecordFormat == nil {
		return "opencdc/json"
	}
	return *c.DestinationWithRecordFormat.RecordFormat
}

// RecordSerializer returns the serializer of sdk.record.format configured
// with sdk.record.format.options: the one the SDK's record-format middleware
// uses. (The middleware's own check is not reached by the SDK's Validate, so
// a bad format would otherwise pass silently.)
func (c *DestinationConfig) RecordSerializer() (sdk.RecordSerializer, error) {
	format := c.RecordFormat()
	serializers := c.RecordSerializers
	if serializers == nil {
		serializers = c.DefaultRecordSerializers()
	}
	names := make([]string, 0, len(serializers))
	for _, s := range serializers {
		if s.Name() != format {
			names = append(names, s.Name())
			continue
		}
		configured, err := s.Configure(c.RecordFormatOptions)
		if err != nil {
			return nil, fmt.Errorf(`"sdk.record.format.options" do not suit the format %q: %w`, format, err)
		}
		return configured, nil
	}
	return nil, fmt.Errorf(`"sdk.record.format" is %q: use one of %s`, format, strings.Join(names, ", "))
}
