package danubetest

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

type healthService struct {
	danubepb.UnimplementedHealthCheckServer
	b *Broker
}

// HealthCheck answers CLOSE for unknown ids and inactive consumers (a
// consumer turns inactive when its stream ends), OK otherwise, as the broker.
func (s healthService) HealthCheck(_ context.Context, req *danubepb.HealthCheckRequest) (*danubepb.HealthCheckResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	var ok bool
	switch req.GetClient() {
	case danubepb.HealthCheckRequest_Producer:
		ok = b.producers[req.GetId()] != nil
	case danubepb.HealthCheckRequest_Consumer:
		c := b.consumers[req.GetId()]
		ok = c != nil && c.active
	default:
		return nil, status.Errorf(codes.InvalidArgument, "Invalid client type")
	}
	if ok {
		return &danubepb.HealthCheckResponse{Status: danubepb.HealthCheckResponse_OK}, nil
	}
	return &danubepb.HealthCheckResponse{Status: danubepb.HealthCheckResponse_CLOSE}, nil
}
