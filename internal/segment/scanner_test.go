package segment

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/matryer/is"
)

func TestScannerReadsEveryFrameThenEOF(t *testing.T) {
	is := is.New(t)
	s := NewScanner(bytes.NewReader(segmentBytes(t, 5, 9)), "data-5-1.dnb1")
	for off := uint64(5); off <= 9; off++ {
		f, err := s.Next()
		is.NoErr(err)
		is.Equal(f.Offset, off)
		m, err := DecodeMessage(f.Payload)
		is.NoErr(err)
		is.Equal(m, testMessage(off))
	}
	_, err := s.Next()
	is.Equal(err, io.EOF)
	is.Equal(s.Position(), int64(len(segmentBytes(t, 5, 9))))
}

func TestScannerEmptySegment(t *testing.T) {
	is := is.New(t)
	_, err := NewScanner(bytes.NewReader(nil), "data-0-1.dnb1").Next()
	is.Equal(err, io.EOF)
}

func TestScannerReportsCorruptionWithSegmentAndPosition(t *testing.T) {
	seg := segmentBytes(t, 0, 2)
	second := int64(len(segmentBytes(t, 0, 0))) // byte position of offset 1
	for name, tc := range map[string]struct {
		data   []byte
		want   error
		offset uint64
		pos    int64
	}{
		"truncated header":  {data: seg[:second+10], want: ErrTruncated, offset: 0, pos: second},
		"truncated payload": {data: seg[:second+HeaderSize+3], want: ErrTruncated, offset: 1, pos: second},
		"crc mismatch": {data: func() []byte {
			b := append([]byte(nil), seg...)
			b[second+HeaderSize] ^= 0xFF
			return b
		}(), want: ErrChecksum, offset: 1, pos: second},
		"absurd length": {data: func() []byte {
			b := append([]byte(nil), seg...)
			b[second+11] = 0x7F // length ~2 GiB
			return b
		}(), want: ErrFrameTooLarge, offset: 1, pos: second},
	} {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			s := NewScanner(bytes.NewReader(tc.data), "data-0-1700000000.dnb1")
			f, err := s.Next()
			is.NoErr(err)
			is.Equal(f.Offset, uint64(0))
			_, err = s.Next()
			is.True(errors.Is(err, tc.want))
			var fe *FrameError
			is.True(errors.As(err, &fe))
			is.Equal(fe.SegmentID, "data-0-1700000000.dnb1")
			is.Equal(fe.Position, tc.pos)
			is.Equal(fe.Offset, tc.offset)
			_, again := s.Next()
			is.Equal(again, err) // the error sticks
		})
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestScannerPassesReadErrorsOn(t *testing.T) {
	is := is.New(t)
	boom := errors.New("disk on fire")
	_, err := NewScanner(failingReader{boom}, "data-0-1.dnb1").Next()
	is.True(errors.Is(err, boom))
}
