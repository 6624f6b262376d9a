package faults_test

import (
	"testing"
	"time"

	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
	"github.com/conduitio-labs/conduit-connector-danube/test/faults"
)

// A slow broker: every call answers late. Sends are pipelined and acks run
// concurrently, so the pipeline only slows down: no error, no duplicate.
func TestSlowBroker(t *testing.T) {
	// an ideal reader (no skip, no stall): this case waits for the source's lag detection and repair
	b := newBroker(t, danubetest.WithLiveBuffer(0))
	for method, d := range map[string]time.Duration{
		sendMethod: 2 * time.Millisecond,
		ackMethod:  2 * time.Millisecond,
		"/danube.ConsumerService/ReceiveMessages": 100 * time.Millisecond,
		"/danube.ConsumerService/Subscribe":       50 * time.Millisecond,
		"/danube.ProducerService/CreateProducer":  50 * time.Millisecond,
		"/danube.Discovery/TopicLookup":           20 * time.Millisecond,
		"/danube.Discovery/TopicPartitions":       20 * time.Millisecond,
	} {
		b.Delay(method, d)
	}
	ctx := caseCtx(t)
	p := start(t, b, faults.Config{})
	p.Produce(records)
	waitProcessed(t, ctx, p, records/2)
	b.CutStreams() // reconnecting through the slow calls too
	check(t, finish(t, ctx, p), bound{})
}
