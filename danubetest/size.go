package danubetest

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// sizeLimitUnary rejects requests over 4 MiB with the status tonic gives the
// real broker: OUT_OF_RANGE "Error, decoded message length too large: …".
// grpc-go would answer RESOURCE_EXHAUSTED itself, so the transport limit is
// raised and the check made here on the encoded size.
func sizeLimitUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if m, ok := req.(proto.Message); ok {
		if n := proto.Size(m); n > MaxMessageBytes {
			return nil, status.Errorf(codes.OutOfRange, "Error, decoded message length too large: found %d bytes, the limit is: %d bytes", n, MaxMessageBytes)
		}
	}
	return handler(ctx, req)
}
