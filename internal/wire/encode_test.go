package wire

import (
	"fmt"
	"testing"

	"github.com/conduitio/conduit-commons/opencdc"
	"github.com/matryer/is"
)

// assertSameAsSDK checks that rec is written exactly as the SDK's
// "opencdc/json" serializer writes it.
func assertSameAsSDK(t *testing.T, e *Encoder, rec opencdc.Record) {
	t.Helper()
	want, err := defaultSerializer.Serialize(rec)
	if err != nil {
		t.Fatalf("SDK serializer: %v", err)
	}
	got, ok := e.Encode(&rec)
	if !ok {
		t.Fatalf("record not encoded: %#v", rec)
	}
	if string(got) != string(want) {
		t.Fatalf("encoded differently from the SDK:\n got %s\nwant %s", got, want)
	}
}

func TestEncoder_WritesRawRecordsAsTheSDK(t *testing.T) {
	e := &Encoder{}
	strange := []string{
		"", "plain", `quote " and \ backslash`, "<html> & co", "tab\tnew\nline\x00\x1f", "ünïcødé ✓",
		"line\u2028separator\u2029", "invalid \xff\xfe utf-8", "\x7f del",
	}
	// Keys that sort differently once quoted: "a b" < "a!" < "a" < "a#".
	md := opencdc.Metadata{"opencdc.collection": "orders", "a": "1", "a b": "2", "a!": "3", "a#": "4", "Z": "upper", "~": "5"}
	for i, s := range strange {
		md[fmt.Sprintf("value %d", i)] = s
	}
	datas := []opencdc.Data{nil, opencdc.RawData(nil), opencdc.RawData{}, opencdc.RawData("k"), opencdc.RawData("\x00\xffbinary")}
	for _, op := range []opencdc.Operation{opencdc.OperationCreate, opencdc.OperationUpdate, opencdc.OperationDelete, opencdc.OperationSnapshot} {
		for _, pos := range []opencdc.Position{nil, {}, opencdc.Position(`{"v":1}`)} {
			for _, meta := range []opencdc.Metadata{nil, {}, md} {
				for _, d := range datas {
					assertSameAsSDK(t, e, opencdc.Record{Position: pos, Operation: op, Metadata: meta, Key: d, Payload: opencdc.Change{Before: d, After: opencdc.RawData("after")}})
					assertSameAsSDK(t, e, opencdc.Record{Position: pos, Operation: op, Metadata: meta, Key: opencdc.RawData("key"), Payload: opencdc.Change{Before: opencdc.RawData("b"), After: d}})
				}
			}
		}
	}
}

func TestEncoder_LeavesOtherRecordsToTheSDK(t *testing.T) {
	is := is.New(t)
	e := &Encoder{}
	structured := opencdc.StructuredData{"id": 1}
	for _, rec := range []opencdc.Record{
		{Operation: opencdc.OperationCreate, Key: structured},
		{Operation: opencdc.OperationCreate, Payload: opencdc.Change{Before: structured}},
		{Operation: opencdc.OperationCreate, Payload: opencdc.Change{After: structured}},
		{Operation: opencdc.Operation(0), Payload: opencdc.Change{After: opencdc.RawData("x")}},
		{Operation: opencdc.Operation(9), Payload: opencdc.Change{After: opencdc.RawData("x")}},
		{Operation: opencdc.OperationCreate, Metadata: opencdc.Metadata{"a": "1", "needs <escape>": "2"}},
		{Operation: opencdc.OperationCreate, Metadata: opencdc.Metadata{"a": "1", "\xff": "2"}},
	} {
		_, ok := e.Encode(&rec)
		is.True(!ok)
	}
}

func FuzzEncoder(f *testing.F) {
	f.Add([]byte("pos"), 1, "opencdc.collection", "orders", []byte("key"), []byte("payload"))
	f.Add([]byte(nil), 4, "<&>", "\xff\u2028\"\\", []byte(nil), []byte{})
	f.Fuzz(func(t *testing.T, pos []byte, op int, mdKey, mdValue string, key, after []byte) {
		rec := opencdc.Record{
			Position: pos, Operation: opencdc.Operation(op), Metadata: opencdc.Metadata{mdKey: mdValue, "x": mdKey},
			Key: opencdc.RawData(key), Payload: opencdc.Change{After: opencdc.RawData(after)},
		}
		if _, known := operationNames[rec.Operation]; !known || !isPlain(mdKey) {
			return // left to the SDK's serializer
		}
		assertSameAsSDK(t, &Encoder{}, rec)
	})
}
