package segment

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

// FuzzDecodeFrame checks DecodeFrame and Scanner on arbitrary bytes: no
// panic, a decoded frame re-encodes to the same bytes, and both decoders
// agree frame by frame and on how the buffer ends. Seeds: testdata/fuzz.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(handFrame)
	f.Add(AppendFrame(AppendFrame(nil, 1, fullMessage), 2, minimalMessage))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewScanner(bytes.NewReader(data), "data-0-1.dnb1")
		rest := data
		for {
			frame, err := DecodeFrame(rest)
			scanned, serr := s.Next()
			if err != nil {
				checkEnd(t, rest, err, serr)
				return
			}
			if serr != nil {
				t.Fatalf("DecodeFrame decoded offset %d, Scanner failed: %v", frame.Offset, serr)
			}
			if frame.Offset != scanned.Offset || !bytes.Equal(frame.Payload, scanned.Payload) {
				t.Fatalf("DecodeFrame and Scanner disagree at offset %d", frame.Offset)
			}
			if again := AppendFrame(nil, frame.Offset, frame.Payload); !bytes.Equal(again, rest[:frame.Size()]) {
				t.Fatalf("frame at offset %d does not re-encode to its bytes", frame.Offset)
			}
			rest = rest[frame.Size():]
		}
	})
}

// checkEnd compares how DecodeFrame (err) and Scanner (serr) see the end of
// the buffer rest.
func checkEnd(t *testing.T, rest []byte, err, serr error) {
	t.Helper()
	switch {
	case errors.Is(err, ErrIncomplete) && len(rest) == 0:
		if !errors.Is(serr, io.EOF) {
			t.Fatalf("empty rest: Scanner says %v, want io.EOF", serr)
		}
	case errors.Is(err, ErrIncomplete):
		if !errors.Is(serr, ErrTruncated) {
			t.Fatalf("incomplete frame: Scanner says %v, want ErrTruncated", serr)
		}
	case errors.Is(err, ErrChecksum), errors.Is(err, ErrFrameTooLarge):
		var fe *FrameError
		if !errors.As(err, &fe) || !errors.Is(serr, fe.Err) {
			t.Fatalf("DecodeFrame says %v, Scanner says %v", err, serr)
		}
	default:
		t.Fatalf("unexpected DecodeFrame error %v", err)
	}
}

// FuzzDecodeMessage checks DecodeMessage on arbitrary bytes: no panic, errors
// are *MessageError, and a decoded message re-encodes (in canonical form, no
// longer than the input) to bytes that decode to the same message.
func FuzzDecodeMessage(f *testing.F) {
	f.Add(fullMessage)
	f.Add(minimalMessage)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeMessage(data)
		if err != nil {
			var me *MessageError
			if !errors.As(err, &me) {
				t.Fatalf("error %v is not a *MessageError", err)
			}
			return
		}
		enc := AppendMessage(nil, &m)
		if len(enc) > len(data) {
			t.Fatalf("canonical encoding (%d bytes) longer than the input (%d bytes)", len(enc), len(data))
		}
		again, err := DecodeMessage(enc)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", m, again)
		}
	})
}
