package segment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"google.golang.org/api/googleapi"
)

// BlobStore is a Store over a gocloud.dev/blob bucket rooted at the broker's
// durable root: the same keys (ObjectPath) on every backend, filesystem or
// object store. OpenBlobStore opens one from a Location.
type BlobStore struct {
	bucket *blob.Bucket
	where  string // the root, for messages (never holds credentials)
	close  func() // releases what the backend's client holds

	// streams is the context objects are read under, cancelled by Close.
	streams context.Context //nolint:containedctx // the store's lifetime
	stop    context.CancelFunc
}

var _ Lister = (*BlobStore)(nil)

// NewBlobStore wraps a bucket whose keys start at the durable root (prefix
// already applied); where names it in messages. Closing the store closes
// the bucket.
func NewBlobStore(bucket *blob.Bucket, where string) *BlobStore {
	return newBlobStore(bucket, where, nil)
}

func newBlobStore(bucket *blob.Bucket, where string, closeFn func()) *BlobStore {
	ctx, cancel := context.WithCancel(context.Background())
	return &BlobStore{bucket: bucket, where: where, close: closeFn, streams: ctx, stop: cancel}
}

// String is the root the store reads.
func (s *BlobStore) String() string { return s.where }

// Open opens a segment object; a missing one wraps fs.ErrNotExist.
func (s *BlobStore) Open(ctx context.Context, topic, segmentID string) (io.ReadCloser, error) {
	if err := validSegmentID(segmentID); err != nil {
		return nil, err
	}
	// The Reader reads a segment across several Next calls, each under its
	// own context; the object's stream must outlive the call that opened
	// it, so it ends with the body's Close, or the store's.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open segment %s of %s: %w", segmentID, topic, err)
	}
	r, err := s.bucket.NewReader(s.streams, ObjectPath(topic, segmentID), nil) //nolint:contextcheck // on purpose, see above
	if err != nil {
		return nil, fmt.Errorf("open segment %s of %s in %s: %w", segmentID, topic, s.where, notExist(err))
	}
	return r, nil
}

// Segments lists the topic's segment ids; none when there are none.
func (s *BlobStore) Segments(ctx context.Context, topic string) ([]string, error) {
	it := s.bucket.List(&blob.ListOptions{Prefix: SegmentsPrefix(topic), Delimiter: "/"})
	var ids []string
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return ids, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list segments of %s in %s: %w", topic, s.where, err)
		}
		if id := path.Base(obj.Key); !obj.IsDir && validSegmentID(id) == nil {
			ids = append(ids, id)
		}
	}
}

// Put writes a segment object and returns its size and ETag (the backend's;
// empty when it has none).
func (s *BlobStore) Put(ctx context.Context, topic, segmentID string, data []byte) (ObjectInfo, error) {
	if err := validSegmentID(segmentID); err != nil {
		return ObjectInfo{}, err
	}
	key := ObjectPath(topic, segmentID)
	if err := s.bucket.WriteAll(ctx, key, data, &blob.WriterOptions{ContentType: "application/octet-stream"}); err != nil {
		return ObjectInfo{}, fmt.Errorf("put segment %s of %s in %s: %w", segmentID, topic, s.where, err)
	}
	attrs, err := s.bucket.Attributes(ctx, key)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("put segment %s of %s in %s: %w", segmentID, topic, s.where, err)
	}
	return ObjectInfo{Size: uint64(max(attrs.Size, 0)), ETag: attrs.ETag}, nil
}

// Delete removes every segment object of a topic.
func (s *BlobStore) Delete(ctx context.Context, topic string) error {
	ids, err := s.Segments(ctx, topic)
	if err != nil {
		return fmt.Errorf("delete segments of %s: %w", topic, err)
	}
	for _, id := range ids {
		if err := s.bucket.Delete(ctx, ObjectPath(topic, id)); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return fmt.Errorf("delete segment %s of %s in %s: %w", id, topic, s.where, err)
		}
	}
	return nil
}

// Close ends the objects' streams, closes the bucket and the backend's
// idle connections.
func (s *BlobStore) Close() error {
	s.stop()
	err := s.bucket.Close()
	if s.close != nil {
		s.close()
	}
	if err != nil {
		return fmt.Errorf("close %s: %w", s.where, err)
	}
	return nil
}

// notExist marks a missing object with fs.ErrNotExist, as Store promises.
func notExist(err error) error {
	if gcerrors.Code(err) == gcerrors.NotFound {
		return fmt.Errorf("%w: %w", fs.ErrNotExist, err)
	}
	return err
}

// Errors Probe wraps, so callers can name the setting at fault.
var (
	// ErrNoBucket: the bucket (or container) does not exist.
	ErrNoBucket = errors.New("the bucket does not exist")
	// ErrAccessDenied: the backend rejected the credentials, or they may
	// not list the bucket.
	ErrAccessDenied = errors.New("access denied")
	// ErrWrongRegion: S3 redirects, as the bucket is in another region.
	ErrWrongRegion = errors.New("the bucket is in another region")
)

// Probe lists the root once, so that a missing bucket or rejected
// credentials show before anything is read, and reports whether the root
// holds any topic's segments (storage/topics/).
func (s *BlobStore) Probe(ctx context.Context) (found bool, err error) {
	it := s.bucket.List(&blob.ListOptions{Prefix: "storage/topics/", Delimiter: "/"})
	_, err = it.Next(ctx)
	switch {
	case errors.Is(err, io.EOF):
		return false, nil
	case err == nil:
		return true, nil
	case httpStatus(err) == http.StatusMovedPermanently:
		return false, fmt.Errorf("list %s: %w: %w", s.where, ErrWrongRegion, err)
	case gcerrors.Code(err) == gcerrors.NotFound:
		return false, fmt.Errorf("list %s: %w: %w", s.where, ErrNoBucket, err)
	case denied(err):
		return false, fmt.Errorf("list %s: %w: %w", s.where, ErrAccessDenied, err)
	}
	return false, fmt.Errorf("list %s: %w", s.where, err)
}

// Exists reports whether the segment object is in the store.
func (s *BlobStore) Exists(ctx context.Context, topic, segmentID string) (bool, error) {
	ok, err := s.bucket.Exists(ctx, ObjectPath(topic, segmentID))
	if err != nil {
		return false, fmt.Errorf("look for segment %s of %s in %s: %w", segmentID, topic, s.where, err)
	}
	return ok, nil
}

// denied recognises a rejected credential on every backend: the portable
// code, else the HTTP status or the S3 error code S3-compatible stores send.
func denied(err error) bool {
	if gcerrors.Code(err) == gcerrors.PermissionDenied {
		return true
	}
	if st := httpStatus(err); st == http.StatusUnauthorized || st == http.StatusForbidden {
		return true
	}
	var azErr *azcore.ResponseError
	if errors.As(err, &azErr) && (azErr.StatusCode == http.StatusUnauthorized || azErr.StatusCode == http.StatusForbidden) {
		return true
	}
	var gErr *googleapi.Error
	return errors.As(err, &gErr) && (gErr.Code == http.StatusUnauthorized || gErr.Code == http.StatusForbidden)
}

// httpStatus is the HTTP status of an AWS SDK response error, else 0.
func httpStatus(err error) int {
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) {
		return status.HTTPStatusCode()
	}
	return 0
}
