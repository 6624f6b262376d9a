package segment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// FileStore is a Store over a directory laid out like the broker's shared_fs
// durable root (storage.durable.root): {Root}/storage/topics/{ns}/{topic}/segments/{id}.
type FileStore struct {
	Root string
}

var _ Lister = FileStore{}

func (s FileStore) path(topic, segmentID string) string {
	return filepath.Join(s.Root, filepath.FromSlash(ObjectPath(topic, segmentID)))
}

// Open opens a segment object.
func (s FileStore) Open(ctx context.Context, topic, segmentID string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open segment %s of %s: %w", segmentID, topic, err)
	}
	if err := validSegmentID(segmentID); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(topic, segmentID))
	if err != nil {
		return nil, fmt.Errorf("open segment %s of %s: %w", segmentID, topic, err)
	}
	return f, nil
}

// Segments lists the topic's segment ids; none when the directory is missing.
func (s FileStore) Segments(ctx context.Context, topic string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list segments of %s: %w", topic, err)
	}
	dir := filepath.Join(s.Root, filepath.FromSlash(SegmentsPrefix(topic)))
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list segments of %s: %w", topic, err)
	}
	var ids []string
	for _, e := range entries {
		if e.Type().IsRegular() && validSegmentID(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// Put writes a segment object atomically (a temporary file renamed into
// place, as object_store's LocalFileSystem does) and returns its size and an
// ETag in LocalFileSystem's form, "{inode:x}-{mtime µs:x}-{size:x}".
func (s FileStore) Put(topic, segmentID string, data []byte) (ObjectInfo, error) {
	if err := validSegmentID(segmentID); err != nil {
		return ObjectInfo{}, err
	}
	dst := s.path(topic, segmentID)
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return ObjectInfo{}, fmt.Errorf("put segment %s of %s: %w", segmentID, topic, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), segmentID+"#*")
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("put segment %s of %s: %w", segmentID, topic, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return ObjectInfo{}, fmt.Errorf("put segment %s of %s: %w", segmentID, topic, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		_ = os.Remove(tmp.Name())
		return ObjectInfo{}, fmt.Errorf("put segment %s of %s: %w", segmentID, topic, err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("put segment %s of %s: %w", segmentID, topic, err)
	}
	return ObjectInfo{Size: uint64(fi.Size()), ETag: fileETag(fi)}, nil
}

// Delete removes every segment object of a topic, as the broker does when
// the topic is deleted.
func (s FileStore) Delete(topic string) error {
	dir := filepath.Join(s.Root, filepath.FromSlash(SegmentsPrefix(topic)))
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("delete segments of %s: %w", topic, err)
	}
	return nil
}

func fileETag(fi fs.FileInfo) string {
	micros := fi.ModTime().Sub(time.Unix(0, 0)).Microseconds()
	return fmt.Sprintf("%x-%x-%x", inode(fi), micros, fi.Size())
}
