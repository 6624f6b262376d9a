package segment

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/matryer/is"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

const topic = "/default/orders"

// fakeCatalog answers ListSegmentDescriptors as the broker's
// list_segment_descriptors: normalised topic, start_offset > after_offset,
// sorted by start offset. Errors queued in fail are returned first.
type fakeCatalog struct {
	segs  map[string][]*danubepb.SegmentDescriptorProto
	fail  []error
	calls []uint64 // after_offset of each call
}

func (c *fakeCatalog) ListSegmentDescriptors(_ context.Context, in *danubepb.ListSegmentDescriptorsRequest, _ ...grpc.CallOption) (*danubepb.ListSegmentDescriptorsResponse, error) {
	c.calls = append(c.calls, in.GetAfterOffset())
	if len(c.fail) > 0 {
		err := c.fail[0]
		c.fail = c.fail[1:]
		return nil, err
	}
	var out []*danubepb.SegmentDescriptorProto
	for _, d := range c.segs[TopicPath(in.GetTopic())] {
		if d.GetStartOffset() > in.GetAfterOffset() {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b *danubepb.SegmentDescriptorProto) int {
		return int(a.GetStartOffset()) - int(b.GetStartOffset())
	})
	return &danubepb.ListSegmentDescriptorsResponse{Segments: out}, nil
}

// exporter seals offset ranges into a store (a FileStore unless put says
// otherwise) and publishes them in the catalog, as the broker's
// export_topic_segments does.
type exporter struct {
	t       *testing.T
	store   FileStore
	put     func(topic, id string, data []byte) (ObjectInfo, error)
	catalog *fakeCatalog
	window  uint64 // the readers' ReorderWindow; 0: the default
}

func newExporter(t *testing.T) *exporter {
	t.Helper()
	e := &exporter{t: t, store: FileStore{Root: t.TempDir()}, catalog: &fakeCatalog{segs: map[string][]*danubepb.SegmentDescriptorProto{}}}
	e.put = e.store.Put
	return e
}

func (e *exporter) seal(from, to uint64) string {
	e.t.Helper()
	return e.sealFrames(span(from, to)...)
}

// sealFrames seals the messages at offsets in the order given, as a WAL
// file whose frames concurrent sends wrote out of offset order: the broker
// names and describes the segment by its first and last frames.
func (e *exporter) sealFrames(offsets ...uint64) string {
	e.t.Helper()
	first, last := offsets[0], offsets[len(offsets)-1]
	id := SegmentID(first, time.Unix(1_700_000_000+int64(first), 0))
	info, err := e.put(topic, id, framesBytes(offsets...))
	if err != nil {
		e.t.Fatal(err)
	}
	tp := TopicPath(topic)
	e.catalog.segs[tp] = append(e.catalog.segs[tp], &danubepb.SegmentDescriptorProto{
		SegmentId: id, StartOffset: first, EndOffset: last, Size: info.Size, Etag: info.ETag, CreatedAt: 1_700_000_000,
	})
	return id
}

func (e *exporter) reader(from uint64, store Store) *Reader {
	e.t.Helper()
	r, err := NewReader(ReaderConfig{
		Client: e.catalog, Store: store, Topic: topic, From: from, ReorderWindow: e.window,
		Retry: danubeclient.RetryPolicy{MaxRetries: 2, Base: time.Millisecond, Max: time.Millisecond},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = r.Close() })
	return r
}

// storeOnly hides FileStore's Lister side, like an object store without listing.
type storeOnly struct{ Store }

// readAll returns the offsets Next yields until io.EOF, failing on errors.
func readAll(t *testing.T, r *Reader) []uint64 {
	t.Helper()
	var offs []uint64
	for {
		m, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return offs
		}
		if err != nil {
			t.Fatalf("Next after offsets %v: %v", offs, err)
		}
		if want := testMessage(m.Offset()); !slices.Equal(m.Payload, want.Payload) {
			t.Fatalf("offset %d: payload %q, want %q", m.Offset(), m.Payload, want.Payload)
		}
		offs = append(offs, m.Offset())
	}
}

// readWithGaps is readAll that also collects the gaps reported on the way.
func readWithGaps(t *testing.T, r *Reader) ([]uint64, []GapError) {
	t.Helper()
	var offs []uint64
	var gaps []GapError
	for {
		m, err := r.Next(context.Background())
		var gap *GapError
		switch {
		case errors.As(err, &gap):
			gaps = append(gaps, *gap)
		case errors.Is(err, io.EOF):
			return offs, gaps
		case err != nil:
			t.Fatalf("Next after offsets %v: %v", offs, err)
		default:
			offs = append(offs, m.Offset())
		}
	}
}

func span(from, to uint64) []uint64 {
	var s []uint64
	for o := from; o <= to; o++ {
		s = append(s, o)
	}
	return s
}

func TestReaderReadsAllHistoryIncludingTheUnlistedFirstSegment(t *testing.T) {
	is := is.New(t)
	e := newExporter(t)
	e.seal(0, 9)
	e.seal(10, 24)
	e.seal(25, 25)
	r := e.reader(0, e.store)
	is.Equal(readAll(t, r), span(0, 25))
	is.Equal(r.NextOffset(), uint64(26))
}

func TestReaderResumesFromAnOffsetInsideASegment(t *testing.T) {
	is := is.New(t)
	e := newExporter(t)
	e.seal(0, 9)
	e.seal(10, 24)
	is.Equal(readAll(t, e.reader(13, e.store)), span(13, 24))
	is.Equal(readAll(t, e.reader(5, e.store)), span(5, 24))
	is.Equal(len(readAll(t, e.reader(25, e.store))), 0) // nothing sealed there yet
}

func TestReaderPicksUpSegmentsSealedAfterEOF(t *testing.T) {
	is := is.New(t)
	e := newExporter(t)
	r := e.reader(0, e.store)
	is.Equal(len(readAll(t, r)), 0) // a young topic: nothing sealed yet
	e.seal(0, 4)                    // the first export: only the store knows it
	is.Equal(readAll(t, r), span(0, 4))
	e.seal(5, 7)
	e.seal(8, 12)
	is.Equal(readAll(t, r), span(5, 12))
	is.Equal(e.catalog.calls[len(e.catalog.calls)-1], uint64(8)) // later listings only ask for newer segments
}

func TestReaderWithoutListingReportsTheFirstSegmentAsAGap(t *testing.T) {
	is := is.New(t)
	e := newExporter(t)
	e.window = 4
	e.seal(0, 9)
	e.seal(10, 14)
	r := e.reader(0, storeOnly{e.store})
	_, err := r.Next(context.Background())
	var gap *GapError
	is.True(errors.As(err, &gap))
	is.Equal(*gap, GapError{Topic: topic, From: 0, To: 9})
	is.Equal(readAll(t, r), span(10, 14)) // reading goes on after the gap
}

func TestReaderGapThenMessage(t *testing.T) {
	is := is.New(t)
	e := newExporter(t)
	e.window = 2
	e.seal(0, 4)
	e.seal(8, 9)
	got, gaps := readWithGaps(t, e.reader(3, e.store))
	is.Equal(got, []uint64{3, 4, 8, 9})
	is.Equal(gaps, []GapError{{Topic: topic, From: 5, To: 7}})
}

func TestReaderSkipsOffsetsOfOverlappingSegments(t *testing.T) {
	is := is.New(t)
	e := newExporter(t)
	e.seal(0, 9)
	e.seal(5, 14) // overlaps 5..9
	is.Equal(readAll(t, e.reader(0, e.store)), span(0, 14))
}

func TestReaderStopsAtACutShortObjectAndRetriesIt(t *testing.T) {
	is := is.New(t)
	e := newExporter(t)
	e.seal(0, 4)
	id := e.seal(5, 9)
	path := e.store.path(topic, id)
	is.NoErr(os.WriteFile(path, segmentBytes(t, 5, 7), 0o600)) // two frames short of the descriptor
	r := e.reader(0, e.store)
	var got []uint64
	var err error
	for {
		var m Message
		m, err = r.Next(context.Background())
		if err != nil {
			break
		}
		got = append(got, m.Offset())
	}
	is.True(errors.Is(err, ErrTruncated))
	var fe *FrameError
	is.True(errors.As(err, &fe))
	is.Equal(fe.SegmentID, id)
	is.Equal(got, span(0, 7))

	is.NoErr(os.WriteFile(path, segmentBytes(t, 5, 9), 0o600)) // repaired
	is.Equal(readAll(t, r), span(8, 9))                        // no offset lost or repeated
}

func TestReaderReportsCorruptFrameWithSegmentAndOffset(t *testing.T) {
	is := is.New(t)
	e := newExporter(t)
	id := e.seal(0, 2)
	data := segmentBytes(t, 0, 2)
	second := len(segmentBytes(t, 0, 0))
	data[second+HeaderSize+3] ^= 0x01
	is.NoErr(os.WriteFile(e.store.path(topic, id), data, 0o600))
	r := e.reader(0, e.store)
	m, err := r.Next(context.Background())
	is.NoErr(err)
	is.Equal(m.Offset(), uint64(0))
	_, err = r.Next(context.Background())
	is.True(errors.Is(err, ErrChecksum))
	var fe *FrameError
	is.True(errors.As(err, &fe))
	is.Equal(fe.SegmentID, id)
	is.Equal(fe.Offset, uint64(1))
	is.Equal(fe.Position, int64(second))
	_, again := r.Next(context.Background())
	is.True(errors.Is(again, ErrChecksum)) // never skipped silently
	is.Equal(r.NextOffset(), uint64(1))
}

func TestReaderReportsUndecodableMessage(t *testing.T) {
	is := is.New(t)
	e := newExporter(t)
	id := e.seal(0, 0)
	is.NoErr(os.WriteFile(e.store.path(topic, id), AppendFrame(nil, 0, []byte{0x01, 0x02}), 0o600))
	_, err := e.reader(0, e.store).Next(context.Background())
	var me *MessageError
	is.True(errors.As(err, &me))
	var fe *FrameError
	is.True(errors.As(err, &fe))
	is.Equal(fe.SegmentID, id)
}

func TestReaderMissingObject(t *testing.T) {
	is := is.New(t)
	e := newExporter(t)
	e.seal(0, 4)
	id := e.seal(5, 9)
	is.NoErr(os.Remove(e.store.path(topic, id)))
	r := e.reader(5, e.store)
	_, err := r.Next(context.Background())
	is.True(errors.Is(err, fs.ErrNotExist))
}

func TestReaderRetriesTransientListErrors(t *testing.T) {
	is := is.New(t)
	e := newExporter(t)
	e.seal(0, 2)
	e.seal(3, 5)
	e.catalog.fail = []error{status.Error(codes.Unavailable, "down"), status.Error(codes.DeadlineExceeded, "slow")}
	is.Equal(readAll(t, e.reader(0, e.store)), span(0, 5))
}

func TestReaderSurfacesPermanentAndExhaustedListErrors(t *testing.T) {
	is := is.New(t)
	e := newExporter(t)
	e.catalog.fail = []error{status.Error(codes.Internal, "failed to list segment descriptors")}
	_, err := e.reader(0, e.store).Next(context.Background())
	is.Equal(status.Code(err), codes.Internal)
	is.Equal(len(e.catalog.calls), 1) // not retried

	e.catalog.fail = []error{status.Error(codes.Unavailable, "1"), status.Error(codes.Unavailable, "2"), status.Error(codes.Unavailable, "3")}
	_, err = e.reader(0, e.store).Next(context.Background())
	is.True(err != nil)
	is.Equal(len(e.catalog.fail), 0) // three attempts, then the error
}

func TestReaderHonoursContext(t *testing.T) {
	is := is.New(t)
	e := newExporter(t)
	e.seal(0, 2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.reader(0, e.store).Next(ctx)
	is.True(errors.Is(err, context.Canceled))
}

func TestNewReaderChecksConfig(t *testing.T) {
	is := is.New(t)
	e := newExporter(t)
	for _, cfg := range []ReaderConfig{
		{Store: e.store, Topic: topic},
		{Client: e.catalog, Topic: topic},
		{Client: e.catalog, Store: e.store},
	} {
		_, err := NewReader(cfg)
		is.True(err != nil)
	}
}
