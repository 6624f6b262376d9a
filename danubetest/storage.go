package danubetest

import (
	"context"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/segment"
)

type storageService struct {
	danubepb.UnimplementedStorageServiceServer
	b *Broker
}

// ListSegmentDescriptors is the broker's list_segment_descriptors: the topic
// name is normalised ("/ns/t" and "ns/t" are the same topic), only segments
// whose start offset is greater than after_offset are returned (so the
// segment starting at offset 0 never is), sorted by start offset. An unknown
// topic, or a broker without WithSegmentDir (local storage mode), gives an
// empty list.
func (s storageService) ListSegmentDescriptors(_ context.Context, req *danubepb.ListSegmentDescriptorsRequest) (*danubepb.ListSegmentDescriptorsResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	resp := &danubepb.ListSegmentDescriptorsResponse{}
	t := b.topics["/"+segment.TopicPath(req.GetTopic())]
	if t == nil {
		return resp, nil
	}
	for _, seg := range t.segments { // kept in start order
		if seg.start > req.GetAfterOffset() {
			resp.Segments = append(resp.Segments, seg.proto())
		}
	}
	return resp, nil
}
