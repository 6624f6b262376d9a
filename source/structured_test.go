package source

import (
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/conduitio/conduit-commons/opencdc"
	"github.com/matryer/is"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/conduitio-labs/conduit-connector-danube/internal/wire"
	"github.com/conduitio-labs/conduit-connector-danube/test/boundary"
	"github.com/conduitio-labs/conduit-connector-danube/test/harness"
)

// TestStructuredEncoder_KeepsEveryValue restores records as the destination
// writes them, encodes them, and carries each part across a simulated plugin
// boundary: with its schema when one is attached (decoded as the SDK's
// destination middleware does), as a protobuf Struct when it is structured
// data without one. Every value must come out as it went in.
func TestStructuredEncoder_KeepsEveryValue(t *testing.T) {
	for _, tc := range []struct {
		name       string
		record     string
		wantSchema bool // the payload (or key) travels with an Avro schema
	}{{
		name: "big integers, floats, nesting, nulls, unicode",
		record: `{"operation":"create","metadata":{"opencdc.collection":"accounts"},
			"key":{"id":9007199254740993},
			"payload":{"before":null,"after":{"big":7072517835517712850,"min":-9223372036854775808,
			"max":9223372036854775807,"pi":3.141592653589793,"tiny":5e-324,"huge":1.7976931348623157e308,
			"half":0.5,"nested":{"level":{"n":123456789012345678,"s":"x"}},"ints":[1,9007199254740993,-3],
			"mixed":[1,"two",null,true,2.5],"words":["a","β","🚀"],"nothing":null,"yes":true,
			"text":"żółć 日本語 🚀 \"q\" \\ \u0000","empty":"","emptyMap":{}}}}`,
		wantSchema: true,
	}, {
		name: "update with before and after of one shape",
		record: `{"operation":"update","metadata":{},"key":{"id":1},
			"payload":{"before":{"n":9223372036854775807,"s":"old"},"after":{"n":-9223372036854775807,"s":"new"}}}`,
		wantSchema: true,
	}, {
		name: "update whose before has another shape",
		record: `{"operation":"update","metadata":{},"key":null,
			"payload":{"before":{"n":1},"after":{"n":"one","extra":[1,2]}}}`,
	}, {
		name: "field names Avro refuses, small numbers",
		record: `{"operation":"snapshot","metadata":{"opencdc.collection":"c"},"key":{"user-id":12},
			"payload":{"before":null,"after":{"ключ":1.5,"a b":[1,{"x":2}],"1st":null}}}`,
		wantSchema: true,
	}, {
		name: "field names Avro refuses, big integers",
		record: `{"operation":"delete","metadata":{},"key":{"user-id":7072517835517712850},
			"payload":{"before":{"ключ":9223372036854775807,"ok":true},"after":null}}`,
		wantSchema: true,
	}, {
		name: "lists of differently shaped maps, big integers",
		record: `{"operation":"create","metadata":{},"key":null,
			"payload":{"before":null,"after":{"items":[{"a":9007199254740993},{"b":"x"}]}}}`,
		wantSchema: true,
	}, {
		name: "lists of lists of different types, big integers",
		record: `{"operation":"create","metadata":{},"key":null,
			"payload":{"before":null,"after":{"items":[[9007199254740993],["x"]]}}}`,
		wantSchema: true,
	}, {
		name: "empty lists, big integers",
		record: `{"operation":"create","metadata":{},"key":null,
			"payload":{"before":null,"after":{"none":[],"nested":{"none":[]},"n":9007199254740993}}}`,
	}, {
		name: "integers beyond int64",
		record: `{"operation":"create","metadata":{},"key":null,
			"payload":{"before":null,"after":{"u":18446744073709551615,"neg":-18446744073709551616}}}`,
	}, {
		name: "structured after, raw before",
		record: `{"operation":"update","metadata":{},"key":"cmF3IGtleQ==",
			"payload":{"before":"b2xk","after":{"n":9007199254740993}}}`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			ctx := t.Context()
			in, err := wire.Decode([]byte(tc.record))
			is.NoErr(err)
			var e StructuredEncoder
			out := in.Clone()
			is.NoErr(e.Encode(ctx, &out))

			want, err := harness.DecodeJSON([]byte(tc.record))
			is.NoErr(err)
			wantRec, _ := want.(map[string]any)
			got := map[string]any{
				"key":    acrossBoundary(t, out, func(r opencdc.Record) opencdc.Data { return r.Key }),
				"before": acrossBoundary(t, out, func(r opencdc.Record) opencdc.Data { return r.Payload.Before }),
				"after":  acrossBoundary(t, out, func(r opencdc.Record) opencdc.Data { return r.Payload.After }),
			}
			payload, _ := wantRec["payload"].(map[string]any)
			for part, w := range map[string]any{"key": wantRec["key"], "before": payload["before"], "after": payload["after"]} {
				if s, isRaw := w.(string); isRaw { // raw data stays base64 in the record's JSON
					b, err := json.Marshal(opencdc.RawData(mustBase64(t, s)))
					is.NoErr(err)
					w, err = harness.DecodeJSON(b)
					is.NoErr(err)
				}
				for _, d := range harness.JSONDiff(part, w, got[part]) {
					t.Error(d)
				}
			}
			_, hasSchema := out.Metadata[opencdc.MetadataPayloadSchemaSubject]
			if _, isKey := out.Key.(opencdc.RawData); !hasSchema && isKey {
				_, hasSchema = out.Metadata[opencdc.MetadataKeySchemaSubject]
			}
			is.Equal(hasSchema, tc.wantSchema)
		})
	}
}

// acrossBoundary returns part of rec as the next connector sees it, as JSON:
// decoded with its schema when one is attached, through a protobuf Struct
// (Conduit's plugin protocol) when it is structured data without one, and
// raw data as the JSON it holds or, when it holds none, as the base64 string
// a record's JSON has.
func acrossBoundary(t *testing.T, rec opencdc.Record, part func(opencdc.Record) opencdc.Data) any {
	t.Helper()
	decoded, err := boundary.Decode(t.Context(), rec)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	switch d := part(decoded).(type) {
	case nil:
		return nil
	case opencdc.StructuredData:
		s, err := structpb.NewStruct(d)
		if err != nil {
			t.Fatalf("structured data is not a protobuf Struct: %v", err)
		}
		v = s.AsMap()
		if _, encoded := part(rec).(opencdc.RawData); encoded {
			v = d // decoded from its schema on the far side: no Struct
		}
	case opencdc.RawData:
		if parsed, err := harness.DecodeJSON(d); err == nil {
			return parsed
		}
		v = d
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := harness.DecodeJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	return parsed
}

func mustBase64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
