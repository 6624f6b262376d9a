package source

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// BenchmarkCDC_NextAck measures the iterator's own cost per record (mapping,
// position, dedupe bookkeeping, queued acknowledgement) with a consumer that
// answers at once, for 1 and 16 partitions.
func BenchmarkCDC_NextAck(b *testing.B) {
	for _, parts := range []int{1, 16} {
		b.Run(map[int]string{1: "partitions=1", 16: "partitions=16"}[parts], func(b *testing.B) {
			names := make([]string, parts)
			for i := range names {
				names[i] = danubeclient.PartitionTopic("/default/bench", i)
			}
			f := &instantConsumer{parts: names, payload: bytes.Repeat([]byte("x"), 1024)}
			c, err := NewCDC(CDCConfig{
				Live: LiveConfig{
					Topics: []TopicConsumer{{Topic: "/default/bench", Consumer: f}}, Buffer: 100, AckConcurrency: 8,
				},
				Ordered: true,
			}, nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				rec, err := c.Next(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if err := c.Ack(ctx, rec.Position); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
			if err := c.Close(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// instantConsumer delivers consecutive offsets round-robin over its
// partitions and acknowledges without delay.
type instantConsumer struct {
	parts   []string
	payload []byte
	n       uint64
}

func (f *instantConsumer) Receive(ctx context.Context) (*danubeclient.ReceivedMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	i := f.n
	f.n++
	p := int(i % uint64(len(f.parts)))
	return &danubeclient.ReceivedMessage{
		ID:      danubeclient.MessageID{Topic: f.parts[p], Offset: i / uint64(len(f.parts)), ProducerID: 1, RequestID: i},
		Payload: f.payload, PublishTime: time.Unix(0, int64(i)),
	}, nil
}

func (f *instantConsumer) Ack(context.Context, danubeclient.MessageID) error { return nil }
func (f *instantConsumer) Partitions() []string                              { return f.parts }
func (f *instantConsumer) Close() error                                      { return nil }
