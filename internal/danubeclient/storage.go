package danubeclient

import "github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"

// Storage returns the broker's StorageService, which lists a topic's sealed
// segments, on the client's connection to the service URL (same TLS and
// token as every other call).
func (c *Client) Storage() danubepb.StorageServiceClient {
	return danubepb.NewStorageServiceClient(c.service.cc)
}
