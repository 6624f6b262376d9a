// Package source is the connector's source side: it opens the durable
// subscription, reads it through the CDC or combined (history, then live)
// iterator, turns deliveries into OpenCDC records with positions, and
// acknowledges messages to the broker once Conduit has processed them.
package source

import (
	"context"

	"github.com/conduitio/conduit-commons/opencdc"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// Iterator produces records and takes Conduit's acknowledgements back.
type Iterator interface {
	// Next blocks until a record is available or ctx ends (then it returns
	// ctx's error).
	Next(ctx context.Context) (opencdc.Record, error)
	// NextN returns between 1 and n records, blocking only for the first.
	NextN(ctx context.Context, n int) ([]opencdc.Record, error)
	// Ack acknowledges the record at pos. It does not wait for the broker;
	// failures surface from later calls.
	Ack(ctx context.Context, pos opencdc.Position) error
	// Close stops reading and waits, bounded by ctx, for pending
	// acknowledgements.
	Close(ctx context.Context) error
}

// Consumer is the part of *danubeclient.Consumer the iterators use.
type Consumer interface {
	Receive(ctx context.Context) (*danubeclient.ReceivedMessage, error)
	Ack(ctx context.Context, id danubeclient.MessageID) error
	Partitions() []string
	Close() error
}

var _ Consumer = (*danubeclient.Consumer)(nil)
