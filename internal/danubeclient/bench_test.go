package danubeclient

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkProducer compares the official clients' pattern (one Send in
// flight) with pipelined SendAsync (MaxInFlight 64), against the in-process
// test broker, on reliable topics with 1 and 4 partitions. rtt=0 runs broker
// and client on the same CPUs with no network, so it is CPU-bound; rtt=1ms
// adds a millisecond to every SendMessage, as a network round trip and the
// broker's WAL append would.
//
//	go test -run '^$' -bench BenchmarkProducer -benchtime 2s ./internal/danube/
func BenchmarkProducer(b *testing.B) {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
	}
	modes := []struct {
		name     string
		async    bool
		ordering Ordering
		keyed    bool
	}{
		{"Send", false, OrderPerKey, false},
		{"AsyncOrderNone", true, OrderNone, false},
		{"AsyncOrderPerKey", true, OrderPerKey, true},
	}
	for _, rtt := range []time.Duration{0, time.Millisecond} {
		for _, parts := range []int{1, 4} {
			for _, size := range []int{100, 1024} {
				for _, mode := range modes {
					name := fmt.Sprintf("rtt=%v/partitions=%d/size=%d/%s", rtt, parts, size, mode.name)
					b.Run(name, func(b *testing.B) {
						benchProducer(b, rtt, parts, size, mode.async, mode.ordering, mode.keyed, keys)
					})
				}
			}
		}
	}
}

func benchProducer(b *testing.B, rtt time.Duration, parts, size int, async bool, ordering Ordering, keyed bool, keys []string) {
	b.Helper()
	broker := newTestBroker(b)
	broker.Delay(mSendMessage, rtt)
	c := newTestClient(b, testConfig(broker.URL()))
	opts := ProducerOptions{Topic: "/default/bench", Name: "bench", Dispatch: Reliable, Ordering: ordering}
	if parts > 1 {
		opts.Partitions = parts
	}
	p := newTestProducer(b, c, opts)
	payload := make([]byte, size)
	ctx := context.Background()
	var failed atomic.Int64
	done := func(err error) {
		if err != nil {
			failed.Add(1)
		}
	}

	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msg := Message{Payload: payload}
		if keyed {
			msg.Key = keys[i%len(keys)]
		}
		var err error
		if async {
			err = p.SendAsync(ctx, msg, done)
		} else {
			err = p.Send(ctx, msg)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d sends failed", n)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
