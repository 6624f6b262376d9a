package source

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// StorageConn is a connection to the broker's StorageService, which lists a
// topic's sealed segments. The client package has no call for it, so it is
// dialled here with the same URL, TLS and token settings.
type StorageConn struct {
	cc *grpc.ClientConn
}

// DialStorage prepares the connection (no I/O until the first call).
func DialStorage(cfg danubeclient.Config) (*StorageConn, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("storage service: broker URL %q is not of the form http(s)://host:port", cfg.URL)
	}
	opts := []grpc.DialOption{grpc.WithUserAgent("conduit-connector-danube")}
	if u.Scheme == "https" || cfg.TLS != nil || cfg.Token != "" {
		tc := cfg.TLS
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if cfg.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerToken{md: map[string]string{"authorization": "Bearer " + cfg.Token}}))
	}
	cc, err := grpc.NewClient(u.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("storage service: prepare connection to %s: %w", u.Host, err)
	}
	return &StorageConn{cc: cc}, nil
}

// Client returns the StorageService client.
func (s *StorageConn) Client() danubepb.StorageServiceClient {
	return danubepb.NewStorageServiceClient(s.cc)
}

// Close closes the connection; a nil StorageConn is fine.
func (s *StorageConn) Close() error {
	if s == nil {
		return nil
	}
	if err := s.cc.Close(); err != nil {
		return fmt.Errorf("close storage service connection: %w", err)
	}
	return nil
}

// bearerToken sends the JWT on every call, never over plaintext.
type bearerToken struct{ md map[string]string }

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return b.md, nil
}

func (bearerToken) RequireTransportSecurity() bool { return true }

// String keeps the token out of logs.
func (bearerToken) String() string { return "bearer([redacted])" }
