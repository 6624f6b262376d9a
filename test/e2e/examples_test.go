package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/conduitio/conduit-commons/opencdc"
	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/test/harness"
)

// TestExamples runs the pipelines in examples/ as users would copy them:
// generated orders go to /default/orders; danube-to-file writes them to a
// file and danube-to-danube copies them to /analytics/orders-copy, which a
// test pipeline reads back. Both must hold every order once.
func TestExamples(t *testing.T) {
	const count = 100 // recordCount in generator-to-danube.yaml
	is := is.New(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	e := newEnv(t, "-namespaces", "analytics")
	root, err := harness.RepoRoot()
	is.NoErr(err)
	example := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, "examples", name))
		is.NoErr(err)
		return string(b)
	}

	consumers := e.conduitDir("consumers", map[string]string{
		"danube-to-file.yaml":   example("danube-to-file.yaml"),
		"danube-to-danube.yaml": example("danube-to-danube.yaml"),
		"copy-to-file.yaml": fmt.Sprintf(`version: "2.2"
pipelines:
  - id: copy-to-file
    status: running
    connectors:
      - id: danube
        type: source
        plugin: standalone:danube
        settings:
          url: ${DANUBE_URL}
          topics: /analytics/orders-copy
          subscription: %s
          createMissingTopics: "true"
      - id: file
        type: destination
        plugin: builtin:file
        settings:
          path: ./copy.jsonl
`, "copy-reader"),
	})
	e.waitForSubscription(ctx, "/default/orders", "orders-to-file", consumers)
	e.waitForSubscription(ctx, "/default/orders", "orders-to-analytics", consumers)
	e.waitForSubscription(ctx, "/analytics/orders-copy", "copy-reader", consumers)

	producer := e.conduit("producer", example("generator-to-danube.yaml"))

	orders := waitForRecords(ctx, t, e.path("consumers", "orders.jsonl"), count, consumers, producer)
	copied := waitForRecords(ctx, t, e.path("consumers", "copy.jsonl"), count, consumers, producer)
	// The destination keeps order per key (the default), so compare as sets.
	is.Equal(orderKeys(t, copied), orderKeys(t, orders))
	for _, r := range copied {
		is.Equal(r.Metadata["opencdc.collection"], "orders") // the original record, restored
	}
}

// orderKeys lists each record's key and payload, sorted.
func orderKeys(t *testing.T, recs []opencdc.Record) []string {
	t.Helper()
	keys := make([]string, len(recs))
	for i, r := range recs {
		if r.Key == nil || r.Payload.After == nil {
			t.Fatalf("record %d has no key or payload: %v", i, r)
		}
		keys[i] = string(r.Key.Bytes()) + " " + string(r.Payload.After.Bytes())
	}
	slices.Sort(keys)
	return keys
}
