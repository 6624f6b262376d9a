package danubetest

import (
	"context"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

type discoveryService struct {
	danubepb.UnimplementedDiscoveryServer
	b *Broker
}

// TopicLookup answers Connect with this broker's own URL for a topic it
// hosts and Redirect to the owner's URL for a topic another broker of the
// cluster hosts, both with proxy=false (see lookupLocked).
//
// Differs from the broker: a lookup answers from the shared state at once;
// see cluster.go for the timing windows of a real cluster it skips.
func (s discoveryService) TopicLookup(_ context.Context, req *danubepb.TopicLookupRequest) (*danubepb.TopicLookupResponse, error) {
	if !validTopicName(req.GetTopic()) {
		return nil, errInvalidTopic(req.GetTopic())
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return s.b.lookupLocked(req)
}

// TopicPartitions returns [topic] for an existing topic, else the prefix scan
// (possibly empty, never an error).
func (s discoveryService) TopicPartitions(_ context.Context, req *danubepb.TopicLookupRequest) (*danubepb.TopicPartitionsResponse, error) {
	if !validTopicName(req.GetTopic()) {
		return nil, errInvalidTopic(req.GetTopic())
	}
	s.b.mu.Lock()
	parts := s.b.topicPartitionsLocked(req.GetTopic())
	s.b.mu.Unlock()
	return &danubepb.TopicPartitionsResponse{RequestId: req.GetRequestId(), Partitions: parts}, nil
}
