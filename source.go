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
	"github.com/conduitio-labs/conduit-connector-danube/source"
)

// sourceAckDrainTimeout bounds how long Teardown waits for acknowledgements
// still on their way to the broker; the rest are redelivered later.
const sourceAckDrainTimeout = 15 * time.Second

// errSourceNotOpen is returned by reads and acks before Open.
var errSourceNotOpen = errors.New("danube source is not open")

// Source reads Danube topics through a durable subscription and emits each
// message as an OpenCDC record, at least once (see source.CDC).
type Source struct {
	sdk.UnimplementedSource

	config config.SourceConfig
	reader *source.Reader
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
	r, err := source.Open(ctx, &s.config, pos)
	if err != nil {
		return fmt.Errorf("open source: %w", err)
	}
	s.reader = r
	return nil
}

// Read returns the next record, blocking until there is one or ctx ends.
func (s *Source) Read(ctx context.Context) (opencdc.Record, error) {
	if s.reader == nil {
		return opencdc.Record{}, errSourceNotOpen
	}
	rec, err := s.reader.Read(ctx)
	return rec, logFailure(ctx, "read", err)
}

// ReadN returns between 1 and n records, blocking only until the first.
func (s *Source) ReadN(ctx context.Context, n int) ([]opencdc.Record, error) {
	if s.reader == nil {
		return nil, errSourceNotOpen
	}
	recs, err := s.reader.ReadN(ctx, n)
	return recs, logFailure(ctx, "read", err)
}

// Ack acknowledges the record at pos to the broker without waiting for it.
func (s *Source) Ack(ctx context.Context, pos opencdc.Position) error {
	if s.reader == nil {
		return errSourceNotOpen
	}
	return logFailure(ctx, "acknowledge", s.reader.Ack(ctx, pos))
}

// logFailure logs err, the error that stops the pipeline, and returns it.
// The SDK ends the source's stream with it, but Conduit rarely shows it:
// forwarding the acknowledgement of a record still in the pipeline fails
// first ("failed to forward ack to source connector: EOF"), that stops the
// pipeline, and the read error is dropped with the cancelled context. Our
// log lines reach Conduit's log. A stop (a cancelled context) is no failure.
func logFailure(ctx context.Context, what string, err error) error {
	if err == nil || ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return err
	}
	sdk.Logger(ctx).Error().Err(err).Msgf("danube source: %s failed; the pipeline stops", what)
	return err
}

// Teardown waits (bounded) for pending acknowledgements and disconnects. It
// works without Open.
func (s *Source) Teardown(ctx context.Context) error {
	if s.reader == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, sourceAckDrainTimeout)
	defer cancel()
	err := s.reader.Close(ctx)
	s.reader = nil
	if err != nil {
		return fmt.Errorf("teardown source: %w", err)
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
	if err := source.CreateSubscription(ctx, &c); err != nil {
		return fmt.Errorf("create subscription: %w", err)
	}
	return nil
}

// LifecycleOnUpdated creates the subscription the new parameters name (new
// topics or a new subscription name) and reports what the old one leaves.
func (s *Source) LifecycleOnUpdated(ctx context.Context, rawBefore, rawAfter cconfig.Config) error {
	after, err := parseSourceConfig(ctx, rawAfter)
	if err != nil {
		return fmt.Errorf("update subscription: %w", err)
	}
	if before, err := parseSourceConfig(ctx, rawBefore); err == nil &&
		before.ResolvedSubscription(ctx) != after.ResolvedSubscription(ctx) {
		sdk.Logger(ctx).Warn().Str("old", before.ResolvedSubscription(ctx)).Str("new", after.ResolvedSubscription(ctx)).
			Strs("topics", before.Topics).
			Msg("the subscription name changed: the new subscription starts at the topics' end, and the old one " +
				"stays on the broker (remove it with the admin API's Unsubscribe)")
	}
	if err := source.CreateSubscription(ctx, &after); err != nil {
		return fmt.Errorf("update subscription: %w", err)
	}
	return nil
}

// LifecycleOnDeleted removes the subscription from every partition when
// adminURL is set; otherwise it reports what stays on the broker.
func (s *Source) LifecycleOnDeleted(ctx context.Context, raw cconfig.Config) error {
	c, err := parseSourceConfig(ctx, raw)
	if err != nil {
		return fmt.Errorf("delete subscription: %w", err)
	}
	if err := source.DeleteSubscription(ctx, &c); err != nil {
		return fmt.Errorf("delete subscription: %w", err)
	}
	return nil
}

// parseSourceConfig parses raw as the SDK does before Open: defaults and
// bounds from the specification, then Validate. The lifecycle hooks get the
// raw parameters.
func parseSourceConfig(ctx context.Context, raw cconfig.Config) (config.SourceConfig, error) {
	var c config.SourceConfig
	if err := sdk.Util.ParseConfig(ctx, raw, &c, Connector.NewSpecification().SourceParams); err != nil {
		return config.SourceConfig{}, fmt.Errorf("source parameters: %w", err)
	}
	return c, nil
}

// lifecycleConfig returns the configured parameters, or parses raw when the
// source was not configured (the SDK may call hooks on a fresh instance).
func (s *Source) lifecycleConfig(ctx context.Context, raw cconfig.Config) (config.SourceConfig, error) {
	if s.config.URL != "" && len(s.config.Topics) > 0 {
		return s.config, nil
	}
	c, err := parseSourceConfig(ctx, raw)
	if err != nil {
		return config.SourceConfig{}, fmt.Errorf("parse parameters: %w", err)
	}
	return c, nil
}
