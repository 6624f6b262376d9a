package danubetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/adminpb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/segment"
)

func (c clients) segments(t *testing.T, topic string, after uint64) []*danubepb.SegmentDescriptorProto {
	t.Helper()
	resp, err := c.store.ListSegmentDescriptors(ctxT(t), &danubepb.ListSegmentDescriptorsRequest{Topic: topic, AfterOffset: after})
	if err != nil {
		t.Fatalf("ListSegmentDescriptors(%s, %d): %v", topic, after, err)
	}
	return resp.GetSegments()
}

// decodeSegmentFile reads a segment object written by the broker with the
// segment package's scanner and decoder.
func decodeSegmentFile(t *testing.T, path string) []segment.Message {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []segment.Message
	s := segment.NewScanner(f, filepath.Base(path))
	for {
		fr, err := s.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		m, err := segment.DecodeMessage(fr.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if m.Offset() != fr.Offset {
			t.Fatalf("frame offset %d holds a message stamped %d", fr.Offset, m.Offset())
		}
		out = append(out, m)
	}
}

func TestSegmentsAreNotListedWithoutSegmentDir(t *testing.T) {
	is := is.New(t)
	c := connect(t, newBroker(t))
	c.producer(t, "/default/local", "p", true).send("a", "b")
	is.NoErr(c.b.SealSegments()) // local storage mode: nothing to seal
	is.Equal(len(c.segments(t, "/default/local", 0)), 0)
}

func TestSealSegmentsWritesTheBrokerFormatAndLayout(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	c := connect(t, newBroker(t, WithSegmentDir(dir)))
	p := c.producer(t, "/default/orders", "prod", true)
	p.send("m0", "m1", "m2")
	before := time.Now().Unix()
	is.NoErr(c.b.SealSegments())

	// The first segment starts at 0, and start_offset > after_offset keeps it
	// out of every listing, as on the real broker.
	is.Equal(len(c.segments(t, "/default/orders", 0)), 0)
	ids, err := segment.FileStore{Root: dir}.Segments(ctxT(t), "/default/orders")
	is.NoErr(err)
	is.Equal(len(ids), 1)
	start, exported, ok := segment.ParseSegmentID(ids[0])
	is.True(ok)
	is.Equal(start, uint64(0))
	is.True(exported.Unix() >= before)

	msgs := decodeSegmentFile(t, filepath.Join(dir, "storage", "topics", "default", "orders", "segments", ids[0]))
	is.Equal(len(msgs), 3)
	for i, m := range msgs {
		is.Equal(m.Offset(), uint64(i))
		is.Equal(string(m.Payload), fmt.Sprintf("m%d", i))
		is.Equal(m.ProducerName, "prod")
		is.Equal(m.MsgID.ProducerID, p.id)
		is.Equal(m.MsgID.TopicName, "/default/orders")
		is.Equal(m.RequestID, uint64(i+1))
		is.True(m.SubscriptionName != nil && *m.SubscriptionName == "") // Some(""), as the broker stores it
		is.Equal(m.Attributes, map[string]string{})
	}

	p.send("m3", "m4")
	is.NoErr(c.b.SealSegments())
	is.NoErr(c.b.SealSegments()) // nothing new: no empty segment
	segs := c.segments(t, "/default/orders", 0)
	is.Equal(len(segs), 1)
	d := segs[0]
	is.Equal(d.GetStartOffset(), uint64(3))
	is.Equal(d.GetEndOffset(), uint64(4))
	is.True(d.GetCreatedAt() >= uint64(before))
	is.Equal(d.GetSegmentId(), segment.SegmentID(3, time.Unix(int64(d.GetCreatedAt()), 0)))
	fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(segment.ObjectPath("/default/orders", d.GetSegmentId()))))
	is.NoErr(err)
	is.Equal(d.GetSize(), uint64(fi.Size()))
	is.True(d.GetEtag() != "")
}

func TestListSegmentDescriptorsFollowsTheBroker(t *testing.T) {
	is := is.New(t)
	c := connect(t, newBroker(t, WithSegmentDir(t.TempDir()), WithSegmentSealEvery(2)))
	c.producer(t, "/default/orders", "prod", true).send("0", "1", "2", "3", "4", "5", "6")
	starts := func(segs []*danubepb.SegmentDescriptorProto) []uint64 {
		var s []uint64
		for _, d := range segs {
			s = append(s, d.GetStartOffset())
		}
		return s
	}
	is.Equal(starts(c.segments(t, "/default/orders", 0)), []uint64{2, 4}) // sealed every 2; 0 is never listed; 6 waits
	is.Equal(starts(c.segments(t, "default/orders", 0)), []uint64{2, 4})  // the name is normalised
	is.Equal(starts(c.segments(t, "/default/orders", 2)), []uint64{4})    // strictly after
	is.Equal(starts(c.segments(t, "/default/orders", 3)), []uint64{4})    // 2..3 starts before: left out
	is.Equal(len(c.segments(t, "/default/orders", 4)), 0)                 // nothing starts after 4
	is.Equal(len(c.segments(t, "/default/unknown", 0)), 0)                // unknown topic: empty, no error
	is.Equal(c.segments(t, "/default/orders", 0)[1].GetEndOffset(), uint64(5))
	is.NoErr(c.b.SealSegments())
	is.Equal(starts(c.segments(t, "/default/orders", 0)), []uint64{2, 4, 6})
}

func TestSegmentsOnlyForReliableTopicsAndPerPartition(t *testing.T) {
	is := is.New(t)
	c := connect(t, newBroker(t, WithSegmentDir(t.TempDir())))
	_, err := c.topics.CreatePartitionedTopic(ctxT(t), &adminpb.PartitionedTopicRequest{
		BaseName: "/default/parts", Partitions: 2, DispatchStrategy: adminpb.DispatchStrategy_Reliable,
	})
	is.NoErr(err)
	c.producer(t, "/default/parts-part-1", "p", true).send("a", "b")
	c.producer(t, "/default/parts-part-1", "p", true).send("c")
	c.producer(t, "/default/fast", "p", false).send("x", "y")
	is.NoErr(c.b.SealSegments())
	c.producer(t, "/default/parts-part-1", "p", true).send("d")
	is.NoErr(c.b.SealSegments())
	segs := c.segments(t, "/default/parts-part-1", 0)
	is.Equal(len(segs), 1)
	is.Equal(segs[0].GetStartOffset(), uint64(3))
	is.Equal(len(c.segments(t, "/default/parts-part-0", 0)), 0)
	ids, err := segment.FileStore{Root: c.b.cfg.segmentDir}.Segments(ctxT(t), "/default/fast")
	is.NoErr(err)
	is.Equal(len(ids), 0) // non-reliable topics store nothing
}

func TestSegmentReaderReadsTheBrokersHistory(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	c := connect(t, newBroker(t, WithSegmentDir(dir), WithSegmentSealEvery(4)))
	p := c.producer(t, "/default/history", "p", true)
	for i := range 10 {
		p.send(fmt.Sprint(i))
	}
	r, err := segment.NewReader(segment.ReaderConfig{Client: c.store, Store: segment.FileStore{Root: dir}, Topic: "/default/history"})
	is.NoErr(err)
	defer r.Close()
	read := func() []string {
		var got []string
		for {
			m, err := r.Next(ctxT(t))
			if errors.Is(err, io.EOF) {
				return got
			}
			is.NoErr(err)
			got = append(got, string(m.Payload))
		}
	}
	is.Equal(read(), []string{"0", "1", "2", "3", "4", "5", "6", "7"}) // 8, 9 not sealed yet
	is.NoErr(c.b.SealSegments())
	is.Equal(read(), []string{"8", "9"})
}

func TestSegmentsSurviveRestartAndGoWithTheTopic(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	c := connect(t, newBroker(t, WithSegmentDir(dir), WithSegmentSealEvery(1)))
	c.producer(t, "/default/gone", "p", true).send("a", "b")
	is.NoErr(c.b.Restart(RestartOptions{}))
	c = connect(t, c.b)
	is.Equal(len(c.segments(t, "/default/gone", 0)), 1)

	_, err := c.topics.DeleteTopic(ctxT(t), &adminpb.TopicRequest{Name: "/default/gone"})
	is.NoErr(err)
	is.Equal(len(c.segments(t, "/default/gone", 0)), 0)
	ids, err := segment.FileStore{Root: dir}.Segments(context.Background(), "/default/gone")
	is.NoErr(err)
	is.Equal(len(ids), 0)
}

func TestSealFailureIsReported(t *testing.T) {
	is := is.New(t)
	file := filepath.Join(t.TempDir(), "not-a-dir")
	is.NoErr(os.WriteFile(file, nil, 0o600))
	c := connect(t, newBroker(t, WithSegmentDir(file), WithSegmentSealEvery(1)))
	c.producer(t, "/default/orders", "p", true).send("a") // the send succeeds; the export fails
	err := c.b.SealSegments()
	is.True(err != nil)
	is.Equal(len(c.segments(t, "/default/orders", 0)), 0)
}

func TestSegmentOptionsAreChecked(t *testing.T) {
	is := is.New(t)
	_, err := New(WithSegmentSealEvery(3))
	is.True(err != nil) // needs a directory
	_, err = New(WithSegmentDir(t.TempDir()), WithSegmentSealEvery(-1))
	is.True(err != nil)
}

func TestSegmentsSealedOutOfOrderAreDescribedByTheirFirstAndLastFrames(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	c := connect(t, newBroker(t, WithSegmentDir(dir)))
	p := c.producer(t, "/default/late", "p", true)
	for i := range 6 {
		p.send(fmt.Sprint(i))
	}
	// 1 overtook 0, and 5 overtook 4, as concurrent sends do in a real WAL.
	swapped := func(_ string, offs []uint64) []uint64 { return []uint64{1, 0, 2, 3, 5, 4} }
	is.NoErr(c.b.SealSegmentsInFrameOrder(swapped))
	segs := c.segments(t, "/default/late", 0)
	is.Equal(len(segs), 1) // named data-1-…, so listed after offset 0
	is.Equal(segs[0].GetStartOffset(), uint64(1))
	is.Equal(segs[0].GetEndOffset(), uint64(4)) // the last frame, not the highest offset
	var order []uint64
	for _, m := range decodeSegmentFile(t, filepath.Join(dir, filepath.FromSlash(segment.ObjectPath("/default/late", segs[0].GetSegmentId())))) {
		order = append(order, m.Offset())
	}
	is.Equal(order, []uint64{1, 0, 2, 3, 5, 4})

	p.send("6", "7")
	is.NoErr(c.b.SealSegmentsInFrameOrder(func(_ string, offs []uint64) []uint64 { return []uint64{7, 6} }))
	segs = c.segments(t, "/default/late", 1)
	is.Equal(len(segs), 1)
	is.Equal([]uint64{segs[0].GetStartOffset(), segs[0].GetEndOffset()}, []uint64{7, 6}) // ends before it starts

	r, err := segment.NewReader(segment.ReaderConfig{Client: c.store, Store: segment.FileStore{Root: dir}, Topic: "/default/late"})
	is.NoErr(err)
	defer r.Close()
	var got []string
	for {
		m, err := r.Next(ctxT(t))
		if errors.Is(err, io.EOF) {
			break
		}
		is.NoErr(err)
		got = append(got, string(m.Payload))
	}
	is.Equal(got, []string{"0", "1", "2", "3", "4", "5", "6", "7"}) // in offset order, each once
}

func TestSealInFrameOrderRejectsWhatIsNotAPermutation(t *testing.T) {
	is := is.New(t)
	c := connect(t, newBroker(t, WithSegmentDir(t.TempDir())))
	c.producer(t, "/default/orders", "p", true).send("a", "b")
	err := c.b.SealSegmentsInFrameOrder(func(_ string, offs []uint64) []uint64 { return []uint64{1, 1} })
	is.True(err != nil)
	is.NoErr(c.b.SealSegments()) // nothing was sealed: all of it is sealed now
	segs := c.segments(t, "/default/orders", 0)
	is.Equal(len(segs), 0) // the segment starts at 0
	ids, err := segment.FileStore{Root: c.b.cfg.segmentDir}.Segments(ctxT(t), "/default/orders")
	is.NoErr(err)
	is.Equal(len(ids), 1)
}
