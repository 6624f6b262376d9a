package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/adminpb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
	"github.com/conduitio-labs/conduit-connector-danube/test/harness"
)

// TestPipeline_TopicsMoveBetweenBrokers runs both sides on a 3-broker test
// cluster that shares its segment storage (as a shared_fs cluster does) and
// moves the topic's partitions between brokers with the admin UnloadTopic
// while records flow: a generator → danube pipeline writes a 2-partition
// topic, a danube → file pipeline reads it. After each move the destination's
// producers and the source's consumers find the new owner. Every generated
// record arrives; a record may arrive twice only within the documented
// bounds (the source drops redeliveries by offset; the destination may store
// a send in flight at a move twice).
//
// With DANUBE_CLUSTER_URLS and DANUBE_CLUSTER_ADMIN_URLS (comma-separated,
// as for the conformance suite) it runs against that cluster instead, on a
// topic of its own; its brokers must share storage (shared_fs or
// object_store), as with local storage Danube strands a moved subscription.
func TestPipeline_TopicsMoveBetweenBrokers(t *testing.T) {
	const (
		count        = 2000
		rate         = 200 // records per second: the run spans the moves
		partitions   = 2
		moves        = 6 // unloads, alternating partitions
		subscription = "e2e-moving"
		maxInFlight  = 256 // the destination's default
	)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	e, topic := newClusterEnv(t, "/default/e2e-moving")
	if err := e.admin().CreatePartitionedTopic(ctx, topic, partitions, danubeclient.Reliable); err != nil {
		t.Fatal(err)
	}
	consumer := e.conduit("consumer", consumerPipeline(topic, subscription))
	e.waitForSubscription(ctx, topic+"-part-0", subscription, consumer)
	producer := e.conduit("producer", generatorPipeline(topic, partitions, count, rate))

	conn, err := grpc.NewClient(strings.TrimPrefix(e.broker.AdminURL, "http://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	topics := adminpb.NewTopicAdminClient(conn)
	owner := ownerOf(ctx, t, e.broker.URL)

	// Move a partition each time another share of the records has arrived,
	// so every move happens while both pipelines run; each move must land
	// on another broker.
	received := e.path("consumer", "received.jsonl")
	for i := range moves {
		waitForAtLeast(ctx, t, received, (i+1)*count/(moves+2), consumer, producer)
		partition := danubeclient.PartitionTopic(topic, i%partitions)
		from := owner(partition, "")
		if _, err := topics.UnloadTopic(ctx, &adminpb.TopicRequest{Name: partition}); err != nil {
			t.Fatalf("move %d of %s: %v", i+1, partition, err)
		}
		t.Logf("move %d: %s from %s to %s", i+1, partition, from, owner(partition, from))
	}

	sent := recordIdentities(t, e.path("producer", "sent.jsonl"), count, consumer, producer)
	var got map[string]int
	err = harness.WaitFor(ctx, 200*time.Millisecond, func() (bool, error) {
		got = countIdentities(t, received)
		for id := range sent {
			if got[id] == 0 {
				return false, nil
			}
		}
		return true, nil
	}, consumer, producer)
	if err != nil {
		missing := 0
		for id := range sent {
			if got[id] == 0 {
				missing++
			}
		}
		t.Fatalf("%v: %d of %d generated records never arrived", err, missing, count)
	}
	duplicates := 0
	for id, n := range got {
		if sent[id] == 0 {
			t.Errorf("a record arrived that was never generated: %s", id)
		}
		duplicates += n - 1
	}
	if limit := moves * maxInFlight; duplicates > limit {
		t.Errorf("%d records arrived twice, more than the destination's bound of %d (%d moves × maxInFlight)", duplicates, limit, moves)
	}
	t.Logf("RESULT %d records generated, %d partition moves: %d arrived, %d of them twice", count, moves, len(got), duplicates)
}

// ownerOf returns a func that waits until a broker other than not hosts a
// topic (the cluster's lookup answers with its URL) and returns that URL.
func ownerOf(ctx context.Context, t *testing.T, serviceURL string) func(topic, not string) string {
	t.Helper()
	conn, err := grpc.NewClient(strings.TrimPrefix(serviceURL, "http://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	discovery := danubepb.NewDiscoveryClient(conn)
	return func(topic, not string) string {
		t.Helper()
		var url string
		err := harness.WaitFor(ctx, 50*time.Millisecond, func() (bool, error) {
			resp, err := discovery.TopicLookup(ctx, &danubepb.TopicLookupRequest{Topic: topic})
			if err != nil {
				return false, nil //nolint:nilerr // unassigned while it moves: keep asking
			}
			url = resp.GetConnectUrl()
			return url != "" && url != not, nil
		})
		if err != nil {
			t.Fatalf("the owner of %s (other than %q): %v", topic, not, err)
		}
		return url
	}
}

// newClusterEnv starts a 3-broker test cluster sharing a segment directory,
// or uses the real cluster DANUBE_CLUSTER_URLS and DANUBE_CLUSTER_ADMIN_URLS
// name, with the topic name made unique per run.
func newClusterEnv(t *testing.T, topic string) (*env, string) {
	t.Helper()
	urls, admins := os.Getenv("DANUBE_CLUSTER_URLS"), os.Getenv("DANUBE_CLUSTER_ADMIN_URLS")
	if urls == "" {
		return newEnv(t, "-brokers", "3", "-segment-dir", t.TempDir()), topic
	}
	if admins == "" {
		t.Fatal("DANUBE_CLUSTER_URLS is set without DANUBE_CLUSTER_ADMIN_URLS")
	}
	e := &env{t: t, dir: t.TempDir(), broker: &harness.Broker{
		URL:      strings.Split(urls, ",")[0],
		AdminURL: strings.Split(admins, ",")[0],
	}}
	t.Cleanup(e.stopAll)
	return e, fmt.Sprintf("%s-%d", topic, time.Now().Unix())
}

// recordIdentities waits until path holds n records and returns how often
// each record's identity (key and payload) occurs.
func recordIdentities(t *testing.T, path string, n int, watch ...*harness.Process) map[string]int {
	t.Helper()
	waitForAtLeast(t.Context(), t, path, n, watch...)
	ids := countIdentities(t, path)
	if len(ids) != n {
		t.Fatalf("%s: %d distinct records of %d: the generator repeated one", path, len(ids), n)
	}
	return ids
}

// countIdentities counts the records of a file destination's output by key
// and payload: what the source restores of each record the destination wrote.
func countIdentities(t *testing.T, path string) map[string]int {
	t.Helper()
	recs, err := harness.ReadRecords(path)
	if err != nil {
		t.Fatal(err)
	}
	ids := make(map[string]int, len(recs))
	for _, r := range recs {
		ids[string(r.Key.Bytes())+"\x00"+string(r.Payload.After.Bytes())]++
	}
	return ids
}

// generatorPipeline writes count generated records at rate per second to a
// topic of the given partitions, and a copy of each to sent.jsonl.
func generatorPipeline(topic string, partitions, count, rate int) string {
	return fmt.Sprintf(`version: "2.2"
pipelines:
  - id: to-danube
    status: running
    connectors:
      - id: generator
        type: source
        plugin: builtin:generator
        settings:
          collections.orders.format.type: structured
          collections.orders.format.options.id: int
          collections.orders.format.options.product: string
          collections.orders.operations: create
          recordCount: "%d"
          rate: "%d"
      - id: danube
        type: destination
        plugin: standalone:danube
        settings:
          url: ${DANUBE_URL}
          topic: %s
          partitions: "%d"
      - id: sent
        type: destination
        plugin: builtin:file
        settings:
          path: ./sent.jsonl
`, count, rate, topic, partitions)
}
