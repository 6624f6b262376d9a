package segment

import (
	"errors"
	"testing"

	"github.com/matryer/is"
)

// The frame below is written byte by byte from the layout in frames.rs. Its
// payload is "123456789", whose CRC-32/IEEE is the published check value
// 0xCBF43926, so the test pins the checksum algorithm as well as the layout.
var handFrame = []byte{
	0x07, 0, 0, 0, 0, 0, 0, 0, // offset 7, u64 LE
	0x09, 0, 0, 0, // payload length 9, u32 LE
	0x26, 0x39, 0xF4, 0xCB, // CRC 0xCBF43926, u32 LE
	'1', '2', '3', '4', '5', '6', '7', '8', '9',
}

func TestDecodeFrameHandBuilt(t *testing.T) {
	is := is.New(t)
	f, err := DecodeFrame(handFrame)
	is.NoErr(err)
	is.Equal(f.Offset, uint64(7))
	is.Equal(string(f.Payload), "123456789")
	is.Equal(f.Size(), len(handFrame))
}

func TestAppendFrameWritesTheDocumentedLayout(t *testing.T) {
	is := is.New(t)
	is.Equal(AppendFrame(nil, 7, []byte("123456789")), handFrame)
}

func TestDecodeFrameEmptyPayload(t *testing.T) {
	is := is.New(t)
	// CRC-32 of nothing is 0.
	f, err := DecodeFrame([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0})
	is.NoErr(err)
	is.Equal(f.Offset, ^uint64(0))
	is.Equal(len(f.Payload), 0)
}

func TestDecodeFrameStopsAtFrameEnd(t *testing.T) {
	is := is.New(t)
	buf := AppendFrame(append([]byte(nil), handFrame...), 8, []byte("next"))
	f, err := DecodeFrame(buf)
	is.NoErr(err)
	is.Equal(f.Offset, uint64(7))
	f, err = DecodeFrame(buf[f.Size():])
	is.NoErr(err)
	is.Equal(f.Offset, uint64(8))
	is.Equal(string(f.Payload), "next")
}

func TestDecodeFrameIncompleteWhenHeaderIsCut(t *testing.T) {
	is := is.New(t)
	for n := range HeaderSize {
		_, err := DecodeFrame(handFrame[:n])
		is.True(errors.Is(err, ErrIncomplete)) // need more bytes
	}
}

func TestDecodeFrameIncompleteWhenPayloadIsCut(t *testing.T) {
	is := is.New(t)
	for n := HeaderSize; n < len(handFrame); n++ {
		_, err := DecodeFrame(handFrame[:n])
		is.True(errors.Is(err, ErrIncomplete))
	}
}

func TestDecodeFrameCRCMismatch(t *testing.T) {
	is := is.New(t)
	buf := append([]byte(nil), handFrame...)
	buf[len(buf)-1] = 'X' // payload changed, CRC kept
	_, err := DecodeFrame(buf)
	var fe *FrameError
	is.True(errors.As(err, &fe))
	is.True(errors.Is(err, ErrChecksum))
	is.Equal(fe.Offset, uint64(7))
	is.Equal(err.Error(), "frame at byte 0 (offset 7): frame CRC mismatch (stored 0xcbf43926, computed 0xf14168e8)")
}

func TestDecodeFrameAbsurdLength(t *testing.T) {
	is := is.New(t)
	buf := append([]byte(nil), handFrame...)
	buf[8], buf[9], buf[10], buf[11] = 0xFF, 0xFF, 0xFF, 0xFF // 4 GiB - 1
	_, err := DecodeFrame(buf)
	is.True(errors.Is(err, ErrFrameTooLarge))
	var fe *FrameError
	is.True(errors.As(err, &fe))
	is.Equal(fe.Offset, uint64(7))
}
