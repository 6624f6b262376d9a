package danubetest

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

type discoveryService struct {
	danubepb.UnimplementedDiscoveryServer
	b *Broker
}

// TopicLookup answers Connect with this broker's own URL for every known
// topic and proxy=false; an unknown topic is NOT_FOUND and a bad name
// INVALID_ARGUMENT, as the broker.
//
// Differs from the broker: a single broker, so never Redirect.
func (s discoveryService) TopicLookup(_ context.Context, req *danubepb.TopicLookupRequest) (*danubepb.TopicLookupResponse, error) {
	if !validTopicName(req.GetTopic()) {
		return nil, errInvalidTopic(req.GetTopic())
	}
	s.b.mu.Lock()
	known := s.b.topics[req.GetTopic()] != nil
	s.b.mu.Unlock()
	if !known {
		return nil, status.Errorf(codes.NotFound, "Unable to find the requested topic: %s", req.GetTopic())
	}
	url := s.b.URL()
	return &danubepb.TopicLookupResponse{
		RequestId:    req.GetRequestId(),
		ResponseType: danubepb.TopicLookupResponse_Connect,
		ConnectUrl:   url,
		BrokerUrl:    url,
		Proxy:        false,
	}, nil
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
