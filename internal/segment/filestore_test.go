package segment

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/matryer/is"
)

func TestFileStorePutUsesTheBrokerLayout(t *testing.T) {
	is := is.New(t)
	root := t.TempDir()
	store := FileStore{Root: root}
	data := segmentBytes(t, 0, 3)
	info, err := store.Put("/default/orders", "data-0-1700000000.dnb1", data)
	is.NoErr(err)
	is.Equal(info.Size, uint64(len(data)))
	is.True(regexp.MustCompile(`^[0-9a-f]+-[0-9a-f]+-[0-9a-f]+$`).MatchString(info.ETag)) // inode-mtime-size, hex

	onDisk, err := os.ReadFile(filepath.Join(root, "storage", "topics", "default", "orders", "segments", "data-0-1700000000.dnb1"))
	is.NoErr(err)
	is.Equal(onDisk, data)

	r, err := store.Open(context.Background(), "default/orders", "data-0-1700000000.dnb1")
	is.NoErr(err)
	got, err := io.ReadAll(r)
	is.NoErr(err)
	is.NoErr(r.Close())
	is.Equal(got, data)
}

func TestFileStoreSegmentsListsOnlySegmentObjects(t *testing.T) {
	is := is.New(t)
	store := FileStore{Root: t.TempDir()}
	ids, err := store.Segments(context.Background(), "/default/none")
	is.NoErr(err)
	is.Equal(len(ids), 0) // a topic without segments has no directory

	for _, id := range []string{"data-0-10.dnb1", "data-5-20.dnb1"} {
		_, err := store.Put("/default/orders", id, segmentBytes(t, 0, 0))
		is.NoErr(err)
	}
	dir := filepath.Join(store.Root, "storage", "topics", "default", "orders", "segments")
	is.NoErr(os.WriteFile(filepath.Join(dir, "data-9-30.dnb1#staging"), nil, 0o600)) // an upload in progress
	ids, err = store.Segments(context.Background(), "/default/orders")
	is.NoErr(err)
	slices.Sort(ids)
	is.Equal(ids, []string{"data-0-10.dnb1", "data-5-20.dnb1"})
}

func TestFileStoreOpenMissingAndInvalid(t *testing.T) {
	is := is.New(t)
	store := FileStore{Root: t.TempDir()}
	_, err := store.Open(context.Background(), "/default/orders", "data-0-1.dnb1")
	is.True(errors.Is(err, fs.ErrNotExist))
	_, err = store.Open(context.Background(), "/default/orders", "../../../etc/passwd")
	is.True(err != nil) // not a segment id
	_, err = store.Put("/default/orders", "../x", nil)
	is.True(err != nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = store.Open(ctx, "/default/orders", "data-0-1.dnb1")
	is.True(errors.Is(err, context.Canceled))
}

func TestFileStoreDelete(t *testing.T) {
	is := is.New(t)
	store := FileStore{Root: t.TempDir()}
	_, err := store.Put("/default/orders", "data-0-1.dnb1", nil)
	is.NoErr(err)
	is.NoErr(store.Delete("/default/orders"))
	ids, err := store.Segments(context.Background(), "/default/orders")
	is.NoErr(err)
	is.Equal(len(ids), 0)
}
