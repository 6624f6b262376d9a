package source

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"

	"github.com/conduitio-labs/conduit-connector-danube/config"
	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/segment"
)

// Reader is an open source: the iterator reading the subscription and the
// clients it reads through.
type Reader struct {
	clients clients
	store   io.Closer // the history's segment store; nil without snapshot
	iter    Iterator
	encoder StructuredEncoder
}

// Open connects, subscribes to the configured topics and starts the iterator
// that cfg chooses. resume is the position of the last record Conduit
// processed (nil on the first start).
func Open(ctx context.Context, cfg *config.SourceConfig, resume opencdc.Position) (*Reader, error) {
	var pos *Position
	if resume != nil {
		p, err := ParsePosition(resume)
		if err != nil {
			return nil, fmt.Errorf("open at the last position: %w", err)
		}
		pos = &p
	}
	c, err := connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	spec := specOf(ctx, cfg)
	consumers, err := subscribe(ctx, c, spec)
	if err != nil {
		return nil, errors.Join(cfg.ExplainError(err), c.close())
	}
	// The subscription exists before history is read (subscribe above), so
	// the combined iterator misses nothing published meanwhile.
	var it Iterator
	var store *segment.BlobStore
	if cfg.Snapshot.Enabled {
		store, err = openStore(ctx, cfg, c.client.Storage(), consumers)
		if err != nil {
			return nil, errors.Join(err, closeConsumers(consumers), c.close())
		}
		it, err = NewCombined(CombinedConfig{
			Live:        liveConfig(cfg, spec, consumers),
			History:     SegmentHistory(c.client.Storage(), store, cfg.RetryPolicy()),
			SealTimeout: cfg.Snapshot.SealTimeout,
			Exported:    exportedTo(store),
		}, pos)
	} else {
		it, err = NewCDC(CDCConfig{
			Live:    liveConfig(cfg, spec, consumers),
			Ordered: cfg.Ordered(),
			Loss:    LossPolicy{Fail: cfg.OnLoss == config.OnLossFail, Timeout: cfg.LossTimeout},
		}, pos)
	}
	if err != nil {
		errs := []error{fmt.Errorf("open: %w", err), closeConsumers(consumers), c.close()}
		if store != nil {
			errs = append(errs, store.Close())
		}
		return nil, errors.Join(errs...)
	}
	warnUnfillableBatch(ctx, cfg, consumers)
	sdk.Logger(ctx).Info().Strs("topics", cfg.Topics).Str("subscription", spec.Subscription).
		Str("consumer", spec.ConsumerName).Str("type", cfg.SubscriptionType).Bool("resuming", pos != nil).
		Bool("snapshot", cfg.Snapshot.Enabled).Msg("danube source opened")
	r := &Reader{clients: c, iter: it}
	if store != nil {
		r.store = store
	}
	return r, nil
}

// warnUnfillableBatch warns when sdk.batch.size exceeds what the broker can
// have in flight to this consumer (partitions × window): such a batch never
// fills, so every batch waits out sdk.batch.delay.
func warnUnfillableBatch(ctx context.Context, cfg *config.SourceConfig, consumers []TopicConsumer) {
	if cfg.BatchSize == nil || cfg.BatchDelay == nil || *cfg.BatchDelay <= 0 {
		return
	}
	window := cfg.MaxUnackedMessages
	if window <= 0 {
		window = brokerDefaultWindow
	}
	inFlight := 0
	for _, tc := range consumers {
		inFlight += len(tc.Consumer.Partitions()) * window
	}
	if *cfg.BatchSize > inFlight {
		sdk.Logger(ctx).Warn().Int("sdk.batch.size", *cfg.BatchSize).Int("inFlight", inFlight).
			Dur("sdk.batch.delay", *cfg.BatchDelay).
			Msgf("sdk.batch.size %d is larger than the %d messages the broker hands this consumer before it is "+
				"acknowledged (partitions × window of %d; set maxUnackedMessages to the broker's "+
				"dispatch.max_unacked_messages if you raised it): every batch waits out sdk.batch.delay; keep the "+
				"batch size at or below %d, or leave the batch settings at their defaults", *cfg.BatchSize, inFlight,
				window, inFlight)
	}
}

func liveConfig(cfg *config.SourceConfig, spec subscriptionSpec, consumers []TopicConsumer) LiveConfig {
	return LiveConfig{
		Topics:         consumers,
		Retry:          cfg.RetryPolicy(),
		Buffer:         cfg.ReadBuffer,
		AckConcurrency: cfg.AckConcurrency,
		Subscription:   spec.Subscription,
		ConsumerName:   spec.ConsumerName,
	}
}

// Read returns the next record, blocking until there is one or ctx ends.
func (r *Reader) Read(ctx context.Context) (opencdc.Record, error) {
	rec, err := r.iter.Next(ctx)
	if err != nil {
		return opencdc.Record{}, fmt.Errorf("read: %w", err)
	}
	if err := r.encode(ctx, &rec); err != nil {
		return opencdc.Record{}, err
	}
	return rec, nil
}

// ReadN returns between 1 and n records, blocking only until the first.
func (r *Reader) ReadN(ctx context.Context, n int) ([]opencdc.Record, error) {
	recs, err := r.iter.NextN(ctx, n)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	for i := range recs {
		if err := r.encode(ctx, &recs[i]); err != nil {
			return nil, err
		}
	}
	return recs, nil
}

// encode gives the structured data of a restored record a schema, so that
// its values reach the next connector unchanged.
func (r *Reader) encode(ctx context.Context, rec *opencdc.Record) error {
	if err := r.encoder.Encode(ctx, rec); err != nil {
		return fmt.Errorf("read: record from %s offset %s: %w",
			rec.Metadata[MetadataTopic], rec.Metadata[MetadataOffset], err)
	}
	return nil
}

// Ack acknowledges the record at pos to the broker without waiting for it.
func (r *Reader) Ack(ctx context.Context, pos opencdc.Position) error {
	if err := r.iter.Ack(ctx, pos); err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	return nil
}

// Close waits, bounded by ctx, for pending acknowledgements and disconnects.
func (r *Reader) Close(ctx context.Context) error {
	errs := []error{r.iter.Close(ctx), r.clients.close()}
	if r.store != nil {
		errs = append(errs, r.store.Close())
	}
	return errors.Join(errs...)
}

// CreateSubscription subscribes with the configured names and closes again:
// the broker keeps the subscription and its position, so messages published
// from now on are kept for the pipeline.
func CreateSubscription(ctx context.Context, cfg *config.SourceConfig) error {
	c, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.close()
	spec := specOf(ctx, cfg)
	consumers, err := subscribe(ctx, c, spec)
	if err != nil {
		return cfg.ExplainError(err)
	}
	if err := closeConsumers(consumers); err != nil {
		return err
	}
	sdk.Logger(ctx).Info().Str("subscription", spec.Subscription).Strs("topics", cfg.Topics).
		Msg("subscription ready: messages published from now on are kept for the pipeline")
	return nil
}

// DeleteSubscription removes the subscription from every partition when
// adminURL is set; otherwise it reports what stays on the broker.
func DeleteSubscription(ctx context.Context, cfg *config.SourceConfig) error {
	sub := cfg.ResolvedSubscription(ctx)
	if cfg.AdminURL == "" {
		sdk.Logger(ctx).Warn().Str("subscription", sub).Strs("topics", cfg.Topics).
			Msg("adminURL is not set, so the subscription stays on the broker and keeps messages for it: " +
				"remove it with the admin API's Unsubscribe on each partition")
		return nil
	}
	c, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.close()
	if err := unsubscribe(ctx, c, cfg.Topics, sub); err != nil {
		return err
	}
	sdk.Logger(ctx).Info().Str("subscription", sub).Strs("topics", cfg.Topics).Msg("subscription removed")
	return nil
}

// clients are the broker connections the source uses; admin is nil without
// adminURL.
type clients struct {
	client *danubeclient.Client
	admin  *danubeclient.Admin
}

// connect builds the client, logging to Conduit's log, and, with adminURL,
// the admin client.
func connect(ctx context.Context, cfg *config.SourceConfig) (clients, error) {
	ccfg, err := cfg.ClientConfig(cfg.URL)
	if err != nil {
		return clients{}, fmt.Errorf("connect: %w", err)
	}
	ccfg.Logger = config.ClientLogger(sdk.Logger(ctx))
	client, err := danubeclient.NewClient(ccfg)
	if err != nil {
		return clients{}, fmt.Errorf("connect to %s: %w", cfg.URL, err)
	}
	c := clients{client: client}
	if cfg.AdminURL != "" {
		acfg, err := cfg.ClientConfig(cfg.AdminURL)
		if err == nil {
			c.admin, err = danubeclient.NewAdmin(acfg)
		}
		if err != nil {
			_ = client.Close()
			return clients{}, fmt.Errorf("connect to the admin API at %s: %w", cfg.AdminURL, err)
		}
	}
	return c, nil
}

// close closes the clients that are set.
func (c clients) close() error {
	var errs []error
	if c.admin != nil {
		errs = append(errs, c.admin.Close())
	}
	if c.client != nil {
		errs = append(errs, c.client.Close())
	}
	return errors.Join(errs...)
}

func specOf(ctx context.Context, cfg *config.SourceConfig) subscriptionSpec {
	return subscriptionSpec{
		Topics:        cfg.Topics,
		Subscription:  cfg.ResolvedSubscription(ctx),
		ConsumerName:  cfg.ResolvedConsumerName(ctx),
		Type:          cfg.DanubeSubscriptionType(),
		KeyFilters:    cfg.KeyFilters,
		Buffer:        cfg.ReadBuffer,
		MaxUnacked:    cfg.MaxUnackedMessages,
		CreateMissing: cfg.CreateMissingTopics,
		ReliableOnly:  cfg.Snapshot.Enabled,
	}
}
