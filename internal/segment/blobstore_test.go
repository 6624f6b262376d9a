package segment

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/internal/s3fake"
)

const (
	testAccessKey = "AKIDSEGMENTTEST"
	testSecret    = "segment-test-secret-do-not-print"
)

// s3Server serves bucket "danube-messages" and points the AWS SDK's
// environment at its key pair for the test.
func s3Server(t *testing.T) *s3fake.Server {
	t.Helper()
	srv, err := s3fake.Start("127.0.0.1:0", testAccessKey, testSecret, "danube-messages")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	setEnv(t, srv.Env())
	return srv
}

func setEnv(t *testing.T, env []string) {
	t.Helper()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

func openTestS3(t *testing.T, srv *s3fake.Server, root string) (*BlobStore, error) {
	t.Helper()
	s, err := OpenBlobStore(context.Background(), Location{Backend: BackendS3, Root: root, Endpoint: srv.URL})
	if err == nil {
		t.Cleanup(func() { _ = s.Close() })
	}
	return s, err
}

// Segments written under an S3 prefix in the broker's layout are listed
// and read back in offset order, including the first segment, which only
// listing the store finds.
func TestBlobStoreS3ReadsTheBrokersLayout(t *testing.T) {
	is := is.New(t)
	srv := s3Server(t)
	store, err := openTestS3(t, srv, "s3://danube-messages/cluster-data/")
	is.NoErr(err)
	found, err := store.Probe(context.Background())
	is.NoErr(err)
	is.True(!found) // nothing exported yet

	e := newExporter(t)
	e.put = func(topic, id string, data []byte) (ObjectInfo, error) {
		return store.Put(context.Background(), topic, id, data)
	}
	first := e.seal(0, 9)
	e.seal(10, 24)
	e.seal(25, 25)

	// The object keys are the broker's: {prefix}/storage/topics/{ns}/{topic}/segments/{id}.
	obj, err := srv.Backend.HeadObject("danube-messages", "cluster-data/storage/topics/default/orders/segments/"+first)
	is.NoErr(err)
	is.Equal(obj.Size, int64(len(segmentBytes(t, 0, 9))))

	found, err = store.Probe(context.Background())
	is.NoErr(err)
	is.True(found)
	r := e.reader(0, store)
	is.Equal(readAll(t, r), span(0, 25))

	ids, err := store.Segments(context.Background(), "default/orders")
	is.NoErr(err)
	is.Equal(len(ids), 3)

	_, err = store.Open(context.Background(), topic, "data-99-1.dnb1")
	is.True(errors.Is(err, fs.ErrNotExist))
	_, err = store.Open(context.Background(), topic, "../../x")
	is.True(err != nil) // not a segment id

	is.NoErr(store.Delete(context.Background(), topic))
	ids, err = store.Segments(context.Background(), topic)
	is.NoErr(err)
	is.Equal(len(ids), 0)
}

// A segment is read across several calls, each with its own context: the
// object's stream outlives the context it was opened under.
func TestBlobStoreS3StreamOutlivesTheOpeningContext(t *testing.T) {
	is := is.New(t)
	srv := s3Server(t)
	store, err := openTestS3(t, srv, "s3://danube-messages")
	is.NoErr(err)
	data := segmentBytes(t, 0, 50000) // more than the socket buffers hold
	_, err = store.Put(context.Background(), topic, "data-0-1.dnb1", data)
	is.NoErr(err)
	ctx, cancel := context.WithCancel(context.Background())
	body, err := store.Open(ctx, topic, "data-0-1.dnb1")
	is.NoErr(err)
	defer body.Close()
	cancel()
	got, err := io.ReadAll(body)
	is.NoErr(err)
	is.Equal(len(got), len(data))
}

// The probe tells a missing bucket from rejected credentials, and no error
// carries the secret.
func TestBlobStoreS3ProbeErrors(t *testing.T) {
	srv := s3Server(t)
	cases := []struct {
		name, root string
		env        []string
		want       error
	}{
		{"missing bucket", "s3://no-such-bucket/cluster-data", nil, ErrNoBucket},
		{"unknown access key", "s3://danube-messages", []string{"AWS_ACCESS_KEY_ID=AKIDWRONG"}, ErrAccessDenied},
		{"wrong secret", "s3://danube-messages", []string{"AWS_SECRET_ACCESS_KEY=not-the-secret"}, ErrAccessDenied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			setEnv(t, tc.env)
			store, err := openTestS3(t, srv, tc.root)
			is.NoErr(err) // nothing is read before Probe
			_, err = store.Probe(context.Background())
			is.True(errors.Is(err, tc.want))
			is.True(!strings.Contains(err.Error(), testSecret))
			is.True(!strings.Contains(err.Error(), "not-the-secret"))
		})
	}
}

// The fs backend reads a shared_fs root through the same store.
func TestBlobStoreFSReadsAFileStoreRoot(t *testing.T) {
	is := is.New(t)
	e := newExporter(t)
	e.seal(0, 4)
	e.seal(5, 7)
	store, err := OpenBlobStore(context.Background(), Location{Backend: BackendFS, Root: "file://" + e.store.Root})
	is.NoErr(err)
	defer store.Close()
	found, err := store.Probe(context.Background())
	is.NoErr(err)
	is.True(found)
	is.Equal(readAll(t, e.reader(0, store)), span(0, 7))

	_, err = OpenBlobStore(context.Background(), Location{Backend: BackendFS, Root: e.store.Root + "/missing"})
	is.True(errors.Is(err, fs.ErrNotExist))
}

func TestLocationSplitRoot(t *testing.T) {
	cases := []struct {
		backend, root, bucket, prefix, err string
	}{
		{BackendS3, "s3://bucket", "bucket", "", ""},
		{BackendS3, "s3://bucket/a/b/", "bucket", "a/b", ""},
		{BackendS3, "bucket/a", "", "", "is not of the form s3://bucket/prefix"},
		{BackendS3, "s3:///a", "", "", "names no bucket"},
		{BackendGCS, "gcs://bucket/p", "bucket", "p", ""},
		{BackendGCS, "gs://bucket/p", "bucket", "p", ""},
		{BackendGCS, "s3://bucket/p", "", "", "gcs://bucket/prefix"},
		{BackendAzblob, "container/danube", "container", "danube", ""},
		{BackendAzblob, "azblob://container", "container", "", ""},
		{BackendFS, "file:///var/danube", "/var/danube", "", ""},
		{BackendFS, "/var/danube", "/var/danube", "", ""},
		{BackendS3, " ", "", "", "empty"},
		{"ftp", "x", "", "", "unknown backend"},
	}
	for _, tc := range cases {
		bucket, prefix, err := Location{Backend: tc.backend, Root: tc.root}.SplitRoot()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s %q: error %v, want one containing %q", tc.backend, tc.root, err, tc.err)
			}
			continue
		}
		if err != nil || bucket != tc.bucket || prefix != tc.prefix {
			t.Errorf("%s %q: %q, %q, %v; want %q, %q", tc.backend, tc.root, bucket, prefix, err, tc.bucket, tc.prefix)
		}
	}
}
