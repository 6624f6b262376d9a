package destination

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/conduitio/conduit-commons/opencdc"
	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/config"
	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/wire"
)

func startBroker(t *testing.T, opts ...danubetest.Option) *danubetest.Broker {
	t.Helper()
	b, err := danubetest.New(opts...)
	if err != nil {
		t.Fatalf("start test broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// brokerConfig is a destination config for b with the parameters' defaults.
func brokerConfig(b *danubetest.Broker, topic string) *config.DestinationConfig {
	return &config.DestinationConfig{
		ServiceConnection: config.ServiceConnection{
			URL:             b.URL(),
			RetryMax:        10,
			RetryMaxBackoff: 500 * time.Millisecond,
		},
		Topic:            topic,
		DispatchStrategy: config.DispatchReliable,
		ProducerName:     "test-destination",
		Ordering:         config.OrderingKey,
		MaxInFlight:      256,
		MaxProducers:     256,
		SendTimeout:      30 * time.Second,
		Metadata:         config.DestinationMetadata{Attributes: true},
	}
}

func openWriter(t *testing.T, cfg *config.DestinationConfig) *Writer {
	t.Helper()
	w, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := w.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return w
}

func newClient(t *testing.T, b *danubetest.Broker) *danubeclient.Client {
	t.Helper()
	c, err := danubeclient.NewClient(danubeclient.Config{URL: b.URL()})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// storedPositions decodes the OpenCDC records stored in a reliable topic, in
// offset order, and returns their positions.
func storedPositions(t *testing.T, b *danubetest.Broker, topic string) []string {
	t.Helper()
	var out []string
	for _, p := range b.Payloads(topic) {
		var rec opencdc.Record
		if err := json.Unmarshal(p, &rec); err != nil {
			t.Fatalf("topic %s holds a payload that is not an OpenCDC record: %v", topic, err)
		}
		out = append(out, string(rec.Position))
	}
	return out
}

func positionsOf(recs []opencdc.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Position)
	}
	return out
}

// keyedRecords makes n records cycling over keys, positions "<key>/<seq>"
// where seq counts the records of that key.
func keyedRecords(n, keys int) []opencdc.Record {
	recs := make([]opencdc.Record, n)
	seq := make([]int, keys)
	for i := range recs {
		k := i % keys
		recs[i] = opencdc.Record{
			Position:  opencdc.Position(fmt.Sprintf("key%d/%d", k, seq[k])),
			Operation: opencdc.OperationCreate,
			Metadata:  opencdc.Metadata{opencdc.MetadataCollection: "orders"},
			Key:       opencdc.RawData(fmt.Sprintf("key%d", k)),
			Payload:   opencdc.Change{After: opencdc.RawData(strings.Repeat("x", 64))},
		}
		seq[k]++
	}
	return recs
}

func TestIntegration_PerKeyOrderUnderConcurrency(t *testing.T) {
	is := is.New(t)
	b := startBroker(t, danubetest.WithMaxUnacked(1000))
	const topic, partitions, keys, total = "/default/orders", 4, 20, 600
	cfg := brokerConfig(b, topic)
	cfg.Partitions = partitions
	cfg.MaxInFlight = 64
	w := openWriter(t, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	consumer, err := newClient(t, b).Subscribe(ctx, danubeclient.ConsumerOptions{
		Topic: topic, Name: "checker", Subscription: "check", Type: danubeclient.Exclusive,
	})
	is.NoErr(err)
	defer func() { is.NoErr(consumer.Close()) }()

	recs := keyedRecords(total, keys)
	for start := 0; start < total; start += 100 {
		n, err := w.Write(ctx, recs[start:start+100])
		is.NoErr(err)
		is.Equal(n, 100)
	}

	next := map[string]int{} // key -> next expected sequence number
	for range total {
		msg, err := consumer.Receive(ctx)
		is.NoErr(err)
		is.NoErr(consumer.Ack(ctx, msg.ID))

		is.Equal(msg.Attributes[wire.FormatAttribute], "opencdc/json")
		is.Equal(msg.ID.Topic, danubeclient.PartitionTopic(topic, danubeclient.PartitionForKey(msg.Key, partitions)))
		var rec opencdc.Record
		is.NoErr(json.Unmarshal(msg.Payload, &rec))
		key, seq, ok := strings.Cut(string(rec.Position), "/")
		is.True(ok)
		is.Equal(msg.Key, key)
		is.Equal(seq, fmt.Sprint(next[key])) // per-key order kept
		next[key]++
	}
	for k := range keys {
		is.Equal(next[fmt.Sprintf("key%d", k)], total/keys)
	}
}

func TestIntegration_RoutesOneBatchToSeveralTopics(t *testing.T) {
	is := is.New(t)
	b := startBroker(t)
	w := openWriter(t, brokerConfig(b, `/default/{{ index .Metadata "opencdc.collection" }}`))

	var recs, users, orders []opencdc.Record
	for i := range 30 {
		coll := []string{"users", "orders"}[i%3%2]
		r := testRecords(1, coll)[0]
		r.Position = opencdc.Position(fmt.Sprintf("%s-%d", coll, i))
		recs = append(recs, r)
		if coll == "users" {
			users = append(users, r)
		} else {
			orders = append(orders, r)
		}
	}

	n, err := w.Write(context.Background(), recs)
	is.NoErr(err)
	is.Equal(n, len(recs))
	// One key per record, so only the order per key is promised; here every
	// record has the same key "k0", hence the whole topic is in record order.
	is.Equal(storedPositions(t, b, "/default/users"), positionsOf(users))
	is.Equal(storedPositions(t, b, "/default/orders"), positionsOf(orders))
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestIntegration_BrokerRestartMidBatchLosesNothing(t *testing.T) {
	is := is.New(t)
	b := startBroker(t)
	const topic, total = "/default/restart", 600
	cfg := brokerConfig(b, topic)
	cfg.MaxInFlight = 16
	w := openWriter(t, cfg)
	// Slow sends down so the restart lands in the middle of the batch.
	b.Delay(danubepb.ProducerService_SendMessage_FullMethodName, 2*time.Millisecond)

	recs := keyedRecords(total, 8)
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := w.Write(context.Background(), recs)
		done <- result{n, err}
	}()
	waitFor(t, "a part of the batch stored", func() bool { return b.Messages(topic) >= total/5 })
	is.NoErr(b.Restart(danubetest.RestartOptions{}))
	stored := b.Messages(topic)
	is.True(stored < total) // the restart really came mid-batch

	res := <-done
	is.NoErr(res.err)
	is.Equal(res.n, total)

	got := storedPositions(t, b, topic)
	seen := map[string]bool{}
	for _, p := range got {
		seen[p] = true
	}
	for _, p := range positionsOf(recs) {
		is.True(seen[p]) // every confirmed record is stored
	}
	t.Logf("restart after %d of %d stored; %d stored in all (%d duplicates from resent calls)",
		stored, total, len(got), len(got)-total)
}

func TestIntegration_OversizeRecordIsNamedAndEarlierOnesCounted(t *testing.T) {
	is := is.New(t)
	b := startBroker(t)
	const topic = "/default/big"
	w := openWriter(t, brokerConfig(b, topic))
	recs := testRecords(6, "c")
	recs[4].Payload.After = opencdc.RawData(make([]byte, 5<<20))

	n, err := w.Write(context.Background(), recs)
	is.Equal(n, 4)
	is.True(errors.Is(err, danubeclient.ErrMessageTooLarge))
	is.True(strings.Contains(err.Error(), `record 4 (position "p4")`))
	stored := storedPositions(t, b, topic)
	slices.Sort(stored) // distinct keys: no order among them is promised
	is.Equal(stored, positionsOf(recs[:4]))

	// The failure leaves the producer usable: the remaining records go through.
	n, err = w.Write(context.Background(), recs[5:])
	is.NoErr(err)
	is.Equal(n, 1)
}

func TestIntegration_MissingNamespaceAtOpen(t *testing.T) {
	is := is.New(t)
	b := startBroker(t)

	_, err := Open(context.Background(), brokerConfig(b, "/sales/orders"))
	is.True(errors.Is(err, danubeclient.ErrNamespaceNotFound))
	is.True(strings.Contains(err.Error(), "danube-admin namespaces create sales"))
}

func TestIntegration_MissingNamespaceForRenderedTopic(t *testing.T) {
	is := is.New(t)
	b := startBroker(t)
	w := openWriter(t, brokerConfig(b, `/{{ index .Metadata "opencdc.collection" }}/orders`))
	recs := append(testRecords(3, "default"), testRecords(2, "sales")...)

	n, err := w.Write(context.Background(), recs)
	is.Equal(n, 3)
	is.True(errors.Is(err, danubeclient.ErrNamespaceNotFound))
	is.True(strings.Contains(err.Error(), `record 3 (position "p0")`))
	is.True(strings.Contains(err.Error(), "danube-admin namespaces create sales"))
}

func TestIntegration_StrategyMismatchAtOpen(t *testing.T) {
	is := is.New(t)
	b := startBroker(t)
	is.NoErr(b.CreateTopic("/default/lossy", false))

	_, err := Open(context.Background(), brokerConfig(b, "/default/lossy"))
	is.True(errors.Is(err, danubeclient.ErrStrategyMismatch))
	is.True(strings.Contains(err.Error(), `"dispatchStrategy"`))
}

func TestIntegration_StableProducerName(t *testing.T) {
	is := is.New(t)
	b := startBroker(t)
	cfg := brokerConfig(b, "/default/named")
	cfg.Partitions = 2
	cfg.ProducerName = "pipeline1:danube-out"
	w := openWriter(t, cfg)
	_, err := w.Write(context.Background(), testRecords(2, "c"))
	is.NoErr(err)

	is.Equal(b.Producers("/default/named-part-0"), []string{"pipeline1:danube-out-0"})
	is.Equal(b.Producers("/default/named-part-1"), []string{"pipeline1:danube-out-1"})
}

func TestIntegration_NonReliableTopic(t *testing.T) {
	is := is.New(t)
	b := startBroker(t)
	cfg := brokerConfig(b, "/default/lossy")
	cfg.DispatchStrategy = config.DispatchNonReliable
	w := openWriter(t, cfg)

	n, err := w.Write(context.Background(), testRecords(5, "c"))
	is.NoErr(err)
	is.Equal(n, 5)
	is.Equal(b.Messages("/default/lossy"), 0) // non-reliable topics store nothing

	// A reliable destination cannot take the topic over.
	_, err = Open(context.Background(), brokerConfig(b, "/default/lossy"))
	is.True(errors.Is(err, danubeclient.ErrStrategyMismatch))
}
