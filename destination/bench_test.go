package destination

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/conduitio/conduit-commons/opencdc"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// nopProducer completes every send before SendAsync returns.
type nopProducer struct{}

func (nopProducer) SendAsync(_ context.Context, _ danubeclient.Message, done func(error)) error {
	done(nil)
	return nil
}
func (nopProducer) Flush(context.Context) error { return nil }
func (nopProducer) Close(context.Context) error { return nil }

// benchRecords are what the builtin generator produces in the pipeline
// benchmarks: a 1 KiB raw payload, a short raw key, six metadata keys.
func benchRecords(n int) []opencdc.Record {
	recs := make([]opencdc.Record, n)
	payload := bytes.Repeat([]byte("x"), 1024)
	for i := range recs {
		md := opencdc.Metadata{}
		md.SetCollection("orders")
		md.SetCreatedAt(time.Unix(1_700_000_000, int64(i)))
		md.SetReadAt(time.Unix(1_700_000_001, int64(i)))
		md["conduit.source.connector.id"] = "pipeline:generator"
		md["opencdc.version"] = "v1"
		md["generator.index"] = strconv.Itoa(i)
		recs[i] = opencdc.Record{
			Position:  opencdc.Position("position-" + strconv.Itoa(i)),
			Operation: opencdc.OperationCreate,
			Metadata:  md,
			Key:       opencdc.RawData("key-" + strconv.Itoa(i%1000)),
			Payload:   opencdc.Change{After: opencdc.RawData(payload)},
		}
	}
	return recs
}

// BenchmarkWriter_Write is the destination's own work per record, without a
// broker: routing, mapping to a message (OpenCDC JSON payload, attributes)
// and handing it to a producer that completes at once. One op is one
// record, written in batches of 1000.
//
//	go test -run '^$' -bench Writer_Write -benchmem ./destination/
func BenchmarkWriter_Write(b *testing.B) {
	w, err := New(mapperConfig(), func(context.Context, string) (Producer, error) { return nopProducer{}, nil })
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close(context.Background())
	const batch = 1000
	recs := benchRecords(batch)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for left := b.N; left > 0; left -= batch {
		chunk := recs[:min(batch, left)]
		if n, err := w.Write(ctx, chunk); err != nil || n != len(chunk) {
			b.Fatalf("wrote %d of %d: %v", n, len(chunk), err)
		}
	}
}
