// Package pbwire holds what the connector's hand-written protobuf codecs
// share: proto3 field sizes and appenders, a field loop that decodes as the
// protobuf library does, and gRPC message buffers. The codecs exist because
// the library's generic code walks maps (message attributes, record
// metadata) by reflection, allocating for every key and value, once per
// message sent or received.
package pbwire

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// Map entries number their key 1 and their value 2.
const (
	mapKey   protowire.Number = 1
	mapValue protowire.Number = 2
)

// Sizes and appenders follow proto3: scalars and strings are written only
// when not zero; the ...Always forms are for set optional and oneof fields,
// which are written whatever their value.

// SizeVarint is the size of a varint field holding v.
func SizeVarint(n protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return SizeVarintAlways(n, v)
}

// SizeVarintAlways is SizeVarint for a field written even when zero.
func SizeVarintAlways(n protowire.Number, v uint64) int {
	return protowire.SizeTag(n) + protowire.SizeVarint(v)
}

// SizeBytes is the size of a length-delimited field of l bytes.
func SizeBytes(n protowire.Number, l int) int {
	if l == 0 {
		return 0
	}
	return SizeBytesAlways(n, l)
}

// SizeBytesAlways is SizeBytes for a field written even when empty (a set
// sub-message, optional string or oneof bytes).
func SizeBytesAlways(n protowire.Number, l int) int {
	return protowire.SizeTag(n) + protowire.SizeBytes(l)
}

// AppendVarint appends a varint field holding v.
func AppendVarint(b []byte, n protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return AppendVarintAlways(b, n, v)
}

// AppendVarintAlways is AppendVarint for a field written even when zero.
func AppendVarintAlways(b []byte, n protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, n, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// AppendString appends a string field.
func AppendString(b []byte, n protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return AppendStringAlways(b, n, s)
}

// AppendStringAlways is AppendString for a field written even when empty.
func AppendStringAlways(b []byte, n protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// AppendBytes appends a bytes field.
func AppendBytes(b []byte, n protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	return AppendBytesAlways(b, n, v)
}

// AppendBytesAlways is AppendBytes for a field written even when empty.
func AppendBytesAlways(b []byte, n protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// AppendMessageHeader starts a sub-message field whose body is size bytes.
func AppendMessageHeader(b []byte, n protowire.Number, size int) []byte {
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(size)) //nolint:gosec // a size is never negative
}

// SizeStringMap is the size of a map<string, string> field holding m.
func SizeStringMap(n protowire.Number, m map[string]string) int {
	size := 0
	for k, v := range m {
		size += SizeBytesAlways(n, mapEntrySize(k, v))
	}
	return size
}

// AppendStringMap appends a map<string, string> field, in the map's order
// (protobuf leaves the order of entries free).
func AppendStringMap(b []byte, n protowire.Number, m map[string]string) []byte {
	for k, v := range m {
		b = AppendMessageHeader(b, n, mapEntrySize(k, v))
		b = AppendStringAlways(b, mapKey, k)
		b = AppendStringAlways(b, mapValue, v)
	}
	return b
}

func mapEntrySize(k, v string) int {
	return SizeBytesAlways(mapKey, len(k)) + SizeBytesAlways(mapValue, len(v))
}

// DecodeMapEntry adds one map<string, string> entry to *m, making the map
// when nil; a missing key or value is empty.
func DecodeMapEntry(b []byte, m *map[string]string) error {
	var k, v string
	err := Fields(b, func(num protowire.Number, typ protowire.Type, b []byte) (n int, err error) {
		switch {
		case num == mapKey && typ == protowire.BytesType:
			k, n, err = ConsumeString(b)
		case num == mapValue && typ == protowire.BytesType:
			v, n, err = ConsumeString(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		return n, err
	})
	if err != nil {
		return err
	}
	if *m == nil {
		*m = map[string]string{}
	}
	(*m)[k] = v
	return nil
}

// Fields calls field with the number, type and following bytes of each
// field in b; field returns the length of the value it read, negative for
// protowire's error codes (protowire.ConsumeFieldValue skips a field it
// does not read). As in the protobuf library, field numbers must be valid.
func Fields(b []byte, field func(protowire.Number, protowire.Type, []byte) (int, error)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("protobuf: %w", protowire.ParseError(n))
		}
		if !num.IsValid() { // ConsumeTag takes numbers up to 2^31
			return fmt.Errorf("protobuf: field number %d is out of range", num)
		}
		b = b[n:]
		n, err := field(num, typ, b)
		if err != nil {
			return err
		}
		if n < 0 {
			return fmt.Errorf("protobuf field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	return nil
}

var errInvalidUTF8 = errors.New("protobuf: a string field is not valid UTF-8")

// ConsumeString reads a string field's value, which must be UTF-8.
func ConsumeString(b []byte) (string, int, error) {
	v, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return "", n, nil
	}
	if !utf8.Valid(v) {
		return "", n, errInvalidUTF8
	}
	return string(v), n, nil
}

// ConsumeBytesCopy reads a bytes field's value into memory of its own.
func ConsumeBytesCopy(b []byte) ([]byte, int) {
	v, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return nil, n
	}
	return append([]byte{}, v...), n
}

// Encode writes a message of size bytes with appendTo into a buffer for
// gRPC: from gRPC's pool when the message is large enough to be pooled, as
// gRPC's own codec does (gRPC returns it once the message is on the wire).
// The appended bytes must number size.
func Encode[M any](size int, m M, appendTo func([]byte, M) []byte) mem.BufferSlice {
	if mem.IsBelowBufferPoolingThreshold(size) {
		return mem.BufferSlice{mem.SliceBuffer(appendTo(make([]byte, 0, size), m))}
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	*buf = appendTo((*buf)[:0], m)
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}
}

// Decode runs decode on data's bytes, gathered into one buffer for the
// call.
func Decode[M any](data mem.BufferSlice, m M, decode func([]byte, M) error) error {
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return decode(buf.ReadOnlyData(), m)
}
