package config

import (
	"context"
	"sync"

	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"
)

// DestinationMiddleware is the SDK's default destination middleware (rate
// limit, record format, batching, schema extraction; same parameters, same
// order) with a schema extraction that costs nothing for records without a
// schema.
type DestinationMiddleware struct {
	sdk.UnimplementedDestinationConfig
	sdk.DestinationWithRateLimit
	sdk.DestinationWithRecordFormat
	sdk.DestinationWithBatch
	SchemaExtraction
}

// Validate validates the parameters as the SDK's default middleware does
// (with its code).
func (c *DestinationMiddleware) Validate(ctx context.Context) error {
	d := sdk.DefaultDestinationMiddleware{
		DestinationWithRateLimit:        c.DestinationWithRateLimit,
		DestinationWithRecordFormat:     c.DestinationWithRecordFormat,
		DestinationWithBatch:            c.DestinationWithBatch,
		DestinationWithSchemaExtraction: c.DestinationWithSchemaExtraction,
	}
	return d.Validate(ctx) //nolint:wrapcheck // the SDK's messages name the parameter
}

// SchemaExtraction is the SDK's schema extraction (sdk.schema.extract.*),
// which decodes keys and payloads with the schema their record's metadata
// names. The SDK's looks the schema up for every record and builds an error
// for each key missing from the metadata: about 3% of the destination's CPU
// and a fifth of its allocations when records have no schema, the common
// case. A batch in which no record names a schema therefore skips it, with
// the warning it would log; any other batch goes through it.
type SchemaExtraction struct {
	sdk.DestinationWithSchemaExtraction
}

// Wrap puts d inside the schema extraction.
func (c *SchemaExtraction) Wrap(d sdk.Destination) sdk.Destination {
	return &schemaExtraction{Destination: c.DestinationWithSchemaExtraction.Wrap(d), next: d, cfg: c}
}

// schemaExtraction is the SDK's middleware (the embedded Destination) with a
// way around it.
type schemaExtraction struct {
	sdk.Destination
	next sdk.Destination
	cfg  *SchemaExtraction

	keyWarnOnce, payloadWarnOnce sync.Once
}

var (
	keySchemaKeys     = []string{opencdc.MetadataKeySchemaSubject, opencdc.MetadataKeySchemaVersion}
	payloadSchemaKeys = []string{opencdc.MetadataPayloadSchemaSubject, opencdc.MetadataPayloadSchemaVersion}
)

func (d *schemaExtraction) Write(ctx context.Context, records []opencdc.Record) (int, error) {
	key := enabled(d.cfg.KeyEnabled)
	payload := enabled(d.cfg.PayloadEnabled)
	if (key && anyHas(records, keySchemaKeys)) || (payload && anyHas(records, payloadSchemaKeys)) {
		return d.Destination.Write(ctx, records) //nolint:wrapcheck // the middleware's errors as they are
	}
	// The SDK's middleware would find neither key in any record, warn once
	// and pass the records on unchanged.
	if key && len(records) > 0 {
		d.keyWarnOnce.Do(func() {
			sdk.Logger(ctx).Warn().Msg(`record does not have an attached schema for the key, consider disabling the destination schema key decoding using "sdk.schema.extract.key.enabled: false"`)
		})
	}
	if payload && len(records) > 0 {
		d.payloadWarnOnce.Do(func() {
			sdk.Logger(ctx).Warn().Msg(`record does not have an attached schema for the payload, consider disabling the destination schema payload decoding using "sdk.schema.extract.payload.enabled: false"`)
		})
	}
	return d.next.Write(ctx, records) //nolint:wrapcheck // the destination's errors as they are
}

// enabled reads a parameter the SDK fills in before Open (default true).
func enabled(p *bool) bool { return p == nil || *p }

func anyHas(records []opencdc.Record, keys []string) bool {
	for i := range records {
		for _, k := range keys {
			if _, ok := records[i].Metadata[k]; ok {
				return true
			}
		}
	}
	return false
}
