// Package boundary shows records as Conduit hands them to the next
// connector, for tests of what crosses the plugin boundary.
package boundary

import (
	"context"
	"fmt"

	"github.com/conduitio/conduit-commons/opencdc"
	"github.com/conduitio/conduit-connector-sdk/schema"
)

// Decode returns rec as the next connector receives it: a key or
// payload encoded with an attached schema is decoded with that schema, as
// the SDK's destination middleware does. Integers come back as int, as the
// source restores them.
func Decode(ctx context.Context, rec opencdc.Record) (opencdc.Record, error) {
	if subject, ok := rec.Metadata[opencdc.MetadataKeySchemaSubject]; ok {
		version, err := rec.Metadata.GetKeySchemaVersion()
		if err != nil {
			return rec, fmt.Errorf("key schema version: %w", err)
		}
		if rec.Key, err = decodeData(ctx, rec.Key, subject, version); err != nil {
			return rec, fmt.Errorf("key: %w", err)
		}
	}
	if subject, ok := rec.Metadata[opencdc.MetadataPayloadSchemaSubject]; ok {
		version, err := rec.Metadata.GetPayloadSchemaVersion()
		if err != nil {
			return rec, fmt.Errorf("payload schema version: %w", err)
		}
		if rec.Payload.Before, err = decodeData(ctx, rec.Payload.Before, subject, version); err != nil {
			return rec, fmt.Errorf("payload.before: %w", err)
		}
		if rec.Payload.After, err = decodeData(ctx, rec.Payload.After, subject, version); err != nil {
			return rec, fmt.Errorf("payload.after: %w", err)
		}
	}
	return rec, nil
}

func decodeData(ctx context.Context, data opencdc.Data, subject string, version int) (opencdc.Data, error) {
	raw, ok := data.(opencdc.RawData)
	if !ok {
		return data, nil // nothing encoded
	}
	sch, err := schema.Get(ctx, subject, version)
	if err != nil {
		return nil, fmt.Errorf("schema %s v%d: %w", subject, version, err)
	}
	var sd opencdc.StructuredData
	if err := sch.Unmarshal(raw, &sd); err != nil {
		return nil, fmt.Errorf("decode with schema %s v%d: %w", subject, version, err)
	}
	intsAsInt(map[string]any(sd))
	return sd, nil
}

// intsAsInt replaces int64 and int32 values with int, in place; it returns
// the replacement of a single value.
func intsAsInt(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = intsAsInt(e)
		}
	case []any:
		for i, e := range t {
			t[i] = intsAsInt(e)
		}
	case int64:
		return int(t)
	case int32:
		return int(t)
	}
	return v
}
