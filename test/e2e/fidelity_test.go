package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/test/harness"
)

// fidelityRecords are hand-written records, as the destination writes them
// (OpenCDC JSON), holding the values that change most easily on the way:
// integers beyond 2^53, extreme floats, nesting, nulls, unicode, raw bytes,
// empty and long keys, every operation.
func fidelityRecords() []string {
	longKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("k-ключ-"), 1500)) // 15 KiB
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	return []string{
		`{"operation":"create","metadata":{"fidelity.id":"h1","opencdc.collection":"accounts","unicode":"значение ✓ 🚀"},
		  "key":{"id":9007199254740993,"region":"eu-west"},
		  "payload":{"before":null,"after":{"big":7072517835517712850,"min":-9223372036854775808,
		  "max":9223372036854775807,"pi":3.141592653589793,"tiny":5e-324,"huge":1.7976931348623157e308,
		  "half":0.5,"nested":{"level":{"n":123456789012345678,"s":"x"}},"ints":[1,9007199254740993,-3],
		  "mixed":[1,"two",null,true,2.5],"words":["a","β","🚀"],"nothing":null,"yes":true,"no":false,
		  "text":"żółć 日本語 🚀 \"q\" \\ \u0000","empty":"","emptyMap":{}}}}`,
		`{"operation":"update","metadata":{"fidelity.id":"h2","opencdc.collection":"accounts"},
		  "key":"` + base64.StdEncoding.EncodeToString([]byte("ключ-🔑")) + `",
		  "payload":{"before":{"balance":9223372036854775807,"owner":"Zoë"},
		  "after":{"balance":-9223372036854775807,"owner":"Zoë Ørsted"}}}`,
		`{"operation":"delete","metadata":{"fidelity.id":"h3"},"key":"",
		  "payload":{"before":{"id":-9007199254740993,"list":[[1,2],[3]],"none":[]},"after":null}}`,
		`{"operation":"snapshot","metadata":{"fidelity.id":"h4","opencdc.collection":"blobs"},
		  "key":"` + longKey + `",
		  "payload":{"before":null,"after":"` + base64.StdEncoding.EncodeToString(binary) + `"}}`,
		`{"operation":"create","metadata":{"fidelity.id":"h5","empty.value":""},"key":null,
		  "payload":{"before":null,"after":{"user-id":12,"ключ":1.5,"a b":[1,{"x":2}],"1st":null,"none":[]}}}`,
		`{"operation":"create","metadata":{"fidelity.id":"h6"},"key":{"k":"v"},
		  "payload":{"before":null,"after":null}}`,
	}
}

// asJSONText names the parts that, as documented (docs/semantics.md, Record
// fidelity), arrive as raw data holding their exact JSON text: no Avro schema
// keeps an empty list, and without a schema Conduit would round integers
// beyond 2^53.
var asJSONText = map[string]string{"h3": "before"}

// TestPipeline_RecordsComeOutAsTheyWentIn compares every field of every
// record after two hops through Danube and three plugin boundaries, on the
// default configuration: hand-written records with edge values, published
// to /default/fidelity-in as the destination writes them, and generated
// records (64-bit integers, every operation) written there by the
// destination; a pipeline relays that topic to a 3-partition topic in
// another namespace, and another writes it to a file.
func TestPipeline_RecordsComeOutAsTheyWentIn(t *testing.T) {
	const (
		in        = "/default/fidelity-in"
		out       = "/fidelity/records"
		generated = 200
	)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	e := newEnv(t)

	admin := e.admin()
	if err := admin.CreateNamespace(ctx, "fidelity"); err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic(ctx, in, danubeclient.Reliable); err != nil {
		t.Fatal(err)
	}
	if err := admin.CreatePartitionedTopic(ctx, out, 3, danubeclient.Reliable); err != nil {
		t.Fatal(err)
	}

	relay := e.conduit("relay", fmt.Sprintf(`version: "2.2"
pipelines:
  - id: relay
    status: running
    connectors:
      - id: from
        type: source
        plugin: standalone:danube
        settings:
          url: ${DANUBE_URL}
          topics: %s
          subscription: relay
      - id: to
        type: destination
        plugin: standalone:danube
        settings:
          url: ${DANUBE_URL}
          topic: %s
          partitions: "3"
`, in, out))
	reader := e.conduit("reader", `version: "2.2"
pipelines:
  - id: reader
    status: running
    connectors:
      - id: from
        type: source
        plugin: standalone:danube
        settings:
          url: ${DANUBE_URL}
          topics: `+out+`
          subscription: reader
      - id: received
        type: destination
        plugin: builtin:file
        settings:
          path: ./received.jsonl
`)
	e.waitForSubscription(ctx, in, "relay", relay)
	e.waitForSubscription(ctx, out+"-part-0", "reader", reader)

	// Hand-written records, published as the destination publishes them.
	client, err := danubeclient.NewClient(danubeclient.Config{URL: e.broker.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	producer, err := client.NewProducer(ctx, danubeclient.ProducerOptions{Topic: in, Name: "fidelity", Dispatch: danubeclient.Reliable})
	if err != nil {
		t.Fatal(err)
	}
	handWritten := fidelityRecords()
	for _, r := range handWritten {
		if !json.Valid([]byte(r)) {
			t.Fatalf("not JSON: %s", r)
		}
		err := producer.Send(ctx, danubeclient.Message{
			Payload:    []byte(r),
			Attributes: map[string]string{"conduit.record.format": "opencdc/json"},
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// Generated records go to Danube and, as sent, to a file; a processor
	// names each by its position so the two sides can be matched.
	generator := e.conduit("generator", fmt.Sprintf(`version: "2.2"
pipelines:
  - id: generator
    status: running
    connectors:
      - id: generator
        type: source
        plugin: builtin:generator
        settings:
          collections.orders.format.type: structured
          collections.orders.format.options.id: int
          collections.orders.format.options.amount: int
          collections.orders.format.options.product: string
          collections.orders.format.options.paid: bool
          collections.orders.operations: create,update,delete,snapshot
          recordCount: "%d"
        processors:
          - id: name
            plugin: field.set
            settings:
              field: .Metadata["fidelity.id"]
              value: '{{ printf "g-%%s" .Position }}'
      - id: to
        type: destination
        plugin: standalone:danube
        settings:
          url: ${DANUBE_URL}
          topic: %s
      - id: sent
        type: destination
        plugin: builtin:file
        settings:
          path: ./sent.jsonl
`, generated, in))

	want := map[string]map[string]any{}
	for _, r := range handWritten {
		addByID(t, want, []byte(r))
	}
	sent := waitForLines(ctx, t, e.path("generator", "sent.jsonl"), generated, generator, relay, reader)
	for _, line := range sent {
		addByID(t, want, line)
	}
	received := waitForLines(ctx, t, e.path("reader", "received.jsonl"), len(want), generator, relay, reader)

	differing := 0
	seen := map[string]bool{}
	for _, line := range received {
		got := decodeRecord(t, line)
		id := recordID(got)
		w, ok := want[id]
		switch {
		case !ok:
			t.Errorf("received a record nobody sent: %.200s", line)
			continue
		case seen[id]:
			t.Errorf("record %s received twice", id)
			continue
		}
		seen[id] = true
		if part, ok := asJSONText[id]; ok {
			fromJSONText(t, got, part)
		}
		if diffs := recordDiff(w, got); len(diffs) > 0 {
			differing++
			t.Errorf("record %s differs:\n  %s", id, strings.Join(diffs, "\n  "))
		}
	}
	if differing > 0 {
		t.Errorf("%d of %d records differ", differing, len(want))
	}
	t.Logf("%d records compared field by field (%d hand-written, %d generated)", len(seen), len(handWritten), len(sent))
}

// recordDiff compares operation, key, payload and metadata; metadata the
// pipelines add (Conduit's, the position's danube.* keys, schema
// references of the Conduit in between, the read time) is not compared.
func recordDiff(want, got map[string]any) []string {
	var diffs []string
	for _, field := range []string{"operation", "key", "payload"} {
		diffs = append(diffs, harness.JSONDiff(field, want[field], got[field])...)
	}
	wantMD, _ := want["metadata"].(map[string]any)
	gotMD, _ := got["metadata"].(map[string]any)
	return append(diffs, harness.JSONDiff("metadata", comparedMetadata(wantMD), comparedMetadata(gotMD))...)
}

func comparedMetadata(md map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range md {
		switch {
		case k == "opencdc.readAt", strings.HasPrefix(k, "conduit."), strings.HasPrefix(k, "danube."),
			strings.HasPrefix(k, "opencdc.key.schema."), strings.HasPrefix(k, "opencdc.payload.schema."):
			continue
		}
		out[k] = v
	}
	return out
}

// fromJSONText replaces payload part (raw data in the record's JSON: a
// base64 string) with the JSON value it holds.
func fromJSONText(t *testing.T, rec map[string]any, part string) {
	t.Helper()
	payload, _ := rec["payload"].(map[string]any)
	text, ok := payload[part].(string)
	if !ok {
		t.Errorf("payload.%s: want raw data holding JSON text, got %v", part, payload[part])
		return
	}
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		t.Fatal(err)
	}
	if payload[part], err = harness.DecodeJSON(b); err != nil {
		t.Errorf("payload.%s: raw data is not JSON text: %v", part, err)
	}
}

func addByID(t *testing.T, m map[string]map[string]any, line []byte) {
	t.Helper()
	rec := decodeRecord(t, line)
	id := recordID(rec)
	if id == "" {
		t.Fatalf("record without fidelity.id: %.200s", line)
	}
	m[id] = rec
}

func decodeRecord(t *testing.T, line []byte) map[string]any {
	t.Helper()
	v, err := harness.DecodeJSON(line)
	if err != nil {
		t.Fatalf("%v: %.200s", err, line)
	}
	rec, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("not a record: %.200s", line)
	}
	return rec
}

func recordID(rec map[string]any) string {
	md, _ := rec["metadata"].(map[string]any)
	id, _ := md["fidelity.id"].(string)
	return id
}

// waitForLines waits until path holds at least n complete lines and returns
// exactly what it holds then; more than n is a failure (duplicates).
func waitForLines(ctx context.Context, t *testing.T, path string, n int, watch ...*harness.Process) [][]byte {
	t.Helper()
	var lines [][]byte
	err := harness.WaitFor(ctx, 100*time.Millisecond, func() (bool, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return false, nil //nolint:nilerr // not written yet
		}
		lines = lines[:0]
		for line := range bytes.Lines(b) {
			if bytes.HasSuffix(line, []byte("\n")) {
				lines = append(lines, line)
			}
		}
		return len(lines) >= n, nil
	}, watch...)
	if err != nil {
		t.Fatalf("waiting for %d lines in %s (have %d): %v", n, path, len(lines), err)
	}
	if len(lines) != n {
		t.Fatalf("%s holds %d lines, want %d", path, len(lines), n)
	}
	return lines
}
