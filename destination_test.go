package danube_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/conduitio/conduit-commons/config"
	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"
	"github.com/matryer/is"
	"go.uber.org/goleak"

	danube "github.com/conduitio-labs/conduit-connector-danube"
	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
	dclient "github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/wire"
)

// verifyNoLeaks checks, after the test's other cleanups, that the
// destination left no goroutine behind.
func verifyNoLeaks(t *testing.T) {
	t.Helper()
	opts := []goleak.Option{
		goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/twmb/go-cache/cache.New[...].func1"), // the SDK's schema cache
	}
	t.Cleanup(func() { goleak.VerifyNone(t, opts...) })
}

func startDestinationBroker(tb testing.TB) *danubetest.Broker {
	tb.Helper()
	b, err := danubetest.New()
	if err != nil {
		tb.Fatalf("start test broker: %v", err)
	}
	tb.Cleanup(b.Close)
	return b
}

// configuredDestination configures a destination as Conduit does: through
// the middleware, with the generated specification's defaults and checks.
func configuredDestination(tb testing.TB, cfg config.Config) sdk.Destination {
	tb.Helper()
	d := danube.NewDestination()
	err := sdk.Util.ParseConfig(context.Background(), cfg, d.Config(), danube.Connector.NewSpecification().DestinationParams)
	if err != nil {
		tb.Fatalf("configure destination: %v", err)
	}
	return d
}

func openDestination(tb testing.TB, cfg config.Config) sdk.Destination {
	tb.Helper()
	d := configuredDestination(tb, cfg)
	if err := d.Open(context.Background()); err != nil {
		tb.Fatalf("open destination: %v", err)
	}
	tb.Cleanup(func() {
		if err := d.Teardown(context.Background()); err != nil {
			tb.Errorf("teardown: %v", err)
		}
	})
	return d
}

func TestDestination_TeardownWithoutOpen(t *testing.T) {
	verifyNoLeaks(t)
	is := is.New(t)
	d := configuredDestination(t, config.Config{"url": "http://127.0.0.1:6650", "topic": "/default/t"})
	is.NoErr(d.Teardown(context.Background()))
}

func TestDestination_ConfigureRejectsBadTopic(t *testing.T) {
	is := is.New(t)
	d := danube.NewDestination()
	err := sdk.Util.ParseConfig(context.Background(),
		config.Config{"url": "http://127.0.0.1:6650", "topic": "orders"},
		d.Config(), danube.Connector.NewSpecification().DestinationParams)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), `"topic"`))
}

func TestDestination_WritesWholeRecordsThroughMiddleware(t *testing.T) {
	verifyNoLeaks(t)
	is := is.New(t)
	b := startDestinationBroker(t)
	d := openDestination(t, config.Config{"url": b.URL(), "topic": "/default/users"})

	recs := []opencdc.Record{
		sdk.Util.Source.NewRecordCreate(opencdc.Position("p1"), opencdc.Metadata{"opencdc.collection": "users"},
			opencdc.RawData("u1"), opencdc.StructuredData{"name": "ada"}),
		sdk.Util.Source.NewRecordCreate(opencdc.Position("p2"), nil, opencdc.RawData("u1"), opencdc.RawData("raw")),
	}
	n, err := d.Write(context.Background(), recs)
	is.NoErr(err)
	is.Equal(n, 2)

	payloads := b.Payloads("/default/users")
	is.Equal(len(payloads), 2)
	for i, p := range payloads { // same key: stored in record order
		var got opencdc.Record
		is.NoErr(json.Unmarshal(p, &got))
		is.Equal(got.Position, recs[i].Position)
		is.Equal(string(got.Key.Bytes()), "u1")
	}
}

func TestDestination_TemplateRecordFormat(t *testing.T) {
	verifyNoLeaks(t)
	is := is.New(t)
	b := startDestinationBroker(t)
	d := openDestination(t, config.Config{
		"url":                       b.URL(),
		"topic":                     "/default/raw",
		"sdk.record.format":         "template",
		"sdk.record.format.options": `{{ printf "%s" .Payload.After }}`,
	})

	rec := sdk.Util.Source.NewRecordCreate(opencdc.Position("p1"), nil, nil, opencdc.RawData("hello"))
	n, err := d.Write(context.Background(), []opencdc.Record{rec})
	is.NoErr(err)
	is.Equal(n, 1)
	is.Equal(b.Payloads("/default/raw"), [][]byte{[]byte("hello")})
}

// TestDestination_URLWithoutScheme writes through a url given as host:port,
// the form Danube's own clients take.
func TestDestination_URLWithoutScheme(t *testing.T) {
	verifyNoLeaks(t)
	is := is.New(t)
	b := startDestinationBroker(t)
	hostPort := strings.TrimPrefix(b.URL(), "http://")
	d := openDestination(t, config.Config{"url": hostPort, "topic": "/default/bare"})

	rec := sdk.Util.Source.NewRecordCreate(opencdc.Position("p1"), nil, nil, opencdc.RawData("hello"))
	n, err := d.Write(context.Background(), []opencdc.Record{rec})
	is.NoErr(err)
	is.Equal(n, 1)
	is.Equal(len(b.Payloads("/default/bare")), 1)
}

// -- Benchmark ---------------------------------------------------------------

const (
	benchPartitions = 4
	benchKeys       = 1000
	benchPayload    = 1024
)

// benchRecords makes records like a CDC source's: 1 KiB payload, one of
// benchKeys keys, a little metadata.
func benchRecords(n int) []opencdc.Record {
	payload := opencdc.RawData(strings.Repeat("d", benchPayload))
	recs := make([]opencdc.Record, n)
	for i := range recs {
		recs[i] = sdk.Util.Source.NewRecordCreate(
			opencdc.Position(fmt.Sprintf("pos-%d", i)),
			opencdc.Metadata{"opencdc.collection": "orders"},
			opencdc.RawData(fmt.Sprintf("key-%d", i%benchKeys)),
			payload,
		)
	}
	return recs
}

func reportRate(b *testing.B, records int, elapsed time.Duration) float64 {
	b.Helper()
	rate := float64(records) / elapsed.Seconds()
	b.ReportMetric(rate, "records/s")
	return rate
}

// BenchmarkDestination_Write measures records/s for 1 KiB records into a
// 4-partition reliable topic of the in-process broker: first one producer
// sending one record at a time (the baseline), then Destination.Write with
// the SDK's batch sizes, reporting the ratio to the baseline of the same run.
// One op is one record, so allocs/op is allocations per record (the whole
// process: connector, client, and the in-process broker's gRPC server).
//
// The in-process broker answers as fast as the CPU allows; a real broker is
// a network hop away and persists before it answers. The latency variant
// adds that delay to every SendMessage, which is what pipelining hides.
func BenchmarkDestination_Write(b *testing.B) {
	for _, latency := range []time.Duration{0, time.Millisecond} {
		b.Run(fmt.Sprintf("latency=%v", latency), func(b *testing.B) {
			var baseline float64
			b.Run("baseline-sequential-send", func(b *testing.B) {
				baseline = benchmarkSequentialSend(b, latency)
			})
			for _, batch := range []int{100, 1000} {
				b.Run(fmt.Sprintf("destination-batch=%d", batch), func(b *testing.B) {
					rate := benchmarkDestination(b, latency, batch)
					if baseline > 0 {
						b.ReportMetric(rate/baseline, "x-baseline")
					}
				})
			}
		})
	}
}

func startBenchBroker(b *testing.B, latency time.Duration) *danubetest.Broker {
	b.Helper()
	broker := startDestinationBroker(b)
	broker.Delay(danubepb.ProducerService_SendMessage_FullMethodName, latency)
	return broker
}

func benchmarkSequentialSend(b *testing.B, latency time.Duration) float64 {
	b.Helper()
	broker := startBenchBroker(b, latency)
	client, err := dclient.NewClient(dclient.Config{URL: broker.URL()})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	p, err := client.NewProducer(ctx, dclient.ProducerOptions{
		Topic: "/default/bench", Name: "baseline", Partitions: benchPartitions, Dispatch: dclient.Reliable,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(ctx)
	recs := benchRecords(1000)

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		rec := &recs[i%len(recs)]
		msg := dclient.Message{
			Payload:    rec.Bytes(),
			Key:        string(rec.Key.Bytes()),
			Attributes: map[string]string{"opencdc.collection": "orders", wire.FormatAttribute: "opencdc/json"},
		}
		if err := p.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
	return reportRate(b, b.N, time.Since(start))
}

func benchmarkDestination(b *testing.B, latency time.Duration, batch int) float64 {
	b.Helper()
	broker := startBenchBroker(b, latency)
	d := openDestination(b, config.Config{
		"url":        broker.URL(),
		"topic":      "/default/bench",
		"partitions": fmt.Sprint(benchPartitions),
	})
	ctx := context.Background()
	recs := benchRecords(batch)

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for left := b.N; left > 0; left -= batch {
		chunk := recs[:min(batch, left)]
		n, err := d.Write(ctx, chunk)
		if err != nil || n != len(chunk) {
			b.Fatalf("wrote %d of %d: %v", n, len(chunk), err)
		}
	}
	return reportRate(b, b.N, time.Since(start))
}
