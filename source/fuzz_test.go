package source

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/conduitio/conduit-commons/opencdc"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/wire"
)

// maxErrorText bounds an error about a position: the position is quoted
// truncated, so a huge stored position cannot flood the logs.
const maxErrorText = 2000

// FuzzParsePosition feeds arbitrary bytes to the position parser: it never
// panics, every refusal wraps ErrInvalidPosition with a bounded message, and
// every accepted position is valid and survives Marshal and Parse unchanged.
// Seeds: testdata/fuzz/FuzzParsePosition.
func FuzzParsePosition(f *testing.F) {
	for _, seed := range []string{
		`{"v":1,"mode":"cdc","topic":"/default/orders","partition":1,"offset":42,"seq":7,` +
			`"emitted":{"/default/orders-part-0":[[0,40]],"/default/orders-part-1":[[3,9],[11,42]]}}`,
		`{"v":1,"mode":"snapshot","topic":"/default/t","partition":0,"offset":0,"seq":1}`,
		`{"v":2,"mode":"cdc","topic":"/default/t"}`,
		`{"v":1,"mode":"cdc","topic":"/default/t","emitted":{"/default/t":[[5,1]]}}`,
		`{"v":1,"mode":"cdc","topic":"/default/t","extra":true}`,
		`{"v":1,"mode":"cdc","topic":"/default/t"} {}`,
		`upstream-42`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		pos, err := ParsePosition(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidPosition) {
				t.Fatalf("error does not wrap ErrInvalidPosition: %v", err)
			}
			if len(err.Error()) > maxErrorText {
				t.Fatalf("error is %d bytes long", len(err.Error()))
			}
			return
		}
		if err := pos.validate(); err != nil {
			t.Fatalf("accepted an invalid position: %v", err)
		}
		for topic, set := range pos.Emitted {
			if !set.valid() {
				t.Fatalf("accepted unordered spans for %q: %v", topic, set)
			}
		}
		again, err := pos.Marshal()
		if err != nil {
			t.Fatalf("marshal an accepted position: %v", err)
		}
		back, err := ParsePosition(again)
		if err != nil {
			t.Fatalf("the position's own encoding %s is refused: %v", again, err)
		}
		if b2, _ := back.Marshal(); !bytes.Equal(b2, again) {
			t.Fatalf("round trip changed the position:\n%s\n%s", again, b2)
		}
	})
}

// FuzzRestoreRecord feeds arbitrary payloads marked as OpenCDC JSON records
// to the record mapping: it never panics; a payload it cannot restore comes
// through as a raw create record with the payload unchanged; a restored
// record has a valid operation and restores to the same record when written
// again in OpenCDC JSON (as a Danube-to-Danube pipeline does).
// Seeds: testdata/fuzz/FuzzRestoreRecord.
func FuzzRestoreRecord(f *testing.F) {
	for _, seed := range []string{
		`{"position":"cA==","operation":"update","metadata":{"a":"b"},"key":{"id":1},` +
			`"payload":{"before":{"n":1.5},"after":"eA=="}}`,
		`{"operation":"create","payload":{"after":{"nested":{"list":[1,2.5,"x",null,true]}}}}`,
		`{"operation":"delete","key":"a2V5","payload":{"before":null,"after":null}}`,
		`{"operation":"snapshot","payload":{"after":{"big":12345678901234567890}}}`,
		`{"operation":"teleport"}`,
		`{"operation":"create","payload":{"after":"%%%"}}`,
		`{"operation":"create","key":12}`,
		`not json`,
		``,
	} {
		f.Add([]byte(seed))
	}
	pos := opencdc.Position("fuzz")
	f.Fuzz(func(t *testing.T, payload []byte) {
		msg := &danubeclient.ReceivedMessage{
			ID:         danubeclient.MessageID{Topic: "/default/fuzz", Offset: 7},
			Payload:    payload,
			Attributes: map[string]string{wire.FormatAttribute: wire.FormatOpenCDCJSON},
		}
		rec, restoreErr := toRecord(msg, "/default/fuzz", pos)
		if !bytes.Equal(rec.Position, pos) || rec.Metadata[MetadataTopic] != "/default/fuzz" {
			t.Fatalf("position %q or danube.topic %q lost", rec.Position, rec.Metadata[MetadataTopic])
		}
		if restoreErr != nil {
			if !errors.Is(restoreErr, wire.ErrNotARecord) {
				t.Fatalf("restore error does not wrap wire.ErrNotARecord: %v", restoreErr)
			}
			raw, ok := rec.Payload.After.(opencdc.RawData)
			if rec.Operation != opencdc.OperationCreate || !ok || !bytes.Equal(raw, payload) {
				t.Fatalf("an unrestorable payload was not passed through raw: %v %v", rec.Operation, rec.Payload.After)
			}
			return
		}
		if rec.Operation < opencdc.OperationCreate || rec.Operation > opencdc.OperationSnapshot {
			t.Fatalf("restored operation %v", rec.Operation)
		}
		first := canonical(t, rec)
		again, err := wire.Decode(rec.Bytes())
		if err != nil {
			t.Fatalf("the restored record written again in OpenCDC JSON cannot be restored: %v\n%s", err, rec.Bytes())
		}
		again.Position, again.Metadata = rec.Position, rec.Metadata
		if second := canonical(t, again); !bytes.Equal(first, second) {
			t.Fatalf("a second round trip changed the record:\n%s\n%s", first, second)
		}
	})
}

// canonical is the record's OpenCDC JSON with object keys sorted, so that
// int 1 and float 1 compare equal as JSON does.
func canonical(t *testing.T, rec opencdc.Record) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(rec.Bytes(), &v); err != nil {
		t.Fatalf("a restored record does not encode as JSON: %v", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
