package danubetest

import (
	"cmp"
	"context"
	"slices"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/segment"
)

type storageService struct {
	danubepb.UnimplementedStorageServiceServer
	b *Broker
}

// ListSegmentDescriptors is the broker's list_segment_descriptors
// (storage_handler.rs, storage_factory/lifecycle.rs): the topic name is
// normalised ("/ns/t" and "ns/t" are the same topic), only segments whose
// start offset is greater than after_offset are returned, sorted by start
// offset. An unknown topic, or a broker without WithSegmentDir or
// WithSegmentStore (local storage mode), gives an empty list. As in the
// real broker, a descriptor's start and end offsets are those of
// the segment's first and last frames, and a segment is named after its
// first frame. With frames in offset order (SealSegments) the segment
// starting at 0 is never listed; with frames out of order
// (SealSegmentsInFrameOrder, as a real WAL under concurrent sends) the first
// segment can start above 0 and be listed, and a segment can end before it
// starts.
//
// Differs from the broker: segments are sealed by count (WithSegmentSealEvery)
// or on demand (SealSegments), where the broker exports every 300 s, on WAL
// rotation (512 MiB) and when a topic is sealed (unload, move, delete).
func (s storageService) ListSegmentDescriptors(_ context.Context, req *danubepb.ListSegmentDescriptorsRequest) (*danubepb.ListSegmentDescriptorsResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	resp := &danubepb.ListSegmentDescriptorsResponse{}
	t := b.topics["/"+segment.TopicPath(req.GetTopic())]
	if t == nil {
		return resp, nil
	}
	for _, seg := range t.segments {
		if seg.start > req.GetAfterOffset() {
			resp.Segments = append(resp.Segments, seg.proto())
		}
	}
	slices.SortStableFunc(resp.Segments, func(a, b *danubepb.SegmentDescriptorProto) int {
		return cmp.Compare(a.GetStartOffset(), b.GetStartOffset())
	})
	return resp, nil
}
