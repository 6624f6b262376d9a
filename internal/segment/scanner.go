package segment

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Scanner reads the frames of one segment object in order, streaming: it
// holds one frame at a time, so a 512 MiB segment needs no 512 MiB buffer.
type Scanner struct {
	r         *bufio.Reader
	segmentID string
	pos       int64
	header    [HeaderSize]byte
	payload   []byte
	err       error
}

// NewScanner reads frames of the segment segmentID (used in errors) from r.
func NewScanner(r io.Reader, segmentID string) *Scanner {
	return &Scanner{r: bufio.NewReaderSize(r, 64<<10), segmentID: segmentID}
}

// Next returns the next frame. Its Payload is valid until the next call.
// At the end of the segment it returns io.EOF. A segment that ends inside a
// frame gives a *FrameError wrapping ErrTruncated; a CRC mismatch or an
// over-limit length a *FrameError wrapping ErrChecksum or ErrFrameTooLarge.
// After an error every call returns the same error.
func (s *Scanner) Next() (Frame, error) {
	if s.err != nil {
		return Frame{}, s.err
	}
	f, err := s.next()
	if err != nil {
		s.err = err
	}
	return f, err
}

// Position is the byte position of the next frame in the segment.
func (s *Scanner) Position() int64 { return s.pos }

func (s *Scanner) next() (Frame, error) {
	n, err := io.ReadFull(s.r, s.header[:])
	switch {
	case n == 0 && errors.Is(err, io.EOF):
		return Frame{}, io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Frame{}, s.frameError(0, ErrTruncated, fmt.Sprintf("%d of %d header bytes", n, HeaderSize))
	case err != nil:
		return Frame{}, fmt.Errorf("read segment %s at byte %d: %w", s.segmentID, s.pos, err)
	}
	offset, size, stored := parseHeader(s.header[:])
	if size > MaxPayloadSize {
		return Frame{}, s.frameError(offset, ErrFrameTooLarge, fmt.Sprintf("length %d, limit %d", size, MaxPayloadSize))
	}
	if cap(s.payload) < int(size) {
		s.payload = make([]byte, size)
	}
	s.payload = s.payload[:size]
	n, err = io.ReadFull(s.r, s.payload)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return Frame{}, s.frameError(offset, ErrTruncated, fmt.Sprintf("%d of %d payload bytes", n, size))
	case err != nil:
		return Frame{}, fmt.Errorf("read segment %s at byte %d: %w", s.segmentID, s.pos, err)
	}
	if err := checkCRC(offset, s.payload, stored); err != nil {
		return Frame{}, s.locate(err)
	}
	s.pos += HeaderSize + int64(size)
	return Frame{Offset: offset, Payload: s.payload}, nil
}

func (s *Scanner) frameError(offset uint64, err error, detail string) error {
	return &FrameError{SegmentID: s.segmentID, Position: s.pos, Offset: offset, Err: err, Detail: detail}
}

// locate adds the segment and position to a FrameError from DecodeFrame.
func (s *Scanner) locate(err error) error {
	var fe *FrameError
	if errors.As(err, &fe) {
		fe.SegmentID, fe.Position = s.segmentID, s.pos
	}
	return err
}
