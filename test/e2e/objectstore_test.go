package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conduitio/conduit-commons/opencdc"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/s3fake"
)

// TestPipeline_SnapshotFromS3ThenLive runs a source whose history is in an
// S3-compatible store, as with a broker in object_store mode: the test
// broker exports sealed segments of a 2-partition topic into an in-process
// S3 server (the connector, in Conduit's plugin process, reaches it over
// loopback, with credentials from the environment). The pipeline reads the
// history, then continues live; every partition's offsets arrive once each,
// in order, across the seam.
func TestPipeline_SnapshotFromS3ThenLive(t *testing.T) {
	const (
		topic   = "/default/e2e-s3"
		root    = "s3://danube-messages/cluster-data"
		history = 200
		live    = 100
	)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	const secret = "e2e-test-secret-kept-out-of-logs"
	srv, err := s3fake.Start("127.0.0.1:0", "AKIDE2ETEST", secret, "danube-messages")
	if err != nil {
		t.Fatal(err)
	}
	// Closed after the processes stop (they are registered later: cleanups
	// run last-in first-out). The key pair reaches the broker, Conduit and
	// the connector through the environment they inherit.
	t.Cleanup(srv.Close)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	e := newEnv(t, "-segment-storage-root", root, "-segment-storage-endpoint", srv.URL, "-segment-seal-every", "25")

	admin := e.admin()
	if err := admin.CreatePartitionedTopic(ctx, topic, 2, danubeclient.Reliable); err != nil {
		t.Fatal(err)
	}
	send := publisher(ctx, t, e.broker.URL, topic)
	send(0, history)
	for _, part := range []string{"e2e-s3-part-0", "e2e-s3-part-1"} {
		keys, err := srv.Keys("danube-messages", "cluster-data/storage/topics/default/"+part+"/segments/data-")
		if err != nil || len(keys) != history/2/25 {
			t.Fatalf("segments of %s in the store: %v, %v; want %d", part, keys, err, history/2/25)
		}
	}

	consumer := e.conduit("consumer", fmt.Sprintf(`version: "2.2"
pipelines:
  - id: from-s3-history
    status: running
    connectors:
      - id: danube
        type: source
        plugin: standalone:danube
        settings:
          url: ${DANUBE_URL}
          topics: %s
          subscription: e2e-s3
          snapshot.enabled: "true"
          snapshot.storage.backend: s3
          snapshot.storage.root: %s
          snapshot.storage.endpoint: %s
      - id: file
        type: destination
        plugin: builtin:file
        settings:
          path: ./received.jsonl
`, topic, root, srv.URL))
	waitForRecords(ctx, t, e.path("consumer", "received.jsonl"), history, consumer)
	e.waitForSubscription(ctx, topic+"-part-0", "e2e-s3", consumer)
	send(history, live)
	recs := waitForRecords(ctx, t, e.path("consumer", "received.jsonl"), history+live, consumer)

	next := map[string]int{}
	for i, r := range recs {
		part := r.Metadata["danube.topic"]
		if off := r.Metadata["danube.offset"]; off != strconv.Itoa(next[part]) {
			t.Fatalf("record %d: %s offset %s, want %d (a gap or a duplicate)", i, part, off, next[part])
		}
		next[part]++
		want := opencdc.OperationSnapshot // read from the store
		if i >= history {
			want = opencdc.OperationCreate // from the subscription
		}
		if r.Operation != want {
			t.Errorf("record %d (%s offset %s): operation %s, want %s", i, part, r.Metadata["danube.offset"], r.Operation, want)
		}
	}
	if want := map[string]int{topic + "-part-0": (history + live) / 2, topic + "-part-1": (history + live) / 2}; fmt.Sprint(next) != fmt.Sprint(want) {
		t.Errorf("records per partition %v, want %v", next, want)
	}
	if !strings.Contains(consumer.Output(), "snapshot storage opened") {
		t.Error("Conduit's log lacks the connector's snapshot storage line: the secret check below would prove nothing")
	}
	if strings.Contains(consumer.Output(), secret) {
		t.Error("the S3 secret appears in Conduit's output")
	}
}

// publisher returns a function that publishes n messages numbered from
// "from" to topic's partitions in turn.
func publisher(ctx context.Context, t *testing.T, url, topic string) func(from, n int) {
	t.Helper()
	c, err := danubeclient.NewClient(danubeclient.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	p, err := c.NewProducer(ctx, danubeclient.ProducerOptions{Topic: topic, Name: "e2e-s3-writer", Partitions: 2, Dispatch: danubeclient.Reliable})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.WithoutCancel(ctx)) })
	return func(from, n int) {
		for i := from; i < from+n; i++ {
			if err := p.Send(ctx, danubeclient.Message{Payload: []byte(strconv.Itoa(i))}); err != nil {
				t.Fatal(err)
			}
		}
	}
}
