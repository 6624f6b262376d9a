package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// bincode 2, config::standard(): little-endian, variable-length integers
// (bincode-2.0.1/src/varint). A value below 251 is one byte; 251, 252 and
// 253 announce a u16, u32 and u64. Decoders accept any width that holds the
// value (bincode does not insist on the shortest form) and refuse widths the
// target type cannot hold, as bincode does.
const (
	varintMaxSingle = 250
	varintU16       = 251
	varintU32       = 252
	varintU64       = 253
)

var (
	// ErrUnexpectedEnd means a payload ends before the message does.
	ErrUnexpectedEnd = errors.New("unexpected end of payload")
	// ErrInvalidInteger means a varint marker the field's type cannot hold.
	ErrInvalidInteger = errors.New("invalid varint marker")
	// ErrInvalidOption means an Option tag other than 0 or 1.
	ErrInvalidOption = errors.New("invalid option tag")
	// ErrInvalidUTF8 means a string that is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("string is not valid UTF-8")
)

// MessageError says which field of a StreamMessage payload could not be decoded.
type MessageError struct {
	Field    string
	Position int // byte position in the payload
	Err      error
}

func (e *MessageError) Error() string {
	return fmt.Sprintf("decode message field %s at byte %d: %v", e.Field, e.Position, e.Err)
}

func (e *MessageError) Unwrap() error { return e.Err }

// bincodeReader decodes from a payload; the first error sticks and later
// reads return zero values, so a decoder reads a whole struct and checks once.
type bincodeReader struct {
	buf []byte
	pos int
	err error
}

func (r *bincodeReader) fail(field string, pos int, err error) {
	if r.err == nil {
		r.err = &MessageError{Field: field, Position: pos, Err: err}
	}
}

func (r *bincodeReader) take(field string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.buf)-r.pos {
		r.fail(field, r.pos, ErrUnexpectedEnd)
		return nil
	}
	b := r.buf[r.pos : r.pos+n]
	r.pos += n
	return b
}

func (r *bincodeReader) u8(field string) byte {
	b := r.take(field, 1)
	if b == nil {
		return 0
	}
	return b[0]
}

// varint decodes an unsigned integer of at most maxBytes (2, 4 or 8) bytes.
func (r *bincodeReader) varint(field string, maxBytes int) uint64 {
	start := r.pos
	marker := r.u8(field)
	if r.err != nil || marker <= varintMaxSingle {
		return uint64(marker)
	}
	width := markerWidth(marker)
	if width == 0 || width > maxBytes {
		r.fail(field, start, fmt.Errorf("%w: marker %d for a %d-byte integer", ErrInvalidInteger, marker, maxBytes))
		return 0
	}
	b := r.take(field, width)
	switch {
	case b == nil:
		return 0
	case width == 2:
		return uint64(binary.LittleEndian.Uint16(b))
	case width == 4:
		return uint64(binary.LittleEndian.Uint32(b))
	default:
		return binary.LittleEndian.Uint64(b)
	}
}

// markerWidth is the byte width a varint marker announces, 0 for none.
func markerWidth(marker byte) int {
	switch marker {
	case varintU16:
		return 2
	case varintU32:
		return 4
	case varintU64:
		return 8
	}
	return 0
}

func (r *bincodeReader) u64(field string) uint64 { return r.varint(field, 8) }

func (r *bincodeReader) u32(field string) uint32 {
	return uint32(r.varint(field, 4))
}

// bytes decodes a length-prefixed byte string. The length is checked against
// what is left before anything is allocated, so a corrupt length cannot ask
// for gigabytes.
func (r *bincodeReader) bytes(field string) []byte {
	start := r.pos
	n := r.u64(field)
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.buf)-r.pos) {
		r.fail(field, start, fmt.Errorf("%w: length %d, %d bytes left", ErrUnexpectedEnd, n, len(r.buf)-r.pos))
		return nil
	}
	return r.take(field, int(n))
}

func (r *bincodeReader) str(field string) string {
	start := r.pos
	b := r.bytes(field)
	if r.err != nil {
		return ""
	}
	if !utf8.Valid(b) {
		r.fail(field, start, ErrInvalidUTF8)
		return ""
	}
	return string(b)
}

// some decodes an Option tag: true for Some.
func (r *bincodeReader) some(field string) bool {
	start := r.pos
	switch tag := r.u8(field); {
	case r.err != nil:
		return false
	case tag <= 1:
		return tag == 1
	default:
		r.fail(field, start, fmt.Errorf("%w: %d", ErrInvalidOption, tag))
		return false
	}
}

func appendVarint(dst []byte, v uint64) []byte {
	switch {
	case v <= varintMaxSingle:
		return append(dst, byte(v))
	case v <= 0xFFFF:
		return binary.LittleEndian.AppendUint16(append(dst, varintU16), uint16(v))
	case v <= 0xFFFF_FFFF:
		return binary.LittleEndian.AppendUint32(append(dst, varintU32), uint32(v))
	default:
		return binary.LittleEndian.AppendUint64(append(dst, varintU64), v)
	}
}

func appendBytes(dst, b []byte) []byte {
	return append(appendVarint(dst, uint64(len(b))), b...)
}

func appendString(dst []byte, s string) []byte {
	return append(appendVarint(dst, uint64(len(s))), s...)
}
