package segment

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// realRoot is a shared_fs durable root holding a segment a real v0.15.1
// broker exported (see testdata/broker-v0.15.1/README.md).
const (
	realRoot      = "testdata/broker-v0.15.1"
	realTopic     = "/default/swap-part-1"
	realSegmentID = "data-0-1796130812.dnb1"
)

// realReader reads the real segment as the source does: the broker lists no
// descriptor for it (it starts at offset 0), the store finds it.
func realReader(t *testing.T, from, window uint64) *Reader {
	t.Helper()
	r, err := NewReader(ReaderConfig{
		Client: &fakeCatalog{segs: map[string][]*danubepb.SegmentDescriptorProto{}},
		Store:  FileStore{Root: realRoot}, Topic: realTopic, From: from, ReorderWindow: window,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func TestRealBrokerSegmentHoldsFramesOutOfOrder(t *testing.T) {
	is := is.New(t)
	f, err := os.Open(filepath.Join(realRoot, ObjectPath(realTopic, realSegmentID)))
	is.NoErr(err)
	defer f.Close()
	s := NewScanner(f, realSegmentID)
	var order []uint64
	for {
		fr, err := s.Next()
		if err != nil {
			break
		}
		order = append(order, fr.Offset)
	}
	is.Equal(len(order), 500)
	i := slices.Index(order, 110)
	is.Equal(order[i-1], uint64(153)) // 110 was written after 153
	sorted := slices.Sorted(slices.Values(order))
	is.Equal(sorted, span(0, 499)) // yet every offset is there once
}

func TestReaderReadsARealBrokerSegmentInOffsetOrder(t *testing.T) {
	is := is.New(t)
	r := realReader(t, 0, 0)
	got, gaps := readWithGaps(t, r)
	is.Equal(len(gaps), 0)
	is.Equal(got, span(0, 499)) // each offset once, in order

	r = realReader(t, 0, 0)
	for want := range uint64(500) {
		m, err := r.Next(t.Context())
		is.NoErr(err)
		is.Equal(m.Offset(), want)
		is.Equal(m.MsgID.TopicName, realTopic)
		n := m.Attributes["n"]
		is.Equal(string(m.Payload), fmt.Sprintf(`{"n":%s}`, n)) // the payload of the message at this offset
		is.Equal(*m.RoutingKey, "k"+n)
	}
}

func TestReaderResumesInsideTheRealSegmentsReorderedRun(t *testing.T) {
	is := is.New(t)
	got, gaps := readWithGaps(t, realReader(t, 110, 0)) // 110 comes after 153 in the file
	is.Equal(len(gaps), 0)
	is.Equal(got, span(110, 499))
}

func TestReaderWithoutAReorderWindowMissesTheRealSegmentsLateFrame(t *testing.T) {
	is := is.New(t)
	// Reading frames in file order (a window of 1) reports 110 as missing
	// and then skips it: the "offsets 110..110 are in no sealed segment"
	// failure a real broker's segments caused.
	got, gaps := readWithGaps(t, realReader(t, 0, 1))
	is.Equal(gaps, []GapError{{Topic: realTopic, From: 110, To: 110}})
	is.True(!slices.Contains(got, 110))
}
