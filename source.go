package danube

import (
	"context"
	"errors"
	"fmt"
	"time"

	cconfig "github.com/conduitio/conduit-commons/config"
	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"

	"github.com/conduitio-labs/conduit-connector-danube/config"
	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/segment"
	"github.com/conduitio-labs/conduit-connector-danube/source"
)

// sourceAckDrainTimeout bounds how long Teardown waits for acknowledgements
// still on their way to the broker; the rest are redelivered later.
const sourceAckDrainTimeout = 15 * time.Second

// errSourceNotOpen is returned by reads and acks before Open.
var errSourceNotOpen = errors.New("danube source is not open")

// Source reads Danube topics through a durable subscription and emits each
// message as an OpenCDC record (at-least-once; see source.CDC).
type Source struct {
	sdk.UnimplementedSource

	config  config.SourceConfig
	broker  source.Broker
	storage *source.StorageConn // snapshot.enabled only
	iter    source.Iterator
	encoder source.StructuredEncoder
}

// NewSource returns the source wrapped in its SDK middleware (batching and
// the schema context; see config.SourceMiddleware).
func NewSource() sdk.Source {
	return sdk.SourceWithMiddleware(&Source{})
}

// Config returns the source's parameters for the SDK to fill in.
func (s *Source) Config() sdk.SourceConfig {
	return &s.config
}

// Open subscribes to the configured topics and resumes after pos, the
// position of the last record Conduit processed (nil on the first start).
func (s *Source) Open(ctx context.Context, pos opencdc.Position) error {
	var resume *source.Position
	if pos != nil {
		p, err := source.ParsePosition(pos)
		if err != nil {
			return fmt.Errorf("open at the last position: %w", err)
		}
		resume = &p
	}
	b, err := connect(&s.config)
	if err != nil {
		return err
	}
	s.broker = b
	spec := subscriptionSpec(ctx, &s.config)
	consumers, err := source.Subscribe(ctx, b, spec)
	if err != nil {
		return fmt.Errorf("open: %w", s.config.ExplainError(err))
	}
	// The subscription exists before history is read (Subscribe above), so
	// the combined iterator misses nothing published meanwhile.
	if s.config.Snapshot.Enabled {
		s.iter, err = s.openCombined(spec, consumers, resume)
	} else {
		s.iter, err = source.NewCDC(source.CDCConfig{
			Topics:         consumers,
			Ordered:        s.config.Ordered(),
			Buffer:         s.config.ReadBuffer,
			AckConcurrency: s.config.AckConcurrency,
			Subscription:   spec.Subscription,
			ConsumerName:   spec.ConsumerName,
		}, resume)
	}
	if err != nil {
		_ = source.CloseConsumers(ctx, consumers)
		return fmt.Errorf("open: %w", err)
	}
	sdk.Logger(ctx).Info().Strs("topics", s.config.Topics).Str("subscription", spec.Subscription).
		Str("consumer", spec.ConsumerName).Str("type", s.config.SubscriptionType).Bool("resuming", resume != nil).
		Bool("snapshot", s.config.Snapshot.Enabled).Msg("danube source opened")
	return nil
}

// openCombined reads sealed history from the broker's durable storage, then
// the live subscription.
func (s *Source) openCombined(spec source.SubscriptionSpec, consumers []source.TopicConsumer,
	resume *source.Position,
) (source.Iterator, error) {
	cfg, err := s.config.ClientConfig(s.config.URL)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	s.storage, err = source.DialStorage(cfg)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	it, err := source.NewCombined(source.CombinedConfig{
		Topics:         consumers,
		History:        source.SegmentHistory(s.storage.Client(), segment.FileStore{Root: s.config.Snapshot.SegmentRoot}),
		SealTimeout:    s.config.Snapshot.SealTimeout,
		HoldLimit:      s.config.ReadBuffer,
		Buffer:         s.config.ReadBuffer,
		AckConcurrency: s.config.AckConcurrency,
		Subscription:   spec.Subscription,
		ConsumerName:   spec.ConsumerName,
	}, resume)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return it, nil
}

// Read returns the next record, blocking until there is one or ctx ends.
func (s *Source) Read(ctx context.Context) (opencdc.Record, error) {
	if s.iter == nil {
		return opencdc.Record{}, errSourceNotOpen
	}
	rec, err := s.iter.Next(ctx)
	if err != nil {
		return opencdc.Record{}, fmt.Errorf("read: %w", err)
	}
	if err := s.encode(ctx, &rec); err != nil {
		return opencdc.Record{}, err
	}
	return rec, nil
}

// ReadN returns between 1 and n records, blocking only until the first.
func (s *Source) ReadN(ctx context.Context, n int) ([]opencdc.Record, error) {
	if s.iter == nil {
		return nil, errSourceNotOpen
	}
	recs, err := s.iter.NextN(ctx, n)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	for i := range recs {
		if err := s.encode(ctx, &recs[i]); err != nil {
			return nil, err
		}
	}
	return recs, nil
}

// encode gives the structured data of a restored record a schema, so that
// its values reach the next connector unchanged.
func (s *Source) encode(ctx context.Context, rec *opencdc.Record) error {
	if err := s.encoder.Encode(ctx, rec); err != nil {
		return fmt.Errorf("read: record from %s offset %s: %w",
			rec.Metadata[source.MetadataTopic], rec.Metadata[source.MetadataOffset], err)
	}
	return nil
}

// Ack acknowledges the record at pos to the broker without waiting for it.
func (s *Source) Ack(ctx context.Context, pos opencdc.Position) error {
	if s.iter == nil {
		return errSourceNotOpen
	}
	if err := s.iter.Ack(ctx, pos); err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	return nil
}

// Teardown waits (bounded) for pending acknowledgements and disconnects. It
// works without Open.
func (s *Source) Teardown(ctx context.Context) error {
	var errs []error
	if s.iter != nil {
		drainCtx, cancel := context.WithTimeout(ctx, sourceAckDrainTimeout)
		errs = append(errs, s.iter.Close(drainCtx))
		cancel()
		s.iter = nil
	}
	errs = append(errs, s.broker.Close(), s.storage.Close())
	s.broker, s.storage = source.Broker{}, nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("teardown: %w", err)
	}
	return nil
}

// LifecycleOnCreated creates the durable subscription, so that messages
// published after the pipeline was created and before it first starts are
// kept for it (a new subscription only sees later messages).
func (s *Source) LifecycleOnCreated(ctx context.Context, raw cconfig.Config) error {
	c, err := s.lifecycleConfig(ctx, raw)
	if err != nil {
		return fmt.Errorf("create subscription: %w", err)
	}
	return createSubscription(ctx, &c)
}

// LifecycleOnUpdated creates the subscription the new parameters name (new
// topics or a new subscription name) and reports what the old one leaves.
func (s *Source) LifecycleOnUpdated(ctx context.Context, rawBefore, rawAfter cconfig.Config) error {
	after, err := config.ParseSource(ctx, rawAfter)
	if err != nil {
		return fmt.Errorf("update subscription: %w", err)
	}
	if before, err := config.ParseSource(ctx, rawBefore); err == nil &&
		before.SubscriptionName(ctx) != after.SubscriptionName(ctx) {
		sdk.Logger(ctx).Warn().Str("old", before.SubscriptionName(ctx)).Str("new", after.SubscriptionName(ctx)).
			Strs("topics", before.Topics).
			Msg("the subscription name changed: the new subscription starts at the topics' end, and the old one " +
				"stays on the broker (remove it with the admin API's Unsubscribe)")
	}
	return createSubscription(ctx, &after)
}

// LifecycleOnDeleted removes the subscription from every partition when
// adminURL is set; otherwise it reports what stays on the broker.
func (s *Source) LifecycleOnDeleted(ctx context.Context, raw cconfig.Config) error {
	c, err := config.ParseSource(ctx, raw)
	if err != nil {
		return fmt.Errorf("delete subscription: %w", err)
	}
	sub := c.SubscriptionName(ctx)
	if c.AdminURL == "" {
		sdk.Logger(ctx).Warn().Str("subscription", sub).Strs("topics", c.Topics).
			Msg("adminURL is not set, so the subscription stays on the broker and keeps messages for it: " +
				"remove it with the admin API's Unsubscribe on each partition")
		return nil
	}
	b, err := connect(&c)
	if err != nil {
		return fmt.Errorf("delete subscription: %w", err)
	}
	defer b.Close()
	if err := source.Unsubscribe(ctx, b, c.Topics, sub); err != nil {
		return fmt.Errorf("delete subscription: %w", err)
	}
	sdk.Logger(ctx).Info().Str("subscription", sub).Strs("topics", c.Topics).Msg("subscription removed")
	return nil
}

// lifecycleConfig returns the configured parameters, or parses raw when the
// source was not configured (the SDK may call hooks on a fresh instance).
func (s *Source) lifecycleConfig(ctx context.Context, raw cconfig.Config) (config.SourceConfig, error) {
	if s.config.URL != "" && len(s.config.Topics) > 0 {
		return s.config, nil
	}
	c, err := config.ParseSource(ctx, raw)
	if err != nil {
		return config.SourceConfig{}, fmt.Errorf("parse parameters: %w", err)
	}
	return c, nil
}

// createSubscription subscribes with the configured names and closes again:
// the broker keeps the subscription and its position.
func createSubscription(ctx context.Context, c *config.SourceConfig) error {
	b, err := connect(c)
	if err != nil {
		return fmt.Errorf("create subscription: %w", err)
	}
	defer b.Close()
	spec := subscriptionSpec(ctx, c)
	consumers, err := source.Subscribe(ctx, b, spec)
	if err != nil {
		return fmt.Errorf("create subscription: %w", c.ExplainError(err))
	}
	if err := source.CloseConsumers(ctx, consumers); err != nil {
		return fmt.Errorf("create subscription: %w", err)
	}
	sdk.Logger(ctx).Info().Str("subscription", spec.Subscription).Strs("topics", c.Topics).
		Msg("subscription ready: messages published from now on are kept for the pipeline")
	return nil
}

func subscriptionSpec(ctx context.Context, c *config.SourceConfig) source.SubscriptionSpec {
	return source.SubscriptionSpec{
		Topics:        c.Topics,
		Subscription:  c.SubscriptionName(ctx),
		ConsumerName:  c.Consumer(ctx),
		Type:          c.DanubeSubscriptionType(),
		KeyFilters:    c.KeyFilters,
		Buffer:        c.ReadBuffer,
		MaxUnacked:    c.MaxUnackedMessages,
		CreateMissing: c.CreateMissingTopics,
	}
}

// connect builds the client and, with adminURL, the admin client.
func connect(c *config.SourceConfig) (source.Broker, error) {
	cfg, err := c.ClientConfig(c.URL)
	if err != nil {
		return source.Broker{}, fmt.Errorf("connect: %w", err)
	}
	client, err := danubeclient.NewClient(cfg)
	if err != nil {
		return source.Broker{}, fmt.Errorf("connect to %s: %w", c.URL, err)
	}
	b := source.Broker{Client: client}
	if c.AdminURL != "" {
		acfg, err := c.ClientConfig(c.AdminURL)
		if err == nil {
			b.Admin, err = danubeclient.NewAdmin(acfg)
		}
		if err != nil {
			_ = client.Close()
			return source.Broker{}, fmt.Errorf("connect to the admin API at %s: %w", c.AdminURL, err)
		}
	}
	return b, nil
}
