package danubetest

import (
	"context"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

type storageService struct {
	danubepb.UnimplementedStorageServiceServer
	b *Broker
}

// ListSegmentDescriptors returns no segments: the test broker keeps its logs
// in memory and seals no WAL segments (yet).
func (s storageService) ListSegmentDescriptors(context.Context, *danubepb.ListSegmentDescriptorsRequest) (*danubepb.ListSegmentDescriptorsResponse, error) {
	return &danubepb.ListSegmentDescriptorsResponse{}, nil
}
