package config

import (
	"context"
	"testing"

	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"
	"github.com/conduitio/conduit-connector-sdk/schema"
	"github.com/matryer/is"
)

// recordingDestination keeps what Write receives.
type recordingDestination struct {
	sdk.UnimplementedDestination
	got []opencdc.Record
}

func (d *recordingDestination) Write(_ context.Context, records []opencdc.Record) (int, error) {
	d.got = append(d.got, records...)
	return len(records), nil
}

func schemaExtractionAround(d sdk.Destination, key, payload bool) sdk.Destination {
	c := &SchemaExtraction{}
	c.KeyEnabled, c.PayloadEnabled = &key, &payload
	return c.Wrap(d)
}

func TestSchemaExtraction_PassesRecordsWithoutSchemasUnchanged(t *testing.T) {
	is := is.New(t)
	next := &recordingDestination{}
	d := schemaExtractionAround(next, true, true)
	recs := []opencdc.Record{
		{Position: opencdc.Position("1"), Metadata: opencdc.Metadata{"a": "b"}, Key: opencdc.RawData("k"), Payload: opencdc.Change{After: opencdc.RawData("v")}},
		{Position: opencdc.Position("2"), Payload: opencdc.Change{After: opencdc.RawData("w")}},
	}
	n, err := d.Write(context.Background(), recs)
	is.NoErr(err)
	is.Equal(n, 2)
	is.Equal(next.got, recs)
}

// A batch in which one record names a schema goes through the SDK's
// extraction, which decodes that record and leaves the others alone.
func TestSchemaExtraction_DecodesRecordsThatNameASchema(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	sch, err := schema.Create(ctx, schema.TypeAvro, "middleware-test.payload",
		[]byte(`{"type":"record","name":"r","fields":[{"name":"id","type":"long"}]}`))
	is.NoErr(err)
	encoded, err := sch.Marshal(map[string]any{"id": int64(7)})
	is.NoErr(err)
	withSchema := opencdc.Record{Position: opencdc.Position("2"), Metadata: opencdc.Metadata{}, Payload: opencdc.Change{After: opencdc.RawData(encoded)}}
	schema.AttachPayloadSchemaToRecord(withSchema, sch)
	plain := opencdc.Record{Position: opencdc.Position("1"), Payload: opencdc.Change{After: opencdc.RawData("v")}}

	for _, payload := range []bool{true, false} {
		next := &recordingDestination{}
		d := schemaExtractionAround(next, false, payload)
		n, err := d.Write(ctx, []opencdc.Record{plain, withSchema.Clone()})
		is.NoErr(err)
		is.Equal(n, 2)
		is.Equal(next.got[0], plain)
		if payload {
			is.Equal(next.got[1].Payload.After, opencdc.StructuredData{"id": int64(7)})
		} else {
			is.Equal(next.got[1].Payload.After, opencdc.RawData(encoded)) // extraction off: untouched
		}
	}
}

// BenchmarkSchemaExtraction passes batches of 1000 records without schemas
// through the SDK's schema extraction and through SchemaExtraction. One op
// is one record.
//
//	go test -run '^$' -bench SchemaExtraction -benchmem ./config/
func BenchmarkSchemaExtraction(b *testing.B) {
	recs := make([]opencdc.Record, 1000)
	for i := range recs {
		recs[i] = opencdc.Record{
			Metadata: opencdc.Metadata{"opencdc.collection": "orders", "opencdc.readAt": "1700000000"},
			Key:      opencdc.RawData("k"), Payload: opencdc.Change{After: opencdc.RawData("v")},
		}
	}
	on := true
	sdkMW := &sdk.DestinationWithSchemaExtraction{KeyEnabled: &on, PayloadEnabled: &on}
	for _, c := range []struct {
		name string
		d    sdk.Destination
	}{
		{"sdk", sdkMW.Wrap(&nopDestination{})},
		{"skip", schemaExtractionAround(&nopDestination{}, true, true)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for left := b.N; left > 0; left -= len(recs) {
				if _, err := c.d.Write(ctx, recs[:min(len(recs), left)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type nopDestination struct{ sdk.UnimplementedDestination }

func (nopDestination) Write(_ context.Context, records []opencdc.Record) (int, error) {
	return len(records), nil
}
