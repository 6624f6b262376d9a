package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conduitio/conduit-commons/opencdc"
	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/test/harness"
)

// consumerPipeline reads topic through a durable subscription into
// received.jsonl; settings are further source settings ("key: value").
func consumerPipeline(topic, subscription string, settings ...string) string {
	var extra strings.Builder
	for _, s := range settings {
		extra.WriteString("\n          " + s)
	}
	return fmt.Sprintf(`version: "2.2"
pipelines:
  - id: from-danube
    status: running
    connectors:
      - id: danube
        type: source
        plugin: standalone:danube
        settings:
          url: ${DANUBE_URL}
          adminURL: ${DANUBE_ADMIN_URL}
          topics: %s
          createMissingTopics: "true"
          subscription: %s%s
      - id: received
        type: destination
        plugin: builtin:file
        settings:
          path: ./received.jsonl
`, topic, subscription, extra.String())
}

// TestPipeline_GeneratorToDanubeToFile sends generated records through
// Conduit into Danube and reads them back through Conduit into a file: every
// record arrives once, complete and in order.
func TestPipeline_GeneratorToDanubeToFile(t *testing.T) {
	const (
		count        = 200
		topic        = "/default/e2e-orders"
		subscription = "e2e-orders"
	)
	is := is.New(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	e := newEnv(t)

	consumer := e.conduit("consumer", consumerPipeline(topic, subscription))
	e.waitForSubscription(ctx, topic, subscription, consumer)

	// The generator's records also go to sent.jsonl: what Danube must deliver.
	producer := e.conduit("producer", fmt.Sprintf(`version: "2.2"
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
          collections.orders.format.options.paid: bool
          collections.orders.operations: create
          recordCount: "%d"
      - id: danube
        type: destination
        plugin: standalone:danube
        settings:
          url: ${DANUBE_URL}
          topic: %s
          # The generator's keys are random words; the default (key) keeps
          # order per key only. partition keeps the order of every record.
          ordering: partition
      - id: sent
        type: destination
        plugin: builtin:file
        settings:
          path: ./sent.jsonl
`, count, topic))

	received := waitForRecords(ctx, t, e.path("consumer", "received.jsonl"), count, consumer, producer)
	sent := waitForRecords(ctx, t, e.path("producer", "sent.jsonl"), count, consumer, producer)

	// The source restores each record the destination wrote (the message is
	// the record as OpenCDC JSON): same operation, key, payload and metadata,
	// in the order the generator produced them.
	for i, got := range received {
		want := sent[i]
		is.Equal(got.Operation, want.Operation)
		is.Equal(got.Key, want.Key)
		is.Equal(got.Payload, want.Payload)
		for k, v := range want.Metadata {
			if isSchemaReference(k) {
				continue
			}
			is.Equal(got.Metadata[k], v) // metadata key k
		}
		// Danube numbers a topic's messages from 0: each arrived once.
		is.Equal(got.Metadata["danube.topic"], topic)
		is.Equal(got.Metadata["danube.offset"], strconv.Itoa(i))
	}
}

// isSchemaReference reports whether a metadata key names a schema in the
// producing Conduit's schema registry. The message holds the decoded data, so
// the restored record must not refer to a schema the consuming side lacks.
func isSchemaReference(key string) bool {
	return strings.HasPrefix(key, "opencdc.key.schema.") || strings.HasPrefix(key, "opencdc.payload.schema.")
}

// waitForRecords waits until path holds at least n records and returns
// exactly what it holds then; more than n is a failure (duplicates).
func waitForRecords(ctx context.Context, t *testing.T, path string, n int, watch ...*harness.Process) []opencdc.Record {
	t.Helper()
	var recs []opencdc.Record
	err := harness.WaitFor(ctx, 100*time.Millisecond, func() (bool, error) {
		var err error
		recs, err = harness.ReadRecords(path)
		return len(recs) >= n, err
	}, watch...)
	if err != nil {
		t.Fatalf("waiting for %d records in %s (have %d): %v", n, path, len(recs), err)
	}
	if len(recs) != n {
		t.Fatalf("%s holds %d records, want %d", path, len(recs), n)
	}
	return recs
}
