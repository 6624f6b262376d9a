// Package destination writes Conduit records to Danube topics: it routes each
// record to a topic, maps it to a message and sends batches through pipelined
// producers, counting confirmations in record order.
package destination

import (
	"context"
	"errors"

	"github.com/conduitio/conduit-commons/opencdc"

	"github.com/conduitio-labs/conduit-connector-danube/config"
)

// Writer sends records to Danube.
type Writer struct{}

// Open connects to the broker described by cfg.
func Open(context.Context, *config.DestinationConfig) (*Writer, error) {
	return nil, errors.New("destination: not implemented yet")
}

// Write sends records and returns how many were confirmed before the first failure.
func (w *Writer) Write(context.Context, []opencdc.Record) (int, error) {
	return 0, errors.New("destination: not implemented yet")
}

// Close waits for in-flight sends and closes producers and the connection.
func (w *Writer) Close(context.Context) error { return nil }
