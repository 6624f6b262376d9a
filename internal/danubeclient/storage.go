package danubeclient

import "github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"

// Storage returns the broker's StorageService, which lists a topic's sealed
// segments, on the client's connection to the service URL (same TLS and
// token as every other call). Any broker of a cluster answers for every
// topic: the segment catalog lives in the cluster's metadata store
// (danube-persistent-storage SegmentCatalog over the Raft store), so there
// is no owner to look up and no answer that asks for a lookup.
func (c *Client) Storage() danubepb.StorageServiceClient {
	return danubepb.NewStorageServiceClient(c.service.cc)
}
