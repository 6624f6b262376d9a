package danube

import (
	"context"
	"strings"
	"testing"

	"github.com/matryer/is"
	"github.com/rs/zerolog"

	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/s3fake"
	"github.com/conduitio-labs/conduit-connector-danube/internal/segment"
	"github.com/conduitio-labs/conduit-connector-danube/source"
	"github.com/conduitio-labs/conduit-connector-danube/test/harness"
)

const (
	s3AccessKey = "AKIDCONNECTORTEST"
	s3Secret    = "connector-test-secret-must-not-leak"
	s3Root      = "s3://danube-messages/cluster-data"
)

// s3SnapshotEnv is a test broker that exports sealed segments into an
// in-process S3-compatible store under s3Root, as a broker in object_store
// mode, every sealEvery messages (0: only on SealSegments). The AWS SDK's
// environment holds the store's key pair for the test.
func s3SnapshotEnv(t *testing.T, sealEvery int) (*sourceEnv, *s3fake.Server) {
	t.Helper()
	srv, err := s3fake.Start("127.0.0.1:0", s3AccessKey, s3Secret, "danube-messages")
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	store, err := segment.OpenBlobStore(context.Background(), segment.Location{Backend: segment.BackendS3, Root: s3Root, Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	e := newSourceEnv(t, danubetest.WithSegmentStore(danubetest.ObjectStore(store)), danubetest.WithSegmentSealEvery(sealEvery))
	// After the sources' teardown, before newSourceEnv's leak check (cleanups
	// run last-in first-out); the broker seals nothing when it closes.
	t.Cleanup(func() {
		_ = store.Close()
		srv.Close()
	})
	return e, srv
}

func s3Params(e *sourceEnv, srv *s3fake.Server, topics ...string) map[string]string {
	p := e.params(topics...)
	p["snapshot.enabled"] = "true"
	p["snapshot.storage.backend"] = "s3"
	p["snapshot.storage.root"] = s3Root
	p["snapshot.storage.endpoint"] = srv.URL
	return p
}

// History exported to S3 on two partitions is read from the store, then
// the source continues live: every offset of each partition once, in order.
func TestSourceSnapshot_S3HistoryThenLive(t *testing.T) {
	is := is.New(t)
	e, srv := s3SnapshotEnv(t, 7)
	const topic = "/default/s3orders"
	is.NoErr(e.admin.CreatePartitionedTopic(srcCtx(t), topic, 2, danubeclient.Reliable))
	p := e.producer(topic, 2)
	e.publish(p, 60, nil)
	is.NoErr(e.broker.SealSegments())
	for _, part := range []string{"s3orders-part-0", "s3orders-part-1"} {
		keys, err := srv.Keys("danube-messages", "cluster-data/storage/topics/default/"+part+"/segments/data-")
		is.NoErr(err)
		is.True(len(keys) >= 2) // several exports, so the broker lists some
	}

	s := e.created(s3Params(e, srv, topic))
	history := readAcking(t, s, 60)
	for _, r := range history {
		is.Equal(recordMode(t, r), source.ModeSnapshot)
	}
	e.publish(p, 20, nil)
	live := readAcking(t, s, 20)
	counts := assertContiguous(t, append(history, live...))
	is.Equal(counts, map[string]int{"/default/s3orders-part-0": 40, "/default/s3orders-part-1": 40})
	is.Equal(recordMode(t, live[len(live)-1]), source.ModeCDC)
	expectNoRecord(t, s)
}

// A wrong bucket, credential, prefix or endpoint fails Open with the
// parameter to fix, and the secret appears in no error and no log line.
func TestSourceSnapshot_S3BadStorageFailsOpen(t *testing.T) {
	e, srv := s3SnapshotEnv(t, 0)
	const topic = "/default/s3bad"
	p := e.producer(topic, 0)
	for range 3 { // three exports: the broker lists the second and third
		e.publish(p, 5, nil)
		if err := e.broker.SealSegments(); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name string
		set  map[string]string
		env  []string
		want []string
	}{
		{
			"missing bucket",
			map[string]string{"snapshot.storage.root": "s3://no-such-bucket/cluster-data"},
			nil,
			[]string{`"snapshot.storage.root" is s3://no-such-bucket/cluster-data, but its bucket does not exist`},
		},
		{
			"unknown access key", nil,
			[]string{"AWS_ACCESS_KEY_ID=AKIDWRONG"},
			[]string{"rejected the credentials", "AWS_ACCESS_KEY_ID"},
		},
		{
			"wrong secret", nil,
			[]string{"AWS_SECRET_ACCESS_KEY=" + s3Secret + "-but-wrong"},
			[]string{"rejected the credentials", "AWS_SECRET_ACCESS_KEY"},
		},
		{
			"wrong prefix",
			map[string]string{"snapshot.storage.root": "s3://danube-messages/other-cluster"},
			nil,
			[]string{`"snapshot.storage.root" s3://danube-messages/other-cluster does not hold storage/topics/default/s3bad/segments/data-5-`},
		},
		{
			"unreachable endpoint",
			map[string]string{"snapshot.storage.endpoint": "http://127.0.0.1:1"},
			nil,
			[]string{`"snapshot.storage.endpoint" http://127.0.0.1:1`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, kv := range tc.env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			params := s3Params(e, srv, topic)
			for k, v := range tc.set {
				params[k] = v
			}
			var logs harness.SyncBuffer
			ctx := zerolog.New(&logs).Level(zerolog.TraceLevel).WithContext(srcCtx(t))
			s := e.source(params)
			err := s.Open(ctx, nil)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if all := err.Error() + logs.String(); strings.Contains(all, s3Secret) {
				t.Errorf("the secret appears in the error or logs: %s", all)
			}
		})
	}
	t.Run("right settings", func(t *testing.T) {
		is := is.New(t)
		s := e.source(s3Params(e, srv, topic))
		is.NoErr(s.Open(srcCtx(t), nil))
		recs := readAcking(t, s, 15)
		assertContiguous(t, recs)
	})
}
