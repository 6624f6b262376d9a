package segment

import (
	"context"
	"fmt"
	"io"
)

// Store reads segment objects from the broker's durable backend. FileStore
// serves a shared_fs root (or a local copy of an object store prefix); an
// object store (S3, GCS, Azure) implementation reads the same keys
// (ObjectPath) under its bucket prefix.
type Store interface {
	// Open returns the bytes of segment segmentID of topic (either "/ns/t" or
	// "ns/t"). A missing object gives an error wrapping fs.ErrNotExist.
	Open(ctx context.Context, topic, segmentID string) (io.ReadCloser, error)
}

// Lister is a Store that can also list a topic's segment ids. The Reader
// uses it to find the segment that starts at offset 0, which
// ListSegmentDescriptors never returns (it keeps start_offset > after_offset
// and after_offset cannot be below 0).
type Lister interface {
	Store
	// Segments returns the ids of the topic's segment objects, in no order.
	Segments(ctx context.Context, topic string) ([]string, error)
}

// ObjectInfo describes a written segment object.
type ObjectInfo struct {
	Size uint64
	ETag string
}

func validSegmentID(id string) error {
	if _, _, ok := ParseSegmentID(id); !ok {
		return fmt.Errorf("segment id %q is not of the form data-{start}-{secs}.dnb1", id)
	}
	return nil
}
