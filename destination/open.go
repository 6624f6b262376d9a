package destination

import (
	"context"
	"errors"
	"fmt"

	sdk "github.com/conduitio/conduit-connector-sdk"

	"github.com/conduitio-labs/conduit-connector-danube/config"
	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// fallbackProducerName is used when neither producerName nor a connector ID
// is known (e.g. outside Conduit).
const fallbackProducerName = "conduit-connector-danube"

// Open connects to the broker described by cfg. For a static topic it
// creates the producer right away, so a missing namespace or a strategy
// mismatch fails Open rather than the first Write.
func Open(ctx context.Context, cfg *config.DestinationConfig) (*Writer, error) {
	clientCfg, err := cfg.ClientConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("connection parameters: %w", err)
	}
	clientCfg.Logger = config.ClientLogger(sdk.Logger(ctx))
	client, err := danubeclient.NewClient(clientCfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", cfg.URL, err)
	}
	opts, err := producerOptions(ctx, cfg)
	if err != nil {
		return nil, errors.Join(err, client.Close())
	}
	w, err := New(cfg, func(ctx context.Context, topic string) (Producer, error) {
		o := opts
		o.Topic = topic
		p, err := client.NewProducer(ctx, o)
		if err != nil {
			return nil, cfg.ExplainError(err)
		}
		return p, nil
	})
	if err != nil {
		return nil, errors.Join(err, client.Close())
	}
	w.closeClient = client.Close
	if topic, ok := w.router.Static(); ok {
		if _, err := w.producers.get(ctx, topic); err != nil {
			return nil, errors.Join(err, w.Close(ctx))
		}
	}
	logOpened(ctx, cfg, opts.Name)
	return w, nil
}

// logOpened says once what the destination writes to; nothing secret.
func logOpened(ctx context.Context, cfg *config.DestinationConfig, producer string) {
	auth := "none"
	if cfg.Token != "" || cfg.TokenFile != "" {
		auth = "jwt"
	}
	topicField := "topic"
	if config.IsTopicTemplate(cfg.Topic) {
		topicField = "topicTemplate"
	}
	sdk.Logger(ctx).Info().Str("url", cfg.URL).Bool("tls", cfg.UseTLS()).Str("auth", auth).
		Str(topicField, cfg.Topic).Int("partitions", cfg.Partitions).Int("maxProducers", cfg.MaxProducers).
		Str("dispatchStrategy", cfg.DispatchStrategy).Str("ordering", cfg.Ordering).Str("producer", producer).
		Msg("destination connected to Danube")
}

// producerOptions holds everything but the topic.
func producerOptions(ctx context.Context, cfg *config.DestinationConfig) (danubeclient.ProducerOptions, error) {
	ordering, err := cfg.DanubeOrdering()
	if err != nil {
		return danubeclient.ProducerOptions{}, err
	}
	opts := danubeclient.ProducerOptions{
		Name:        ProducerName(ctx, cfg.ProducerName),
		Partitions:  cfg.Partitions,
		Dispatch:    cfg.DanubeDispatch(),
		MaxInFlight: cfg.MaxInFlight,
		Ordering:    ordering,
	}
	if cfg.Schema.Subject != "" {
		opts.Schema = &danubeclient.SchemaRef{Subject: cfg.Schema.Subject, Version: uint32(cfg.Schema.Version)}
	}
	return opts, nil
}

// ProducerName is the configured name, else the connector ID Conduit assigns
// (stable across restarts, unique per connector), else a fixed name.
func ProducerName(ctx context.Context, configured string) string {
	if configured != "" {
		return configured
	}
	if id := sdk.ConnectorIDFromContext(ctx); id != "" {
		return id
	}
	return fallbackProducerName
}
