package danube

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"

	"github.com/conduitio-labs/conduit-connector-danube/config"
	"github.com/conduitio-labs/conduit-connector-danube/destination"
)

var errNotOpen = errors.New("the destination is not open: Write was called before Open succeeded")

// Destination writes Conduit records to Danube topics.
type Destination struct {
	sdk.UnimplementedDestination

	config config.DestinationConfig
	writer *destination.Writer
}

// Batching defaults. Without batching Conduit hands over one record per
// Write, and each record then waits for the broker before the next is sent;
// batches let Write pipeline many sends. The delay bounds the latency a
// record waits for its batch to fill.
const (
	defaultBatchSize  = 1000
	defaultBatchDelay = 10 * time.Millisecond
)

// NewDestination returns the destination wrapped in the SDK's default
// middleware (record format, batching, rate limit, schema extraction), with
// batching on by default.
func NewDestination() sdk.Destination {
	return sdk.DestinationWithMiddleware(&Destination{config: config.DestinationConfig{
		DestinationMiddleware: config.DestinationMiddleware{
			DestinationWithBatch: sdk.DestinationWithBatch{BatchSize: defaultBatchSize, BatchDelay: defaultBatchDelay},
		},
	}})
}

// Config returns the destination's parameters for the SDK to fill in.
func (d *Destination) Config() sdk.DestinationConfig {
	return &d.config
}

// Open connects to the broker and, for a static topic, creates its producer so
// configuration problems surface before the first record.
func (d *Destination) Open(ctx context.Context) error {
	w, err := destination.Open(ctx, &d.config)
	if err != nil {
		return fmt.Errorf("open destination: %w", err)
	}
	d.writer = w
	return nil
}

// Write sends records and returns how many were confirmed, in record order,
// before the first failure.
func (d *Destination) Write(ctx context.Context, records []opencdc.Record) (int, error) {
	if d.writer == nil {
		return 0, errNotOpen
	}
	n, err := d.writer.Write(ctx, records)
	if err != nil {
		return n, fmt.Errorf("write to danube: %w", err)
	}
	return n, nil
}

// Teardown waits for in-flight sends and closes producers and the connection.
// It works without Open.
func (d *Destination) Teardown(ctx context.Context) error {
	if d.writer == nil {
		return nil
	}
	if err := d.writer.Close(ctx); err != nil {
		return fmt.Errorf("teardown destination: %w", err)
	}
	return nil
}
