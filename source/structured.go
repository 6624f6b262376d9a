package source

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/conduitio/conduit-commons/opencdc"
	"github.com/conduitio/conduit-commons/schema/avro"
	sdk "github.com/conduitio/conduit-connector-sdk"
	"github.com/conduitio/conduit-connector-sdk/schema"
)

// StructuredEncoder makes a restored record's structured key and payload
// cross Conduit's plugin boundary unchanged.
//
// Without a schema, structured data travels as a protobuf Struct, whose
// numbers are float64: integers beyond ±2^53 arrive rounded. So each
// structured part is encoded with an Avro schema derived from its value (a
// record schema as the SDK's schema extraction derives, or a map schema when
// a field name is not an Avro name), registered under "<collection>.key" or
// "<collection>.payload", and Conduit decodes it on the other side. Two
// values Avro would change travel without a schema: integers beyond int64,
// and empty lists (decoded as null). Such a part goes as a Struct when that
// changes no number, and otherwise as its JSON text (raw data), which is
// logged once per topic.
//
// Raw data is left alone.
type StructuredEncoder struct {
	warned sync.Map // topic → struct{}: the raw-JSON fallback was logged
}

// Encode encodes rec's structured key and payload in place.
func (e *StructuredEncoder) Encode(ctx context.Context, rec *opencdc.Record) error {
	collection, _ := rec.Metadata.GetCollection()
	if key, ok := rec.Key.(opencdc.StructuredData); ok {
		parts, sch, err := e.encode(ctx, rec, subject(collection, "key"), key)
		if err != nil {
			return fmt.Errorf("key: %w", err)
		}
		rec.Key = parts[0]
		if sch != nil {
			schema.AttachKeySchemaToRecord(*rec, *sch)
		}
	}

	before, beforeOK := rec.Payload.Before.(opencdc.StructuredData)
	after, afterOK := rec.Payload.After.(opencdc.StructuredData)
	switch {
	case !beforeOK && !afterOK:
		return nil
	case beforeOK && afterOK:
		// Before and after share the record's one payload schema, derived
		// from after as in the SDK.
		parts, sch, err := e.encode(ctx, rec, subject(collection, "payload"), after, before)
		if err != nil {
			return fmt.Errorf("payload: %w", err)
		}
		rec.Payload.After, rec.Payload.Before = parts[0], parts[1]
		if sch != nil {
			schema.AttachPayloadSchemaToRecord(*rec, *sch)
		}
	case afterOK && rec.Payload.Before == nil, beforeOK && rec.Payload.After == nil:
		data, target := after, &rec.Payload.After
		if beforeOK {
			data, target = before, &rec.Payload.Before
		}
		parts, sch, err := e.encode(ctx, rec, subject(collection, "payload"), data)
		if err != nil {
			return fmt.Errorf("payload: %w", err)
		}
		*target = parts[0]
		if sch != nil {
			schema.AttachPayloadSchemaToRecord(*rec, *sch)
		}
	default:
		// One side is raw data: a payload schema would apply to both, so
		// the structured side goes without one.
		if afterOK {
			rec.Payload.After = e.plain(ctx, rec, after)
		} else {
			rec.Payload.Before = e.plain(ctx, rec, before)
		}
	}
	return nil
}

// encode encodes every part with the schema derived from the first. When no
// schema fits them all, each part is returned as plain does.
func (e *StructuredEncoder) encode(ctx context.Context, rec *opencdc.Record, sub string,
	parts ...opencdc.StructuredData,
) ([]opencdc.Data, *schema.Schema, error) {
	out := make([]opencdc.Data, len(parts))
	if srd := avroSerde(parts); srd != nil {
		ok := true
		for i, p := range parts {
			b, err := srd.Marshal(p)
			if err != nil {
				ok = false // a later part does not fit the first part's shape
				break
			}
			out[i] = opencdc.RawData(b)
		}
		if ok {
			sch, err := schema.Create(ctx, schema.TypeAvro, sub, []byte(srd.String()))
			if err != nil {
				return nil, nil, fmt.Errorf("register schema %s: %w", sub, err)
			}
			return out, &sch, nil
		}
	}
	for i, p := range parts {
		out[i] = e.plain(ctx, rec, p)
	}
	return out, nil, nil
}

// avroSerde derives an Avro schema from the first part, or returns nil when
// Avro cannot describe it or would change it: an integer beyond int64, or an
// empty list (Avro decodes it as null).
func avroSerde(parts []opencdc.StructuredData) *avro.Serde {
	for _, p := range parts {
		if !fitsAvro(p) {
			return nil
		}
	}
	srd, err := avro.SerdeForType(parts[0])
	if err == nil {
		return srd
	}
	// A record schema needs field names that are Avro names; a map schema
	// takes any key.
	srd, err = avro.SerdeForType(map[string]any(parts[0]))
	if err != nil {
		return nil
	}
	return srd
}

// plain returns data itself when a protobuf Struct carries it unchanged, and
// its JSON text otherwise.
func (e *StructuredEncoder) plain(ctx context.Context, rec *opencdc.Record, data opencdc.StructuredData) opencdc.Data {
	if fitsFloat64(data) {
		return data
	}
	b, err := json.Marshal(data)
	if err != nil { // restored from JSON, so it marshals
		return data
	}
	e.warnRawJSON(ctx, rec)
	return opencdc.RawData(b)
}

// maxExactFloat bounds the integers that are all float64 values.
const maxExactFloat = 1 << 53

// fitsAvro reports whether an Avro schema can carry v unchanged: every
// integer is an int64 (restoring keeps larger ones as json.Number) and no
// list is empty.
func fitsAvro(v any) bool {
	switch t := v.(type) {
	case opencdc.StructuredData:
		return fitsAvro(map[string]any(t))
	case map[string]any:
		for _, e := range t {
			if !fitsAvro(e) {
				return false
			}
		}
	case []any:
		if len(t) == 0 {
			return false
		}
		for _, e := range t {
			if !fitsAvro(e) {
				return false
			}
		}
	case json.Number:
		return false
	}
	return true
}

// fitsFloat64 reports whether float64 holds every number in v exactly.
func fitsFloat64(v any) bool {
	ok := true
	walkNumbers(v, func(n any) {
		switch t := n.(type) {
		case json.Number:
			ok = false
		case int:
			if t > maxExactFloat || t < -maxExactFloat {
				ok = false
			}
		}
	})
	return ok
}

// walkNumbers calls fn for every number in v.
func walkNumbers(v any, fn func(any)) {
	switch t := v.(type) {
	case opencdc.StructuredData:
		for _, e := range t {
			walkNumbers(e, fn)
		}
	case map[string]any:
		for _, e := range t {
			walkNumbers(e, fn)
		}
	case []any:
		for _, e := range t {
			walkNumbers(e, fn)
		}
	case int, float64, json.Number:
		fn(t)
	}
}

func (e *StructuredEncoder) warnRawJSON(ctx context.Context, rec *opencdc.Record) {
	topic := rec.Metadata[MetadataTopic]
	if _, done := e.warned.LoadOrStore(topic, struct{}{}); done {
		return
	}
	sdk.Logger(ctx).Warn().Str("topic", topic).Str("offset", rec.Metadata[MetadataOffset]).
		Msg("a restored structured key or payload holds integers beyond ±2^53 together with an integer beyond " +
			"int64 or an empty list, which no Avro schema carries unchanged: it is emitted as its JSON text (raw " +
			"data), so no digit changes, as Conduit would carry it without a schema and round its numbers to " +
			"float64. Logged once per topic")
}

func subject(collection, part string) string {
	if collection == "" {
		return part
	}
	return collection + "." + part
}
