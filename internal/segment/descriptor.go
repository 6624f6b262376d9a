package segment

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// Descriptor describes a sealed segment, as ListSegmentDescriptors returns it.
type Descriptor struct {
	SegmentID string
	// StartOffset and EndOffset are the offsets of the segment's first and
	// last frames (the broker's extract_offsets). Frames can be out of
	// offset order (see DefaultReorderWindow), so these are not its lowest
	// and highest offsets, and EndOffset can even be below StartOffset.
	StartOffset uint64
	EndOffset   uint64
	Size        uint64 // bytes
	ETag        string
	CreatedAt   time.Time // second precision
}

// ListDescriptors asks the broker for the topic's sealed segments whose
// start offset is greater than afterOffset, sorted by start offset. topic
// may be "/ns/t" or "ns/t" (the broker normalises it); a partitioned topic's
// partitions are separate topics ("/ns/t-part-0"). An unknown topic, or a
// broker in local storage mode, gives an empty list. Because the filter is
// strict, the segment starting at offset 0 is never returned.
//
// The broker names and lists a segment by its first frame's offset: when a
// concurrent send overtook offset 0 in the first WAL file, the first
// segment is "data-1-…" or later, and it is listed.
func ListDescriptors(ctx context.Context, client danubepb.StorageServiceClient, topic string, afterOffset uint64) ([]Descriptor, error) {
	resp, err := client.ListSegmentDescriptors(ctx, &danubepb.ListSegmentDescriptorsRequest{Topic: topic, AfterOffset: afterOffset})
	if err != nil {
		return nil, fmt.Errorf("list segment descriptors of %s after offset %d: %w", topic, afterOffset, err)
	}
	out := make([]Descriptor, 0, len(resp.GetSegments()))
	for _, s := range resp.GetSegments() {
		out = append(out, Descriptor{
			SegmentID:   s.GetSegmentId(),
			StartOffset: s.GetStartOffset(),
			EndOffset:   s.GetEndOffset(),
			Size:        s.GetSize(),
			ETag:        s.GetEtag(),
			CreatedAt:   time.Unix(int64(s.GetCreatedAt()), 0),
		})
	}
	slices.SortFunc(out, func(a, b Descriptor) int { return cmp.Compare(a.StartOffset, b.StartOffset) })
	return out, nil
}
