package segment

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// BenchmarkDecodeSegment measures scanning and decoding a segment of 10,000
// messages with 256-byte payloads: the cost of reading history per message.
func BenchmarkDecodeSegment(b *testing.B) {
	const n = 10_000
	var seg []byte
	for off := range uint64(n) {
		m := testMessage(off)
		m.Payload = bytes.Repeat([]byte{'x'}, 256)
		seg = AppendMessageFrame(seg, &m)
	}
	b.SetBytes(int64(len(seg)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s := NewScanner(bytes.NewReader(seg), "data-0-1.dnb1")
		for {
			f, err := s.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if _, err := DecodeMessage(f.Payload); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
