package wire

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/conduitio/conduit-commons/opencdc"
	"github.com/matryer/is"
)

// TestRoundTrip writes records as the destination does (Encoder, else the
// SDK's serializer) and decodes them as the source does: everything but the
// position comes back unchanged, integers beyond 2^53 included.
func TestRoundTrip(t *testing.T) {
	records := []opencdc.Record{{
		Operation: opencdc.OperationCreate,
		Metadata:  opencdc.Metadata{"opencdc.collection": "orders", "ключ": "значение"},
		Key:       opencdc.RawData("key-🔑"),
		Payload:   opencdc.Change{After: opencdc.RawData([]byte{0, 1, 2, 0xff})},
	}, {
		Operation: opencdc.OperationUpdate,
		Metadata:  opencdc.Metadata{},
		Key:       opencdc.StructuredData{"id": 9007199254740993},
		Payload: opencdc.Change{
			Before: opencdc.StructuredData{"n": 7072517835517712850, "f": 0.5, "s": "old"},
			After: opencdc.StructuredData{
				"n": -9223372036854775807, "f": 1e-300, "nested": map[string]any{"list": []any{1, "two", nil, true}},
				"empty": map[string]any{}, "none": []any{}, "null": nil,
			},
		},
	}, {
		Operation: opencdc.OperationDelete,
		Metadata:  opencdc.Metadata{"empty": ""},
		Key:       opencdc.RawData(""),
		Payload:   opencdc.Change{Before: opencdc.RawData("gone")},
	}, {
		Operation: opencdc.OperationSnapshot,
		Metadata:  opencdc.Metadata{},
		Payload:   opencdc.Change{After: opencdc.StructuredData{"beyond int64": json.Number("18446744073709551615")}},
	}}
	for _, rec := range records {
		t.Run(rec.Operation.String(), func(t *testing.T) {
			is := is.New(t)
			rec.Position = opencdc.Position("p")
			b, ok := (&Encoder{}).Encode(&rec)
			if !ok {
				var err error
				b, err = defaultSerializer.Serialize(rec)
				is.NoErr(err)
			}
			got, err := Decode(b)
			is.NoErr(err)
			rec.Position = nil
			is.Equal(got, rec)
		})
	}
}

func TestDecode_RefusesWhatIsNotARecord(t *testing.T) {
	for _, payload := range []string{
		`not json`, `{"operation":"upsert"}`, `{"operation":"create","key":"%%%"}`, `{"operation":"create","key":42}`,
	} {
		_, err := Decode([]byte(payload))
		if !errors.Is(err, ErrNotARecord) {
			t.Errorf("%s: want ErrNotARecord, got %v", payload, err)
		}
	}
}
