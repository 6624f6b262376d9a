package wire

import (
	"cmp"
	"encoding/base64"
	"slices"
	"strings"

	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"
)

// defaultSerializer is what the SDK configures for "opencdc/json".
var defaultSerializer = sdk.GenericRecordSerializer{Converter: sdk.OpenCDCConverter{}, Encoder: sdk.JSONEncoder{}}

// IsDefaultSerializer reports whether s is the SDK's "opencdc/json"
// serializer, which Encoder reproduces.
func IsDefaultSerializer(s sdk.RecordSerializer) bool {
	g, ok := s.(sdk.GenericRecordSerializer)
	return ok && g == defaultSerializer
}

// Encoder writes records in the default format, "opencdc/json", byte for
// byte as the SDK's serializer does. The SDK's generic encoder costs about a
// tenth of the process's CPU per record: it encodes every raw value to a
// temporary buffer and then re-scans it. Not safe for concurrent use.
type Encoder struct {
	keys []string // metadata keys, sorted as the SDK's encoder sorts them
}

// Encode returns rec in the SDK's "opencdc/json" encoding, or false for a
// record it does not write (structured data, an unknown operation): the SDK's
// serializer handles those.
func (e *Encoder) Encode(rec *opencdc.Record) ([]byte, bool) {
	return e.Append(nil, rec)
}

// Append is Encode writing after dst, which it grows as needed; it returns
// dst unchanged with false for a record it does not write.
func (e *Encoder) Append(dst []byte, rec *opencdc.Record) ([]byte, bool) {
	op, known := operationNames[rec.Operation]
	if !known || !isRaw(rec.Key) || !isRaw(rec.Payload.Before) || !isRaw(rec.Payload.After) ||
		!e.sortKeys(rec.Metadata) {
		return dst, false
	}
	b := slices.Grow(dst, e.size(rec))
	b = append(b, `{"position":`...)
	b = appendBase64(b, rec.Position)
	b = append(b, `,"operation":"`...)
	b = append(b, op...)
	b = append(b, `","metadata":`...)
	b = e.appendMetadata(b, rec.Metadata)
	b = append(b, `,"key":`...)
	b = appendData(b, rec.Key)
	b = append(b, `,"payload":{"before":`...)
	b = appendData(b, rec.Payload.Before)
	b = append(b, `,"after":`...)
	b = appendData(b, rec.Payload.After)
	return append(b, "}}"...), true
}

var operationNames = map[opencdc.Operation]string{
	opencdc.OperationCreate:   opencdc.OperationCreate.String(),
	opencdc.OperationUpdate:   opencdc.OperationUpdate.String(),
	opencdc.OperationDelete:   opencdc.OperationDelete.String(),
	opencdc.OperationSnapshot: opencdc.OperationSnapshot.String(),
}

// size is the encoded length of rec when no metadata string needs escapes.
func (e *Encoder) size(rec *opencdc.Record) int {
	const fixed = len(`{"position":,"operation":"snapshot","metadata":{},"key":,"payload":{"before":,"after":}}`)
	n := fixed + base64Size(rec.Position) + base64Size(dataBytes(rec.Key)) +
		base64Size(dataBytes(rec.Payload.Before)) + base64Size(dataBytes(rec.Payload.After))
	for k, v := range rec.Metadata {
		n += len(k) + len(v) + len(`"":"",`)
	}
	return n
}

func (e *Encoder) appendMetadata(b []byte, md opencdc.Metadata) []byte {
	if md == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	for i, k := range e.keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, md[k])
	}
	clear(e.keys) // do not keep the record's strings alive
	return append(b, '}')
}

// sortKeys puts md's keys in e.keys in the SDK encoder's order, which sorts
// the encoded keys, quotes included (so "a b" comes before "a"). It reports
// false when a key needs escapes: the SDK's serializer writes those records.
func (e *Encoder) sortKeys(md opencdc.Metadata) bool {
	e.keys = e.keys[:0]
	for k := range md {
		if !isPlain(k) {
			clear(e.keys)
			return false
		}
		e.keys = append(e.keys, k)
	}
	slices.SortFunc(e.keys, compareQuoted)
	return true
}

// compareQuoted compares a+`"` with b+`"`.
func compareQuoted(a, b string) int {
	n := min(len(a), len(b))
	if c := strings.Compare(a[:n], b[:n]); c != 0 {
		return c
	}
	switch {
	case len(a) == len(b):
		return 0
	case len(a) < len(b):
		return cmp.Compare('"', b[n])
	default:
		return cmp.Compare(a[n], '"')
	}
}

// isPlain reports whether s is written between quotes as it is.
func isPlain(s string) bool {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// appendString writes s as a JSON string. Strings that need escapes are
// rare in metadata; the SDK's encoder writes those, so that every escape
// (HTML characters, invalid UTF-8, U+2028) comes out as it writes it.
func appendString(b []byte, s string) []byte {
	if !isPlain(s) {
		if quoted, err := (sdk.JSONEncoder{}).Encode(s); err == nil { // a string always encodes
			return append(b, quoted...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func isRaw(d opencdc.Data) bool {
	if d == nil {
		return true
	}
	_, ok := d.(opencdc.RawData)
	return ok
}

func dataBytes(d opencdc.Data) []byte {
	if d == nil {
		return nil
	}
	return d.Bytes()
}

// appendData writes raw data (or none) as the SDK's encoder does: a base64
// string, or null.
func appendData(b []byte, d opencdc.Data) []byte {
	return appendBase64(b, dataBytes(d))
}

func appendBase64(b, raw []byte) []byte {
	if raw == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, raw)
	return append(b, '"')
}

func base64Size(raw []byte) int {
	return base64.StdEncoding.EncodedLen(len(raw)) + 2
}
