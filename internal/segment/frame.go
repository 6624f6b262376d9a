package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// HeaderSize is the size of a frame header: offset, payload length and CRC.
const HeaderSize = 16

// MaxPayloadSize bounds a frame's payload. The broker writes one bincode
// message per frame and accepts messages below tonic's 4 MiB decode limit,
// so a larger length can only come from corrupt bytes. Refusing it keeps a
// reader from waiting for, or allocating, gigabytes that will never be valid.
const MaxPayloadSize = 64 << 20

var (
	// ErrIncomplete means the buffer ends inside a frame: read more bytes.
	ErrIncomplete = errors.New("incomplete frame: more bytes needed")
	// ErrChecksum means a frame's payload does not match its CRC.
	ErrChecksum = errors.New("frame CRC mismatch")
	// ErrFrameTooLarge means a frame header announces more than MaxPayloadSize bytes.
	ErrFrameTooLarge = errors.New("frame payload length over the limit")
	// ErrTruncated means a segment object ends inside a frame.
	ErrTruncated = errors.New("segment ends inside a frame")
)

// Frame is one decoded WAL frame. Payload aliases the decoded buffer.
type Frame struct {
	Offset  uint64 // topic offset of the message
	Payload []byte // bincode-encoded StreamMessage
}

// Size is the frame's length on disk, header included.
func (f Frame) Size() int { return HeaderSize + len(f.Payload) }

// FrameError reports a frame that cannot be trusted. Err is ErrChecksum,
// ErrFrameTooLarge, ErrTruncated or a *MessageError; SegmentID and Position
// are set when the frame was read from a segment (Scanner, Reader).
type FrameError struct {
	SegmentID string
	Position  int64  // byte position of the frame in the segment
	Offset    uint64 // offset from the frame header (0 when the header is cut)
	Detail    string
	Err       error
}

func (e *FrameError) Error() string {
	where := fmt.Sprintf("frame at byte %d (offset %d)", e.Position, e.Offset)
	if e.SegmentID != "" {
		where = "segment " + e.SegmentID + ": " + where
	}
	if e.Detail != "" {
		return fmt.Sprintf("%s: %v (%s)", where, e.Err, e.Detail)
	}
	return fmt.Sprintf("%s: %v", where, e.Err)
}

func (e *FrameError) Unwrap() error { return e.Err }

// DecodeFrame decodes the frame at the start of buf, as the broker's
// decode_next_frame: a Frame when a whole frame with a matching CRC is there,
// ErrIncomplete when buf ends inside the header or the payload, or a
// *FrameError (ErrChecksum, ErrFrameTooLarge) for a frame that is corrupt.
// The broker has no length limit; it would wait for more bytes instead.
func DecodeFrame(buf []byte) (Frame, error) {
	if len(buf) < HeaderSize {
		return Frame{}, ErrIncomplete
	}
	offset, size, stored := parseHeader(buf)
	if size > MaxPayloadSize {
		return Frame{}, &FrameError{
			Offset: offset, Err: ErrFrameTooLarge,
			Detail: fmt.Sprintf("length %d, limit %d", size, MaxPayloadSize),
		}
	}
	end := HeaderSize + int(size)
	if len(buf) < end {
		return Frame{}, ErrIncomplete
	}
	payload := buf[HeaderSize:end]
	if err := checkCRC(offset, payload, stored); err != nil {
		return Frame{}, err
	}
	return Frame{Offset: offset, Payload: payload}, nil
}

func parseHeader(h []byte) (offset uint64, size, crc uint32) {
	return binary.LittleEndian.Uint64(h[0:8]), binary.LittleEndian.Uint32(h[8:12]), binary.LittleEndian.Uint32(h[12:16])
}

func checkCRC(offset uint64, payload []byte, stored uint32) error {
	if computed := crc32.ChecksumIEEE(payload); computed != stored {
		return &FrameError{
			Offset: offset, Err: ErrChecksum,
			Detail: fmt.Sprintf("stored 0x%08x, computed 0x%08x", stored, computed),
		}
	}
	return nil
}

// AppendFrame appends one frame holding payload at offset to dst, as the
// broker's append_encoded_frame.
func AppendFrame(dst []byte, offset uint64, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, offset)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.ChecksumIEEE(payload))
	return append(dst, payload...)
}
